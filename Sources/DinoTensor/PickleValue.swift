/// A value built by the pickle machine.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    case callable(PickleCallable)
    case dtype(TorchDType)
    case storage(PickleStorage)
    case tensor(PickleTensor)

    /// Containers nested in this value, itself included (0 for a plain value or a tensor).
    var depth: Int {
        switch self {
        case .tuple(let t): t.depth
        case .list(let l): l.depth
        case .dict(let d): d.depth
        default: 0
        }
    }

    /// Whether a tensor is inside (or is) this value.
    var holdsTensor: Bool {
        switch self {
        case .tensor: true
        case .tuple(let t): t.holdsTensor
        case .list(let l): l.holdsTensor
        case .dict(let d): d.holdsTensor
        default: false
        }
    }

    /// Marks a list or dict as placed in another container, after which it may not change.
    func freeze() {
        switch self {
        case .list(let l): l.isFrozen = true
        case .dict(let d): d.isFrozen = true
        default: break
        }
    }

    /// The Python-ish type name, for error messages.
    var kind: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .callable(let c): c.qualifiedName
        case .dtype(let d): "torch.\(d.name)"
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }
}
