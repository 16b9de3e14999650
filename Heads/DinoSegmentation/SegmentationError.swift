import DinoImage
import DinoLayers
import DinoModel
import DinoTensor
import Foundation

/// Why a segmentation head, label map, dataset or training run failed.
///
/// Every case names the file, tensor or setting involved, so that the message alone tells the
/// user what to fix.
public enum SegmentationError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// A head file lacks a tensor the head needs.
    case missingTensor(key: String, file: String)
    /// A head file has a tensor that belongs to no head parameter.
    case unexpectedTensor(key: String, file: String)
    /// A head tensor has another shape than the rest of the head implies.
    case shapeMismatch(key: String, file: String, expected: [Int], actual: [Int])
    /// A head file's metadata entry is unreadable.
    case invalidMetadata(file: String, key: String, reason: String)
    /// The head does not fit the backbone (channels, depth).
    case incompatibleBackbone(head: String, reason: String)
    /// The head file's format is not one this library reads.
    case unsupportedHeadFormat(file: String, reason: String)
    /// A label map file is not one of the supported kinds.
    case invalidLabelMap(path: String, reason: String)
    /// A label map holds a class index the head does not have.
    case labelOutOfRange(path: String, label: Int, classes: Int)
    /// Two things that must have one size do not.
    case sizeMismatch(what: String, expected: String, actual: String)
    /// A dataset folder does not follow the layout it claims or has no usable samples.
    case invalidDataset(path: String, reason: String)
    /// A setting is impossible (window, stride, learning rate, epochs...).
    case invalidSetting(name: String, reason: String)
    /// The feature cache is unusable.
    case invalidCache(path: String, reason: String)
    /// A file could not be written.
    case cannotWrite(path: String, reason: String)
    /// A tensor file could not be read.
    case tensorFile(TensorFileError)
    /// The backbone failed.
    case model(DinoModelError)
    /// An image could not be read or prepared.
    case image(ImageError)
    /// A layer rejected its weights or input.
    case layer(LayerError)

    /// The message, naming the file, tensor or setting.
    public var description: String {
        switch self {
        case let .missingTensor(key, file): return "\(file): missing tensor '\(key)'"
        case let .unexpectedTensor(key, file): return "\(file): unexpected tensor '\(key)' (not a parameter of the linear head)"
        case let .shapeMismatch(key, file, expected, actual):
            return "\(file): tensor '\(key)' has shape \(actual), expected \(expected)"
        case let .invalidMetadata(file, key, reason): return "\(file): metadata '\(key)': \(reason)"
        case let .incompatibleBackbone(head, reason): return "\(head): does not fit the backbone: \(reason)"
        case let .unsupportedHeadFormat(file, reason): return "\(file): \(reason)"
        case let .invalidLabelMap(path, reason): return "\(path): \(reason)"
        case let .labelOutOfRange(path, label, classes):
            return "\(path): label \(label) is not a class index (0..<\(classes)) nor the ignore index 255"
        case let .sizeMismatch(what, expected, actual): return "\(what): size \(actual), expected \(expected)"
        case let .invalidDataset(path, reason): return "\(path): \(reason)"
        case let .invalidSetting(name, reason): return "\(name): \(reason)"
        case let .invalidCache(path, reason): return "\(path): feature cache: \(reason)"
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        case let .tensorFile(error): return error.description
        case let .model(error): return error.description
        case let .image(error): return error.description
        case let .layer(error): return error.description
        }
    }

    /// The same message for Foundation's error reporting.
    public var errorDescription: String? { description }
}

extension SegmentationError: LayerErrorConvertible {
    /// The segmentation error that reports `error`: a head file's missing, unexpected or
    /// mis-shaped tensor (`-1` for an extent that may be anything), unreadable file or unknown
    /// format as its own case, any other layer error as `.layer`.
    public init(_ error: LayerError) {
        switch error {
        case let .missingTensor(key, file): self = .missingTensor(key: key, file: file)
        case let .unexpectedTensor(key, file): self = .unexpectedTensor(key: key, file: file)
        case let .tensorShape(key, file, expected, actual): self = .shapeMismatch(key: key, file: file, expected: expected.map { $0 ?? -1 }, actual: actual)
        case let .unsupportedCheckpoint(file, reason): self = .unsupportedHeadFormat(file: file, reason: reason)
        case let .tensorFile(error): self = .tensorFile(error)
        case .weightShape, .inputShape, .invalidParameter: self = .layer(error)
        }
    }
}
