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
            data = try InputFile.contents(of: url)
            _ = try JSONValue.parse(data)
        } catch let error as TensorFileError {
            throw .invalidConfiguration(path: url.path, field: "(document)", reason: error.detail)
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
        guard let data = try? InputFile.contents(of: url), let json = try? JSONValue.parse(data) else { return false }
        return json["model_type"]?.stringValue == "depth_anything"
    }

    /// The largest `reassemble_factors` entry (and the inverse of the smallest) accepted; the
    /// released models use 4, 2, 1 and 1/2.
    static let maximumReassembleFactor = 64.0

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
        // Bounded before they become kernel sizes and strides (Int of a huge Double traps).
        let maximumFactor = Self.maximumReassembleFactor
        guard reassembleFactors.allSatisfy({ (1 / maximumFactor...maximumFactor).contains($0)
            && ($0 >= 1 ? $0 == $0.rounded() : (1 / $0) == (1 / $0).rounded()) })
        else {
            throw bad(.reassembleFactors, "\(reassembleFactors) must be integers or 1/integers from 1/\(Int(maximumFactor)) to \(Int(maximumFactor))")
        }
        let widthLimit = DinoConfiguration.Limits.hiddenSize
        guard neckHiddenSizes.allSatisfy({ (1...widthLimit).contains($0) }) else {
            throw bad(.neckHiddenSizes, "\(neckHiddenSizes) must be from 1 to \(widthLimit)")
        }
        for (field, value) in [(CodingKeys.fusionHiddenSize, fusionHiddenSize), (.headHiddenSize, headHiddenSize)] where value > widthLimit {
            throw bad(field, "\(value) is over the limit of \(widthLimit)")
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
