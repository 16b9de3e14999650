import DinoImage
import DinoLayers
import DinoModel
import DinoTensor
import Foundation

// Dimension letters: B batch, C backbone width, F fusion width, h x w the patch grid,
// H x W the input (h * p x w * p).

/// The architecture of an HF `depth_anything` checkpoint (`config.json` of
/// `DepthAnythingForDepthEstimation`). Absent fields take `DepthAnythingConfig`'s defaults.
public struct DepthAnythingConfiguration: Decodable, Sendable, Equatable {
    /// The DINOv2 backbone (`backbone_config`, `model_type` `dinov2`).
    public var backbone: DinoConfiguration
    /// Patch size used to size the output (`patch_size`).
    public var patchSize: Int
    /// Channels of the backbone maps entering the neck (the backbone width).
    public var reassembleHiddenSize: Int
    /// Resolution factor of each reassemble stage (`[4, 2, 1, 0.5]`).
    public var reassembleFactors: [Double]
    /// Channels of each reassembled map.
    public var neckHiddenSizes: [Int]
    /// Width of the fusion path, `F`.
    public var fusionHiddenSize: Int
    /// Which fused map feeds the head (`-1`: the finest).
    public var headInIndex: Int
    /// Channels of the head's second convolution.
    public var headHiddenSize: Int
    /// `relative` (ReLU output, inverse depth) or `metric` (sigmoid x `max_depth`, metres).
    public var depthEstimationType: String
    /// Scale of the output (metres for metric models; 1 for relative ones).
    public var maxDepth: Double

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case backbone = "backbone_config"
        case patchSize = "patch_size"
        case reassembleHiddenSize = "reassemble_hidden_size"
        case reassembleFactors = "reassemble_factors"
        case neckHiddenSizes = "neck_hidden_sizes"
        case fusionHiddenSize = "fusion_hidden_size"
        case headInIndex = "head_in_index"
        case headHiddenSize = "head_hidden_size"
        case depthEstimationType = "depth_estimation_type"
        case maxDepth = "max_depth"
    }

    /// Decodes `config.json`; absent fields take `DepthAnythingConfig`'s defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "depth_anything"
        guard modelType == "depth_anything" else {
            throw DecodingError.dataCorruptedError(forKey: .modelType, in: c, debugDescription: "'\(modelType)' is not depth_anything")
        }
        // ref: transformers DepthAnythingConfig defaults (backbone: dinov2 small, 518 px).
        backbone = try c.decodeIfPresent(DinoConfiguration.self, forKey: .backbone) ?? DinoConfiguration(modelType: "dinov2") {
            $0.imageSize = 518
            $0.hiddenSize = 384
            $0.numAttentionHeads = 6
            $0.outIndices = [9, 10, 11, 12]
            $0.reshapeHiddenStates = false
        }
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? 14
        reassembleHiddenSize = try c.decodeIfPresent(Int.self, forKey: .reassembleHiddenSize) ?? 384
        reassembleFactors = try c.decodeIfPresent([Double].self, forKey: .reassembleFactors) ?? [4, 2, 1, 0.5]
        neckHiddenSizes = try c.decodeIfPresent([Int].self, forKey: .neckHiddenSizes) ?? [48, 96, 192, 384]
        fusionHiddenSize = try c.decodeIfPresent(Int.self, forKey: .fusionHiddenSize) ?? 64
        headInIndex = try c.decodeIfPresent(Int.self, forKey: .headInIndex) ?? -1
        headHiddenSize = try c.decodeIfPresent(Int.self, forKey: .headHiddenSize) ?? 32
        depthEstimationType = try c.decodeIfPresent(String.self, forKey: .depthEstimationType) ?? "relative"
        maxDepth = try c.decodeIfPresent(Double.self, forKey: .maxDepth) ?? 1
    }

    /// Reads and validates `config.json` at `url`.
    public static func load(from url: URL) throws(DepthError) -> DepthAnythingConfiguration {
        let data: Data
        do {
            data = try Data(contentsOf: url)
            _ = try JSONValue.parse(data)
        } catch {
            throw .invalidConfiguration(path: url.path, field: "(document)", reason: "\(error)")
        }
        let configuration: DepthAnythingConfiguration
        do {
            configuration = try JSONDecoder().decode(DepthAnythingConfiguration.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .invalidConfiguration(path: url.path, field: field.isEmpty ? "(document)" : field, reason: context.debugDescription)
        } catch {
            throw .invalidConfiguration(path: url.path, field: "(document)", reason: "\(error)")
        }
        try configuration.validate(path: url.path)
        return configuration
    }

    /// Whether `config.json` at `url` describes a Depth Anything model.
    public static func isDepthAnything(_ url: URL) -> Bool {
        guard let data = try? Data(contentsOf: url), let json = try? JSONValue.parse(data) else { return false }
        return json["model_type"]?.stringValue == "depth_anything"
    }

    /// Checks that the values describe a model that can be built.
    public func validate(path: String) throws(DepthError) {
        func bad(_ field: CodingKeys, _ reason: String) -> DepthError { .invalidConfiguration(path: path, field: field.rawValue, reason: reason) }
        do {
            try backbone.validate(path: path + " (backbone_config)")
        } catch {
            throw .model(error)
        }
        let stages = neckHiddenSizes.count
        guard stages > 0, reassembleFactors.count == stages else {
            throw bad(.reassembleFactors, "\(reassembleFactors.count) factors for \(stages) neck_hidden_sizes")
        }
        guard reassembleFactors.allSatisfy({ $0 > 0 && ($0 >= 1 ? $0 == $0.rounded() : (1 / $0) == (1 / $0).rounded()) }) else {
            throw bad(.reassembleFactors, "\(reassembleFactors) must be integers or 1/integers")
        }
        guard reassembleHiddenSize == backbone.hiddenSize else {
            throw bad(.reassembleHiddenSize, "\(reassembleHiddenSize) differs from the backbone's hidden_size \(backbone.hiddenSize)")
        }
        guard patchSize == backbone.patchSize else { throw bad(.patchSize, "\(patchSize) differs from the backbone's \(backbone.patchSize)") }
        guard (-stages..<stages).contains(headInIndex) else { throw bad(.headInIndex, "\(headInIndex) is outside the \(stages) fused maps") }
        guard ["relative", "metric"].contains(depthEstimationType) else {
            throw bad(.depthEstimationType, "'\(depthEstimationType)' is not relative or metric")
        }
        guard fusionHiddenSize >= 2, headHiddenSize >= 1, maxDepth.isFinite, maxDepth > 0 else {
            throw bad(.fusionHiddenSize, "fusion_hidden_size, head_hidden_size and max_depth must be positive")
        }
        let selection: StageSelection
        do {
            selection = try StageSelection(stageNames: backbone.stageNames, outFeatures: backbone.outFeatures, outIndices: backbone.outIndices)
        } catch {
            throw .model(error)
        }
        guard selection.outIndices.count == stages else {
            throw bad(.neckHiddenSizes, "\(stages) neck stages but the backbone returns \(selection.outIndices.count) feature maps")
        }
    }
}

