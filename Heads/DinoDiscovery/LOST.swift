import COpenBLAS

// Dimension letters in this file: N patches (h * w), C channels.

// ref: valeoai/LOST object_discovery.py (lost, patch_scoring, detect_box) and main_lost.py.
/// LOST (Siméoni et al., *Localizing Objects with Self-Supervised Transformers and no Labels*,
/// BMVC 2021): the patch correlated positively with the fewest others is taken to lie on the
/// object (objects cover less of the image than the background), and the object is the
/// patches that the seed's most similar low-degree patches correlate with.
public struct LOST: Sendable, Equatable {
    /// `k`: how many of the lowest-degree patches may join the seed's expansion.
    public var potentialCount: Int
    // ref: github.com/facebookresearch/dinov2/issues/381: reproducing the registers paper's LOST
    // numbers needs a bias applied to `A` where LOST computes `A = feats @ feats.T`, i.e. before
    // the degrees, the seed's similar patches and `M`.
    /// Added to every entry of the Gram matrix `A` before any of its sign tests (degrees, similar
    /// patches, `M > 0`); 0 is the original method.
    ///
    /// The registers paper (Darcet et al. 2023) evaluates DINOv2 with LOST with such a bias on the
    /// Gram matrix; its value is per model and not published. A negative bias is a similarity
    /// threshold above 0: fewer patches count as correlated.
    public var gramBias: Float

    /// LOST with `k` potentials (LOST's default is 100) and an optional Gram bias.
    public init(potentialCount: Int = 100, gramBias: Float = 0) {
        self.potentialCount = potentialCount
        self.gramBias = gramBias
    }

    /// Finds the main object in `features`.
    public func callAsFunction(_ features: PatchFeatures) throws(DiscoveryError) -> DiscoveredObject {
        guard potentialCount >= 1 else {
            throw .invalidParameter(name: "k (potential patches)", value: "\(potentialCount)", expected: "at least 1")
        }
        guard gramBias.isFinite else { throw .invalidParameter(name: "Gram bias", value: "\(gramBias)", expected: "a finite number") }
        let n = features.count
        let gram = Self.gram(features, bias: gramBias)  // [N, N]
        let degrees = Self.degrees(gram, count: n)

        // Lowest degree first; equal degrees keep the patch order (a stable sort), so the seed is
        // the lowest-index patch of lowest degree. LOST's torch.argsort does not promise
        // stability; the stable order is what makes the result well defined.
        let order = (0..<n).sorted { (degrees[$0], $0) < (degrees[$1], $1) }
        let seed = order[0]
        let potentials = order.prefix(potentialCount)
        // The seed's own similarity is its squared norm (plus the bias), so it is a similar patch.
        let similars = potentials.filter { gram[seed * n + $0] > 0 }

        // M = sum of the similar patches' rows of A: positive where the object's patches agree.
        var m = [Float](repeating: 0, count: n)
        for j in similars {
            for i in 0..<n { m[i] += gram[j * n + i] }
        }
        let foreground = PatchMask(rows: features.rows, columns: features.columns, values: m.map { $0 > 0 })
        let score = n > 1 ? 1 - Float(degrees[seed]) / Float(n - 1) : 1
        return try DiscoveredObject(seed: features.position(seed), foreground: foreground, features: features, score: score)
    }

    /// `A = F F^T + bias`, `[N, N]` row-major, from features `F` `[N, C]`.
    static func gram(_ features: PatchFeatures, bias: Float) -> [Float] {
        let n = features.count, c = features.channels
        var gram = [Float](repeating: 0, count: n * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(c), 1,
                    features.values, Int32(c), features.values, Int32(c), 0, &gram, Int32(n))
        if bias != 0 {
            for i in 0..<gram.count { gram[i] += bias }
        }
        return gram
    }

    // ref: valeoai/LOST object_discovery.py patch_scoring: the diagonal is zeroed, negative
    // entries are set to 0, and `A > 0` is counted per row, so the patch itself never counts
    // and a similarity of exactly 0 does not either.
    /// Degree of each patch: the number of other patches it correlates positively with
    /// (`A[i, j] > 0`, `j != i`).
    static func degrees(_ gram: [Float], count n: Int) -> [Int] {
        (0..<n).map { i in
            var degree = 0
            for j in 0..<n where j != i && gram[i * n + j] > 0 { degree += 1 }
            return degree
        }
    }
}
