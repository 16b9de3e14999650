import DinoTensor
import Foundation

/// The tensor naming of a checkpoint.
public enum CheckpointNaming: String, Sendable, Equatable {
    /// HF transformers (`embeddings.patch_embeddings.projection.weight`, separate q/k/v; DINOv3:
    /// `embeddings.patch_embeddings.weight`, `layer.<i>.attention.{q,k,v,o}_proj`).
    case huggingFace
    /// facebookresearch/dinov2 (`patch_embed.proj.weight`, fused `attn.qkv`, `register_tokens`);
    /// facebookresearch/dinov3 (`storage_tokens`, `attn.qkv.bias_mask`, `rope_embed.periods`).
    case meta
    /// timm (`reg_token`; for register models `pos_embed` has no CLS row and the CLS position is
    /// folded into `cls_token`; DINOv3 as timm's Eva: `gamma_1`, `attn.q_bias` / `attn.v_bias`).
    case timm
}

/// Maps a checkpoint in any supported naming to `ModelWeights`. The one place that knows the
/// PyTorch key names; loading is strict: every tensor the model needs must be present with the
/// expected shape, and every tensor present must be used.
struct CheckpointLoader {
    let source: any TensorSource
    let configuration: DinoConfiguration
    /// Pack GEMM weights as they are read (for the AVX2 and AVX-512 kernels), so loading never holds both
    /// layouts of the whole model at once.
    let pack: Bool
    /// bf16 rounds and packs every GEMM weight as it is read, whatever `pack` says.
    let precision: WeightPrecision
    /// The panels bf16 weights are packed in, as the model chose them (no default: `.automatic` is
    /// resolved by `VisionTransformer`, the only caller).
    let bf16Products: BFloat16Products
    private let names: Set<String>
    private var used = Set<String>()
    private var prefix = ""

    init(source: any TensorSource, configuration: DinoConfiguration, pack: Bool, precision: WeightPrecision = .fp32,
         bf16Products: BFloat16Products) {
        self.source = source
        self.configuration = configuration
        self.pack = pack
        self.precision = precision
        self.bf16Products = bf16Products
        self.names = Set(source.tensorNames)
    }

    /// Reads all weights and reports the naming found.
    static func load(source: any TensorSource, configuration: DinoConfiguration, pack: Bool,
                     precision: WeightPrecision = .fp32,
                     bf16Products: BFloat16Products) throws(DinoModelError) -> (ModelWeights, CheckpointNaming) {
        var loader = CheckpointLoader(source: source, configuration: configuration, pack: pack, precision: precision,
                                      bf16Products: bf16Products)
        let naming = try loader.detectNaming()
        try loader.checkSizes(naming: naming)
        let weights: ModelWeights
        switch naming {
        case .huggingFace where configuration.isDINOv3: weights = try loader.loadDINOv3HuggingFace()
        case .huggingFace: weights = try loader.loadHuggingFace()
        case .meta where configuration.isDINOv3, .timm where configuration.isDINOv3:
            weights = try loader.loadDINOv3Original(naming: naming)
        case .meta, .timm: weights = try loader.loadOriginal(naming: naming)
        }
        try loader.checkAllUsed()
        return (weights, naming)
    }

    // MARK: - Naming detection

