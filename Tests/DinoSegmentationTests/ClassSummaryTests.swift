import DinoSegmentation
import Foundation
import Testing

/// Class shares of a label map, the classes of a training run and the feature cache's backbone
/// identity: what `dino segment` and `dino probe train` report and key their work on.
@Suite("Class summaries")
struct ClassSummaryTests {
    @Test("class shares: classes present, most pixels first, ignored pixels left out of the list but not of the total")
    func shares() {
        let map = LabelMap(width: 4, height: 2, labels: [2, 2, 2, 0, 255, 255, 7, 0])
        let shares = map.classShares
        #expect(shares.map(\.label) == [2, 0, 7])
        #expect(shares.map(\.pixels) == [3, 2, 1])
        let fractions: [Double] = [0.375, 0.25, 0.125]
        #expect(shares.map(\.fraction) == fractions)
        #expect(LabelMap(width: 1, height: 1, filling: 255).classShares.isEmpty)
    }

    @Test("training classes: the dataset's names, extended on request; numbered names otherwise; impossible counts refused")
    func trainingClasses() throws {
        #expect(try DatasetClasses.forTraining(datasetNames: ["sky", "road"], count: nil, largestLabel: 1) == ["sky", "road"])
        #expect(try DatasetClasses.forTraining(datasetNames: ["sky", "road"], count: 4, largestLabel: 3) == ["sky", "road", "class2", "class3"])
        #expect(try DatasetClasses.forTraining(datasetNames: nil, count: nil, largestLabel: 2) == ["class0", "class1", "class2"])
        #expect(try DatasetClasses.forTraining(datasetNames: nil, count: 5, largestLabel: 2).count == 5)
        #expect(throws: SegmentationError.self) { try DatasetClasses.forTraining(datasetNames: ["a", "b", "c"], count: 2, largestLabel: 1) }
        #expect(throws: SegmentationError.self) { try DatasetClasses.forTraining(datasetNames: ["a"], count: nil, largestLabel: 3) }
        #expect(throws: SegmentationError.self) { try DatasetClasses.forTraining(datasetNames: nil, count: nil, largestLabel: nil) }
    }

    @Test("the backbone identity changes with the name and with the weight files, not with other files")
    func backboneIdentity() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("identity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data([1, 2, 3]).write(to: folder.appendingPathComponent("model.safetensors"))
        let first = FeatureCache.backboneIdentity(name: "m", folder: folder)
        #expect(first.hasPrefix("m|model.safetensors:3:"))
        try Data("{}".utf8).write(to: folder.appendingPathComponent("config.json"))
        #expect(FeatureCache.backboneIdentity(name: "m", folder: folder) == first)
        #expect(FeatureCache.backboneIdentity(name: "other", folder: folder) != first)
        try Data([1, 2, 3, 4]).write(to: folder.appendingPathComponent("model.safetensors"))
        #expect(FeatureCache.backboneIdentity(name: "m", folder: folder) != first)
    }
}
