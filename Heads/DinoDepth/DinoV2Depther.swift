import DinoLayers
import DinoImage
import DinoModel
import DinoTensor
import Foundation

/// One of dinov2's released depth head kinds.
public enum DinoV2DepthHead: Sendable {
    /// The linear-bins head (`lin1` / `lin4`).
    case linear(LinearDepthHead)
    /// The DPT head.
    case dpt(DPTDepthHead)

    /// Backbone blocks read.
    public var layerCount: Int {
        switch self {
        case .linear(let head): return head.layerCount
        case .dpt: return 4
        }
    }

    /// A short name: `linear`, `linear4`, `dpt`.
    public var name: String {
        switch self {
        case .linear(let head): return head.layerCount == 1 ? "linear" : "linear\(head.layerCount)"
        case .dpt: return "dpt"
        }
    }

    /// The tensor whose name ends each layout's prefix (`decode_head.` in the released files).
    static let anchors = ["conv_depth.weight", "reassemble_blocks.projects.0.conv.weight"]

    /// Reads a head from the tensors of a released `.pth` (`state_dict.decode_head.*`, or
    /// `decode_head.*` when the reader unwrapped the state dict) or a `.safetensors` with the same
    /// names, strictly: every weight tensor must belong to the head.
    static func load(_ source: any TensorSource, embedDim: Int, configuration: DepthHeadConfiguration) throws(DepthError) -> DinoV2DepthHead {
        let weightsOnly = HeadCheckpoint.weights(of: source)
        let file = source.location(of: source.tensorNames.first ?? "")
        // The DPT head also has a `conv_depth` (its output head), so look for DPT's anchor first.
        let dpt = HeadCheckpoint.prefixes(of: anchors[1], in: weightsOnly)
        let linear = HeadCheckpoint.prefixes(of: anchors[0], in: weightsOnly)
        if dpt.count > 1 || (dpt.isEmpty && linear.count > 1) {
            let names = dpt.isEmpty ? linear.map { $0 + anchors[0] } : dpt.map { $0 + anchors[1] }
            throw .unknownHead(file: file, reason: "holds several heads (\(names.joined(separator: ", ")))")
        }
        if let prefix = dpt.first {
            var weights = HeadWeights<DepthError>(source: weightsOnly, prefix: prefix)
            let head = try DPTDepthHead(weights: &weights, embedDim: embedDim, minDepth: configuration.minDepth)
            try weights.checkAllUsed()
            return .dpt(head)
        }
        if let prefix = linear.first {
            var weights = HeadWeights<DepthError>(source: weightsOnly, prefix: prefix)
            let head = try LinearDepthHead(weights: &weights, embedDim: embedDim, minDepth: configuration.minDepth, maxDepth: configuration.maxDepth)
            try weights.checkAllUsed()
            return .linear(head)
        }
        let sample = weightsOnly.tensorNames.prefix(4).joined(separator: ", ")
        throw .unknownHead(file: file, reason: "no 'decode_head.conv_depth.weight' (linear) or 'decode_head.reassemble_blocks.projects.0.conv.weight' (DPT); first tensors: \(sample)")
    }

    /// Depth before the clamp, `[B, 1, H', W']`, from the layers' patch maps and class tokens.
    func callAsFunction(_ layers: [IntermediateLayer]) throws(DepthError) -> Tensor {
        switch self {
        case .linear(let head): return try head(layers)
        case .dpt(let head): return try head(layers)
        }
    }
}

/// A dinov2 depth head on a DINOv2 backbone: metric depth as the released `dinov2_vit*14_{nyu,
/// kitti}_{linear,linear4,dpt}` models compute it.
///
/// The backbone is read with the original `get_intermediate_layers(blocks, reshape=True,
/// return_class_token=True, norm=False)`; the head's output is clamped to the depth range.
// ref: dinov2/hub/depthers.py (_make_dinov2_linear_depther, _make_dinov2_dpt_depther) and
// dinov2/hub/depth/encoder_decoder.py DepthEncoderDecoder.encode_decode.
public struct DinoV2Depther: DepthEstimator {
    /// The backbone the head reads.
    public let model: VisionTransformer
    /// The head.
    public let head: DinoV2DepthHead
    /// Depth range and blocks.
    public let configuration: DepthHeadConfiguration
    /// Blocks read (0-based), in block order.
    public let blocks: [Int]

    /// Puts the head stored in `source` (read from `headURL`) on `model`.
    public init(model: VisionTransformer, head source: any TensorSource, headURL: URL,
                overrides: DepthHeadConfiguration.Overrides = .init()) throws(DepthError) {
        let configuration = try DepthHeadConfiguration.resolve(headURL: headURL, source: source, overrides: overrides)
        let head = try DinoV2DepthHead.load(source, embedDim: model.configuration.hiddenSize, configuration: configuration)
        let layers = model.configuration.numHiddenLayers
        var blocks = configuration.blocks ?? []
        if configuration.blocks == nil {
            blocks = try Self.releasedBlocks(layerCount: head.layerCount, backboneDepth: layers, file: headURL.path)
        }
        guard blocks.count == head.layerCount else {
            throw .incompatibleBackbone(file: headURL.path, reason: "the \(head.name) head reads \(head.layerCount) blocks, \(blocks.count) given (\(blocks))")
        }
        guard blocks.allSatisfy({ (0..<layers).contains($0) }), Set(blocks).count == blocks.count else {
            throw .incompatibleBackbone(file: headURL.path, reason: "blocks \(blocks) are not distinct blocks of a \(layers)-block backbone")
        }
        self.model = model
        self.head = head
        self.configuration = configuration
        self.blocks = blocks.sorted()
    }

