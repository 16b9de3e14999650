// Loads a DINOv2-with-registers checkpoint, runs the backbone on a batch of pixels and prints
// the multi-stage feature maps a dense head would consume.
//
//   swift run -c release BackboneFeatures Tests/DinoModelTests/Fixtures/reg4_downsample
import DinoModel
import DinoTensor
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: BackboneFeatures MODEL_FOLDER\n".utf8))
    exit(2)
}

do {
    // A folder laid out as on the HF hub: config.json + model.safetensors.
    let model = try VisionTransformer(directory: URL(fileURLWithPath: arguments[1]))
    let config = model.configuration
    print("loaded \(config.modelType): \(config.numHiddenLayers) blocks, C = \(config.hiddenSize), "
          + "\(config.numRegisterTokens) registers, \(model.naming) names")

    // Any size that is a multiple of the patch size works; position embeddings are interpolated.
    let (height, width) = (config.patchSize * 16, config.patchSize * 12)
    let pixels = Tensor(shape: [1, config.numChannels, height, width], repeating: 0.25)

    // The last two stages, final layernorm applied, registers stripped, as [B, C, h, w].
    let last = config.numHiddenLayers
    let backbone = try Backbone(model: model, outIndices: [last - 1, last])
    let output = try backbone(pixels)
    for (stage, map) in zip(output.stageNames, output.featureMaps) {
        print("\(stage): \(map.shape)")
    }
    print("CLS embedding: \(try output.features.stage(last, normalized: true).classToken.shape)")

    // The original DINOv2 API: the last 2 blocks with their class tokens.
    for layer in try backbone.intermediateLayers(pixels, .last(2), reshape: true, returnClassToken: true) {
        print("block \(layer.block): map \(layer.featureMap.shape), class token \(layer.classToken?.shape ?? [])")
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
