import CDinoKernels

/// The internal weight layout every checkpoint naming is mapped to (see `CheckpointLoader`).
///
/// Dimension letters: `C` hidden size, `F` FFN hidden width, `M` side of the position grid,
/// `R` register tokens, `P` patch size, `K = channels * P * P`.

/// A linear layer in PyTorch layout: `weight` is `[out, in]`, row-major.
struct LinearWeights: Sendable {
    /// `[out, in]`; empty once the weight has been packed (either precision).
    var weight: [Float]
    /// `[out]`, or nil for a layer without bias.
    var bias: [Float]?
    var outFeatures: Int
    var inFeatures: Int
    /// The weight in panels of 16 output columns for `dino_gemm_packed`, when packed.
    var packed: [Float]? = nil
    /// The weight rounded to bfloat16 in the same panels (`dino_pack_weight_bf16`), when packed
    /// for `WeightPrecision.bf16` with `BFloat16Products.widened`.
    var packedBF16: [UInt16]? = nil
    /// The weight rounded to bfloat16 in K-pair panels (`dino_pack_weight_bf16_dot`), when packed
    /// for `WeightPrecision.bf16` with `BFloat16Products.dotProducts`.
    var packedBF16Dot: [UInt32]? = nil

    /// The layer with its weight packed for the GEMM kernels (the `[out, in]` copy is dropped, so
    /// memory does not grow): float32 panels for the AVX2 and AVX-512 kernels, or for `.bf16` the
    /// weight rounded to bfloat16, in the panels `products` multiplies from (packed on every CPU:
    /// without the packed kernels, `apply` widens the `.widened` panels back per call for OpenBLAS).
    func packedForGEMM(_ precision: WeightPrecision = .fp32, products: BFloat16Products = .automatic) -> LinearWeights {
        var copy = self
        switch (precision, products) {
        case (.fp32, _):
            copy.packed = filled(dino_packed_weight_count(outFeatures, inFeatures)) {
                dino_pack_weight(weight, outFeatures, inFeatures, $0)
            }
        case (.bf16, .widened):
            copy.packedBF16 = filled(dino_packed_weight_count(outFeatures, inFeatures)) {
                dino_pack_weight_bf16(weight, outFeatures, inFeatures, $0)
            }
        case (.bf16, .dotProducts):
            copy.packedBF16Dot = filled(dino_packed_weight_count_bf16_dot(outFeatures, inFeatures)) {
                dino_pack_weight_bf16_dot(weight, outFeatures, inFeatures, $0)
            }
        }
        copy.weight = []
        return copy
    }

    /// The weight as float32 in `[out, in]` layout: `weight`, or the bfloat16 panels widened.
    func unpackedWeight() -> [Float] {
        if let packedBF16Dot {
            return filled(outFeatures * inFeatures) { dino_unpack_weight_bf16_dot(packedBF16Dot, outFeatures, inFeatures, $0) }
        }
        guard let packedBF16 else { return weight }
        return filled(outFeatures * inFeatures) { dino_unpack_weight_bf16(packedBF16, outFeatures, inFeatures, $0) }
    }
}

/// An array of `count` elements, every one written by `fill` (a C packing or unpacking call).
private func filled<Element>(_ count: Int, _ fill: (UnsafeMutablePointer<Element>?) -> Void) -> [Element] {
    [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
        fill(buffer.baseAddress)
        initialized = count
    }
}

/// LayerNorm scale and shift, `[C]` each.
struct LayerNormWeights: Sendable {
    var weight: [Float]
    var bias: [Float]
}

/// The two FFN variants of DINOv2.
enum FeedForwardWeights: Sendable {
    /// `fc1` `[F, C]` -> activation -> `fc2` `[C, F]`.
    case mlp(fc1: LinearWeights, fc2: LinearWeights)
    /// `weightsIn` `[2F, C]` (first half gate x1, second half x2) -> silu(x1) * x2 -> `weightsOut` `[C, F]`.
    case swiglu(weightsIn: LinearWeights, weightsOut: LinearWeights)
}

/// One pre-norm transformer block.
struct BlockWeights: Sendable {
    var norm1: LayerNormWeights
    /// Fused query, key, value projection: rows `0..<C` query, `C..<2C` key, `2C..<3C` value.
    var qkv: LinearWeights
    /// Attention output projection `[C, C]`.
    var projection: LinearWeights
    /// LayerScale of the attention branch `[C]`, nil when the checkpoint has none.
    var layerScale1: [Float]?
    var norm2: LayerNormWeights
    var feedForward: FeedForwardWeights
    /// LayerScale of the FFN branch `[C]`, nil when the checkpoint has none.
    var layerScale2: [Float]?
}

/// All weights of a model.
struct ModelWeights: Sendable {
    /// Patch projection: conv weight `[C, channels, P, P]` flattened to `[C, K]`.
    var patchEmbedding: LinearWeights
    /// `[C]`.
    var clsToken: [Float]
    /// `[C]`, only used for masked-image pre-training; kept when the checkpoint has it.
    var maskToken: [Float]?
    /// `[R, C]`.
    var registerTokens: [Float]
    /// `[1 + M * M, C]`: the CLS position then the patch grid row-major.
    var positionEmbeddings: [Float]
    var blocks: [BlockWeights]
    /// The final LayerNorm.
    var norm: LayerNormWeights
    /// Classification head `[labels, 2C]` on `concat(CLS, mean of patch tokens)`, if any.
    var classifier: LinearWeights?
}