/// An HF `DepthAnythingForDepthEstimation` (Depth Anything v1 / v2): a DINOv2 backbone, the DPT
/// neck (reassemble, 3x3 convolutions, fusion) and a three-convolution head.
///
/// Differences from dinov2's DPT head: no readout projection (the CLS token is dropped), residual
/// convolutions with bias, each fusion upsamples to the next map's size (x2 only at the end), and
/// the head upsamples to the input size (`align_corners=True`) between its convolutions.
// ref: transformers/models/depth_anything/modeling_depth_anything.py (DepthAnythingNeck,
// DepthAnythingFeatureFusionStage, DepthAnythingDepthEstimationHead).
public struct DepthAnythingModel: DepthEstimator {
    struct Stage: Sendable {
        /// `reassemble_stage.layers.i.projection`: 1x1 `C -> C_i`.
        let projection: Conv2d
        let resampling: Resampling
        /// `convs.i`: 3x3 `C_i -> F`, no bias.
        let conv: Conv2d
    }

    /// The architecture.
    public let configuration: DepthAnythingConfiguration
    /// The backbone view: the stages of `out_indices`, reshaped to `[B, C, h, w]`.
    public let backbone: Backbone

    /// The checkpoint's own backbone.
    public var model: VisionTransformer { backbone.model }
    /// The image processor's settings (`preprocessor_config.json`).
    public let processor: DepthAnythingProcessor
    let stages: [Stage]
    let fusion: [FusionBlock]
    let head: (Conv2d, Conv2d, Conv2d)

