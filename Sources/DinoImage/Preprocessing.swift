import DinoTensor
import Foundation

/// The settings of an HF image processor (`preprocessor_config.json` of `BitImageProcessor`,
/// which the released DINOv2 checkpoints use).
public struct ProcessorConfig: Sendable, Equatable {
    /// Resize so the shorter side has this length (the longer keeps the aspect ratio).
    public var shortestEdge: Int
    /// Center-crop size after resizing.
    public var cropHeight: Int
    /// Center-crop width after resizing.
    public var cropWidth: Int
    /// Whether to resize.
    public var doResize: Bool
    /// Whether to center-crop.
    public var doCenterCrop: Bool
    /// Multiplier from 8-bit values to the model's range (`1 / 255`), when `doRescale`.
    public var rescaleFactor: Float
    /// Whether to rescale.
    public var doRescale: Bool
    /// Whether to normalise with `mean` and `std`.
    public var doNormalize: Bool
    /// Per-channel mean (RGB).
    public var mean: [Float]
    /// Per-channel standard deviation (RGB).
    public var std: [Float]

    /// The processor of the released DINOv2 checkpoints: shortest edge 256, center crop 224,
    /// ImageNet mean and std.
    public static let dinov2 = ProcessorConfig(
        shortestEdge: 256, cropHeight: 224, cropWidth: 224, doResize: true, doCenterCrop: true,
        rescaleFactor: 1 / 255, doRescale: true, doNormalize: true,
        mean: ImageNormalization.imagenet.mean, std: ImageNormalization.imagenet.std)

    /// Reads `preprocessor_config.json`; only the bicubic `BitImageProcessor` / `Dinov2`-style
    /// settings are supported, anything else is an error that says what differs.
    public static func load(from url: URL) throws(ImageError) -> ProcessorConfig {
        try ProcessorConfig(file: ProcessorFile(url))
    }
}

extension ProcessorConfig {
    /// The settings of a `preprocessor_config.json` already read.
    init(file: ProcessorFile) throws(ImageError) {
        let (json, bad) = (file.json, file.bad)
        var config = ProcessorConfig.dinov2
        func bool(_ key: String, _ current: Bool) throws(ImageError) -> Bool {
            guard let value = json[key] else { return current }
            guard case .bool(let b) = value else { throw bad("'\(key)' must be true or false") }
            return b
        }
        config.doResize = try bool("do_resize", config.doResize)
        config.doCenterCrop = try bool("do_center_crop", config.doCenterCrop)
        config.doRescale = try bool("do_rescale", config.doRescale)
        config.doNormalize = try bool("do_normalize", config.doNormalize)
        config.mean = try file.floats("image_mean") ?? config.mean
        config.std = try file.floats("image_std") ?? config.std
        guard config.std.allSatisfy({ $0 > 0 }) else { throw bad("'image_std' must be positive") }
        if let factor = json["rescale_factor"] {
            guard let value = factor.doubleValue, value > 0 else { throw bad("'rescale_factor' must be a positive number") }
            config.rescaleFactor = Float(value)
        }
        if let resample = json["resample"] {
            guard resample.intValue == 3 else {
                throw bad("only bicubic resampling (resample = 3) is supported, got \(resample.serialized)")
            }
        }
        if let size = json["size"] {
            guard let edge = size["shortest_edge"]?.intValue, edge > 0 else {
                throw bad("'size' must be {\"shortest_edge\": N}, got \(size.serialized)")
            }
            config.shortestEdge = edge
        }
        if let crop = json["crop_size"] {
            guard let h = crop["height"]?.intValue, let w = crop["width"]?.intValue, h > 0, w > 0 else {
                throw bad("'crop_size' must be {\"height\": H, \"width\": W}, got \(crop.serialized)")
            }
            config.cropHeight = h
            config.cropWidth = w
        }
        self = config
    }
}

/// A `preprocessor_config.json`, read and parsed once, with the helpers both processors' readers use.
struct ProcessorFile {
    let json: JSONValue
    let path: String

    init(_ url: URL) throws(ImageError) {
        path = url.path
        let data: Data
        do { data = try InputFile.contents(of: url) } catch { throw .invalidProcessorConfig(path: url.path, reason: error.detail) }
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw .invalidProcessorConfig(path: url.path, reason: "cannot read: \(error)")
        }
    }

    /// An error naming the file.
    func bad(_ reason: String) -> ImageError { .invalidProcessorConfig(path: path, reason: reason) }

    /// The 3 numbers under `key` (per-channel statistics), nil when absent.
    func floats(_ key: String) throws(ImageError) -> [Float]? {
        guard let value = json[key] else { return nil }
        guard let items = value.arrayValue, items.count == 3 else { throw bad("'\(key)' must hold 3 numbers") }
        var out: [Float] = []
        for item in items {
            guard let d = item.doubleValue else { throw bad("'\(key)' must hold 3 numbers") }
            out.append(Float(d))
        }
        return out
    }
}

