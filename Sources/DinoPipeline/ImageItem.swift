import DinoImage
import Foundation

/// One input image of a run: its file, the decoded picture and the pixels prepared for the
/// model.
public struct ImageItem: Sendable {
    /// The file it was read from.
    public var url: URL
    /// The decoded image (RGB, orientation applied).
    public var image: RGBImage
    /// Pixels and geometry for the model.
    public var prepared: PreparedImage
    /// Base name of this image's output files, unique within the run.
    public var outputStem: String

    /// An item from its parts.
    public init(url: URL, image: RGBImage, prepared: PreparedImage, outputStem: String) {
        self.url = url
        self.image = image
        self.prepared = prepared
        self.outputStem = outputStem
    }
}