    private mutating func detectNaming() throws(DinoModelError) -> CheckpointNaming {
        let ordered = source.tensorNames
        // The two families' HF checkpoints differ in where the patch convolution sits.
        let hfAnchor = configuration.isDINOv3 ? Self.dinov3PatchEmbedding : "embeddings.patch_embeddings.projection.weight"
        let originalAnchor = "patch_embed.proj.weight"
        let hf = ordered.filter { $0 == hfAnchor || $0.hasSuffix("." + hfAnchor) }
        let original = ordered.filter { $0 == originalAnchor || $0.hasSuffix("." + originalAnchor) }
        let file = source.location(of: ordered.first ?? "")
        if hf.count + original.count > 1 {
            throw .unknownNaming(file: file, reason: "several patch embeddings: \((hf + original).joined(separator: ", "))")
        }
        if let anchor = hf.first {
            prefix = String(anchor.dropLast(hfAnchor.count))
            return .huggingFace
        }
        if let anchor = original.first {
            prefix = String(anchor.dropLast(originalAnchor.count))
            if configuration.isDINOv3 {
                // timm's Eva renames the registers and layer scales and keeps no buffers; Meta's model
                // always carries the mask token and the RoPE periods.
                if ["reg_token", "blocks.0.gamma_1", "blocks.0.attn.q_bias"].contains(where: { has($0) }) { return .timm }
                if ["storage_tokens", "mask_token", "rope_embed.periods", "blocks.0.ls1.gamma"].contains(where: { has($0) }) { return .meta }
                return .timm
            }
            if names.contains(prefix + "reg_token") { return .timm }
            if names.contains(prefix + "register_tokens") || names.contains(prefix + "mask_token") { return .meta }
            // Without registers timm and Meta differ only by the mask token; both keep the CLS row.
            return .timm
        }
        let sample = ordered.prefix(5).joined(separator: ", ")
        let family = configuration.isDINOv3 ? "a dinov3_vit configuration, but no '\(hfAnchor)' (HF DINOv3)" : "no '\(hfAnchor)' (HF)"
        throw .unknownNaming(file: file, reason: "\(family) or '\(originalAnchor)' (Meta/timm) tensor; first keys: \(sample)")
    }

    /// Compares the configuration's sizes with the checkpoint's before any tensor is read, so a
    /// configuration that does not describe these weights fails without allocating from it: the
    /// patch embedding (width, channels, patch), the position grid (image size) and the last block.
    private func checkSizes(naming: CheckpointNaming) throws(DinoModelError) {
        if configuration.isDINOv3 {
            let patch = naming == .huggingFace ? Self.dinov3PatchEmbedding : "patch_embed.proj.weight"
            try expectShape(patch, [patchShape])
            return try expectLastBlock(blockPrefix: prefix + (naming == .huggingFace ? "layer." : "blocks."), patch: patch)
        }
        let huggingFace = naming == .huggingFace
        let patch = huggingFace ? "embeddings.patch_embeddings.projection.weight" : "patch_embed.proj.weight"
        try expectShape(patch, [patchShape])
        let position = huggingFace ? "embeddings.position_embeddings" : "pos_embed"
        let c = configuration.hiddenSize
        // timm drops the CLS row of pos_embed.
        try expectShape(position, huggingFace ? [[1, 1 + gridPositions, c]] : [[1, 1 + gridPositions, c], [1, gridPositions, c]])
        try expectLastBlock(blockPrefix: prefix + (huggingFace ? "encoder.layer." : "blocks."), patch: patch)
    }

    /// Throws unless the checkpoint has the configuration's last block under `blockPrefix`.
    private func expectLastBlock(blockPrefix: String, patch: String) throws(DinoModelError) {
        let blocks = Set(names.compactMap { name in
            name.hasPrefix(blockPrefix) ? Int(name.dropFirst(blockPrefix.count).prefix { $0 != "." }) : nil
        })
        let layers = configuration.numHiddenLayers
        guard blocks.contains(layers - 1) else {
            throw .invalidConfiguration(path: location(prefix + patch), field: "num_hidden_layers",
                                        reason: "the configuration has \(layers) blocks, the checkpoint \(blocks.count) (no '\(blockPrefix)\(layers - 1).*' tensor)")
        }
    }

    /// Throws unless `prefix + name` (`name` when `absolute`) is present with one of `shapes`
    /// (read from the header only).
    private func expectShape(_ name: String, _ shapes: [[Int]], absolute: Bool = false) throws(DinoModelError) {
        let key = absolute ? name : prefix + name
        guard names.contains(key) else { throw .missingTensor(key: key, file: location(key)) }
        let actual: [Int]
        do { actual = try source.shape(of: key) } catch { throw .tensorFile(error) }
        guard shapes.contains(actual) else { throw .shapeMismatch(key: key, file: location(key), expected: shapes[0], actual: actual) }
    }

    // MARK: - Tensor access

    private func location(_ key: String) -> String { source.location(of: key) }

