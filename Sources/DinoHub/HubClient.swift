import DinoTensor
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How far the download of one file has got, for a progress bar.
public struct HubProgress: Sendable, Equatable {
    /// The file's path in the repository (`model.safetensors`).
    public let fileName: String
    /// Bytes on disk so far, including those kept from an earlier, interrupted run.
    public let bytesDone: Int64
    /// The file's full size.
    public let totalBytes: Int64

    /// A progress report.
    public init(fileName: String, bytesDone: Int64, totalBytes: Int64) {
        self.fileName = fileName
        self.bytesDone = bytesDone
        self.totalBytes = totalBytes
    }
}

/// Downloads models from the Hugging Face hub into the shared cache, and finds them there
/// when offline.
///
/// Files are fetched the way huggingface_hub fetches them (a `HEAD` for the metadata, then a
/// resumable, verified `GET`), so a cache filled by either tool serves the other.
public struct HubClient: Sendable {
    /// The hub's base URL.
    public let endpoint: URL
    /// Where models are stored.
    public let cache: HubCache
    /// A user access token for gated and private repositories.
    public let token: String?
    /// When true, no request is made and only the cache is used.
    public let offline: Bool
    /// Called as downloads advance, on a background thread.
    public let progress: (@Sendable (HubProgress) -> Void)?

    /// How many times one file's transfer is tried before giving up.
    static let maximumAttempts = 3
    /// Seconds a metadata request may go unanswered (huggingface_hub's default is 10).
    static let metadataTimeout: TimeInterval = 10
    /// Seconds a download may go without receiving data.
    static let downloadTimeout: TimeInterval = 60
    static let userAgent = "DinoHub/1.0 (dinov2-swift; Swift)"

    /// A client; every default follows huggingface_hub's environment variables.
    public init(
        endpoint: URL = HubClient.defaultEndpoint(),
        cache: HubCache = HubCache(),
        token: String? = HubClient.defaultToken(),
        offline: Bool = HubClient.defaultOffline(),
        progress: (@Sendable (HubProgress) -> Void)? = nil
    ) {
        self.endpoint = endpoint
        self.cache = cache
        self.token = token
        self.offline = offline
        self.progress = progress
    }

    /// `$HF_ENDPOINT`, else `https://huggingface.co`.
    ///
    /// A value that is not an absolute http(s) URL is ignored rather than fatal, so that a
    /// stray variable cannot stop offline use of the cache.
    public static func defaultEndpoint(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let text = (environment["HF_ENDPOINT"] ?? "").trimmingCharacters(in: .whitespaces)
        var trimmed = Substring(text)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if let url = URL(string: String(trimmed)), let scheme = url.scheme?.lowercased(),
           scheme == "http" || scheme == "https", url.host != nil {
            return url
        }
        guard let huggingFace = URL(string: "https://huggingface.co") else { preconditionFailure("constant URL") }
        return huggingFace
    }

    /// `$HF_TOKEN`, else the token file huggingface_hub's `login` writes
    /// (`$HF_HOME/token`, by default `~/.cache/huggingface/token`), else nil.
    public static func defaultToken(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let token = environment["HF_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty {
            return token
        }
        let file = HubCache.huggingFaceHome(environment: environment).appendingPathComponent("token")
        guard let data = try? InputFile.contents(of: file),
              let token = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              !token.isEmpty else { return nil }
        return token
    }

    /// Whether `$HF_HUB_OFFLINE` is one of `1`, `ON`, `YES`, `TRUE` (any case).
    public static func defaultOffline(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard let value = environment["HF_HUB_OFFLINE"] else { return false }
        return ["1", "ON", "YES", "TRUE"].contains(value.trimmingCharacters(in: .whitespaces).uppercased())
    }

    /// The snapshot folder (`snapshots/{commit}/`) holding the model's `config.json`, its
    /// weights (`model.safetensors`, or `model.safetensors.index.json` and every shard) and
    /// `preprocessor_config.json` when the repository has one, downloading what is missing.
    ///
    /// Offline, or when the hub cannot be reached, a complete snapshot already in the cache
    /// is used; blocks until done.
    public func modelFolder(for id: HubModelID) throws(HubError) -> URL {
        if offline { return try cache.cachedModelFolder(for: id) }
        do {
            return try downloadModel(id)
        } catch where error.isUnreachable {
            if let folder = try? cache.cachedModelFolder(for: id) { return folder }
            throw error
        }
    }

