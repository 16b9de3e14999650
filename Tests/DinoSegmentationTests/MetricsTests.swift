import DinoTensor
import Foundation
import Testing

@testable import DinoSegmentation

@Suite("segmentation metrics")
struct MetricsTests {
    func maps(_ kind: String) throws -> [LabelMap] {
        let file = try Fixtures.file("metrics.safetensors")
        return try (0..<3).map { i in
            let t = try file.tensor("\(kind).\(i)")
            return LabelMap(width: t.shape[1], height: t.shape[0], labels: t.scalars.map { UInt8($0) })
        }
    }

    @Test("areas, IoU, Acc, aAcc, mIoU and mAcc equal the numpy reference of mmseg's computation", arguments: ["plain", "reduce_zero_label"])
    func matchesReference(_ variant: String) throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("metrics.json"))) as? [String: Any]
        let reference = try #require(json?[variant] as? [String: Any])
        let reduce = variant == "reduce_zero_label"
        let classes = try #require(json?["classes"] as? Int) - (reduce ? 1 : 0)
        var metrics = SegmentationMetrics(numClasses: classes)
        for (prediction, truth) in zip(try maps("prediction"), try maps("truth")) {
            try metrics.add(prediction: prediction, truth: reduce ? truth.reducingZeroLabel() : truth)
        }
        func numbers(_ key: String) throws -> [Double?] {
            try #require(reference[key] as? [Any]).map { $0 as? Double }
        }
        #expect(metrics.areaIntersect == (try numbers("area_intersect")).compactMap { $0 })
        #expect(metrics.areaUnion == (try numbers("area_union")).compactMap { $0 })
        #expect(metrics.areaPrediction == (try numbers("area_pred")).compactMap { $0 })
        #expect(metrics.areaLabel == (try numbers("area_label")).compactMap { $0 })
        func same(_ a: [Double?], _ b: [Double?]) -> Bool {
            a.count == b.count && zip(a, b).allSatisfy { x, y in
                switch (x, y) {
                case (nil, nil): return true
                case let (x?, y?): return abs(x - y) < 1e-12
                default: return false
                }
            }
        }
        #expect(same(metrics.iou, try numbers("iou")), "\(metrics.iou)")
        #expect(same(metrics.accuracy, try numbers("acc")))
        let mIoU = try #require(reference["mIoU"] as? Double), mAcc = try #require(reference["mAcc"] as? Double)
        let aAcc = try #require(reference["aAcc"] as? Double)
        #expect(abs(metrics.meanIoU - mIoU) < 1e-12 && abs(metrics.meanAccuracy - mAcc) < 1e-12 && abs(metrics.pixelAccuracy - aAcc) < 1e-12)
        print("metrics \(variant): mIoU \(metrics.meanIoU) (numpy \(mIoU)), aAcc \(metrics.pixelAccuracy), mAcc \(metrics.meanAccuracy)")
        let table = metrics.table(classNames: DatasetClasses.numbered(classes))
        #expect(table.contains(String(format: "mIoU %.2f", mIoU * 100)))
        let encoded = metrics.json(classNames: DatasetClasses.numbered(classes))
        #expect(encoded["classes"]?.arrayValue?.count == classes)
        #expect(encoded["mIoU"]?.doubleValue.map { abs($0 - mIoU) < 1e-9 } == true)
    }

    @Test("a class absent from truth and prediction is left out of the mean; out-of-range truth is refused")
    func edgeCases() throws {
        var metrics = SegmentationMetrics(numClasses: 3)
        try metrics.add(prediction: LabelMap(width: 4, height: 1, labels: [0, 0, 1, 1]), truth: LabelMap(width: 4, height: 1, labels: [0, 255, 1, 0]))
        #expect(metrics.iou[2] == nil && metrics.iou[0] == 0.5 && metrics.iou[1] == 0.5)
        #expect(metrics.meanIoU == 0.5)
        #expect(throws: SegmentationError.labelOutOfRange(path: "t", label: 7, classes: 3)) {
            try metrics.add(prediction: LabelMap(width: 1, height: 1, labels: [0]), truth: LabelMap(width: 1, height: 1, labels: [7]), path: "t")
        }
        #expect(throws: SegmentationError.self) {
            try metrics.add(prediction: LabelMap(width: 2, height: 1, labels: [0, 0]), truth: LabelMap(width: 1, height: 1, labels: [0]))
        }
    }
}
