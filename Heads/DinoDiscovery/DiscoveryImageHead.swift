import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// Object discovery for the image tools: per image a picture (`.discover.png`: the object's
/// patches tinted orange, the rest of the foreground blue, the box yellow, the seed red) and a
/// JSON line `{"image", "box", "seed", "score"}` with the box in pixels of the original image.
public struct DiscoveryImageHead: ImageHead {
    /// `--head discover=METHOD`.
    public static let name = "discover"
    /// What the argument is.
    public static let argumentHelp = "lost or tokencut (with their default settings, on the last block's keys)"

    /// The method on the last block's projections.
    public let head: ObjectDiscoveryHead

    /// The image head of `head`.
    public init(head: ObjectDiscoveryHead) {
        self.head = head
    }

    /// `lost` or `tokencut` with their default settings, on `model`'s last-block keys.
    public static func load(argument: String, model: VisionTransformer, modelFolder: URL) throws -> DiscoveryImageHead {
        let method: DiscoveryMethod
        switch argument.lowercased() {
        case "lost": method = .lost(LOST())
        case "tokencut": method = .tokenCut(TokenCut())
        default: throw PipelineError.invalidArgument(head: name, argument: argument, reason: "the method must be lost or tokencut")
        }
        return DiscoveryImageHead(head: ObjectDiscoveryHead(model: model, method: method))
    }

    /// The reader's backbone.
    public var backbone: VisionTransformer { head.reader.model }
    /// The last block's projections.
    public var featureRequest: FeatureRequest { head.featureRequest }
    /// As LOST: no resize, zero padding at the bottom and right to the patch grid.
    public var preparation: any ImagePreparing { Preprocessing.padBottomRight }
    /// The picture.
    public var outputSuffixes: [String] { [".discover.png"] }

    /// Each image's object, or why it has none.
    public func predict(_ features: BackboneFeatures, batch: [ImageItem]) throws -> [Result<DiscoveredObject, DiscoveryError>] {
        try head.objects(features)
    }

    /// Draws the object; the report's line and record are its JSON object.
    public func write(_ objects: [Result<DiscoveredObject, DiscoveryError>], index: Int, of batch: [ImageItem],
                      to files: ImageOutputFiles) throws -> ImageReport {
        let (object, item) = (try objects[index].get(), batch[index])
        let record = JSONValue.object([
            ("image", .string(item.url.path)),
            ("box", .array(object.box.inOriginal(of: item.prepared).coordinates.map { .number(String($0)) })),
            ("seed", .array([.number(String(object.seed.row)), .number(String(object.seed.column))])),
            ("score", .number(String(object.score))),
        ])
        let name = if case .tokenCut = head.method { "TokenCut" } else { "LOST" }
        let picture = DiscoveryPicture.render(object, on: item.image, prepared: item.prepared, caption: String(format: "%@ %.3f", name, object.score))
        try ImageIO.write(picture, to: files.url(".discover.png"))
        return ImageReport(line: record.serialized, record: record)
    }
}
