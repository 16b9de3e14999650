import DinoTensor
import Foundation

extension DinoConfiguration {
    /// Infers the architecture of an original Meta (or timm) checkpoint, which comes without a
    /// `config.json`, from its tensor shapes.
    ///
    /// Hidden size `C` from `cls_token` `[1, 1, C]`; blocks counted from `blocks.<i>.`; heads
    /// `C / headDimension` (every released DINOv2 uses heads of width 64); patch size and
    /// channels from `patch_embed.proj.weight` `[C, channels, P, P]`; image size `M * P` from the
    /// `M x M` grid of `pos_embed` (`[1, 1 + M*M, C]`, or `[1, M*M, C]` for timm register
    /// models); registers from `register_tokens` (timm `reg_token`); SwiGLU from `mlp.w12`
    /// (timm: `fc1` twice as wide as `fc2`); the FFN ratio from its width; the QKV bias from
    /// `attn.qkv.bias`; LayerNorm epsilon 1e-6. `model_type` is `dinov2_with_registers` with
    /// registers and `dinov2` without. Keys may share a prefix (`backbone.`), as the loader allows.
    ///
    /// - Parameters:
    ///   - file: the checkpoint's path, for error messages.
    ///   - headDimension: channels per attention head.
    public static func inferred(from source: any TensorSource, file: String, headDimension: Int = 64) throws(DinoModelError) -> DinoConfiguration {
        let names = source.tensorNames
        let anchor = "patch_embed.proj.weight"
        let anchors = names.filter { $0 == anchor || $0.hasSuffix("." + anchor) }
        guard anchors.count == 1, let anchorName = anchors.first else {
            if names.contains(where: { $0.hasSuffix("embeddings.patch_embeddings.projection.weight") }) {
                throw .unknownNaming(file: file, reason: "HF-named weights come with a config.json; load the model folder instead")
            }
            let reason = anchors.isEmpty
                ? "no '\(anchor)' tensor, so the architecture cannot be inferred; first keys: \(names.prefix(5).joined(separator: ", "))"
                : "several patch embeddings: \(anchors.joined(separator: ", "))"
            throw .unknownNaming(file: file, reason: reason)
        }
        let prefix = String(anchorName.dropLast(anchor.count))

        let reader = ShapeReader(source: source, prefix: prefix, file: file)
        let present = reader.present

        let patch = try reader.patchEmbedding(named: anchorName, anchor: anchor)
        let (c, channels, patchSize) = (patch[0], patch[1], patch[2])
        let cls = try reader.required("cls_token")
        guard cls == [1, 1, c] else { throw .shapeMismatch(key: prefix + "cls_token", file: file, expected: [1, 1, c], actual: cls) }

        let layers = try blockCount(names, prefix: prefix, file: file)
        guard headDimension > 0, c % headDimension == 0 else {
            throw reader.invalid(
                "num_attention_heads",
                "hidden size \(c) is not a multiple of the head width \(headDimension); pass a configuration or the head width")
        }

        var registers = 0
        for name in ["register_tokens", "reg_token"] {
            guard let tokens = try reader.shape(name) else { continue }
            guard tokens.count == 3, tokens[0] == 1, tokens[1] > 0, tokens[2] == c else {
                throw reader.invalid("num_register_tokens", "'\(prefix + name)' has shape \(tokens), not [1, R, \(c)]")
            }
            registers = tokens[1]
        }

        let positions = try reader.required("pos_embed")
        guard positions.count == 3, positions[0] == 1, positions[2] == c else {
            throw reader.invalid("image_size", "'\(prefix)pos_embed' has shape \(positions), not [1, positions, \(c)]")
        }
        // Meta (and timm without registers) keep a CLS row; timm register models drop it.
        guard let grid = squareRoot(positions[1] - 1) ?? squareRoot(positions[1]) else {
            throw reader.invalid("image_size", "pos_embed has \(positions[1]) positions, neither 1 + M*M nor M*M")
        }

        let (swiglu, ratio) = try feedForward(shape: reader.shape, hidden: c, prefix: prefix, file: file)
        let qkvBias = present.contains(prefix + "blocks.0.attn.qkv.bias")

        let configuration = DinoConfiguration(modelType: registers > 0 ? "dinov2_with_registers" : "dinov2") { config in
            config.hiddenSize = c
            config.numHiddenLayers = layers
            config.numAttentionHeads = c / headDimension
            config.mlpRatio = ratio
            config.useSwigluFFN = swiglu
            config.layerNormEps = 1e-6
            config.imageSize = grid * patchSize
            config.patchSize = patchSize
            config.numChannels = channels
            config.qkvBias = qkvBias
            config.numRegisterTokens = registers
        }
        try configuration.validate(path: file)
        return configuration
    }

    /// The number of blocks, checking that `blocks.<i>.` runs over `0..<count`.
    static func blockCount(_ names: [String], prefix: String, file: String) throws(DinoModelError) -> Int {
        let blockPrefix = prefix + "blocks."
        var indices = Set<Int>()
        for name in names where name.hasPrefix(blockPrefix) {
            let rest = name.dropFirst(blockPrefix.count)
            guard let dot = rest.firstIndex(of: "."), let index = Int(rest[..<dot]), index >= 0 else {
                throw .invalidConfiguration(path: file, field: "num_hidden_layers", reason: "'\(name)' has no block index")
            }
            indices.insert(index)
        }
        guard !indices.isEmpty, indices == Set(0..<indices.count) else {
            throw .invalidConfiguration(
                path: file, field: "num_hidden_layers",
                reason: indices.isEmpty ? "no '\(blockPrefix)<i>.' tensors" : "block indices \(indices.sorted()) are not 0..<\(indices.count)")
        }
        return indices.count
    }

