import DinoTensor
import Foundation
import Testing

/// Hand-written pickles and archives that no real writer produces: the restricted unpickler
/// must refuse each with a typed error, never run anything and never crash.
@Suite("Restricted unpickler and archive checks")
struct RestrictedUnpicklerTests {
    /// Writes `archive` to a scratch file and opens it.
    static func open(_ archive: TorchArchiveBuilder, root: TorchCheckpoint.Root = .whole) throws -> TorchCheckpoint {
        let folder = try TemporaryFolder()
        let url = folder.file("crafted.pth")
        try archive.bytes.write(to: url)
        return try TorchCheckpoint(url: url, root: root)
    }

    static func open(pickle: [UInt8], storages: [(String, [UInt8])] = []) throws -> TorchCheckpoint {
        try open(TorchArchiveBuilder(pickle: pickle, storages: storages))
    }

    static let fourFloats = float32Bytes([1, 2, 3, 4])

    @Test("a hand-written torch pickle reads: offsets, strides, negative views, uint16 through v3")
    func craftedValid() throws {
        let negated = Pickle.emptyDict + Pickle.string("neg") + Pickle.newTrue + Pickle.setItem
        let untyped = Pickle.tupleOf([
            Pickle.string("storage"), Pickle.global("torch.storage", "UntypedStorage"), Pickle.string("1"), Pickle.string("cpu"),
            Pickle.long(6),
        ]) + Pickle.persistentID
        let v3 = Pickle.global("torch._utils", "_rebuild_tensor_v3") + Pickle.tupleOf([
            untyped, Pickle.long(0), Pickle.ints([3]), Pickle.ints([1]), Pickle.newFalse,
            Pickle.global("collections", "OrderedDict") + Pickle.emptyTuple + Pickle.reduce, Pickle.global("torch", "uint16"),
        ]) + Pickle.reduce
        let parameter = Pickle.global("torch._utils", "_rebuild_parameter")
            + Pickle.tupleOf([Pickle.tensor(key: "0", numel: 4, size: [2], stride: [1]), Pickle.newTrue, Pickle.emptyDict]) + Pickle.reduce
        let pickle = Pickle.program(Pickle.dict([
            ("column", Pickle.tensor(key: "0", numel: 4, offset: 1, size: [2], stride: [2])),
            ("negated", Pickle.tensor(key: "0", numel: 4, size: [2, 2], stride: [1, 2], metadata: negated)),
            ("words", v3),
            ("parameter", parameter),
            ("device", Pickle.global("torch", "device") + Pickle.tupleOf([Pickle.string("cuda"), Pickle.long(1)]) + Pickle.reduce),
        ]))
        let file = try Self.open(pickle: pickle, storages: [("0", Self.fourFloats), ("1", [1, 0, 2, 0, 0xFF, 0xFF])])
        #expect(file.tensorNames == ["column", "negated", "words", "parameter"])
        #expect(try file.tensor("column").scalars == [2, 4])
        #expect(try file.tensor("negated").scalars == [-1, -3, -2, -4])
        #expect(try file.tensor("words").scalars == [1, 2, 65535])
        #expect(try file.entry("words").dtype == "uint16")
        #expect(try file.tensor("parameter").scalars == [1, 2])
        #expect(file.metadata["device"] == .string("cuda:1"))
    }

