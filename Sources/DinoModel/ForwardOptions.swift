import DinoTensor

// Dimension letters: B batch, N tokens per image, C hidden size, H heads, L blocks.

/// What an HF-style forward pass returns besides the last hidden state.
public struct ForwardOptions: Sendable, Equatable {
    /// Return the embedding output and the output of every block.
    public var outputHiddenStates: Bool
    /// Blocks whose attention probabilities to keep (`[B, H, N, N]` each; costs memory).
    public var attentionBlocks: AttentionSelection
    /// HF's `bool_masked_pos`: `[B, h * w]`, a non-zero entry replaces that patch's embedding
    /// with the checkpoint's mask token (before positions are added); nil masks nothing.
    public var maskedPatches: Tensor?

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

    /// The same outputs as a pass request for a model of `layers` blocks.
    public func request(layers: Int) -> FeatureRequest {
        let attention: Set<Int> = switch attentionBlocks {
        case .none: []
        case .all: Set(0..<layers)
        case .blocks(let set): set
        }
        return FeatureRequest(stages: outputHiddenStates ? Set(0...layers) : [], normalizedStages: [layers],
                              attentionBlocks: attention, logits: true)
    }
}

/// Which blocks' attention probabilities a forward pass keeps.
public enum AttentionSelection: Sendable, Equatable {
    case none
    case all
    /// Blocks by 0-based index.
    case blocks(Set<Int>)
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
    /// The kept attention probabilities in block order, `[B, H, N, N]` each (all `L` blocks
    /// with `.all`).
    public var attentions: [Tensor]?
    /// Classification logits `[B, labels]` when the checkpoint has a classifier.
    public var logits: Tensor?

    /// The HF outputs of a pass that kept what `options.request(layers:)` asks for.
    init(_ features: BackboneFeatures, options: ForwardOptions, layers: Int) throws(DinoModelError) {
        let last = try features.stage(layers, normalized: true)
        lastHiddenState = last.tokens
        poolerOutput = last.classToken
        hiddenStates = options.outputHiddenStates ? try (0...layers).map { (k: Int) throws(DinoModelError) in try features.stage(k).tokens } : nil
        let kept = features.request.attentionBlocks.sorted()
        attentions = kept.isEmpty ? nil : try kept.map { (i: Int) throws(DinoModelError) in try features.attention(block: i) }
        logits = features.logits
    }
}
