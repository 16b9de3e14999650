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
    /// A file names a path (`entry`) that is absolute or leaves `folder` through `..`.
    case pathOutsideFolder(path: String, entry: String, folder: String)

    public var description: String { "\(path): \(detail)" }

    /// The file the error is about.
    public var path: String {
        switch self {
        case let .cannotOpen(path, _), let .truncated(path, _), let .invalidHeader(path, _), let .unsupportedDType(path, _, _),
            let .byteCountMismatch(path, _, _, _, _), let .invalidOffsets(path, _, _), let .missingTensor(path, _),
            let .duplicateTensor(path, _), let .writeFailed(path, _), let .rejectedPickle(path, _, _), let .pathOutsideFolder(path, _, _):
            return path
        }
    }

    /// What is wrong, without the file's path (for errors of other modules that name it themselves).
    public var detail: String {
        switch self {
        case let .cannotOpen(_, reason): return "cannot open: \(reason)"
        case let .truncated(_, reason): return "file is truncated: \(reason)"
        case let .invalidHeader(_, reason): return "invalid header: \(reason)"
        case let .unsupportedDType(_, tensor, dtype): return "tensor '\(tensor)' has unsupported dtype \(dtype)"
        case let .byteCountMismatch(_, tensor, shape, dtype, bytes):
            return "tensor '\(tensor)' of shape \(shape) and dtype \(dtype) cannot occupy \(bytes) bytes"
        case let .invalidOffsets(_, tensor, reason): return "tensor '\(tensor)': \(reason)"
        case let .missingTensor(_, tensor): return "no tensor named '\(tensor)'"
        case let .duplicateTensor(_, tensor): return "tensor '\(tensor)' appears more than once"
        case let .writeFailed(_, reason): return "cannot write: \(reason)"
        case let .rejectedPickle(_, offset, reason):
            return "refused to unpickle: \(reason) at byte \(offset) of data.pkl (only tensors, dicts, lists and plain values are read)"
        case let .pathOutsideFolder(_, entry, folder):
            return "names '\(entry)', which is not inside \(folder) (paths read from a file must be relative and without '..')"
        }
    }

    public var errorDescription: String? { description }
}
