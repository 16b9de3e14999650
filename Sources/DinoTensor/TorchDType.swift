/// Element types of torch storages and tensors.
enum TorchDType: Sendable, Equatable {
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool, uint16, uint32, uint64
    /// A dtype torch has but this reader does not convert (float8, complex, packed bits).
    case unsupported(String)

    /// The name after `torch.` (`float32`).
    var name: String {
        switch self {
        case .float32: "float32"
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .float64: "float64"
        case .int64: "int64"
        case .int32: "int32"
        case .int16: "int16"
        case .int8: "int8"
        case .uint8: "uint8"
        case .bool: "bool"
        case .uint16: "uint16"
        case .uint32: "uint32"
        case .uint64: "uint64"
        case .unsupported(let name): name
        }
    }

    /// Bytes per element, nil when unsupported.
    var byteSize: Int? {
        switch self {
        case .float64, .int64, .uint64: 8
        case .float32, .int32, .uint32: 4
        case .float16, .bfloat16, .int16, .uint16: 2
        case .int8, .uint8, .bool: 1
        case .unsupported: nil
        }
    }

    private static let supported: [TorchDType] = [
        .float32, .float16, .bfloat16, .float64, .int64, .int32, .int16, .int8, .uint8, .bool, .uint16, .uint32, .uint64,
    ]
    /// Dtypes torch 2.x serialises through `_rebuild_tensor_v3` that are not converted.
    private static let unconverted = [
        "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2",
        "complex32", "complex64", "complex128", "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
    ]

    /// The dtype `torch.<name>` names, if it is one.
    init?(torchName: String) {
        if let known = Self.supported.first(where: { $0.name == torchName }) {
            self = known
        } else if Self.unconverted.contains(torchName) {
            self = .unsupported(torchName)
        } else {
            return nil
        }
    }

    /// The element type of a legacy typed storage class (`torch.FloatStorage`).
    init?(storageClass: String) {
        let table: [String: TorchDType] = [
            "FloatStorage": .float32, "HalfStorage": .float16, "BFloat16Storage": .bfloat16, "DoubleStorage": .float64,
            "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
            "ByteStorage": .uint8, "BoolStorage": .bool,
        ]
        guard let dtype = table[storageClass] else { return nil }
        self = dtype
    }
}
