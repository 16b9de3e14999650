import Synchronization

/// Limits checked before a forward pass allocates its activations. Process-wide.
public enum ComputeLimits {
    /// Default largest number of tokens (batch x sequence) in one forward pass: a 4K frame of
    /// ViT-L/14 is about 42 000 tokens, 65 536 tokens of ViT-g need about 4.5 GB of activations.
    public static let defaultMaxTokens = 65_536
    private static let maxTokensValue = Atomic<Int>(defaultMaxTokens)

    /// The largest `B * N` a forward pass accepts.
    public static var maxTokens: Int {
        get { maxTokensValue.load(ordering: .relaxed) }
        set { maxTokensValue.store(max(1, newValue), ordering: .relaxed) }
    }
}
