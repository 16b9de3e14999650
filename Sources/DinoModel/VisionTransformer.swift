import CDinoKernels
import DinoTensor
import Foundation
import Synchronization

// Dimension letters in this file: B batch, N tokens per image (1 + R + h * w), R registers,
// C hidden size, H heads, D head dim, F FFN hidden width, h x w the patch grid.

/// A DINOv2 / DINOv2-with-registers vision transformer with loaded weights.
///
/// Immutable after loading and safe to call from many tasks at once: each call allocates its
/// own activation buffers.
public final class VisionTransformer: Sendable {
    /// The architecture.
    public let configuration: DinoConfiguration
    /// The tensor naming the weights were loaded from.
    public let naming: CheckpointNaming
    /// How position embeddings are resampled for inputs of another size.
    public let positionInterpolation: PositionInterpolation
    /// How the linear layers' weights are held.
    public let precision: WeightPrecision
    /// How `.bf16` weights are multiplied (nil for fp32).
    public let bf16Products: BFloat16Products?
    let weights: ModelWeights
    let activation: dino_activation
    private let positionCache = Mutex<[GridSize: [Float]]>([:])
    private let rotaryCache = Mutex<[GridSize: RotaryPositions]>([:])
    /// The activation buffers of the last forward pass, for the next one of the same shape.
    let workspaceCache = Mutex<Workspace?>(nil)

    struct GridSize: Hashable {
        var height: Int
        var width: Int
    }

    /// Builds a model from a configuration and a tensor source in any supported naming.
    ///
    /// - Parameter positionInterpolation: nil picks the reference's choice: antialiased bicubic
    ///   for register models and timm checkpoints, plain bicubic for HF `dinov2`, the 0.1-offset
    ///   scale factor for original Meta plain models.
    /// - Parameter precision: `.bf16` rounds the linear layers' weights to bfloat16 at load.
    /// - Parameter bf16Products: how `.bf16` weights are multiplied; nil is
    ///   `BFloat16Products.automatic` (bfloat16 dot products where the CPU has AVX512-BF16).
    public init(configuration: DinoConfiguration, weights source: any TensorSource, positionInterpolation: PositionInterpolation? = nil,
                precision: WeightPrecision = .fp32, bf16Products: BFloat16Products? = nil) throws(DinoModelError) {
        try configuration.validate()
        let products = bf16Products ?? .automatic
        // Packed once while loading (one layout for the AVX2 and the AVX-512 kernels), the
        // weights are never re-packed per call; without either they stay in PyTorch's layout for
        // OpenBLAS.
        let (weights, naming) = try CheckpointLoader.load(source: source, configuration: configuration,
                                                          pack: packedKernelsActive, precision: precision,
                                                          bf16Products: products)
        self.configuration = configuration
        self.precision = precision
        self.bf16Products = precision == .bf16 ? products : nil
        self.naming = naming
        self.weights = weights
        self.activation = Self.kernelActivation(Activation(configName: configuration.hiddenAct) ?? .gelu)
        if let positionInterpolation {
            self.positionInterpolation = positionInterpolation
        } else if configuration.modelType == "dinov2_with_registers" || configuration.numRegisterTokens > 0 || naming == .timm {
            self.positionInterpolation = .antialiasedBicubic
        } else if naming == .meta {
            self.positionInterpolation = .bicubicScaleOffset(0.1)
        } else {
            self.positionInterpolation = .bicubic
        }
    }

    /// Loads a model folder laid out as on the HF hub: `config.json` and `model.safetensors`
    /// (or `model.safetensors.index.json` with its shards).
    public convenience init(directory: URL, positionInterpolation: PositionInterpolation? = nil,
                            precision: WeightPrecision = .fp32, bf16Products: BFloat16Products? = nil) throws(DinoModelError) {
        let configuration = try DinoConfiguration.load(from: directory.appendingPathComponent("config.json"))
        let source = try Self.weights(inFolder: directory)
        try self.init(configuration: configuration, weights: source, positionInterpolation: positionInterpolation, precision: precision,
                      bf16Products: bf16Products)
    }

    /// The weights of a model folder laid out as on the HF hub: `model.safetensors`, or
    /// `model.safetensors.index.json` and its shards.
    public static func weights(inFolder directory: URL) throws(DinoModelError) -> any TensorSource {
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        do {
            if FileManager.default.fileExists(atPath: single.path) { return try SafetensorsFile(url: single) }
            if FileManager.default.fileExists(atPath: index.path) { return try ShardedSafetensors(indexURL: index) }
        } catch {
            throw .tensorFile(error)
        }
        throw .missingWeights(directory: directory.path)
    }

