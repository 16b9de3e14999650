/// How a model holds the weights of its linear layers (patch embedding, attention, FFN).
///
/// Biases, norms, embeddings, activations and every product and sum stay float32 in both; only
/// the stored weights differ.
public enum WeightPrecision: String, Sendable, Equatable, CaseIterable {
    /// float32 as in the checkpoint: the reference's numbers to within 1e-4.
    case fp32
    /// Rounded to bfloat16 (nearest even) at load and widened back to float32 inside the GEMM
    /// kernel: the backbone's weights take half the memory. This CPU path has no bfloat16 dot
    /// products (AVX512-BF16), so it is about as fast as fp32, not faster; the error against fp32
    /// is measured by `PrecisionComparison` (`dino bench --accuracy`) and bounded in the tests.
    case bf16
}
