import Foundation

/// The standard monocular depth metrics of one image (or their mean over images).
// ref: Monocular-Depth-Estimation-Toolbox depth/core/evaluation/metrics.py `calculate`, which
// the dinov2 depth evaluation uses.
public struct DepthMetrics: Codable, Sendable, Equatable {
    /// Fraction of pixels with `max(gt / pred, pred / gt) < 1.25`.
    public var delta1: Double
    /// ... `< 1.25^2`.
    public var delta2: Double
    /// ... `< 1.25^3`.
    public var delta3: Double
    /// `mean(|gt - pred| / gt)`.
    public var absRel: Double
    /// `mean((gt - pred)^2 / gt)`.
    public var sqRel: Double
    /// `sqrt(mean((gt - pred)^2))`, metres.
    public var rmse: Double
    /// `sqrt(mean((log gt - log pred)^2))`.
    public var rmseLog: Double
    /// `mean(|log10 gt - log10 pred|)`.
    public var log10: Double
    /// Scale-invariant log error `100 * sqrt(mean(e^2) - mean(e)^2)`, `e = log pred - log gt`.
    public var silog: Double
    /// Pixels evaluated (for a mean over images: their total).
    public var pixels: Int

    enum CodingKeys: String, CodingKey {
        case delta1 = "a1", delta2 = "a2", delta3 = "a3"
        case absRel = "abs_rel", sqRel = "sq_rel", rmse, rmseLog = "rmse_log", log10 = "log_10", silog, pixels
    }

    /// The metric values in table order, with their names.
    public var named: [(name: String, value: Double)] {
        [("AbsRel", absRel), ("SqRel", sqRel), ("RMSE", rmse), ("RMSElog", rmseLog), ("log10", log10), ("SIlog", silog),
         ("d1", delta1), ("d2", delta2), ("d3", delta3)]
    }

    /// The metrics of prediction / ground-truth pairs (valid pixels only, positive values).
    public init(groundTruth gt: [Double], prediction pred: [Double]) {
        precondition(gt.count == pred.count && !gt.isEmpty, "metrics need as many predictions as ground-truth values, at least one")
        let n = Double(gt.count)
        var d1 = 0, d2 = 0, d3 = 0
        var absRel = 0.0, sqRel = 0.0, squared = 0.0, squaredLog = 0.0, log10 = 0.0, errSum = 0.0, errSquared = 0.0
        for (g, p) in zip(gt, pred) {
            let ratio = max(g / p, p / g)
            if ratio < 1.25 { d1 += 1 }
            if ratio < 1.25 * 1.25 { d2 += 1 }
            if ratio < 1.25 * 1.25 * 1.25 { d3 += 1 }
            let diff = g - p
            absRel += abs(diff) / g
            sqRel += diff * diff / g
            squared += diff * diff
            let err = Foundation.log(p) - Foundation.log(g)
            squaredLog += err * err
            errSum += err
            errSquared += err * err
            log10 += abs(Foundation.log10(g) - Foundation.log10(p))
        }
        delta1 = Double(d1) / n
        delta2 = Double(d2) / n
        delta3 = Double(d3) / n
        self.absRel = absRel / n
        self.sqRel = sqRel / n
        rmse = (squared / n).squareRoot()
        rmseLog = (squaredLog / n).squareRoot()
        self.log10 = log10 / n
        // The toolbox reports 0 when rounding makes the variance negative (a constant error).
        let variance = errSquared / n - (errSum / n) * (errSum / n)
        silog = variance >= 0 ? variance.squareRoot() * 100 : 0
        pixels = gt.count
    }

    /// The mean of per-image metrics, as the toolbox averages them (each image counts once).
    public static func mean(_ images: [DepthMetrics]) -> DepthMetrics? {
        guard !images.isEmpty else { return nil }
        func average(_ value: (DepthMetrics) -> Double) -> Double { images.map(value).reduce(0, +) / Double(images.count) }
        var out = images[0]
        out.delta1 = average(\.delta1)
        out.delta2 = average(\.delta2)
        out.delta3 = average(\.delta3)
        out.absRel = average(\.absRel)
        out.sqRel = average(\.sqRel)
        out.rmse = average(\.rmse)
        out.rmseLog = average(\.rmseLog)
        out.log10 = average(\.log10)
        out.silog = average(\.silog)
        out.pixels = images.reduce(0) { $0 + $1.pixels }
        return out
    }
}

/// The evaluation crop applied to the valid-pixel mask.
// ref: Monocular-Depth-Estimation-Toolbox depth/datasets/{nyu,kitti}.py eval_mask.
public enum EvaluationCrop: String, Sendable, CaseIterable, Codable {
    /// Every pixel.
    case none
    /// NYU's Eigen crop: rows 45..<471, columns 41..<601 of the 480 x 640 maps.
    case nyuEigen = "nyu-eigen"
    /// KITTI's Garg crop: rows 0.408..0.992 H, columns 0.036..0.964 W.
    case garg
    /// KITTI's Eigen crop: rows 0.332..0.914 H, columns 0.036..0.964 W.
    case kittiEigen = "kitti-eigen"

    /// The rows and columns kept in an `height x width` map.
    public func region(height h: Int, width w: Int) throws(DepthError) -> (rows: Range<Int>, columns: Range<Int>) {
        // Python's int() truncates; the products are positive.
        func at(_ fraction: Double, _ n: Int) -> Int { Int(fraction * Double(n)) }
        switch self {
        case .none: return (0..<h, 0..<w)
        case .nyuEigen:
            guard h == 480, w == 640 else {
                throw .invalidEvaluation(reason: "the NYU Eigen crop needs 480 x 640 ground truth, got \(h) x \(w)")
            }
            return (45..<471, 41..<601)
        case .garg: return (at(0.40810811, h)..<at(0.99189189, h), at(0.03594771, w)..<at(0.96405229, w))
        case .kittiEigen: return (at(0.3324324, h)..<at(0.91351351, h), at(0.0359477, w)..<at(0.96405229, w))
        }
    }
}

