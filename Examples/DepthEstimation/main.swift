// Estimates depth for one image with the library API: a dinov2 depth head on a DINOv2 backbone,
// or a Depth Anything model.
//
//   swift run -c release DepthEstimation MODEL [HEAD] IMAGE
//   swift run -c release DepthEstimation Tests/DinoDepthTests/Fixtures/backbone \
//       Tests/DinoDepthTests/Fixtures/heads/dinov2_vitt14_nyu_dpt_head.pth Examples/images/coffee.png
//   swift run -c release DepthEstimation Tests/DinoDepthTests/Fixtures/depth_anything Examples/images/coffee.png
//
// MODEL is a folder laid out as on the Hugging Face hub. With a HEAD (a released
// dinov2_vit*14_{nyu,kitti}_{linear,linear4,dpt}_head.pth, or a .safetensors with the same tensor
// names) MODEL is the DINOv2 backbone (facebook/dinov2-small for the vits14 heads...); without
// one it is a Depth Anything folder. The bundled test models have random weights: their maps
// show the machinery, not the scene.
import DinoDepth
import DinoImage
import DinoModel
import DinoTensor
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: DepthEstimation MODEL_FOLDER [HEAD_FILE] IMAGE\n".utf8))
    exit(2)
}

do {
    let model = URL(fileURLWithPath: arguments[1])
    let imageURL = URL(fileURLWithPath: arguments[arguments.count - 1])
    let image = try ImageIO.read(imageURL)

    // 1. The model and the image prepared as it expects.
    //    A dinov2 head reads four (or one) blocks of the backbone, with their CLS tokens, before
    //    the final norm; its depth range (NYU 10 m, KITTI 80 m) comes from the head's metadata,
    //    its mmcv _config.py or the dataset in its file name. The released evaluation keeps the
    //    image's size and pads it to a multiple of 14 (centred); the padding is cut away again
    //    when the map is brought back to the image.
    //    Depth Anything brings its own image processor: the side nearer its size becomes 518 px,
    //    both sides multiples of 14, aspect ratio kept.
    let estimator: any DepthEstimator
    let prepared: PreparedImage
    if arguments.count == 4 {
        let depther = try DinoV2Depther.load(backboneDirectory: model, headFile: URL(fileURLWithPath: arguments[2]))
        let range = depther.configuration
        print("dinov2 \(depther.head.name) head on blocks \(depther.blocks), depth \(range.minDepth)...\(range.maxDepth) m")
        estimator = depther
        prepared = try Preprocessing.pad.prepare(image, patchSize: depther.patchSize)
    } else {
        let depthAnything = try DepthAnythingModel(directory: model)
        print("Depth Anything (\(depthAnything.configuration.depthEstimationType))")
        estimator = depthAnything
        prepared = try depthAnything.processor.prepare(image, patchSize: depthAnything.patchSize)
    }
    print("image \(image.width)x\(image.height) -> pixels \(prepared.pixels.shape)")

    // 2. One forward pass, then the map at the image's size: [H, W], metres for a metric model,
    //    relative inverse depth (larger is nearer) for Depth Anything's relative models.
    guard let map = try estimator.depthMaps([prepared]).first else { exit(1) }
    if let range = map.finiteRange {
        print("depth map \(map.width)x\(map.height), values \(range.lowerBound)...\(range.upperBound)")
    }

    // 3. A picture (near warm, far cool) and the raw values for other tools.
    let stem = imageURL.deletingPathExtension().lastPathComponent
    try ImageIO.write(map.colored(.turbo, kind: estimator.kind), to: URL(fileURLWithPath: "\(stem).depth.png"))
    try DepthFile.writeNumpy(map, to: URL(fileURLWithPath: "\(stem).depth.npy"))
    print("wrote \(stem).depth.png and \(stem).depth.npy")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
