import DinoTensor
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Hugging Face hub cache, laid out exactly as Python's huggingface_hub lays it out, so
/// that either tool reuses what the other downloaded.
///
/// ```
/// {root}/models--{org}--{name}/
///     refs/{revision}              the 40-hex commit the branch or tag pointed at
///     blobs/{etag}                 file contents (etag: sha256 for LFS files, git blob id otherwise)
///     snapshots/{commit}/{file}    relative symlink to ../../blobs/{etag}
///     .no_exist/{commit}/{file}    empty marker: the hub said the file does not exist
/// ```
public struct HubCache: Sendable, Equatable {
    /// The cache folder that holds the `models--*` folders.
    public let root: URL

    /// A cache rooted at `root` (tests and callers with their own location).
    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// The cache where huggingface_hub would look, given these environment variables.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.init(root: Self.defaultRoot(environment: environment))
    }

    /// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
    /// `~/.cache/huggingface/hub`.
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let hubCache = nonEmpty(environment["HF_HUB_CACHE"]) {
            return URL(fileURLWithPath: expandTilde(hubCache, environment: environment), isDirectory: true)
        }
        return huggingFaceHome(environment: environment).appendingPathComponent("hub", isDirectory: true)
    }

    /// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`: the folder
    /// that holds the hub cache and the saved token.
    public static func huggingFaceHome(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let home = nonEmpty(environment["HF_HOME"]) {
            return URL(fileURLWithPath: expandTilde(home, environment: environment), isDirectory: true)
        }
        let cacheHome = nonEmpty(environment["XDG_CACHE_HOME"]).map { expandTilde($0, environment: environment) }
            ?? homeDirectory(environment: environment).appendingPathComponent(".cache", isDirectory: true).path
        return URL(fileURLWithPath: cacheHome, isDirectory: true).appendingPathComponent("huggingface", isDirectory: true)
    }

    /// `models--{org}--{name}`: everything cached for one repository.
    public func repositoryFolder(for id: HubModelID) -> URL {
        root.appendingPathComponent("models--\(id.organization)--\(id.name)", isDirectory: true)
    }

    /// `snapshots/{commit}`: the repository's files at one commit, as symlinks into `blobs`.
    public func snapshotFolder(for id: HubModelID, commit: String) -> URL {
        repositoryFolder(for: id).appendingPathComponent("snapshots", isDirectory: true)
            .appendingPathComponent(commit, isDirectory: true)
    }

    /// The commit the id's revision resolves to without the network: the revision itself
    /// when it is a commit hash, else the content of `refs/{revision}`; nil when not cached.
    public func cachedCommit(for id: HubModelID) -> String? {
        if id.revisionIsCommit { return id.revision }
        guard let data = try? InputFile.contents(of: refURL(for: id)),
              let text = String(data: data, encoding: .utf8) else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return HubModelID.isCommitHash(commit) ? commit : nil
    }

    /// The snapshot folder for `id` when the cache alone holds a complete model: `config.json`
    /// and either `model.safetensors` or `model.safetensors.index.json` with every shard.
    ///
    /// `preprocessor_config.json` is used when present but not required: the cache cannot
    /// tell whether the repository has one.
    public func cachedModelFolder(for id: HubModelID) throws(HubError) -> URL {
        let repositoryPath = repositoryFolder(for: id).path
        guard let commit = cachedCommit(for: id) else {
            throw .notInCache(repository: id.repository, revision: id.revision,
                              missing: "refs/\(id.revision)", cachePath: repositoryPath)
        }
        let snapshot = snapshotFolder(for: id, commit: commit)
        func require(_ file: String) throws(HubError) {
            guard Self.isReadableFile(snapshot.appendingPathComponent(file)) else {
                throw .notInCache(repository: id.repository, revision: id.revision,
                                  missing: "snapshots/\(commit)/\(file)", cachePath: repositoryPath)
            }
        }
        try require(ModelFiles.config)
        if Self.isReadableFile(snapshot.appendingPathComponent(ModelFiles.weights)) { return snapshot }
        let index = snapshot.appendingPathComponent(ModelFiles.weightsIndex)
        guard Self.isReadableFile(index) else {
            throw .notInCache(repository: id.repository, revision: id.revision,
                              missing: "snapshots/\(commit)/\(ModelFiles.weights)", cachePath: repositoryPath)
        }
        for shard in try ModelFiles.shardNames(inIndexAt: index) { try require(shard) }
        return snapshot
    }

    // MARK: Layout used while downloading

    func refURL(for id: HubModelID) -> URL {
        repositoryFolder(for: id).appendingPathComponent("refs", isDirectory: true).appendingPathComponent(id.revision)
    }

    func blobURL(for id: HubModelID, etag: String) -> URL {
        repositoryFolder(for: id).appendingPathComponent("blobs", isDirectory: true).appendingPathComponent(etag)
    }

    func incompleteBlobURL(for id: HubModelID, etag: String) -> URL {
        blobURL(for: id, etag: etag).appendingPathExtension("incomplete")
    }

    /// `.locks/models--{org}--{name}/{etag}.lock`, the file huggingface_hub `flock`s while it
    /// downloads a blob; taking the same lock keeps both tools from appending to one
    /// `.incomplete` file at the same time.
    func lockURL(for id: HubModelID, etag: String) -> URL {
        root.appendingPathComponent(".locks", isDirectory: true)
            .appendingPathComponent(repositoryFolder(for: id).lastPathComponent, isDirectory: true)
            .appendingPathComponent("\(etag).lock")
    }

    func noExistMarkerURL(for id: HubModelID, commit: String, file: String) -> URL {
        repositoryFolder(for: id).appendingPathComponent(".no_exist", isDirectory: true)
            .appendingPathComponent(commit, isDirectory: true).appendingPathComponent(file)
    }

    /// Points `snapshots/{commit}/{file}` at `blobs/{etag}` with a relative link (one `../`
    /// per folder level), so the cache stays valid when moved or mounted elsewhere.
    func linkSnapshotFile(for id: HubModelID, commit: String, file: String, etag: String) throws(HubError) -> URL {
        let link = snapshotFolder(for: id, commit: commit).appendingPathComponent(file)
        let depth = file.split(separator: "/").count - 1
        let target = String(repeating: "../", count: 2 + depth) + "blobs/" + etag
        try FileSystem.createDirectory(link.deletingLastPathComponent())
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: link.path), existing == target {
            return link
        }
        // Replacing an existing entry: remove it first; the blob already exists, so the new
        // link never dangles, and an interruption in between only leaves the file missing.
        if unlink(link.path) != 0 && errno != ENOENT {
            throw .fileSystem(path: link.path, reason: "cannot replace: \(FileSystem.lastErrorDescription())")
        }
        guard symlink(target, link.path) == 0 else {
            throw .fileSystem(path: link.path, reason: "cannot create symlink to \(target): \(FileSystem.lastErrorDescription())")
        }
        return link
    }

    /// Records the commit a branch or tag resolved to, replacing the file atomically so a
    /// reader never sees a half-written hash.
    func writeRef(for id: HubModelID, commit: String) throws(HubError) {
        guard !id.revisionIsCommit else { return }
        let url = refURL(for: id)
        try FileSystem.createDirectory(url.deletingLastPathComponent())
        do {
            try AtomicFile.write(to: url) { handle in try handle.write(contentsOf: Data(commit.utf8)) }
        } catch {
            throw .fileSystem(path: url.path, reason: error.description)
        }
    }

    // MARK: Helpers

    static func isReadableFile(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        // fileExists follows symlinks, so a dangling snapshot link counts as missing.
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }

    private static func homeDirectory(environment: [String: String]) -> URL {
        if let home = nonEmpty(environment["HOME"]) { return URL(fileURLWithPath: home, isDirectory: true) }
        return FileManager.default.homeDirectoryForCurrentUser
    }

    // Python expands `~` in these variables (os.path.expanduser), so a value written for it
    // must mean the same folder here.
    private static func expandTilde(_ path: String, environment: [String: String]) -> String {
        if path == "~" { return homeDirectory(environment: environment).path }
        if path.hasPrefix("~/") { return homeDirectory(environment: environment).appendingPathComponent(String(path.dropFirst(2))).path }
        return path
    }
}

