import DinoTensor

// Dimension letters in this file: B batch, K output channels (classes, bins), H x W pixels.

/// A head on a frozen backbone: it says what it reads from a backbone pass and predicts from
/// the value that pass returns, so any set of heads can share one pass (`HeadRunner`).
///
/// A new head is a type that conforms: its `featureRequest` names the blocks (before or after the
/// final norm), attentions or query / key / value projections it needs, and `predict` reads them
/// from `BackboneFeatures` (`block(_:normalized:)` then `patchMap`, `classToken`, ...).
public protocol DenseHead: Sendable {
    /// What the head returns for a batch.
    associatedtype Prediction: Sendable
    /// What the head reads from a backbone pass.
    var featureRequest: FeatureRequest { get }
    /// The prediction for a batch, from a pass that kept (at least) `featureRequest`.
    func predict(_ features: BackboneFeatures) throws -> Prediction
}

/// A head whose prediction is a map over the pixels handed to the pass, `[B, K, H, W]` at
/// `features.imageSize`, so that the maps of overlapping windows can be averaged.
public protocol PixelMapHead: DenseHead where Prediction == Tensor {}

/// Runs heads on one backbone: one pass per call on the union of the heads' requests.
public struct HeadRunner: Sendable {
    /// The backbone.
    public let model: VisionTransformer
    /// How pixels whose sides are not multiples of the patch size are brought to the grid.
    public var padding: InputPadding

    /// A runner over `model`.
    public init(model: VisionTransformer, padding: InputPadding = .none) {
        self.model = model
        self.padding = padding
    }

    /// Each head's prediction for normalised pixels `[B, channels, H, W]`, from one pass.
    ///
    /// What a head predicts does not depend on the other heads: the pass computes every block the
    /// same way whatever it keeps.
    public func callAsFunction<each Head: DenseHead>(_ pixels: Tensor, contentRects: [PixelRect]? = nil,
                                                     _ heads: repeat each Head) throws -> (repeat (each Head).Prediction) {
        var request = FeatureRequest()
        for head in repeat each heads { request.formUnion(head.featureRequest) }
        let features = try model.features(pixels, request: request, padding: padding, contentRects: contentRects)
        return (repeat try (each heads).predict(features))
    }

    /// The predictions of heads chosen at run time (a command line's, say), in their order,
    /// from one pass.
    public func predictions(_ pixels: Tensor, contentRects: [PixelRect]? = nil, heads: [any DenseHead]) throws -> [any Sendable] {
        let request = heads.reduce(FeatureRequest()) { $0.union($1.featureRequest) }
        let features = try model.features(pixels, request: request, padding: padding, contentRects: contentRects)
        return try heads.map { try $0.predict(features) }
    }

    /// `head`'s map `[B, K, H, W]` over pixels `[B, channels, H, W]` read in `windows`: each
    /// window is its own pass (padded as `padding` says), its map added in place, and every pixel
    /// divided by the number of windows that cover it.
    ///
    /// ref: mmseg `EncoderDecoder.slide_inference`.
    public func averaged<Head: PixelMapHead>(_ pixels: Tensor, head: Head, windows: [PixelRect]) throws -> Tensor {
        guard pixels.rank == 4 else { throw DinoModelError.invalidInput(reason: "pixels must be [B, channels, H, W], got shape \(pixels.shape)") }
        let (b, h, w) = (pixels.shape[0], pixels.shape[2], pixels.shape[3])
        var sum: [Float] = []
        var count = [Float](repeating: 0, count: h * w)
        var channels = 0
        for rect in windows {
            guard rect.x >= 0, rect.y >= 0, rect.width > 0, rect.height > 0, rect.x + rect.width <= w, rect.y + rect.height <= h else {
                throw DinoModelError.invalidInput(reason: "window \(rect) is not inside the \(h)x\(w) image")
            }
            let part = try head.predict(try model.features(pixels.cropped(to: rect), request: head.featureRequest, padding: padding))
            guard part.rank == 4, part.shape[0] == b, part.shape[2] == rect.height, part.shape[3] == rect.width,
                  channels == 0 || part.shape[1] == channels
            else {
                throw DinoModelError.invalidInput(reason: "a window's map is \(part.shape), expected [\(b), K, \(rect.height), \(rect.width)]")
            }
            if channels == 0 {
                channels = part.shape[1]
                sum = [Float](repeating: 0, count: b * channels * h * w)
            }
            part.add(into: &sum, height: h, width: w, at: rect)
            for y in rect.y..<(rect.y + rect.height) {
                for x in rect.x..<(rect.x + rect.width) { count[y * w + x] += 1 }
            }
        }
        guard channels > 0, !count.contains(0) else {
            throw DinoModelError.invalidInput(reason: "the windows do not cover the \(h)x\(w) image")
        }
        let plane = h * w
        for index in 0..<(b * channels) {
            for j in 0..<plane { sum[index * plane + j] /= count[j] }
        }
        return Tensor(shape: [b, channels, h, w], scalars: sum)
    }
}
