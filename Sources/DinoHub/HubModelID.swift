import Foundation

/// A model repository on the Hugging Face hub and the revision to use, such as
/// `facebook/dinov2-with-registers-small@main`.
public struct HubModelID: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The user or organisation that owns the repository (`facebook`).
    public let organization: String
    /// The repository name (`dinov2-with-registers-small`).
    public let name: String
    /// A branch, tag or 40-hex commit (`main` unless the id says otherwise).
    public let revision: String

    /// The default revision, as on the hub.
    public static let defaultRevision = "main"

    /// `org/name`, as the hub and its URLs spell the repository.
    public var repository: String { "\(organization)/\(name)" }

    /// `org/name`, followed by `@revision` unless the revision is the default.
    public var description: String {
        revision == Self.defaultRevision ? repository : "\(repository)@\(revision)"
    }

    /// Whether `revision` is a full commit hash rather than a branch or tag name.
    public var revisionIsCommit: Bool { Self.isCommitHash(revision) }

    /// Parses `org/name` or `org/name@revision`.
    public init(_ text: String) throws(HubError) {
        let repository: Substring
        let revision: String
        // Repository names cannot contain `@`, so the first one starts the revision; a
        // revision may contain `@` and `/` (`refs/pr/1`) like any git ref.
        if let at = text.firstIndex(of: "@") {
            repository = text[..<at]
            revision = String(text[text.index(after: at)...])
        } else {
            repository = Substring(text)
            revision = Self.defaultRevision
        }
        let parts = repository.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw .invalidModelID(text: text, reason: "expected exactly one '/' between organisation and name")
        }
        try self.init(organization: String(parts[0]), name: String(parts[1]), revision: revision, text: text)
    }

    /// Builds an id from its parts, with the same validation as parsing.
    public init(organization: String, name: String, revision: String = HubModelID.defaultRevision) throws(HubError) {
        try self.init(organization: organization, name: name, revision: revision,
                      text: "\(organization)/\(name)@\(revision)")
    }

    private init(organization: String, name: String, revision: String, text: String) throws(HubError) {
        if let reason = Self.problem(inNamePart: organization, role: "organisation")
            ?? Self.problem(inNamePart: name, role: "name")
            ?? Self.problem(inRevision: revision) {
            throw .invalidModelID(text: text, reason: reason)
        }
        self.organization = organization
        self.name = name
        self.revision = revision
    }

    /// Whether a `--model` argument names a hub model rather than a folder: a path that
    /// exists on disk is always a folder; otherwise any valid `org/name[@revision]` is an id.
    public static func looksLikeHubID(_ text: String) -> Bool {
        if FileManager.default.fileExists(atPath: text) { return false }
        return (try? HubModelID(text)) != nil
    }

    /// Whether `text` is a full (40 hexadecimal digit) git commit hash.
    public static func isCommitHash(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy(Self.isLowercaseHexDigit)
    }

    static func isLowercaseHexDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }

    // ref: huggingface_hub `validate_repo_id`. `--` is refused as well because the cache
    // folder `models--{org}--{name}` uses it as the separator: with it, two ids could share
    // a folder.
    private static func problem(inNamePart part: String, role: String) -> String? {
        if part.isEmpty { return "the \(role) is empty" }
        if part.utf8.count > 96 { return "the \(role) is longer than 96 characters" }
        let allowed = part.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        if !allowed { return "the \(role) '\(part)' may only contain letters, digits, '.', '_' and '-'" }
        if part.hasPrefix(".") || part.hasPrefix("-") { return "the \(role) '\(part)' starts with '\(part.prefix(1))'" }
        if part.hasSuffix(".") || part.hasSuffix("-") { return "the \(role) '\(part)' ends with '\(part.suffix(1))'" }
        if part.contains("..") || part.contains("--") { return "the \(role) '\(part)' contains '..' or '--'" }
        return nil
    }

    // The revision becomes a path under `refs/` in the cache, so it must not be able to
    // climb out of it or name a folder.
    private static func problem(inRevision revision: String) -> String? {
        if revision.isEmpty { return "the revision after '@' is empty" }
        if revision.hasPrefix("/") || revision.hasSuffix("/") { return "the revision '\(revision)' starts or ends with '/'" }
        if revision.contains("..") { return "the revision '\(revision)' contains '..'" }
        if revision.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." }) {
            return "the revision '\(revision)' contains an empty or '.' path component"
        }
        if revision.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f || $0 == "\\" }) {
            return "the revision '\(revision)' contains whitespace, a control character or '\\'"
        }
        return nil
    }
}