/// The files that make up a model in a hub repository.
enum ModelFiles {
    static let config = "config.json"
    static let preprocessor = "preprocessor_config.json"
    static let weights = "model.safetensors"
    static let weightsIndex = "model.safetensors.index.json"

    /// The shard files named in an index's `weight_map`, in order of first appearance.
    static func shardNames(inIndexAt url: URL) throws(HubError) -> [String] {
        let data: Data
        do { data = try InputFile.contents(of: url) } catch { throw .invalidIndex(path: url.path, reason: error.detail) }
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw .invalidIndex(path: url.path, reason: error.description)
        }
        guard let map = json["weight_map"]?.objectValue else {
            throw .invalidIndex(path: url.path, reason: "no \"weight_map\" object")
        }
        var seen = Set<String>()
        var shards: [String] = []
        for (tensor, value) in map {
            guard let shard = value.stringValue else {
                throw .invalidIndex(path: url.path, reason: "weight_map entry for '\(tensor)' is not a file name")
            }
            // The shard name becomes a path under the snapshot folder and part of a URL, so
            // it must stay inside the repository.
            guard InputFile.isPlainRelativePath(shard) else {
                throw .invalidIndex(path: url.path, reason: "shard '\(shard)' for '\(tensor)' is not a relative path inside the repository")
            }
            if seen.insert(shard).inserted { shards.append(shard) }
        }
        guard !shards.isEmpty else { throw .invalidIndex(path: url.path, reason: "weight_map is empty") }
        return shards
    }

}
