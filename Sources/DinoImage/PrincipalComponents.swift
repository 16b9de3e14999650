import COpenBLAS

// Dimension letters: N feature rows (patches of all images), C channels, K components.

/// Principal components of feature rows, for the DINOv2 PCA picture.
///
/// Fitted from the covariance matrix with LAPACK `ssyevd`. Component signs are made
/// deterministic: each component's largest-magnitude loading is positive.
public struct PrincipalComponents: Sendable {
    /// Mean row `[C]`.
    public var mean: [Float]
    /// Components `[K][C]`, largest variance first, unit length.
    public var components: [[Float]]
    /// Variance along each component `[K]`.
    public var variances: [Float]

    /// Fits `k` components to `rows` `[N, C]`.
    public static func fit(_ rows: [Float], count n: Int, channels c: Int, components k: Int) throws(ImageError) -> PrincipalComponents {
        guard n >= 2 else { throw .invalidAnalysis(reason: "PCA needs at least 2 feature rows, got \(n)") }
        guard k >= 1, k <= c else { throw .invalidAnalysis(reason: "cannot take \(k) components of \(c) channels") }
        precondition(rows.count == n * c, "\(rows.count) values are not [\(n), \(c)]")
        var mean = [Float](repeating: 0, count: c)
        for i in 0..<n { for j in 0..<c { mean[j] += rows[i * c + j] } }
        for j in 0..<c { mean[j] /= Float(n) }
        var centered = rows
        for i in 0..<n { for j in 0..<c { centered[i * c + j] -= mean[j] } }
        // covariance [C, C] = centeredᵀ centered / (N - 1)
        var covariance = [Float](repeating: 0, count: c * c)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(c), Int32(c), Int32(n), 1 / Float(n - 1),
                    centered, Int32(c), centered, Int32(c), 0, &covariance, Int32(c))
        let (values, vectors) = try symmetricEigen(covariance, size: c)
        // ssyevd returns ascending eigenvalues; eigenvector j is column j of the (column-major) result.
        var components: [[Float]] = []
        var variances: [Float] = []
        for index in stride(from: c - 1, to: c - 1 - k, by: -1) {
            var vector = Array(vectors[(index * c)..<((index + 1) * c)])
            if let largest = vector.max(by: { abs($0) < abs($1) }), largest < 0 {
                vector = vector.map { -$0 }
            }
            components.append(vector)
            variances.append(max(values[index], 0))
        }
        return PrincipalComponents(mean: mean, components: components, variances: variances)
    }

    /// Projections `[N, K]` of `rows` `[N, C]` on the components.
    public func project(_ rows: [Float], count n: Int) -> [Float] {
        let c = mean.count, k = components.count
        var out = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            for (m, component) in components.enumerated() {
                var sum: Float = 0
                for j in 0..<c { sum += (rows[i * c + j] - mean[j]) * component[j] }
                out[i * k + m] = sum
            }
        }
        return out
    }

    /// Eigenvalues (ascending) and eigenvectors (column-major `[C, C]`) of a symmetric matrix.
    static func symmetricEigen(_ matrix: [Float], size c: Int) throws(ImageError) -> ([Float], [Float]) {
        var a = matrix
        var w = [Float](repeating: 0, count: c)
        var n = Int32(c), lda = Int32(c), info: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        var workQuery: Float = 0
        var iworkQuery: Int32 = 0
        ssyevd_("V", "U", &n, &a, &lda, &w, &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1)
        lwork = Int32(workQuery)
        liwork = iworkQuery
        var work = [Float](repeating: 0, count: Int(max(lwork, 1)))
        var iwork = [Int32](repeating: 0, count: Int(max(liwork, 1)))
        ssyevd_("V", "U", &n, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        guard info == 0 else { throw .invalidAnalysis(reason: "the eigensolver failed (LAPACK ssyevd info \(info))") }
        return (w, a)
    }
}
