import DinoImage
import DinoModel
import DinoTensor
import Foundation
import Testing

@testable import DinoSegmentation

@Suite("datasets and the feature cache")
struct DatasetTests {
    @Test("VOC layout: split lists, palette masks, 21 classes")
    func voc() throws {
        let train = try SegmentationDataset(root: Fixtures.url("voc"))
        #expect(train.layout == .voc && train.split == "train" && train.samples.map(\.id) == ["2007_000032", "2007_000039"])
        #expect(train.classNames == DatasetClasses.voc && !train.reduceZeroLabel)
        let val = try SegmentationDataset(root: Fixtures.url("voc"), split: "val")
        let labels = try val.labels(of: val.samples[0])
        #expect(labels.width == 42 && labels.height == 42 && labels.labels.prefix(84).allSatisfy { $0 == 255 })
        #expect((labels.largestLabel ?? 99) <= 20)
        #expect(throws: SegmentationError.self) { try SegmentationDataset(root: Fixtures.url("voc"), split: "test") }
    }

    @Test("ADE20K layout: training/validation (and train/val), reduce_zero_label")
    func ade() throws {
        let train = try SegmentationDataset(root: Fixtures.url("ade"), split: "train")
        #expect(train.layout == .ade20k && train.split == "training" && train.samples.count == 2 && train.reduceZeroLabel)
        let raw = try LabelMapFile.read(train.samples[0].mask)
        let reduced = try train.labels(of: train.samples[0])
        #expect(raw.labels[0] == 0 && reduced.labels[0] == 255 && raw.labels[1] == 150 && reduced.labels[1] == 149)
        #expect(try SegmentationDataset(root: Fixtures.url("ade"), split: "validation").samples.map(\.id) == ["ADE_val_00000001"])
    }

    @Test("an ADE20K copy holding only the validation split is recognised from the split asked for")
    func adeValidationOnly() throws {
        let scratch = try ScratchFolder()
        let root = scratch.path("ade")
        for part in ["images/validation", "annotations/validation"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(part).deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url("ade").appendingPathComponent(part), to: root.appendingPathComponent(part))
        }
        for split in ["validation", "val"] {
            #expect(SegmentationDataset.detectLayout(root) { _ in split } == .ade20k)
            let set = try SegmentationDataset(root: root, split: split)
            #expect(set.layout == .ade20k && set.split == "validation" && set.samples.map(\.id) == ["ADE_val_00000001"])
        }
        // The training split it lacks is not a known layout, and the message names the split.
        #expect(SegmentationDataset.detectLayout(root) == nil)
        #expect {
            try SegmentationDataset(root: root, split: "training")
        } throws: { error in
            "\(error)".contains("images/training + annotations/training")
        }
    }

    @Test("folders layout with classes.txt; a missing mask or layout is an error naming the file")
    func folders() throws {
        let scratch = try ScratchFolder()
        let root = scratch.path("set")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("images"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("masks"), withIntermediateDirectories: true)
        try ImageIO.write(RGBImage(width: 20, height: 10, color: (1, 2, 3)), to: root.appendingPathComponent("images/b.png"))
        try ImageIO.write(RGBImage(width: 20, height: 10, color: (1, 2, 3)), to: root.appendingPathComponent("images/a.jpg"))
        try LabelMapFile.write(LabelMap(width: 20, height: 10, filling: 1), to: root.appendingPathComponent("masks/a.png"))
        try LabelMapFile.write(LabelMap(width: 20, height: 10, filling: 0), to: root.appendingPathComponent("masks/b.png"))
        try "sky\nground\n".write(to: root.appendingPathComponent("classes.txt"), atomically: true, encoding: .utf8)
        let set = try SegmentationDataset(root: root)
        #expect(set.layout == .folders && set.samples.map(\.id) == ["a", "b"] && set.classNames == ["sky", "ground"])
        try FileManager.default.removeItem(at: root.appendingPathComponent("masks/b.png"))
        do {
            _ = try SegmentationDataset(root: root)
            Issue.record("accepted an image without mask")
        } catch {
            #expect(error.description.contains("b.png"))
        }
        #expect(throws: SegmentationError.self) { try SegmentationDataset(root: scratch.path("nothing")) }
    }

    @Test("the cache is built once, reused, rebuilt when an input changes, and gives what the extractor computes")
    func cache() throws {
        let scratch = try ScratchFolder()
        let model = try Fixtures.model()
        let dataset = try SegmentationDataset(root: Fixtures.url("voc"))
        let extractor = try FeatureExtractor(model: model, layers: .last(4), preprocessing: .resize(shortSide: 28))
        let folder = scratch.path("cache")
        var calls = 0
        let first = try FeatureCache.build(dataset: dataset, extractor: extractor, backboneIdentity: "fixture", folder: folder) { _, _, _ in calls += 1 }
        #expect(!first.reused && calls == 2 && first.count == 2 && (first.largestLabel ?? -1) <= 20)
        let sample = try first.sample(0)
        let image = try ImageIO.read(dataset.samples[0].image)
        let direct = try extractor.features(of: image)
        #expect(sample.features == direct.features && sample.features.shape == [128, 2, 3])  // 42x56 resized to 28x42: a 2x3 grid
        #expect(sample.labels.width == direct.contentWidth && sample.labels.height == direct.contentHeight)
        #expect(sample.labels == (try dataset.labels(of: dataset.samples[0])).resized(width: direct.contentWidth, height: direct.contentHeight))
        let again = try FeatureCache.build(dataset: dataset, extractor: extractor, backboneIdentity: "fixture", folder: folder)
        #expect(again.reused)
        let other = try FeatureCache.build(dataset: dataset, extractor: extractor, backboneIdentity: "another model", folder: folder)
        #expect(!other.reused)
    }
}
