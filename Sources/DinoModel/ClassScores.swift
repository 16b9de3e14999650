import Foundation

/// One label of a classification checkpoint with its softmax probability.
public struct ClassScore: Sendable, Equatable {
    /// The label (`id2label`).
    public var label: String
    /// Its index among the logits.
    public var index: Int
    /// `softmax(logits)[index]`.
    public var probability: Float

    /// The `k` most probable labels of one image's `logits` `[labels.count]`, most probable first.
    public static func top(_ k: Int, logits: [Float], labels: [String]) -> [ClassScore] {
        precondition(logits.count == labels.count, "\(logits.count) logits for \(labels.count) labels")
        // Shifted by the largest logit so that exp cannot overflow; summed in double precision.
        let largest = logits.max() ?? 0
        let exps = logits.map { exp(Double($0 - largest)) }
        let total = exps.reduce(0, +)
        return exps.enumerated().sorted { $0.element > $1.element }.prefix(k)
            .map { ClassScore(label: labels[$0.offset], index: $0.offset, probability: Float($0.element / total)) }
    }
}