extension Preprocessing {
    /// The processor a model folder's `preprocessor_config.json` describes, read once: the DINOv3
    /// processor when it names `DINOv3ViTImageProcessor`, else the DINOv2 classification one.
    public static func modelProcessor(at url: URL) throws(ImageError) -> Preprocessing {
        let file = try ProcessorFile(url)
        return DINOv3Processor.describes(file.json) ? .dinov3(try DINOv3Processor(file: file)) : .classification(try ProcessorConfig(file: file))
    }
}

/// Per-channel normalisation applied after scaling 8-bit values to [0, 1].
public struct ImageNormalization: Sendable, Equatable {
    /// Per-channel mean (RGB).
    public var mean: [Float]
    /// Per-channel standard deviation (RGB).
    public var std: [Float]

    /// The ImageNet statistics DINOv2 was trained with.
    public static let imagenet = ImageNormalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    /// Creates a normalisation from mean and std (3 values each).
    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }
}

/// How an image becomes the pixel tensor the model reads. Every preset is explicit about what it
/// does to the image; none crops unless its name says so.
public enum Preprocessing: Sendable, Equatable {
    /// The HF classification processor: resize the shortest edge, center crop, normalise.
    case classification(ProcessorConfig)
    /// Resize so the short side becomes `shortSide` rounded to the nearest multiple of the patch
    /// size, and the long side the multiple nearest to keeping the aspect ratio.
    case resize(shortSide: Int)
    /// Resize the short side to exactly `shortSide` (aspect ratio kept), then pad to multiples.
    case resizeAndPad(shortSide: Int)
    /// Keep the size; pad to multiples of the patch size, centred (`pad / 2` left and top).
    case pad
    /// Keep the size; pad to multiples of the patch size at the bottom and right (as LOST does).
    case padBottomRight
    /// Resize to exactly `height x width` (multiples of the patch size).
    case size(height: Int, width: Int)
    /// The DINOv3 processor: resize to its fixed size (stretching), normalise with its statistics.
    case dinov3(DINOv3Processor)
}

/// An image prepared for the model, with what is needed to map results back onto the image.
public struct PreparedImage: Sendable {
    /// Normalised pixels `[3, H, W]`; padding is 0 (the mean colour).
    public var pixels: Tensor
    /// Size of the input image, `(width, height)`.
    public var originalSize: (width: Int, height: Int)
    /// Where the image content lies in `pixels`, in prepared pixels.
    public var contentRect: PixelRect
    /// Which part of the original image the content shows (all of it unless cropped).
    public var sourceRect: PixelRect

    /// Height `H` of `pixels`.
    public var height: Int { pixels.shape[1] }
    /// Width `W` of `pixels`.
    public var width: Int { pixels.shape[2] }
}

extension Preprocessing {
    /// Prepares `image` for a model with patch size `patchSize`; dense presets normalise with
    /// `normalization`, the classification preset with its processor's statistics.
    public func prepare(_ image: RGBImage, patchSize p: Int, normalization: ImageNormalization = .imagenet) throws(ImageError) -> PreparedImage {
        guard image.width > 0, image.height > 0 else { throw .invalidPreprocessing(reason: "the image is empty") }
        let whole = PixelRect(x: 0, y: 0, width: image.width, height: image.height)
        switch self {
        case .classification(let config):
            return try Self.classify(image, config)
        case .dinov3(let processor):
            guard processor.height % p == 0, processor.width % p == 0 else {
                throw .invalidPreprocessing(reason: "the DINOv3 processor's \(processor.height)x\(processor.width) is not a multiple of the patch size \(p)")
            }
            return processor.prepare(image)
        case .resize(let shortSide):
            guard shortSide > 0 else { throw .invalidPreprocessing(reason: "--resize must be positive, got \(shortSide)") }
            let short = min(image.width, image.height), long = max(image.width, image.height)
            let newShort = max(p, Int((Double(shortSide) / Double(p)).rounded()) * p)
            let newLong = max(p, Int((Double(long) * Double(newShort) / Double(short) / Double(p)).rounded()) * p)
            let (w, h) = image.width <= image.height ? (newShort, newLong) : (newLong, newShort)
            let resized = image.resized(width: w, height: h)
            return PreparedImage(
                pixels: Self.normalize(resized, normalization, rescale: 1 / 255), originalSize: (image.width, image.height),
                contentRect: PixelRect(x: 0, y: 0, width: w, height: h), sourceRect: whole)
        case .resizeAndPad(let shortSide):
            guard shortSide > 0 else { throw .invalidPreprocessing(reason: "--resize must be positive, got \(shortSide)") }
            let short = min(image.width, image.height), long = max(image.width, image.height)
            let newLong = max(1, Int((Double(long) * Double(shortSide) / Double(short)).rounded()))
            let (w, h) = image.width <= image.height ? (shortSide, newLong) : (newLong, shortSide)
            return Self.padded(image.resized(width: w, height: h), patchSize: p, centered: true, normalization, original: image, source: whole)
        case .pad:
            return Self.padded(image, patchSize: p, centered: true, normalization, original: image, source: whole)
        case .padBottomRight:
            return Self.padded(image, patchSize: p, centered: false, normalization, original: image, source: whole)
        case .size(let h, let w):
            guard h > 0, w > 0, h % p == 0, w % p == 0 else {
                throw .invalidPreprocessing(reason: "--size \(h)x\(w) must be positive multiples of the patch size \(p)")
            }
            return PreparedImage(
                pixels: Self.normalize(image.resized(width: w, height: h), normalization, rescale: 1 / 255),
                originalSize: (image.width, image.height), contentRect: PixelRect(x: 0, y: 0, width: w, height: h), sourceRect: whole)
        }
    }

