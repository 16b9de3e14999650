import DinoModel
import DinoTensor
import Foundation
import Testing

/// A scratch copy of a fixture model folder whose checkpoint or config a test edits.
final class ModelFolder {
    let url: URL
    init(copying fixture: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("dino-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: Fixtures.folder(fixture).appendingPathComponent(file), to: url.appendingPathComponent(file))
        }
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    var weightsURL: URL { url.appendingPathComponent("model.safetensors") }
    var configURL: URL { url.appendingPathComponent("config.json") }

    /// Rewrites the checkpoint after `edit` changed its tensors.
    func editTensors(_ edit: (inout [(name: String, tensor: Tensor)]) -> Void) throws {
        let file = try SafetensorsFile(url: weightsURL)
        var tensors = try file.tensorNames.map { (name: $0, tensor: try file.tensor($0)) }
        edit(&tensors)
        try SafetensorsFile.write(tensors, to: weightsURL)
    }

    /// Rewrites `config.json` after `edit` changed its fields.
    func editConfig(_ edit: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any] ?? [:]
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: configURL)
    }
}

@Suite("Checkpoint loading errors")
struct LoadingTests {
    let fixture = "reg1_nointerp"

    func loadError(_ folder: ModelFolder) -> DinoModelError? {
        do {
            _ = try VisionTransformer(directory: folder.url)
            return nil
        } catch {
            return error
        }
    }

    @Test("a missing tensor is named")
    func missingTensor() throws {
        let folder = try ModelFolder(copying: fixture)
        try folder.editTensors { $0.removeAll { $0.name == "encoder.layer.1.mlp.fc2.bias" } }
        #expect(loadError(folder) == .missingTensor(key: "encoder.layer.1.mlp.fc2.bias", file: folder.weightsURL.path))
    }

    @Test("an extra tensor is named")
    func extraTensor() throws {
        let folder = try ModelFolder(copying: fixture)
        try folder.editTensors { $0.append((name: "encoder.layer.7.norm1.weight", tensor: Tensor(shape: [32], repeating: 1))) }
        #expect(loadError(folder) == .unexpectedTensor(key: "encoder.layer.7.norm1.weight", file: folder.weightsURL.path))
    }

