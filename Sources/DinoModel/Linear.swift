import COpenBLAS

/// Threads OpenBLAS may use for one GEMM. Process-wide, as OpenBLAS's own setting is.
public enum ComputeThreads {
    /// Sets the number of GEMM threads (at least 1).
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of GEMM threads in use.
    public static var current: Int { Int(openblas_get_num_threads()) }
}

extension LinearWeights {
    /// `out[R, outFeatures] = x[R, inFeatures] · weightᵀ` (no bias: callers fuse it into the
    /// next elementwise kernel).
    ///
    /// - Parameters:
    ///   - x: `[R, inFeatures]`, row stride `ldx` (default `inFeatures`).
    ///   - out: `[R, outFeatures]`, row stride `ldo` (default `outFeatures`).
    func apply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int? = nil, into out: UnsafeMutablePointer<Float>, ldo: Int? = nil) {
        weight.withUnsafeBufferPointer { w in
            // The weight stays in PyTorch's [out, in] layout and is read transposed.
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans,
                Int32(rows), Int32(outFeatures), Int32(inFeatures),
                1, x, Int32(ldx ?? inFeatures),
                w.baseAddress, Int32(inFeatures),
                0, out, Int32(ldo ?? outFeatures))
        }
    }
}

/// Row-major `C[M, N] = alpha · A[M, K] · op(B) + beta · C` on raw pointers with leading
/// dimensions, for the attention products.
@inline(__always)
func sgemm(
    transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