    /// Whether the FFN is SwiGLU, and the `mlp_ratio` that reproduces its width.
    private static func feedForward(
        shape: (String) throws(DinoModelError) -> [Int]?, hidden c: Int, prefix: String, file: String
    ) throws(DinoModelError) -> (swiglu: Bool, ratio: Double) {
        let block = "blocks.0.mlp."
        if let w12 = try shape(block + "w12.weight") {
            guard w12.count == 2, w12[1] == c, w12[0] % 2 == 0, w12[0] > 0 else {
                throw .invalidConfiguration(
                    path: file, field: "use_swiglu_ffn", reason: "'\(prefix + block)w12.weight' has shape \(w12), not [2h, \(c)]")
            }
            return (true, try swigluRatio(width: w12[0] / 2, hidden: c, file: file))
        }
        guard let fc1 = try shape(block + "fc1.weight"), let fc2 = try shape(block + "fc2.weight") else {
            throw .missingTensor(key: prefix + block + "fc1.weight", file: file)
        }
        guard fc1.count == 2, fc2.count == 2, fc1[1] == c, fc2[0] == c, fc1[0] > 0, fc2[1] > 0 else {
            throw .invalidConfiguration(
                path: file, field: "mlp_ratio", reason: "FFN weights of shapes \(fc1) and \(fc2) are not [F, \(c)] and [\(c), F]")
        }
        // timm packs SwiGLU as fc1 [2h, C] (both halves) and fc2 [C, h].
        if fc1[0] == 2 * fc2[1] { return (true, try swigluRatio(width: fc2[1], hidden: c, file: file)) }
        guard fc1[0] == fc2[1] else {
            throw .shapeMismatch(key: prefix + block + "fc2.weight", file: file, expected: [c, fc1[0]], actual: fc2)
        }
        let ratio = Double(fc1[0]) / Double(c)
        guard Int(Double(c) * ratio) == fc1[0] else {
            throw .invalidConfiguration(path: file, field: "mlp_ratio", reason: "no ratio gives an FFN of width \(fc1[0]) for hidden size \(c)")
        }
        return (false, ratio)
    }

    /// The `mlp_ratio` whose SwiGLU width (two thirds of `C * ratio`, rounded up to a multiple
    /// of 8) is `width`: 4, as in ViT-g, when it fits, else the nearest ratio that does.
    private static func swigluRatio(width: Int, hidden c: Int, file: String) throws(DinoModelError) -> Double {
        func swigluWidth(_ ratio: Double) -> Int { (Int(Double(Int(Double(c) * ratio)) * 2 / 3) + 7) / 8 * 8 }
        if swigluWidth(4) == width { return 4 }
        let estimate = width * 3 / 2
        for candidate in max(1, estimate - 24)...(estimate + 24) {
            let ratio = Double(candidate) / Double(c)
            if Int(Double(c) * ratio) == candidate, swigluWidth(ratio) == width { return ratio }
        }
        throw .invalidConfiguration(path: file, field: "mlp_ratio", reason: "no ratio gives a SwiGLU width of \(width) for hidden size \(c)")
    }

    private static func squareRoot(_ n: Int) -> Int? {
        guard n > 0 else { return nil }
        let root = Int(Double(n).squareRoot().rounded())
        return root * root == n ? root : nil
    }
}

/// The shapes of a checkpoint's tensors under a key prefix, read from the header only, for
/// inferring a configuration (DINOv2 and DINOv3 files alike).
struct ShapeReader {
    let source: any TensorSource
    let prefix: String
    let file: String
    /// Every tensor name in the checkpoint.
    let present: Set<String>

    init(source: any TensorSource, prefix: String, file: String) {
        self.source = source
        self.prefix = prefix
        self.file = file
        present = Set(source.tensorNames)
    }

    /// The shape of `prefix + name`, nil when the checkpoint has no such tensor.
    func shape(_ name: String) throws(DinoModelError) -> [Int]? {
        guard present.contains(prefix + name) else { return nil }
        do { return try source.shape(of: prefix + name) } catch { throw .tensorFile(error) }
    }

    /// The shape of `prefix + name`, which must be present.
    func required(_ name: String) throws(DinoModelError) -> [Int] {
        guard let found = try shape(name) else { throw .missingTensor(key: prefix + name, file: file) }
        return found
    }

    /// An error about the inferred configuration field `field`.
    func invalid(_ field: String, _ reason: String) -> DinoModelError {
        .invalidConfiguration(path: file, field: field, reason: reason)
    }

    /// The patch embedding's `[C, channels, P, P]`, checked to be that (square patches).
    func patchEmbedding(named anchorName: String, anchor: String) throws(DinoModelError) -> [Int] {
        let patch = try required(anchor)
        guard patch.count == 4, patch[0] > 0, patch[1] > 0, patch[2] > 0, patch[2] == patch[3] else {
            throw invalid("patch_size", "'\(anchorName)' has shape \(patch), not [C, channels, P, P] with square patches")
        }
        return patch
    }
}
