import DinoTensor
import Foundation
import Testing

/// Checks that `actual` holds exactly `expected`: same shape, same float32 bits (NaN payloads
/// may differ only when the stored type was not float32, where the conversion makes the NaN).
func expectIdentical(_ actual: Tensor, _ expected: Tensor, _ name: String, exactNaN: Bool = true,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("\(name): shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    for i in 0..<actual.count {
        let (a, e) = (actual.scalars[i], expected.scalars[i])
        let same = a.bitPattern == e.bitPattern || (!exactNaN && a.isNaN && e.isNaN)
        if !same {
            Issue.record(
                "\(name): element \(i) is \(a) (0x\(String(a.bitPattern, radix: 16))), expected \(e) (0x\(String(e.bitPattern, radix: 16)))",
                sourceLocation: sourceLocation)
            return
        }
    }
}

@Suite("PyTorch checkpoints read natively")
struct TorchCheckpointTests {
    static let validFiles = [
        "flat_f32", "dtypes", "nested", "module_state", "views", "segmentation_head", "protocol4", "deflated", "backbone_reg4_meta",
    ]

    @Test("every valid file gives exactly the tensors torch.load gave", arguments: validFiles)
    func matchesPyTorch(_ name: String) throws {
        let checkpoint = try TorchCheckpoint(url: PthFixtures.url("\(name).pth"), root: .whole)
        let expected = try SafetensorsFile(url: PthFixtures.url("\(name).expected.safetensors"))
        #expect(checkpoint.tensorNames.count == expected.tensorNames.count)
        #expect(Set(checkpoint.tensorNames) == Set(expected.tensorNames))
        for tensorName in expected.tensorNames {
            let entry = try checkpoint.entry(tensorName)
            #expect(try checkpoint.shape(of: tensorName) == expected.shape(of: tensorName), "\(name)/\(tensorName)")
            expectIdentical(try checkpoint.tensor(tensorName), try expected.tensor(tensorName), "\(name)/\(tensorName)",
                            exactNaN: entry.dtype == "float32")
        }
        #expect(checkpoint.location(of: checkpoint.tensorNames.first ?? "") == checkpoint.path)
    }