    private static func kernelActivation(_ activation: Activation) -> dino_activation {
        switch activation {
        case .gelu: return DINO_ACT_GELU
        case .geluTanh: return DINO_ACT_GELU_TANH
        case .relu: return DINO_ACT_RELU
        case .silu: return DINO_ACT_SILU
        case .quickGelu: return DINO_ACT_QUICK_GELU
        }
    }

    /// Whether the checkpoint has a classification head.
    public var hasClassifier: Bool { weights.classifier != nil }

    /// Class names by logit index (`id2label`), or generic names when the config has none.
    public var classLabels: [String]? {
        guard let classifier = weights.classifier else { return nil }
        return (0..<classifier.outFeatures).map { configuration.id2label?[$0] ?? "LABEL_\($0)" }
    }

    /// Runs the model on normalised pixels `[B, channels, H, W]`; `H` and `W` must be multiples
    /// of the patch size.
    public func callAsFunction(_ pixels: Tensor, options: ForwardOptions = ForwardOptions()) throws(DinoModelError) -> ModelOutput {
        let layers = configuration.numHiddenLayers
        return try ModelOutput(try features(pixels, request: options.request(layers: layers), maskedPatches: options.maskedPatches),
                               options: options, layers: layers)
    }

    /// The final LayerNorm applied to every token of `[B, N, C]` (or any `[..., C]`).
    public func finalNorm(_ tokens: Tensor) -> Tensor {
        let c = configuration.hiddenSize
        precondition(tokens.shape.last == c, "final norm needs [..., \(c)], got \(tokens.shape)")
        var out = tokens
        out.scalars.withUnsafeMutableBufferPointer { y in
            dino_layernorm(tokens.scalars, c, y.baseAddress, c, weights.norm.weight, weights.norm.bias,
                           tokens.count / c, c, Float(configuration.layerNormEps))
        }
        return out
    }

    /// Logits `[B, labels]` = classifier(concat(CLS, mean of patch tokens)); registers are not
    /// part of the mean.
    func classify(_ last: Tensor, classifier: LinearWeights) -> Tensor {
        let (b, n, c) = (last.shape[0], last.shape[1], last.shape[2])
        let prefix = configuration.numPrefixTokens
        var features = [Float](repeating: 0, count: b * 2 * c)
        for i in 0..<b {
            let base = i * n * c
            for j in 0..<c {
                features[i * 2 * c + j] = last.scalars[base + j]
                var sum = 0.0
                for t in prefix..<n { sum += Double(last.scalars[base + t * c + j]) }
                features[i * 2 * c + c + j] = Float(sum / Double(n - prefix))
            }
        }
        var logits = [Float](repeating: 0, count: b * classifier.outFeatures)
        logits.withUnsafeMutableBufferPointer { out in
            guard let outBase = out.baseAddress else { return }
            classifier.apply(features, rows: b, into: outBase)
        }
        return Tensor(shape: [b, classifier.outFeatures], scalars: logits)
    }

    // MARK: - Position embeddings

    /// DINOv3's rotary tables for a `height x width` patch grid (nil for DINOv2), kept per grid
    /// as the interpolated position embeddings are.
    func rotaryPositions(height: Int, width: Int) -> RotaryPositions? {
        guard let theta = configuration.ropeTheta else { return nil }
        let key = GridSize(height: height, width: width)
        if let cached = rotaryCache.withLock({ $0[key] }) { return cached }
        let tables = RotaryPositions(theta: theta, headDim: configuration.headDim, gridHeight: height, gridWidth: width)
        rotaryCache.withLock { cache in
            if cache.count >= 16 { cache.removeAll() }
            cache[key] = tables
        }
        return tables
    }

    /// Position embeddings for a `height x width` patch grid, `[1 + height * width, C]`.
    func positionEmbeddings(height: Int, width: Int) throws(DinoModelError) -> [Float] {
        let m = configuration.positionGridSize
        // ref: HF interpolate_pos_encoding: skipped only when the grid is the checkpoint's own.
        if height == m && width == m { return weights.positionEmbeddings }
        let key = GridSize(height: height, width: width)
        if let cached = positionCache.withLock({ $0[key] }) { return cached }
        let interpolation = positionInterpolation
        guard interpolation.outputSize(input: m, target: height) == height,
            interpolation.outputSize(input: m, target: width) == width
        else {
            throw .invalidInput(reason: "position interpolation \(interpolation) cannot produce a \(height)x\(width) grid from \(m)x\(m)")
        }
        let c = configuration.hiddenSize
        let grid = Array(weights.positionEmbeddings[c...])
        let resampled = interpolation.resample(grid, side: m, channels: c, height: height, width: width)
        let result = Array(weights.positionEmbeddings[..<c]) + resampled
        positionCache.withLock { cache in
            if cache.count >= 16 { cache.removeAll() }
            cache[key] = result
        }
        return result
    }
}
