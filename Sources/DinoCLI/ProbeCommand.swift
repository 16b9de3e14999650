import ArgumentParser
import DinoCompute
import DinoImage
import DinoModel
import DinoSegmentation
import DinoTensor
import Foundation

/// `dino probe`: train and evaluate linear segmentation probes on the frozen backbone.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Train and evaluate linear segmentation probes (dinov2 BNHead) on the frozen backbone.",
        discussion: """
            Datasets: a folder with images/ and masks/ (optionally a split sub-folder in each, and \
            classes.txt with one class name per line), Pascal VOC (JPEGImages, \
            SegmentationClass, ImageSets/Segmentation/<split>.txt) or ADE20K \
            (images/{training,validation}, annotations/...; label 0 is ignored and the others \
            shift down by one). Masks are PNGs of class indices (8-bit grey or palette); 255 is \
            ignored.
            """,
        subcommands: [ProbeTrainCommand.self, ProbeEvalCommand.self])
}

/// `--dataset`, `--layout` and `--split`.
struct DatasetOptions: ParsableArguments {
    @Option(name: .long, help: "Dataset folder.")
    var dataset: String

    @Option(name: .long, help: "Layout: auto, folders, voc or ade20k.")
    var layout: String = "auto"

    @Option(name: .long, help: "Split: a sub-folder of images/ and masks/, a VOC ImageSets list, or ADE20K's training / validation.")
    var split: String?

    func validate() throws {
        if layout != "auto" && DatasetLayout(rawValue: layout) == nil {
            throw ValidationError("--layout must be auto, folders, voc or ade20k")
        }
    }

    /// The dataset; `fallbackSplit(layout)` names the split when none is given.
    func load(fallbackSplit: (DatasetLayout) -> String? = { _ in nil }) throws -> SegmentationDataset {
        let root = URL(fileURLWithPath: dataset)
        let chosen = DatasetLayout(rawValue: layout) ?? SegmentationDataset.detectLayout(root) { split ?? fallbackSplit($0) }
        return try SegmentationDataset(root: root, layout: chosen, split: split ?? chosen.flatMap(fallbackSplit))
    }
}

