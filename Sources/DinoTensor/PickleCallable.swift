/// The only globals `GLOBAL` / `STACK_GLOBAL` resolve.
enum PickleCallable: Sendable, Equatable {
    case orderedDict
    case rebuildTensorV2, rebuildTensorV3, rebuildParameter, rebuildParameterWithState
    case storageType(TorchDType)
    case untypedStorage
    case torchSize, torchDevice

    init?(qualifiedName: String) {
        switch qualifiedName {
        case "collections.OrderedDict": self = .orderedDict
        case "torch._utils._rebuild_tensor_v2": self = .rebuildTensorV2
        case "torch._utils._rebuild_tensor_v3": self = .rebuildTensorV3
        case "torch._utils._rebuild_parameter": self = .rebuildParameter
        case "torch._utils._rebuild_parameter_with_state": self = .rebuildParameterWithState
        case "torch.storage.UntypedStorage": self = .untypedStorage
        case "torch.Size": self = .torchSize
        case "torch.device": self = .torchDevice
        default:
            guard qualifiedName.hasPrefix("torch."), let dtype = TorchDType(storageClass: String(qualifiedName.dropFirst(6))) else {
                return nil
            }
            self = .storageType(dtype)
        }
    }

    var qualifiedName: String {
        switch self {
        case .orderedDict: "collections.OrderedDict"
        case .rebuildTensorV2: "torch._utils._rebuild_tensor_v2"
        case .rebuildTensorV3: "torch._utils._rebuild_tensor_v3"
        case .rebuildParameter: "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: "torch._utils._rebuild_parameter_with_state"
        case .storageType(let dtype): "torch.\(Self.storageClassName(dtype))"
        case .untypedStorage: "torch.storage.UntypedStorage"
        case .torchSize: "torch.Size"
        case .torchDevice: "torch.device"
        }
    }

    private static func storageClassName(_ dtype: TorchDType) -> String {
        switch dtype {
        case .float32: "FloatStorage"
        case .float16: "HalfStorage"
        case .bfloat16: "BFloat16Storage"
        case .float64: "DoubleStorage"
        case .int64: "LongStorage"
        case .int32: "IntStorage"
        case .int16: "ShortStorage"
        case .int8: "CharStorage"
        case .uint8: "ByteStorage"
        case .bool: "BoolStorage"
        default: "Storage(\(dtype.name))"
        }
    }
}