    @Test("tensor names follow the pickle's order")
    func order() throws {
        let flat = try TorchCheckpoint(url: PthFixtures.url("flat_f32.pth"))
        #expect(flat.tensorNames == ["matrix", "cube", "vector", "scalar", "empty", "special"])
        #expect(try flat.shape(of: "scalar") == [])
        #expect(try flat.tensor("scalar") == Tensor(shape: [], scalars: [2.5]))
        #expect(try flat.tensor("empty") == Tensor(shape: [0, 3], scalars: []))
        let state = try TorchCheckpoint(url: PthFixtures.url("module_state.pth"))
        #expect(state.tensorNames == [
            "conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
            "head.weight", "head.bias",
        ])
        #expect(try state.entry("bn.num_batches_tracked").dtype == "int64")
        #expect(try state.tensor("bn.num_batches_tracked") == Tensor(shape: [], scalars: [3]))
    }

    @Test("element types are reported and converted")
    func dtypes() throws {
        let file = try TorchCheckpoint(url: PthFixtures.url("dtypes.pth"))
        let types = try file.tensorNames.map { try file.entry($0).dtype }
        #expect(types == ["float16", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool", "uint16"])
        #expect(try file.tensor("f16_special").scalars.prefix(2) == [65504, -65504])
        #expect(try file.tensor("u16").scalars == [0, 65535, 1234])
        #expect(try file.tensor("i64").scalars == [0, -1, 16_777_216, 1_099_511_627_776, -4_611_686_018_427_387_904])
    }

    @Test("strided views sharing storages are gathered as PyTorch sees them")
    func views() throws {
        let file = try TorchCheckpoint(url: PthFixtures.url("views.pth"))
        let base = try file.entry("base")
        let transposed = try file.entry("transposed")
        #expect(transposed.shape == [6, 4] && transposed.strides == [1, 6])
        #expect(transposed.storageKey == base.storageKey)
        #expect(try file.entry("rows").storageOffset == 6)
        #expect(try file.entry("columns").strides == [6, 1])
        #expect(try file.entry("stepped").strides == [12, 3])
        #expect(try file.entry("offset_vector").storageOffset == 5)
        #expect(try file.entry("expanded").strides == [1, 0])
        #expect(try file.entry("broadcast_scalar").strides == [0, 0])
        #expect(try file.entry("element").shape == [] && file.entry("element").storageOffset == 15)
        #expect(try file.tensor("element").scalars == [15.5])
        #expect(try file.tensor("stepped").scalars == [0.5, 3.5, 12.5, 15.5])
        #expect(try file.tensor("broadcast_scalar").scalars == [1.25, 1.25, 1.25, 1.25])
    }

    @Test("the released segmentation head layout: automatic root, metadata, explicit roots")
    func segmentationHead() throws {
        let url = PthFixtures.url("segmentation_head.pth")
        let head = try TorchCheckpoint(url: url)
        #expect(head.rootPath == ["state_dict"])
        #expect(head.tensorNames == [
            "decode_head.conv_seg.weight", "decode_head.conv_seg.bias", "decode_head.bn.weight", "decode_head.bn.bias",
            "decode_head.bn.running_mean", "decode_head.bn.running_var", "decode_head.bn.num_batches_tracked",
        ])
        #expect(try head.shape(of: "decode_head.conv_seg.weight") == [5, 8, 1, 1])
        #expect(try head.tensor("decode_head.bn.num_batches_tracked").scalars == [2])
        let meta = try #require(head.metadata["meta"])
        #expect(meta["CLASSES"] == .list(["wall", "building", "sky", "floor", "tree"].map { .string($0) }))
        #expect(meta["epoch"]?.intValue == 40)
        #expect(meta["PALETTE"]?.arrayValue?.first == .list([.int(120), .int(120), .int(120)]))
        #expect(meta["hook_msgs"] == .dict([]))
        #expect(meta["mmseg_version"]?.stringValue == "0.27.0")

        let whole = try TorchCheckpoint(url: url, root: .whole)
        #expect(whole.rootPath == [])
        #expect(whole.tensorNames == head.tensorNames.map { "state_dict." + $0 })
        let explicit = try TorchCheckpoint(url: url, root: .keyPath(["state_dict"]))
        #expect(explicit.tensorNames == head.tensorNames)
        #expect(try explicit.tensor("decode_head.conv_seg.bias") == whole.tensor("state_dict.decode_head.conv_seg.bias"))
        #expect(try TorchCheckpoint(url: url, root: .keyPath(["meta"])).tensorNames.isEmpty)
        #expect {
            try TorchCheckpoint(url: url, root: .keyPath(["state_dict", "nothing"]))
        } throws: { error in
            guard case TensorFileError.invalidHeader(let path, let reason) = error else { return false }
            return path == url.path && reason.contains("nothing")
        }
    }

    @Test("nested dicts and lists flatten with dots; plain values become metadata")
    func nested() throws {
        let file = try TorchCheckpoint(url: PthFixtures.url("nested.pth"))
        #expect(file.rootPath == [])
        #expect(file.tensorNames == [
            "encoder.layers.0.weight", "encoder.layers.1.weight", "encoder.norm.weight", "decoder.0", "decoder.1", "tagged",
        ])
        #expect(file.metadata["step"] == .int(7))
        #expect(file.metadata["lr"] == .double(0.001))
        #expect(file.metadata["name"] == .string("tiny"))
        #expect(file.metadata["flags"] == .list([.bool(true), .none]))
        #expect(file.metadata["history"] == .dict([
            .init(key: "loss", value: .list([.double(0.5), .double(0.25)])), .init(key: "epochs", value: .int(2)),
        ]))
    }

    @Test("pickle protocol 4 (frames, memoize, stack globals) reads, and its state_dict is unwrapped")
    func protocol4() throws {
        let file = try TorchCheckpoint(url: PthFixtures.url("protocol4.pth"))
        #expect(file.rootPath == ["state_dict"])
        #expect(file.tensorNames == ["w", "b"])
        #expect(try file.entry("b").dtype == "float16")
        #expect(file.metadata == ["epoch": .int(3), "name": .string("p4")])
    }

    @Test("an unknown tensor name is an error naming the file and the tensor")
    func missingTensor() throws {
        let url = PthFixtures.url("flat_f32.pth")
        let file = try TorchCheckpoint(url: url)
        #expect(throws: TensorFileError.missingTensor(path: url.path, tensor: "nope")) { try file.tensor("nope") }
        #expect(throws: TensorFileError.missingTensor(path: url.path, tensor: "nope")) { try file.shape(of: "nope") }
    }

    /// Hostile or malformed fixtures, each with the error it must produce.
    static let refused: [(String, @Sendable (TensorFileError) -> Bool)] = [
        ("truncated", { if case .truncated = $0 { true } else { false } }),
        ("global_os_system", { if case .rejectedPickle(_, _, let r) = $0 { r.contains("os.system") } else { false } }),
        ("unknown_opcode", { if case .rejectedPickle(_, _, let r) = $0 { r.contains("INST") } else { false } }),
        ("legacy", { if case .invalidHeader(_, let r) = $0 { r.contains("legacy") && r.contains("torch >= 1.6") } else { false } }),
        ("missing_storage", {
            if case .invalidOffsets(_, "matrix", let r) = $0 { r.contains("flat_f32/data/0") && r.contains("not in the archive") } else { false }
        }),
        ("view_too_large", { if case .invalidOffsets(_, "too_large", let r) = $0 { r.contains("holds 4 elements") } else { false } }),
        ("big_endian", { if case .invalidHeader(_, let r) = $0 { r.contains("big") && r.contains("little-endian") } else { false } }),
    ]

    @Test("hostile and malformed files are refused with a typed error naming the file", arguments: 0..<refused.count)
    func refusedFile(_ index: Int) {
        let (name, matches) = Self.refused[index]
        let url = PthFixtures.url("\(name).pth")
        do {
            let file = try TorchCheckpoint(url: url)
            Issue.record("\(name): accepted with tensors \(file.tensorNames)")
        } catch {
            #expect(matches(error), "\(name): wrong error \(error)")
            #expect(error.description.contains(url.path), "\(name): message does not name the file: \(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/dino_pwned"), "the pickle's command ran")
    }

    @Test("a corrupted storage fails its CRC-32 when read, unless checking is off")
    func checksum() throws {
        let folder = try TemporaryFolder()
        let source = PthFixtures.url("flat_f32.pth")
        var bytes = try Data(contentsOf: source)
        let matrix = try SafetensorsFile(url: PthFixtures.url("flat_f32.expected.safetensors")).tensor("matrix")
        let needle = Data(float32Bytes(Array(matrix.scalars.prefix(2))))
        let found = try #require(bytes.range(of: needle))
        bytes[found.lowerBound] ^= 0x01
        let url = folder.file("corrupt.pth")
        try bytes.write(to: url)

        let checked = try TorchCheckpoint(url: url)
        #expect(try checked.tensor("vector") == SafetensorsFile(url: PthFixtures.url("flat_f32.expected.safetensors")).tensor("vector"))
        #expect {
            try checked.tensor("matrix")
        } throws: { error in
            guard case TensorFileError.invalidHeader(let path, let reason) = error else { return false }
            return path == url.path && reason.contains("CRC-32") && reason.contains("flat_f32/data/0")
        }
        let unchecked = try TorchCheckpoint(url: url, verifyChecksums: false)
        #expect(try unchecked.tensor("matrix").scalars.dropFirst() == matrix.scalars.dropFirst())
    }

    @Test("every truncation of a checkpoint is refused without crashing")
    func truncations() throws {
        let folder = try TemporaryFolder()
        let bytes = try Data(contentsOf: PthFixtures.url("flat_f32.pth"))
        let url = folder.file("cut.pth")
        for length in stride(from: 0, to: bytes.count, by: 5) {
            try bytes.prefix(length).write(to: url)
            #expect(throws: TensorFileError.self, "cut at \(length)") { try TorchCheckpoint(url: url) }
        }
    }

    @Test("random byte changes are refused or read, never a crash", arguments: ["nested", "deflated", "views"])
    func mutations(_ name: String) throws {
        let folder = try TemporaryFolder()
        let original = try Data(contentsOf: PthFixtures.url("\(name).pth"))
        let url = folder.file("mutated.pth")
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            // xorshift64: a fixed sequence, so a failure can be replayed.
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(state >> 1)
        }
        var refused = 0
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<(1 + next() % 3) {
                bytes[next() % bytes.count] = UInt8(truncatingIfNeeded: next())
            }
            try bytes.write(to: url)
            do {
                let file = try TorchCheckpoint(url: url)
                for tensorName in file.tensorNames { _ = try? file.tensor(tensorName) }
            } catch {
                refused += 1
            }
        }
        #expect(refused > 0)
    }
}
