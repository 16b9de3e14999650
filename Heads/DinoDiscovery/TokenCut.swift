import COpenBLAS

// Dimension letters in this file: N patches (h * w), C channels.

// ref: YangtaoWANG95/TokenCut object_discovery.py (ncut, detect_box), main_tokencut.py defaults.
/// TokenCut (Wang et al., *Self-Supervised Transformers for Unsupervised Object Discovery using
/// Normalized Cut*, CVPR 2022): the patches form a graph whose edges join patches of cosine
/// similarity above `threshold`; the normalized cut splits it in two, and the object is the side
/// holding the most salient patch.
public struct TokenCut: Sendable, Equatable {
    /// `tau`: the cosine similarity above which two patches are joined by an edge of weight 1.
    public var threshold: Float
    /// `eps`: the weight between patches that are not joined, which keeps the graph connected.
    public var nonEdgeWeight: Float

    /// TokenCut with TokenCut's defaults `tau = 0.2`, `eps = 1e-5`.
    public init(threshold: Float = 0.2, nonEdgeWeight: Float = 1e-5) {
        self.threshold = threshold
        self.nonEdgeWeight = nonEdgeWeight
    }

    /// Finds the main object in `features`.
    public func callAsFunction(_ features: PatchFeatures) throws(DiscoveryError) -> DiscoveredObject {
        guard threshold.isFinite, threshold > -1, threshold < 1 else {
            throw .invalidParameter(name: "tau", value: "\(threshold)", expected: "a cosine similarity in (-1, 1)")
        }
        guard nonEdgeWeight.isFinite, nonEdgeWeight > 0 else {
            throw .invalidParameter(name: "eps", value: "\(nonEdgeWeight)", expected: "positive, so that every degree is positive")
        }
        let n = features.count
        guard n >= 2 else { throw .tooFewPatches(count: n, needed: 2) }

        // W: 1 between patches of cosine similarity above tau (a patch with itself too), eps elsewhere.
        let cosine = Self.cosineSimilarities(features)  // [N, N]
        var weights = cosine.map { $0 > threshold ? 1 : nonEdgeWeight }
        var degrees = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var sum = 0.0
            for j in 0..<n { sum += Double(weights[i * n + j]) }
            degrees[i] = Float(sum)
        }
        // (D - W) x = lambda D x; W is symmetric, so row-major and column-major agree.
        for i in 0..<n {
            for j in 0..<n { weights[i * n + j] = (i == j ? degrees[i] : 0) - weights[i * n + j] }
        }
        let (lambda2, vector) = try Self.secondGeneralizedEigenvector(laplacian: weights, degrees: degrees, size: n)

        // Bipartition at the mean; the most salient patch (largest |x|) decides which side is the
        // object, which also makes the arbitrary sign of the eigenvector irrelevant: TokenCut
        // flips the vector (and the partition) when the seed is not above the mean, so the object
        // is `x > mean` when the seed is above the mean and `x <= mean` otherwise.
        let mean = vector.reduce(0.0) { $0 + Double($1) } / Double(n)
        var seed = 0
        for i in 1..<n where abs(vector[i]) > abs(vector[seed]) { seed = i }
        let seedAbove = Double(vector[seed]) > mean
        let side = vector.map { seedAbove ? Double($0) > mean : Double($0) <= mean }
        let foreground = PatchMask(rows: features.rows, columns: features.columns, values: side)
        return try DiscoveredObject(seed: features.position(seed), foreground: foreground, features: features,
                                    score: 1 - lambda2 / 2)
    }

    /// Cosine similarities `[N, N]` of the patch features (each row scaled to unit length, as
    /// `torch.nn.functional.normalize` does, with the norm floored at 1e-12).
    static func cosineSimilarities(_ features: PatchFeatures) -> [Float] {
        let n = features.count, c = features.channels
        var unit = features.values
        for i in 0..<n {
            var sum: Float = 0
            for j in 0..<c { sum += unit[i * c + j] * unit[i * c + j] }
            let norm = max(sum.squareRoot(), 1e-12)
            for j in 0..<c { unit[i * c + j] /= norm }
        }
        var cosine = [Float](repeating: 0, count: n * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(c), 1,
                    unit, Int32(c), unit, Int32(c), 0, &cosine, Int32(n))
        return cosine
    }

    /// The second-smallest eigenvalue and its eigenvector `[N]` of `L x = lambda D x`, `L` the
    /// symmetric `[N, N]` Laplacian `D - W` and `D` the diagonal of `degrees`.
    static func secondGeneralizedEigenvector(laplacian: [Float], degrees: [Float], size: Int) throws(DiscoveryError) -> (Float, [Float]) {
        var a = laplacian
        var b = [Float](repeating: 0, count: size * size)
        for i in 0..<size { b[i * size + i] = degrees[i] }
        var w = [Float](repeating: 0, count: size)
        var itype: Int32 = 1, n = Int32(size), lda = Int32(size), ldb = Int32(size), info: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        var workQuery: Float = 0
        var iworkQuery: Int32 = 0
        ssygvd_(&itype, "V", "U", &n, &a, &lda, &b, &ldb, &w, &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1)
        guard info == 0 else { throw .eigensolverFailed(routine: "ssygvd (workspace query)", info: Int(info)) }
        // The query answers in a float, which can round a large size down; LAPACK documents the
        // minimum 1 + 6N + 2N^2 (and 3 + 5N integers) for eigenvectors.
        lwork = max(Int32(workQuery.rounded(.up)), Int32(1 + 6 * size + 2 * size * size))
        liwork = max(iworkQuery, Int32(3 + 5 * size))
        var work = [Float](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        ssygvd_(&itype, "V", "U", &n, &a, &lda, &b, &ldb, &w, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        guard info == 0 else { throw .eigensolverFailed(routine: "ssygvd", info: Int(info)) }
        // Eigenvalues ascend; eigenvector k is column k of the column-major result.
        return (w[1], Array(a[size..<(2 * size)]))
    }
}