    /// Reads `prefix + name`, checks its shape and marks it used.
    private mutating func take(_ name: String, _ shape: [Int], absolute: Bool = false) throws(DinoModelError) -> [Float] {
        let key = absolute ? name : prefix + name
        try expectShape(name, [shape], absolute: absolute)
        used.insert(key)
        do {
            return try source.tensor(key).scalars
        } catch {
            throw .tensorFile(error)
        }
    }

    private func has(_ name: String) -> Bool { names.contains(prefix + name) }

    private func shapeOf(_ name: String) -> [Int]? { try? source.shape(of: prefix + name) }

    private mutating func linear(_ name: String, out: Int, in inFeatures: Int, bias: Bool = true) throws(DinoModelError) -> LinearWeights {
        LinearWeights(
            weight: try take(name + ".weight", [out, inFeatures]),
            bias: bias ? try take(name + ".bias", [out]) : nil,
            outFeatures: out, inFeatures: inFeatures)
    }

    /// `layer` packed for the GEMM kernel when the loader packs or rounds to bf16.
    private func gemm(_ layer: LinearWeights) -> LinearWeights {
        precision == .bf16 || pack ? layer.packedForGEMM(precision, products: bf16Products) : layer
    }

    private mutating func layerNorm(_ name: String) throws(DinoModelError) -> LayerNormWeights {
        let c = configuration.hiddenSize
        return LayerNormWeights(weight: try take(name + ".weight", [c]), bias: try take(name + ".bias", [c]))
    }

    private mutating func checkAllUsed() throws(DinoModelError) {
        if let extra = source.tensorNames.first(where: { !used.contains($0) }) {
            throw .unexpectedTensor(key: extra, file: location(extra))
        }
    }

    private var patchShape: [Int] {
        [configuration.hiddenSize, configuration.numChannels, configuration.patchSize, configuration.patchSize]
    }

    private var patchColumns: Int { configuration.numChannels * configuration.patchSize * configuration.patchSize }

    /// `M * M` (a validated configuration's grid is at most `Limits.imageSize` a side, so this cannot overflow).
    private var gridPositions: Int { configuration.positionGridSize * configuration.positionGridSize }

    /// The classification head sits outside the backbone prefix in HF checkpoints.
    private mutating func classifier() throws(DinoModelError) -> LinearWeights? {
        guard names.contains("classifier.weight") else { return nil }
        let c = configuration.hiddenSize
        let labels: Int
        if let classNames = configuration.id2label, !classNames.isEmpty {
            labels = classNames.count
        } else {
            labels = (try? source.shape(of: "classifier.weight"))?.first ?? 0
        }
        return LinearWeights(
            weight: try take("classifier.weight", [labels, 2 * c], absolute: true),
            bias: try take("classifier.bias", [labels], absolute: true),
            outFeatures: labels, inFeatures: 2 * c)
    }

    /// The FFN of one block: SwiGLU from the packed `(in, out)` layers when the configuration
    /// asks for it, else the MLP `<mlp>.fc1` / `<mlp>.fc2`.
    private mutating func feedForward(swiglu names: (String, String), mlp: String) throws(DinoModelError) -> FeedForwardWeights {
        let (c, f) = (configuration.hiddenSize, configuration.ffnHiddenSize)
        if configuration.useSwigluFFN {
            return .swiglu(weightsIn: gemm(try linear(names.0, out: 2 * f, in: c)), weightsOut: gemm(try linear(names.1, out: c, in: f)))
        }
        return .mlp(fc1: gemm(try linear(mlp + ".fc1", out: f, in: c)), fc2: gemm(try linear(mlp + ".fc2", out: c, in: f)))
    }

    /// Separate query, key and value layers fused into the one `[3C, C]` projection the kernel
    /// takes; a layer without bias contributes zeros (which add nothing) when another has one.
    private func fusedQKV(_ q: LinearWeights, _ k: LinearWeights, _ v: LinearWeights) -> LinearWeights {
        let zeros = [Float](repeating: 0, count: q.outFeatures)
        let anyBias = q.bias != nil || k.bias != nil || v.bias != nil
        return gemm(LinearWeights(
            weight: q.weight + k.weight + v.weight,
            bias: anyBias ? (q.bias ?? zeros) + (k.bias ?? zeros) + (v.bias ?? zeros) : nil,
            outFeatures: q.outFeatures + k.outFeatures + v.outFeatures, inFeatures: q.inFeatures))
    }

