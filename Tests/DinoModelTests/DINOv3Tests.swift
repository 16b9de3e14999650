import DinoModel
import DinoTensor
import Foundation
import Testing

/// DINOv3 ViT specifics: the rotary tables, the configuration and the checkpoint checks. The
/// forward passes are in `ParityTests` (the `dinov3_*` cases, from Scripts/make_dinov3_fixtures.py).
@Suite("DINOv3 ViT")
struct DINOv3Tests {
    static let grids = [(1, 1), (1, 7), (2, 3), (5, 5), (13, 20), (14, 14), (16, 16), (37, 23)]

    @Test("RoPE cos / sin tables equal the reference's on 8 grids and 2 head sizes", arguments: [16, 32])
    func ropeTables(headDim: Int) throws {
        let reader = try SafetensorsFile(url: Fixtures.folder("dinov3_rope").appendingPathComponent("rope.safetensors"))
        for (rows, columns) in Self.grids {
            let table = RotaryPositions(theta: 100, headDim: headDim, gridHeight: rows, gridWidth: columns)
            let name = "\(headDim).\(rows)x\(columns)"
            expectClose(Tensor(shape: [rows * columns, headDim], scalars: table.cos), try reader.tensor("cos.\(name)"), "cos.\(name)", relative: 1e-6)
            expectClose(Tensor(shape: [rows * columns, headDim], scalars: table.sin), try reader.tensor("sin.\(name)"), "sin.\(name)", relative: 1e-6)
        }
    }

