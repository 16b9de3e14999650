import DinoTensor

// Dimension letters: B batch, N tokens (1 + R + h * w), C hidden size, h x w the patch grid.

/// The backbone stages to return, validated and aligned as HF's `BackboneConfigMixin` does:
/// `out_features` and `out_indices` must name the same stages when both are given, stages must
/// be unique and in stage order, and when neither is given the last stage is returned.
public struct StageSelection: Sendable, Equatable {
    /// All stage names, `["stem", "stage1", ..., "stageL"]`.
    public let stageNames: [String]
    /// Selected stage names, in stage order.
    public let outFeatures: [String]
    /// Selected stage indices (non-negative), in stage order.
    public let outIndices: [Int]

    /// Validates and aligns a selection; negative indices count from the end.
    public init(stageNames: [String], outFeatures: [String]?, outIndices: [Int]?) throws(DinoModelError) {
        self.stageNames = stageNames
        func bad(_ reason: String) -> DinoModelError { .invalidStageSelection(reason: reason) }
        var features = outFeatures
        var indices: [Int]?
        if let outFeatures {
            for name in outFeatures where !stageNames.contains(name) {
                throw bad("'\(name)' is not a stage; stages are \(stageNames.first ?? "")...\(stageNames.last ?? "")")
            }
            guard Set(outFeatures).count == outFeatures.count else { throw bad("out_features \(outFeatures) has duplicates") }
            let ordered = stageNames.filter { outFeatures.contains($0) }
            guard ordered == outFeatures else { throw bad("out_features must follow stage order: expected \(ordered), got \(outFeatures)") }
        }
        if let outIndices {
            let positive = try outIndices.map { (index: Int) throws(DinoModelError) -> Int in
                let resolved = index < 0 ? index + stageNames.count : index
                guard resolved >= 0, resolved < stageNames.count else {
                    throw bad("out_index \(index) is outside 0..<\(stageNames.count)")
                }
                return resolved
            }
            guard Set(positive).count == positive.count else { throw bad("out_indices \(outIndices) has duplicates") }
            guard positive == positive.sorted() else { throw bad("out_indices must follow stage order, got \(outIndices)") }
            indices = positive
        }
        if let f = features, let i = indices {
            guard f.count == i.count, f == i.map({ stageNames[$0] }) else {
                throw bad("out_features \(f) and out_indices \(outIndices ?? []) name different stages")
            }
        }
        switch (features, indices) {
        case (nil, nil):
            features = [stageNames[stageNames.count - 1]]
            indices = [stageNames.count - 1]
        case let (f?, nil):
            indices = f.compactMap { stageNames.firstIndex(of: $0) }
        case let (nil, i?):
            features = i.map { stageNames[$0] }
        default:
            break
        }
        self.outFeatures = features ?? []
        self.outIndices = indices ?? []
    }
}

/// Feature maps of the selected stages, as HF's `BackboneOutput`, together with the model's
/// own outputs of the same pass (so a caller wanting both runs the network once).
public struct BackboneOutput: Sendable {
    /// Selected stage names, in the order of `featureMaps`.
    public var stageNames: [String]
    /// One map per selected stage: `[B, C, h, w]` when reshaped, else `[B, N, C]`.
    public var featureMaps: [Tensor]
    /// The patch grid `(h, w)` of the input.
    public var gridSize: (height: Int, width: Int)
    /// Last hidden state, pooler output, logits, and hidden states / attentions when requested.
    public var model: ModelOutput
    /// Every hidden state when requested (`L + 1` x `[B, N, C]`, before the final norm).
    public var hiddenStates: [Tensor]? { model.hiddenStates }
    /// Every block's attention probabilities when requested.
    public var attentions: [Tensor]? { model.attentions }

    /// The feature map of a stage, if it was selected.
    public subscript(stage: String) -> Tensor? {
        stageNames.firstIndex(of: stage).map { featureMaps[$0] }
    }
}

/// Which blocks `intermediateLayers` returns, as the original `get_intermediate_layers(n)`.
public enum LayerSelection: Sendable, Equatable {
    /// The last `n` blocks.
    case last(Int)
    /// Blocks by 0-based index.
    case blocks([Int])
}

/// One block's output from `intermediateLayers`.
public struct IntermediateLayer: Sendable {
    /// 0-based block index.
    public var block: Int
    /// Patch tokens only: `[B, C, h, w]` when reshaped, else `[B, h * w, C]`.
    public var featureMap: Tensor
    /// The CLS row `[B, C]` when asked for.
    public var classToken: Tensor?
}

/// The backbone view of a `VisionTransformer`: multi-stage feature maps for dense heads, with the
/// HF `*Backbone` semantics and the original `get_intermediate_layers` semantics.
public struct Backbone: Sendable {
    /// The underlying model.
    public let model: VisionTransformer
    /// The selected stages.
    public let selection: StageSelection
    /// Whether feature maps pass through the final LayerNorm.
    public var applyLayernorm: Bool
    /// Whether feature maps drop CLS and registers and become `[B, C, h, w]`.
    public var reshapeHiddenStates: Bool

