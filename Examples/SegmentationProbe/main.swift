// Trains a linear segmentation probe (dinov2's BNHead) on a frozen backbone, measures its mIoU
// and paints its predictions, with the library API.
//
//   swift run -c release SegmentationProbe MODEL DATASET [PHOTO...]
//   swift run -c release SegmentationProbe Tests/DinoSegmentationTests/Fixtures/model \
//       Tests/DinoSegmentationTests/Fixtures/colours Examples/images/coffee.png
//
// MODEL is a folder laid out as on the Hugging Face hub. DATASET has images/{train,val}/ and
// masks/{train,val}/ (PNG masks of class indices, 255 ignored) and classes.txt; the bundled
// `colours` set labels crops of the example photos dark / warm / cool / pale by colour. With the
// bundled random-weight model the probe learns colour from random features; with real weights
// (facebook/dinov2-with-registers-small) it learns semantics.
import DinoImage
import DinoModel
import DinoSegmentation
import DinoTensor
import Foundation

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: SegmentationProbe MODEL_FOLDER DATASET [PHOTO...]\n".utf8))
    exit(2)
}

do {
    // 1. The frozen backbone, and what feeds the head: the last block's patch tokens after the
    //    final LayerNorm ("linear"; `.last(4)` is the "ms" head), from images whose short side
    //    is resized to 112 px (rounded to a multiple of the patch size).
    let model = try VisionTransformer(directory: URL(fileURLWithPath: arguments[1]))
    let preprocessing = Preprocessing.resize(shortSide: 112)
    let extractor = try FeatureExtractor(model: model, layers: .last(1), preprocessing: preprocessing)

    // 2. The dataset: the layout (folders, VOC or ADE20K) is detected from its sub-folders.
    let root = URL(fileURLWithPath: arguments[2])
    let train = try SegmentationDataset(root: root, split: "train")
    let validation = try SegmentationDataset(root: root, split: "val")
    let classNames = train.classNames ?? DatasetClasses.numbered(4)
    print("dataset: \(train.samples.count) training and \(validation.samples.count) validation images, classes \(classNames)")

    // 3. Features computed once and kept on disk; epochs read the cache, not the backbone.
    let cache = try FeatureCache.build(dataset: train, extractor: extractor, backboneIdentity: arguments[1],
                                       folder: URL(fileURLWithPath: "segmentation-probe.cache"))
    print("feature cache: \(cache.count) images (\(cache.reused ? "reused" : "computed"))")

    // 4. A fresh head (mmseg's initialisation) trained with AdamW, a warm-up of one epoch and
    //    poly decay; BatchNorm learns its statistics from the batches. One seed, one head.
    let configuration = SegmentationHeadConfiguration(
        layers: .last(1), classNames: classNames, backbone: arguments[1], inputPolicy: InputPolicy.text(preprocessing))
    let start = try SegmentationHead(configuration: configuration, channels: extractor.channels, seed: 0)
    let options = ProbeTrainingOptions(epochs: 30, batchSize: 4,
                                       schedule: LearningRateSchedule(baseRate: 1e-2, decay: .poly(power: 1), warmupIterations: 4),
                                       seed: 0, threads: ProcessInfo.processInfo.activeProcessorCount)
    let (head, losses) = try ProbeTrainer.train(start, on: cache, options: options) { progress in
        if progress.iterationInEpoch == progress.iterationsPerEpoch && (progress.epoch + 1) % 10 == 0 {
            print(String(format: "epoch %d: mean loss %.4f", progress.epoch + 1, progress.epochLoss))
        }
    }
    print(String(format: "loss %.3f -> %.3f", losses.first ?? 0, losses.last ?? 0))
    try SegmentationHeadFile.write(head, to: URL(fileURLWithPath: "segmentation-probe.safetensors"))

    // 5. mIoU on the validation images, each segmented at its original size.
    let segmenter = try Segmenter(model: model, head: head)
    let metrics = try segmenter.evaluate(validation, preprocessing: preprocessing)
    print(metrics.table(classNames: classNames))

    // 6. Label maps and overlays of other photos.
    for path in arguments.dropFirst(3) {
        let url = URL(fileURLWithPath: path)
        let image = try ImageIO.read(url)
        let labels = try segmenter.segment(try preprocessing.prepare(image, patchSize: model.configuration.patchSize))
        let stem = url.deletingPathExtension().lastPathComponent
        try LabelMapFile.write(labels, to: URL(fileURLWithPath: "\(stem).labels.png"))
        try ImageIO.write(SegmentationPalette.standard.overlay(image, labels: labels, classNames: classNames),
                          to: URL(fileURLWithPath: "\(stem).overlay.png"))
        print("wrote \(stem).labels.png and \(stem).overlay.png")
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
