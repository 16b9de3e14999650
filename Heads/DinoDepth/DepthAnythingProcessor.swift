import DinoImage
import DinoLayers
import DinoModel
import DinoTensor
import Foundation

// Dimension letters: B batch, C backbone width, F fusion width, h x w the patch grid,
// H x W the input (h * p x w * p).

/// Depth Anything's image processor (HF `DPTImageProcessor` settings): resize keeping the aspect
/// ratio so that each side is a multiple of `ensure_multiple_of`, bicubic, then normalise.
public struct DepthAnythingProcessor: Sendable, Equatable {
    /// Target size `(height, width)` (`size`).
    public var height: Int = 518
    /// Target width.
    public var width: Int = 518
    /// Whether to scale both sides by the factor closest to 1 (`keep_aspect_ratio`).
    public var keepAspectRatio = true
    /// Each side becomes a multiple of this (`ensure_multiple_of`).
    public var multiple = 14
    /// Per-channel normalisation after `x / 255`.
    public var normalization = ImageNormalization.imagenet

    /// The released models' settings.
    public init() {}

    /// Reads `preprocessor_config.json`; settings this library does not reproduce (padding,
    /// another filter, no resize) are errors that say so.
    public static func load(from url: URL) throws(DepthError) -> DepthAnythingProcessor {
        let json: JSONValue
        do {
            json = try JSONValue.parse(try InputFile.contents(of: url))
        } catch let error as TensorFileError {
            throw .invalidConfiguration(path: url.path, field: "(document)", reason: error.detail)
        } catch {
            throw .invalidConfiguration(path: url.path, field: "(document)", reason: "\(error)")
        }
        func bad(_ field: String, _ reason: String) -> DepthError { .invalidConfiguration(path: url.path, field: field, reason: reason) }
        var processor = DepthAnythingProcessor()
        func flag(_ key: String, _ expected: Bool) throws(DepthError) {
            if let value = json[key], value != .bool(expected) {
                throw bad(key, "only \(expected) is supported, got \(value.serialized)")
            }
        }
        try flag("do_resize", true)
        try flag("do_rescale", true)
        try flag("do_normalize", true)
        try flag("do_pad", false)
        if let value = json["resample"], value.intValue != 3 { throw bad("resample", "only bicubic (3) is supported, got \(value.serialized)") }
        if let value = json["rescale_factor"], let d = value.doubleValue, abs(d - 1.0 / 255) > 1e-9 {
            throw bad("rescale_factor", "only 1/255 is supported, got \(d)")
        }
        // Bounded so the resize arithmetic of `outputSize` stays far from Int's range.
        let sizeLimit = DinoConfiguration.Limits.imageSize
        if let size = json["size"] {
            guard let h = size["height"]?.intValue, let w = size["width"]?.intValue, (1...sizeLimit).contains(h), (1...sizeLimit).contains(w) else {
                throw bad("size", "must be {\"height\": H, \"width\": W} with sides from 1 to \(sizeLimit), got \(size.serialized)")
            }
            (processor.height, processor.width) = (h, w)
        }
        if let value = json["keep_aspect_ratio"] {
            guard case .bool(let keep) = value else { throw bad("keep_aspect_ratio", "must be true or false") }
            processor.keepAspectRatio = keep
        }
        if let value = json["ensure_multiple_of"] {
            guard let m = value.intValue, (1...sizeLimit).contains(m) else { throw bad("ensure_multiple_of", "must be an integer from 1 to \(sizeLimit)") }
            processor.multiple = m
        }
        func triple(_ key: String) throws(DepthError) -> [Float]? {
            guard let value = json[key] else { return nil }
            guard let items = value.arrayValue, items.count == 3, case let numbers = items.compactMap(\.doubleValue), numbers.count == 3 else {
                throw bad(key, "must hold 3 numbers")
            }
            return numbers.map { Float($0) }
        }
        let mean = try triple("image_mean") ?? processor.normalization.mean
        let std = try triple("image_std") ?? processor.normalization.std
        guard std.allSatisfy({ $0 > 0 }) else { throw bad("image_std", "must be positive") }
        processor.normalization = ImageNormalization(mean: mean, std: std)
        return processor
    }

    /// The resized `(height, width)` of an image of `width x height`.
    // ref: transformers dpt image processing get_resize_output_image_size: keep_aspect_ratio
    // scales both sides by whichever factor is closer to 1; each side becomes
    // round(v / multiple) * multiple (Python's round: ties to even), floored when above max_val
    // (none here) and ceiled when below min_val (0).
    public func outputSize(width: Int, height: Int) -> (height: Int, width: Int) {
        var scaleHeight = Double(self.height) / Double(height)
        var scaleWidth = Double(self.width) / Double(width)
        if keepAspectRatio {
            if abs(1 - scaleWidth) < abs(1 - scaleHeight) { scaleHeight = scaleWidth } else { scaleWidth = scaleHeight }
        }
        func constrain(_ value: Double) -> Int {
            Int((value / Double(multiple)).rounded(.toNearestOrEven)) * multiple
        }
        return (constrain(scaleHeight * Double(height)), constrain(scaleWidth * Double(width)))
    }

    /// The preset for an image of `width x height`: an exact bicubic resize.
    public func preprocessing(width: Int, height: Int) -> Preprocessing {
        let size = outputSize(width: width, height: height)
        return .size(height: size.height, width: size.width)
    }

    /// `image` resized and normalised for a model with patch size `patchSize`.
    public func prepare(_ image: RGBImage, patchSize: Int) throws(DepthError) -> PreparedImage {
        do {
            return try preprocessing(width: image.width, height: image.height).prepare(image, patchSize: patchSize, normalization: normalization)
        } catch {
            throw .image(error)
        }
    }
}
