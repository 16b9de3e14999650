import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension HubClient {
    /// Makes sure `blobs/{etag}` holds the file (downloading it unless it is there with the
    /// right size) and links it into `snapshots/{commit}/`; returns the snapshot path.
    @discardableResult
    func fetch(_ metadata: FileMetadata, id: HubModelID, commit: String) throws(HubError) -> URL {
        try FileSystem.withExclusiveLock(cache.lockURL(for: id, etag: metadata.etag)) { () throws(HubError) -> URL in
            let blob = cache.blobURL(for: id, etag: metadata.etag)
            if FileSystem.fileSize(blob) != metadata.size {
                try downloadBlob(metadata, id: id, to: blob)
            }
            return try cache.linkSnapshotFile(for: id, commit: commit, file: metadata.file, etag: metadata.etag)
        }
    }

    /// Downloads into `blobs/{etag}.incomplete` (resuming what an earlier run left), verifies
    /// size and SHA-256, and only then renames the file to `blobs/{etag}`: a blob under its
    /// final name is always complete and verified.
    private func downloadBlob(_ metadata: FileMetadata, id: HubModelID, to blob: URL) throws(HubError) {
        let incomplete = cache.incompleteBlobURL(for: id, etag: metadata.etag)
        let url = metadata.downloadURL.absoluteString
        // LFS files are named by the SHA-256 of their content; other files by their git blob
        // id, which is not checked (they are small and come straight from the hub).
        let etagIsSHA256 = metadata.etag.utf8.count == 64 && metadata.etag.utf8.allSatisfy(HubModelID.isLowercaseHexDigit)
        try FileSystem.createDirectory(blob.deletingLastPathComponent())
        let writer = try BlobWriter(
            url: incomplete, file: metadata.file, sourceURL: url, expectedSize: metadata.size,
            hashing: etagIsSHA256, progress: progress)
        defer { writer.close() }

        do throws(HubError) {
            var attempts = 0
            while writer.size < metadata.size {
                guard attempts < Self.maximumAttempts else {
                    throw .interruptedTransfer(file: metadata.file, url: url, received: writer.size,
                                               expected: metadata.size, attempts: attempts)
                }
                attempts += 1
                do throws(HubError) {
                    try transfer(metadata, id: id, into: writer)
                } catch {
                    // A dropped connection is resumed; anything else (a refusal, a full
                    // disk, a corrupt answer) would only fail again.
                    guard case .network = error else { throw error }
                }
            }
            guard writer.size == metadata.size else {
                throw .sizeMismatch(file: metadata.file, url: url, expected: metadata.size, actual: writer.size)
            }
            if etagIsSHA256 {
                let actual = writer.finalizeSHA256()
                guard actual == metadata.etag else {
                    throw .checksumMismatch(file: metadata.file, url: url, expected: metadata.etag, actual: actual)
                }
            }
            try writer.synchronize()
        } catch {
            switch error {
            case .sizeMismatch, .checksumMismatch:
                // Resuming a file with wrong bytes can never succeed: start over next time.
                writer.close()
                try? FileSystem.removeIfPresent(incomplete)
            default:
                break
            }
            throw error
        }
        writer.close()
        try FileSystem.moveAtomically(incomplete, to: blob)
    }

    /// One `GET` of the rest of the file, appended to `writer`.
    private func transfer(_ metadata: FileMetadata, id: HubModelID, into writer: BlobWriter) throws(HubError) {
        let start = writer.size
        let url = metadata.downloadURL
        let outcome = HTTPTransport.perform(
            request(url, method: "GET", range: start), followRedirects: true, credentialOrigin: endpoint,
            timeout: Self.downloadTimeout,
            onResponse: { response in writer.begin(response, requestedStart: start) },
            onData: { data in writer.append(data) })
        if let failure = writer.takeFailure() { throw failure }
        if let response = outcome.response, !(200..<300).contains(response.status) {
            if response.status == 416 {
                // The server cannot serve the rest from where the partial file ends: start over.
                try writer.restart()
                throw .network(url: url.absoluteString, reason: "the server cannot resume at byte \(start) (HTTP 416)")
            }
            throw statusError(response, id: id, file: metadata.file, url: url)
        }
        if let error = outcome.error { throw .network(url: url.absoluteString, reason: describe(error)) }
    }
}

