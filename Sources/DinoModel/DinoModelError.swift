import DinoTensor
import Foundation

/// Why a model could not be loaded or run.
public enum DinoModelError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// `config.json` is missing, unreadable or not JSON.
    case cannotReadConfiguration(path: String, reason: String)
    /// A configuration field has a wrong type or an impossible value.
    case invalidConfiguration(path: String, field: String, reason: String)
    /// The model folder has no weights file.
    case missingWeights(directory: String)
    /// The checkpoint lacks a tensor the model needs.
    case missingTensor(key: String, file: String)
    /// The checkpoint has a tensor the model does not use.
    case unexpectedTensor(key: String, file: String)
    /// A tensor has a different shape than the configuration implies.
    case shapeMismatch(key: String, file: String, expected: [Int], actual: [Int])
    /// The checkpoint's tensor names follow no naming this library knows.
    case unknownNaming(file: String, reason: String)
    /// A tensor file is malformed.
    case tensorFile(TensorFileError)
    /// The input image size is not a multiple of the patch size.
    case inputSizeNotMultipleOfPatch(height: Int, width: Int, patchSize: Int)
    /// The input tensor has the wrong rank, channel count or size.
    case invalidInput(reason: String)
    /// The input has more tokens than the limit allows (checked before allocating).
    case tooManyTokens(tokens: Int, limit: Int, batch: Int, height: Int, width: Int)
    /// `out_features` / `out_indices` (or an intermediate-layer selection) are invalid.
    case invalidStageSelection(reason: String)
    /// A reader asked a backbone pass for something its `FeatureRequest` did not include.
    case notRequested(what: String)

    public var description: String {
        switch self {
        case let .cannotReadConfiguration(path, reason): return "\(path): cannot read configuration: \(reason)"
        case let .invalidConfiguration(path, field, reason): return "\(path): invalid '\(field)': \(reason)"
        case let .missingWeights(directory):
            return "\(directory): no model.safetensors or model.safetensors.index.json"
        case let .missingTensor(key, file): return "\(file): missing tensor '\(key)'"
        case let .unexpectedTensor(key, file): return "\(file): unexpected tensor '\(key)' (not used by the model)"
        case let .shapeMismatch(key, file, expected, actual):
            return "\(file): tensor '\(key)' has shape \(actual), expected \(expected)"
        case let .unknownNaming(file, reason): return "\(file): unrecognised checkpoint naming: \(reason)"
        case let .tensorFile(error): return error.description
        case let .inputSizeNotMultipleOfPatch(height, width, patchSize):
            return "input size \(height)x\(width) is not a multiple of the patch size \(patchSize); resize or pad the image to a multiple of \(patchSize)"
        case let .invalidInput(reason): return "invalid input: \(reason)"
        case let .invalidStageSelection(reason): return "invalid stage selection: \(reason)"
        case let .notRequested(what): return "\(what) was not requested from this backbone pass; add it to the FeatureRequest"
        case let .tooManyTokens(tokens, limit, batch, height, width):
            return "a batch of \(batch) image(s) of \(height)x\(width) px is \(tokens) tokens, over the limit of \(limit) (raise it with --max-tokens, or use a smaller size or batch)"
        }
    }

    public var errorDescription: String? { description }
}
