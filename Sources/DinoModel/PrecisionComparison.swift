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
    /// stage's feature map, and compares each output. A pass that returns attention maps runs
    /// every block's attention on the float32 path that keeps them, so the maps come from passes
    /// of their own and every other output from passes without them (the path that is timed).
    public static func compare(reference: VisionTransformer, candidate: VisionTransformer, pixels: Tensor) throws(DinoModelError) -> PrecisionComparison {
        let stages = Array(0...reference.configuration.numHiddenLayers)
        func run(_ model: VisionTransformer, attentions: Bool) throws(DinoModelError) -> BackboneOutput {
            let backbone = try Backbone(model: model, outIndices: stages, applyLayernorm: true, reshapeHiddenStates: true)
            return try backbone(pixels, outputHiddenStates: true, outputAttentions: attentions)
        }
        let expected = try run(reference, attentions: false), actual = try run(candidate, attentions: false)
        let expectedMaps = try run(reference, attentions: true).attentions ?? []
        let actualMaps = try run(candidate, attentions: true).attentions ?? []
        func entry(_ name: String, _ e: Tensor, _ a: Tensor) -> Entry { Entry(output: name, expected: e, actual: a) }
        var entries = [entry("last_hidden_state", expected.model.lastHiddenState, actual.model.lastHiddenState),
                       entry("pooler_output", expected.model.poolerOutput, actual.model.poolerOutput)]
        for (i, (e, a)) in zip(expected.hiddenStates ?? [], actual.hiddenStates ?? []).enumerated() {
            entries.append(entry("hidden_states.\(i)", e, a))
        }
        for (i, (e, a)) in zip(expectedMaps, actualMaps).enumerated() {
            entries.append(entry("attentions.\(i)", e, a))
        }
        for (name, (e, a)) in zip(expected.stageNames, zip(expected.featureMaps, actual.featureMaps)) {
            entries.append(entry("feature_maps.\(name)", e, a))
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
