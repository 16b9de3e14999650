import CDinoKernels
import DinoTensor
import Foundation
import Synchronization

// Dimension letters in this file: B batch, N tokens per image (1 + R + h * w), R registers,
// C hidden size, H heads, D head dim, F FFN hidden width, h x w the patch grid.

/// What a forward pass returns besides the last hidden state.
public struct ForwardOptions: Sendable, Equatable {
    /// Return the embedding output and the output of every block.
    public var outputHiddenStates: Bool
    /// Blocks whose attention probabilities to keep (`[B, H, N, N]` each; costs memory).
    public var attentionBlocks: AttentionSelection
    /// Blocks (0-based) whose query/key/value projections to keep (`[B, N, 3C]` each), as the
    /// LOST-style object discovery methods read them.
    public var qkvBlocks: Set<Int> = []

    /// Options; by default only the last hidden state, pooler output and logits are returned.
    /// `outputAttentions` keeps every block's attention probabilities.
    public init(outputHiddenStates: Bool = false, outputAttentions: Bool = false) {
        self.outputHiddenStates = outputHiddenStates
        self.attentionBlocks = outputAttentions ? .all : .none
    }

    /// Options keeping the attention probabilities of some blocks only.
    public init(outputHiddenStates: Bool = false, attentionBlocks: AttentionSelection) {
        self.outputHiddenStates = outputHiddenStates
        self.attentionBlocks = attentionBlocks
    }
}

/// Which blocks' attention probabilities a forward pass keeps.
public enum AttentionSelection: Sendable, Equatable {
    case none
    case all
    /// Blocks by 0-based index.
    case blocks(Set<Int>)

    /// Whether any block is selected.
    public var selectsAny: Bool {
        switch self {
        case .none: return false
        case .all: return true
        case .blocks(let set): return !set.isEmpty
        }
    }

    /// Whether block `index` is selected.
    public func contains(_ index: Int) -> Bool {
        switch self {
        case .none: return false
        case .all: return true
        case .blocks(let set): return set.contains(index)
        }
    }
}

