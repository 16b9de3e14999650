import ArgumentParser
import DinoDepth
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// `dino depth`: depth maps of images with a dinov2 depth head or a Depth Anything model, and
/// `dino depth eval`: their metrics against ground truth.
struct DepthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "depth",
        abstract: "Estimate depth with a dinov2 depth head or a Depth Anything model, or evaluate it.",
        subcommands: [DepthPredictCommand.self, DepthEvalCommand.self],
        defaultSubcommand: DepthPredictCommand.self)
}

/// The depth model: a DINOv2 backbone with a dinov2 head, or a Depth Anything folder.
struct DepthModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A DINOv2 backbone folder, checkpoint or hub id (with --head), or a Depth Anything folder or hub id (config.json model_type depth_anything).",
        discussion: "Folders and hub ids resolve as for the other commands (the Hugging Face cache, HF_HUB_OFFLINE, HF_TOKEN)."))
    var model: String?

    @OptionGroup var compute: ComputeOptions

    @Option(name: .long, help: "A dinov2 depth head: the released dinov2_vit*14_{nyu,kitti}_{linear,linear4,dpt}_head file, or a .safetensors with the same tensor names.")
    var head: String?

    @Option(name: .long, help: "Smallest depth in metres (default: the head's metadata, its _config.py, or nyu/kitti in its file name).")
    var minDepth: Float?

    @Option(name: .long, help: "Largest depth in metres (default as --min-depth).")
    var maxDepth: Float?

    @Option(name: .long, parsing: .unconditional, help: "Backbone blocks the head reads, 0-based and comma-separated (default: the released choice for the backbone's size).")
    var blocks: String?

    func validate() throws {
        if let blocks, parseBlocks(blocks) == nil { throw ValidationError("--blocks must be comma-separated block indices, got \(blocks)") }
        if let minDepth, !(minDepth > 0) { throw ValidationError("--min-depth must be positive") }
        if let maxDepth, !(maxDepth > (minDepth ?? 0)) { throw ValidationError("--max-depth must be above --min-depth and 0") }
    }

    private func parseBlocks(_ text: String) -> [Int]? {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = items.compactMap { Int($0) }
        return !items.isEmpty && values.count == items.count ? values : nil
    }

    /// Resolves `--model` as every command does and loads the depth head with a description.
    func load() throws -> (head: DepthImageHead, folder: URL, name: String) {
        guard let model else { throw ValidationError("give --model") }
        let folder = try ModelOptions.folder(of: model)
        if DepthAnythingConfiguration.isDepthAnything(folder.appendingPathComponent("config.json")) {
            if head != nil { throw ValidationError("--model \(model) is a Depth Anything model, which has its own head; drop --head") }
            if blocks != nil || minDepth != nil || maxDepth != nil {
                throw ValidationError("--blocks, --min-depth and --max-depth configure dinov2 heads; Depth Anything's come from its config.json")
            }
            compute.apply()
            let depthAnything = try DepthAnythingModel(directory: folder, precision: compute.weightPrecision)
            return (DepthImageHead(estimator: depthAnything), folder, "\(folder.lastPathComponent): " + depthAnything.summary)
        }
        guard let head else {
            throw ValidationError("--model \(model) is a DINOv2 backbone: give a depth head with --head (a released dinov2_vit*14_<dataset>_<kind>_head file)")
        }
        let (backbone, _) = try ModelOptions.load(model, compute: compute)
        let overrides = DepthHeadConfiguration.Overrides(minDepth: minDepth, maxDepth: maxDepth, blocks: blocks.flatMap(parseBlocks))
        let loaded = try DepthImageHead.load(argument: head, model: backbone, modelFolder: folder, overrides: overrides)
        return (loaded, folder, loaded.estimator.summary)
    }
}