    /// DINOv3's FFN from separate layers: SwiGLU when the configuration is gated (the kernel takes
    /// `[gate; up]` and computes silu(gate) * up), else the MLP `up` -> activation -> `down`.
    private mutating func dinov3FeedForward(gate: String, up: String, down: String) throws(DinoModelError) -> FeedForwardWeights {
        let (c, f, bias) = (configuration.hiddenSize, configuration.ffnHiddenSize, configuration.mlpBias)
        guard configuration.useSwigluFFN else {
            return .mlp(fc1: gemm(try linear(up, out: f, in: c, bias: bias)), fc2: gemm(try linear(down, out: c, in: f, bias: bias)))
        }
        let gateLayer = try linear(gate, out: f, in: c, bias: bias)
        let upLayer = try linear(up, out: f, in: c, bias: bias)
        return .swiglu(
            weightsIn: gemm(LinearWeights(weight: gateLayer.weight + upLayer.weight,
                                          bias: bias ? (gateLayer.bias ?? []) + (upLayer.bias ?? []) : nil, outFeatures: 2 * f, inFeatures: c)),
            weightsOut: gemm(try linear(down, out: c, in: f, bias: bias)))
    }

    // MARK: - HF transformers

    private mutating func loadHuggingFace() throws(DinoModelError) -> ModelWeights {
        let c = configuration.hiddenSize
        let r = configuration.numRegisterTokens
        var blocks: [BlockWeights] = []
        for i in 0..<configuration.numHiddenLayers {
            let layer = "encoder.layer.\(i)."
            let q = try linear(layer + "attention.attention.query", out: c, in: c, bias: configuration.qkvBias)
            let k = try linear(layer + "attention.attention.key", out: c, in: c, bias: configuration.qkvBias)
            let v = try linear(layer + "attention.attention.value", out: c, in: c, bias: configuration.qkvBias)
            let feedForward = try feedForward(swiglu: (layer + "mlp.weights_in", layer + "mlp.weights_out"), mlp: layer + "mlp")
            blocks.append(BlockWeights(
                norm1: try layerNorm(layer + "norm1"),
                qkv: fusedQKV(q, k, v),
                projection: gemm(try linear(layer + "attention.output.dense", out: c, in: c)),
                layerScale1: try take(layer + "layer_scale1.lambda1", [c]),
                norm2: try layerNorm(layer + "norm2"),
                feedForward: feedForward,
                layerScale2: try take(layer + "layer_scale2.lambda1", [c])))
        }
        // The plain Dinov2Config may disable the mask token (use_mask_token = false).
        let maskToken = has("embeddings.mask_token") ? try take("embeddings.mask_token", [1, c]) : nil
        return ModelWeights(
            patchEmbedding: gemm(LinearWeights(
                weight: try take("embeddings.patch_embeddings.projection.weight", patchShape),
                bias: try take("embeddings.patch_embeddings.projection.bias", [c]),
                outFeatures: c, inFeatures: patchColumns)),
            clsToken: try take("embeddings.cls_token", [1, 1, c]),
            maskToken: maskToken,
            registerTokens: r > 0 ? try take("embeddings.register_tokens", [1, r, c]) : [],
            positionEmbeddings: try take("embeddings.position_embeddings", [1, 1 + gridPositions, c]),
            blocks: blocks,
            norm: try layerNorm("layernorm"),
            classifier: try classifier())
    }

    // MARK: - HF transformers, DINOv3

    /// The anchor of an HF DINOv3 checkpoint (the convolution sits directly under `patch_embeddings`).
    static let dinov3PatchEmbedding = "embeddings.patch_embeddings.weight"

