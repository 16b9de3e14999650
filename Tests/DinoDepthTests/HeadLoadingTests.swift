import DinoDepth
import DinoModel
import DinoTensor
import Foundation
import Testing

/// Head files: where the depth range comes from, and strict loading.
@Suite("Depth head loading")
struct HeadLoadingTests {
    static func head(_ name: String) -> URL { Fixtures.url("heads/dinov2_vitt14_\(name)_head.safetensors") }

    /// A scratch folder removed at the end of the test.
    final class Scratch {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("depth-heads-\(UUID().uuidString)")
        init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(at: url) }
        func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    }

    /// The tensors of `head` as (name, tensor) pairs, changed by `edit`, written to `url`.
    static func rewrite(_ head: String, to url: URL, metadata: [String: String] = [:],
                        _ edit: (inout [(name: String, tensor: Tensor)]) -> Void = { _ in }) throws {
        let source = try SafetensorsFile(url: Self.head(head))
        var tensors = try source.tensorNames.map { (name: $0, tensor: try source.tensor($0)) }
        edit(&tensors)
        try SafetensorsFile.write(tensors, metadata: metadata, to: url)
    }

    @Test("the range comes from metadata, then the mmcv config beside the head, then the dataset in the file name")
    func rangeSources() throws {
        let metadata = try SafetensorsFile(url: Self.head("nyu_dpt"))
        #expect(try DepthHeadConfiguration.resolve(headURL: Self.head("nyu_dpt"), source: metadata)
                == DepthHeadConfiguration(minDepth: 0.001, maxDepth: 10, blocks: [2, 5, 8, 11], dataset: "nyu"))
        // Without metadata (as from a .pth): the released _config.py beside the head.
        let kitti = TensorSourceView(try SafetensorsFile(url: Self.head("kitti_linear4")), prefix: "")
        #expect(try DepthHeadConfiguration.resolve(headURL: Self.head("kitti_linear4"), source: kitti)
                == DepthHeadConfiguration(minDepth: 0.001, maxDepth: 80, blocks: [2, 5, 8, 11], dataset: "kitti"))
        // Neither: the dataset of the released file name.
        let nyu = TensorSourceView(try SafetensorsFile(url: Self.head("nyu_linear")), prefix: "")
        #expect(try DepthHeadConfiguration.resolve(headURL: Self.head("nyu_linear"), source: nyu)
                == DepthHeadConfiguration(minDepth: 0.001, maxDepth: 10, blocks: nil, dataset: "nyu"))
        // Overrides win over everything.
        #expect(try DepthHeadConfiguration.resolve(headURL: Self.head("nyu_dpt"), source: metadata, overrides: .init(maxDepth: 3)).maxDepth == 3)
        // Nothing at all: an error that says what to pass.
        let scratch = try Scratch()
        try Self.rewrite("nyu_linear", to: scratch.file("my_head.safetensors"))
        #expect {
            try DinoV2Depther(model: try HeadParityTests.backbone(), headFile: scratch.file("my_head.safetensors"))
        } throws: { error in
            guard case DepthError.missingDepthRange = error else { return false }
            return "\(error)".contains("--max-depth")
        }
        #expect(try DinoV2Depther(model: try HeadParityTests.backbone(), headFile: scratch.file("my_head.safetensors"),
                                  overrides: .init(maxDepth: 5)).configuration.maxDepth == 5)
    }

    @Test("the mmcv config reader takes the head's range, not the datasets'")
    func mmcvConfig() throws {
        let scratch = try Scratch()
        try Self.rewrite("nyu_linear", to: scratch.file("x_nyu_linear_head.safetensors"))
        try """
            data = dict(test=dict(type='NYUDataset', min_depth=0.001, max_depth=10))
            model = dict(
                backbone=dict(type='DinoVisionTransformer', out_indices=[7]),
                auxiliary_decode_head=dict(max_depth=99),
                decode_head=dict(
                    type='BNHead',
                    loss_decode=[dict(type='SigLoss', max_depth=1)],
                    min_depth=0.25,
                    max_depth=7.5))
            optimizer = dict(paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.1))))
            """.write(to: scratch.file("x_nyu_linear_config.py"), atomically: true, encoding: .utf8)
        let source = TensorSourceView(try SafetensorsFile(url: scratch.file("x_nyu_linear_head.safetensors")), prefix: "")
        #expect(try DepthHeadConfiguration.resolve(headURL: scratch.file("x_nyu_linear_head.safetensors"), source: source)
                == DepthHeadConfiguration(minDepth: 0.25, maxDepth: 7.5, blocks: [7], dataset: "nyu"))
    }

    @Test("loading is strict: unknown, missing and mis-shaped tensors name the key")
    func strict() throws {
        let scratch = try Scratch()
        let model = try HeadParityTests.backbone()
        func load(_ name: String) throws -> DinoV2Depther { try DinoV2Depther(model: model, headFile: scratch.file(name)) }

        try Self.rewrite("nyu_dpt", to: scratch.file("extra_nyu_dpt_head.safetensors")) { $0.append((name: "decode_head.bn.weight", tensor: Tensor(shape: [3]))) }
        #expect { try load("extra_nyu_dpt_head.safetensors") } throws: { error in
            error as? DepthError == .unexpectedTensor(key: "decode_head.bn.weight", file: scratch.file("extra_nyu_dpt_head.safetensors").path)
        }
        try Self.rewrite("nyu_dpt", to: scratch.file("missing_nyu_dpt_head.safetensors")) { $0.removeAll { $0.name == "decode_head.fusion_blocks.2.project.conv.bias" } }
        #expect { try load("missing_nyu_dpt_head.safetensors") } throws: { error in
            error as? DepthError == .missingTensor(key: "decode_head.fusion_blocks.2.project.conv.bias", file: scratch.file("missing_nyu_dpt_head.safetensors").path)
        }
        try Self.rewrite("nyu_linear", to: scratch.file("shape_nyu_linear_head.safetensors")) { tensors in
            if let i = tensors.firstIndex(where: { $0.name == "decode_head.conv_depth.bias" }) { tensors[i].tensor = Tensor(shape: [255]) }
        }
        #expect { try load("shape_nyu_linear_head.safetensors") } throws: { error in
            guard case let DepthError.shapeMismatch(key, _, expected, actual) = error else { return false }
            return key == "decode_head.conv_depth.bias" && expected == "[256]" && actual == [255]
        }
        // A head for a backbone of another width.
        try Self.rewrite("nyu_linear", to: scratch.file("wide_nyu_linear_head.safetensors")) { tensors in
            tensors = [(name: "decode_head.conv_depth.weight", tensor: Tensor(shape: [256, 48, 1, 1])), (name: "decode_head.conv_depth.bias", tensor: Tensor(shape: [256]))]
        }
        #expect { try load("wide_nyu_linear_head.safetensors") } throws: { error in
            guard case DepthError.incompatibleBackbone = error else { return false }
            return "\(error)".contains("48")
        }
        // Not a depth head at all.
        try SafetensorsFile.write([(name: "decode_head.conv_seg.weight", tensor: Tensor(shape: [2, 16, 1, 1]))], to: scratch.file("seg_nyu_linear_head.safetensors"))
        #expect { try load("seg_nyu_linear_head.safetensors") } throws: { error in
            guard case DepthError.unknownHead = error else { return false }
            return true
        }
        #expect { try load("absent_nyu_linear_head.safetensors") } throws: { "\($0)".contains("no such file") }
    }

    @Test("mmcv checkpoint roots: state_dict. is a prefix, meta. and optimizer. are not weights")
    func checkpointRoots() throws {
        let base = try SafetensorsFile(url: Self.head("nyu_linear"))
        let scratch = try Scratch()
        try Self.rewrite("nyu_linear", to: scratch.file("wrapped_nyu_linear_head.safetensors")) { tensors in
            tensors = tensors.map { (name: "state_dict." + $0.name, tensor: $0.tensor) }
            tensors.append((name: "optimizer.state.0.exp_avg", tensor: Tensor(shape: [256])))
            tensors.append((name: "meta.iter", tensor: Tensor(shape: [1])))
        }
        let depther = try DinoV2Depther(model: try HeadParityTests.backbone(), headFile: scratch.file("wrapped_nyu_linear_head.safetensors"))
        let plain = try DinoV2Depther(model: try HeadParityTests.backbone(), head: base, headURL: Self.head("nyu_linear"))
        let pixels = try Fixtures.reference("wide.pixels")
        #expect(try depther.predict(pixels) == plain.predict(pixels))
        let view = TensorSourceView(try SafetensorsFile(url: scratch.file("wrapped_nyu_linear_head.safetensors")), prefix: "state_dict.")
        #expect(Set(view.tensorNames) == ["decode_head.conv_depth.weight", "decode_head.conv_depth.bias"])
        #expect(try view.shape(of: "decode_head.conv_depth.bias") == [256])
        #expect(throws: TensorFileError.self) { try view.tensor("optimizer.state.0.exp_avg") }
    }
}

