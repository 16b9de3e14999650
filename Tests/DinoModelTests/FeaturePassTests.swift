import DinoModel
import DinoTensor
import Foundation
import Testing

/// One backbone pass keeps what its `FeatureRequest` asks for, the same numbers whatever else it
/// keeps, and `HeadRunner` serves several heads from one pass.
@Suite("Feature requests and passes")
struct FeaturePassTests {
    static let folder = Fixtures.folder("reg4_downsample")  // 2 blocks, C = 32, 4 registers, p = 14

    static func pixels(batch: Int, height: Int, width: Int) -> Tensor {
        WorkspaceReuseTests.pixels(batch: batch, height: height, width: width, seed: 7)
    }

    @Test("token views slice [CLS, registers, patches] as the layout says")
    func tokenViews() throws {
        let model = try VisionTransformer(directory: Self.folder)
        let pass = try model.features(Self.pixels(batch: 2, height: 42, width: 56), request: .blocks([1], normalized: false))
        let tokens = try pass.block(1, normalized: false)
        let (b, n, c) = (2, 1 + 4 + 3 * 4, 32)
        #expect(tokens.tokens.shape == [b, n, c])
        #expect((pass.layout.gridHeight, pass.layout.gridWidth, pass.layout.prefix) == (3, 4, 5))
        let all = tokens.tokens.scalars
        func token(_ i: Int, _ t: Int) -> [Float] { Array(all[((i * n + t) * c)..<((i * n + t + 1) * c)]) }
        #expect(tokens.classToken.shape == [b, c])
        #expect(tokens.registerTokens.shape == [b, 4, c])
        #expect(tokens.patchTokens.shape == [b, 12, c])
        #expect(tokens.patchMap.shape == [b, c, 3, 4])
        for i in 0..<b {
            #expect(Array(tokens.classToken.scalars[(i * c)..<((i + 1) * c)]) == token(i, 0))
            for r in 0..<4 {
                #expect(Array(tokens.registerTokens.scalars[((i * 4 + r) * c)..<((i * 4 + r + 1) * c)]) == token(i, 1 + r))
            }
            for t in 0..<12 {
                #expect(Array(tokens.patchTokens.scalars[((i * 12 + t) * c)..<((i * 12 + t + 1) * c)]) == token(i, 5 + t))
                // Patch t sits at row t / 4, column t % 4 of every channel plane.
                let column = (0..<c).map { tokens.patchMap.scalars[((i * c + $0) * 3 + t / 4) * 4 + t % 4] }
                #expect(column == token(i, 5 + t))
            }
        }
    }

