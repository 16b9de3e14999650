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