/// The released `.pth` layout (mmcv: `meta`, `state_dict.decode_head.*`, AdamW `optimizer`
/// state), read through `TorchCheckpoint`.
@Suite("Depth heads from .pth checkpoints")
struct TorchHeadTests {
    static func pth(_ name: String) -> URL { Fixtures.url("heads/dinov2_vitt14_\(name)_head.pth") }

    @Test("a .pth head predicts what its .safetensors twin and the reference predict", arguments: HeadParityTests.heads)
    func sameAsSafetensors(head: String) throws {
        let model = try HeadParityTests.backbone()
        let fromTorch = try DinoV2Depther(model: model, headFile: Self.pth(head))
        let fromSafetensors = try HeadParityTests.depther(head)
        // The same range and blocks (the lin1 .pth names no blocks: the released choice applies).
        #expect(fromTorch.configuration.minDepth == fromSafetensors.configuration.minDepth)
        #expect(fromTorch.configuration.maxDepth == fromSafetensors.configuration.maxDepth)
        #expect(fromTorch.blocks == fromSafetensors.blocks)
        let pixels = try Fixtures.reference("wide.pixels")
        let raw = try fromTorch.headOutput(pixels)
        #expect(raw == (try fromSafetensors.headOutput(pixels)))
        expectClose(raw, try Fixtures.reference("\(head).wide.head"), "\(head) wide head output from .pth")
    }