    @Test("a dinov3_vit config.json takes DINOv3ViTConfig's defaults and its own field names")
    func configuration() throws {
        let defaults = try DinoConfiguration.decode(Data(#"{"model_type": "dinov3_vit"}"#.utf8), path: "config.json")
        #expect(defaults.isDINOv3 && defaults.hiddenSize == 384 && defaults.numAttentionHeads == 6 && defaults.patchSize == 16)
        #expect(defaults.ffnHiddenSize == 1536 && defaults.ropeTheta == 100 && defaults.layerNormEps == 1e-5)
        #expect(defaults.queryBias && !defaults.keyBias && defaults.valueBias && defaults.numRegisterTokens == 0)
        let gated = try DinoConfiguration.decode(Data(#"{"model_type": "dinov3_vit", "use_gated_mlp": true, "hidden_act": "silu", "intermediate_size": 1024, "query_bias": false}"#.utf8), path: "config.json")
        #expect(gated.useSwigluFFN && gated.ffnHiddenSize == 1024 && !gated.queryBias)
        let v2 = try DinoConfiguration.decode(Data(#"{"model_type": "dinov2", "qkv_bias": false}"#.utf8), path: "config.json")
        #expect(!v2.isDINOv3 && v2.ropeTheta == nil && !v2.queryBias && !v2.keyBias && !v2.valueBias)
    }

    @Test("configurations the model cannot run are errors naming the field", arguments: [
        (#"{"model_type": "dinov3_vit", "use_gated_mlp": true, "hidden_act": "gelu"}"#, "hidden_act"),
        (#"{"model_type": "dinov3_vit", "rope_theta": -1}"#, "rope_theta"),
        (#"{"model_type": "dinov3_vit", "hidden_size": 60, "num_attention_heads": 6}"#, "num_attention_heads"),
        (#"{"model_type": "dinov3_vit", "intermediate_size": 0}"#, "intermediate_size"),
    ])
    func invalidConfiguration(json: String, field: String) {
        #expect {
            try DinoConfiguration.decode(Data(json.utf8), path: "config.json")
        } throws: { error in
            guard case let .invalidConfiguration(_, actual, _) = error as? DinoModelError else { return false }
            return actual == field
        }
    }

    @Test("DINOv2 weights under a dinov3_vit configuration are refused, naming the tensor it looked for")
    func wrongFamily() throws {
        let folder = Fixtures.folder("reg4_downsample")
        var configuration = try DinoConfiguration.load(from: folder.appendingPathComponent("config.json"))
        configuration.modelType = "dinov3_vit"
        configuration.ropeTheta = 100
        configuration.intermediateSize = configuration.ffnHiddenSize
        let weights = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        #expect {
            try VisionTransformer(configuration: configuration, weights: weights)
        } throws: { error in
            "\(error)".contains("embeddings.patch_embeddings.weight")
        }
    }

    // MARK: - Meta and timm checkpoints

    /// The Meta twin of `dinov3_reg4` with some tensors replaced or left out.
    static func patchedMeta(_ replacements: [String: Tensor] = [:], without: Set<String> = [],
                            configure: (inout DinoConfiguration) -> Void = { _ in }) throws -> (DinoConfiguration, any TensorSource) {
        let folder = Fixtures.folder("dinov3_reg4_meta")
        var configuration = try DinoConfiguration.load(from: folder.appendingPathComponent("config.json"))
        configure(&configuration)
        let file = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        return (configuration, Patched(file: file, replacements: replacements, without: without))
    }

    @Test("the Meta fixture's key bias is not zero, so parity depends on its bias_mask")
    func maskedKeyBiasIsNonZero() throws {
        let file = try SafetensorsFile(url: Fixtures.folder("dinov3_reg4_meta").appendingPathComponent("model.safetensors"))
        let bias = try file.tensor("blocks.0.attn.qkv.bias").scalars
        let c = bias.count / 3
        #expect(bias[c..<2 * c].contains { abs($0) > 0.1 })
    }

    @Test("a bias_mask that does not mask exactly the key third is refused, naming the tensor", arguments: [
        ("a key entry kept", 32 + 5, Float(1)),
        ("a query entry masked", 3, Float(0)),
        ("a value entry scaled", 64 + 31, Float(0.5)),
        ("an uninitialised (NaN) entry", 40, Float.nan),
    ])
    func badKeyBiasMask(_ what: String, index: Int, value: Float) throws {
        let key = "blocks.1.attn.qkv.bias_mask"
        var mask = [Float](repeating: 1, count: 96)
        for j in 32..<64 { mask[j] = 0 }
        mask[index] = value
        let (configuration, source) = try Self.patchedMeta([key: Tensor(shape: [96], scalars: mask)])
        do {
            _ = try VisionTransformer(configuration: configuration, weights: source)
            Issue.record("\(what): the mask was accepted")
        } catch {
            guard case let .invalidConfiguration(_, field, reason) = error else {
                Issue.record("\(what): \(error)")
                return
            }
            #expect(field == "key_bias" && reason.contains(key) && reason.contains("[\(index)]"), "\(what): \(reason)")
        }
    }

    @Test("a Meta checkpoint without bias_mask needs key_bias, as the unmasked bias applies to the key")
    func missingKeyBiasMask() throws {
        let (configuration, source) = try Self.patchedMeta(without: ["blocks.0.attn.qkv.bias_mask"])
        #expect {
            try VisionTransformer(configuration: configuration, weights: source)
        } throws: { error in
            guard case let .missingTensor(key, _) = error as? DinoModelError else { return false }
            return key == "blocks.0.attn.qkv.bias_mask"
        }
    }

    @Test("rope_embed.periods that rope_theta does not give are refused; the training-only local_cls_norm is dropped")
    func ropePeriods() throws {
        let (configuration, source) = try Self.patchedMeta { $0.ropeTheta = 10 }
        #expect {
            try VisionTransformer(configuration: configuration, weights: source)
        } throws: { error in
            guard case let .invalidConfiguration(_, field, reason) = error as? DinoModelError else { return false }
            return field == "rope_theta" && reason.contains("rope_embed.periods")
        }
        // A head count that changes the head size changes the periods' length.
        let (heads, headSource) = try Self.patchedMeta { $0.numAttentionHeads = 4 }
        #expect {
            try VisionTransformer(configuration: heads, weights: headSource)
        } throws: { error in
            guard case let .shapeMismatch(key, _, expected, _) = error as? DinoModelError else { return false }
            return key == "rope_embed.periods" && expected == [2]
        }
        let (plain, plainSource) = try Self.patchedMeta(without: ["local_cls_norm.weight", "local_cls_norm.bias"])
        #expect(try VisionTransformer(configuration: plain, weights: plainSource).naming == .meta)
    }

    @Test("bias flags a naming cannot hold are errors naming the field", arguments: [
        ("dinov3_reg4_timm", "key_bias"), ("dinov3_reg4_meta", "value_bias"),
    ])
    func inexpressibleBiasFlags(_ name: String, field: String) throws {
        let folder = Fixtures.folder(name)
        var configuration = try DinoConfiguration.load(from: folder.appendingPathComponent("config.json"))
        if field == "key_bias" { configuration.keyBias = true } else { configuration.valueBias = false }
        let weights = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        #expect {
            try VisionTransformer(configuration: configuration, weights: weights)
        } throws: { error in
            guard case let .invalidConfiguration(_, actual, _) = error as? DinoModelError else { return false }
            return actual == field
        }
    }

    @Test("a facebookresearch/dinov3 checkpoint's configuration is inferred from its shapes", arguments: ["dinov3_reg4_meta", "dinov3_swiglu_meta"])
    func inferredFromMeta(_ name: String) throws {
        let folder = Fixtures.folder(name)
        let expected = try DinoConfiguration.load(from: folder.appendingPathComponent("config.json"))
        let weights = try SafetensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        let inferred = try DinoConfiguration.inferredDINOv3(from: weights, file: name)
        #expect(inferred.isDINOv3 && inferred.hiddenSize == expected.hiddenSize && inferred.numHiddenLayers == expected.numHiddenLayers)
        #expect(inferred.numAttentionHeads == expected.numAttentionHeads && inferred.ffnHiddenSize == expected.ffnHiddenSize)
        #expect(inferred.useSwigluFFN == expected.useSwigluFFN && inferred.hiddenAct == expected.hiddenAct)
        #expect(inferred.numRegisterTokens == expected.numRegisterTokens && inferred.ropeTheta == expected.ropeTheta)
        #expect(inferred.layerNormEps == expected.layerNormEps && inferred.patchSize == expected.patchSize)
        #expect([inferred.queryBias, inferred.keyBias, inferred.valueBias, inferred.projBias, inferred.mlpBias]
            == [expected.queryBias, expected.keyBias, expected.valueBias, expected.projBias, expected.mlpBias])
        // A bare file, without config.json, takes the same path.
        let model = try VisionTransformer(checkpoint: folder.appendingPathComponent("model.safetensors"))
        #expect(model.naming == .meta && model.configuration.isDINOv3)
        let reference = try Fixtures.reference(name)
        let output = try model(try #require(reference["pixel_values"]))
        expectClose(output.lastHiddenState, try #require(reference["last_hidden_state"]), "last_hidden_state")
    }

    @Test("inference refuses checkpoints that are not facebookresearch/dinov3 state dicts", arguments: ["dinov3_reg4", "dinov3_reg4_timm", "reg4_meta"])
    func inferenceNeedsMetaDINOv3(_ name: String) throws {
        let weights = try SafetensorsFile(url: Fixtures.folder(name).appendingPathComponent("model.safetensors"))
        #expect {
            try DinoConfiguration.inferredDINOv3(from: weights, file: name)
        } throws: { error in
            guard case .unknownNaming = error as? DinoModelError else { return false }
            return true
        }
    }
}

/// A safetensors file with some tensors replaced or hidden.
private struct Patched: TensorSource {
    let file: SafetensorsFile
    let replacements: [String: Tensor]
    let without: Set<String>
    var tensorNames: [String] { file.tensorNames.filter { !without.contains($0) } }
    func shape(of name: String) throws(TensorFileError) -> [Int] {
        if let replaced = replacements[name] { return replaced.shape }
        return try file.shape(of: name)
    }
    func tensor(_ name: String) throws(TensorFileError) -> Tensor {
        if let replaced = replacements[name] { return replaced }
        return try file.tensor(name)
    }
    func location(of name: String) -> String { file.path }
}
