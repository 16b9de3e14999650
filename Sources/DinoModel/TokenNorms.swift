import DinoTensor

// Dimension letters: N tokens of one image (CLS, registers, patches), C channels.

/// The L2 norms of one image's tokens and its high-norm outlier patches.
///
/// The registers paper found that large ViTs without registers repurpose a few low-information
/// patches as high-norm "artifact" tokens, and that registers take that role over. A patch is an
/// outlier when its norm exceeds a threshold, by default `median + 6 x MAD` of the image's patch
/// norms: a robust rule that the artifacts, a few patches far above the rest, do not move.
public struct TokenNorms: Sendable, Equatable {
    /// One patch above the threshold, at its place on the patch grid.
    public struct Outlier: Sendable, Equatable {
        /// Grid row.
        public var row: Int
        /// Grid column.
        public var column: Int
        /// The patch token's norm.
        public var norm: Float

        /// An outlier from its place and norm.
        public init(row: Int, column: Int, norm: Float) {
            self.row = row
            self.column = column
            self.norm = norm
        }
    }

    /// How many median absolute deviations above the median the default threshold lies.
    public static let madMultiplier: Float = 6

    /// Norm of the class token.
    public let classToken: Float
    /// Norms of the register tokens, in order.
    public let registers: [Float]
    /// Norms of the patch tokens, row-major on the grid.
    public let patches: [Float]
    /// Median of `patches` (the upper one for an even count).
    public let medianPatchNorm: Float
    /// Median of `|patch norm - medianPatchNorm|`.
    public let medianAbsoluteDeviation: Float
    /// Largest of `patches`, 0 without patches.
    public let maxPatchNorm: Float

    /// The norms of `tokens` `[N, C]`: the class token, `registerCount` registers, then the patches.
    public init(tokens: Tensor, registerCount: Int) {
        precondition(tokens.rank == 2 && tokens.shape[0] > 1 + registerCount, "token norms need [N, C] with patches, got \(tokens.shape)")
        let c = tokens.shape[1]
        let norms = (0..<tokens.shape[0]).map { t in
            tokens.scalars[(t * c)..<((t + 1) * c)].reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        }
        classToken = norms[0]
        registers = Array(norms[1..<(1 + registerCount)])
        patches = Array(norms[(1 + registerCount)...])
        let sorted = patches.sorted()
        let median = sorted[sorted.count / 2]
        medianPatchNorm = median
        medianAbsoluteDeviation = patches.map { abs($0 - median) }.sorted()[patches.count / 2]
        maxPatchNorm = sorted.last ?? 0
    }

    /// `median + 6 x MAD`, with the MAD at least 1e-6 so that a flat map has no outliers.
    public var defaultThreshold: Float { medianPatchNorm + Self.madMultiplier * max(medianAbsoluteDeviation, 1e-6) }

    /// The patches whose norm exceeds `threshold` (default `defaultThreshold`), in grid order on a
    /// grid `gridWidth` patches wide.
    public func outliers(above threshold: Float? = nil, gridWidth: Int) -> [Outlier] {
        let limit = threshold ?? defaultThreshold
        return patches.enumerated().filter { $0.element > limit }
            .map { Outlier(row: $0.offset / gridWidth, column: $0.offset % gridWidth, norm: $0.element) }
    }
}
