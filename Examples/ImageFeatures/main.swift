// Extracts multi-stage DINOv2 feature maps from one image with the library API.
//
//   swift run -c release ImageFeatures MODEL IMAGE
//   swift run -c release ImageFeatures Tests/DinoModelTests/Fixtures/reg4_downsample Examples/images/coffee.png
//
// MODEL is a folder laid out as on the Hugging Face hub (config.json + model.safetensors).
import DinoImage
import DinoModel
import DinoTensor
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: ImageFeatures MODEL_FOLDER IMAGE\n".utf8))
    exit(2)
}

do {
    // 1. The model, and a backbone view returning four stages spread over the depth, with the
    //    final layernorm applied and the CLS and register tokens stripped: [B, C, h, w] each.
    let model = try VisionTransformer(directory: URL(fileURLWithPath: arguments[1]))
    let depth = model.configuration.numHiddenLayers
    let stages = Array(Set([depth / 4, depth / 2, 3 * depth / 4, depth].filter { $0 >= 1 })).sorted()
    let backbone = try Backbone(model: model, outIndices: stages, applyLayernorm: true, reshapeHiddenStates: true)

    // 2. The image: decoded to RGB (EXIF orientation applied), then a dense preset. This one
    //    resizes the short side to 448 px and rounds both sides to multiples of the patch size;
    //    `.resizeAndPad`, `.pad` and `.size` are the alternatives, none of which crops.
    let image = try ImageIO.read(URL(fileURLWithPath: arguments[2]))
    let prepared = try Preprocessing.resize(shortSide: 448).prepare(image, patchSize: model.configuration.patchSize)
    print("image \(image.width)x\(image.height) -> pixels \(prepared.pixels.shape)")

    // 3. One forward pass; a batch is [B, 3, H, W], here B = 1.
    let output = try backbone(Tensor.stack([prepared.pixels]))
    for (stage, map) in zip(output.stageNames, output.featureMaps) {
        print("\(stage): \(map.shape)   (max |value| \(map.maxAbs))")
    }
    print("CLS token of the last stage: \(try output.features.stage(stages[stages.count - 1], normalized: true).classToken.shape)")

    // 4. Feature maps are plain tensors: save them for other tools.
    let file = URL(fileURLWithPath: "image-features.safetensors")
    try SafetensorsFile.write(zip(output.stageNames, output.featureMaps).map { (name: $0, tensor: $1) }, to: file)
    print("wrote \(file.path)")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
