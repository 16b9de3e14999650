import Foundation

/// Why a model could not be found, downloaded, verified or stored.
///
/// Every case names what the user needs to act: the repository and revision, the file, the
/// URL, the status, the expected and actual size or checksum, or the cache folder.
public enum HubError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The text is not a hub id of the form `org/name` or `org/name@revision`.
    case invalidModelID(text: String, reason: String)
    /// The hub refused access (401/403): the repository is gated or private, or does not exist.
    case accessDenied(repository: String, status: Int, url: String, tokenSent: Bool)
    /// The hub has no repository with this id.
    case repositoryNotFound(repository: String, url: String)
    /// The repository has no branch, tag or commit with this name.
    case revisionNotFound(repository: String, revision: String, url: String)
    /// The repository has no such file at this revision.
    case fileNotFound(repository: String, revision: String, file: String, url: String)
    /// The server answered with a status this client does not handle.
    case httpStatus(status: Int, url: String)
    /// The request did not get an answer: DNS, connection, TLS, proxy or timeout.
    case network(url: String, reason: String)
    /// The connection kept closing before the whole file arrived.
    case interruptedTransfer(file: String, url: String, received: Int64, expected: Int64, attempts: Int)
    /// The server's answer lacks a header the download protocol needs, or it is malformed.
    case invalidResponse(url: String, reason: String)
    /// The downloaded file does not have the size the hub announced.
    case sizeMismatch(file: String, url: String, expected: Int64, actual: Int64)
    /// The downloaded file's SHA-256 is not the one the hub announced.
    case checksumMismatch(file: String, url: String, expected: String, actual: String)
    /// Offline (or unreachable hub) and a needed file is not in the cache.
    case notInCache(repository: String, revision: String, missing: String, cachePath: String)
    /// A sharded checkpoint's index cannot be used.
    case invalidIndex(path: String, reason: String)
    /// A cache file or folder could not be created, written, renamed or linked.
    case fileSystem(path: String, reason: String)

    /// A message that names what failed and what to do about it.
    public var description: String {
        switch self {
        case let .invalidModelID(text, reason):
            return "'\(text)' is not a hub model id (org/name or org/name@revision): \(reason)"
        case let .accessDenied(repository, status, url, tokenSent):
            let advice = tokenSent
                ? "the token in HF_TOKEN does not give access; request access on the model's page with the account that owns the token"
                : "set HF_TOKEN to a token of an account that has access (accept the model's conditions on its page first)"
            return "\(repository) is gated or private, or does not exist (HTTP \(status) for \(url)): \(advice)"
        case let .repositoryNotFound(repository, url):
            return "no model repository \(repository) on the hub (\(url)); check the id, or set HF_TOKEN if it is private"
        case let .revisionNotFound(repository, revision, url):
            return "\(repository) has no branch, tag or commit '\(revision)' (\(url))"
        case let .fileNotFound(repository, revision, file, url):
            return "\(repository) at revision \(revision) has no file \(file) (\(url))"
        case let .httpStatus(status, url):
            return "HTTP \(status) for \(url)"
        case let .network(url, reason):
            return "cannot reach \(url): \(reason)"
        case let .interruptedTransfer(file, url, received, expected, attempts):
            return "download of \(file) from \(url) was interrupted \(attempts) times (have \(received) of \(expected) bytes); run again to resume"
        case let .invalidResponse(url, reason):
            return "unexpected answer from \(url): \(reason); is HF_ENDPOINT a Hugging Face hub, or is a proxy rewriting responses?"
        case let .sizeMismatch(file, url, expected, actual):
            return "\(file) from \(url) has \(actual) bytes, expected \(expected); the partial download was deleted"
        case let .checksumMismatch(file, url, expected, actual):
            return "\(file) from \(url) has SHA-256 \(actual), expected \(expected); the corrupt download was deleted"
        case let .notInCache(repository, revision, missing, cachePath):
            return "\(repository) (revision \(revision)) is not in the cache at \(cachePath): \(missing) is missing; connect to the network (and unset HF_HUB_OFFLINE) to download it"
        case let .invalidIndex(path, reason):
            return "\(path): invalid sharded checkpoint index: \(reason)"
        case let .fileSystem(path, reason):
            return "\(path): \(reason)"
        }
    }

    /// The same message as `description`, for `localizedDescription`.
    public var errorDescription: String? { description }

    /// Whether the failure means the hub could not be reached, so a complete cached snapshot
    /// may stand in (what huggingface_hub does when a request fails for lack of network).
    var isUnreachable: Bool {
        switch self {
        case .network, .interruptedTransfer: return true
        case .httpStatus(let status, _): return status >= 500
        default: return false
        }
    }
}
