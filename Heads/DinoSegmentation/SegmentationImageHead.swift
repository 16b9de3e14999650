import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// A linear segmentation head for the image tools: per image a palette PNG of class indices
/// (`.labels.png`) and the photo blended with the class colours and a legend (`.overlay.png`).
public struct SegmentationImageHead: ImageHead {
    /// `--head segment=FILE`.
    public static let name = "segment"
    /// What the argument is.
    public static let argumentHelp = "a head file: .safetensors from `dino probe train`, or a released dinov2 head .pth"

    /// The head on its backbone.
    public let segmenter: Segmenter
    /// Whole-image or sliding-window inference.
    public var mode: InferenceMode = .whole
    /// Opacity of the class colours in the overlay, `0...1`.
    public var alpha: Float = 0.5
    /// Whether the overlay carries a legend of the classes present.
    public var legend = true
    /// Class colours.
    public var palette = SegmentationPalette.standard

    /// As the head was trained (its input policy), else the short side resized to 448.
    public let preparation: any ImagePreparing

    /// The image head of `segmenter`.
    public init(segmenter: Segmenter) throws(SegmentationError) {
        self.segmenter = segmenter
        preparation = try segmenter.head.defaultPreprocessing()
    }

    /// Loads the head file at `argument` (its layers from its metadata, or `layers`) and puts it
    /// on `model`.
    public static func load(argument: String, model: VisionTransformer, layers: LayerSelection?) throws -> SegmentationImageHead {
        let url = URL(fileURLWithPath: argument)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PipelineError.invalidArgument(head: name, argument: argument, reason: "no such file")
        }
        let head = try SegmentationHeadFile.load(url, hiddenSize: model.configuration.hiddenSize, layers: layers)
        return try SegmentationImageHead(segmenter: try Segmenter(model: model, head: head))
    }

    /// Loads the head file at `argument` with the layers its metadata or width implies.
    public static func load(argument: String, model: VisionTransformer, modelFolder: URL) throws -> SegmentationImageHead {
        try load(argument: argument, model: model, layers: nil)
    }

    /// The segmenter's backbone.
    public var backbone: VisionTransformer { segmenter.model }
    /// The chosen blocks after the final norm.
    public var featureRequest: FeatureRequest { segmenter.featureRequest }
    /// The label map and the overlay.
    public var outputSuffixes: [String] { [".labels.png", ".overlay.png"] }

    /// Each image's label map at its original size.
    public func predict(_ features: BackboneFeatures, batch: [ImageItem]) throws -> [LabelMap] {
        try segmenter.segment(features, images: batch.map(\.prepared), mode: mode)
    }

    /// Writes the label map and the overlay; reports the classes' shares.
    public func write(_ maps: [LabelMap], index: Int, of batch: [ImageItem], to files: ImageOutputFiles) throws -> ImageReport {
        let (map, item) = (maps[index], batch[index])
        let names = segmenter.head.configuration.classNames
        try LabelMapFile.write(map, palette: palette, to: files.url(".labels.png"))
        try ImageIO.write(palette.overlay(item.image, labels: map, classNames: names, alpha: alpha, legend: legend), to: files.url(".overlay.png"))
        let present = map.classShares.filter { $0.label < names.count }
        let summary = present.prefix(3).map { String(format: "%@ %.0f%%", names[$0.label], $0.fraction * 100) }.joined(separator: ", ")
        let record = JSONValue.object([
            ("image", .string(item.url.path)),
            ("labels", .string(files.target(".labels.png").path)),
            ("overlay", .string(files.target(".overlay.png").path)),
            ("size", .array([.number(String(map.width)), .number(String(map.height))])),
            ("classes", .array(present.map { share in
                .object([("index", .number(String(share.label))), ("name", .string(names[share.label])), ("fraction", .number(String(share.fraction)))])
            })),
        ])
        return ImageReport(line: "\(item.url.lastPathComponent): \(map.width)x\(map.height), \(present.count) classes (\(summary))", record: record)
    }
}
