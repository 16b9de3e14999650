import DinoImage
import DinoModel
import DinoTensor
import Foundation

/// What a depth model's values mean.
public enum DepthKind: Sendable, Equatable {
    /// Depth in metres within a range (the dinov2 heads clamp to it).
    case metric(ClosedRange<Float>)
    /// Relative inverse depth: larger is nearer, up to an unknown scale and shift (Depth
    /// Anything's relative models).
    case relativeDisparity

    /// Whether larger values are nearer.
    public var largerIsNearer: Bool { self == .relativeDisparity }
}

/// How a prediction is resized to the image, following each model's reference post-processing.
public enum DepthUpsampling: Sendable, Equatable {
    /// `interpolate(mode="bilinear", align_corners=False)` (dinov2's `encode_decode`).
    case bilinear
    /// `interpolate(mode="bicubic", align_corners=False)` (HF `post_process_depth_estimation`).
    case bicubic
}

/// A depth head on the backbone it reads: dinov2 heads on a DINOv2 backbone, or Depth Anything
/// (whose checkpoint brings its own backbone). As a `DenseHead` it predicts depth at its output
/// resolution `[B, h', w']` from a pass of `model`.
public protocol DepthEstimator: DenseHead where Prediction == Tensor {
    /// The backbone the head reads; heads on one backbone can share its passes.
    var model: VisionTransformer { get }
    /// Side of the backbone's patches: prepared images are multiples of it.
    var patchSize: Int { get }
    /// What the predicted values mean.
    var kind: DepthKind { get }
    /// How predictions are brought to the image size.
    var upsampling: DepthUpsampling { get }
    /// How images are prepared for prediction when the user gives no preset.
    var preparation: any ImagePreparing { get }
    /// How images are prepared for evaluation when the user gives no preset (the reference
    /// evaluation's own preprocessing).
    var evaluationPreparation: any ImagePreparing { get }
    /// One line saying what the model is, for the tools.
    var summary: String { get }
    /// Depth at the model's output resolution `[B, h', w']` from a pass of `model` that kept
    /// `featureRequest`.
    func depth(_ features: BackboneFeatures) throws(DepthError) -> Tensor
}

extension DepthEstimator {
    /// `depth(_:)`, as a `DenseHead`.
    public func predict(_ features: BackboneFeatures) throws -> Tensor {
        try depth(features)
    }

    /// Depth at the model's output resolution `[B, h', w']` for normalised pixels `[B, 3, H, W]`,
    /// in one pass of `model`.
    public func predict(_ pixels: Tensor) throws(DepthError) -> Tensor {
        try depth(try pass(pixels))
    }

    /// One pass of `model` over normalised pixels `[B, 3, H, W]` that keeps `featureRequest`.
    public func pass(_ pixels: Tensor) throws(DepthError) -> BackboneFeatures {
        do {
            return try model.features(pixels, request: featureRequest)
        } catch {
            throw .model(error)
        }
    }

    /// Depth maps at the original size of each image of a batch of one prepared size.
    public func depthMaps(_ images: [PreparedImage]) throws(DepthError) -> [DepthMap] {
        guard let first = images.first else { return [] }
        guard images.allSatisfy({ $0.pixels.shape == first.pixels.shape }) else {
            throw .invalidInput(reason: "a batch needs images of one prepared size")
        }
        let prediction = try predict(Tensor.stack(images.map(\.pixels)))
        return depthMaps(prediction, images: images)
    }

    /// The maps of a prediction `[B, h', w']` at the original size of each of its images.
    public func depthMaps(_ prediction: Tensor, images: [PreparedImage]) -> [DepthMap] {
        images.enumerated().map { i, image in DepthMap(prediction: prediction[i], for: image, upsampling: upsampling) }
    }
}

/// A depth (or disparity) map `[H, W]`, row-major; NaN where there is no value.
public struct DepthMap: Sendable, Equatable {
    /// Columns.
    public var width: Int
    /// Rows.
    public var height: Int
    /// `[H * W]` values, row-major.
    public var values: [Float]

    /// A map from its size and values.
    public init(width: Int, height: Int, values: [Float]) {
        precondition(values.count == width * height, "\(values.count) values are not a \(width)x\(height) map")
        self.width = width
        self.height = height
        self.values = values
    }

    /// The map as a tensor `[H, W]`.
    public var tensor: Tensor { Tensor(shape: [height, width], scalars: values) }

    /// The smallest and largest finite values, or nil when there is none.
    public var finiteRange: ClosedRange<Float>? {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where v.isFinite {
            lo = min(lo, v)
            hi = max(hi, v)
        }
        return lo <= hi ? lo...hi : nil
    }

