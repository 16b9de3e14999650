// Dimension letters: n patches of one image, C channels.

/// The colours of the DINOv2 PCA picture: one PCA fitted to the patch features of all images, so
/// that a colour means the same in every image, its first three components scaled jointly to
/// 0...255.
///
/// With a foreground mask, the first component scaled to [0, 1] over all patches separates the
/// foreground (above the threshold, or below it when inverted) from the background; the PCA is
/// then refitted on the foreground patches and the background is black, as in the DINOv2 paper's
/// figures.
public struct PatchPCA: Sendable {
    /// Which patches are foreground, by their first principal component.
    public struct Mask: Sendable, Equatable {
        /// Threshold on the first component scaled to [0, 1].
        public var threshold: Float
        /// Whether the foreground lies below the threshold instead of above it.
        public var inverted: Bool

        /// A mask from its threshold and side.
        public init(threshold: Float, inverted: Bool = false) {
            self.threshold = threshold
            self.inverted = inverted
        }
    }

    /// The components the colours come from (refitted on the foreground with a mask).
    public let components: PrincipalComponents
    /// How many feature rows `components` was fitted on.
    public let fittedRows: Int
    /// Per image `[n]`: whether each patch is foreground (every patch without a mask).
    public let foreground: [[Bool]]
    /// Per image `[n, 3]`: each patch's colour in 0...255, 0 for the background.
    public let colors: [[Float]]

    /// Fits to `features`, one `[n, C]` array per image, on at most `maxFitRows` rows taken at
    /// regular steps.
    public init(features: [[Float]], channels c: Int, maxFitRows: Int, mask: Mask? = nil) throws(ImageError) {
        let all = features.flatMap { $0 }
        var sample = Self.regularSample(all, count: all.count / c, channels: c, limit: maxFitRows)
        var pca = try PrincipalComponents.fit(sample.rows, count: sample.count, channels: c, components: 3)
        var foreground = features.map { [Bool](repeating: true, count: $0.count / c) }
        if let mask {
            let first = features.map { pca.project($0, count: $0.count / c).enumerated().filter { $0.offset % 3 == 0 }.map(\.element) }
            let flat = first.flatMap { $0 }
            let (lo, hi) = (flat.min() ?? 0, flat.max() ?? 1)
            foreground = first.map { values in values.map { v in
                let t = hi > lo ? (v - lo) / (hi - lo) : 0
                return mask.inverted ? t < mask.threshold : t > mask.threshold
            } }
            var kept: [Float] = []
            for (rows, keep) in zip(features, foreground) {
                for (j, isForeground) in keep.enumerated() where isForeground { kept += rows[(j * c)..<((j + 1) * c)] }
            }
            let keptCount = kept.count / c
            guard keptCount >= 3 else {
                throw .invalidAnalysis(reason: "the foreground threshold \(mask.threshold) leaves \(keptCount) patches, fewer than 3; "
                    + "lower it or invert the mask")
            }
            sample = Self.regularSample(kept, count: keptCount, channels: c, limit: maxFitRows)
            pca = try PrincipalComponents.fit(sample.rows, count: sample.count, channels: c, components: 3)
        }
        // Each component scaled to 0...255 over the foreground patches of all images.
        let projections = features.map { pca.project($0, count: $0.count / c) }
        var lo = [Float](repeating: .infinity, count: 3), hi = [Float](repeating: -.infinity, count: 3)
        for (values, keep) in zip(projections, foreground) {
            for (j, isForeground) in keep.enumerated() where isForeground {
                for m in 0..<3 { lo[m] = min(lo[m], values[j * 3 + m]); hi[m] = max(hi[m], values[j * 3 + m]) }
            }
        }
        colors = zip(projections, foreground).map { values, keep in
            var rgb = [Float](repeating: 0, count: values.count)
            for (j, isForeground) in keep.enumerated() where isForeground {
                for m in 0..<3 { rgb[j * 3 + m] = hi[m] > lo[m] ? (values[j * 3 + m] - lo[m]) / (hi[m] - lo[m]) * 255 : 128 }
            }
            return rgb
        }
        components = pca
        fittedRows = sample.count
        self.foreground = foreground
    }

    /// `rows` `[count, C]` as they are, or `limit` of them taken at regular steps when there are more.
    public static func regularSample(_ rows: [Float], count: Int, channels c: Int, limit: Int) -> (rows: [Float], count: Int) {
        guard count > limit else { return (rows, count) }
        let step = Double(count) / Double(limit)
        var out: [Float] = []
        out.reserveCapacity(limit * c)
        for k in 0..<limit {
            let j = Int(Double(k) * step)
            out += rows[(j * c)..<((j + 1) * c)]
        }
        return (out, limit)
    }
}
