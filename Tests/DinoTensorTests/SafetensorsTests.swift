import DinoTensor
import Foundation
import Testing

/// A scratch folder removed when the value is released.
final class TemporaryFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("dino-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    /// Names of the files in the folder.
    var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: url.path).sorted()) ?? [] }
}

/// A safetensors file assembled by hand: `header` JSON text, then `data`.
func rawSafetensors(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
    let json = Array(header.utf8)
    var length = (declaredLength ?? UInt64(json.count)).littleEndian
    var bytes = Data(bytes: &length, count: 8)
    bytes.append(contentsOf: json)
    bytes.append(contentsOf: data)
    return bytes
}

@Suite("Safetensors reading and writing")
struct SafetensorsTests {
    @Test("write then read returns the same tensors and metadata")
    func roundTrip() throws {
        let folder = try TemporaryFolder()
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [4], scalars: [-1, 0.5, .pi, 1e-30])
        let scalar = Tensor(shape: [], scalars: [7])
        let empty = Tensor(shape: [0, 5], scalars: [])
        let url = folder.file("t.safetensors")
        try SafetensorsFile.write([("a", a), ("b", b), ("s", scalar), ("e", empty)], metadata: ["format": "pt"], to: url)
        let file = try SafetensorsFile(url: url)
        #expect(file.tensorNames == ["a", "b", "s", "e"])
        #expect(try file.tensor("a") == a)
        #expect(try file.tensor("b") == b)
        #expect(try file.tensor("s") == scalar)
        #expect(try file.tensor("e") == empty)
        #expect(file.metadata == ["format": "pt"])
        #expect(folder.contents == ["t.safetensors"], "no temporary file left behind")
    }

    @Test("F16, BF16, F64 and integer tensors are converted to float32")
    func dtypes() throws {
        let folder = try TemporaryFolder()
        // 1.0, -2.0 as F16 (0x3C00, 0xC000) and as BF16 (0x3F80, 0xC000); 3.5 as F64; 7, -8 as I64.
        var data: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x80, 0x3F, 0x00, 0xC0]
        withUnsafeBytes(of: Double(3.5).bitPattern.littleEndian) { data += $0 }
        withUnsafeBytes(of: Int64(7).littleEndian) { data += $0 }
        withUnsafeBytes(of: Int64(-8).littleEndian) { data += $0 }
        data += [1, 0]
        let header = """
            {"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},\
            "d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},"i":{"dtype":"I64","shape":[2],"data_offsets":[16,32]},\
            "m":{"dtype":"BOOL","shape":[2],"data_offsets":[32,34]}}
            """
        let url = folder.file("d.safetensors")
        try rawSafetensors(header: header, data: data).write(to: url)
        let file = try SafetensorsFile(url: url)
        #expect(try file.tensor("h").scalars == [1, -2])
        #expect(try file.tensor("b").scalars == [1, -2])
        #expect(try file.tensor("d").scalars == [3.5])
        #expect(try file.tensor("i").scalars == [7, -8])
        #expect(try file.tensor("m").scalars == [1, 0])
    }

    /// Malformed files, each with the error it must produce.
    static let malformed: [(String, Data, @Sendable (TensorFileError) -> Bool)] = [
        ("shorter than the length field", Data([1, 2, 3]), { if case .truncated = $0 { true } else { false } }),
        ("header length past the end", rawSafetensors(header: "{}", data: [], declaredLength: 1000),
         { if case .truncated = $0 { true } else { false } }),
        ("header length over the limit", rawSafetensors(header: "{}", data: [], declaredLength: 200_000_000),
         { if case .invalidHeader = $0 { true } else { false } }),
        ("header is not JSON", rawSafetensors(header: "{nope", data: []), { if case .invalidHeader = $0 { true } else { false } }),
        ("header is not an object", rawSafetensors(header: "[1, 2]", data: []), { if case .invalidHeader = $0 { true } else { false } }),
        ("duplicate tensor names", rawSafetensors(
            header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            data: [UInt8](repeating: 0, count: 8)), { if case .invalidHeader(_, let r) = $0 { r.contains("duplicate") } else { false } }),
        ("unknown dtype", rawSafetensors(header: #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
         { if case .unsupportedDType(_, "a", "Q4") = $0 { true } else { false } }),
        ("byte count does not match the shape", rawSafetensors(
            header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
         { if case .byteCountMismatch(_, "a", [2], "F32", 4) = $0 { true } else { false } }),
        ("overlapping tensors", rawSafetensors(
            header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            data: [UInt8](repeating: 0, count: 8)), { if case .invalidOffsets = $0 { true } else { false } }),
        ("a gap between tensors", rawSafetensors(
            header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
            data: [UInt8](repeating: 0, count: 12)), { if case .invalidOffsets = $0 { true } else { false } }),
        ("offsets past the end of the file", rawSafetensors(
            header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0]),
         { if case .truncated = $0 { true } else { false } }),
        ("bytes that belong to no tensor", rawSafetensors(
            header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [UInt8](repeating: 0, count: 8)),
         { if case .invalidHeader = $0 { true } else { false } }),
        ("negative dimension", rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#, data: []),
         { if case .invalidHeader = $0 { true } else { false } }),
        ("reversed offsets", rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]),
         { if case .invalidOffsets = $0 { true } else { false } }),
        ("shape overflows", rawSafetensors(
            header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
         { if case .invalidHeader = $0 { true } else { false } }),
        ("non-UTF-8 name", rawSafetensors(header: "{\"\u{FF}\":1}", data: []).replacingUTF8Byte(0xC3, 0xFF),
         { if case .invalidHeader = $0 { true } else { false } }),
        ("deeply nested metadata", rawSafetensors(
            header: "{\"__metadata__\":" + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}", data: []),
         { if case .invalidHeader = $0 { true } else { false } }),
        ("metadata value is not a string", rawSafetensors(header: #"{"__metadata__":{"k":1}}"#, data: []),
         { if case .invalidHeader = $0 { true } else { false } }),
        ("unknown entry field", rawSafetensors(
            header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}"#, data: [0, 0, 0, 0]),
         { if case .invalidHeader = $0 { true } else { false } }),
    ]

    @Test("malformed files give a typed error naming the file", arguments: 0..<malformed.count)
    func malformedFile(_ index: Int) throws {
        let (label, bytes, matches) = Self.malformed[index]
        let folder = try TemporaryFolder()
        let url = folder.file("bad.safetensors")
        try bytes.write(to: url)
        do {
            _ = try SafetensorsFile(url: url)
            Issue.record("\(label): accepted")
        } catch {
            #expect(matches(error), "\(label): wrong error \(error)")
            #expect(error.description.contains(url.path), "\(label): message does not name the file: \(error)")
        }
    }

    @Test("a missing file and a missing tensor are errors that name them")
    func missing() throws {
        let folder = try TemporaryFolder()
        #expect(throws: TensorFileError.self) { try SafetensorsFile(url: folder.file("absent.safetensors")) }
        let url = folder.file("one.safetensors")
        try SafetensorsFile.write([("a", Tensor(shape: [1], scalars: [1]))], to: url)
        let file = try SafetensorsFile(url: url)
        #expect(throws: TensorFileError.missingTensor(path: url.path, tensor: "b")) { try file.tensor("b") }
    }

    @Test("writing duplicate names fails without leaving a file")
    func duplicateWrite() throws {
        let folder = try TemporaryFolder()
        let t = Tensor(shape: [1], scalars: [1])
        #expect(throws: TensorFileError.self) { try SafetensorsFile.write([("a", t), ("a", t)], to: folder.file("x.safetensors")) }
        #expect(folder.contents.isEmpty)
    }

    @Test("writing into a missing folder fails with an error naming the file")
    func unwritable() throws {
        let folder = try TemporaryFolder()
        let target = folder.file("no/such/dir/x.safetensors")
        do {
            try SafetensorsFile.write([("a", Tensor(shape: [1], scalars: [1]))], to: target)
            Issue.record("write into a missing folder succeeded")
        } catch {
            #expect(error.description.contains(target.path))
        }
    }
}

