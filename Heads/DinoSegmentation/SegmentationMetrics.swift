import DinoTensor
import Foundation

/// Segmentation scores accumulated over a dataset, as mmseg computes them.
///
/// Per class, over every image: the pixels where prediction and truth agree (intersection),
/// the predicted pixels, the true pixels, and the union `predicted + true - intersection`;
/// pixels whose truth is the ignore index count nowhere. IoU and accuracy are ratios of these
/// totals (not means of per-image ratios); a class with an empty union (absent from both truth
/// and predictions) has no IoU and is left out of the mean, and a class absent from the truth
/// has no accuracy.
///
/// ref: mmseg `intersect_and_union`, `total_intersect_and_union` and `total_area_to_metrics`
/// (`aAcc = sum(intersect) / sum(label)`, `IoU = intersect / union`, `Acc = intersect / label`),
/// summarised with `np.nanmean`.
public struct SegmentationMetrics: Sendable, Equatable {
    /// Classes `K`.
    public let numClasses: Int
    /// Per-class intersection areas.
    public private(set) var areaIntersect: [Double]
    /// Per-class union areas.
    public private(set) var areaUnion: [Double]
    /// Per-class predicted areas.
    public private(set) var areaPrediction: [Double]
    /// Per-class ground-truth areas.
    public private(set) var areaLabel: [Double]
    /// Images added.
    public private(set) var images = 0

    /// Empty totals for `numClasses` classes.
    public init(numClasses: Int) {
        self.numClasses = numClasses
        areaIntersect = [Double](repeating: 0, count: numClasses)
        areaUnion = areaIntersect
        areaPrediction = areaIntersect
        areaLabel = areaIntersect
    }

    /// Adds one image's prediction and ground truth (same size; truth labels must be classes or
    /// the ignore index, named by `path` in errors).
    public mutating func add(prediction: LabelMap, truth: LabelMap, path: String = "ground truth") throws(SegmentationError) {
        guard prediction.width == truth.width, prediction.height == truth.height else {
            throw .sizeMismatch(what: "prediction for \(path)", expected: "\(truth.width)x\(truth.height)", actual: "\(prediction.width)x\(prediction.height)")
        }
        try truth.validate(classes: numClasses, path: path)
        var intersect = [Int](repeating: 0, count: numClasses), predicted = intersect, labelled = intersect
        for (p, t) in zip(prediction.labels, truth.labels) where t != LabelMap.ignoreIndex {
            labelled[Int(t)] += 1
            // Predictions outside the classes fall outside mmseg's histogram bins.
            guard Int(p) < numClasses else { continue }
            predicted[Int(p)] += 1
            if p == t { intersect[Int(p)] += 1 }
        }
        for c in 0..<numClasses {
            areaIntersect[c] += Double(intersect[c])
            areaPrediction[c] += Double(predicted[c])
            areaLabel[c] += Double(labelled[c])
            areaUnion[c] += Double(predicted[c] + labelled[c] - intersect[c])
        }
        images += 1
    }

    /// Per-class IoU; nil where the union is empty.
    public var iou: [Double?] { zip(areaIntersect, areaUnion).map { $1 > 0 ? $0 / $1 : nil } }
    /// Per-class accuracy (recall); nil where the class is absent from the truth.
    public var accuracy: [Double?] { zip(areaIntersect, areaLabel).map { $1 > 0 ? $0 / $1 : nil } }
    /// Mean IoU over the classes that have one (NaN if none).
    public var meanIoU: Double { Self.mean(iou) }
    /// Mean accuracy over the classes present in the truth (NaN if none).
    public var meanAccuracy: Double { Self.mean(accuracy) }
    /// Correct pixels over labelled pixels (NaN if none).
    public var pixelAccuracy: Double {
        let labelled = areaLabel.reduce(0, +)
        return labelled > 0 ? areaIntersect.reduce(0, +) / labelled : .nan
    }

    private static func mean(_ values: [Double?]) -> Double {
        let present = values.compactMap { $0 }
        return present.isEmpty ? .nan : present.reduce(0, +) / Double(present.count)
    }

    /// A text table: one row per class (IoU and accuracy in percent, `-` when undefined), then
    /// the summary (aAcc, mIoU, mAcc), as mmseg prints it.
    public func table(classNames: [String]) -> String {
        let names = (0..<numClasses).map { $0 < classNames.count ? classNames[$0] : "class\($0)" }
        let width = max(5, names.map(\.count).max() ?? 5)
        func cell(_ v: Double?) -> String { v.map { String(format: "%6.2f", $0 * 100) } ?? "     -" }
        func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var lines = ["\(pad("class"))    IoU    Acc"]
        for c in 0..<numClasses { lines.append("\(pad(names[c]))  \(cell(iou[c]))  \(cell(accuracy[c]))") }
        lines.append(String(format: "aAcc %.2f  mIoU %.2f  mAcc %.2f  (%d images)", pixelAccuracy * 100, meanIoU * 100, meanAccuracy * 100, images))
        return lines.joined(separator: "\n")
    }

    /// The scores as JSON: `aAcc`, `mIoU`, `mAcc` (fractions; null when undefined), `images`, and
    /// per class its name, `iou`, `acc` and the four areas.
    public func json(classNames: [String]) -> JSONValue {
        func number(_ v: Double?) -> JSONValue {
            guard let v, v.isFinite else { return .null }
            return .number(String(format: "%.10g", v))
        }
        let classes: [JSONValue] = (0..<numClasses).map { c in
            .object([
                ("index", .number(String(c))), ("name", .string(c < classNames.count ? classNames[c] : "class\(c)")),
                ("iou", number(iou[c])), ("acc", number(accuracy[c])),
                ("area_intersect", number(areaIntersect[c])), ("area_union", number(areaUnion[c])),
                ("area_pred", number(areaPrediction[c])), ("area_label", number(areaLabel[c])),
            ])
        }
        return .object([
            ("aAcc", number(pixelAccuracy)), ("mIoU", number(meanIoU)), ("mAcc", number(meanAccuracy)),
            ("images", .number(String(images))), ("classes", .array(classes)),
        ])
    }
}
