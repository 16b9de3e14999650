import CDinoKernels
import Foundation

/// How a model holds the weights of its linear layers (patch embedding, attention, FFN).
///
/// Biases, norms, embeddings and activations stay float32 in both; only the stored weights, and
/// with `BFloat16Products.dotProducts` the GEMMs' inputs, differ.
public enum WeightPrecision: String, Sendable, Equatable, CaseIterable {
    /// float32 as in the checkpoint: the reference's numbers to within 1e-4.
    case fp32
    /// Rounded to bfloat16 (nearest even) at load: the backbone's weights take half the memory.
    /// How the GEMMs multiply them is `BFloat16Products`; the error against fp32 is measured by
    /// `PrecisionComparison` (`dino bench --accuracy`) and bounded in the tests.
    case bf16
}

/// How the GEMMs multiply bfloat16 weights.
public enum BFloat16Products: String, Sendable, Equatable, CaseIterable {
    /// Each weight is widened to float32 inside the AVX2 or AVX-512 kernel and multiplies the float32
    /// activations: only the weights are rounded, and the speed is about fp32's (the forward is
    /// not limited by weight traffic).
    case widened
    /// The activations are rounded to bfloat16 too (the inputs of every GEMM, attention's q·kᵀ and
    /// p·v included, except with the portable kernels), and pairs of products are summed into
    /// float32 by AVX512-BF16's `VDPBF16PS`: twice the products per instruction of a float32 FMA. On a CPU
    /// without AVX512-BF16 the same arithmetic runs through a portable model of the instruction,
    /// which is slow: that is for measuring its accuracy, not for use.
    case dotProducts

    /// `dotProducts` where the CPU has AVX512-BF16 (and the AVX-512 kernels are active), else
    /// `widened`; the environment variable `DINO_BF16_PRODUCTS=widened|dotProducts` overrides it.
    public static var automatic: BFloat16Products {
        if let name = environmentOverride, let chosen = BFloat16Products(rawValue: name) { return chosen }
        return hasAVX512BF16 ? .dotProducts : .widened
    }

    /// The value of `DINO_BF16_PRODUCTS`, valid or not (the CLI refuses an unknown one), or nil.
    public static var environmentOverride: String? { ProcessInfo.processInfo.environment["DINO_BF16_PRODUCTS"] }

    /// Whether `dotProducts` runs on AVX512-BF16 on this CPU (else on the portable model).
    public static var hasAVX512BF16: Bool { dino_gemm_bf16_dot_uses_avx512() != 0 }
}
