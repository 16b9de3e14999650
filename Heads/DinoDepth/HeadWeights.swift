import DinoLayers
import DinoTensor

/// Part of another tensor source, so that one checkpoint can feed two strict loaders: the
/// backbone's (which rejects tensors it does not use) and a head's.
public struct TensorSourceView: TensorSource {
    /// The source this view shows part of.
    public let base: any TensorSource
    /// Names in this view, in the base's order.
    public let tensorNames: [String]
    /// Name in this view -> name in `base`.
    private let baseNames: [String: String]

    /// The tensors of `base` whose names start with `prefix`, seen without it
    /// (`state_dict.decode_head.x` -> `decode_head.x` for the prefix `state_dict.`).
    public init(_ base: any TensorSource, prefix: String) {
        self.base = base
        var names: [String] = []
        var map: [String: String] = [:]
        for name in base.tensorNames where name.hasPrefix(prefix) {
            let visible = String(name.dropFirst(prefix.count))
            names.append(visible)
            map[visible] = name
        }
        tensorNames = names
        baseNames = map
    }

    /// The tensors of `base` for which `include` holds, under their own names.
    public init(_ base: any TensorSource, where include: (String) -> Bool) {
        self.base = base
        tensorNames = base.tensorNames.filter(include)
        baseNames = Dictionary(uniqueKeysWithValues: tensorNames.map { ($0, $0) })
    }

    private func resolve(_ name: String) throws(TensorFileError) -> String {
        guard let original = baseNames[name] else { throw .missingTensor(path: base.location(of: name), tensor: name) }
        return original
    }

    /// The shape of `name` in the base source.
    public func shape(of name: String) throws(TensorFileError) -> [Int] { try base.shape(of: try resolve(name)) }

    /// The tensor `name` of the base source.
    public func tensor(_ name: String) throws(TensorFileError) -> Tensor { try base.tensor(try resolve(name)) }

    /// Where the base source keeps `name`.
    public func location(of name: String) -> String { base.location(of: baseNames[name] ?? name) }
}

/// A strict reader of one head's tensors (PyTorch names, verbatim): every tensor read is checked
/// against the shape the head's other tensors imply, and `checkAllUsed` rejects leftovers.
struct HeadWeights {
    let source: any TensorSource
    /// Prepended to every name asked for (`decode_head.` for the dinov2 heads).
    let prefix: String
    private let names: Set<String>
    private(set) var used = Set<String>()

    init(source: any TensorSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
        names = Set(source.tensorNames)
    }

    /// The file the tensors come from, for messages.
    var file: String { source.location(of: source.tensorNames.first ?? "") }

    func has(_ name: String) -> Bool { names.contains(prefix + name) }

    /// The declared shape of `name`, or nil when absent.
    func shape(_ name: String) -> [Int]? {
        guard has(name) else { return nil }
        return try? source.shape(of: prefix + name)
    }

    /// Reads `name`, whose shape must match `expected` (nil entries match any extent).
    mutating func take(_ name: String, _ expected: [Int?]) throws(DepthError) -> Tensor {
        let key = prefix + name
        guard names.contains(key) else { throw .missingTensor(key: key, file: source.location(of: key)) }
        let actual: [Int]
        do {
            actual = try source.shape(of: key)
        } catch {
            throw .tensorFile(error)
        }
        let fits = actual.count == expected.count && zip(actual, expected).allSatisfy { $1 == nil || $0 == $1 }
        guard fits else {
            let text = "[" + expected.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
            throw .shapeMismatch(key: key, file: source.location(of: key), expected: text, actual: actual)
        }
        used.insert(key)
        do {
            return try source.tensor(key)
        } catch {
            throw .tensorFile(error)
        }
    }

    /// A `Conv2d` from `<name>.weight` `[O, I, K, K]` (and `<name>.bias` `[O]` when `bias`).
    mutating func conv(_ name: String, in inChannels: Int?, out outChannels: Int?, kernel: Int, bias: Bool,
                       stride: Int = 1, padding: Int = 0) throws(DepthError) -> Conv2d {
        let weight = try take(name + ".weight", [outChannels, inChannels, kernel, kernel])
        let b = bias ? try take(name + ".bias", [weight.shape[0]]) : nil
        do {
            return try Conv2d(weight: weight, bias: b, stride: stride, padding: padding, name: prefix + name)
        } catch {
            throw .layer(error)
        }
    }

    /// A `ConvTranspose2d` from `<name>.weight` `[I, O, K, K]` and `<name>.bias` `[O]`.
    mutating func convTranspose(_ name: String, channels: Int, kernel: Int, stride: Int) throws(DepthError) -> ConvTranspose2d {
        let weight = try take(name + ".weight", [channels, channels, kernel, kernel])
        let b = try take(name + ".bias", [channels])
        do {
            return try ConvTranspose2d(weight: weight, bias: b, stride: stride, name: prefix + name)
        } catch {
            throw .layer(error)
        }
    }

    /// A `Dense` from `<name>.weight` `[O, I]` and `<name>.bias` `[O]`.
    mutating func dense(_ name: String, in inFeatures: Int, out outFeatures: Int) throws(DepthError) -> Dense {
        let weight = try take(name + ".weight", [outFeatures, inFeatures])
        let b = try take(name + ".bias", [outFeatures])
        do {
            return try Dense(weight: weight, bias: b, name: prefix + name)
        } catch {
            throw .layer(error)
        }
    }

    /// Fails on the first tensor of the source that was not read.
    func checkAllUsed() throws(DepthError) {
        if let extra = source.tensorNames.first(where: { !used.contains($0) }) {
            throw .unexpectedTensor(key: extra, file: source.location(of: extra))
        }
    }
}
