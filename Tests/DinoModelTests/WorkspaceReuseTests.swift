import DinoModel
import DinoTensor
import Testing

/// A model keeps the activation buffers of its last forward pass for the next pass of the same
/// shape; whatever the previous pass left in them must not reach the next result.
@Suite("Kept workspace")
struct WorkspaceReuseTests {
    static func pixels(batch: Int, height: Int, width: Int, seed: Int) -> Tensor {
        let count = batch * 3 * height * width
        return Tensor(shape: [batch, 3, height, width], scalars: (0..<count).map { Float((($0 + seed) * 2654435761) % 4093) / 2046 - 1 })
    }

    @Test("a pass on a kept workspace gives the same bits as on a new one, for every output")
    func sameBits() throws {
        let folder = Fixtures.folder("reg4_downsample")
        let used = try VisionTransformer(directory: folder)
        let shapes = [(1, 56, 42), (2, 70, 56), (1, 112, 112)]
        for options in [ForwardOptions(), ForwardOptions(outputHiddenStates: true, outputAttentions: true)] {
            for (batch, height, width) in shapes {
                // The same shape twice on one model (the second pass reuses the first one's
                // buffers, full of its activations), against a model that has never run.
                _ = try used(Self.pixels(batch: batch, height: height, width: width, seed: 1), options: options)
                let second = Self.pixels(batch: batch, height: height, width: width, seed: 2)
                let reused = try used(second, options: options)
                let fresh = try VisionTransformer(directory: folder)(second, options: options)
                let label = "\(batch)x\(height)x\(width), attentions \(options.attentionBlocks != .none)"
                #expect(reused.lastHiddenState == fresh.lastHiddenState, "\(label)")
                #expect(reused.poolerOutput == fresh.poolerOutput, "\(label)")
                #expect(reused.hiddenStates?.count == fresh.hiddenStates?.count, "\(label)")
                for (a, b) in zip(reused.hiddenStates ?? [], fresh.hiddenStates ?? []) { #expect(a == b, "\(label)") }
                for (a, b) in zip(reused.attentions ?? [], fresh.attentions ?? []) { #expect(a == b, "\(label)") }
            }
        }
    }
}
