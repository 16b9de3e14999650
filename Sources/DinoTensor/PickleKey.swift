/// A hashable dict key, with Python's equalities (`True == 1`, `1.0 == 1`).
indirect enum PickleKey: Hashable {
    case string(String)
    case int(Int64)
    case float(UInt64)
    case none
    case bytes([UInt8])
    case tuple([PickleKey])

    init?(_ value: PickleValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        case .bool(let b): self = .int(b ? 1 : 0)
        case .float(let f):
            if f.rounded() == f, let exact = Int64(exactly: f) { self = .int(exact) } else { self = .float(f.bitPattern) }
        case .none: self = .none
        case .bytes(let b): self = .bytes(b)
        case .tuple(let t):
            var keys: [PickleKey] = []
            for item in t.items {
                guard let key = PickleKey(item) else { return nil }
                keys.append(key)
            }
            self = .tuple(keys)
        default: return nil
        }
    }

    /// How the key appears in a flattened name: strings as they are, others as Python prints them.
    var text: String {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        case .float(let bits): "\(Double(bitPattern: bits))"
        case .none: "None"
        case .bytes(let b): "b'" + b.map { String($0, radix: 16) }.joined(separator: " ") + "'"
        case .tuple(let items): "(" + items.map(\.text).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        }
    }
}
