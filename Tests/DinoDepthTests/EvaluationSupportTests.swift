import DinoDepth
import DinoTensor
import Foundation
import Testing

/// What `dino depth eval` relies on: the dataset presets, the evaluation's file names and relative
/// predictions under median scaling.
@Suite("Depth evaluation support")
struct EvaluationSupportTests {
    @Test("nyu and kitti presets: range, crop and PNG units, the same ranges the heads default to")
    func presets() throws {
        let nyu = try #require(DepthEvaluationPreset.named("nyu"))
        #expect(nyu.evaluation(alignment: .median) == DepthEvaluation(minDepth: 0.001, maxDepth: 10, crop: .nyuEigen, alignment: .median))
        #expect(nyu.depthScale == 1000)
        let kitti = try #require(DepthEvaluationPreset.named("kitti"))
        #expect(kitti.evaluation() == DepthEvaluation(minDepth: 0.001, maxDepth: 80, crop: .garg))
        #expect(kitti.depthScale == 256)
        #expect(DepthEvaluationPreset.named("sunrgbd") == nil)
        for preset in DepthEvaluationPreset.all {
            let range = try #require(DepthHeadConfiguration.datasetRanges[preset.name])
            #expect(range.min == Float(preset.minDepth) && range.max == Float(preset.maxDepth))
        }
    }

    @Test("ground truth, predictions and map folders are found by name")
    func files() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("depth-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["a.png", "b.npy", "b.depth16.png", "c.depth.npy", "c.npy", "d.depth16.png", "notes.txt"] {
            try Data().write(to: folder.appendingPathComponent(name))
        }
        #expect(try DepthFile.groundTruth(for: URL(fileURLWithPath: "/photos/a.jpg"), in: folder).lastPathComponent == "a.png")
        #expect(try DepthFile.groundTruth(for: URL(fileURLWithPath: "/photos/b.jpg"), in: folder).lastPathComponent == "b.npy")
        // An image folder used as its own ground-truth folder: the image is not its ground truth.
        #expect(throws: DepthError.self) { try DepthFile.groundTruth(for: folder.appendingPathComponent("a.png"), in: folder) }
        #expect(try DepthFile.prediction("c", in: folder).lastPathComponent == "c.depth.npy")
        #expect(try DepthFile.prediction("b", in: folder).lastPathComponent == "b.npy")
        #expect(try DepthFile.prediction("d", in: folder).lastPathComponent == "d.depth16.png")
        #expect(throws: DepthError.self) { try DepthFile.prediction("a", in: folder) }
        #expect(try DepthFile.maps(in: folder).map(\.lastPathComponent) == ["a.png", "b.depth16.png", "b.npy", "c.depth.npy", "c.npy", "d.depth16.png"])
        #expect(throws: DepthError.self) { try DepthFile.maps(in: folder.appendingPathComponent("absent")) }
    }

    @Test("median scaling of relative inverse depth inverts it first; scale-and-shift does not")
    func relativeMedian() throws {
        let truth = DepthMap(width: 3, height: 1, values: [1, 2, 4])
        let disparity = DepthMap(width: 3, height: 1, values: [3, 1.5, 0.75])
        let median = DepthEvaluation(minDepth: 0.1, maxDepth: 10, alignment: .median)
        let metrics = try #require(try median.metrics(prediction: disparity, groundTruth: truth, kind: .relativeDisparity))
        #expect(metrics.absRel < 1e-12 && metrics.delta1 == 1)
        let asDepth = try #require(try median.metrics(prediction: disparity, groundTruth: truth, kind: .metric(0.1...10)))
        #expect(asDepth == (try median.metrics(prediction: disparity, groundTruth: truth)) && asDepth.absRel > 0.5)
        let shift = DepthEvaluation(minDepth: 0.1, maxDepth: 10, alignment: .scaleShift)
        #expect(try shift.metrics(prediction: disparity, groundTruth: truth, kind: .relativeDisparity)
                == (try shift.metrics(prediction: disparity, groundTruth: truth)))
    }
}
