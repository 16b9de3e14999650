/// Turns a decoded image into the pixels a model reads: the presets of `Preprocessing`, and
/// processors of particular models (Depth Anything's) conform.
public protocol ImagePreparing: Sendable {
    /// The image prepared for a model of patch size `patchSize`.
    func prepare(_ image: RGBImage, patchSize: Int) throws -> PreparedImage
    /// One line saying what the preparation does, for summaries.
    var summary: String { get }
}

extension Preprocessing: ImagePreparing {
    /// The image prepared with ImageNet normalisation (the classification preset uses its
    /// processor's statistics).
    public func prepare(_ image: RGBImage, patchSize: Int) throws(ImageError) -> PreparedImage {
        try prepare(image, patchSize: patchSize, normalization: .imagenet)
    }

    /// A one-line description for summaries.
    public var summary: String {
        switch self {
        case .classification(let c): return "classification (shortest edge \(c.shortestEdge), center crop \(c.cropHeight)x\(c.cropWidth))"
        case .resize(let s): return "resize short side to \(s) (rounded to the patch size)"
        case .resizeAndPad(let s): return "resize short side to \(s), centre pad"
        case .pad: return "centre pad to the patch size"
        case .padBottomRight: return "pad bottom/right to the patch size"
        case .size(let h, let w): return "resize to \(h)x\(w)"
        case .dinov3(let d): return "DINOv3 processor (bilinear to \(d.height)x\(d.width), stretched)"
        }
    }
}
