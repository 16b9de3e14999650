import COpenCVBridge
import DinoTensor
import Foundation

/// Image formats recognised by their leading bytes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg = "JPEG", png = "PNG", webp = "WebP", bmp = "BMP", tiff = "TIFF", gif = "GIF"

    /// The format whose signature starts `bytes`, if any.
    public static func sniff<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> ImageFormat? {
        let head = Array(bytes.prefix(12))
        func starts(_ signature: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + signature.count && Array(head[offset..<(offset + signature.count)]) == signature
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("BM".utf8)) { return .bmp }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        return nil
    }
}

/// Reading and writing images through the OpenCV bridge.
public enum ImageIO {
    /// Largest image accepted by default, in pixels (about 16k x 16k).
    public static let defaultMaxPixels = 268_435_456

    /// Largest image the decoder (OpenCV) reads whatever the limit asked for, in pixels.
    public static let decoderMaxPixels = Int(DINO_CV_MAX_PIXELS)

    /// Longest side the decoder reads, in pixels.
    public static let decoderMaxSide = Int(DINO_CV_MAX_SIDE)

    /// The size `data`'s header declares, refused before anything is decoded when it is empty,
    /// over `maxPixels` or over the decoder's own limits (both limits give the same message,
    /// naming the one that applies), or when a JPEG has no frame header where libjpeg looks.
    static func checkedHeader(_ data: Data, format: ImageFormat, maxPixels: Int, name: String) throws(ImageError) -> (width: Int, height: Int)? {
        guard let size = ImageHeader.declaredSize(data, format: format) else {
            if format == .jpeg { throw .corrupt(path: name, format: format.rawValue, reason: "no frame header before the image data") }
            return nil
        }
        guard size.width > 0, size.height > 0 else {
            throw .corrupt(path: name, format: format.rawValue, reason: "the header declares a \(size.width)x\(size.height) image")
        }
        let limit = min(maxPixels, decoderMaxPixels)
        // Headers hold up to 32-bit sides: their product can overflow Int.
        let (pixels, overflow) = size.width.multipliedReportingOverflow(by: size.height)
        guard !overflow, pixels <= limit, size.width <= decoderMaxSide, size.height <= decoderMaxSide else {
            throw .tooLarge(path: name, width: size.width, height: size.height, limit: limit)
        }
        return size
    }

    /// Reads and decodes the image file at `url` to 8-bit RGB (EXIF orientation applied; grey,
    /// palette, alpha and 16-bit images converted).
    public static func read(_ url: URL, maxPixels: Int = defaultMaxPixels) throws(ImageError) -> RGBImage {
        try decode(contents(of: url), name: url.path, maxPixels: maxPixels)
    }

