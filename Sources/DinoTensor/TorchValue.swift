/// A non-tensor value of a PyTorch checkpoint (training metadata, class names, epoch counters),
/// as the restricted unpickler read it.
public enum TorchValue: Sendable, Equatable {
    /// Python `None`.
    case none
    /// A Python `bool`.
    case bool(Bool)
    /// A Python `int` that fits in 64 bits.
    case int(Int64)
    /// A Python `float`.
    case double(Double)
    /// A Python `str` (also a torch dtype or device, written as `torch.float32` / `cuda:0`).
    case string(String)
    /// Python `bytes`.
    case bytes([UInt8])
    /// A Python `list` or `tuple`.
    case list([TorchValue])
    /// A Python `dict`, in insertion order; keys that are not strings are written as Python prints them.
    case dict([Member])

    /// One key and value of a `dict`.
    public struct Member: Sendable, Equatable {
        /// The key.
        public var key: String
        /// The value.
        public var value: TorchValue

        /// A member.
        public init(key: String, value: TorchValue) {
            self.key = key
            self.value = value
        }
    }

    /// The value under `key` of a `dict`, nil for other values or a missing key.
    public subscript(key: String) -> TorchValue? {
        guard case .dict(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The string of a `.string`.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer of an `.int`.
    public var intValue: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }

    /// The number of a `.double` or `.int`.
    public var doubleValue: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }

    /// The flag of a `.bool`.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The items of a `.list`.
    public var arrayValue: [TorchValue]? {
        if case .list(let items) = self { return items }
        return nil
    }
}
