import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How every file the tool reads is opened, and how paths written inside files are resolved.
///
/// - No open or read can block: files are opened with `O_NONBLOCK` (a FIFO without a writer
///   would otherwise block `open` itself) and refused by their type before any byte is read, so a
///   FIFO, a socket or a device gets an error naming it.
/// - No path read from a file leaves its folder: `confined` is the one check every manifest,
///   index and list entry goes through.
public enum InputFile {
    /// Opens the regular file at `url` for reading; the caller closes the descriptor.
    public static func openRegularFile(_ url: URL) throws(TensorFileError) -> (descriptor: Int32, size: Int) {
        let fd = open(url.path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(path: url.path, reason: String(cString: strerror(errno))) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .cannotOpen(path: url.path, reason: reason)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .cannotOpen(path: url.path, reason: "\(kindName(info.st_mode)), not a regular file")
        }
        // Regular files never block; clearing the flag keeps later reads ordinary.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, Int(info.st_size))
    }

    /// The whole contents of the regular file at `url`, refused when it is larger than
    /// `maxBytes` (configurations, lists and annotations are far smaller than the default 2 GiB;
    /// a larger file given in their place is an error, not an allocation of its size).
    public static func contents(of url: URL, maxBytes: Int = 1 << 31) throws(TensorFileError) -> Data {
        let (fd, size) = try openRegularFile(url)
        defer { close(fd) }
        guard size <= maxBytes else { throw .cannotOpen(path: url.path, reason: "\(size) bytes is over the limit of \(maxBytes) for this file") }
        var data = Data(count: size)
        var done = 0
        while true {
            if done == data.count {
                // The file may have grown since fstat: read on until end of file.
                guard done < maxBytes else { throw .cannotOpen(path: url.path, reason: "grew over the limit of \(maxBytes) bytes while being read") }
                data.count += max(4096, data.count / 2)
            }
            let got = data.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress.map { $0 + done }, buffer.count - done)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw .cannotOpen(path: url.path, reason: "read failed at byte \(done): \(String(cString: strerror(errno)))")
            }
            if got == 0 { break }
            done += got
        }
        data.count = done
        return data
    }

    /// The non-empty lines of the text file at `url`, trimmed (split files, file and class
    /// lists); nil when the file is not UTF-8 text.
    public static func lines(of url: URL) throws(TensorFileError) -> [String]? {
        let data = try contents(of: url)
        guard let text = String(data: data, encoding: .utf8) else { return nil }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Throws unless `url` is a regular file, judged by `stat` without opening it (for files
    /// handed to code that opens them itself); returns its size in bytes.
    @discardableResult
    public static func checkRegularFile(_ url: URL) throws(TensorFileError) -> Int {
        var info = stat()
        guard stat(url.path, &info) == 0 else { throw .cannotOpen(path: url.path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .cannotOpen(path: url.path, reason: "\(kindName(info.st_mode)), not a regular file")
        }
        return Int(info.st_size)
    }

    /// Whether `url` is a directory (following symbolic links).
    public static func isDirectory(_ url: URL) -> Bool {
        var info = stat()
        return stat(url.path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// `entry`, a path written in the file `source`, resolved inside `folder`: refused unless it is
    /// relative and every `/`-separated component is a plain name (not empty, `.` or `..`, no
    /// backslash or NUL), so that it names something in `folder` or below it.
    public static func confined(_ entry: String, in folder: URL, source: String) throws(TensorFileError) -> URL {
        guard isPlainRelativePath(entry) else { throw .pathOutsideFolder(path: source, entry: entry, folder: folder.path) }
        return folder.appendingPathComponent(entry)
    }

    /// Whether `entry` is a relative path of plain names (the rule `confined` applies).
    public static func isPlainRelativePath(_ entry: String) -> Bool {
        guard !entry.isEmpty, !entry.hasPrefix("/"), !entry.contains("\\"), !entry.contains("\0") else { return false }
        return entry.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    private static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "not a file"
        }
    }
}