    /// ref: HF DINOv3ViTModel as `save_pretrained` writes it: `layer.<i>.attention.{q,k,v,o}_proj`,
    /// `mlp.{up,down}_proj` (plus `gate_proj` when gated), `norm`; no position embeddings.
    private mutating func loadDINOv3HuggingFace() throws(DinoModelError) -> ModelWeights {
        let cfg = configuration
        let (c, r) = (cfg.hiddenSize, cfg.numRegisterTokens)
        var blocks: [BlockWeights] = []
        for i in 0..<cfg.numHiddenLayers {
            let layer = "layer.\(i)."
            let q = try linear(layer + "attention.q_proj", out: c, in: c, bias: cfg.queryBias)
            let k = try linear(layer + "attention.k_proj", out: c, in: c, bias: cfg.keyBias)
            let v = try linear(layer + "attention.v_proj", out: c, in: c, bias: cfg.valueBias)
            let feedForward = try dinov3FeedForward(gate: layer + "mlp.gate_proj", up: layer + "mlp.up_proj", down: layer + "mlp.down_proj")
            blocks.append(BlockWeights(
                norm1: try layerNorm(layer + "norm1"),
                qkv: fusedQKV(q, k, v),
                projection: gemm(try linear(layer + "attention.o_proj", out: c, in: c, bias: cfg.projBias)),
                layerScale1: try take(layer + "layer_scale1.lambda1", [c]),
                norm2: try layerNorm(layer + "norm2"),
                feedForward: feedForward,
                layerScale2: try take(layer + "layer_scale2.lambda1", [c])))
        }
        return ModelWeights(
            patchEmbedding: gemm(LinearWeights(
                weight: try take(Self.dinov3PatchEmbedding, patchShape),
                bias: try take("embeddings.patch_embeddings.bias", [c]),
                outFeatures: c, inFeatures: patchColumns)),
            clsToken: try take("embeddings.cls_token", [1, 1, c]),
            maskToken: has("embeddings.mask_token") ? try take("embeddings.mask_token", [1, 1, c]) : nil,
            // HF writes an empty [1, 0, C] tensor for a model without registers.
            registerTokens: r > 0 || has("embeddings.register_tokens") ? try take("embeddings.register_tokens", [1, r, c]) : [],
            positionEmbeddings: [],
            blocks: blocks,
            norm: try layerNorm("norm"),
            classifier: nil)
    }

    // MARK: - Meta (facebookresearch/dinov3) and timm, DINOv3

    /// ref: facebookresearch/dinov3 `DinoVisionTransformer` state dicts (`blocks.<i>.attn.qkv` with
    /// `LinearKMaskedBias`, `ls1.gamma`, `mlp.fc1` / `mlp.w1,w2,w3`, `storage_tokens`) and timm's Eva
    /// `*_dinov3*` models as its `checkpoint_filter_fn` writes them (`gamma_1`, `attn.q_bias` /
    /// `attn.v_bias`, `mlp.fc1_g,fc1_x,fc2`, `reg_token`). Both fuse q/k/v; neither has position embeddings.
    private mutating func loadDINOv3Original(naming: CheckpointNaming) throws(DinoModelError) -> ModelWeights {
        let cfg = configuration
        let (c, r) = (cfg.hiddenSize, cfg.numRegisterTokens)
        let meta = naming == .meta
        try expectDINOv3BiasFlags(naming: naming)
        if meta { try checkRopePeriods() }
        var blocks: [BlockWeights] = []
        for i in 0..<cfg.numHiddenLayers {
            let block = "blocks.\(i)."
            // Meta's SwiGLUFFN and timm's SwiGLU both compute silu(gate) * up; the MLP is fc1 / fc2 in both.
            let (gate, up, down) = !cfg.useSwigluFFN ? ("", "mlp.fc1", "mlp.fc2")
                : meta ? ("mlp.w1", "mlp.w2", "mlp.w3") : ("mlp.fc1_g", "mlp.fc1_x", "mlp.fc2")
            let feedForward = try dinov3FeedForward(gate: block + gate, up: block + up, down: block + down)
            let scales = meta ? ("ls1.gamma", "ls2.gamma") : ("gamma_1", "gamma_2")
            blocks.append(BlockWeights(
                norm1: try layerNorm(block + "norm1"),
                qkv: gemm(LinearWeights(
                    weight: try take(block + "attn.qkv.weight", [3 * c, c]),
                    bias: meta ? try metaQKVBias(block) : try timmQKVBias(block),
                    outFeatures: 3 * c, inFeatures: c)),
                projection: gemm(try linear(block + "attn.proj", out: c, in: c, bias: cfg.projBias)),
                layerScale1: try take(block + scales.0, [c]),
                norm2: try layerNorm(block + "norm2"),
                feedForward: feedForward,
                layerScale2: try take(block + scales.1, [c])))
        }
        if meta && (has("local_cls_norm.weight") || has("local_cls_norm.bias")) {
            // The local-crop CLS norm is used in training only; HF's conversion script drops it, as timm does.
            _ = try layerNorm("local_cls_norm")
        }
        return ModelWeights(
            patchEmbedding: gemm(LinearWeights(
                weight: try take("patch_embed.proj.weight", patchShape),
                bias: try take("patch_embed.proj.bias", [c]),
                outFeatures: c, inFeatures: patchColumns)),
            clsToken: try take("cls_token", [1, 1, c]),
            // Meta's mask token is [1, C]; timm's filter drops it (pretraining only).
            maskToken: has("mask_token") ? try take("mask_token", [1, c]) : nil,
            registerTokens: r > 0 ? try take(meta ? "storage_tokens" : "reg_token", [1, r, c]) : [],
            positionEmbeddings: [],
            blocks: blocks,
            norm: try layerNorm("norm"),
            classifier: nil)
    }

