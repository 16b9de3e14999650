import DinoTensor

/// Why a layer could not be built from its weights, or applied to an input.
public enum LayerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A weight has the wrong rank or shape.
    case weightShape(layer: String, expected: String, actual: [Int])
    /// The input does not fit the layer.
    case inputShape(layer: String, expected: String, actual: [Int])
    /// A hyper-parameter is impossible (stride 0, negative padding...).
    case invalidParameter(layer: String, reason: String)

    /// The message, naming the layer.
    public var description: String {
        switch self {
        case let .weightShape(layer, expected, actual): return "\(layer): weight of shape \(actual), expected \(expected)"
        case let .inputShape(layer, expected, actual): return "\(layer): input of shape \(actual), expected \(expected)"
        case let .invalidParameter(layer, reason): return "\(layer): \(reason)"
        }
    }
}

/// The scalars of a layer's optional bias, which must be `[channels]`.
func biasScalars(_ bias: Tensor?, channels: Int, layer: String) throws(LayerError) -> [Float]? {
    guard let bias else { return nil }
    guard bias.shape == [channels] else {
        throw .weightShape(layer: layer + ".bias", expected: "[\(channels)]", actual: bias.shape)
    }
    return bias.scalars
}
