import Foundation

/// Why an image could not be read, prepared or written.
public enum ImageError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The file could not be read.
    case cannotRead(path: String, reason: String)
    /// The bytes are not in any image format this library decodes.
    case notAnImage(path: String)
    /// The format was recognised but this build cannot decode it.
    case unsupportedFormat(path: String, format: String)
    /// The format was recognised but the data is corrupt or truncated.
    case corrupt(path: String, format: String, reason: String)
    /// The image has more pixels than allowed.
    case tooLarge(path: String, width: Int, height: Int, limit: Int)
    /// The image could not be encoded or written.
    case cannotWrite(path: String, reason: String)
    /// A preprocessing setting is impossible (names the setting and why).
    case invalidPreprocessing(reason: String)
    /// A feature analysis (such as PCA) cannot be computed from the data given.
    case invalidAnalysis(reason: String)
    /// `preprocessor_config.json` is unreadable or describes an unsupported processor.
    case invalidProcessorConfig(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "\(path): cannot read: \(reason)"
        case let .notAnImage(path): return "\(path): not an image (no JPEG, PNG, WebP, BMP or TIFF signature)"
        case let .unsupportedFormat(path, format): return "\(path): \(format) images are not supported; convert to PNG or JPEG"
        case let .corrupt(path, format, reason): return "\(path): corrupt or truncated \(format): \(reason)"
        case let .tooLarge(path, width, height, limit):
            // Declared sides can be as large as 2^32 - 1: report the product without overflowing.
            let pixels = Double(width) * Double(height)
            let size = "\(path): image of \(width)x\(height) = \(String(format: "%.0f", pixels)) pixels"
            if max(width, height) > ImageIO.decoderMaxSide && pixels <= Double(limit) {
                return "\(size) exceeds the limit of \(ImageIO.decoderMaxSide) pixels a side (the decoder's)"
            }
            let whose = limit >= ImageIO.decoderMaxPixels ? " (the decoder's; --max-pixels cannot raise it)" : ""
            return "\(size) exceeds the limit of \(limit) pixels\(whose)"
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        case let .invalidPreprocessing(reason): return "invalid preprocessing: \(reason)"
        case let .invalidAnalysis(reason): return "cannot analyse the features: \(reason)"
        case let .invalidProcessorConfig(path, reason): return "\(path): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}
