import DinoModel
import DinoTensor
import Foundation
import Testing

/// Every fixture configuration against the outputs HF transformers (and timm, for the
/// intermediate layers) produced for the same weights and input.
@Suite("Parity with the reference implementation")
struct ParityTests {
    static let cases = [
        "reg4_downsample", "reg4_meta", "reg4_timm", "reg4_f16", "reg4_bf16", "reg4_sharded",
        "reg0_dinov2_downsample", "reg1_nointerp", "reg8_swiglu_nonsquare", "reg8_swiglu_meta",
        "patch16_layerscale", "patch16_timm", "same_count_nonsquare", "dinov2_upsample_swiglu",
        "batch2_classifier", "dinov2_classifier",
        "dinov3_reg4", "dinov3_swiglu_nonsquare", "dinov3_reg0", "dinov3_f16",
        "dinov3_reg4_meta", "dinov3_reg4_timm", "dinov3_swiglu_meta", "dinov3_swiglu_timm",
    ]

    @Test("forward, backbone and intermediate layers match", arguments: cases)
    func matchesReference(_ name: String) throws {
        let meta = try Fixtures.metadata(name)
        let reference = try Fixtures.reference(name)
        let model = try VisionTransformer(directory: Fixtures.folder(name))
        let expectedNaming: CheckpointNaming = switch meta["naming"]?.stringValue {
        case "meta": .meta
        case "timm": .timm
        default: .huggingFace
        }
        #expect(model.naming == expectedNaming)
        let pixels = try #require(reference["pixel_values"])
        let layers = model.configuration.numHiddenLayers
        var results: [Comparison] = []

        let output = try model(pixels, options: ForwardOptions(outputHiddenStates: true, outputAttentions: true))
        results.append(expectClose(output.lastHiddenState, try #require(reference["last_hidden_state"]), "last_hidden_state"))
        results.append(expectClose(output.poolerOutput, try #require(reference["pooler_output"]), "pooler_output"))
        let hidden = try #require(output.hiddenStates)
        #expect(hidden.count == layers + 1)
        for (k, state) in hidden.enumerated() {
            if let expected = reference["hidden_states.\(k)"] { results.append(expectClose(state, expected, "hidden_states.\(k)")) }
        }
        let attentions = try #require(output.attentions)
        #expect(attentions.count == layers)
        for (i, map) in attentions.enumerated() {
            if let expected = reference["attentions.\(i)"] { results.append(expectClose(map, expected, "attentions.\(i)")) }
        }
        if let expected = reference["logits"] {
            results.append(expectClose(try #require(output.logits), expected, "logits"))
        } else {
            #expect(output.logits == nil)
        }

        let backbone = try Backbone(model: model)
        let features = try backbone(pixels)
        #expect(features.stageNames == meta["out_features"]?.arrayValue?.compactMap(\.stringValue))
        for (stage, map) in zip(features.stageNames, features.featureMaps) {
            results.append(expectClose(map, try #require(reference["feature_maps.\(stage)"]), "feature_maps.\(stage)"))
        }

        if let last2 = reference["intermediate.last2.0"] {
            let layersOut = try backbone.intermediateLayers(pixels, .last(2), reshape: true, norm: true)
            #expect(layersOut.map(\.block) == [layers - 2, layers - 1])
            results.append(expectClose(layersOut[0].featureMap, last2, "intermediate.last2.0"))
            results.append(expectClose(layersOut[1].featureMap, try #require(reference["intermediate.last2.1"]), "intermediate.last2.1"))
            // A list of block indices in any order comes back in block order.
            let picked = try backbone.intermediateLayers(pixels, .blocks([layers - 1, 0]), reshape: false, norm: false)
            #expect(picked.map(\.block) == [0, layers - 1])
            results.append(expectClose(picked[0].featureMap, try #require(reference["intermediate.idx.0"]), "intermediate.idx.0"))
            results.append(expectClose(picked[1].featureMap, try #require(reference["intermediate.idx.1"]), "intermediate.idx.1"))
            let withClass = try backbone.intermediateLayers(pixels, .last(1), reshape: true, returnClassToken: true, norm: true)
            results.append(expectClose(withClass[0].featureMap, try #require(reference["intermediate.cls.map.0"]), "intermediate.cls.map.0"))
            results.append(expectClose(try #require(withClass[0].classToken), try #require(reference["intermediate.cls.token.0"]), "intermediate.cls.token.0"))
        }

        let worst = try #require(results.max { $0.scaledError < $1.scaledError })
        print("parity \(name): \(results.count) tensors, worst max|diff|/max(1,max|ref|) = \(worst.scaledError) in \(worst.name)")
    }

    @Test("reduced-precision checkpoints are read as the rounded float32 values")
    func reducedPrecisionDiffersFromFloat32() throws {
        // The F16 / BF16 references come from the rounded weights; they must not be confused with
        // the float32 reference, or the dtype conversion would not be tested.
        let full = try #require(try Fixtures.reference("reg4_downsample")["last_hidden_state"])
        for name in ["reg4_f16", "reg4_bf16"] {
            let rounded = try #require(try Fixtures.reference(name)["last_hidden_state"])
            let drift = zip(full.scalars, rounded.scalars).map { abs($0 - $1) }.max() ?? 0
            #expect(drift > 1e-3, "\(name) reference equals the float32 one")
        }
    }
}
