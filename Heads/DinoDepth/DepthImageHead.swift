import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// A depth head for the image tools: per image a colour-mapped picture (`.depth.png`, near warm,
/// far cool with turbo) and the raw map at the image's size (`.depth.npy`, float32 `[H, W]`, or a
/// 16-bit PNG `.depth16.png`).
public struct DepthImageHead: ImageHead {
    /// `--head depth=FILE_OR_FOLDER`.
    public static let name = "depth"
    /// What the argument is.
    public static let argumentHelp = "a dinov2 depth head file (dinov2_vit*14_{nyu,kitti}_{linear,linear4,dpt}_head.pth or .safetensors), or a Depth Anything folder"

    /// How the raw map is stored.
    public enum RawFormat: String, Sendable, CaseIterable {
        /// `.depth.npy`, float32.
        case npy
        /// `.depth16.png`, `round(value x depthScale)` in 16 bits.
        case png16
        /// No raw map.
        case none
    }

    /// The depth model.
    public let estimator: any DepthEstimator
    /// Colours of the picture.
    public var colormap = Colormap.turbo
    /// How the raw map is stored.
    public var raw = RawFormat.npy
    /// With `.png16`: integer units per metre (1000: millimetres).
    public var depthScale: Float = 1000
    /// The preparation when the user gives none.
    public var preparation: any ImagePreparing

    /// The image head of `estimator`, preparing images as the estimator does.
    public init(estimator: any DepthEstimator) {
        self.estimator = estimator
        preparation = estimator.preparation
    }

    /// A Depth Anything folder (with its own backbone), or a dinov2 head file put on `model`.
    ///
    /// Backbones without registers read the head's blocks with the original model's position
    /// resampling (bicubic, 0.1 offset), as the released heads were trained; when `model`
    /// resamples otherwise, the head gets its own copy of the backbone from `modelFolder`.
    // ref: dinov2/hub/backbones.py _make_dinov2_model(interpolate_antialias=False, interpolate_offset=0.1).
    public static func load(argument: String, model: VisionTransformer, modelFolder: URL,
                            overrides: DepthHeadConfiguration.Overrides) throws -> DepthImageHead {
        let url = URL(fileURLWithPath: argument)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw PipelineError.invalidArgument(head: name, argument: argument, reason: "no such file or folder")
        }
        if isDirectory.boolValue {
            guard DepthAnythingConfiguration.isDepthAnything(url.appendingPathComponent("config.json")) else {
                throw PipelineError.invalidArgument(head: name, argument: argument, reason: "a folder must be a Depth Anything model (config.json model_type depth_anything)")
            }
            guard overrides == DepthHeadConfiguration.Overrides() else {
                throw PipelineError.invalidArgument(head: name, argument: argument,
                                                    reason: "blocks and depth range configure dinov2 heads; Depth Anything's come from its config.json")
            }
            return DepthImageHead(estimator: try DepthAnythingModel(directory: url, precision: model.precision))
        }
        var backbone = model
        let original = PositionInterpolation.bicubicScaleOffset(0.1)
        if model.configuration.numRegisterTokens == 0, model.positionInterpolation != original {
            backbone = try VisionTransformer(directory: modelFolder, positionInterpolation: original, precision: model.precision,
                                             bf16Products: model.bf16Products)
        }
        return DepthImageHead(estimator: try DinoV2Depther(model: backbone, headFile: url, overrides: overrides))
    }

    /// A Depth Anything folder, or a dinov2 head file with the blocks and range it implies.
    public static func load(argument: String, model: VisionTransformer, modelFolder: URL) throws -> DepthImageHead {
        try load(argument: argument, model: model, modelFolder: modelFolder, overrides: .init())
    }

    /// The model's backbone.
    public var backbone: VisionTransformer { estimator.model }
    /// What the head reads.
    public var featureRequest: FeatureRequest { estimator.featureRequest }
    /// The picture, then the raw map (written last, so its presence marks the image done).
    public var outputSuffixes: [String] {
        switch raw {
        case .npy: return [".depth.png", ".depth.npy"]
        case .png16: return [".depth.png", ".depth16.png"]
        case .none: return [".depth.png"]
        }
    }

    /// Each image's depth map at its original size.
    public func predict(_ features: BackboneFeatures, batch: [ImageItem]) throws -> [DepthMap] {
        estimator.depthMaps(try estimator.depth(features), images: batch.map(\.prepared))
    }

    /// Writes the picture and the raw map; reports the range and median.
    public func write(_ maps: [DepthMap], index: Int, of batch: [ImageItem], to files: ImageOutputFiles) throws -> ImageReport {
        let (map, item) = (maps[index], batch[index])
        let kind = estimator.kind
        try ImageIO.write(map.colored(colormap, kind: kind), to: files.url(".depth.png"))
        switch raw {
        case .npy: try DepthFile.writeNumpy(map, to: files.url(".depth.npy"))
        case .png16: try DepthFile.writePNG16(map, to: files.url(".depth16.png"), depthScale: depthScale)
        case .none: break
        }
        let range = map.finiteRange ?? 0...0
        let sorted = map.values.filter(\.isFinite).sorted()
        let median = sorted.isEmpty ? Float.nan : sorted[sorted.count / 2]
        let unit = kind == .relativeDisparity ? "relative inverse depth" : "depth (m)"
        let line = String(format: "%@: %dx%d, %@ %.3f..%.3f, median %.3f", item.url.lastPathComponent, map.width, map.height, unit,
                          Double(range.lowerBound), Double(range.upperBound), Double(median))
        let record = JSONValue.object([
            ("image", .string(item.url.path)), ("size", .array([.number(String(map.width)), .number(String(map.height))])),
            ("min", .number(String(range.lowerBound))), ("max", .number(String(range.upperBound))),
            ("median", sorted.isEmpty ? .null : .number(String(median))),
        ])
        return ImageReport(line: line, record: record)
    }
}

extension DepthAnythingProcessor: ImagePreparing {
    /// Resized by the processor's rule (aspect kept, multiples of `ensure_multiple_of`), bicubic.
    public var summary: String {
        "Depth Anything processor (\(height)x\(width), aspect \(keepAspectRatio ? "kept" : "not kept"), multiples of \(multiple))"
    }
}
