import DinoTensor
import Foundation

/// The architecture of a DINOv2, DINOv2-with-registers or DINOv3 ViT model, read from an HF
/// `config.json`.
///
/// Fields absent from the file take the defaults of the HF configuration class of the
/// `model_type` (`Dinov2WithRegistersConfig`, `Dinov2Config` or `DINOv3ViTConfig`).
public struct DinoConfiguration: Codable, Sendable, Equatable {
    /// `dinov2_with_registers`, `dinov2` or `dinov3_vit`.
    public var modelType: String
    /// Channels per token, `C`.
    public var hiddenSize: Int
    /// Number of transformer blocks, `L`.
    public var numHiddenLayers: Int
    /// Attention heads per block; divides `hiddenSize`.
    public var numAttentionHeads: Int
    /// FFN width as a multiple of `hiddenSize`.
    public var mlpRatio: Double
    /// FFN activation (`gelu` is the exact erf GELU).
    public var hiddenAct: String
    /// Epsilon of every LayerNorm.
    public var layerNormEps: Double
    /// Training resolution; `imageSize / patchSize` is the side of the position-embedding grid.
    public var imageSize: Int
    /// Side of a square patch in pixels.
    public var patchSize: Int
    /// Input channels.
    public var numChannels: Int
    /// Whether the query, key and value projections have a bias (DINOv2; DINOv3 sets each).
    public var qkvBias: Bool
    /// DINOv3: whether the query projection has a bias (DINOv2: `qkvBias`).
    public var queryBias: Bool
    /// DINOv3: whether the key projection has a bias (none in the released models).
    public var keyBias: Bool
    /// DINOv3: whether the value projection has a bias.
    public var valueBias: Bool
    /// DINOv3: whether the attention output projection has a bias.
    public var projBias: Bool
    /// DINOv3: whether the FFN's linear layers have biases.
    public var mlpBias: Bool
    /// DINOv3: the FFN width, `intermediate_size` (DINOv2 derives it from `mlpRatio`).
    public var intermediateSize: Int?
    /// DINOv3: the base of the 2D axial rotary position embedding on the patch tokens; nil for
    /// DINOv2, which adds learned absolute position embeddings instead.
    public var ropeTheta: Double?
    /// Initial LayerScale value (only used at initialisation; weights carry the trained value).
    public var layerscaleValue: Double
    /// SwiGLU FFN instead of the two-layer MLP (DINOv2 ViT-g; DINOv3 `use_gated_mlp`).
    public var useSwigluFFN: Bool
    /// Register tokens inserted after CLS (0 for plain DINOv2).
    public var numRegisterTokens: Int
    /// Backbone stages to return, by name (`stem`, `stage1`...).
    public var outFeatures: [String]?
    /// Backbone stages to return, by index into the stage names.
    public var outIndices: [Int]?
    /// Whether backbone feature maps go through the final LayerNorm.
    public var applyLayernorm: Bool
    /// Whether backbone feature maps drop CLS and registers and become `[B, C, H/p, W/p]`.
    public var reshapeHiddenStates: Bool
    /// Class names of a classification checkpoint, by logit index.
    public var id2label: [Int: String]?
    /// The HF class names the checkpoint was saved from.
    public var architectures: [String]?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case mlpRatio = "mlp_ratio"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case imageSize = "image_size"
        case patchSize = "patch_size"
        case numChannels = "num_channels"
        case qkvBias = "qkv_bias"
        case queryBias = "query_bias"
        case keyBias = "key_bias"
        case valueBias = "value_bias"
        case projBias = "proj_bias"
        case mlpBias = "mlp_bias"
        case intermediateSize = "intermediate_size"
        case ropeTheta = "rope_theta"
        case layerscaleValue = "layerscale_value"
        case useSwigluFFN = "use_swiglu_ffn"
        case numRegisterTokens = "num_register_tokens"
        case outFeatures = "out_features"
        case outIndices = "out_indices"
        case applyLayernorm = "apply_layernorm"
        case reshapeHiddenStates = "reshape_hidden_states"
        case id2label
        case architectures
    }

    /// DINOv3 names its SwiGLU switch differently; decoded into `useSwigluFFN`.
    private enum DINOv3Keys: String, CodingKey { case useGatedMLP = "use_gated_mlp" }

    /// Model types this library runs.
    public static let supportedModelTypes = ["dinov2_with_registers", "dinov2", "dinov3_vit"]

    /// Whether this is a DINOv3 ViT (`dinov3_vit`): RoPE instead of position embeddings, separate
    /// projection biases, `intermediate_size`.
    public var isDINOv3: Bool { modelType == "dinov3_vit" }

    /// A configuration with the HF defaults of `modelType`, changed by `overrides`.
    public init(modelType: String = "dinov2_with_registers", _ overrides: (inout DinoConfiguration) -> Void = { _ in }) {
        self.modelType = modelType
        hiddenSize = 768
        numHiddenLayers = 12
        numAttentionHeads = 12
        mlpRatio = 4
        hiddenAct = "gelu"
        layerNormEps = 1e-6
        imageSize = 224
        // The two HF classes differ here: Dinov2Config defaults to 14, the registers class to 16.
        patchSize = modelType == "dinov2" ? 14 : 16
        numChannels = 3
        qkvBias = true
        layerscaleValue = 1
        useSwigluFFN = false
        numRegisterTokens = modelType == "dinov2" ? 0 : 4
        applyLayernorm = true
        reshapeHiddenStates = true
        queryBias = true
        keyBias = true
        valueBias = true
        projBias = true
        mlpBias = true
        if modelType == "dinov3_vit" {
            // ref: HF DINOv3ViTConfig defaults (ViT-S/16)
            hiddenSize = 384
            numAttentionHeads = 6
            layerNormEps = 1e-5
            numRegisterTokens = 0
            keyBias = false
            intermediateSize = 1536
            ropeTheta = 100
        }
        overrides(&self)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "dinov2_with_registers"
        self.init(modelType: modelType)
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? mlpRatio
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? layerNormEps
        imageSize = try Self.decodeSquare(c, .imageSize) ?? imageSize
        patchSize = try Self.decodeSquare(c, .patchSize) ?? patchSize
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? numChannels
        qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias) ?? qkvBias
        layerscaleValue = try c.decodeIfPresent(Double.self, forKey: .layerscaleValue) ?? layerscaleValue
        useSwigluFFN = try c.decodeIfPresent(Bool.self, forKey: .useSwigluFFN) ?? useSwigluFFN
        if isDINOv3 {
            let v3 = try decoder.container(keyedBy: DINOv3Keys.self)
            useSwigluFFN = try v3.decodeIfPresent(Bool.self, forKey: .useGatedMLP) ?? useSwigluFFN
            queryBias = try c.decodeIfPresent(Bool.self, forKey: .queryBias) ?? queryBias
            keyBias = try c.decodeIfPresent(Bool.self, forKey: .keyBias) ?? keyBias
            valueBias = try c.decodeIfPresent(Bool.self, forKey: .valueBias) ?? valueBias
            projBias = try c.decodeIfPresent(Bool.self, forKey: .projBias) ?? projBias
            mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? mlpBias
            intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
            ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? ropeTheta
        } else {
            (queryBias, keyBias, valueBias) = (qkvBias, qkvBias, qkvBias)
        }
        numRegisterTokens = try c.decodeIfPresent(Int.self, forKey: .numRegisterTokens) ?? numRegisterTokens
        outFeatures = try c.decodeIfPresent([String].self, forKey: .outFeatures)
        outIndices = try c.decodeIfPresent([Int].self, forKey: .outIndices)
        applyLayernorm = try c.decodeIfPresent(Bool.self, forKey: .applyLayernorm) ?? applyLayernorm
        reshapeHiddenStates = try c.decodeIfPresent(Bool.self, forKey: .reshapeHiddenStates) ?? reshapeHiddenStates
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
        if let labels = try c.decodeIfPresent([String: String].self, forKey: .id2label) {
            var byIndex: [Int: String] = [:]
            for (key, name) in labels {
                guard let index = Int(key), index >= 0 else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .id2label, in: c, debugDescription: "label key '\(key)' is not a non-negative integer")
                }
                byIndex[index] = name
            }
            id2label = byIndex
        }
    }

    /// `image_size` / `patch_size` may be an integer or a `[height, width]` pair; only squares are
    /// supported because the position grid is square.
    private static func decodeSquare(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Int? {
        if let pair = try? c.decodeIfPresent([Int].self, forKey: key) {
            guard pair.count == 2, pair[0] == pair[1] else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: c, debugDescription: "\(pair) is not a square size; only square sizes are supported")
            }
            return pair[0]
        }
        return try c.decodeIfPresent(Int.self, forKey: key)
    }

    /// Reads and validates `config.json` at `url`.
    public static func load(from url: URL) throws(DinoModelError) -> DinoConfiguration {
        let data: Data
        do {
            data = try InputFile.contents(of: url)
        } catch {
            throw .cannotReadConfiguration(path: url.path, reason: error.detail)
        }
        return try decode(data, path: url.path)
    }

    /// Decodes and validates the text of a `config.json`; `path` names it in errors.
    public static func decode(_ data: Data, path: String) throws(DinoModelError) -> DinoConfiguration {
        let url = URL(fileURLWithPath: path)
        // The strict parser rejects duplicate keys and runaway nesting before Codable sees the text.
        do {
            _ = try JSONValue.parse(data)
        } catch {
            throw .cannotReadConfiguration(path: url.path, reason: error.description)
        }
        let configuration: DinoConfiguration
        do {
            configuration = try JSONDecoder().decode(DinoConfiguration.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context),
            let DecodingError.valueNotFound(_, context)
        {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .invalidConfiguration(path: url.path, field: field.isEmpty ? "(document)" : field, reason: context.debugDescription)
        } catch {
            throw .cannotReadConfiguration(path: url.path, reason: "\(error)")
        }
        try configuration.validate(path: url.path)
        return configuration
    }

    /// The widest FFN accepted (ViT-g has 6144; the product is converted to an integer width).
    public static let maximumFFNWidth = Double(1 << 30)

    /// Upper bounds of the size fields, far above every released model (ViT-g: 1536 wide,
    /// 40 blocks, 24 heads, 518 px, patch 14, 4 registers) and low enough that nothing derived
    /// from them (stage names, the position grid, token counts) can overflow or allocate much
    /// before the checkpoint's shapes are compared with them.
    public enum Limits {
        /// Largest `hidden_size`.
        public static let hiddenSize = 1 << 14
        /// Largest `num_hidden_layers`.
        public static let layers = 1 << 10
        /// Largest `image_size` (the position grid is at most this many patches a side).
        public static let imageSize = 1 << 14
        /// Largest `patch_size`.
        public static let patchSize = 1 << 10
        /// Largest `num_channels`.
        public static let channels = 1 << 8
        /// Largest `num_register_tokens`.
        public static let registers = 1 << 10
    }

    /// Checks that the values describe a model that can be built.
    public func validate(path: String = "config.json") throws(DinoModelError) {
        func bad(_ field: CodingKeys, _ reason: String) -> DinoModelError {
            .invalidConfiguration(path: path, field: field.rawValue, reason: reason)
        }
        guard Self.supportedModelTypes.contains(modelType) else {
            throw bad(.modelType, "'\(modelType)' is not one of \(Self.supportedModelTypes)")
        }
        guard hiddenSize > 0 else { throw bad(.hiddenSize, "must be positive, got \(hiddenSize)") }
        guard numHiddenLayers > 0 else { throw bad(.numHiddenLayers, "must be positive, got \(numHiddenLayers)") }
        guard numAttentionHeads > 0 else { throw bad(.numAttentionHeads, "must be positive, got \(numAttentionHeads)") }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw bad(.numAttentionHeads, "\(numAttentionHeads) heads do not divide hidden_size \(hiddenSize)")
        }
        guard mlpRatio.isFinite, mlpRatio > 0 else { throw bad(.mlpRatio, "must be positive, got \(mlpRatio)") }
        guard Double(hiddenSize) * mlpRatio <= Self.maximumFFNWidth else {
            throw bad(.mlpRatio, "hidden_size \(hiddenSize) x mlp_ratio \(mlpRatio) is an FFN wider than \(Int(Self.maximumFFNWidth))")
        }
        if let intermediateSize {
            guard ffnHiddenSize > 0 else { throw bad(.intermediateSize, "must be positive and at most \(Int(Self.maximumFFNWidth)), got \(intermediateSize)") }
        }
        guard ffnHiddenSize > 0 else { throw bad(.mlpRatio, "gives an empty FFN: hidden_size \(hiddenSize) x \(mlpRatio)") }
        if isDINOv3 {
            guard let ropeTheta, ropeTheta.isFinite, ropeTheta > 0 else { throw bad(.ropeTheta, "must be positive, got \(ropeTheta.map { "\($0)" } ?? "none")") }
            // The rotation pairs channel i with i + D/2 and gives each axis D/4 frequencies.
            guard headDim % 4 == 0 else { throw bad(.numAttentionHeads, "RoPE needs a head size divisible by 4, got \(headDim)") }
            // The fused gated kernel computes silu(gate) * up, the released DINOv3 SwiGLU models' activation.
            guard !useSwigluFFN || Activation(configName: hiddenAct) == .silu else {
                throw bad(.hiddenAct, "use_gated_mlp with '\(hiddenAct)' is not supported; only silu")
            }
        }
        guard Activation(configName: hiddenAct) != nil else {
            throw bad(.hiddenAct, "'\(hiddenAct)' is not one of \(Activation.configNames)")
        }
        guard layerNormEps.isFinite, layerNormEps > 0 else { throw bad(.layerNormEps, "must be positive, got \(layerNormEps)") }
        guard patchSize > 0 else { throw bad(.patchSize, "must be positive, got \(patchSize)") }
        guard imageSize >= patchSize else {
            throw bad(.imageSize, "\(imageSize) is smaller than patch_size \(patchSize)")
        }
        guard numChannels > 0 else { throw bad(.numChannels, "must be positive, got \(numChannels)") }
        guard numRegisterTokens >= 0 else { throw bad(.numRegisterTokens, "must not be negative, got \(numRegisterTokens)") }
        for (field, value, limit) in [(CodingKeys.hiddenSize, hiddenSize, Limits.hiddenSize), (.numHiddenLayers, numHiddenLayers, Limits.layers),
                                      (.imageSize, imageSize, Limits.imageSize), (.patchSize, patchSize, Limits.patchSize),
                                      (.numChannels, numChannels, Limits.channels), (.numRegisterTokens, numRegisterTokens, Limits.registers)]
        where value > limit {
            throw bad(field, "\(value) is over the limit of \(limit)")
        }
        guard layerscaleValue.isFinite else { throw bad(.layerscaleValue, "must be finite") }
        do {
            _ = try StageSelection(stageNames: stageNames, outFeatures: outFeatures, outIndices: outIndices)
        } catch {
            throw .invalidConfiguration(path: path, field: "out_features/out_indices", reason: "\(error)")
        }
        if let labels = id2label, !labels.isEmpty {
            guard Set(labels.keys) == Set(0..<labels.count) else {
                throw bad(.id2label, "keys must be 0..<\(labels.count)")
            }
        }
    }

    /// Side of the checkpoint's square position-embedding grid, `M = imageSize / patchSize`
    /// (DINOv3 has no such grid: its positions are rotations computed for every input size).
    public var positionGridSize: Int { imageSize / patchSize }

    /// Channels per attention head, `D`.
    public var headDim: Int { hiddenSize / numAttentionHeads }

    /// Hidden width of the FFN: `int(C * mlp_ratio)`, or for SwiGLU two thirds of that rounded
    /// up to a multiple of 8.
    /// 0 when `hidden_size * mlp_ratio` is not a finite width up to `maximumFFNWidth` (which
    /// `validate` refuses).
    public var ffnHiddenSize: Int {
        if let intermediateSize { return intermediateSize > 0 && Double(intermediateSize) <= Self.maximumFFNWidth ? intermediateSize : 0 }
        let product = Double(hiddenSize) * mlpRatio
        guard product.isFinite, product >= 0, product <= Self.maximumFFNWidth else { return 0 }
        let width = Int(product)
        // ref: HF Dinov2WithRegistersSwiGLUFFN / dinov2 SwiGLUFFNFused
        return useSwigluFFN ? (Int(Double(width) * 2 / 3) + 7) / 8 * 8 : width
    }

    /// `["stem", "stage1", ..., "stageL"]` (of at most `Limits.layers` blocks, the most a valid
    /// configuration has).
    public var stageNames: [String] { ["stem"] + (1...min(max(numHiddenLayers, 1), Limits.layers)).map { "stage\($0)" } }

    /// Number of tokens before the patch tokens: CLS and the registers.
    public var numPrefixTokens: Int { 1 + numRegisterTokens }
}

/// FFN activations named by `hidden_act`.
public enum Activation: String, Sendable, CaseIterable {
    case gelu, geluTanh, relu, silu, quickGelu

    /// Names `config.json` may use, mapped to activations (as HF `ACT2FN` maps them).
    static let byConfigName: [String: Activation] = [
        "gelu": .gelu, "gelu_python": .gelu,
        "gelu_new": .geluTanh, "gelu_pytorch_tanh": .geluTanh, "gelu_fast": .geluTanh,
        "relu": .relu, "silu": .silu, "swish": .silu, "quick_gelu": .quickGelu,
    ]

    /// The names accepted in `hidden_act`.
    public static var configNames: [String] { byConfigName.keys.sorted() }

    /// The activation a `hidden_act` value names, if supported.
    public init?(configName: String) {
        guard let activation = Self.byConfigName[configName] else { return nil }
        self = activation
    }
}
