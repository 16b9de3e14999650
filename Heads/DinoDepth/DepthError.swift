import DinoImage
import DinoLayers
import DinoModel
import DinoTensor
import Foundation

/// Why a depth head or model could not be loaded or run, or a depth map read, written or evaluated.
///
/// Every case names the file, tensor or setting at fault, so the message alone tells the user
/// what to fix.
public enum DepthError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The checkpoint lacks a tensor the head needs.
    case missingTensor(key: String, file: String)
    /// The checkpoint has a tensor the head does not use.
    case unexpectedTensor(key: String, file: String)
    /// A tensor has another shape than the head's other tensors imply.
    case shapeMismatch(key: String, file: String, expected: String, actual: [Int])
    /// The checkpoint is none of the head layouts this library knows.
    case unknownHead(file: String, reason: String)
    /// The head does not fit the backbone it is put on.
    case incompatibleBackbone(file: String, reason: String)
    /// No depth range for a metric head: the head's metadata, its mmcv config and its file name
    /// say nothing, and none was given.
    case missingDepthRange(file: String)
    /// A configuration or metadata value is missing, of the wrong type or impossible.
    case invalidConfiguration(path: String, field: String, reason: String)
    /// An input tensor or image does not fit the model.
    case invalidInput(reason: String)
    /// A depth map (ground truth or prediction) could not be read.
    case cannotReadDepth(path: String, reason: String)
    /// A depth map could not be written.
    case cannotWrite(path: String, reason: String)
    /// Evaluation settings or data that cannot be evaluated (a size mismatch, no valid pixel).
    case invalidEvaluation(reason: String)
    /// A tensor file is malformed.
    case tensorFile(TensorFileError)
    /// The backbone could not be loaded or run.
    case model(DinoModelError)
    /// A layer rejected its weights or input.
    case layer(LayerError)
    /// An image could not be read or prepared.
    case image(ImageError)

    /// The message, naming the file, tensor or setting.
    public var description: String {
        switch self {
        case let .missingTensor(key, file): return "\(file): missing tensor '\(key)'"
        case let .unexpectedTensor(key, file): return "\(file): unexpected tensor '\(key)' (not used by the depth head)"
        case let .shapeMismatch(key, file, expected, actual):
            return "\(file): tensor '\(key)' has shape \(actual), expected \(expected)"
        case let .unknownHead(file, reason): return "\(file): not a depth head this library knows: \(reason)"
        case let .incompatibleBackbone(file, reason): return "\(file): the head does not fit the backbone: \(reason)"
        case let .missingDepthRange(file):
            return "\(file): no depth range in the head's metadata, its mmcv _config.py or its file name (nyu/kitti); pass --min-depth and --max-depth"
        case let .invalidConfiguration(path, field, reason): return "\(path): invalid '\(field)': \(reason)"
        case let .invalidInput(reason): return "invalid input: \(reason)"
        case let .cannotReadDepth(path, reason): return "\(path): cannot read depth: \(reason)"
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        case let .invalidEvaluation(reason): return "cannot evaluate: \(reason)"
        case let .tensorFile(error): return error.description
        case let .model(error): return error.description
        case let .layer(error): return error.description
        case let .image(error): return error.description
        }
    }

    /// The same message, for `localizedDescription`.
    public var errorDescription: String? { description }
}

extension DepthError: LayerErrorConvertible {
    /// The depth error that reports `error`: a head checkpoint's missing, unexpected or
    /// mis-shaped tensor, unreadable file or unknown format as its own case, any other layer
    /// error as `.layer`.
    public init(_ error: LayerError) {
        switch error {
        case let .missingTensor(key, file): self = .missingTensor(key: key, file: file)
        case let .unexpectedTensor(key, file): self = .unexpectedTensor(key: key, file: file)
        case let .tensorShape(key, file, expected, actual):
            self = .shapeMismatch(key: key, file: file, expected: LayerError.shapeText(expected), actual: actual)
        case let .unsupportedCheckpoint(file, reason): self = .unknownHead(file: file, reason: reason)
        case let .tensorFile(error): self = .tensorFile(error)
        case .weightShape, .inputShape, .invalidParameter: self = .layer(error)
        }
    }
}
