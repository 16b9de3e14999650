// Stage numbering as HF's backbones: stage 0 is the embedding output ("stem"), stage k the output
// of block k - 1 (0-based), i.e. "stage{k}". Requests name stages; heads usually think in blocks,
// hence the block-based builders.

/// What one backbone pass must keep: the union of what its readers (heads, the backbone view, a
/// command) need, and nothing else.
///
/// A pass stops after the last block anything asks for, so a request for early blocks only is
/// cheaper than a full forward.
public struct FeatureRequest: Sendable, Hashable {
    /// Stages whose tokens are kept as the blocks leave them (before the final LayerNorm).
    public var stages: Set<Int>
    /// Stages whose tokens are kept after the final LayerNorm (stage `L` after it is the last
    /// hidden state).
    public var normalizedStages: Set<Int>
    /// Blocks (0-based) whose attention probabilities `[B, H, N, N]` are kept.
    public var attentionBlocks: Set<Int>
    /// Blocks (0-based) whose query, key and value projections are kept.
    public var projectionBlocks: Set<Int>
    /// Whether the classification logits are computed (checkpoints with a classifier only).
    public var logits: Bool

    /// A request; by default for nothing.
    public init(stages: Set<Int> = [], normalizedStages: Set<Int> = [], attentionBlocks: Set<Int> = [],
                projectionBlocks: Set<Int> = [], logits: Bool = false) {
        self.stages = stages
        self.normalizedStages = normalizedStages
        self.attentionBlocks = attentionBlocks
        self.projectionBlocks = projectionBlocks
        self.logits = logits
    }

    /// The outputs of `blocks` (0-based), after the final LayerNorm when `normalized`: the
    /// original `get_intermediate_layers(blocks, norm=normalized)`.
    public static func blocks(_ blocks: [Int], normalized: Bool) -> FeatureRequest {
        let stages = Set(blocks.map { $0 + 1 })
        return normalized ? FeatureRequest(normalizedStages: stages) : FeatureRequest(stages: stages)
    }

    /// The last hidden state (the last stage after the final LayerNorm) of an `layers`-block
    /// model, which also gives the pooled output.
    public static func lastHiddenState(layers: Int) -> FeatureRequest {
        FeatureRequest(normalizedStages: [layers])
    }

    /// The query, key and value projections of `blocks` (0-based).
    public static func projections(_ blocks: [Int]) -> FeatureRequest {
        FeatureRequest(projectionBlocks: Set(blocks))
    }

    /// The attention probabilities of `blocks` (0-based).
    public static func attentions(_ blocks: [Int]) -> FeatureRequest {
        FeatureRequest(attentionBlocks: Set(blocks))
    }

    /// Everything either request asks for.
    public func union(_ other: FeatureRequest) -> FeatureRequest {
        FeatureRequest(stages: stages.union(other.stages), normalizedStages: normalizedStages.union(other.normalizedStages),
                       attentionBlocks: attentionBlocks.union(other.attentionBlocks),
                       projectionBlocks: projectionBlocks.union(other.projectionBlocks), logits: logits || other.logits)
    }

    /// Adds what `other` asks for.
    public mutating func formUnion(_ other: FeatureRequest) {
        self = union(other)
    }

    /// Whether the request asks for nothing.
    public var isEmpty: Bool { self == FeatureRequest() }

    /// The number of blocks a pass must run: up to the last block anything asks for.
    func blocksToRun(layers: Int) -> Int {
        if logits { return layers }
        let stage = stages.union(normalizedStages).max() ?? 0
        let block = attentionBlocks.union(projectionBlocks).max().map { $0 + 1 } ?? 0
        return max(stage, block)
    }

    /// Checks every index against a model of `layers` blocks.
    func validate(layers: Int) throws(DinoModelError) {
        for stage in stages.union(normalizedStages) where !(0...layers).contains(stage) {
            throw .invalidStageSelection(reason: "stage \(stage) is outside 0...\(layers) (stem and \(layers) blocks)")
        }
        for block in attentionBlocks.union(projectionBlocks) where !(0..<layers).contains(block) {
            throw .invalidStageSelection(reason: "block index \(block) is outside 0..<\(layers)")
        }
    }
}
