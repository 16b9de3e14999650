import DinoLayers
import DinoTensor
import Foundation
import Testing

/// Opening head checkpoints and reading their weights strictly, as every head does.
@Suite("Head checkpoints and strict weight reading")
struct HeadWeightsTests {
    /// A `.safetensors` in a fresh folder holding an mmcv-style head: `state_dict.decode_head.*`
    /// beside optimizer state and run metadata.
    static func checkpoint(_ tensors: [(name: String, tensor: Tensor)]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("head-weights-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("head.safetensors")
        try SafetensorsFile.write(tensors, to: url)
        return url
    }

    static let mmcv: [(name: String, tensor: Tensor)] = [
        ("state_dict.decode_head.conv.weight", Tensor(shape: [2, 3, 1, 1], scalars: [1, 2, 3, 4, 5, 6])),
        ("state_dict.decode_head.conv.bias", Tensor(shape: [2], scalars: [0.5, -0.5])),
        ("optimizer.state.0.exp_avg", Tensor(shape: [2], scalars: [0, 0])),
        ("meta.iter", Tensor(shape: [1], scalars: [7])),
    ]

    @Test("the prefix comes from the anchor; meta. and optimizer. are not weights")
    func prefixAndRoots() throws {
        let url = try Self.checkpoint(Self.mmcv)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let weights = HeadCheckpoint.weights(of: try HeadCheckpoint.open(url))
        #expect(weights.tensorNames == ["state_dict.decode_head.conv.weight", "state_dict.decode_head.conv.bias"])
        #expect(HeadCheckpoint.prefixes(of: "conv.weight", in: weights) == ["state_dict.decode_head."])
        #expect(HeadCheckpoint.prefixes(of: "onv.weight", in: weights).isEmpty)

        var reader = HeadWeights<LayerError>(source: weights, prefix: "state_dict.decode_head.")
        let conv = try reader.conv("conv", in: 3, out: nil, kernel: 1, bias: true)
        #expect(conv.outChannels == 2 && conv.bias == [0.5, -0.5])
        try reader.checkAllUsed()
    }

    @Test("missing, unexpected and mis-shaped tensors are named with their file")
    func strict() throws {
        let url = try Self.checkpoint(Self.mmcv + [("state_dict.decode_head.extra", Tensor(shape: [1], scalars: [0]))])
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let weights = HeadCheckpoint.weights(of: try HeadCheckpoint.open(url))
        var reader = HeadWeights<LayerError>(source: weights, prefix: "state_dict.decode_head.")
        #expect(throws: LayerError.missingTensor(key: "state_dict.decode_head.norm.weight", file: url.path)) {
            try reader.take("norm.weight", [3])
        }
        #expect(throws: LayerError.tensorShape(key: "state_dict.decode_head.conv.weight", file: url.path, expected: [2, 4, 1, 1],
                                               actual: [2, 3, 1, 1])) {
            try reader.conv("conv", in: 4, out: 2, kernel: 1, bias: true)
        }
        _ = try reader.conv("conv", in: 3, out: 2, kernel: 1, bias: true)
        #expect(throws: LayerError.unexpectedTensor(key: "state_dict.decode_head.extra", file: url.path)) { try reader.checkAllUsed() }
        #expect(LayerError.shapeText([2, nil, 1]) == "[2, ?, 1]")
    }

    @Test("a checkpoint opens by its extension; others and absent files are refused, naming the file")
    func extensions() throws {
        let url = try Self.checkpoint(Self.mmcv)
        let folder = url.deletingLastPathComponent()
        defer { try? FileManager.default.removeItem(at: folder) }
        let onnx = folder.appendingPathComponent("head.onnx")
        try FileManager.default.copyItem(at: url, to: onnx)
        #expect(throws: LayerError.unsupportedCheckpoint(file: onnx.path, reason: "unknown extension '.onnx'; expected .safetensors or .pth")) {
            try HeadCheckpoint.open(onnx)
        }
        let absent = folder.appendingPathComponent("absent.pth")
        #expect(throws: LayerError.tensorFile(.cannotOpen(path: absent.path, reason: "no such file"))) { try HeadCheckpoint.open(absent) }
        let notZip = folder.appendingPathComponent("broken.pth")
        try Data("not a zip".utf8).write(to: notZip)
        #expect { try HeadCheckpoint.open(notZip) } throws: { error in
            guard case LayerError.tensorFile = error else { return false }
            return "\(error)".contains("broken.pth")
        }
    }
}
