import Foundation

/// Why a tensor file (safetensors, sharded safetensors index, `.npy`) could not be read or written.
///
/// Every case names the file, and where it applies the tensor, so that the message alone tells
/// the user what to fix.
public enum TensorFileError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The file could not be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// The file is shorter than its own header says.
    case truncated(path: String, reason: String)
    /// The header is not what the format requires.
    case invalidHeader(path: String, reason: String)
    /// A tensor's element type is not one this library reads.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// A tensor's declared shape does not match its byte count.
    case byteCountMismatch(path: String, tensor: String, shape: [Int], dtype: String, bytes: Int)
    /// Tensors overlap, leave gaps, or run past the end of the data section.
    case invalidOffsets(path: String, tensor: String, reason: String)
    /// A tensor that was asked for is not in the file.
    case missingTensor(path: String, tensor: String)
    /// A tensor appears twice (in one index, or in two shards).
    case duplicateTensor(path: String, tensor: String)
    /// The file could not be written.
    case writeFailed(path: String, reason: String)
    /// A checkpoint's pickle asks for an opcode or global the restricted reader never runs.
    case rejectedPickle(path: String, offset: Int, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .truncated(path, reason): return "\(path): file is truncated: \(reason)"
        case let .invalidHeader(path, reason): return "\(path): invalid header: \(reason)"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)' has unsupported dtype \(dtype)"
        case let .byteCountMismatch(path, tensor, shape, dtype, bytes):
            return "\(path): tensor '\(tensor)' of shape \(shape) and dtype \(dtype) cannot occupy \(bytes) bytes"
        case let .invalidOffsets(path, tensor, reason): return "\(path): tensor '\(tensor)': \(reason)"
        case let .missingTensor(path, tensor): return "\(path): no tensor named '\(tensor)'"
        case let .duplicateTensor(path, tensor): return "\(path): tensor '\(tensor)' appears more than once"
        case let .writeFailed(path, reason): return "\(path): cannot write: \(reason)"
        case let .rejectedPickle(path, offset, reason):
            return "\(path): refused to unpickle: \(reason) at byte \(offset) of data.pkl (only tensors, dicts, lists and plain values are read)"
        }
    }

    public var errorDescription: String? { description }
}