/// How a prediction is brought to the ground truth's scale before the metrics.
public enum DepthAlignment: String, Sendable, CaseIterable, Codable {
    /// Compare as predicted (metric models).
    case none
    /// Multiply by `median(gt) / median(pred)` over the valid pixels (monodepth2's median scaling
    /// for relative depth).
    case median
    /// Fit `s * pred + t` to `1 / gt` by least squares over the valid pixels, clamp the disparity
    /// to at least `1 / max_depth` and invert (the MiDaS / Depth Anything protocol for relative
    /// inverse depth).
    case scaleShift = "scale-shift"
}

/// Settings of an evaluation: the valid depth range, the crop and the alignment.
public struct DepthEvaluation: Sendable, Equatable {
    /// Ground truth at or below this is invalid (missing), and predictions are clamped to it.
    public var minDepth: Double
    /// Ground truth at or above this is invalid, and predictions are clamped to it.
    public var maxDepth: Double
    /// The crop of the valid-pixel mask.
    public var crop: EvaluationCrop
    /// How predictions are aligned to the ground truth.
    public var alignment: DepthAlignment

    /// Settings from their values.
    public init(minDepth: Double = 1e-3, maxDepth: Double, crop: EvaluationCrop = .none, alignment: DepthAlignment = .none) {
        self.minDepth = minDepth
        self.maxDepth = maxDepth
        self.crop = crop
        self.alignment = alignment
    }

    /// Pixels that count: ground truth strictly inside `(minDepth, maxDepth)` (which excludes
    /// missing values, 0 or NaN) and inside the crop.
    public func validMask(_ groundTruth: DepthMap) throws(DepthError) -> [Bool] {
        let (rows, columns) = try crop.region(height: groundTruth.height, width: groundTruth.width)
        var mask = [Bool](repeating: false, count: groundTruth.values.count)
        for y in rows {
            for x in columns {
                let g = Double(groundTruth.values[y * groundTruth.width + x])
                mask[y * groundTruth.width + x] = g > minDepth && g < maxDepth
            }
        }
        return mask
    }

    /// The metrics of one image, or nil when no pixel is valid.
    ///
    /// Predictions are aligned, then clamped to `[minDepth, maxDepth]` (a no-op for the dinov2
    /// heads, which clamp to their range; needed for aligned relative predictions and for logs).
    public func metrics(prediction: DepthMap, groundTruth: DepthMap) throws(DepthError) -> DepthMetrics? {
        guard prediction.width == groundTruth.width, prediction.height == groundTruth.height else {
            throw .invalidEvaluation(reason: "prediction is \(prediction.width) x \(prediction.height), ground truth \(groundTruth.width) x \(groundTruth.height)")
        }
        guard minDepth > 0, maxDepth > minDepth else {
            throw .invalidEvaluation(reason: "need 0 < min depth < max depth, got \(minDepth) and \(maxDepth)")
        }
        let mask = try validMask(groundTruth)
        var gt: [Double] = [], pred: [Double] = []
        for i in mask.indices where mask[i] {
            let p = Double(prediction.values[i])
            guard p.isFinite else {
                throw .invalidEvaluation(reason: "the prediction has a non-finite value at pixel (\(i % prediction.width), \(i / prediction.width))")
            }
            gt.append(Double(groundTruth.values[i]))
            pred.append(p)
        }
        guard !gt.isEmpty else { return nil }
        pred = try align(pred, to: gt)
        return DepthMetrics(groundTruth: gt, prediction: pred.map { min(max($0, minDepth), maxDepth) })
    }

    /// The metrics of one image predicted by a model of `kind`, or nil when no pixel is valid.
    ///
    /// Median scaling is a depth operation, so relative inverse depth is inverted before it;
    /// scale-and-shift alignment fits inverse depth itself.
    public func metrics(prediction: DepthMap, groundTruth: DepthMap, kind: DepthKind) throws(DepthError) -> DepthMetrics? {
        var prediction = prediction
        if kind == .relativeDisparity && alignment == .median { prediction.values = prediction.values.map { 1 / $0 } }
        return try metrics(prediction: prediction, groundTruth: groundTruth)
    }

    private func align(_ pred: [Double], to gt: [Double]) throws(DepthError) -> [Double] {
        switch alignment {
        case .none:
            return pred
        case .median:
            let scale = Self.median(gt) / Self.median(pred)
            guard scale.isFinite, scale > 0 else { throw .invalidEvaluation(reason: "median scaling needs positive predictions") }
            return pred.map { $0 * scale }
        case .scaleShift:
            // Normal equations of min over (s, t) of sum (s * p + t - 1 / g)^2.
            let n = Double(pred.count)
            var sp = 0.0, spp = 0.0, sd = 0.0, spd = 0.0
            for (p, g) in zip(pred, gt) {
                let d = 1 / g
                sp += p
                spp += p * p
                sd += d
                spd += p * d
            }
            let det = n * spp - sp * sp
            guard det > 0 else { throw .invalidEvaluation(reason: "scale-and-shift alignment needs a prediction that is not constant") }
            let scale = (n * spd - sp * sd) / det
            let shift = (sd - scale * sp) / n
            return pred.map { 1 / max(scale * $0 + shift, 1 / maxDepth) }
        }
    }

    /// numpy's median: the middle value, or the mean of the two middle values.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}