    /// Pickles that must be refused as unsafe: the reason names the opcode or global.
    static let unsafe: [(String, [UInt8], String)] = [
        ("os.system", Pickle.program(Pickle.global("os", "system") + Pickle.tupleOf([Pickle.string("true")]) + Pickle.reduce), "os.system"),
        ("posix.system", Pickle.program(Pickle.global("posix", "system")), "posix.system"),
        ("builtins.eval", Pickle.program(Pickle.global("builtins", "eval")), "builtins.eval"),
        ("__builtin__.getattr via STACK_GLOBAL", Pickle.program(Pickle.string("__builtin__") + Pickle.string("getattr") + [0x93]),
         "__builtin__.getattr"),
        ("subprocess.Popen", Pickle.program(Pickle.global("subprocess", "Popen")), "subprocess.Popen"),
        ("torch.load", Pickle.program(Pickle.global("torch", "load")), "torch.load"),
        ("numpy reconstruct", Pickle.program(Pickle.global("numpy.core.multiarray", "_reconstruct")), "numpy.core.multiarray._reconstruct"),
        ("torch rebuild from numpy", Pickle.program(Pickle.global("torch._utils", "_rebuild_device_tensor_from_numpy")),
         "_rebuild_device_tensor_from_numpy"),
        ("INST", Pickle.program([UInt8(ascii: "i")] + Array("os\nsystem\n".utf8)), "INST"),
        ("OBJ", Pickle.program(Pickle.mark + Pickle.global("collections", "OrderedDict") + [UInt8(ascii: "o")]), "OBJ"),
        ("NEWOBJ", Pickle.program(Pickle.global("collections", "OrderedDict") + Pickle.emptyTuple + [0x81]), "NEWOBJ"),
        ("EXT1", Pickle.program([0x82, 1]), "EXT1"),
        ("EXT4", Pickle.program([0x84, 1, 0, 0, 0]), "EXT4"),
        ("PERSID", Pickle.program([UInt8(ascii: "P")] + Array("0\n".utf8)), "PERSID"),
        ("STRING", Pickle.program([UInt8(ascii: "S")] + Array("'a'\n".utf8)), "STRING"),
        ("DUP", Pickle.program(Pickle.none + [UInt8(ascii: "2")]), "DUP"),
        ("LONG4", Pickle.program([0x8B, 1, 0, 0, 0, 1]), "LONG4"),
        ("an undefined opcode", Pickle.program([0xFF]), "0xff"),
        ("calling a dtype", Pickle.program(Pickle.global("torch", "float32") + Pickle.emptyTuple + Pickle.reduce), "REDUCE"),
        ("calling a storage type", Pickle.program(Pickle.global("torch", "FloatStorage") + Pickle.emptyTuple + Pickle.reduce),
         "torch.FloatStorage"),
        ("calling a string", Pickle.program(Pickle.string("os.system") + Pickle.emptyTuple + Pickle.reduce), "REDUCE"),
        ("BUILD on a tuple", Pickle.program(Pickle.emptyTuple + Pickle.emptyDict + Pickle.build), "BUILD"),
        ("a list appended to itself", Pickle.program(Pickle.emptyList + Pickle.put(0) + Pickle.get(0) + Pickle.append), "container changed"),
        ("a dict changed after it was shared", Pickle.program(
            Pickle.emptyDict + Pickle.put(0) + Pickle.emptyList + Pickle.get(0) + Pickle.append
                + Pickle.get(0) + Pickle.string("k") + Pickle.none + Pickle.setItem),
         "container changed"),
    ]

    @Test("globals and opcodes outside the allowed set are refused, naming them", arguments: 0..<unsafe.count)
    func refusesUnsafe(_ index: Int) throws {
        let (label, pickle, expected) = Self.unsafe[index]
        do {
            _ = try Self.open(pickle: pickle)
            Issue.record("\(label): accepted")
        } catch let error as TensorFileError {
            guard case .rejectedPickle(_, _, let reason) = error else {
                Issue.record("\(label): not refused as unsafe: \(error)")
                return
            }
            #expect(reason.contains(expected), "\(label): \(reason)")
            #expect(error.description.contains("crafted.pth"))
        }
    }