    @Test("a tensor of the wrong shape is named with both shapes")
    func wrongShape() throws {
        let folder = try ModelFolder(copying: fixture)
        try folder.editTensors { tensors in
            if let i = tensors.firstIndex(where: { $0.name == "embeddings.register_tokens" }) {
                tensors[i].tensor = Tensor(shape: [1, 2, 32], repeating: 0)
            }
        }
        #expect(loadError(folder) == .shapeMismatch(key: "embeddings.register_tokens", file: folder.weightsURL.path,
                                                    expected: [1, 1, 32], actual: [1, 2, 32]))
    }

    @Test("a corrupt safetensors header is reported with the file")
    func corruptHeader() throws {
        let folder = try ModelFolder(copying: fixture)
        var bytes = try Data(contentsOf: folder.weightsURL)
        bytes[12] = UInt8(ascii: "#")
        try bytes.write(to: folder.weightsURL)
        guard case .tensorFile(.invalidHeader(let path, _)) = loadError(folder) else {
            Issue.record("expected an invalid-header error, got \(String(describing: loadError(folder)))")
            return
        }
        #expect(path == folder.weightsURL.path)
    }

    @Test("a folder without weights says so")
    func noWeights() throws {
        let folder = try ModelFolder(copying: fixture)
        try FileManager.default.removeItem(at: folder.weightsURL)
        #expect(loadError(folder) == .missingWeights(directory: folder.url.path))
    }

    @Test("weights in an unknown naming are rejected")
    func unknownNaming() throws {
        let folder = try ModelFolder(copying: fixture)
        try folder.editTensors { tensors in tensors = tensors.map { (name: "model." + $0.name.replacingOccurrences(of: "embeddings", with: "embeds"), tensor: $0.tensor) } }
        guard case .unknownNaming = loadError(folder) else {
            Issue.record("expected unknownNaming, got \(String(describing: loadError(folder)))")
            return
        }
    }

    /// Bad `config.json` values, each with the field the error must name.
    static let badConfigs: [(String, @Sendable (inout [String: Any]) -> Void)] = [
        ("num_attention_heads", { $0["num_attention_heads"] = 3 }),
        ("hidden_size", { $0["hidden_size"] = 0 }),
        ("num_hidden_layers", { $0["num_hidden_layers"] = -2 }),
        ("hidden_size", { $0["hidden_size"] = "wide" }),
        ("patch_size", { $0["patch_size"] = 0 }),
        ("model_type", { $0["model_type"] = "vit" }),
        ("hidden_act", { $0["hidden_act"] = "mish" }),
        ("out_features/out_indices", { $0["out_features"] = ["stage9"]; $0["out_indices"] = nil }),
        ("out_features/out_indices", { $0["out_features"] = ["stage1"]; $0["out_indices"] = [2] }),
        ("out_features/out_indices", { $0["out_features"] = nil; $0["out_indices"] = [2, 1] }),
        ("image_size", { $0["image_size"] = [56, 28] }),
        ("num_register_tokens", { $0["num_register_tokens"] = -1 }),
        ("layer_norm_eps", { $0["layer_norm_eps"] = 0 }),
        // Found by Scripts/fuzz.sh: the FFN width overflowed Int and trapped.
        ("mlp_ratio", { $0["mlp_ratio"] = 4.8e46 }),
        ("mlp_ratio", { $0["mlp_ratio"] = 1e-9 }),
        ("mlp_ratio", { $0["hidden_size"] = 3 << 40; $0["num_attention_heads"] = 3 }),
        // Issue 22: each of these crashed the loader (an allocation of every stage name, an
        // overflowing position grid) or would allocate from the value before any weight is read.
        ("num_hidden_layers", { $0["num_hidden_layers"] = 1_000_000_000; $0["out_features"] = nil; $0["out_indices"] = nil }),
        ("image_size", { $0["image_size"] = 14 << 32 }),
        ("hidden_size", { $0["hidden_size"] = 1 << 20; $0["mlp_ratio"] = 1 }),
        ("patch_size", { $0["patch_size"] = 1 << 12; $0["image_size"] = 1 << 13 }),
        ("num_channels", { $0["num_channels"] = 1 << 20 }),
        ("num_register_tokens", { $0["num_register_tokens"] = 1 << 40 }),
    ]

    @Test("a configuration is compared with the checkpoint's sizes before any weight is read", arguments: [
        ("num_hidden_layers", 12, "embeddings.patch_embeddings.projection.weight"),
        ("image_size", 112, "embeddings.position_embeddings"),
        ("patch_size", 8, "embeddings.patch_embeddings.projection.weight"),
        ("num_channels", 1, "embeddings.patch_embeddings.projection.weight"),
    ])
    func configurationAgainstCheckpoint(field: String, value: Int, tensor: String) throws {
        let folder = try ModelFolder(copying: fixture)
        try folder.editConfig { $0[field] = value }
        switch loadError(folder) {
        case let .invalidConfiguration(path, "num_hidden_layers", reason):
            #expect(field == "num_hidden_layers" && path == folder.weightsURL.path)
            #expect(reason.contains("12 blocks, the checkpoint 2"), "\(reason)")
        case let .shapeMismatch(key, file, _, _):
            #expect(key == tensor && file == folder.weightsURL.path)
        case let error:
            Issue.record("\(field) = \(value): \(String(describing: error))")
        }
    }

    @Test("invalid configuration values name the field", arguments: 0..<badConfigs.count)
    func badConfig(_ index: Int) throws {
        let (field, edit) = Self.badConfigs[index]
        let folder = try ModelFolder(copying: fixture)
        try folder.editConfig(edit)
        let error = loadError(folder)
        guard case .invalidConfiguration(let path, let named, _) = error else {
            Issue.record("\(field): expected invalidConfiguration, got \(String(describing: error))")
            return
        }
        #expect(path == folder.configURL.path)
        #expect(named == field, "\(error?.description ?? "")")
    }

    @Test("a config.json with duplicate keys or broken JSON is rejected")
    func brokenConfig() throws {
        let folder = try ModelFolder(copying: fixture)
        try Data(#"{"hidden_size": 32, "hidden_size": 64}"#.utf8).write(to: folder.configURL)
        guard case .cannotReadConfiguration = loadError(folder) else {
            Issue.record("duplicate keys accepted")
            return
        }
        try Data("{".utf8).write(to: folder.configURL)
        guard case .cannotReadConfiguration = loadError(folder) else {
            Issue.record("broken JSON accepted")
            return
        }
    }
}

