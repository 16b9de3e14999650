import ArgumentParser
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// `dino norms`: token norms of a block and its high-norm outlier patches.
struct NormsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "norms",
        abstract: "Map the L2 norm of every patch token and list the high-norm outliers.",
        discussion: """
            The registers paper found that large ViTs without registers repurpose a few \
            low-information patches as high-norm "artifact" tokens; with registers they vanish. \
            This draws the norm of each patch token at the output of a block (default: the last, \
            before the final layernorm) and lists the patches above a threshold: --threshold, or \
            by default median + 6 x MAD of the image's patch norms (a robust outlier rule). Run it \
            on a model with and without registers to compare.

            Writes OUTPUT_DIR/<name>.norms.png (the map, colour-scaled per image) and \
            OUTPUT_DIR/<name>.norms.json (norms of CLS, registers and outliers), and prints one \
            line per image. Images are resized with --resize 448 unless another preset is given.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "Block whose output to measure, 1-based (default: the last).")
    var block: Int?

    @Option(name: .long, help: "Absolute norm above which a patch is an outlier (default: median + 6 x MAD).")
    var threshold: Float?

    @Option(name: .long, help: "Colour map: viridis, inferno, turbo or gray.")
    var colormap: String = "viridis"

    func validate() throws {
        if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs") }
        if Colormap(rawValue: colormap) == nil { throw ValidationError("--colormap must be one of \(Colormap.allCases.map(\.rawValue))") }
        if let block, block < 1 { throw ValidationError("--block is 1-based") }
    }

    func run() throws {
        let (vit, folder) = try modelOptions.load()
        let config = vit.configuration
        let stage = block ?? config.numHiddenLayers
        guard stage <= config.numHiddenLayers else {
            throw ValidationError("--block \(stage) exceeds the \(config.numHiddenLayers) blocks")
        }
        let map = Colormap(rawValue: colormap) ?? .viridis
        let preset = try preprocess.preset(modelFolder: folder, fallback: .resize(shortSide: 448))
        let outputFolder = output.folder
        var runner = ImageRunner(inputs: images, preparation: preset, patchSize: config.patchSize, label: "norms",
                                 outputs: OutputPlan(folder: outputFolder, suffixes: [".norms.png", ".norms.json"]))
        let r = config.numRegisterTokens
        runner.run { batch in
            let pass = try vit.features(Tensor.stack(batch.map(\.prepared.pixels)), request: FeatureRequest(stages: [stage]))
            let tokens = try pass.stage(stage).tokens  // [B, N, C], before the final norm
            let (gh, gw) = (pass.layout.gridHeight, pass.layout.gridWidth)
            var failed: [(ImageItem, String)] = []
            for (i, item) in batch.enumerated() {
                let norms = TokenNorms(tokens: tokens[i], registerCount: r)
                let limit = threshold ?? norms.defaultThreshold
                let outliers = norms.outliers(above: limit, gridWidth: gw)
                let report = NormReport(
                    image: item.url.path, block: stage, grid: [gh, gw], threshold: limit, medianPatchNorm: norms.medianPatchNorm,
                    maxPatchNorm: norms.maxPatchNorm, clsNorm: norms.classToken, registerNorms: norms.registers,
                    outliers: outliers.map { NormReport.Outlier(row: $0.row, column: $0.column, norm: $0.norm) })
                print(String(format: "%@: block %d, patch norm median %.2f max %.2f, CLS %.2f, registers [%@], %d outliers above %.2f",
                             item.url.lastPathComponent, stage, norms.medianPatchNorm, norms.maxPatchNorm, norms.classToken,
                             report.registerNorms.map { String(format: "%.1f", $0) }.joined(separator: ", "), outliers.count, limit))
                let files = ImageOutputFiles(folder: outputFolder, stem: item.outputStem)
                do {
                    let picture = PatchMap(height: gh, width: gw, values: norms.patches).colored(map).render(for: item.prepared, interpolation: .nearest)
                    try ImageIO.write(picture, to: files.url(".norms.png"))
                    try writeJSON(report, to: files.url(".norms.json"))
                    try files.commit()
                } catch {
                    files.discard()
                    failed.append((item, "\(error)"))
                }
            }
            return failed
        }
        try runner.finish()
    }
}

/// What `dino norms` writes per image.
struct NormReport: Codable {
    struct Outlier: Codable {
        var row: Int
        var column: Int
        var norm: Float
    }

    var image: String
    var block: Int
    var grid: [Int]
    var threshold: Float
    var medianPatchNorm: Float
    var maxPatchNorm: Float
    var clsNorm: Float
    var registerNorms: [Float]
    var outliers: [Outlier]

    enum CodingKeys: String, CodingKey {
        case image, block, grid, threshold, outliers
        case medianPatchNorm = "median_patch_norm"
        case maxPatchNorm = "max_patch_norm"
        case clsNorm = "cls_norm"
        case registerNorms = "register_norms"
    }
}
