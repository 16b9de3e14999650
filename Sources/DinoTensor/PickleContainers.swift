/// An immutable tuple with its nesting depth and tensor flag computed once.
final class PickleTuple {
    let items: [PickleValue]
    let depth: Int
    let holdsTensor: Bool

    init(items: [PickleValue]) {
        self.items = items
        depth = 1 + (items.map(\.depth).max() ?? 0)
        holdsTensor = items.contains { $0.holdsTensor }
    }
}

/// A list being built; frozen once placed in another container.
final class PickleList {
    private(set) var items: [PickleValue] = []
    private(set) var depth = 1
    private(set) var holdsTensor = false
    var isFrozen = false

    func append(_ item: PickleValue) {
        items.append(item)
        depth = max(depth, 1 + item.depth)
        holdsTensor = holdsTensor || item.holdsTensor
    }
}

/// A dict (or OrderedDict) in insertion order; frozen once placed in another container.
final class PickleDict {
    private(set) var keys: [PickleKey] = []
    private(set) var values: [PickleValue] = []
    private(set) var positions: [PickleKey: Int] = [:]
    private(set) var depth = 1
    private(set) var holdsTensor = false
    var isFrozen = false

    func insert(_ key: PickleKey, _ value: PickleValue) {
        positions[key] = keys.count
        keys.append(key)
        values.append(value)
        depth = max(depth, 1 + value.depth)
        holdsTensor = holdsTensor || value.holdsTensor
    }

    /// The value under a key written as `text`.
    func value(forText text: String) -> PickleValue? {
        keys.firstIndex { $0.text == text }.map { values[$0] }
    }
}
