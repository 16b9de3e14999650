import DinoTensor
import Foundation

extension DinoConfiguration {
    /// Whether a checkpoint is a facebookresearch/dinov3 state dict (its registers are
    /// `storage_tokens` and it carries the `rope_embed.periods` buffer), which has no `config.json`.
    static func isDINOv3Meta(_ source: any TensorSource) -> Bool {
        source.tensorNames.contains { $0 == "rope_embed.periods" || $0.hasSuffix(".rope_embed.periods") }
    }

    /// Infers a `dinov3_vit` configuration from a facebookresearch/dinov3 checkpoint's tensor shapes,
    /// as HF's conversion script would write it for that backbone.
    ///
    /// Hidden size `C` from `cls_token` `[1, 1, C]`; patch size and channels from
    /// `patch_embed.proj.weight`; blocks counted from `blocks.<i>.`; the head size `4n` from
    /// `rope_embed.periods` `[n]` (so no head width is assumed) and `rope_theta` from its last
    /// period (`theta^(4(n-1)/head)`; 100 when `n` is 1); registers from `storage_tokens`; SwiGLU
    /// (silu) with `intermediate_size` from `mlp.w1`, else the GELU MLP's `mlp.fc1`; query and value
    /// biases from `attn.qkv.bias`, a key bias only without `bias_mask`; projection and FFN biases
    /// from their tensors; LayerNorm epsilon 1e-5 (the released backbones' `layernormbf16`); image
    /// size 224 (there are no position embeddings). The loader then checks every tensor against it.
    public static func inferredDINOv3(from source: any TensorSource, file: String) throws(DinoModelError) -> DinoConfiguration {
        let names = source.tensorNames
        let anchor = "patch_embed.proj.weight"
        let anchors = names.filter { $0 == anchor || $0.hasSuffix("." + anchor) }
        guard anchors.count == 1, let anchorName = anchors.first, isDINOv3Meta(source) else {
            throw .unknownNaming(file: file, reason: anchors.count > 1
                ? "several patch embeddings: \(anchors.joined(separator: ", "))"
                : "not a facebookresearch/dinov3 checkpoint (needs '\(anchor)' and 'rope_embed.periods'); first keys: \(names.prefix(5).joined(separator: ", "))")
        }
        let prefix = String(anchorName.dropLast(anchor.count))
        let reader = ShapeReader(source: source, prefix: prefix, file: file)
        let present = reader.present

        let patch = try reader.patchEmbedding(named: anchorName, anchor: anchor)
        let c = patch[0]
        let cls = try reader.required("cls_token")
        guard cls == [1, 1, c] else { throw .shapeMismatch(key: prefix + "cls_token", file: file, expected: [1, 1, c], actual: cls) }

        let layers = try blockCount(names, prefix: prefix, file: file)

        let periodsKey = prefix + "rope_embed.periods"
        let periodsShape = try reader.required("rope_embed.periods")
        guard periodsShape.count == 1, periodsShape[0] > 0, c % (4 * periodsShape[0]) == 0 else {
            throw reader.invalid("num_attention_heads", "'\(periodsKey)' has shape \(periodsShape); the head size 4n must divide the hidden size \(c)")
        }
        let headDim = 4 * periodsShape[0]
        let periods: [Float]
        do { periods = try source.tensor(periodsKey).scalars } catch { throw .tensorFile(error) }
        var theta = 100.0
        if periods.count > 1 {
            // periods[j] = theta^(4j / head) (RopePositionEmbedding with `base`); the loader checks every entry.
            theta = pow(Double(periods[periods.count - 1]), Double(headDim) / Double(4 * (periods.count - 1)))
            guard theta.isFinite, theta > 1 else {
                throw reader.invalid("rope_theta", "'\(periodsKey)' ends in \(periods[periods.count - 1]), which no base > 1 gives")
            }
            // A float32 buffer gives the integer base to ~1e-6; keep the base the model was built with.
            if abs(theta - theta.rounded()) <= 1e-4 * theta { theta = theta.rounded() }
        }

        var registers = 0
        if let tokens = try reader.shape("storage_tokens") {
            guard tokens.count == 3, tokens[0] == 1, tokens[2] == c else {
                throw reader.invalid("num_register_tokens", "'\(prefix)storage_tokens' has shape \(tokens), not [1, R, \(c)]")
            }
            registers = tokens[1]
        }

        let gated = try reader.shape("blocks.0.mlp.w1.weight")
        let up: [Int]
        if let gated { up = gated } else { up = try reader.required("blocks.0.mlp.fc1.weight") }
        guard up.count == 2, up[0] > 0, up[1] == c else {
            throw reader.invalid("intermediate_size", "'\(prefix)blocks.0.mlp.\(gated == nil ? "fc1" : "w1").weight' has shape \(up), not [F, \(c)]")
        }
        let qkvBias = present.contains(prefix + "blocks.0.attn.qkv.bias")
        let keyMasked = present.contains(prefix + "blocks.0.attn.qkv.bias_mask")
        let mlpBias = present.contains(prefix + "blocks.0.mlp.\(gated == nil ? "fc1" : "w1").bias")

        let configuration = DinoConfiguration(modelType: "dinov3_vit") { config in
            config.hiddenSize = c
            config.numHiddenLayers = layers
            config.numAttentionHeads = c / headDim
            config.patchSize = patch[2]
            config.numChannels = patch[1]
            config.imageSize = 224
            config.layerNormEps = 1e-5
            config.ropeTheta = theta
            config.numRegisterTokens = registers
            config.useSwigluFFN = gated != nil
            config.hiddenAct = gated != nil ? "silu" : "gelu"
            config.intermediateSize = up[0]
            config.qkvBias = qkvBias
            (config.queryBias, config.keyBias, config.valueBias) = (qkvBias, qkvBias && !keyMasked, qkvBias)
            config.projBias = present.contains(prefix + "blocks.0.attn.proj.bias")
            config.mlpBias = mlpBias
        }
        try configuration.validate(path: file)
        return configuration
    }
}
