import DinoTensor

/// Why a layer could not be built from its weights or applied to an input, or a head checkpoint
/// could not be opened or read.
public enum LayerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A weight has the wrong rank or shape.
    case weightShape(layer: String, expected: String, actual: [Int])
    /// The input does not fit the layer.
    case inputShape(layer: String, expected: String, actual: [Int])
    /// A hyper-parameter is impossible (stride 0, negative padding...).
    case invalidParameter(layer: String, reason: String)
    /// A head checkpoint lacks a tensor the head needs.
    case missingTensor(key: String, file: String)
    /// A head checkpoint has a tensor the head does not use.
    case unexpectedTensor(key: String, file: String)
    /// A head checkpoint's tensor has another shape than the head implies (nil: any extent).
    case tensorShape(key: String, file: String, expected: [Int?], actual: [Int])
    /// A head checkpoint is in a format this library does not read.
    case unsupportedCheckpoint(file: String, reason: String)
    /// A head checkpoint is malformed.
    case tensorFile(TensorFileError)

    /// The message, naming the layer, or the file and tensor.
    public var description: String {
        switch self {
        case let .weightShape(layer, expected, actual): return "\(layer): weight of shape \(actual), expected \(expected)"
        case let .inputShape(layer, expected, actual): return "\(layer): input of shape \(actual), expected \(expected)"
        case let .invalidParameter(layer, reason): return "\(layer): \(reason)"
        case let .missingTensor(key, file): return "\(file): missing tensor '\(key)'"
        case let .unexpectedTensor(key, file): return "\(file): unexpected tensor '\(key)' (not used by the head)"
        case let .tensorShape(key, file, expected, actual):
            return "\(file): tensor '\(key)' has shape \(actual), expected \(Self.shapeText(expected))"
        case let .unsupportedCheckpoint(file, reason): return "\(file): \(reason)"
        case let .tensorFile(error): return error.description
        }
    }

    /// `[256, ?, 1, 1]`: a shape with `?` for the extents that may be anything.
    public static func shapeText(_ shape: [Int?]) -> String {
        "[" + shape.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
    }
}

/// An error type that can carry a `LayerError`: each head's own error, so that `HeadWeights` can
/// throw it directly.
public protocol LayerErrorConvertible: Error {
    /// The error that reports `error`.
    init(_ error: LayerError)
}

extension LayerError: LayerErrorConvertible {
    /// `error` itself.
    public init(_ error: LayerError) { self = error }
}

/// The scalars of a layer's optional bias, which must be `[channels]`.
func biasScalars(_ bias: Tensor?, channels: Int, layer: String) throws(LayerError) -> [Float]? {
    guard let bias else { return nil }
    guard bias.shape == [channels] else {
        throw .weightShape(layer: layer + ".bias", expected: "[\(channels)]", actual: bias.shape)
    }
    return bias.scalars
}