    /// Loads a model folder laid out as on the HF hub: `config.json` (`model_type`
    /// `depth_anything`), `model.safetensors` (or a sharded index), and optionally
    /// `preprocessor_config.json`.
    /// `precision` is the backbone's weight precision.
    public init(directory: URL, precision: WeightPrecision = .fp32) throws(DepthError) {
        let configuration = try DepthAnythingConfiguration.load(from: directory.appendingPathComponent("config.json"))
        let source: any TensorSource
        do {
            source = try VisionTransformer.weights(inFolder: directory)
        } catch {
            throw .model(error)
        }
        let processorURL = directory.appendingPathComponent("preprocessor_config.json")
        let processor = FileManager.default.fileExists(atPath: processorURL.path)
            ? try DepthAnythingProcessor.load(from: processorURL) : DepthAnythingProcessor()
        try self.init(configuration: configuration, weights: source, processor: processor, precision: precision)
    }

    /// Builds the model from its configuration and a tensor source with HF names (`backbone.*`,
    /// `neck.*`, `head.*`).
    public init(configuration: DepthAnythingConfiguration, weights source: any TensorSource,
                processor: DepthAnythingProcessor = DepthAnythingProcessor(), precision: WeightPrecision = .fp32) throws(DepthError) {
        // The backbone loader is strict about the tensors it is given, so it sees only its own.
        let backboneTensors = TensorSourceView(source) { $0.hasPrefix("backbone.") }
        do {
            let model = try VisionTransformer(configuration: configuration.backbone, weights: backboneTensors, precision: precision)
            backbone = try Backbone(model: model, applyLayernorm: configuration.backbone.applyLayernorm, reshapeHiddenStates: true)
        } catch {
            throw .model(error)
        }
        var weights = HeadWeights<DepthError>(source: TensorSourceView(source) { !$0.hasPrefix("backbone.") })
        let (c, f) = (configuration.reassembleHiddenSize, configuration.fusionHiddenSize)
        var stages: [Stage] = []
        for (i, (channels, factor)) in zip(configuration.neckHiddenSizes, configuration.reassembleFactors).enumerated() {
            let layer = "neck.reassemble_stage.layers.\(i)"
            stages.append(Stage(
                projection: try weights.conv("\(layer).projection", in: c, out: channels, kernel: 1, bias: true),
                resampling: try Resampling.load(&weights, "\(layer).resize", channels: channels, factor: factor),
                conv: try weights.conv("neck.convs.\(i)", in: channels, out: f, kernel: 3, bias: false, padding: 1)))
        }
        // Every fusion layer has both residual units; the first never uses its skip unit (it has
        // no skip), but the checkpoint holds it.
        var fusion: [FusionBlock] = []
        for i in 0..<stages.count {
            fusion.append(try FusionBlock.load(
                &weights, "neck.fusion_stage.layers.\(i)", channels: f, units: ("residual_layer1", "residual_layer2"),
                convNames: ("convolution1", "convolution2"), projectionName: "projection", residualBias: true))
        }
        head = (try weights.conv("head.conv1", in: f, out: f / 2, kernel: 3, bias: true, padding: 1),
                try weights.conv("head.conv2", in: f / 2, out: configuration.headHiddenSize, kernel: 3, bias: true, padding: 1),
                try weights.conv("head.conv3", in: configuration.headHiddenSize, out: 1, kernel: 1, bias: true))
        try weights.checkAllUsed()
        self.configuration = configuration
        self.stages = stages
        self.fusion = fusion
        self.processor = processor
    }