    // MARK: The model's files

    private func downloadModel(_ id: HubModelID) throws(HubError) -> URL {
        guard let config = try metadata(id, revision: id.revision, file: ModelFiles.config) else {
            throw .fileNotFound(repository: id.repository, revision: id.revision, file: ModelFiles.config,
                                url: resolveURL(id, revision: id.revision, file: ModelFiles.config).absoluteString)
        }
        // Everything after the first file is asked for by commit, so a branch that moves
        // mid-download cannot mix files of two commits.
        let commit = config.commit
        try fetch(config, id: id, commit: commit)

        if let weights = try metadata(id, revision: commit, file: ModelFiles.weights) {
            try fetch(weights, id: id, commit: commit)
        } else {
            guard let index = try metadata(id, revision: commit, file: ModelFiles.weightsIndex) else {
                throw .fileNotFound(repository: id.repository, revision: id.revision,
                                    file: "\(ModelFiles.weights) (or \(ModelFiles.weightsIndex))",
                                    url: resolveURL(id, revision: commit, file: ModelFiles.weights).absoluteString)
            }
            let indexURL = try fetch(index, id: id, commit: commit)
            for shard in try ModelFiles.shardNames(inIndexAt: indexURL) {
                guard let metadata = try metadata(id, revision: commit, file: shard) else {
                    throw .fileNotFound(repository: id.repository, revision: id.revision, file: shard,
                                        url: resolveURL(id, revision: commit, file: shard).absoluteString)
                }
                try fetch(metadata, id: id, commit: commit)
            }
        }

        if let preprocessor = try metadata(id, revision: commit, file: ModelFiles.preprocessor) {
            try fetch(preprocessor, id: id, commit: commit)
        }
        // The ref moves last: until the new snapshot is complete, an offline run keeps using
        // the snapshot the ref pointed at before.
        try cache.writeRef(for: id, commit: commit)
        return cache.snapshotFolder(for: id, commit: commit)
    }

    // MARK: Metadata (HEAD)

    /// What the hub says about one file: the commit it belongs to, its etag, size, and where
    /// to download it.
    struct FileMetadata {
        let file: String
        let commit: String
        let etag: String
        let size: Int64
        let downloadURL: URL
    }

    /// The file's metadata, or nil when the hub answers that the file does not exist.
    func metadata(_ id: HubModelID, revision: String, file: String) throws(HubError) -> FileMetadata? {
        var url = resolveURL(id, revision: revision, file: file)
        // Renamed repositories answer with a relative redirect that is not yet the file's
        // metadata; huggingface_hub follows those and stops at the first real answer.
        for _ in 0..<5 {
            let outcome = HTTPTransport.perform(
                request(url, method: "HEAD"), followRedirects: false, credentialOrigin: endpoint,
                timeout: Self.metadataTimeout)
            guard let response = outcome.response else {
                throw .network(url: url.absoluteString, reason: describe(outcome.error))
            }
            let isRedirect = (300..<400).contains(response.status)
            if isRedirect, response.header("X-Repo-Commit") == nil, let location = response.header("Location"),
               URL(string: location)?.host == nil, let next = URL(string: location, relativeTo: endpoint)?.absoluteURL {
                url = next
                continue
            }
            guard (200..<300).contains(response.status) || isRedirect else {
                if response.status == 404, (response.header("X-Error-Code") ?? "EntryNotFound") == "EntryNotFound" {
                    try recordMissing(id, file: file, response: response)
                    return nil
                }
                throw statusError(response, id: id, file: file, url: url)
            }
            return try parseMetadata(response, file: file, url: url, isRedirect: isRedirect)
        }
        throw .invalidResponse(url: url.absoluteString, reason: "too many redirects")
    }

