import DinoModel
import DinoTensor
import Foundation
import Testing

/// HF's `bool_masked_pos` (`ForwardOptions.maskedPatches`): masked patches take the mask token
/// before positions are added. References from Scripts/make_mask_fixtures.py.
@Suite("Masked patches")
struct MaskedPatchTests {
    @Test("the forward with a patch mask matches HF's", arguments: ["reg4_downsample", "reg0_dinov2_downsample", "dinov3_reg4"])
    func matchesReference(_ name: String) throws {
        let reference = try SafetensorsFile(url: Fixtures.folder("masked").appendingPathComponent("\(name).safetensors"))
        let model = try VisionTransformer(directory: Fixtures.folder(name))
        var options = ForwardOptions(outputHiddenStates: true)
        options.maskedPatches = try reference.tensor("bool_masked_pos")
        let output = try model(try reference.tensor("pixel_values"), options: options)
        expectClose(output.lastHiddenState, try reference.tensor("last_hidden_state"), "last_hidden_state")
        expectClose(output.poolerOutput, try reference.tensor("pooler_output"), "pooler_output")
        for (k, state) in try #require(output.hiddenStates).enumerated() {
            expectClose(state, try reference.tensor("hidden_states.\(k)"), "hidden_states.\(k)")
        }
        // The mask changes the result: an unmasked pass differs.
        let unmasked = try model(try reference.tensor("pixel_values"))
        #expect(unmasked.lastHiddenState != output.lastHiddenState)
    }

    @Test("a mask of the wrong shape, or on a checkpoint without a mask token, is an error saying so")
    func refused() throws {
        let reference = try SafetensorsFile(url: Fixtures.folder("masked").appendingPathComponent("reg4_downsample.safetensors"))
        let pixels = try reference.tensor("pixel_values")
        let model = try VisionTransformer(directory: Fixtures.folder("reg4_downsample"))
        var options = ForwardOptions()
        options.maskedPatches = Tensor(shape: [1, 7], scalars: [Float](repeating: 1, count: 7))
        #expect { try model(pixels, options: options) } throws: { "\($0)".contains("[B, h * w] = [1, 256]") && "\($0)".contains("[1, 7]") }
        let timm = try VisionTransformer(directory: Fixtures.folder("reg4_timm"))
        options.maskedPatches = try reference.tensor("bool_masked_pos")
        #expect { try timm(pixels, options: options) } throws: { "\($0)".contains("no mask token") }
    }
}
