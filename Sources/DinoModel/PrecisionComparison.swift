import DinoTensor
import Foundation

/// How far a model's outputs are from another's on the same input, output by output: a
/// `WeightPrecision.bf16` model against its fp32 original (`dino bench --accuracy`).
public struct PrecisionComparison: Sendable {
    /// One output tensor compared.
    public struct Entry: Sendable, Equatable {
        /// `last_hidden_state`, `pooler_output`, `hidden_states.<i>`, `attentions.<i>` or
        /// `feature_maps.<stage>` (final LayerNorm, registers and CLS stripped, `[B, C, h, w]`).
        public var output: String
        /// Cosine similarity of the two tensors, flattened.
        public var cosine: Double
        /// Largest absolute difference.
        public var maxAbsError: Double
        /// Largest absolute value of the reference, the scale of `maxAbsError`.
        public var maxAbsReference: Double

        /// `actual` compared with `expected` (cosine 0 and an infinite error when the shapes differ).
        public init(output: String, expected: Tensor, actual: Tensor) {
            var dot = 0.0, normE = 0.0, normA = 0.0, maxError = 0.0, maxReference = 0.0
            for (e, a) in zip(expected.scalars, actual.scalars) {
                let (de, da) = (Double(e), Double(a))
                dot += de * da
                normE += de * de
                normA += da * da
                maxError = max(maxError, abs(de - da))
                maxReference = max(maxReference, abs(de))
            }
            let cosine = normE > 0 && normA > 0 ? dot / (normE.squareRoot() * normA.squareRoot()) : (normE == normA ? 1 : 0)
            let shapesAgree = expected.shape == actual.shape
            self.output = output
            self.cosine = shapesAgree ? cosine : 0
            self.maxAbsError = shapesAgree ? maxError : .infinity
            self.maxAbsReference = maxReference
        }
    }

    /// Every output, in the order above.
    public var entries: [Entry]

    /// The lowest cosine over `entries` whose name starts with `prefix` (all when empty).
    public func minimumCosine(prefix: String = "") -> Double {
        entries.filter { $0.output.hasPrefix(prefix) }.map(\.cosine).min() ?? 1
    }

    /// The largest absolute error over `entries` whose name starts with `prefix`.
    public func maximumError(prefix: String = "") -> Double {
        entries.filter { $0.output.hasPrefix(prefix) }.map(\.maxAbsError).max() ?? 0
    }

    /// Runs `reference` and `candidate` on `pixels` with hidden states, attentions and every
    /// stage's feature map, and compares each output. One pass keeps everything: the kept maps
    /// come from a product of their own, and every block's output takes the streaming attention
    /// that is timed.
    public static func compare(reference: VisionTransformer, candidate: VisionTransformer, pixels: Tensor) throws(DinoModelError) -> PrecisionComparison {
        let layers = reference.configuration.numHiddenLayers
        let everything = FeatureRequest(stages: Set(0...layers), normalizedStages: Set(0...layers), attentionBlocks: Set(0..<layers))
        func entry(_ name: String, _ e: Tensor, _ a: Tensor) -> Entry { Entry(output: name, expected: e, actual: a) }
        let expected = try reference.features(pixels, request: everything)
        let actual = try candidate.features(pixels, request: everything)
        let (lastE, lastA) = (try expected.stage(layers, normalized: true), try actual.stage(layers, normalized: true))
        var entries = [entry("last_hidden_state", lastE.tokens, lastA.tokens),
                       entry("pooler_output", lastE.classToken, lastA.classToken)]
        for k in 0...layers {
            entries.append(entry("hidden_states.\(k)", try expected.stage(k).tokens, try actual.stage(k).tokens))
        }
        for i in 0..<layers {
            entries.append(entry("attentions.\(i)", try expected.attention(block: i), try actual.attention(block: i)))
        }
        for (k, name) in reference.configuration.stageNames.enumerated() {
            entries.append(entry("feature_maps.\(name)", try expected.stage(k, normalized: true).patchMap,
                                 try actual.stage(k, normalized: true).patchMap))
        }
        return PrecisionComparison(entries: entries)
    }

    /// A JSON array of `{"output", "cosine", "max_abs_error", "max_abs_reference"}` objects.
    public var json: String {
        let items = entries.map {
            String(format: "{\"output\": \"%@\", \"cosine\": %.8f, \"max_abs_error\": %.6g, \"max_abs_reference\": %.6g}",
                   $0.output, $0.cosine, $0.maxAbsError, $0.maxAbsReference)
        }
        return "[" + items.joined(separator: ", ") + "]"
    }
}