    private func parseMetadata(_ response: HTTPResponseHead, file: String, url: URL, isRedirect: Bool) throws(HubError) -> FileMetadata {
        guard let commit = response.header("X-Repo-Commit"), HubModelID.isCommitHash(commit) else {
            throw .invalidResponse(url: url.absoluteString, reason: "no X-Repo-Commit header with a 40-hex commit")
        }
        guard let rawEtag = response.header("X-Linked-Etag") ?? response.header("ETag") else {
            throw .invalidResponse(url: url.absoluteString, reason: "no ETag header")
        }
        let etag = Self.normalizeEtag(rawEtag)
        // The etag names a file in blobs/, so it must be a plain file name.
        guard !etag.isEmpty, !etag.hasPrefix("."), etag.utf8.allSatisfy(Self.isEtagByte) else {
            throw .invalidResponse(url: url.absoluteString, reason: "ETag '\(rawEtag)' is not a hash")
        }
        guard let sizeText = response.header("X-Linked-Size") ?? response.header("Content-Length"),
              let size = Int64(sizeText), size >= 0 else {
            throw .invalidResponse(url: url.absoluteString, reason: "no X-Linked-Size or Content-Length header with a size")
        }
        var downloadURL = url
        if isRedirect {
            guard let location = response.header("Location"),
                  let target = URL(string: location, relativeTo: endpoint)?.absoluteURL else {
                throw .invalidResponse(url: url.absoluteString, reason: "HTTP \(response.status) without a usable Location header")
            }
            downloadURL = target
        }
        return FileMetadata(file: file, commit: commit, etag: etag, size: size, downloadURL: downloadURL)
    }

    /// Leaves huggingface_hub's `.no_exist` marker, so that its offline mode also knows the
    /// file is absent at this commit.
    private func recordMissing(_ id: HubModelID, file: String, response: HTTPResponseHead) throws(HubError) {
        guard let commit = response.header("X-Repo-Commit"), HubModelID.isCommitHash(commit) else { return }
        try FileSystem.touch(cache.noExistMarkerURL(for: id, commit: commit, file: file))
    }

    static func normalizeEtag(_ raw: String) -> String {
        var etag = Substring(raw)
        if etag.hasPrefix("W/") { etag = etag.dropFirst(2) }
        return etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    private static func isEtagByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }

    // MARK: Requests

    /// `{endpoint}/{org}/{name}/resolve/{revision}/{file}`, the revision encoded as one path
    /// segment (`refs%2Fpr%2F1`) as the hub expects.
    func resolveURL(_ id: HubModelID, revision: String, file: String) -> URL {
        let base = endpoint.absoluteString.hasSuffix("/") ? String(endpoint.absoluteString.dropLast()) : endpoint.absoluteString
        let path = [id.organization, id.name, "resolve", Self.percentEncode(revision, keepSlash: false),
                    Self.percentEncode(file, keepSlash: true)].joined(separator: "/")
        return URL(string: "\(base)/\(path)") ?? endpoint.appendingPathComponent(path)
    }

    private static func percentEncode(_ text: String, keepSlash: Bool) -> String {
        var allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        if keepSlash { allowed.insert("/") }
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    func request(_ url: URL, method: String, range start: Int64 = 0) -> URLRequest {
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue(Self.userAgent, forHTTPHeaderField: "User-Agent")
        // Sizes and checksums are of the stored bytes, so no transfer compression.
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        if let token, HTTPTransport.sameOrigin(url, endpoint) {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        if start > 0 { request.setValue("bytes=\(start)-", forHTTPHeaderField: "Range") }
        return request
    }

    func statusError(_ response: HTTPResponseHead, id: HubModelID, file: String, url: URL) -> HubError {
        // A refusal from the CDN (an expired signed URL) is not about the token.
        let fromHub = HTTPTransport.sameOrigin(url, endpoint)
        switch (response.status, response.header("X-Error-Code")) {
        case (401, _) where fromHub, (403, _) where fromHub:
            return .accessDenied(repository: id.repository, status: response.status, url: url.absoluteString,
                                 tokenSent: token != nil)
        case (404, "RepoNotFound"):
            return .repositoryNotFound(repository: id.repository, url: url.absoluteString)
        case (404, "RevisionNotFound"):
            return .revisionNotFound(repository: id.repository, revision: id.revision, url: url.absoluteString)
        case (404, _):
            return .fileNotFound(repository: id.repository, revision: id.revision, file: file, url: url.absoluteString)
        default:
            return .httpStatus(status: response.status, url: url.absoluteString)
        }
    }

    func describe(_ error: (any Error)?) -> String {
        guard let error else { return "no response" }
        return error.localizedDescription
    }
}