    // ref: HF BitImageProcessor: resize shortest edge (long = int(edge * long / short)), then
    // center crop with top = (h - crop_h) // 2, left = (w - crop_w) // 2, rescale, normalise.
    private static func classify(_ image: RGBImage, _ config: ProcessorConfig) throws(ImageError) -> PreparedImage {
        var resized = image
        if config.doResize {
            let edge = config.shortestEdge
            let (w, h) = image.width <= image.height
                ? (edge, Int(Double(edge) * Double(image.height) / Double(image.width)))
                : (Int(Double(edge) * Double(image.width) / Double(image.height)), edge)
            resized = image.resized(width: w, height: h)
        }
        var source = PixelRect(x: 0, y: 0, width: image.width, height: image.height)
        var cropped = resized
        if config.doCenterCrop {
            let (ch, cw) = (config.cropHeight, config.cropWidth)
            guard ch <= resized.height, cw <= resized.width else {
                throw .invalidPreprocessing(reason: "crop \(ch)x\(cw) is larger than the resized image \(resized.height)x\(resized.width)")
            }
            let top = (resized.height - ch) / 2, left = (resized.width - cw) / 2
            cropped = resized.cropped(x: left, y: top, width: cw, height: ch)
            let sx = Double(image.width) / Double(resized.width), sy = Double(image.height) / Double(resized.height)
            source = PixelRect(x: Int((Double(left) * sx).rounded()), y: Int((Double(top) * sy).rounded()),
                               width: Int((Double(cw) * sx).rounded()), height: Int((Double(ch) * sy).rounded()))
        }
        let normalization = config.doNormalize ? ImageNormalization(mean: config.mean, std: config.std) : ImageNormalization(mean: [0, 0, 0], std: [1, 1, 1])
        return PreparedImage(
            pixels: normalize(cropped, normalization, rescale: config.doRescale ? config.rescaleFactor : 1),
            originalSize: (image.width, image.height),
            contentRect: PixelRect(x: 0, y: 0, width: cropped.width, height: cropped.height), sourceRect: source)
    }

    private static func padded(_ image: RGBImage, patchSize p: Int, centered: Bool, _ normalization: ImageNormalization,
                               original: RGBImage, source: PixelRect) -> PreparedImage {
        let w = (image.width + p - 1) / p * p, h = (image.height + p - 1) / p * p
        let left = centered ? (w - image.width) / 2 : 0, top = centered ? (h - image.height) / 2 : 0
        let content = normalize(image, normalization, rescale: 1 / 255)
        var pixels = Tensor(shape: [3, h, w], repeating: 0)
        for c in 0..<3 {
            for y in 0..<image.height {
                let src = (c * image.height + y) * image.width
                let dst = (c * h + y + top) * w + left
                pixels.scalars.replaceSubrange(dst..<(dst + image.width), with: content.scalars[src..<(src + image.width)])
            }
        }
        return PreparedImage(
            pixels: pixels, originalSize: (original.width, original.height),
            contentRect: PixelRect(x: left, y: top, width: image.width, height: image.height), sourceRect: source)
    }

    /// `[3, H, W]` of `(value * rescale - mean) / std`.
    static func normalize(_ image: RGBImage, _ normalization: ImageNormalization, rescale: Float) -> Tensor {
        let (w, h) = (image.width, image.height)
        var scalars = [Float](repeating: 0, count: 3 * w * h)
        for c in 0..<3 {
            let mean = normalization.mean[c], std = normalization.std[c]
            for i in 0..<(w * h) {
                scalars[c * w * h + i] = (Float(image.pixels[i * 3 + c]) * rescale - mean) / std
            }
        }
        return Tensor(shape: [3, h, w], scalars: scalars)
    }
}
