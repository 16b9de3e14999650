import COpenBLAS

/// Row-major `C[M, N] = alpha · A[M, K] · op(B) + beta · C` on raw pointers with leading
/// dimensions, single-threaded.
@inline(__always)
package func sgemm(
    transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    _ = ComputeThreads.singleThreadedBLAS
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
