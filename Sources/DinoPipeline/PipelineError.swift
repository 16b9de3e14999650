import Foundation

/// Why a head could not be set up for the image tools, or its outputs not written.
public enum PipelineError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// `--head NAME=...` names no registered head.
    case unknownHead(name: String, known: [String])
    /// A head's argument (a file, a method) is not one it takes.
    case invalidArgument(head: String, argument: String, reason: String)
    /// An output file could not be moved into place.
    case cannotWrite(path: String, reason: String)
    /// A head's prediction does not fit the batch it was made for.
    case predictionMismatch(head: String, reason: String)

    /// The message, naming the head, argument or file.
    public var description: String {
        switch self {
        case let .unknownHead(name, known): return "no head named '\(name)'; known heads: \(known.joined(separator: ", "))"
        case let .invalidArgument(head, argument, reason): return "head \(head)=\(argument): \(reason)"
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        case let .predictionMismatch(head, reason): return "head \(head): \(reason)"
        }
    }

    /// The same message, for `localizedDescription`.
    public var errorDescription: String? { description }
}
