import ArgumentParser
import DinoImage
import DinoModel
import DinoPipeline
import DinoSegmentation
import DinoTensor
import Foundation

/// `dino segment`: label maps and colour overlays from a linear segmentation head.
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Segment images with a linear head (dinov2 BNHead) on the frozen backbone.",
        discussion: """
            --head takes a head trained by `dino probe train` (.safetensors, which records its \
            classes, layers and input size) or a released dinov2 head (.pth, e.g. \
            dinov2_vits14_ade20k_linear_head.pth): those carry no metadata, so their layers come \
            from their width (the backbone's hidden size: the last block, "linear"; four times \
            it: the last four blocks, "ms") and their classes from their count (150: ADE20K, \
            21: VOC). --layers overrides the layers.

            Images are prepared as the head was trained (its input policy), else with --resize \
            448, unless a preset is given; the released heads were evaluated with the short side \
            at 512 and 512x512 windows every 341 pixels (--resize 512 --pad --window 512x512 \
            --stride 341x341). Logits are bilinearly resized to the original image size and \
            each pixel takes its best class.

            Writes OUTPUT_DIR/<name>.labels.png (an 8-bit palette PNG: pixel values are class \
            indices, the palette the class colours, as Pascal VOC masks) and \
            OUTPUT_DIR/<name>.overlay.png (the photo blended with the class colours, with a \
            legend of the classes present and their share of the image).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var head: HeadOptions
    @OptionGroup var window: WindowOptions

    @Option(name: .long, help: "Opacity of the class colours in the overlay, 0...1.")
    var alpha: Float = 0.5

    @Flag(name: .long, help: "Leave the class legend out of the overlay.")
    var noLegend = false

    @OptionGroup var report: ReportOptions

    func validate() throws {
        if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs") }
        if !(0...1).contains(alpha) { throw ValidationError("--alpha must be in [0, 1]") }
        if preprocess.classification { throw ValidationError("--classification crops the image; segmentation needs all of it") }
    }

    func run() throws {
        let (model, folder) = try modelOptions.load()
        var imageHead = try SegmentationImageHead(segmenter: try Segmenter(model: model, head: try head.load(hiddenSize: model.configuration.hiddenSize)))
        imageHead.mode = try window.mode()
        imageHead.alpha = alpha
        imageHead.legend = !noLegend
        try runHeads([imageHead], names: [SegmentationImageHead.name], model: model, modelFolder: folder, label: "segment",
                     images: images, preprocess: preprocess, output: output, report: report)
    }
}

/// `--head` and `--layers`, shared by the commands that run a trained head.
struct HeadOptions: ParsableArguments {
    @Option(name: .long, help: "Head file: .safetensors from `dino probe train`, or a released dinov2 head .pth.")
    var head: String

    @Option(name: .long, help: "Backbone blocks feeding the head: linear, ms, last:N or blocks:i,j,... (0-based); default: from the head.")
    var layers: String?

    func validate() throws {
        if let layers { _ = try LayerSelection(text: layers) }
    }

    /// The head, fitted to a backbone of hidden size `hiddenSize`.
    func load(hiddenSize: Int) throws -> SegmentationHead {
        let url = URL(fileURLWithPath: head)
        guard FileManager.default.fileExists(atPath: url.path) else { throw ValidationError("--head \(head): no such file") }
        return try SegmentationHeadFile.load(url, hiddenSize: hiddenSize, layers: try layers.map { try LayerSelection(text: $0) })
    }
}

/// `--window` and `--stride`: sliding-window inference.
struct WindowOptions: ParsableArguments {
    @Option(name: .long, help: "Run overlapping windows of HxW pixels (as mmseg's slide inference) instead of the whole image.")
    var window: String?

    @Option(name: .long, help: "Step between windows, HxW (default: two thirds of the window).")
    var stride: String?

    func validate() throws {
        if let window, Self.parse(window) == nil { throw ValidationError("--window must be HxW, got \(window)") }
        if let stride, Self.parse(stride) == nil { throw ValidationError("--stride must be HxW, got \(stride)") }
        if stride != nil && window == nil { throw ValidationError("--stride needs --window") }
    }

    static func parse(_ text: String) -> (Int, Int)? {
        let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { return nil }
        return (parts[0], parts[1])
    }

    /// Whole-image inference, or the windows asked for.
    func mode() throws -> InferenceMode {
        guard let window, let crop = Self.parse(window) else { return .whole }
        let step = stride.flatMap(Self.parse) ?? (max(1, crop.0 * 2 / 3), max(1, crop.1 * 2 / 3))
        return .slide(try SlidingWindow(crop: (crop.0, crop.1), stride: (step.0, step.1)))
    }
}