/// The outputs of `VisionTransformer`, as HF's `BaseModelOutputWithPooling` (and
/// `ImageClassifierOutput` for classification checkpoints).
public struct ModelOutput: Sendable {
    /// Final-LayerNorm output, `[B, N, C]`, tokens `[CLS, registers..., patches...]`.
    public var lastHiddenState: Tensor
    /// The CLS row of `lastHiddenState`, `[B, C]`.
    public var poolerOutput: Tensor
    /// Embedding output then each block's output (before the final norm), `L + 1` x `[B, N, C]`.
    public var hiddenStates: [Tensor]?
    /// Each block's attention probabilities, `L` x `[B, H, N, N]`, when all were requested.
    public var attentions: [Tensor]?
    /// The attention probabilities computed, by 0-based block index.
    public var attentionsByBlock: [Int: Tensor]
    /// Query, key and value projections `[B, N, 3C]` (channels `0..<C` query, `C..<2C` key,
    /// `2C..<3C` value, heads side by side) of the blocks in `ForwardOptions.qkvBlocks`.
    public var qkvByBlock: [Int: Tensor]
    /// Classification logits `[B, labels]` when the checkpoint has a classifier.
    public var logits: Tensor?
}

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
    /// The activation buffers of the last forward pass, for the next one of the same shape.
    private let workspaceCache = Mutex<Workspace?>(nil)

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
        let encoded = try encode(pixels, captureStages: options.outputHiddenStates ? Set(0...layers) : [],
                                 attentionBlocks: options.attentionBlocks, qkvBlocks: options.qkvBlocks)
        return modelOutput(encoded, options: options)
    }

    /// Final norm, pooling, classifier and the requested extras of an encoder pass.
    func modelOutput(_ encoded: Encoded, options: ForwardOptions) -> ModelOutput {
        let layers = configuration.numHiddenLayers
        let last = finalNorm(encoded.output)
        let (b, n, c) = (encoded.batch, encoded.tokens, configuration.hiddenSize)
        var pooled = [Float](repeating: 0, count: b * c)
        for i in 0..<b {
            for j in 0..<c { pooled[i * c + j] = last.scalars[i * n * c + j] }
        }
        return ModelOutput(
            lastHiddenState: last,
            poolerOutput: Tensor(shape: [b, c], scalars: pooled),
            hiddenStates: options.outputHiddenStates ? (0...layers).compactMap { encoded.stages[$0] } : nil,
            attentions: options.attentionBlocks == .all ? (0..<layers).compactMap { encoded.attentions[$0] } : nil,
            attentionsByBlock: encoded.attentions,
            qkvByBlock: encoded.qkv,
            logits: weights.classifier.map { classify(last, classifier: $0) })
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
    private func classify(_ last: Tensor, classifier: LinearWeights) -> Tensor {
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

    // MARK: - Encoder

    /// Embedding and blocks, without the final norm.
    struct Encoded {
        var batch: Int
        var tokens: Int
        var gridHeight: Int
        var gridWidth: Int
        /// Output of the last block, `[B, N, C]`.
        var output: Tensor
        /// Requested stages (0 = embeddings, k = block k), `[B, N, C]` each.
        var stages: [Int: Tensor]
        /// Attention probabilities of the requested blocks.
        var attentions: [Int: Tensor]
        /// Query/key/value projections of the requested blocks, `[B, N, 3C]`.
        var qkv: [Int: Tensor]
    }

    /// Checks `pixels` and returns `(B, H, W)`.
    func checkInput(_ pixels: Tensor) throws(DinoModelError) -> (batch: Int, height: Int, width: Int) {
        guard pixels.rank == 4 else {
            throw .invalidInput(reason: "pixels must be [B, \(configuration.numChannels), H, W], got shape \(pixels.shape)")
        }
        let (b, channels, height, width) = (pixels.shape[0], pixels.shape[1], pixels.shape[2], pixels.shape[3])
        guard b >= 1 else { throw .invalidInput(reason: "batch is empty (shape \(pixels.shape))") }
        guard channels == configuration.numChannels else {
            throw .invalidInput(reason: "pixels have \(channels) channels, the model expects \(configuration.numChannels) (shape \(pixels.shape))")
        }
        let p = configuration.patchSize
        guard height >= p, width >= p, height % p == 0, width % p == 0 else {
            throw .inputSizeNotMultipleOfPatch(height: height, width: width, patchSize: p)
        }
        return (b, height, width)
    }

    func encode(_ pixels: Tensor, captureStages: Set<Int>, attentionBlocks: AttentionSelection,
                qkvBlocks: Set<Int> = []) throws(DinoModelError) -> Encoded {
        let (b, height, width) = try checkInput(pixels)
        let cfg = configuration
        let p = cfg.patchSize
        let (gh, gw) = (height / p, width / p)
        let patches = gh * gw
        let r = cfg.numRegisterTokens
        let n = 1 + r + patches
        let c = cfg.hiddenSize
        let heads = cfg.numAttentionHeads
        let d = cfg.headDim
        let rows = b * n
        guard rows <= ComputeLimits.maxTokens else {
            throw .tooManyTokens(tokens: rows, limit: ComputeLimits.maxTokens, batch: b, height: height, width: width)
        }
        let threads = ComputeThreads.current
        let positions = try positionEmbeddings(height: gh, width: gw)

        let fullAttention = attentionBlocks.selectsAny
        let workspace = takeWorkspace(Workspace.Shape(
            rows: rows, hidden: c, ffnWidth: cfg.ffnHiddenSize, swiglu: cfg.useSwigluFFN,
            patchRows: b * patches, patchColumns: weights.patchEmbedding.inFeatures, threads: threads,
            scoresPerThread: max(fullAttention ? n * n : 0, AttentionKernel.blockScores(tokens: n)),
            rowStatisticsPerThread: AttentionKernel.queryBlock(tokens: n),
            packedHeadPerThread: AttentionKernel.packedHead(tokens: n, headDim: d)))
        defer { keepWorkspace(workspace) }
        let x = workspace.x
        let ops = RowKernels(threads: threads)

        // Patch embedding: an im2col of the stride-p convolution, then one GEMM.
        dino_patchify(pixels.scalars, workspace.patches, b, cfg.numChannels, height, width, p)
        weights.patchEmbedding.apply(workspace.patches, rows: b * patches, into: workspace.embedded, threads: threads)
        // ref: HF Dinov2WithRegistersEmbeddings.forward: [CLS, patches] + positions first, then
        // the registers are inserted after CLS without a position embedding.
        for i in 0..<b {
            let image = x + i * n * c
            for j in 0..<c { image[j] = weights.clsToken[j] + positions[j] }
            for j in 0..<(r * c) { image[c + j] = weights.registerTokens[j] }
            let patchRows = image + (1 + r) * c
            let embedded = workspace.embedded + i * patches * c
            for j in 0..<(patches * c) { patchRows[j] = embedded[j] + positions[c + j] }
        }

        var stages: [Int: Tensor] = [:]
        func capture(_ stage: Int) {
            if captureStages.contains(stage) {
                stages[stage] = Tensor(shape: [b, n, c], scalars: Array(UnsafeBufferPointer(start: x, count: rows * c)))
            }
        }
        capture(0)

        var attentionMaps: [Int: Tensor] = [:]
        let attention = AttentionKernel(batch: b, tokens: n, heads: heads, headDim: d, threads: threads,
                                        dotProducts: bf16Products == .dotProducts)
        var qkvMaps: [Int: Tensor] = [:]
        let eps = Float(cfg.layerNormEps)
        for (index, block) in weights.blocks.enumerated() {
            // Attention branch: x = x + ls1 * proj(attention(norm1(x))).
            let wantAttentions = attentionBlocks.contains(index)
            ops.layerNorm(x, into: workspace.normed, block.norm1, rows: rows, columns: c, eps: eps)
            block.qkv.apply(workspace.normed, rows: rows, into: workspace.qkv, threads: threads)
            if qkvBlocks.contains(index) {
                qkvMaps[index] = Tensor(shape: [b, n, 3 * c], scalars: Array(UnsafeBufferPointer(start: workspace.qkv, count: rows * 3 * c)))
            }
            if wantAttentions {
                var probabilities = [Float](repeating: 0, count: b * heads * n * n)
                probabilities.withUnsafeMutableBufferPointer { saved in
                    guard let savedBase = saved.baseAddress else { return }
                    attention.full(qkv: workspace.qkv, into: workspace.attention, probabilities: savedBase, scores: workspace.scores)
                }
                attentionMaps[index] = Tensor(shape: [b, heads, n, n], scalars: probabilities)
            } else {
                attention.streaming(qkv: workspace.qkv, into: workspace.attention, workspace: workspace)
            }
            block.projection.apply(workspace.attention, rows: rows, into: x, epilogue: .residual(gamma: block.layerScale1),
                                   scratch: workspace.branch, threads: threads)

            // FFN branch: x = x + ls2 * ffn(norm2(x)).
            ops.layerNorm(x, into: workspace.normed, block.norm2, rows: rows, columns: c, eps: eps)
            switch block.feedForward {
            case let .mlp(fc1, fc2):
                fc1.apply(workspace.normed, rows: rows, into: workspace.hidden, epilogue: .activation(activation), threads: threads)
                fc2.apply(workspace.hidden, rows: rows, into: x, epilogue: .residual(gamma: block.layerScale2),
                          scratch: workspace.branch, threads: threads)
            case let .swiglu(weightsIn, weightsOut):
                weightsIn.apply(workspace.normed, rows: rows, into: workspace.hidden, threads: threads)
                ops.swiglu(workspace.hidden, into: workspace.gate, rows: rows, width: weightsOut.inFeatures)
                weightsOut.apply(workspace.gate, rows: rows, into: x, epilogue: .residual(gamma: block.layerScale2),
                                 scratch: workspace.branch, threads: threads)
            }
            capture(index + 1)
        }

        return Encoded(
            batch: b, tokens: n, gridHeight: gh, gridWidth: gw,
            output: Tensor(shape: [b, n, c], scalars: Array(UnsafeBufferPointer(start: x, count: rows * c))),
            stages: stages, attentions: attentionMaps, qkv: qkvMaps)
    }
}

extension VisionTransformer {
    /// Workspaces up to this many floats (256 MB; ViT-S at 1036 px needs about 30 M, at 224 px
    /// 1.5 M) are kept for the next forward pass; larger ones are freed when the pass ends.
    static let keptWorkspaceFloats = 64 << 20

    /// The kept workspace if it has this shape, else a new one. A forward pass owns its workspace
    /// until it hands it back, so passes running at the same time each get their own.
    fileprivate func takeWorkspace(_ shape: Workspace.Shape) -> Workspace {
        let kept = workspaceCache.withLock { kept -> Workspace? in
            guard let workspace = kept, workspace.shape == shape else { return nil }
            kept = nil
            return workspace
        }
        return kept ?? Workspace(shape)
    }

    /// Keeps `workspace` for the next pass. Allocating and zeroing the buffers and faulting in their
    /// pages cost 0-1 % of a ViT-S 224 forward and 3-6 % at batch 8 (ABBA runs in one process).
    fileprivate func keepWorkspace(_ workspace: Workspace) {
        guard workspace.floats <= Self.keptWorkspaceFloats else { return }
        workspaceCache.withLock { $0 = workspace }
    }
}

/// The elementwise C kernels over row-major `[rows, columns]` buffers, rows split over threads.
struct RowKernels {
    let threads: Int

    private func split(_ rows: Int, _ body: (Range<Int>) -> Void) {
        ComputeThreads.parallelFor(rows, threads: threads, minimumPerPart: 32) { _, range in body(range) }
    }

    func layerNorm(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ norm: LayerNormWeights,
                   rows: Int, columns c: Int, eps: Float) {
        split(rows) { range in
            dino_layernorm(x + range.lowerBound * c, c, y + range.lowerBound * c, c, norm.weight, norm.bias, range.count, c, eps)
        }
    }

    /// `out = silu(x1) * x2` for `x12 = [x1 | x2]`.
    func swiglu(_ x12: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        split(rows) { range in
            dino_swiglu(x12 + range.lowerBound * 2 * width, nil, out + range.lowerBound * width, range.count, width)
        }
    }
}

/// Calls `body` with the array's base address, or nil for a nil array.
@inline(__always)
func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Activation buffers of one forward pass, reused by every block. Every buffer is written before
/// it is read within a pass, so a workspace serves later passes of the same shape as it is.
/// `@unchecked Sendable`: a workspace belongs to one pass at a time (see `takeWorkspace`).
final class Workspace: @unchecked Sendable {
    /// What the buffers' sizes derive from; a kept workspace serves only its own shape.
    struct Shape: Equatable {
        var rows: Int
        var hidden: Int
        var ffnWidth: Int
        var swiglu: Bool
        var patchRows: Int
        var patchColumns: Int
        var threads: Int
        var scoresPerThread: Int
        var rowStatisticsPerThread: Int
        var packedHeadPerThread: Int
    }

    let shape: Shape
    /// Floats in all buffers together.
    let floats: Int
    /// Residual stream `[B * N, C]`.
    let x: UnsafeMutablePointer<Float>
    /// LayerNorm output `[B * N, C]`.
    let normed: UnsafeMutablePointer<Float>
    /// Fused projections `[B * N, 3C]`.
    let qkv: UnsafeMutablePointer<Float>
    /// Attention output, heads side by side `[B * N, C]`.
    let attention: UnsafeMutablePointer<Float>
    /// Branch output before the residual add `[B * N, C]`.
    let branch: UnsafeMutablePointer<Float>
    /// FFN hidden activations `[B * N, F]` (`[B * N, 2F]` for SwiGLU).
    let hidden: UnsafeMutablePointer<Float>
    /// SwiGLU gate output `[B * N, F]`.
    let gate: UnsafeMutablePointer<Float>
    /// Attention scores per thread: `[N, N]` when probabilities are kept, else one block.
    let scores: UnsafeMutablePointer<Float>
    /// Running max and sum of the streaming softmax, per thread one query block each.
    let rowMax: UnsafeMutablePointer<Float>
    let rowSum: UnsafeMutablePointer<Float>
    /// Packed keys and values of one head and a copied block of queries, per thread (packed-kernel attention).
    let packedHeads: UnsafeMutablePointer<Float>
    /// im2col patches `[B * h * w, K]`.
    let patches: UnsafeMutablePointer<Float>
    /// Patch projections `[B * h * w, C]`.
    let embedded: UnsafeMutablePointer<Float>
    private let all: [UnsafeMutablePointer<Float>]

    init(_ shape: Shape) {
        self.shape = shape
        var floats = 0
        func make(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
            floats += max(count, 1)
            return pointer
        }
        let (rows, c, f) = (shape.rows, shape.hidden, shape.ffnWidth)
        x = make(rows * c)
        normed = make(rows * c)
        qkv = make(rows * 3 * c)
        attention = make(rows * c)
        branch = make(rows * c)
        hidden = make(rows * (shape.swiglu ? 2 * f : f))
        gate = make(shape.swiglu ? rows * f : 0)
        scores = make(shape.threads * shape.scoresPerThread)
        rowMax = make(shape.threads * shape.rowStatisticsPerThread)
        rowSum = make(shape.threads * shape.rowStatisticsPerThread)
        packedHeads = make(shape.threads * shape.packedHeadPerThread)
        patches = make(shape.patchRows * shape.patchColumns)
        embedded = make(shape.patchRows * c)
        all = [x, normed, qkv, attention, branch, hidden, gate, scores, rowMax, rowSum, packedHeads, patches, embedded]
        self.floats = floats
    }

    deinit {
        for pointer in all { pointer.deallocate() }
    }
}
