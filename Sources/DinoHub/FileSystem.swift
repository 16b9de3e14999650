import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The few POSIX file operations the cache needs, with errors that name the path.
enum FileSystem {
    static func lastErrorDescription() -> String { String(cString: strerror(errno)) }

    static func createDirectory(_ url: URL) throws(HubError) {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw .fileSystem(path: url.path, reason: "cannot create folder: \(error.localizedDescription)")
        }
    }

    /// The size of the file at `url` (following symlinks), or nil when there is none.
    static func fileSize(_ url: URL) -> Int64? {
        var info = stat()
        guard stat(url.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    static func removeIfPresent(_ url: URL) throws(HubError) {
        guard unlink(url.path) == 0 || errno == ENOENT else {
            throw .fileSystem(path: url.path, reason: "cannot remove: \(lastErrorDescription())")
        }
    }

    /// Moves a finished download into place; rename(2) is atomic, so `to` is either absent
    /// or complete, whatever happens to this process.
    static func moveAtomically(_ from: URL, to: URL) throws(HubError) {
        guard rename(from.path, to.path) == 0 else {
            throw .fileSystem(path: to.path, reason: "cannot rename \(from.path) to it: \(lastErrorDescription())")
        }
    }

    /// Creates an empty file unless one exists.
    static func touch(_ url: URL) throws(HubError) {
        try createDirectory(url.deletingLastPathComponent())
        let fd = open(url.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .fileSystem(path: url.path, reason: "cannot create: \(lastErrorDescription())") }
        close(fd)
    }

    /// Runs `body` holding an exclusive `flock` on `url` (created if needed), the same kind of
    /// lock Python's `filelock` takes, so the two tools also exclude each other.
    static func withExclusiveLock<T>(_ url: URL, _ body: () throws(HubError) -> T) throws(HubError) -> T {
        try createDirectory(url.deletingLastPathComponent())
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .fileSystem(path: url.path, reason: "cannot open lock file: \(lastErrorDescription())") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw .fileSystem(path: url.path, reason: "cannot lock: \(lastErrorDescription())")
            }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