    /// A prediction `[h', w']` brought to the original size of `prepared`'s image: the content
    /// rectangle (the image without its padding) is resampled onto the source rectangle.
    ///
    /// Without padding or cropping this is exactly `interpolate(prediction, size=(H, W),
    /// align_corners=False)` in `upsampling` mode. (dinov2's hub models instead resize the
    /// prediction of the centre-padded input, padding included, to the image size.)
    public init(prediction: Tensor, for prepared: PreparedImage, upsampling: DepthUpsampling) {
        self.init(prediction: prediction, preparedSize: (prepared.width, prepared.height), content: prepared.contentRect,
                  source: prepared.sourceRect, size: prepared.originalSize, upsampling: upsampling)
    }

    /// The whole prediction `[h', w']` resized to `width x height`: `interpolate(prediction,
    /// size=(height, width), align_corners=False)` in `upsampling` mode.
    public init(prediction: Tensor, width: Int, height: Int, upsampling: DepthUpsampling) {
        precondition(prediction.rank == 2, "a prediction is [h', w'], got \(prediction.shape)")
        let whole = PixelRect(x: 0, y: 0, width: prediction.shape[1], height: prediction.shape[0])
        self.init(prediction: prediction, preparedSize: (whole.width, whole.height), content: whole,
                  source: PixelRect(x: 0, y: 0, width: width, height: height), size: (width, height), upsampling: upsampling)
    }

    /// `content` (in prepared pixels, `preparedSize` in all) resampled onto `source` of an
    /// image of `size`; pixels outside `source` are NaN.
    init(prediction: Tensor, preparedSize: (width: Int, height: Int), content: PixelRect, source: PixelRect,
         size: (width: Int, height: Int), upsampling: DepthUpsampling) {
        precondition(prediction.rank == 2, "a prediction is [h', w'], got \(prediction.shape)")
        let (h, w) = (prediction.shape[0], prediction.shape[1])
        let (outW, outH) = size
        // Prediction coordinate of output pixel x: (content.x + (x - source.x + 0.5) * content.w /
        // source.w) * w' / W - 0.5, i.e. scale * (x - source.x + 0.5) - 0.5 + shift.
        func axis(_ contentStart: Int, _ contentLength: Int, _ sourceLength: Int, _ prepared: Int, _ predicted: Int) -> (scale: Double, shift: Double) {
            let toPrediction = Double(predicted) / Double(prepared)
            return (Double(contentLength) / Double(sourceLength) * toPrediction, Double(contentStart) * toPrediction)
        }
        let ax = axis(content.x, content.width, source.width, preparedSize.width, w)
        let ay = axis(content.y, content.height, source.height, preparedSize.height, h)
        let resampler = PlaneResampler(upsampling)
        let xs = (0..<source.width).map { resampler.taps(ax.scale * (Double($0) + 0.5) - 0.5 + ax.shift, length: w) }
        let ys = (0..<source.height).map { resampler.taps(ay.scale * (Double($0) + 0.5) - 0.5 + ay.shift, length: h) }
        var values = [Float](repeating: .nan, count: outW * outH)
        var row = [Float](repeating: 0, count: w)
        for (oy, tapsY) in ys.enumerated() {
            // Vertical pass into one row of prediction columns, then the horizontal pass.
            for x in 0..<w {
                var sum: Float = 0
                for (index, weight) in tapsY { sum += prediction.scalars[index * w + x] * weight }
                row[x] = sum
            }
            let base = (source.y + oy) * outW + source.x
            for (ox, tapsX) in xs.enumerated() {
                var sum: Float = 0
                for (index, weight) in tapsX { sum += row[index] * weight }
                values[base + ox] = sum
            }
        }
        self.init(width: outW, height: outH, values: values)
    }
}

/// Source indices and weights of one output position, as PyTorch's `interpolate` computes them
/// with `align_corners=False`.
struct PlaneResampler {
    let mode: DepthUpsampling

    init(_ mode: DepthUpsampling) { self.mode = mode }

    /// The taps for source coordinate `source` (already `scale * (dst + 0.5) - 0.5`) on an axis
    /// of `length` samples.
    func taps(_ source: Double, length: Int) -> [(Int, Float)] {
        switch mode {
        case .bilinear:
            // ref: PyTorch area_pixel_compute_source_index: negative sources clamp to 0.
            let s = max(source, 0)
            let i0 = min(Int(s), length - 1)
            let i1 = min(i0 + 1, length - 1)
            let t = Float(s - Double(i0))
            return [(i0, 1 - t), (i1, t)]
        case .bicubic:
            // ref: PyTorch upsample_bicubic2d: no clamp of the source, taps floor-1...floor+2
            // clamped to the edge, Keys' cubic with A = -0.75.
            let f = source.rounded(.down)
            let t = Float(source - f)
            let a: Float = -0.75
            func near(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
            func far(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
            let weights = [far(t + 1), near(t), near(1 - t), far(2 - t)]
            return (0..<4).map { k in (min(max(Int(f) - 1 + k, 0), length - 1), weights[k]) }
        }
    }
}
