import Foundation

/// One image of an object-discovery benchmark with its ground-truth boxes.
public struct GroundTruthImage: Sendable, Equatable {
    /// The dataset's identifier of the image (VOC: the split file's id; COCO: the image id).
    public var id: String
    /// The image file.
    public var url: URL
    /// Ground-truth boxes in pixels, end excluded (already converted from the dataset's convention).
    public var boxes: [BoundingBox]

    /// An image from its id, file and boxes.
    public init(id: String, url: URL, boxes: [BoundingBox]) {
        self.id = id
        self.url = url
        self.boxes = boxes
    }
}

/// The images of a benchmark split, ready for CorLoc.
public struct DiscoveryDataset: Sendable {
    /// A name for reports, such as "VOC trainval".
    public var name: String
    /// The images to evaluate, in the dataset's order.
    public var images: [GroundTruthImage]
    /// Images left out on purpose, as LOST leaves them out: with `removeHard`, the VOC images
    /// whose objects are all truncated or difficult.
    public var excluded: [String]
    /// Images whose annotations could not be used, with why; a report lists them as failures.
    public var failures: [(id: String, reason: String)]
}

/// How one predicted box fared.
public struct CorLocRecord: Sendable, Equatable {
    /// The image's id.
    public var id: String
    /// The predicted box.
    public var predicted: BoundingBox
    /// The largest IoU with a ground-truth box (0 without any).
    public var bestIoU: Float
    /// Whether some ground-truth box has IoU >= 0.5 with the prediction.
    public var correct: Bool
}

// ref: valeoai/LOST main_lost.py (`if torch.any(ious >= 0.5): corloc[im_id] = 1`, then
// `100 * sum(corloc) / cnt` over the images evaluated).
/// Correct localization (CorLoc): the percentage of images whose predicted box has an IoU of
/// at least 0.5 with at least one ground-truth box.
public struct CorLoc: Sendable {
    /// The images evaluated so far, in order.
    public private(set) var records: [CorLocRecord] = []

    /// An empty evaluation.
    public init() {}

    /// Scores `predicted` against `groundTruth` and records it. An image without ground-truth
    /// boxes counts as a miss (LOST's evaluation has no defined result for it).
    @discardableResult
    public mutating func add(id: String, predicted: BoundingBox, groundTruth: [BoundingBox]) -> CorLocRecord {
        let ious = groundTruth.map { predicted.intersectionOverUnion($0) }
        let record = CorLocRecord(id: id, predicted: predicted, bestIoU: ious.max() ?? 0, correct: ious.contains { $0 >= 0.5 })
        records.append(record)
        return record
    }

    /// Images with a correct box.
    public var found: Int { records.filter(\.correct).count }

    /// Images evaluated.
    public var evaluated: Int { records.count }

    /// CorLoc in percent (0 before any image).
    public var percentage: Double { records.isEmpty ? 0 : 100 * Double(found) / Double(records.count) }
}