    @Test("the .pth's tensors: state_dict kept as a prefix beside optimizer state, or unwrapped")
    func layouts() throws {
        let withOptimizer = try TorchCheckpoint(url: Self.pth("nyu_linear"))
        #expect(withOptimizer.tensorNames.contains("state_dict.decode_head.conv_depth.weight"))
        #expect(withOptimizer.tensorNames.contains { $0.hasPrefix("optimizer.") })
        let unwrapped = try TorchCheckpoint(url: Self.pth("kitti_linear4"))
        #expect(Set(unwrapped.tensorNames) == ["decode_head.conv_depth.weight", "decode_head.conv_depth.bias"])
    }

    @Test("a .pth's range comes from the config text in its meta, the _config.py beside it, or its name")
    func ranges() throws {
        let scratch = try HeadLoadingTests.Scratch()
        // No dataset in the name and no _config.py: only meta.config can give the range.
        try FileManager.default.copyItem(at: Self.pth("nyu_dpt"), to: scratch.file("renamed.pth"))
        let source = try TorchCheckpoint(url: scratch.file("renamed.pth"))
        #expect(try DepthHeadConfiguration.resolve(headURL: scratch.file("renamed.pth"), source: source)
                == DepthHeadConfiguration(minDepth: 0.001, maxDepth: 10, blocks: [2, 5, 8, 11], dataset: nil))
        #expect(try DinoV2Depther(model: try HeadParityTests.backbone(), headFile: Self.pth("kitti_linear4")).configuration
                == DepthHeadConfiguration(minDepth: 0.001, maxDepth: 80, blocks: [2, 5, 8, 11], dataset: "kitti"))
        try FileManager.default.copyItem(at: Self.pth("nyu_linear"), to: scratch.file("nameless_head.pth"))
        #expect { try DinoV2Depther(model: try HeadParityTests.backbone(), headFile: scratch.file("nameless_head.pth")) } throws: { error in
            guard case DepthError.missingDepthRange = error else { return false }
            return true
        }
    }

    @Test("a file that is not a checkpoint names the file")
    func notACheckpoint() throws {
        let scratch = try HeadLoadingTests.Scratch()
        try Data("not a zip".utf8).write(to: scratch.file("broken_nyu_dpt_head.pth"))
        #expect { try DinoV2Depther(model: try HeadParityTests.backbone(), headFile: scratch.file("broken_nyu_dpt_head.pth")) } throws: { error in
            guard case DepthError.tensorFile = error else { return false }
            return "\(error)".contains("broken_nyu_dpt_head.pth")
        }
    }
}
