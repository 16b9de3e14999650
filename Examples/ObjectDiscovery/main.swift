// Finds the main object of one image without labels, with LOST and with TokenCut, through the
// library API, and draws both results.
//
//   swift run -c release ObjectDiscovery MODEL IMAGE [OUTPUT_PREFIX]
//   swift run -c release ObjectDiscovery Tests/DinoModelTests/Fixtures/reg4_downsample Examples/images/coffee.png
//
// MODEL is a folder laid out as on the Hugging Face hub (config.json + model.safetensors). The
// test checkpoint has random weights: it shows the machinery, not where the object is.
import DinoDiscovery
import DinoImage
import DinoModel
import DinoTensor
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: ObjectDiscovery MODEL_FOLDER IMAGE [OUTPUT_PREFIX]\n".utf8))
    exit(2)
}
let outputPrefix = arguments.count == 4 ? arguments[3] : "object-discovery"

do {
    // 1. The model. LOST reads the keys of the last block's attention; the model keeps them
    //    when asked, so one forward pass gives both the usual outputs and the keys.
    let model = try VisionTransformer(directory: URL(fileURLWithPath: arguments[1]))
    let keys = LastBlockFeatures(model: model, kind: .keys)

    // 2. The image as LOST prepares it: no resize, ImageNet normalisation, zero padding at the
    //    bottom and right up to a multiple of the patch size. Boxes are clipped to the unpadded
    //    image. (For a large photo, `.resize(shortSide: 448)` keeps the patch count moderate;
    //    `box.inOriginal(of:)` maps the box back.)
    let image = try ImageIO.read(URL(fileURLWithPath: arguments[2]))
    let prepared = try Preprocessing.padBottomRight.prepare(image, patchSize: model.configuration.patchSize)

    // 3. The patch features: `[h * w, C]`, CLS and registers dropped.
    let features = try keys([prepared])[0]  // one image in, one feature set out
    print("image \(image.width)x\(image.height): \(features.rows)x\(features.columns) patches of \(features.channels) channels")

    // 4. LOST: the seed is the patch with the fewest positive correlations; the 100 patches of
    //    lowest degree that correlate with the seed vote for the object's patches. TokenCut:
    //    the normalized cut of the graph joining patches with cosine similarity above 0.2.
    //    Each returns the box, the seed patch, the foreground mask and its component holding
    //    the seed, and a score in [0, 1].
    for (name, method) in [("lost", DiscoveryMethod.lost(LOST())), ("tokencut", .tokenCut(TokenCut()))] {
        let object = try method.discover(features)
        let box = object.box.inOriginal(of: prepared)
        print("\(method.summary): box \(box) (x0, y0, x1, y1; ends excluded), seed patch \(object.seed), "
            + "\(object.component.count) patches, score \(String(format: "%.3f", object.score))")

        // 5. The picture: object patches orange, other foreground blue, box yellow, seed red.
        let picture = DiscoveryPicture.render(object, on: image, prepared: prepared, caption: name)
        let file = URL(fileURLWithPath: "\(outputPrefix).\(name).png")
        try ImageIO.write(picture, to: file)
        print("wrote \(file.path)")
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