    @Test("what a pass keeps never changes its numbers: a union of requests gives each part's exact bits")
    func unionIsExact() throws {
        let model = try VisionTransformer(directory: Self.folder)
        let pixels = Self.pixels(batch: 2, height: 56, width: 42)
        let stem = FeatureRequest(stages: [0])
        let early = FeatureRequest.blocks([0], normalized: true)
        let keys = FeatureRequest.projections([1])
        let attention = FeatureRequest.attentions([0, 1])
        let last = FeatureRequest.lastHiddenState(layers: 2)
        let everything = [stem, early, keys, attention, last].reduce(FeatureRequest()) { $0.union($1) }
        let all = try model.features(pixels, request: everything)
        #expect(try model.features(pixels, request: stem).stage(0).tokens == all.stage(0).tokens)
        #expect(try model.features(pixels, request: early).block(0, normalized: true).tokens == all.block(0, normalized: true).tokens)
        #expect(try model.features(pixels, request: keys).projections(block: 1).key.tokens == all.projections(block: 1).key.tokens)
        #expect(try model.features(pixels, request: last).stage(2, normalized: true).tokens == all.stage(2, normalized: true).tokens)
        let alone = try model.features(pixels, request: attention)
        for block in [0, 1] { #expect(try alone.attention(block: block) == all.attention(block: block)) }
        // Keeping attentions does not change the blocks' outputs either.
        let withAttention = try model.features(pixels, request: last.union(attention))
        #expect(try withAttention.stage(2, normalized: true).tokens == all.stage(2, normalized: true).tokens)
        #expect(try model(pixels).lastHiddenState == all.stage(2, normalized: true).tokens)
    }

    @Test("a pass for the stem or an early block gives what the full forward gives at that stage")
    func earlyStop() throws {
        let model = try VisionTransformer(directory: Self.folder)
        let pixels = Self.pixels(batch: 1, height: 28, width: 70)
        let full = try model(pixels, options: ForwardOptions(outputHiddenStates: true))
        let hidden = try #require(full.hiddenStates)
        #expect(try model.features(pixels, request: FeatureRequest(stages: [0])).stage(0).tokens == hidden[0])
        #expect(try model.features(pixels, request: FeatureRequest(stages: [1])).stage(1).tokens == hidden[1])
    }

    @Test("asking a pass for what it did not keep is an error that says what to request")
    func notRequested() throws {
        let model = try VisionTransformer(directory: Self.folder)
        let pass = try model.features(Self.pixels(batch: 1, height: 28, width: 28), request: .blocks([1], normalized: true))
        #expect(throws: DinoModelError.notRequested(what: "stage 2 before the final norm")) { try pass.block(1, normalized: false) }
        #expect(throws: DinoModelError.self) { try pass.attention(block: 1) }
        #expect(throws: DinoModelError.self) { try pass.projections(block: 0) }
        #expect(pass.logits == nil)
        // Indices outside the model are refused before the pass runs.
        #expect(throws: DinoModelError.self) { try model.features(Self.pixels(batch: 1, height: 28, width: 28), request: FeatureRequest(stages: [3])) }
        #expect(throws: DinoModelError.self) { try model.features(Self.pixels(batch: 1, height: 28, width: 28), request: .projections([2])) }
    }

    @Test("centre padding: the pass pads to the grid and reports where the image lies")
    func centrePadding() throws {
        let model = try VisionTransformer(directory: Self.folder)
        let pixels = Self.pixels(batch: 1, height: 30, width: 25)
        #expect(throws: DinoModelError.inputSizeNotMultipleOfPatch(height: 30, width: 25, patchSize: 14)) {
            try model.features(pixels, request: .blocks([1], normalized: true))
        }
        let pass = try model.features(pixels, request: .blocks([1], normalized: true), padding: .centre)
        #expect(pass.inputSize == (42, 28) && pass.imageSize == (30, 25))
        #expect(pass.padding == (6, 1))
        #expect(pass.contentRectsInInput == [PixelRect(x: 1, y: 6, width: 25, height: 30)])
        let padded = pixels.padded(top: 6, bottom: 6, left: 1, right: 2)
        #expect(try pass.block(1, normalized: true).tokens == model.features(padded, request: .blocks([1], normalized: true)).block(1, normalized: true).tokens)
    }

    /// A head that reads one thing and returns it as it is.
    struct Probe: DenseHead {
        var featureRequest: FeatureRequest
        var read: @Sendable (BackboneFeatures) throws -> Tensor
        func predict(_ features: BackboneFeatures) throws -> Tensor { try read(features) }
    }

    @Test("the runner gives each head of a set what it gives that head alone, from one pass")
    func runnerServesEachHead() throws {
        let model = try VisionTransformer(directory: Self.folder)
        let pixels = Self.pixels(batch: 2, height: 42, width: 42)
        let maps = Probe(featureRequest: .blocks([0, 1], normalized: true)) { try $0.block(0, normalized: true).patchMap }
        let keys = Probe(featureRequest: .projections([1])) { try $0.projections(block: 1).key.patchTokens }
        let classes = Probe(featureRequest: .lastHiddenState(layers: 2)) { try $0.stage(2, normalized: true).classToken }
        let runner = HeadRunner(model: model)
        let (a, b, c) = try runner(pixels, maps, keys, classes)
        #expect(try a == runner(pixels, maps))
        #expect(try b == runner(pixels, keys))
        #expect(try c == runner(pixels, classes))
        let erased = try runner.predictions(pixels, heads: [classes, maps])
        #expect(erased.count == 2 && erased[0] as? Tensor == c && erased[1] as? Tensor == a)
        let backbone = try Backbone(model: model, outIndices: [1, 2])
        let (viaRunner, _) = try runner(pixels, backbone, classes)
        #expect(viaRunner.featureMaps == (try backbone(pixels)).featureMaps)
    }
}