/// `dino depth [predict]`: colour-mapped and raw depth maps.
struct DepthPredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Write a colour-mapped depth picture and the raw depth map of each image.",
        discussion: """
            With a DINOv2 backbone and a dinov2 head (--model M --head H): metric depth in metres \
            from the linear (lin1 / lin4) or DPT head, clamped to the head's range. With a Depth \
            Anything folder (--model M): its relative inverse depth (larger is nearer), or metres \
            for metric checkpoints. Writes OUTPUT_DIR/<name>.depth.png (near warm, far cool with \
            turbo; the colours span each map's range) and the raw map at the image's size: \
            <name>.depth.npy (float32 [H, W]) or, with --raw png16, <name>.depth16.png \
            (round(value x --depth-scale), 16-bit). Images are resized with --resize 448 for \
            dinov2 heads and with Depth Anything's processor (518, aspect kept, multiples of 14) \
            unless another preset is given; padding is cut away before the map is resized to the image.
            """)

    @OptionGroup var depthModel: DepthModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var report: ReportOptions

    @Option(name: .long, help: "Colour map: turbo, inferno, viridis or gray.")
    var colormap = "turbo"

    @Option(name: .long, help: "Raw map format: npy (float32), png16 (16-bit, value x --depth-scale) or none.")
    var raw = "npy"

    @Option(name: .long, help: "With --raw png16: integer units per metre (1000: millimetres; KITTI uses 256).")
    var depthScale: Float = 1000

    func validate() throws {
        if depthModel.model == nil { throw ValidationError("give --model") }
        if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs") }
        if Colormap(rawValue: colormap) == nil { throw ValidationError("--colormap must be one of \(Colormap.allCases.map(\.rawValue))") }
        if DepthImageHead.RawFormat(rawValue: raw) == nil {
            throw ValidationError("--raw must be one of \(DepthImageHead.RawFormat.allCases.map(\.rawValue))")
        }
        if !(depthScale > 0) { throw ValidationError("--depth-scale must be positive") }
    }

    func run() throws {
        var (head, folder, name) = try depthModel.load()
        head.colormap = Colormap(rawValue: colormap) ?? .turbo
        head.raw = DepthImageHead.RawFormat(rawValue: raw) ?? .npy
        head.depthScale = depthScale
        printError("depth: \(name)")
        try runHeads([head], names: [DepthImageHead.name], model: head.backbone, modelFolder: folder, label: "depth",
                     images: images, preprocess: preprocess, output: output, report: report)
    }
}