    /// Throws unless the configuration's q/k/v bias flags are ones the naming can hold: Meta has one
    /// `qkv_bias` for all three, with the key third masked out (`bias_mask`) unless the key has a
    /// bias too; timm's Eva has `q_bias` / `v_bias` and keeps the key bias a zero buffer.
    private func expectDINOv3BiasFlags(naming: CheckpointNaming) throws(DinoModelError) {
        let cfg = configuration
        let path = location(prefix + "blocks.0.attn.qkv.weight")
        let name = naming == .meta ? "Meta" : "timm"
        if cfg.queryBias != cfg.valueBias {
            throw .invalidConfiguration(path: path, field: "value_bias",
                                        reason: "query_bias \(cfg.queryBias) and value_bias \(cfg.valueBias) differ; a \(name) checkpoint has one bias flag for both")
        }
        if cfg.keyBias && (naming == .timm || !cfg.queryBias) {
            throw .invalidConfiguration(path: path, field: "key_bias",
                                        reason: naming == .timm ? "is true; timm's Eva keeps the key bias at zero"
                                                                : "is true without query and value biases; a Meta checkpoint biases all three or none")
        }
    }

    /// Meta's fused q/k/v bias as `LinearKMaskedBias` applies it (`bias * bias_mask`), or nil without biases.
    /// The mask must be 1 on the query and value thirds and 0 on the key third: the only mask
    /// `init_weights_vit` writes, and the only one HF's and timm's conversions (which drop the key bias
    /// and the mask unread) agree with; NaN (an uninitialised mask) or any other value is refused.
    private mutating func metaQKVBias(_ block: String) throws(DinoModelError) -> [Float]? {
        let cfg = configuration
        let c = cfg.hiddenSize
        guard cfg.queryBias else { return nil }
        var bias = try take(block + "attn.qkv.bias", [3 * c])
        // With a key bias the model was built without mask_k_bias: the whole bias applies.
        if cfg.keyBias { return bias }
        let maskKey = block + "attn.qkv.bias_mask"
        let mask = try take(maskKey, [3 * c])
        if let j = mask.indices.first(where: { mask[$0] != ((c..<2 * c).contains($0) ? 0 : 1) }) {
            let third = j < c ? "query" : j < 2 * c ? "key" : "value"
            throw .invalidConfiguration(path: location(prefix + maskKey), field: "key_bias",
                                        reason: "'\(prefix + maskKey)'[\(j)] is \(mask[j]); the \(third) third must be \(third == "key" ? 0 : 1) (only the key bias masked out, as key_bias false says)")
        }
        for j in c..<2 * c { bias[j] = 0 }
        return bias
    }

