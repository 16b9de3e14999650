import DinoModel
import DinoTensor
import Foundation
import Testing

/// The `torch.save` fixtures of the DinoTensor tests (written by `Scripts/make_pth_fixtures.py`).
enum PthFixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("DinoTensorTests/Fixtures/pth")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
}

@Suite("Original Meta checkpoints from .pth files")
struct TorchCheckpointModelTests {
    static let reg4 = PthFixtures.url("backbone_reg4_meta.pth")
    static let dim64 = PthFixtures.url("backbone_dim64_swiglu.pth")

    @Test("the .pth backbone holds exactly the weights of the Meta-named safetensors")
    func sameWeights() throws {
        let pth = try TorchCheckpoint(url: Self.reg4)
        let safetensors = try SafetensorsFile(url: Fixtures.folder("reg4_meta").appendingPathComponent("model.safetensors"))
        #expect(Set(pth.tensorNames) == Set(safetensors.tensorNames))
        for name in safetensors.tensorNames {
            #expect(try pth.tensor(name) == safetensors.tensor(name), "\(name)")
        }
    }

    @Test("a Meta .pth backbone with its configuration matches the reference outputs")
    func parity() throws {
        let configuration = try DinoConfiguration.load(from: Fixtures.folder("reg4_meta").appendingPathComponent("config.json"))
        let model = try VisionTransformer(checkpoint: Self.reg4, configuration: configuration)
        #expect(model.naming == .meta)
        #expect(model.positionInterpolation == .antialiasedBicubic)
        let reference = try Fixtures.reference("reg4_downsample")
        let pixels = try #require(reference["pixel_values"])
        let output = try model(pixels, options: ForwardOptions(outputHiddenStates: true))
        var results = [
            expectClose(output.lastHiddenState, try #require(reference["last_hidden_state"]), "last_hidden_state"),
            expectClose(output.poolerOutput, try #require(reference["pooler_output"]), "pooler_output"),
        ]
        for (k, state) in try #require(output.hiddenStates).enumerated() {
            results.append(expectClose(state, try #require(reference["hidden_states.\(k)"]), "hidden_states.\(k)"))
        }
        let features = try Backbone(model: model)(pixels)
        #expect(features.stageNames == ["stage1", "stage2"])
        for (stage, map) in zip(features.stageNames, features.featureMaps) {
            results.append(expectClose(map, try #require(reference["feature_maps.\(stage)"]), "feature_maps.\(stage)"))
        }
        let worst = try #require(results.max { $0.scaledError < $1.scaledError })
        print("pth parity reg4_downsample: \(results.count) tensors, worst max|diff|/max(1,max|ref|) = \(worst.scaledError) in \(worst.name)")
    }

    @Test("inferring the reg4 backbone: every field but the head count (its heads are 16 wide)")
    func inferredReg4() throws {
        let source = try TorchCheckpoint(url: Self.reg4)
        let expected = try DinoConfiguration.load(from: Fixtures.folder("reg4_meta").appendingPathComponent("config.json"))
        #expect {
            try DinoConfiguration.inferred(from: source, file: Self.reg4.path)
        } throws: { error in
            guard case DinoModelError.invalidConfiguration(let path, "num_attention_heads", let reason) = error else { return false }
            return path == Self.reg4.path && reason.contains("32") && reason.contains("64")
        }
        let inferred = try DinoConfiguration.inferred(from: source, file: Self.reg4.path, headDimension: 16)
        #expect(inferred.modelType == expected.modelType)
        #expect(inferred.hiddenSize == expected.hiddenSize)
        #expect(inferred.numHiddenLayers == expected.numHiddenLayers)
        #expect(inferred.numAttentionHeads == expected.numAttentionHeads)
        #expect(inferred.mlpRatio == expected.mlpRatio)
        #expect(inferred.imageSize == expected.imageSize)
        #expect(inferred.patchSize == expected.patchSize)
        #expect(inferred.numChannels == expected.numChannels)
        #expect(inferred.numRegisterTokens == expected.numRegisterTokens)
        #expect(inferred.useSwigluFFN == expected.useSwigluFFN)
        #expect(inferred.qkvBias == expected.qkvBias)
        #expect(inferred.layerNormEps == expected.layerNormEps)
        #expect(inferred.hiddenAct == expected.hiddenAct)

        // The inferred architecture gives the reference outputs (default stages: the last one).
        let model = try VisionTransformer(configuration: inferred, weights: source)
        let reference = try Fixtures.reference("reg4_downsample")
        let output = try model(try #require(reference["pixel_values"]))
        expectClose(output.lastHiddenState, try #require(reference["last_hidden_state"]), "last_hidden_state")
    }

    @Test("a head-width-64 SwiGLU backbone loads from its .pth alone")
    func inferredDim64() throws {
        let model = try VisionTransformer(checkpoint: Self.dim64)
        let configuration = model.configuration
        #expect(configuration.modelType == "dinov2")
        #expect(configuration.hiddenSize == 128)
        #expect(configuration.numAttentionHeads == 2)
        #expect(configuration.headDim == 64)
        #expect(configuration.numHiddenLayers == 2)
        #expect(configuration.patchSize == 4)
        #expect(configuration.imageSize == 16)
        #expect(configuration.numChannels == 3)
        #expect(configuration.numRegisterTokens == 0)
        #expect(configuration.useSwigluFFN)
        #expect(configuration.mlpRatio == 4)
        #expect(configuration.ffnHiddenSize == 344)
        #expect(configuration.qkvBias)
        #expect(configuration.layerNormEps == 1e-6)
        #expect(model.naming == .meta)
        #expect(model.positionInterpolation == .bicubicScaleOffset(0.1))

        // The expanded (stride-0) weights are read as PyTorch sees them: one value per row.
        let qkv = try TorchCheckpoint(url: Self.dim64).tensor("blocks.0.attn.qkv.weight")
        #expect(qkv.shape == [384, 128])
        #expect((0..<384).allSatisfy { row in Set(qkv.scalars[(row * 128)..<((row + 1) * 128)]).count == 1 })

        for (height, width) in [(16, 16), (8, 12)] {
            let pixels = Tensor(shape: [1, 3, height, width], scalars: (0..<(3 * height * width)).map { Float($0 % 17) / 17 - 0.5 })
            let output = try model(pixels)
            #expect(output.lastHiddenState.shape == [1, 1 + (height / 4) * (width / 4), 128])
            #expect(output.lastHiddenState.scalars.allSatisfy { $0.isFinite })
        }
    }

    @Test("the head-width-64 SwiGLU .pth backbone gives PyTorch's outputs (HF Dinov2Model on the same weights)", arguments: ["16x16", "8x12"])
    func dim64Parity(size: String) throws {
        let reference = try SafetensorsFile(url: PthFixtures.url("backbone_dim64_swiglu.reference.safetensors"))
        // HF's plain Dinov2 resamples the position grid with plain bicubic (16x16 needs none).
        let model = try VisionTransformer(checkpoint: Self.dim64, positionInterpolation: .bicubic)
        let output = try model(try reference.tensor("pixel_values.\(size)"))
        let result = expectClose(output.lastHiddenState, try reference.tensor("last_hidden_state.\(size)"), "dim64 last_hidden_state \(size)")
        print("pth parity dim64 \(size): max|diff|/max(1,max|ref|) = \(result.scaledError)")
    }

    @Test("a single .safetensors file loads the same way")
    func safetensorsFile() throws {
        let folder = Fixtures.folder("reg4_meta")
        let configuration = try DinoConfiguration.load(from: folder.appendingPathComponent("config.json"))
        let fromSafetensors = try VisionTransformer(checkpoint: folder.appendingPathComponent("model.safetensors"), configuration: configuration)
        let fromPth = try VisionTransformer(checkpoint: Self.reg4, configuration: configuration)
        let pixels = try #require(try Fixtures.reference("reg4_downsample")["pixel_values"])
        #expect(try fromSafetensors(pixels).lastHiddenState == fromPth(pixels).lastHiddenState)
    }

    @Test("unreadable or unsuitable files give typed errors naming them")
    func errors() throws {
        let missing = PthFixtures.url("absent.pth")
        #expect {
            try VisionTransformer(checkpoint: missing)
        } throws: { error in
            guard case DinoModelError.tensorFile(.cannotOpen(let path, _)) = error else { return false }
            return path == missing.path
        }
        let legacy = PthFixtures.url("legacy.pth")
        #expect {
            try VisionTransformer(checkpoint: legacy)
        } throws: { error in
            guard case DinoModelError.tensorFile(.invalidHeader(let path, let reason)) = error else { return false }
            return path == legacy.path && reason.contains("legacy")
        }
        let hostile = PthFixtures.url("global_os_system.pth")
        #expect {
            try VisionTransformer(checkpoint: hostile)
        } throws: { error in
            guard case DinoModelError.tensorFile(.rejectedPickle(let path, _, _)) = error else { return false }
            return path == hostile.path
        }
        let huggingFace = Fixtures.folder("reg4_downsample").appendingPathComponent("model.safetensors")
        #expect {
            try VisionTransformer(checkpoint: huggingFace)
        } throws: { error in
            guard case DinoModelError.unknownNaming(let path, let reason) = error else { return false }
            return path == huggingFace.path && reason.contains("config.json")
        }
        let notBackbone = PthFixtures.url("segmentation_head.pth")
        #expect {
            try VisionTransformer(checkpoint: notBackbone)
        } throws: { error in
            guard case DinoModelError.unknownNaming(let path, _) = error else { return false }
            return path == notBackbone.path
        }
    }
}