/// `dino depth eval`: metrics of predicted depth against ground-truth maps.
struct DepthEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate depth against ground truth: AbsRel, SqRel, RMSE, RMSElog, log10, SIlog, d1..d3.",
        discussion: """
            Runs the model on IMAGES (or reads --predictions) and compares with the ground-truth \
            map of the same name in --ground-truth: <name>.png (16-bit, value / --depth-scale \
            metres; 0 = no measurement) or <name>.npy (float metres). Predictions are read from \
            <name>.depth.npy or <name>.npy (float) or <name>.depth16.png. As in the dinov2 / \
            Monocular Depth Estimation Toolbox evaluation, a pixel counts when its ground truth \
            lies strictly between --min-depth and --max-depth and inside --crop; predictions are \
            aligned (--align), clamped to the range, the metrics computed per image and averaged \
            over images. --dataset nyu sets the NYU protocol (Eigen crop, 1000 per metre, \
            0.001-10 m), --dataset kitti KITTI's (Garg crop, 256 per metre, 0.001-80 m); single \
            options override it. With a dinov2 head, --min-depth / --max-depth set both the head's \
            range and the evaluation's. Depth Anything's relative models are aligned by scale and shift \
            in inverse depth unless --align says otherwise. Images default to --pad for dinov2 \
            heads (the released evaluation's centre padding) and to Depth Anything's processor.
            """)

    @OptionGroup var depthModel: DepthModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions

    @Option(name: .long, help: "Folder of ground-truth maps named like the images.")
    var groundTruth: String

    @Option(name: .long, help: "Folder of predicted maps to evaluate instead of running a model.")
    var predictions: String?

    @Option(name: .long, help: "Protocol defaults: nyu or kitti.")
    var dataset: String?

    @Option(name: .long, help: "Integer units per metre in 16-bit PNG maps (default 1000; 256 with --dataset kitti).")
    var depthScale: Float?

    @Option(name: .long, help: "Mask crop: none, nyu-eigen, garg or kitti-eigen.")
    var crop: String?

    @Option(name: .long, help: "Alignment: none, median or scale-shift.")
    var align: String?

    @Option(name: .long, help: "Also write per-image and mean metrics to this JSON file.")
    var json: String?

    func validate() throws {
        if (depthModel.model == nil) == (predictions == nil) { throw ValidationError("give either --model (to run a model on IMAGES) or --predictions") }
        if predictions != nil && !images.inputs.isEmpty { throw ValidationError("with --predictions the ground-truth folder lists the maps; drop the image inputs") }
        if depthModel.model != nil && images.inputs.isEmpty { throw ValidationError("give the images to evaluate") }
        if let dataset, DepthEvaluationPreset.named(dataset) == nil {
            throw ValidationError("--dataset must be one of \(DepthEvaluationPreset.all.map(\.name))")
        }
        if let crop, EvaluationCrop(rawValue: crop) == nil { throw ValidationError("--crop must be one of \(EvaluationCrop.allCases.map(\.rawValue))") }
        if let align, DepthAlignment(rawValue: align) == nil { throw ValidationError("--align must be one of \(DepthAlignment.allCases.map(\.rawValue))") }
        if let depthScale, !(depthScale > 0) { throw ValidationError("--depth-scale must be positive") }
        if images.resume { throw ValidationError("--resume does not apply to eval: the mean needs every image") }
    }

    struct ImageResult: Codable {
        var image: String
        var metrics: DepthMetrics?
    }

    struct Report: Codable {
        struct Settings: Codable {
            var model: String
            var minDepth: Double
            var maxDepth: Double
            var crop: EvaluationCrop
            var alignment: DepthAlignment
            var depthScale: Float

            enum CodingKeys: String, CodingKey {
                case model, crop, alignment
                case minDepth = "min_depth", maxDepth = "max_depth", depthScale = "depth_scale"
            }
        }

        var settings: Settings
        var images: [ImageResult]
        var mean: DepthMetrics?
        var failed: [String]
    }

    func run() throws {
        let preset = dataset.flatMap(DepthEvaluationPreset.named)
        let scale = depthScale ?? preset?.depthScale ?? 1000
        var depthHead: DepthImageHead?
        var preparation: any ImagePreparing = Preprocessing.pad
        var name = "predictions in \(predictions ?? "")"
        if depthModel.model != nil {
            let loaded = try depthModel.load()
            depthHead = loaded.head
            name = loaded.name
            preparation = try preprocess.userPreset(modelFolder: loaded.folder) ?? loaded.head.estimator.evaluationPreparation
        }
        let estimator = depthHead?.estimator
        // The range: the options, the protocol, then the head's own range.
        var range: (Double, Double)? = preset.map { ($0.minDepth, $0.maxDepth) }
        if case .metric(let r)? = estimator?.kind, range == nil { range = (Double(r.lowerBound), Double(r.upperBound)) }
        let minDepth = depthModel.minDepth.map(Double.init) ?? range?.0 ?? 0.001
        guard let maxDepth = depthModel.maxDepth.map(Double.init) ?? range?.1 else {
            throw ValidationError("give --max-depth (or --dataset): the evaluation range is not known for this model")
        }
        let relative = estimator?.kind == .relativeDisparity
        let alignment = align.flatMap(DepthAlignment.init(rawValue:)) ?? (relative ? .scaleShift : .none)
        let evaluation = DepthEvaluation(minDepth: minDepth, maxDepth: maxDepth,
                                         crop: crop.flatMap(EvaluationCrop.init(rawValue:)) ?? preset?.crop ?? .none, alignment: alignment)
        let groundTruthFolder = URL(fileURLWithPath: groundTruth)

        var results: [ImageResult] = []
        var failures: [String] = []
        func evaluate(_ label: String, _ prediction: DepthMap, groundTruth url: URL) throws {
            let truth = try DepthFile.read(url, depthScale: scale)
            let metrics = if let estimator {
                try evaluation.metrics(prediction: prediction, groundTruth: truth, kind: estimator.kind)
            } else {
                try evaluation.metrics(prediction: prediction, groundTruth: truth)
            }
            if metrics == nil { printError("warning: \(label): no valid ground-truth pixel") }
            results.append(ImageResult(image: label, metrics: metrics))
        }

        var modelRun: ImageRunner?
        if let depthHead {
            var runner = ImageRunner(inputs: images, preparation: preparation, patchSize: depthHead.backbone.configuration.patchSize,
                                     label: "eval", outputs: nil)
            runner.run { batch in
                let pass = try depthHead.backbone.features(Tensor.stack(batch.map(\.prepared.pixels)), request: depthHead.featureRequest,
                                                           contentRects: batch.map(\.prepared.contentRect))
                let maps = try depthHead.predict(pass, batch: batch)
                var failed: [(ImageItem, String)] = []
                for (item, map) in zip(batch, maps) {
                    do {
                        try evaluate(item.url.lastPathComponent, map, groundTruth: try DepthFile.groundTruth(for: item.url, in: groundTruthFolder))
                    } catch {
                        failed.append((item, "\(error)"))
                    }
                }
                return failed
            }
            failures = runner.failures.map(\.path)
            modelRun = runner
        } else if let predictions {
            let folder = URL(fileURLWithPath: predictions)
            let maps = try DepthFile.maps(in: groundTruthFolder)
            if maps.isEmpty { throw ValidationError("--ground-truth \(groundTruthFolder.path) holds no .png or .npy maps") }
            for url in maps {
                do {
                    let stem = url.deletingPathExtension().lastPathComponent
                    try evaluate(url.lastPathComponent, try DepthFile.read(try DepthFile.prediction(stem, in: folder), depthScale: scale), groundTruth: url)
                } catch {
                    printError("error: \(url.path): \(error)")
                    failures.append(url.path)
                }
            }
        }

        let mean = DepthMetrics.mean(results.compactMap(\.metrics))
        printTable(results, mean: mean)
        printError(String(format: "eval: %@; range %g-%g m, crop %@, alignment %@, PNG scale %g per metre", name, minDepth, maxDepth,
                          evaluation.crop.rawValue, alignment.rawValue, Double(scale)))
        if let json {
            let report = Report(settings: .init(model: name, minDepth: minDepth, maxDepth: maxDepth, crop: evaluation.crop, alignment: alignment,
                                                depthScale: scale),
                                images: results, mean: mean, failed: failures)
            try writeJSON(report, to: URL(fileURLWithPath: json))
        }
        // An interrupted run exits as ImageRunner says (128 + signal), failures with 1.
        try modelRun?.finish()
        if !failures.isEmpty || mean == nil { throw ExitCode(1) }
    }

    private func printTable(_ results: [ImageResult], mean: DepthMetrics?) {
        let names = ["AbsRel", "SqRel", "RMSE", "RMSElog", "log10", "SIlog", "d1", "d2", "d3"]
        let width = max(12, (results.map(\.image.count).max() ?? 0) + 2)
        func row(_ label: String, _ metrics: DepthMetrics?) -> String {
            let padded = label.padding(toLength: width, withPad: " ", startingAt: 0)
            guard let metrics else { return padded + "(no valid pixel)" }
            return padded + String(format: "%9d", metrics.pixels) + metrics.named.map { String(format: "%9.4f", $0.value) }.joined()
        }
        func right(_ text: String) -> String { String(repeating: " ", count: max(0, 9 - text.count)) + text }
        print("image".padding(toLength: width, withPad: " ", startingAt: 0) + right("pixels") + names.map(right).joined())
        for result in results { print(row(result.image, result.metrics)) }
        print(row("mean (\(results.compactMap(\.metrics).count))", mean))
    }
}