    /// Side of the patches (`patch_size`).
    public var patchSize: Int { configuration.patchSize }

    /// Metric models give metres in `0...max_depth`; relative ones inverse depth.
    public var kind: DepthKind {
        configuration.depthEstimationType == "metric" ? .metric(0...Float(configuration.maxDepth)) : .relativeDisparity
    }

    /// Bicubic, as the HF image processor post-processes.
    // ref: DPTImageProcessor.post_process_depth_estimation: bicubic, align_corners=False.
    public var upsampling: DepthUpsampling { .bicubic }

    /// The backbone's stages of `out_indices`.
    public var featureRequest: FeatureRequest { backbone.featureRequest }

    /// Its image processor.
    public var preparation: any ImagePreparing { processor }

    /// Its image processor, as for prediction.
    public var evaluationPreparation: any ImagePreparing { processor }

    /// "Depth Anything (relative); images sized by its processor (...)".
    public var summary: String {
        "Depth Anything (\(configuration.depthEstimationType)); images sized by its processor "
            + "(\(processor.height)x\(processor.width), aspect kept, multiples of \(processor.multiple)) unless a preset is given"
    }

    /// `predicted_depth` `[B, H, W]` from a pass of the model's backbone.
    public func depth(_ pass: BackboneFeatures) throws(DepthError) -> Tensor {
        let maps: [Tensor]
        do {
            maps = try backbone.predict(pass).featureMaps
        } catch {
            throw .model(error)
        }
        let (h, w) = (pass.layout.gridHeight, pass.layout.gridWidth)
        var features: [Tensor] = []
        for (map, stage) in zip(maps, stages) {
            features.append(try apply(stage.conv, try stage.resampling(try apply(stage.projection, map))))
        }
        // Coarsest first; each fusion output takes the size of the next (finer) map.
        let ordered = Array(features.reversed())
        var fused: [Tensor] = []
        for (i, block) in fusion.enumerated() {
            let size = i + 1 < ordered.count ? ordered[i + 1].spatialSize : nil
            if let previous = fused.last {
                fused.append(try block(previous, skip: ordered[i], outputSize: size))
            } else {
                fused.append(try block(ordered[i], skip: nil, outputSize: size))
            }
        }
        let index = configuration.headInIndex < 0 ? fused.count + configuration.headInIndex : configuration.headInIndex
        var x = try apply(head.0, fused[index])
        x = resizeBilinear(x, height: h * patchSize, width: w * patchSize, alignCorners: true)
        x = try apply(head.2, try apply(head.1, x).relu())
        let scale = Float(configuration.maxDepth)
        let metric = configuration.depthEstimationType == "metric"
        let values = x.scalars.map { metric ? scale / (1 + exp(-$0)) : max($0, 0) * scale }
        return Tensor(shape: [x.shape[0], x.shape[2], x.shape[3]], scalars: values)
    }
}

/// Depth Anything's image processor (HF `DPTImageProcessor` settings): resize keeping the aspect
/// ratio so that each side is a multiple of `ensure_multiple_of`, bicubic, then normalise.
public struct DepthAnythingProcessor: Sendable, Equatable {
    /// Target size `(height, width)` (`size`).
    public var height: Int = 518
    /// Target width.
    public var width: Int = 518
    /// Whether to scale both sides by the factor closest to 1 (`keep_aspect_ratio`).
    public var keepAspectRatio = true
    /// Each side becomes a multiple of this (`ensure_multiple_of`).
    public var multiple = 14
    /// Per-channel normalisation after `x / 255`.
    public var normalization = ImageNormalization.imagenet

    /// The released models' settings.
    public init() {}

