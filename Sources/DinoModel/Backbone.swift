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

/// Feature maps of the selected stages, as HF's `BackboneOutput`.
public struct BackboneOutput: Sendable {
    /// Selected stage names, in the order of `featureMaps`.
    public var stageNames: [String]
    /// One map per selected stage: `[B, C, h, w]` when reshaped, else `[B, N, C]`.
    public var featureMaps: [Tensor]
    /// The patch grid `(h, w)` of the input.
    public var gridSize: (height: Int, width: Int)
    /// Every hidden state when requested (`L + 1` x `[B, N, C]`, before the final norm).
    public var hiddenStates: [Tensor]?
    /// The kept attention probabilities in block order, `[B, H, N, N]` each.
    public var attentions: [Tensor]?
    /// The pass the maps come from, for what they do not show (a stage's `classToken`,
    /// `registerTokens`, ...); it holds what the backbone's request and the options asked for.
    public var features: BackboneFeatures

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

    /// The 0-based blocks of a `depth`-block model, in block order.
    public func resolvedBlocks(depth total: Int) throws(DinoModelError) -> [Int] {
        switch self {
        case .last(let n):
            guard n >= 1, n <= total else { throw .invalidStageSelection(reason: "cannot take the last \(n) of \(total) blocks") }
            return Array((total - n)..<total)
        case .blocks(let list):
            for i in list where i < 0 || i >= total {
                throw .invalidStageSelection(reason: "block \(i) is outside 0..<\(total)")
            }
            guard Set(list).count == list.count else { throw .invalidStageSelection(reason: "block indices \(list) have duplicates") }
            // ref: dinov2 _get_intermediate_layers_not_chunked collects outputs while iterating
            // over the blocks, so results come in block order whatever the list order.
            return list.sorted()
        }
    }
}

/// One block's output from `intermediateLayers`.
public struct IntermediateLayer: Sendable {
    /// 0-based block index.
    public var block: Int
    /// Patch tokens only: `[B, C, h, w]` when reshaped, else `[B, h * w, C]`.
    public var featureMap: Tensor
    /// The CLS row `[B, C]` when asked for.
    public var classToken: Tensor?

    /// A block's output from its parts.
    public init(block: Int, featureMap: Tensor, classToken: Tensor?) {
        self.block = block
        self.featureMap = featureMap
        self.classToken = classToken
    }
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

    /// What the selected stages need from a pass: their tokens after the final LayerNorm when
    /// `applyLayernorm`, else as the blocks leave them.
    public var featureRequest: FeatureRequest {
        let normalized = outIndices.filter(normalizes)
        return FeatureRequest(stages: Set(outIndices).subtracting(normalized), normalizedStages: Set(normalized))
    }

    /// Whether stage `index` goes through the final LayerNorm: with `applyLayernorm`, and for
    /// DINOv3 the last stage always (ref: HF DINOv3ViTBackbone.forward).
    func normalizes(_ index: Int) -> Bool {
        applyLayernorm || (model.configuration.isDINOv3 && index == model.configuration.numHiddenLayers)
    }

    /// The feature maps of the selected stages from a pass that kept `featureRequest`; hidden
    /// states and attentions when the pass kept every stage / some attentions.
    public func predict(_ features: BackboneFeatures) throws(DinoModelError) -> BackboneOutput {
        let layers = model.configuration.numHiddenLayers
        let maps = try outIndices.map { (index: Int) throws(DinoModelError) -> Tensor in
            let tokens = try features.stage(index, normalized: normalizes(index))
            return reshapeHiddenStates ? tokens.patchMap : tokens.tokens
        }
        let allStages = Set(0...layers).isSubset(of: features.request.stages)
        let attentionBlocks = features.request.attentionBlocks.sorted()
        return BackboneOutput(
            stageNames: outFeatures, featureMaps: maps, gridSize: (features.layout.gridHeight, features.layout.gridWidth),
            hiddenStates: allStages ? try (0...layers).map { (k: Int) throws(DinoModelError) in try features.stage(k).tokens } : nil,
            attentions: attentionBlocks.isEmpty ? nil : try attentionBlocks.map { (i: Int) throws(DinoModelError) in try features.attention(block: i) },
            features: features)
    }

    /// Feature maps of the selected stages for normalised pixels `[B, channels, H, W]`.
    public func callAsFunction(_ pixels: Tensor, outputHiddenStates: Bool = false, outputAttentions: Bool = false) throws(DinoModelError) -> BackboneOutput {
        try self(pixels, options: ForwardOptions(outputHiddenStates: outputHiddenStates, outputAttentions: outputAttentions))
    }

    /// Feature maps of the selected stages, with the hidden states and attentions `options` asks
    /// for.
    public func callAsFunction(_ pixels: Tensor, options: ForwardOptions) throws(DinoModelError) -> BackboneOutput {
        var extras = options.request(layers: model.configuration.numHiddenLayers)
        extras.normalizedStages = []
        extras.logits = false
        return try predict(try model.features(pixels, request: featureRequest.union(extras), maskedPatches: options.maskedPatches))
    }

    /// The original DINOv2 `get_intermediate_layers`: block outputs in block order, CLS and
    /// registers removed, optionally normalised, reshaped and paired with their CLS row.
    public func intermediateLayers(_ pixels: Tensor, _ layers: LayerSelection, reshape: Bool = false,
                                   returnClassToken: Bool = false, norm: Bool = true) throws(DinoModelError) -> [IntermediateLayer] {
        let blocks = try layers.resolvedBlocks(depth: model.configuration.numHiddenLayers)
        let features = try model.features(pixels, request: .blocks(blocks, normalized: norm))
        return try blocks.map { (block: Int) throws(DinoModelError) -> IntermediateLayer in
            let tokens = try features.block(block, normalized: norm)
            return IntermediateLayer(block: block, featureMap: reshape ? tokens.patchMap : tokens.patchTokens,
                                     classToken: returnClassToken ? tokens.classToken : nil)
        }
    }
}

extension Backbone: DenseHead {}