    /// The file's bytes, mapped rather than read: the header is checked against the pixel limit
    /// before the decoder touches the rest.
    private static func contents(of url: URL) throws(ImageError) -> Data {
        let file: MappedFile
        do {
            file = try MappedFile(url: url)
        } catch {
            throw .cannotRead(path: url.path, reason: error.detail)
        }
        guard let base = file.bytes.baseAddress else { return Data() }
        return Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: file.bytes.count,
                     deallocator: .custom { _, _ in withExtendedLifetime(file) {} })
    }

    /// The NUL-terminated text the bridge wrote into `message`.
    private static func text(_ message: [CChar]) -> String {
        String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Decodes encoded image bytes; `name` is used in error messages.
    public static func decode(_ data: Data, name: String, maxPixels: Int = defaultMaxPixels) throws(ImageError) -> RGBImage {
        guard let format = ImageFormat.sniff(data) else { throw .notAnImage(path: name) }
        // Debian's OpenCV 4.6 has no GIF decoder.
        if format == .gif { throw .unsupportedFormat(path: name, format: format.rawValue) }
        // Refuse oversized images from their header, before the decoder allocates anything.
        let declared = try checkedHeader(data, format: format, maxPixels: maxPixels, name: name)
        if format == .jpeg, !hasEndOfImageMarker(data) {
            // libjpeg fills a truncated JPEG with grey and only warns; refuse it instead.
            throw .corrupt(path: name, format: format.rawValue, reason: "the data ends before the end-of-image marker")
        }
        var image = dino_cv_image()
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { raw in
            dino_cv_decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, Int64(maxPixels), &image, &message, message.count)
        }
        let reason = text(message)
        switch status {
        case DINO_CV_OK:
            defer { dino_cv_free(image.pixels) }
            let (w, h) = (Int(image.width), Int(image.height))
            let pixels = [UInt8](UnsafeBufferPointer(start: image.pixels, count: w * h * 3))
            return RGBImage(width: w, height: h, pixels: pixels)
        case DINO_CV_TOO_LARGE:
            // Over OpenCV's own limit (lowered by OPENCV_IO_MAX_IMAGE_PIXELS) or the one asked for.
            let size = declared ?? (Int(image.width), Int(image.height))
            throw .tooLarge(path: name, width: size.width, height: size.height, limit: min(maxPixels, decoderMaxPixels))
        default:
            throw .corrupt(path: name, format: format.rawValue, reason: reason.isEmpty ? "decoding failed" : reason)
        }
    }

    /// Whether a JPEG stream ends with its EOI marker (FF D9). Entropy-coded data cannot contain
    /// FF D9, so one in the last kilobyte (trailing bytes after EOI are common) marks a complete file.
    static func hasEndOfImageMarker(_ data: Data) -> Bool {
        let tail = data.suffix(1024)
        var previous: UInt8 = 0
        for byte in tail {
            if previous == 0xFF && byte == 0xD9 { return true }
            previous = byte
        }
        return false
    }

    /// Reads a single-channel image keeping its samples' depth (16-bit depth maps in millimetres,
    /// 8-bit label masks), as `[height, width]` values and the stored bit depth.
    public static func readGrey(_ url: URL, maxPixels: Int = defaultMaxPixels) throws(ImageError) -> GreyImage {
        let data = try contents(of: url)
        guard let format = ImageFormat.sniff(data) else { throw .notAnImage(path: url.path) }
        let declared = try checkedHeader(data, format: format, maxPixels: maxPixels, name: url.path)
        var width: Int32 = 0, height: Int32 = 0, depth: Int32 = 0
        var samples: UnsafeMutablePointer<UInt16>?
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { raw in
            dino_cv_decode_grey(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, Int64(maxPixels), &width, &height, &depth,
                                &samples, &message, message.count)
        }
        defer { dino_cv_free(samples) }
        if status == DINO_CV_TOO_LARGE {
            let size = declared ?? (Int(width), Int(height))
            throw .tooLarge(path: url.path, width: size.width, height: size.height, limit: min(maxPixels, decoderMaxPixels))
        }
        guard status == DINO_CV_OK, let samples else {
            throw .corrupt(path: url.path, format: format.rawValue, reason: text(message))
        }
        return GreyImage(width: Int(width), height: Int(height), bitDepth: Int(depth),
                         samples: [UInt16](UnsafeBufferPointer(start: samples, count: Int(width) * Int(height))))
    }

    /// Writes 16-bit grey samples `[height, width]` as a PNG, atomically.
    public static func writeGrey16PNG(_ samples: [UInt16], width: Int, height: Int, to url: URL) throws(ImageError) {
        precondition(samples.count == width * height, "\(samples.count) samples are not \(width)x\(height)")
        var bytes: UnsafeMutablePointer<UInt8>?
        var count = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = dino_cv_encode_grey16_png(samples, Int32(width), Int32(height), &bytes, &count, &message, message.count)
        defer { dino_cv_free(bytes) }
        guard status == DINO_CV_OK, let bytes else { throw .cannotWrite(path: url.path, reason: text(message)) }
        try writeAtomically(Data(bytes: bytes, count: count), to: url)
    }

    /// Encodes `image` as PNG or JPEG (chosen by the extension of `url`) and writes it atomically.
    public static func write(_ image: RGBImage, to url: URL, jpegQuality: Int = 92) throws(ImageError) {
        let ext = "." + url.pathExtension.lowercased()
        guard [".png", ".jpg", ".jpeg"].contains(ext) else {
            throw .cannotWrite(path: url.path, reason: "unsupported extension '\(ext)'; use .png, .jpg or .jpeg")
        }
        guard image.width > 0, image.height > 0 else { throw .cannotWrite(path: url.path, reason: "the image is empty") }
        var bytes: UnsafeMutablePointer<UInt8>?
        var count = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = dino_cv_encode(image.pixels, Int32(image.width), Int32(image.height), ext, Int32(jpegQuality),
                                    &bytes, &count, &message, message.count)
        defer { dino_cv_free(bytes) }
        guard status == DINO_CV_OK, let bytes else {
            throw .cannotWrite(path: url.path, reason: text(message))
        }
        try writeAtomically(Data(bytes: bytes, count: count), to: url)
    }

    private static func writeAtomically(_ data: Data, to url: URL) throws(ImageError) {
        do {
            try AtomicFile.write(to: url) { try $0.write(contentsOf: data) }
        } catch {
            throw .cannotWrite(path: url.path, reason: "\(error)")
        }
    }

    /// The image file extensions folder scans pick up.
    public static let fileExtensions: Set<String> = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"]
}
