import DinoImage
import DinoLayers
import DinoModel
import DinoTensor
import Foundation

// Dimension letters: B batch, C backbone width, F fusion width, h x w the patch grid,
// H x W the input (h * p x w * p).

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