/// `dino probe train`.
struct ProbeTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a linear head on a labelled dataset and save it as .safetensors.",
        discussion: """
            The backbone stays frozen: the head input of every training image (the chosen \
            blocks' patch tokens after the final LayerNorm, concatenated) is computed once and \
            cached on disk (--cache, by default OUTPUT.cache/; reused when the model, layers, \
            preprocessing and files are unchanged), then each epoch reads the cache. The head \
            (BatchNorm + 1x1 conv, as dinov2's BNHead) is trained with softmax cross-entropy on \
            the logits upsampled to each image's size (255 ignored), BatchNorm in training mode, \
            and AdamW or SGD with a warm-up and poly or cosine decay. One --seed gives one head.

            The defaults are the released dinov2 linear heads' optimiser settings (AdamW, lr \
            1e-3, weight decay 1e-4, poly decay) with one epoch of warm-up. The head file records \
            its classes, layers, backbone and input policy, so `dino segment` and `dino probe \
            eval` prepare images the same way.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var data: DatasetOptions
    @OptionGroup var preprocess: PreprocessOptions

    @Option(name: .long, help: "Backbone blocks: linear (the last), ms (the last four), last:N or blocks:i,j,... (0-based).")
    var layers: String = "linear"

    @Option(name: .long, help: "Number of classes (default: the dataset's class list, else the largest mask label + 1).")
    var classes: Int?

    @Option(name: .long, help: "Passes over the training set.")
    var epochs = 20

    @Option(name: .long, help: "Images per iteration.")
    var batchSize = 8

    @Option(name: .long, help: "Optimiser: adamw or sgd.")
    var optimizer = "adamw"

    @Option(name: .long, help: "Learning rate after warm-up.")
    var lr = 1e-3

    @Option(name: .long, help: "Learning rate at the end of the decay.")
    var minLr = 0.0

    @Option(name: .long, help: "Weight decay (decoupled for AdamW, added to the gradient for SGD).")
    var weightDecay: Float = 1e-4

    @Option(name: .long, help: "SGD momentum.")
    var momentum: Float = 0.9

    @Option(name: .long, help: "Decay after warm-up: poly, cosine or constant.")
    var schedule = "poly"

    @Option(name: .long, help: "Power of the poly decay.")
    var power = 1.0

    @Option(name: .long, help: "Warm-up iterations (default: one epoch).")
    var warmup: Int?

    @Option(name: .long, help: "Fraction of the learning rate the warm-up starts from.")
    var warmupRatio = 1e-6

    @Option(name: .long, help: "Seed of the initialisation and the shuffling.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Feature cache folder (default: OUTPUT.cache).")
    var cache: String?

    @Option(name: .shortAndLong, help: "Where to save the head (.safetensors).")
    var output: String

    @Option(name: .long, help: "After training, evaluate on this split of the dataset.")
    var evalSplit: String?

    @Option(name: .long, help: "Write the training record (losses per epoch, settings, evaluation) as JSON to this file.")
    var json: String?

    func validate() throws {
        _ = try LayerSelection(text: layers)
        if let classes, !(1...255).contains(classes) { throw ValidationError("--classes must be in 1...255") }
        if !["adamw", "sgd"].contains(optimizer) { throw ValidationError("--optimizer must be adamw or sgd") }
        if !["poly", "cosine", "constant"].contains(schedule) { throw ValidationError("--schedule must be poly, cosine or constant") }
        if !output.hasSuffix(".safetensors") { throw ValidationError("--output must end in .safetensors") }
        if preprocess.classification { throw ValidationError("--classification crops the image; segmentation needs all of it") }
        if let warmup, warmup < 0 { throw ValidationError("--warmup must be >= 0") }
    }

    func run() throws {
        let started = DispatchTime.now().uptimeNanoseconds
        let (model, folder) = try modelOptions.load()
        let dataset = try data.load()
        let preset = try preprocess.preset(modelFolder: folder, fallback: .resize(shortSide: 448))
        let selection = try LayerSelection(text: layers)
        let extractor = try FeatureExtractor(model: model, layers: selection, preprocessing: preset)
        let outputURL = URL(fileURLWithPath: output)
        let cacheURL = URL(fileURLWithPath: cache ?? output.replacingOccurrences(of: ".safetensors", with: "") + ".cache")

        let identity = FeatureCache.backboneIdentity(name: modelOptions.model, folder: folder)
        let bar = ProgressBar(label: "features", total: dataset.samples.count)
        let cacheStart = DispatchTime.now().uptimeNanoseconds
        let featureCache = try FeatureCache.build(dataset: dataset, extractor: extractor, backboneIdentity: identity, folder: cacheURL) { _, _, name in
            bar.advance(note: name)
        }
        bar.finish()
        let cacheSeconds = Double(DispatchTime.now().uptimeNanoseconds - cacheStart) / 1e9
        printError(String(format: "features: %d images %@ %@ (%.1f s)", featureCache.count,
                          featureCache.reused ? "reused from" : "cached in", cacheURL.path, cacheSeconds))

        let names = try DatasetClasses.forTraining(datasetNames: dataset.classNames, count: classes, largestLabel: featureCache.largestLabel)
        let configuration = SegmentationHeadConfiguration(
            layers: selection, classNames: names, backbone: modelOptions.model, inputPolicy: InputPolicy.text(preset),
            reduceZeroLabel: dataset.reduceZeroLabel)
        let initial = try SegmentationHead(configuration: configuration, channels: extractor.channels, seed: seed)
        let perEpoch = (featureCache.count + batchSize - 1) / batchSize
        let options = ProbeTrainingOptions(
            epochs: epochs, batchSize: batchSize, optimizer: optimizer == "sgd" ? .sgd(momentum: momentum) : .adamW(),
            weightDecay: weightDecay,
            schedule: LearningRateSchedule(baseRate: lr, minimumRate: minLr, decay: decay, warmupIterations: warmup ?? perEpoch, warmupRatio: warmupRatio),
            seed: seed, threads: ComputeThreads.current)
        let trainStart = DispatchTime.now().uptimeNanoseconds
        var epochBar: ProgressBar?
        let (trained, losses) = try ProbeTrainer.train(initial, on: featureCache, options: options) { event in
            if event.iterationInEpoch == 1 { epochBar = ProgressBar(label: "epoch \(event.epoch + 1)/\(epochs)", total: event.iterationsPerEpoch) }
            epochBar?.advance(note: String(format: "loss %.4f lr %.2e", event.loss, event.learningRate))
            if event.iterationInEpoch == event.iterationsPerEpoch {
                epochBar?.finish()
                printError(String(format: "epoch %d/%d: mean loss %.4f", event.epoch + 1, epochs, event.epochLoss))
            }
        }
        let trainSeconds = Double(DispatchTime.now().uptimeNanoseconds - trainStart) / 1e9
        var head = trained
        head.configuration.notes = [
            "dataset": dataset.root.path, "split": dataset.split ?? "", "images": String(featureCache.count), "epochs": String(epochs),
            "batch_size": String(batchSize), "optimizer": optimizer, "lr": String(lr), "weight_decay": String(weightDecay),
            "schedule": schedule, "warmup": String(options.schedule.warmupIterations), "seed": String(seed),
            "final_loss": String(format: "%.6f", losses.last ?? .nan),
        ]
        try SegmentationHeadFile.write(head, to: outputURL)
        printError(String(format: "saved %@: %d classes, layers %@, %d channels; %d epochs of %d iterations in %.1f s, final loss %.4f",
                          outputURL.path, head.numClasses, selection.text, head.channels, epochs, perEpoch, trainSeconds, losses.last ?? .nan))

        var evaluation: JSONValue = .null
        if let evalSplit {
            let evalSet = try SegmentationDataset(root: dataset.root, layout: dataset.layout, split: evalSplit)
            let segmenter = try Segmenter(model: model, head: head)
            let evalBar = ProgressBar(label: "eval", total: evalSet.samples.count)
            let metrics = try segmenter.evaluate(evalSet, preprocessing: preset, progress: { _, _, name in evalBar.advance(note: name) })
            evalBar.finish()
            print(metrics.table(classNames: names))
            evaluation = metrics.json(classNames: names)
        }
        if let json {
            let totalSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            let record = JSONValue.object([
                ("head", .string(outputURL.path)), ("classes", .array(names.map { .string($0) })), ("layers", .string(selection.text)),
                ("epochs", .number(String(epochs))), ("iterations_per_epoch", .number(String(perEpoch))), ("seed", .number(String(seed))),
                ("epoch_losses", .array(losses.map { .number(String(format: "%.8g", $0)) })),
                ("cache_reused", .bool(featureCache.reused)), ("feature_seconds", .number(String(format: "%.3f", cacheSeconds))),
                ("train_seconds", .number(String(format: "%.3f", trainSeconds))), ("total_seconds", .number(String(format: "%.3f", totalSeconds))),
                ("evaluation", evaluation),
            ])
            try AtomicFile.write(to: URL(fileURLWithPath: json)) { try $0.write(contentsOf: Data(record.serialized.utf8)) }
        }
    }

    private var decay: LearningRateDecay {
        switch schedule {
        case "cosine": return .cosine
        case "constant": return .constant
        default: return .poly(power: power)
        }
    }
}

/// `dino probe eval`.
struct ProbeEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a head's mIoU, per-class IoU and pixel accuracy on a labelled dataset.",
        discussion: """
            Each image is segmented at its original size (as `dino segment` does) and compared \
            with its mask; intersections and unions are summed over the dataset, and classes \
            absent from both the masks and the predictions are left out of the mean, as mmseg \
            computes mIoU. The split defaults to val (VOC), validation (ADE20K) or the images/ \
            folder. Prints a table; --json writes the scores.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var data: DatasetOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var head: HeadOptions
    @OptionGroup var window: WindowOptions

    @Option(name: .long, help: "Write the scores as JSON to this file.")
    var json: String?

    @Option(name: .long, help: "Also write each predicted label map (<id>.png, palette PNG) to this folder.")
    var predictions: String?

    func validate() throws {
        if preprocess.classification { throw ValidationError("--classification crops the image; segmentation needs all of it") }
    }

    func run() throws {
        let (model, folder) = try modelOptions.load()
        let loaded = try head.load(hiddenSize: model.configuration.hiddenSize)
        let segmenter = try Segmenter(model: model, head: loaded)
        let preset = try preprocess.preset(modelFolder: folder, fallback: try loaded.defaultPreprocessing())
        let dataset = try data.load { layout in
            switch layout {
            case .voc: return "val"
            case .ade20k: return "validation"
            case .folders: return nil
            }
        }
        if dataset.reduceZeroLabel != loaded.configuration.reduceZeroLabel {
            printError("warning: the dataset \(dataset.reduceZeroLabel ? "uses" : "does not use") reduce_zero_label but the head was trained \(loaded.configuration.reduceZeroLabel ? "with" : "without") it")
        }
        let predictionFolder = try predictions.map { path -> URL in
            let url = URL(fileURLWithPath: path)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            return url
        }
        let names = loaded.configuration.classNames
        let bar = ProgressBar(label: "eval", total: dataset.samples.count)
        let started = DispatchTime.now().uptimeNanoseconds
        let metrics = try segmenter.evaluate(dataset, preprocessing: preset, mode: try window.mode(), prediction: { sample, map in
            if let predictionFolder { try LabelMapFile.write(map, to: predictionFolder.appendingPathComponent("\(sample.id).png")) }
        }, progress: { _, _, name in bar.advance(note: name) })
        bar.finish()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        print(metrics.table(classNames: names))
        printError(String(format: "eval: %d images of %@ (%@) in %.1f s", metrics.images, dataset.root.path, dataset.split ?? "all", seconds))
        if let json {
            guard case .object(var members) = metrics.json(classNames: names) else { return }
            members.insert(contentsOf: [("head", .string(head.head)), ("dataset", .string(dataset.root.path)),
                                        ("split", dataset.split.map { .string($0) } ?? .null)], at: 0)
            try AtomicFile.write(to: URL(fileURLWithPath: json)) { try $0.write(contentsOf: Data(JSONValue.object(members).serialized.utf8)) }
        }
    }
}
