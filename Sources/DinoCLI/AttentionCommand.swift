import ArgumentParser
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// `dino attention`: where the CLS token and the registers look, as heatmaps on the image.
struct AttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Draw CLS-to-patch and register-to-patch attention of a block over each image.",
        discussion: """
            For the chosen block (default: the last) the attention probabilities from the CLS \
            token to every patch are drawn for each head and averaged over heads, and those from \
            each register token (averaged over heads), as colour maps blended over the image. \
            Each map is scaled to its own range. The registers paper shows how registers take \
            over the high-norm, low-information patches the CLS token otherwise attends to.

            Writes OUTPUT_DIR/<name>.attention.png (a captioned mosaic) per image, and with \
            --separate one PNG per map as well. Images are resized with --resize 448 unless \
            another preset is given.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "Block whose attention to draw, 1-based (default: the last).")
    var block: Int?

    @Option(name: .long, help: "Colour map: viridis, inferno, turbo or gray.")
    var colormap: String = "inferno"

    @Option(name: .long, help: "Opacity of the heatmap over the image, 0-1.")
    var alpha: Float = 0.6

    @Flag(name: .long, help: "Also write each map as its own PNG.")
    var separate = false

    @Option(name: .long, help: "Height of each mosaic tile in pixels.")
    var tileHeight = 320

    func validate() throws {
        if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs") }
        if Colormap(rawValue: colormap) == nil { throw ValidationError("--colormap must be one of \(Colormap.allCases.map(\.rawValue))") }
        if !(0...1).contains(alpha) { throw ValidationError("--alpha must be in [0, 1]") }
        if let block, block < 1 { throw ValidationError("--block is 1-based") }
    }

    func run() throws {
        let (vit, folder) = try modelOptions.load()
        let config = vit.configuration
        let blockIndex = (block ?? config.numHiddenLayers) - 1
        guard blockIndex < config.numHiddenLayers else {
            throw ValidationError("--block \(blockIndex + 1) exceeds the \(config.numHiddenLayers) blocks")
        }
        let map = Colormap(rawValue: colormap) ?? .inferno
        let preset = try preprocess.preset(modelFolder: folder, fallback: .resize(shortSide: 448))
        let outputFolder = output.folder
        let heads = config.numAttentionHeads, r = config.numRegisterTokens, prefix = config.numPrefixTokens
        let separateNames = ["cls_mean"] + (0..<heads).map { "cls_head\($0 + 1)" } + (0..<r).map { "register\($0 + 1)" }
        let suffixes = (separate ? separateNames.map { ".attention.\($0).png" } : []) + [".attention.png"]
        var runner = ImageRunner(inputs: images, preparation: preset, patchSize: config.patchSize, label: "attention",
                                 outputs: OutputPlan(folder: outputFolder, suffixes: suffixes))
        runner.run { batch in
            let pixels = Tensor.stack(batch.map(\.prepared.pixels))
            let attention = try vit.features(pixels, request: .attentions([blockIndex])).attention(block: blockIndex)
            let grid = (h: batch[0].prepared.height / config.patchSize, w: batch[0].prepared.width / config.patchSize)
            var failed: [(ImageItem, String)] = []
            for (i, item) in batch.enumerated() {
                func row(_ head: Int, _ query: Int) -> [Float] {
                    AttentionMaps.patchRow(attention, image: i, head: head, query: query, prefixTokens: prefix)
                }
                func mean(_ query: Int) -> [Float] { AttentionMaps.meanPatchRow(attention, image: i, query: query, prefixTokens: prefix) }
                var maps: [(String, String, [Float])] = [("CLS, mean of heads", "cls_mean", mean(0))]
                for head in 0..<heads { maps.append(("CLS, head \(head + 1)", "cls_head\(head + 1)", row(head, 0))) }
                for register in 0..<r {
                    maps.append(("register \(register + 1)", "register\(register + 1)", mean(1 + register)))
                }
                var tiles: [(image: RGBImage, caption: String?)] = [(item.image, "block \(blockIndex + 1)")]
                let files = ImageOutputFiles(folder: outputFolder, stem: item.outputStem)
                do {
                    for (caption, name, values) in maps {
                        let heat = PatchMap(height: grid.h, width: grid.w, values: values).colored(map).render(for: item.prepared)
                        let picture = item.image.blended(with: heat, alpha: alpha)
                        tiles.append((picture, caption))
                        if separate {
                            try ImageIO.write(picture, to: files.url(".attention.\(name).png"))
                        }
                    }
                    let mosaic = RGBImage.mosaic(tiles, columns: min(tiles.count, 4), tileHeight: tileHeight)
                    try ImageIO.write(mosaic, to: files.url(".attention.png"))
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
