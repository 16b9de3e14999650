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
}