    /// A backbone over `model`. Arguments left nil take the values of the model's `config.json`
    /// (whose `out_features` / `out_indices` default to the last stage).
    public init(model: VisionTransformer, outFeatures: [String]? = nil, outIndices: [Int]? = nil,
                applyLayernorm: Bool? = nil, reshapeHiddenStates: Bool? = nil) throws(DinoModelError) {
        let cfg = model.configuration
        self.model = model
        if outFeatures == nil && outIndices == nil {
            selection = try StageSelection(stageNames: cfg.stageNames, outFeatures: cfg.outFeatures, outIndices: cfg.outIndices)
        } else {
            selection = try StageSelection(stageNames: cfg.stageNames, outFeatures: outFeatures, outIndices: outIndices)
        }
        self.applyLayernorm = applyLayernorm ?? cfg.applyLayernorm
        self.reshapeHiddenStates = reshapeHiddenStates ?? cfg.reshapeHiddenStates
    }

    /// `["stem", "stage1", ..., "stageL"]`.
    public var stageNames: [String] { selection.stageNames }
    /// Selected stage names.
    public var outFeatures: [String] { selection.outFeatures }
    /// Selected stage indices.
    public var outIndices: [Int] { selection.outIndices }

    /// Feature maps of the selected stages for normalised pixels `[B, channels, H, W]`.
    public func callAsFunction(_ pixels: Tensor, outputHiddenStates: Bool = false, outputAttentions: Bool = false) throws(DinoModelError) -> BackboneOutput {
        try self(pixels, options: ForwardOptions(outputHiddenStates: outputHiddenStates, outputAttentions: outputAttentions))
    }

    /// Feature maps of the selected stages, with the extras `options` asks for.
    public func callAsFunction(_ pixels: Tensor, options: ForwardOptions) throws(DinoModelError) -> BackboneOutput {
        let layers = model.configuration.numHiddenLayers
        let capture = options.outputHiddenStates ? Set(0...layers) : Set(outIndices)
        let encoded = try model.encode(pixels, captureStages: capture, attentionBlocks: options.attentionBlocks,
                                       qkvBlocks: options.qkvBlocks)
        var maps: [Tensor] = []
        for index in outIndices {
            guard var tokens = encoded.stages[index] else { continue }
            if applyLayernorm { tokens = model.finalNorm(tokens) }
            if reshapeHiddenStates {
                tokens = patchMap(tokens, encoded: encoded, reshape: true)
            }
            maps.append(tokens)
        }
        return BackboneOutput(
            stageNames: outFeatures, featureMaps: maps, gridSize: (encoded.gridHeight, encoded.gridWidth),
            model: model.modelOutput(encoded, options: options))
    }

    /// The original DINOv2 `get_intermediate_layers`: block outputs in block order, CLS and
    /// registers removed, optionally normalised, reshaped and paired with their CLS row.
    public func intermediateLayers(_ pixels: Tensor, _ layers: LayerSelection, reshape: Bool = false,
                                   returnClassToken: Bool = false, norm: Bool = true) throws(DinoModelError) -> [IntermediateLayer] {
        let total = model.configuration.numHiddenLayers
        let blocks: [Int]
        switch layers {
        case .last(let n):
            guard n >= 1, n <= total else { throw .invalidStageSelection(reason: "cannot take the last \(n) of \(total) blocks") }
            blocks = Array((total - n)..<total)
        case .blocks(let list):
            for i in list where i < 0 || i >= total {
                throw .invalidStageSelection(reason: "block index \(i) is outside 0..<\(total)")
            }
            guard Set(list).count == list.count else { throw .invalidStageSelection(reason: "block indices \(list) have duplicates") }
            // ref: dinov2 _get_intermediate_layers_not_chunked collects outputs while iterating
            // over the blocks, so results come in block order whatever the list order.
            blocks = list.sorted()
        }
        let encoded = try model.encode(pixels, captureStages: Set(blocks.map { $0 + 1 }), attentionBlocks: .none)
        let c = model.configuration.hiddenSize
        return blocks.compactMap { block in
            guard var tokens = encoded.stages[block + 1] else { return nil }
            if norm { tokens = model.finalNorm(tokens) }
            var classToken: Tensor?
            if returnClassToken {
                var rows = [Float](repeating: 0, count: encoded.batch * c)
                for i in 0..<encoded.batch {
                    for j in 0..<c { rows[i * c + j] = tokens.scalars[i * encoded.tokens * c + j] }
                }
                classToken = Tensor(shape: [encoded.batch, c], scalars: rows)
            }
            return IntermediateLayer(block: block, featureMap: patchMap(tokens, encoded: encoded, reshape: reshape), classToken: classToken)
        }
    }

    /// Drops CLS and registers from `[B, N, C]`; returns `[B, C, h, w]` when `reshape`, else
    /// `[B, h * w, C]`.
    private func patchMap(_ tokens: Tensor, encoded: VisionTransformer.Encoded, reshape: Bool) -> Tensor {
        let (b, n, c) = (encoded.batch, encoded.tokens, model.configuration.hiddenSize)
        let prefix = model.configuration.numPrefixTokens
        let patches = n - prefix
        var out = [Float](repeating: 0, count: b * patches * c)
        tokens.scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<b {
                    let from = i * n * c + prefix * c
                    let to = i * patches * c
                    if reshape {
                        // [patches, C] -> [C, patches]
                        for t in 0..<patches {
                            for j in 0..<c { dst[to + j * patches + t] = src[from + t * c + j] }
                        }
                    } else {
                        for j in 0..<(patches * c) { dst[to + j] = src[from + j] }
                    }
                }
            }
        }
        let shape = reshape ? [b, c, encoded.gridHeight, encoded.gridWidth] : [b, patches, c]
        return Tensor(shape: shape, scalars: out)
    }
}
