import DinoTensor
import Foundation

/// The DINOv3 image processor (HF `DINOv3ViTImageProcessor`): scale 8-bit values to [0, 1],
/// resize to exactly `height x width` with antialiased bilinear interpolation on those floats,
/// then normalise. It stretches: the aspect ratio is not kept.
public struct DINOv3Processor: Sendable, Equatable {
    /// Output height and width in pixels.
    public var height: Int, width: Int
    /// Per-channel statistics applied after the resize.
    public var normalization: ImageNormalization
    /// Multiplier from 8-bit values, `1 / 255`.
    public var rescaleFactor: Float

    /// The processor of the web-image (LVD-1689M) checkpoints: 224 x 224, ImageNet statistics.
    public static let lvd1689m = DINOv3Processor(height: 224, width: 224, normalization: .imagenet, rescaleFactor: 1 / 255)
    /// The processor of the satellite (SAT-493M) checkpoints: their own statistics.
    public static let sat493m = DINOv3Processor(
        height: 224, width: 224,
        normalization: ImageNormalization(mean: [0.430, 0.411, 0.296], std: [0.213, 0.156, 0.143]), rescaleFactor: 1 / 255)

    /// A processor with these settings.
    public init(height: Int, width: Int, normalization: ImageNormalization, rescaleFactor: Float) {
        self.height = height
        self.width = width
        self.normalization = normalization
        self.rescaleFactor = rescaleFactor
    }

    /// Whether `preprocessor_config.json` text names this processor (`DINOv3ViTImageProcessor`
    /// or its `Fast` twin).
    public static func describes(_ json: JSONValue) -> Bool {
        json["image_processor_type"]?.stringValue?.hasPrefix("DINOv3ViTImageProcessor") == true
    }

    /// Reads a DINOv3 `preprocessor_config.json`; settings this processor does not have are errors.
    public static func load(from url: URL) throws(ImageError) -> DINOv3Processor {
        try DINOv3Processor(file: ProcessorFile(url))
    }

    /// The settings of a DINOv3 `preprocessor_config.json` already read.
    init(file: ProcessorFile) throws(ImageError) {
        let (json, bad) = (file.json, file.bad)
        var processor = DINOv3Processor.lvd1689m
        for key in ["do_resize", "do_rescale", "do_normalize"] where json[key] != nil && json[key] != .bool(true) {
            throw bad("'\(key)' other than true is not supported")
        }
        if json["do_center_crop"] != nil && json["do_center_crop"] != .bool(false) && json["do_center_crop"] != .null {
            throw bad("'do_center_crop' is not supported by the DINOv3 processor")
        }
        if let resample = json["resample"], resample.intValue != 2 {
            throw bad("only bilinear resampling (resample = 2) is supported, got \(resample.serialized)")
        }
        if let size = json["size"] {
            guard let h = size["height"]?.intValue, let w = size["width"]?.intValue, h > 0, w > 0 else {
                throw bad("'size' must be {\"height\": H, \"width\": W}, got \(size.serialized)")
            }
            (processor.height, processor.width) = (h, w)
        }
        if let mean = try file.floats("image_mean") {
            guard mean.allSatisfy(\.isFinite) else { throw bad("'image_mean' must hold 3 numbers") }
            processor.normalization.mean = mean
        }
        if let std = try file.floats("image_std") {
            guard std.allSatisfy(\.isFinite) else { throw bad("'image_std' must hold 3 numbers") }
            guard std.allSatisfy({ $0 > 0 }) else { throw bad("'image_std' must be positive") }
            processor.normalization.std = std
        }
        if let factor = json["rescale_factor"] {
            guard let value = factor.doubleValue, value > 0, value.isFinite else { throw bad("'rescale_factor' must be a positive number") }
            processor.rescaleFactor = Float(value)
        }
        self = processor
    }

    /// `image` as normalised pixels `[3, height, width]`.
    public func prepare(_ image: RGBImage) -> PreparedImage {
        let (w, h) = (image.width, image.height)
        // Rescaled planes only: the statistics apply after the resize, as the reference orders it.
        let planes = Preprocessing.normalize(image, ImageNormalization(mean: [0, 0, 0], std: [1, 1, 1]), rescale: rescaleFactor).scalars
        // ref: torch's separable antialiased upsampling: the width pass first, then the height.
        let across = Self.resample(planes, planes: 3 * h, length: w, stride: 1, step: w, to: width)
        var resized = Self.resample(across, planes: 3, length: h, stride: width, step: h * width, to: height, columns: width)
        for c in 0..<3 {
            let (mean, std) = (normalization.mean[c], normalization.std[c])
            for i in 0..<(width * height) { resized[c * width * height + i] = (resized[c * width * height + i] - mean) / std }
        }
        return PreparedImage(
            pixels: Tensor(shape: [3, height, width], scalars: resized), originalSize: (w, h),
            contentRect: PixelRect(x: 0, y: 0, width: width, height: height), sourceRect: PixelRect(x: 0, y: 0, width: w, height: h))
    }

    /// Resamples along one axis of length `length` to `target`, with the triangle filter widened
    /// by the scale when shrinking (ref: aten `_compute_indices_weights_aa`, align_corners false).
    /// `stride` steps between samples along the axis, `step` between the `planes` lines; with
    /// `columns`, each line is that many independent columns side by side (the height pass).
    static func resample(_ input: [Float], planes: Int, length: Int, stride: Int, step: Int, to target: Int, columns: Int = 1) -> [Float] {
        // The reference computes the weights in float32, with some intermediates in double;
        // the same mix here gives its weights bit for bit.
        let scale = Float(length) / Float(target)
        let support = Float(scale >= 1 ? 1.0 * Double(scale) : 1.0)
        let inverse = Float(scale >= 1 ? 1.0 / Double(scale) : 1.0)
        var starts = [Int](repeating: 0, count: target)
        var weights = [[Float]](repeating: [], count: target)
        for i in 0..<target {
            let centre = Float(Double(scale) * (Double(i) + 0.5))
            let low = max(Int(Double(centre - support) + 0.5), 0)
            let high = min(Int(Double(centre + support) + 0.5), length)
            var w = (low..<high).map { (j: Int) -> Float in
                let x = Float((Double(Float(j) - centre) + 0.5) * Double(inverse))
                return max(0, 1 - abs(x))
            }
            var total: Float = 0
            for weight in w { total += weight }
            if total != 0 { w = w.map { $0 / total } }
            starts[i] = low
            weights[i] = w
        }
        // Output lines: `planes` lines of `target` samples (x `columns` for the height pass).
        var output = [Float](repeating: 0, count: planes * target * columns)
        for plane in 0..<planes {
            for i in 0..<target {
                for column in 0..<columns {
                    var sum: Float = 0
                    for (k, weight) in weights[i].enumerated() {
                        sum += weight * input[plane * step + (starts[i] + k) * stride + column]
                    }
                    output[(plane * target + i) * columns + column] = sum
                }
            }
        }
        return output
    }
}