    /// Pickles and archives that are malformed, with a check of the error.
    static let malformed: [(String, @Sendable () -> TorchArchiveBuilder, @Sendable (TensorFileError) -> Bool)] = [
        ("no STOP", { TorchArchiveBuilder(pickle: Pickle.proto + Pickle.emptyDict) }, { if case .truncated = $0 { true } else { false } }),
        ("bytes after STOP", { TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict) + [0]) }, reason("after STOP")),
        ("two values at STOP", { TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict + Pickle.emptyDict)) }, reason("STOP with 2")),
        ("stack underflow", { TorchArchiveBuilder(pickle: Pickle.program(Pickle.setItem)) }, reason("underflow")),
        ("pop below a mark", { TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict + Pickle.mark + Pickle.tuple1)) }, reason("underflow")),
        ("memo entry never stored", { TorchArchiveBuilder(pickle: Pickle.program(Pickle.get(3))) }, reason("memo entry 3")),
        ("a string longer than the pickle", {
            TorchArchiveBuilder(pickle: Pickle.program([0x8D] + withUnsafeBytes(of: UInt64(1 << 62).littleEndian, Array.init)))
        }, reason("runs past the end")),
        ("a string that is not UTF-8", { TorchArchiveBuilder(pickle: Pickle.program([0x8C, 2, 0xC3, 0x28])) }, reason("not UTF-8")),
        ("an integer wider than 64 bits", { TorchArchiveBuilder(pickle: Pickle.program([0x8A, 9] + [UInt8](repeating: 1, count: 9))) },
         reason("more than 64 bits")),
        ("containers nested too deep", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyTuple + [UInt8](repeating: 0x85, count: 500)))
        }, reason("nested deeper")),
        ("a dict key that is a list", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict + Pickle.emptyList + Pickle.none + Pickle.setItem))
        }, reason("dict key of type list")),
        ("a repeated dict key", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("a", Pickle.none), ("a", Pickle.none)])))
        }, reason("appears twice")),
        ("a single tensor", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.tensor(key: "0", numel: 4, size: [4], stride: [1])), storages: [("0", fourFloats)])
        }, reason("single tensor")),
        ("a negative storage offset", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("t", Pickle.tensor(key: "0", numel: 4, offset: -1, size: [1], stride: [1]))])),
                                storages: [("0", fourFloats)])
        }, reason("storage offset")),
        ("size and stride of different lengths", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("t", Pickle.tensor(key: "0", numel: 4, size: [2, 2], stride: [1]))])),
                                storages: [("0", fourFloats)])
        }, reason("different lengths")),
        ("a view past the end of its storage", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("t", Pickle.tensor(key: "0", numel: 4, offset: 3, size: [2], stride: [1]))])),
                                storages: [("0", fourFloats)])
        }, { if case .invalidOffsets(_, "t", let r) = $0 { r.contains("reaches element 4") } else { false } }),
        ("a stride that overflows", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("t", Pickle.tensor(key: "0", numel: 4, size: [3], stride: [1 << 62]))])),
                                storages: [("0", fourFloats)])
        }, { if case .invalidOffsets(_, "t", let r) = $0 { r.contains("overflows") } else { false } }),
        ("a huge stride-0 view of a tiny storage", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("t", Pickle.tensor(key: "0", numel: 4, size: [1 << 20, 1 << 20], stride: [0, 0]))])),
                                storages: [("0", fourFloats)])
        }, { if case .invalidOffsets(_, "t", let r) = $0 { r.contains("allowed") } else { false } }),
        ("a storage member of the wrong size", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("t", Pickle.tensor(key: "0", numel: 4, size: [4], stride: [1]))])),
                                storages: [("0", Array(fourFloats.prefix(12)))])
        }, { if case .byteCountMismatch(_, "t", [4], "float32", 12) = $0 { true } else { false } }),
        ("one storage declared with two types", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([
                ("a", Pickle.tensor(key: "0", numel: 4, size: [4], stride: [1])),
                ("b", Pickle.tensor(key: "0", storageClass: "IntStorage", numel: 4, size: [4], stride: [1])),
            ])), storages: [("0", fourFloats)])
        }, reason("declared twice")),
        ("a complex (conjugate) view", {
            let conj = Pickle.emptyDict + Pickle.string("conj") + Pickle.newTrue + Pickle.setItem
            return TorchArchiveBuilder(
                pickle: Pickle.program(Pickle.dict([("t", Pickle.tensor(key: "0", numel: 4, size: [4], stride: [1], metadata: conj))])),
                storages: [("0", fourFloats)])
        }, reason("conjugate")),
        ("an unsupported dtype", {
            let untyped = Pickle.tupleOf([
                Pickle.string("storage"), Pickle.global("torch.storage", "UntypedStorage"), Pickle.string("0"), Pickle.string("cpu"),
                Pickle.long(4),
            ]) + Pickle.persistentID
            let v3 = Pickle.global("torch._utils", "_rebuild_tensor_v3") + Pickle.tupleOf([
                untyped, Pickle.long(0), Pickle.ints([4]), Pickle.ints([1]), Pickle.newFalse, Pickle.emptyDict,
                Pickle.global("torch", "float8_e4m3fn"),
            ]) + Pickle.reduce
            return TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("t", v3)])), storages: [("0", [0, 1, 2, 3])])
        }, { if case .unsupportedDType(_, "t", "torch.float8_e4m3fn") = $0 { true } else { false } }),
        ("a shared dict reused until it expands past the limit", {
            // d_i = {"a": d_{i-1}, "b": d_{i-1}} (the same dict twice): 2^40 values once expanded.
            func chain(_ i: Int) -> [UInt8] {
                guard i > 0 else { return Pickle.emptyDict }
                return Pickle.emptyDict + Pickle.mark + Pickle.string("a") + chain(i - 1) + Pickle.put(UInt8(i - 1))
                    + Pickle.string("b") + Pickle.get(UInt8(i - 1)) + Pickle.setItems
            }
            return TorchArchiveBuilder(pickle: Pickle.program(Pickle.dict([("meta", chain(40))])))
        }, reason("expands")),
        ("no data.pkl", {
            TorchArchiveBuilder(members: [.init(name: "archive/byteorder", data: Array("little".utf8))])
        }, reason("no '<archive>/data.pkl'")),
        ("two data.pkl", {
            var archive = TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict))
            archive.members.append(.init(name: "other/data.pkl", data: Pickle.program(Pickle.emptyDict)))
            return archive
        }, reason("several")),
        ("an encrypted member", {
            var archive = TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict))
            archive.members[0].flags = 1
            return archive
        }, reason("encrypted")),
        ("a member compressed with bzip2", {
            var archive = TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict))
            archive.members[0].method = 12
            return archive
        }, reason("method 12")),
        ("a stored member whose sizes disagree", {
            var archive = TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict))
            archive.members[0].declaredSize = 100
            return archive
        }, reason("declares 100")),
        ("a deflated member claiming an impossible size", {
            var archive = TorchArchiveBuilder(pickle: [0x03, 0x00])
            archive.members[0].method = 8
            archive.members[0].declaredSize = 1 << 30
            return archive
        }, reason("impossible")),
        ("a member that is not valid DEFLATE data", {
            var archive = TorchArchiveBuilder(pickle: [0x07, 0x00])
            archive.members[0].method = 8
            archive.members[0].declaredSize = 4
            return archive
        }, reason("not valid DEFLATE")),
        ("a byte order that is not little", {
            TorchArchiveBuilder(pickle: Pickle.program(Pickle.emptyDict), byteorder: "big")
        }, reason("little-endian")),
    ]

    static func reason(_ text: String) -> @Sendable (TensorFileError) -> Bool {
        { error in
            switch error {
            case .invalidHeader(_, let r), .truncated(_, let r), .invalidOffsets(_, _, let r): r.contains(text)
            default: false
            }
        }
    }

    @Test("malformed pickles and archives give typed errors naming the file", arguments: 0..<malformed.count)
    func refusesMalformed(_ index: Int) throws {
        let (label, make, matches) = Self.malformed[index]
        do {
            let file = try Self.open(make())
            Issue.record("\(label): accepted with \(file.tensorNames)")
        } catch let error as TensorFileError {
            #expect(matches(error), "\(label): wrong error \(error)")
            #expect(error.description.contains("crafted.pth"), "\(label): \(error)")
        }
    }

    @Test("other files are told apart from torch.save archives")
    func notArchives() throws {
        let folder = try TemporaryFolder()
        let cases: [(String, Data, String)] = [
            ("empty", Data(), "not a zip archive"),
            ("text", Data("hello, this is not a checkpoint at all".utf8), "not a zip archive"),
            ("bare pickle", Data(Pickle.program(Pickle.emptyDict)), "bare pickle"),
            ("safetensors", rawSafetensors(header: "{}", data: []), "not a zip archive"),
        ]
        for (label, bytes, expected) in cases {
            let url = folder.file("\(label).pth")
            try bytes.write(to: url)
            do {
                _ = try TorchCheckpoint(url: url)
                Issue.record("\(label): accepted")
            } catch {
                guard case .invalidHeader(let path, let reason) = error, path == url.path, reason.contains(expected) else {
                    Issue.record("\(label): wrong error \(error)")
                    continue
                }
            }
        }
        #expect(throws: TensorFileError.self) { try TorchCheckpoint(url: folder.file("absent.pth")) }
    }
}