/// The `.incomplete` file of one download: appends, hashes and reports progress as the body
/// arrives.
///
/// The session's delegate queue calls `begin` and `append` while the owning thread waits for
/// the exchange, and the owner reads the state only after the wait, so it is never accessed
/// from two threads at once.
private final class BlobWriter {
    private let url: URL
    private let file: String
    private let sourceURL: String
    private let expectedSize: Int64
    private let progress: (@Sendable (HubProgress) -> Void)?
    private var handle: FileHandle?
    private var hasher: SHA256Hasher?
    private var failure: HubError?
    private var lastReported: Int64 = -1
    private(set) var size: Int64 = 0

    /// Progress is reported at most once per this many bytes (and at the end), so that a
    /// terminal progress bar is not redrawn for every network packet.
    private static let reportInterval: Int64 = 1 << 20

    init(url: URL, file: String, sourceURL: String, expectedSize: Int64, hashing: Bool,
         progress: (@Sendable (HubProgress) -> Void)?) throws(HubError) {
        self.url = url
        self.file = file
        self.sourceURL = sourceURL
        self.expectedSize = expectedSize
        self.progress = progress
        if !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw .fileSystem(path: url.path, reason: "cannot create the download file")
            }
        }
        do {
            let handle = try FileHandle(forUpdating: url)
            self.handle = handle
            size = Int64(try handle.seekToEnd())
        } catch {
            throw .fileSystem(path: url.path, reason: "cannot open the download file: \(error.localizedDescription)")
        }
        // Longer than the file can be: not a prefix of it.
        if size > expectedSize { try restart() }
        if hashing {
            var hasher = SHA256Hasher()
            try hasher.update(contentsOf: url, length: size)
            self.hasher = hasher
        }
        report(force: true)
    }

    /// Decides whether to accept the response body; called before any of it arrives.
    func begin(_ response: HTTPResponseHead, requestedStart start: Int64) -> Bool {
        guard (200..<300).contains(response.status) else { return false }
        guard start > 0 else { return true }
        if response.status == 206 {
            // `Content-Range: bytes {first}-{last}/{total}`: the body must continue the file.
            let first = response.header("Content-Range").flatMap { range -> Int64? in
                guard range.hasPrefix("bytes ") else { return nil }
                return Int64(range.dropFirst(6).prefix { $0 != "-" })
            }
            guard first == start else {
                failure = .invalidResponse(url: sourceURL, reason: "asked for bytes from \(start), got Content-Range '\(response.header("Content-Range") ?? "")'")
                return false
            }
            return true
        }
        // A server that ignores `Range` sends the whole file again.
        do { try restart() } catch {
            failure = error
            return false
        }
        return true
    }

    func append(_ data: Data) -> Bool {
        guard failure == nil, let handle else { return false }
        guard size + Int64(data.count) <= expectedSize else {
            failure = .sizeMismatch(file: file, url: sourceURL, expected: expectedSize, actual: size + Int64(data.count))
            return false
        }
        do {
            try handle.write(contentsOf: data)
        } catch {
            failure = .fileSystem(path: url.path, reason: "cannot write: \(error.localizedDescription)")
            return false
        }
        hasher?.update(data)
        size += Int64(data.count)
        report(force: size == expectedSize)
        return true
    }

    /// Empties the file and the running hash, to download from byte 0.
    func restart() throws(HubError) {
        do {
            try handle?.truncate(atOffset: 0)
        } catch {
            throw .fileSystem(path: url.path, reason: "cannot truncate: \(error.localizedDescription)")
        }
        size = 0
        if hasher != nil { hasher = SHA256Hasher() }
        report(force: true)
    }

    func takeFailure() -> HubError? {
        defer { failure = nil }
        return failure
    }

    func finalizeSHA256() -> String {
        guard let hasher else { return "" }
        self.hasher = nil
        return hasher.finalizeHex()
    }

    /// Flushes the file to the disk before it is renamed into place.
    func synchronize() throws(HubError) {
        do { try handle?.synchronize() } catch {
            throw .fileSystem(path: url.path, reason: "cannot flush: \(error.localizedDescription)")
        }
    }

    func close() {
        try? handle?.close()
        handle = nil
    }

    private func report(force: Bool) {
        guard let progress, force || size - lastReported >= Self.reportInterval, size != lastReported else { return }
        lastReported = size
        progress(HubProgress(fileName: file, bytesDone: size, totalBytes: expectedSize))
    }
}