@Suite("Input checks")
struct InputTests {
    @Test("sizes that are not multiples of the patch size are refused with the sizes named")
    func notMultiple() throws {
        let model = try VisionTransformer(directory: Fixtures.folder("reg1_nointerp"))
        #expect(throws: DinoModelError.inputSizeNotMultipleOfPatch(height: 56, width: 50, patchSize: 14)) {
            try model(Tensor(shape: [1, 3, 56, 50]))
        }
        #expect(throws: DinoModelError.inputSizeNotMultipleOfPatch(height: 7, width: 14, patchSize: 14)) {
            try model(Tensor(shape: [1, 3, 7, 14]))
        }
        #expect(DinoModelError.inputSizeNotMultipleOfPatch(height: 56, width: 50, patchSize: 14).description.contains("56x50"))
    }

    @Test("wrong rank, channel count or an empty batch are refused")
    func wrongShape() throws {
        let model = try VisionTransformer(directory: Fixtures.folder("reg1_nointerp"))
        for shape in [[3, 56, 56], [1, 1, 56, 56], [0, 3, 56, 56]] {
            #expect(throws: DinoModelError.self) { try model(Tensor(shape: shape)) }
        }
    }

    @Test("a batch gives the same result as its images one by one")
    func batchConsistency() throws {
        let model = try VisionTransformer(directory: Fixtures.folder("batch2_classifier"))
        let pixels = try #require(try Fixtures.reference("batch2_classifier")["pixel_values"])
        let both = try model(pixels)
        for i in 0..<2 {
            let single = try model(Tensor.stack([pixels[i]]))
            expectClose(single.lastHiddenState, Tensor.stack([both.lastHiddenState[i]]), "image \(i)", relative: 1e-5)
            expectClose(try #require(single.logits), Tensor.stack([try #require(both.logits)[i]]), "logits \(i)", relative: 1e-5)
        }
        #expect(model.classLabels == ["cat", "dog", "bird", "fish", "horse"])
    }
}

@Suite("Backbone stage selection")
struct StageSelectionTests {
    let names = ["stem", "stage1", "stage2", "stage3"]

    @Test("features and indices align as HF aligns them")
    func aligns() throws {
        #expect(try StageSelection(stageNames: names, outFeatures: nil, outIndices: nil).outFeatures == ["stage3"])
        #expect(try StageSelection(stageNames: names, outFeatures: ["stem", "stage2"], outIndices: nil).outIndices == [0, 2])
        #expect(try StageSelection(stageNames: names, outFeatures: nil, outIndices: [1, -1]).outFeatures == ["stage1", "stage3"])
        #expect(try StageSelection(stageNames: names, outFeatures: ["stage1"], outIndices: [1]).outIndices == [1])
    }

    @Test("invalid selections are refused", arguments: [
        (["stage4"], nil), (["stage2", "stage1"], nil), (["stage1", "stage1"], nil), (nil, [4]), (nil, [2, 1]),
        (nil, [1, 1]), (["stage1"], [2]), (["stage1", "stage2"], [1]),
    ] as [([String]?, [Int]?)])
    func refuses(features: [String]?, indices: [Int]?) {
        #expect(throws: DinoModelError.self) { try StageSelection(stageNames: names, outFeatures: features, outIndices: indices) }
    }

    @Test("backbone arguments override the config, intermediate selections are checked")
    func overrides() throws {
        let model = try VisionTransformer(directory: Fixtures.folder("reg1_nointerp"))
        let backbone = try Backbone(model: model, outIndices: [0, 2], applyLayernorm: true, reshapeHiddenStates: false)
        #expect(backbone.outFeatures == ["stem", "stage2"])
        let pixels = Tensor(shape: [1, 3, 56, 56], repeating: 0.5)
        let out = try backbone(pixels)
        #expect(out.featureMaps.map(\.shape) == [[1, 18, 32], [1, 18, 32]])
        #expect(out["stage2"] != nil && out["stage1"] == nil)
        #expect(throws: DinoModelError.self) { try backbone.intermediateLayers(pixels, .last(3)) }
        #expect(throws: DinoModelError.self) { try backbone.intermediateLayers(pixels, .blocks([0, 0])) }
        #expect(throws: DinoModelError.self) { try backbone.intermediateLayers(pixels, .blocks([2])) }
    }
}

@Suite("Tiled attention")
struct TiledAttentionTests {
    @Test("many query and key tiles give the same output as the full attention matrix")
    func streamingEqualsFull() throws {
        // 34 x 34 patches + CLS + 1 register = 1158 tokens: 2 key tiles and 5 query tiles.
        let model = try VisionTransformer(directory: Fixtures.folder("reg1_nointerp"))
        let count = 3 * 476 * 476
        let pixels = Tensor(shape: [1, 3, 476, 476], scalars: (0..<count).map { Float(($0 * 7919) % 1000) / 500 - 1 })
        let streamed = try model(pixels)
        let full = try model(pixels, options: ForwardOptions(outputAttentions: true))
        #expect(streamed.lastHiddenState.shape == [1, 1158, 32])
        expectClose(streamed.lastHiddenState, full.lastHiddenState, "streaming vs full", relative: 1e-5)
    }
}