@Suite("Sharded safetensors")
struct ShardedTests {
    func writeIndex(_ folder: TemporaryFolder, _ map: [(String, String)]) throws -> URL {
        let entries = map.map { "\"\($0.0)\": \"\($0.1)\"" }.joined(separator: ", ")
        let url = folder.file("model.safetensors.index.json")
        try Data("{\"metadata\": {\"total_size\": 0}, \"weight_map\": {\(entries)}}".utf8).write(to: url)
        return url
    }

    @Test("tensors are read from the shard the index names")
    func reads() throws {
        let folder = try TemporaryFolder()
        try SafetensorsFile.write([("a", Tensor(shape: [1], scalars: [1]))], to: folder.file("s1.safetensors"))
        try SafetensorsFile.write([("b", Tensor(shape: [2], scalars: [2, 3]))], to: folder.file("s2.safetensors"))
        let index = try writeIndex(folder, [("a", "s1.safetensors"), ("b", "s2.safetensors")])
        let sharded = try ShardedSafetensors(indexURL: index)
        #expect(Set(sharded.tensorNames) == ["a", "b"])
        #expect(try sharded.tensor("b").scalars == [2, 3])
        #expect(sharded.location(of: "b").hasSuffix("s2.safetensors"))
    }

    @Test("inconsistent indexes are rejected")
    func inconsistent() throws {
        let folder = try TemporaryFolder()
        try SafetensorsFile.write([("a", Tensor(shape: [1], scalars: [1])), ("x", Tensor(shape: [1], scalars: [1]))],
                                  to: folder.file("s1.safetensors"))
        // `x` is in the shard but not in the index.
        #expect(throws: TensorFileError.self) { try ShardedSafetensors(indexURL: try writeIndex(folder, [("a", "s1.safetensors")])) }
        // `b` is in the index but not in its shard.
        #expect(throws: TensorFileError.self) {
            try ShardedSafetensors(indexURL: try writeIndex(folder, [("a", "s1.safetensors"), ("x", "s1.safetensors"), ("b", "s1.safetensors")]))
        }
        // A shard outside the folder.
        #expect(throws: TensorFileError.self) { try ShardedSafetensors(indexURL: try writeIndex(folder, [("a", "../s1.safetensors")])) }
        // A missing shard file.
        #expect(throws: TensorFileError.self) { try ShardedSafetensors(indexURL: try writeIndex(folder, [("a", "gone.safetensors")])) }
    }
}

extension Data {
    /// A copy with every `from` byte replaced by `to`, to make invalid UTF-8.
    func replacingUTF8Byte(_ from: UInt8, _ to: UInt8) -> Data { Data(map { $0 == from ? to : $0 }) }
}
