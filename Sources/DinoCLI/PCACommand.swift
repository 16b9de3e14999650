import ArgumentParser
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// `dino pca`: the DINOv2 picture, principal components of patch features as colours.
struct PCACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pca",
        abstract: "Colour each patch by the first 3 principal components of its features.",
        discussion: """
            Patch features of the chosen stage (final layernorm applied, CLS and registers \
            dropped) of all given images are pooled and one PCA is fitted to them, so colours \
            mean the same across images. Component signs are deterministic (each component's \
            largest loading is positive); components are scaled to 0-255 jointly over all images.

            With --mask-threshold T the first component, scaled to [0, 1], separates foreground \
            (above T; below with --invert-mask) from background; the PCA is then refitted on the \
            foreground patches and the background is drawn black, as in the DINOv2 paper's figures.

            Writes OUTPUT_DIR/<name>.pca.png at the size of each input image. Images are resized \
            with --resize 448 unless another preset is given.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "Stage whose features to use (default: the last, e.g. stage12).")
    var stage: String?

    @Option(name: .long, help: "Foreground threshold on the first component scaled to [0, 1] (e.g. 0.5).")
    var maskThreshold: Float?

    @Flag(name: .long, help: "Treat patches below the threshold as foreground.")
    var invertMask = false

    @Flag(name: .long, help: "Blend patch colours smoothly instead of drawing flat patches.")
    var smooth = false

    @Option(name: .long, help: "Largest number of patch rows used to fit the PCA (a regular subsample beyond).")
    var maxFitRows = 200_000

    func validate() throws {
        if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs") }
        if let maskThreshold, !(0...1).contains(maskThreshold) { throw ValidationError("--mask-threshold must be in [0, 1]") }
    }

    /// One image's patch features and geometry, kept until the joint PCA is fitted.
    struct ImageFeatures {
        var item: ImageItem
        var rows: [Float]  // [h * w, C]
        var grid: (height: Int, width: Int)
    }

    func run() throws {
        let (vit, folder) = try modelOptions.load()
        let config = vit.configuration
        let stageName = stage ?? config.stageNames[config.numHiddenLayers]
        let backbone = try Backbone(model: vit, outFeatures: [stageName], applyLayernorm: true, reshapeHiddenStates: false)
        let preset = try preprocess.preset(modelFolder: folder, fallback: .resize(shortSide: 448))
        let outputFolder = output.folder
        // The fit needs every image's features, so --resume only skips writing pictures that exist.
        var runner = ImageRunner(inputs: images, preparation: preset, patchSize: config.patchSize, label: "pca features", outputs: nil)
        let stageIndex = backbone.outIndices[0], c = config.hiddenSize
        var collected: [ImageFeatures] = []
        runner.run { batch in
            let pass = try vit.features(Tensor.stack(batch.map(\.prepared.pixels)), request: backbone.featureRequest)
            let patches = try pass.stage(stageIndex, normalized: true).patchTokens  // [B, h * w, C]
            for (i, item) in batch.enumerated() {
                collected.append(ImageFeatures(item: item, rows: patches[i].scalars, grid: (pass.layout.gridHeight, pass.layout.gridWidth)))
            }
            return []
        }
        guard !collected.isEmpty else { try runner.finish(); return }

        let mask = maskThreshold.map { PatchPCA.Mask(threshold: $0, inverted: invertMask) }
        let pca = try PatchPCA(features: collected.map(\.rows), channels: c, maxFitRows: maxFitRows, mask: mask)
        var writeFailures: [(String, String)] = []
        for (features, rgb) in zip(collected, pca.colors) {
            let colors = PatchColors(height: features.grid.height, width: features.grid.width, rgb: rgb)
            let picture = colors.render(for: features.item.prepared, interpolation: smooth ? .bilinear : .nearest)
            let files = ImageOutputFiles(folder: outputFolder, stem: features.item.outputStem)
            if images.resume && FileManager.default.fileExists(atPath: files.target(".pca.png").path) { continue }
            do {
                try ImageIO.write(picture, to: files.url(".pca.png"))
                try files.commit()
            } catch {
                files.discard()
                printError("error: \(error)")
                writeFailures.append((features.item.url.path, "\(error)"))
            }
        }
        printError(String(format: "pca: fitted on %d patch rows of %d images; explained variance of 3 components: %@",
                          pca.fittedRows, collected.count, pca.components.variances.map { String(format: "%.3g", $0) }.joined(separator: ", ")))
        if !writeFailures.isEmpty { throw ExitCode(1) }
        try runner.finish()
    }
}