    /// Reads `preprocessor_config.json`; settings this library does not reproduce (padding,
    /// another filter, no resize) are errors that say so.
    public static func load(from url: URL) throws(DepthError) -> DepthAnythingProcessor {
        let json: JSONValue
        do {
            json = try JSONValue.parse(try Data(contentsOf: url))
        } catch {
            throw .invalidConfiguration(path: url.path, field: "(document)", reason: "\(error)")
        }
        func bad(_ field: String, _ reason: String) -> DepthError { .invalidConfiguration(path: url.path, field: field, reason: reason) }
        var processor = DepthAnythingProcessor()
        func flag(_ key: String, _ expected: Bool) throws(DepthError) {
            if let value = json[key], value != .bool(expected) {
                throw bad(key, "only \(expected) is supported, got \(value.serialized)")
            }
        }
        try flag("do_resize", true)
        try flag("do_rescale", true)
        try flag("do_normalize", true)
        try flag("do_pad", false)
        if let value = json["resample"], value.intValue != 3 { throw bad("resample", "only bicubic (3) is supported, got \(value.serialized)") }
        if let value = json["rescale_factor"], let d = value.doubleValue, abs(d - 1.0 / 255) > 1e-9 {
            throw bad("rescale_factor", "only 1/255 is supported, got \(d)")
        }
        if let size = json["size"] {
            guard let h = size["height"]?.intValue, let w = size["width"]?.intValue, h > 0, w > 0 else {
                throw bad("size", "must be {\"height\": H, \"width\": W}, got \(size.serialized)")
            }
            (processor.height, processor.width) = (h, w)
        }
        if let value = json["keep_aspect_ratio"] {
            guard case .bool(let keep) = value else { throw bad("keep_aspect_ratio", "must be true or false") }
            processor.keepAspectRatio = keep
        }
        if let value = json["ensure_multiple_of"] {
            guard let m = value.intValue, m > 0 else { throw bad("ensure_multiple_of", "must be a positive integer") }
            processor.multiple = m
        }
        func triple(_ key: String) throws(DepthError) -> [Float]? {
            guard let value = json[key] else { return nil }
            guard let items = value.arrayValue, items.count == 3, case let numbers = items.compactMap(\.doubleValue), numbers.count == 3 else {
                throw bad(key, "must hold 3 numbers")
            }
            return numbers.map { Float($0) }
        }
        let mean = try triple("image_mean") ?? processor.normalization.mean
        let std = try triple("image_std") ?? processor.normalization.std
        guard std.allSatisfy({ $0 > 0 }) else { throw bad("image_std", "must be positive") }
        processor.normalization = ImageNormalization(mean: mean, std: std)
        return processor
    }

    /// The resized `(height, width)` of an image of `width x height`.
    // ref: transformers dpt image processing get_resize_output_image_size: keep_aspect_ratio
    // scales both sides by whichever factor is closer to 1; each side becomes
    // round(v / multiple) * multiple (Python's round: ties to even), floored when above max_val
    // (none here) and ceiled when below min_val (0).
    public func outputSize(width: Int, height: Int) -> (height: Int, width: Int) {
        var scaleHeight = Double(self.height) / Double(height)
        var scaleWidth = Double(self.width) / Double(width)
        if keepAspectRatio {
            if abs(1 - scaleWidth) < abs(1 - scaleHeight) { scaleHeight = scaleWidth } else { scaleWidth = scaleHeight }
        }
        func constrain(_ value: Double) -> Int {
            Int((value / Double(multiple)).rounded(.toNearestOrEven)) * multiple
        }
        return (constrain(scaleHeight * Double(height)), constrain(scaleWidth * Double(width)))
    }

    /// The preset for an image of `width x height`: an exact bicubic resize.
    public func preprocessing(width: Int, height: Int) -> Preprocessing {
        let size = outputSize(width: width, height: height)
        return .size(height: size.height, width: size.width)
    }

    /// `image` resized and normalised for a model with patch size `patchSize`.
    public func prepare(_ image: RGBImage, patchSize: Int) throws(DepthError) -> PreparedImage {
        do {
            return try preprocessing(width: image.width, height: image.height).prepare(image, patchSize: patchSize, normalization: normalization)
        } catch {
            throw .image(error)
        }
    }
}
