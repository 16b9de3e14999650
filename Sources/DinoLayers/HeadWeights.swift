import DinoTensor

/// A strict reader of one head's tensors (PyTorch names, verbatim): every tensor read is checked
/// against the shape the head's other tensors imply, and `checkAllUsed` rejects leftovers. Errors
/// come as the head's own error type, naming the file and the tensor.
public struct HeadWeights<Failure: LayerErrorConvertible> {
    /// The tensors, the head's and nothing else (see `HeadCheckpoint.weights(of:)`).
    public let source: any TensorSource
    /// Prepended to every name asked for (`decode_head.` for the dinov2 heads).
    public let prefix: String
    private let names: Set<String>
    /// Full names of the tensors read so far.
    public private(set) var used = Set<String>()

    /// A reader of `source`'s tensors under `prefix`.
    public init(source: any TensorSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
        names = Set(source.tensorNames)
    }

    /// The file the tensors come from, for messages.
    public var file: String { source.location(of: source.tensorNames.first ?? "") }

    /// Whether `prefix + name` exists.
    public func has(_ name: String) -> Bool { names.contains(prefix + name) }

    /// The declared shape of `name`, or nil when absent or unreadable.
    public func shape(_ name: String) -> [Int]? {
        guard has(name) else { return nil }
        return try? source.shape(of: prefix + name)
    }

    /// Reads `name`, whose shape must match `expected` (nil entries match any extent).
    public mutating func take(_ name: String, _ expected: [Int?]) throws(Failure) -> Tensor {
        let key = prefix + name
        guard names.contains(key) else { throw Failure(.missingTensor(key: key, file: source.location(of: key))) }
        let actual: [Int]
        do {
            actual = try source.shape(of: key)
        } catch {
            throw Failure(.tensorFile(error))
        }
        let fits = actual.count == expected.count && zip(actual, expected).allSatisfy { $1 == nil || $0 == $1 }
        guard fits else { throw Failure(.tensorShape(key: key, file: source.location(of: key), expected: expected, actual: actual)) }
        used.insert(key)
        do {
            return try source.tensor(key)
        } catch {
            throw Failure(.tensorFile(error))
        }
    }

    /// A `Conv2d` from `<name>.weight` `[O, I, K, K]` (and `<name>.bias` `[O]` when `bias`).
    public mutating func conv(_ name: String, in inChannels: Int?, out outChannels: Int?, kernel: Int, bias: Bool,
                              stride: Int = 1, padding: Int = 0) throws(Failure) -> Conv2d {
        let weight = try take(name + ".weight", [outChannels, inChannels, kernel, kernel])
        let b = bias ? try take(name + ".bias", [weight.shape[0]]) : nil
        do {
            return try Conv2d(weight: weight, bias: b, stride: stride, padding: padding, name: prefix + name)
        } catch {
            throw Failure(error)
        }
    }

    /// A `ConvTranspose2d` from `<name>.weight` `[I, O, K, K]` and `<name>.bias` `[O]`.
    public mutating func convTranspose(_ name: String, channels: Int, kernel: Int, stride: Int) throws(Failure) -> ConvTranspose2d {
        let weight = try take(name + ".weight", [channels, channels, kernel, kernel])
        let b = try take(name + ".bias", [channels])
        do {
            return try ConvTranspose2d(weight: weight, bias: b, stride: stride, name: prefix + name)
        } catch {
            throw Failure(error)
        }
    }

    /// A `Dense` from `<name>.weight` `[O, I]` and `<name>.bias` `[O]`.
    public mutating func dense(_ name: String, in inFeatures: Int, out outFeatures: Int) throws(Failure) -> Dense {
        let weight = try take(name + ".weight", [outFeatures, inFeatures])
        let b = try take(name + ".bias", [outFeatures])
        do {
            return try Dense(weight: weight, bias: b, name: prefix + name)
        } catch {
            throw Failure(error)
        }
    }

    /// Fails on the first tensor of the source that was not read.
    public func checkAllUsed() throws(Failure) {
        if let extra = source.tensorNames.first(where: { !used.contains($0) }) {
            throw Failure(.unexpectedTensor(key: extra, file: source.location(of: extra)))
        }
    }
}