    /// timm's `q_bias` / `v_bias` with the zero key bias between them, or nil without biases.
    private mutating func timmQKVBias(_ block: String) throws(DinoModelError) -> [Float]? {
        let c = configuration.hiddenSize
        guard configuration.queryBias else { return nil }
        return try take(block + "attn.q_bias", [c]) + [Float](repeating: 0, count: c) + (try take(block + "attn.v_bias", [c]))
    }

    /// Meta's `rope_embed.periods` buffer is derived, not learnt: checks it is `rope_theta^(4j / head_dim)`
    /// (the `base` parametrisation HF implements; a min/max-period model is refused), then leaves it unused.
    /// The tolerance covers a buffer kept in bf16 (2^-9 relative rounding).
    private mutating func checkRopePeriods() throws(DinoModelError) {
        let key = "rope_embed.periods"
        guard has(key), let theta = configuration.ropeTheta else { return }
        let headDim = configuration.headDim
        let periods = try take(key, [headDim / 4])
        for (j, period) in periods.enumerated() {
            let expected = pow(theta, Double(4 * j) / Double(headDim))
            guard abs(Double(period) - expected) <= 4e-3 * expected else {
                throw .invalidConfiguration(path: location(prefix + key), field: "rope_theta",
                                            reason: "'\(prefix + key)'[\(j)] is \(period), rope_theta \(theta) with head size \(headDim) gives \(expected)")
            }
        }
    }

    // MARK: - Meta (facebookresearch/dinov2) and timm

    private mutating func loadOriginal(naming: CheckpointNaming) throws(DinoModelError) -> ModelWeights {
        let c = configuration.hiddenSize
        let r = configuration.numRegisterTokens
        // Both namings carry LayerScale as `ls1.gamma` when the model was built with init_values.
        let hasLayerScale = has("blocks.0.ls1.gamma")
        var blocks: [BlockWeights] = []
        for i in 0..<configuration.numHiddenLayers {
            let block = "blocks.\(i)."
            // Meta names the packed SwiGLU `w12` / `w3`; timm's SwiGLUPacked `fc1` / `fc2`.
            let swiglu = has(block + "mlp.w12.weight") ? (block + "mlp.w12", block + "mlp.w3") : (block + "mlp.fc1", block + "mlp.fc2")
            let feedForward = try feedForward(swiglu: swiglu, mlp: block + "mlp")
            blocks.append(BlockWeights(
                norm1: try layerNorm(block + "norm1"),
                qkv: gemm(try linear(block + "attn.qkv", out: 3 * c, in: c, bias: configuration.qkvBias)),
                projection: gemm(try linear(block + "attn.proj", out: c, in: c)),
                layerScale1: hasLayerScale ? try take(block + "ls1.gamma", [c]) : nil,
                norm2: try layerNorm(block + "norm2"),
                feedForward: feedForward,
                layerScale2: hasLayerScale ? try take(block + "ls2.gamma", [c]) : nil))
        }

        let clsToken = try take("cls_token", [1, 1, c])
        let positionEmbeddings: [Float]
        // ref: timm checkpoint_filter_fn for DINOv2 with registers (no_embed_class): the CLS
        // position is added to cls_token and dropped from pos_embed.
        if shapeOf("pos_embed") == [1, gridPositions, c] {
            positionEmbeddings = [Float](repeating: 0, count: c) + (try take("pos_embed", [1, gridPositions, c]))
        } else {
            positionEmbeddings = try take("pos_embed", [1, 1 + gridPositions, c])
        }
        let registerName = naming == .timm ? "reg_token" : "register_tokens"
        let registerTokens = r > 0 ? try take(registerName, [1, r, c]) : []
        let maskToken = has("mask_token") ? try take("mask_token", [1, c]) : nil
        return ModelWeights(
            patchEmbedding: gemm(LinearWeights(
                weight: try take("patch_embed.proj.weight", patchShape),
                bias: try take("patch_embed.proj.bias", [c]),
                outFeatures: c, inFeatures: patchColumns)),
            clsToken: clsToken,
            maskToken: maskToken,
            registerTokens: registerTokens,
            positionEmbeddings: positionEmbeddings,
            blocks: blocks,
            norm: try layerNorm("norm"),
            classifier: try classifier())
    }
}