    /// Loads the head file at `url` (`.safetensors`, or a released `.pth`) and puts it on `model`.
    public init(model: VisionTransformer, headFile url: URL, overrides: DepthHeadConfiguration.Overrides = .init()) throws(DepthError) {
        let source: any TensorSource
        do { source = try HeadCheckpoint.open(url) } catch { throw DepthError(error) }
        try self.init(model: model, head: source, headURL: url, overrides: overrides)
    }

    /// Loads a backbone folder (HF, Meta or timm names) and puts the head file at `headFile` on it.
    ///
    /// Backbones without registers resample position embeddings as the original model the heads
    /// were trained on does (bicubic with the 0.1 offset), also for HF-named checkpoints, whose
    /// transformers 5.x model would resample to the exact size.
    // ref: dinov2/hub/backbones.py _make_dinov2_model(interpolate_antialias=False, interpolate_offset=0.1).
    public static func load(backboneDirectory: URL, headFile: URL, overrides: DepthHeadConfiguration.Overrides = .init()) throws(DepthError) -> DinoV2Depther {
        let model: VisionTransformer
        do {
            let configuration = try DinoConfiguration.load(from: backboneDirectory.appendingPathComponent("config.json"))
            model = try VisionTransformer(directory: backboneDirectory,
                                          positionInterpolation: configuration.numRegisterTokens == 0 ? .bicubicScaleOffset(0.1) : nil)
        } catch {
            throw .model(error)
        }
        return try DinoV2Depther(model: model, headFile: headFile, overrides: overrides)
    }

    /// The blocks the released heads read.
    // ref: dinov2/hub/depthers.py out_index: the last block for lin1; S/B [2, 5, 8, 11],
    // L [4, 11, 17, 23], g [9, 19, 29, 39] for lin4 and DPT.
    public static func releasedBlocks(layerCount: Int, backboneDepth: Int, file: String = "head") throws(DepthError) -> [Int] {
        if layerCount == 1 { return [backboneDepth - 1] }
        let released: [Int: [Int]] = [12: [2, 5, 8, 11], 24: [4, 11, 17, 23], 40: [9, 19, 29, 39]]
        guard layerCount == 4, let blocks = released[backboneDepth] else {
            throw .incompatibleBackbone(
                file: file,
                reason: "no released choice of \(layerCount) blocks for a \(backboneDepth)-block backbone; give the blocks (out_indices)")
        }
        return blocks
    }

    /// Side of the backbone's patches.
    public var patchSize: Int { model.configuration.patchSize }

    /// Metres, clamped to the head's range.
    public var kind: DepthKind { .metric(configuration.minDepth...configuration.maxDepth) }

    /// Bilinear, as the reference resizes the clamped map to the image.
    // ref: DepthEncoderDecoder.encode_decode resizes with the head's align_corners (False).
    public var upsampling: DepthUpsampling { .bilinear }

    /// The short side resized to 448.
    public var preparation: any ImagePreparing { Preprocessing.resize(shortSide: 448) }

    /// Centre padding to the grid, as the released evaluation pads its inputs.
    public var evaluationPreparation: any ImagePreparing { Preprocessing.pad }

    /// "dinov2 linear head, blocks [11], 0.001-10 m".
    public var summary: String {
        String(format: "dinov2 %@ head, blocks %@, %g-%g m", head.name, "\(blocks)", Double(configuration.minDepth), Double(configuration.maxDepth))
    }

    /// The chosen blocks as the blocks leave them: `get_intermediate_layers(blocks,
    /// reshape=True, return_class_token=True, norm=False)`.
    public var featureRequest: FeatureRequest { .blocks(blocks, normalized: false) }

    /// The head's output before the clamp, `[B, 1, H', W']`, from a pass that kept `featureRequest`.
    public func headOutput(_ features: BackboneFeatures) throws(DepthError) -> Tensor {
        let layers: [IntermediateLayer]
        do {
            layers = try blocks.map { (block: Int) throws(DinoModelError) -> IntermediateLayer in
                let tokens = try features.block(block, normalized: false)
                return IntermediateLayer(block: block, featureMap: tokens.patchMap, classToken: tokens.classToken)
            }
        } catch {
            throw .model(error)
        }
        return try head(layers)
    }

    /// The head's output before the clamp for normalised pixels `[B, 3, H, W]`.
    public func headOutput(_ pixels: Tensor) throws(DepthError) -> Tensor {
        try headOutput(try pass(pixels))
    }

    /// Depth `[B, h', w']` clamped to `[min_depth, max_depth]` (`encode_decode` before the resize).
    public func depth(_ features: BackboneFeatures) throws(DepthError) -> Tensor {
        let raw = try headOutput(features)
        let (lo, hi) = (configuration.minDepth, configuration.maxDepth)
        return Tensor(shape: [raw.shape[0], raw.shape[2], raw.shape[3]], scalars: raw.scalars.map { min(max($0, lo), hi) })
    }
}
