import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file, unmapped when released.
public final class MappedFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only and never changes after init.

    /// The file's path, for error messages.
    public let path: String
    /// The mapped bytes (empty for an empty file).
    public let bytes: UnsafeRawBufferPointer
    /// Whether `bytes` is an allocated copy (freed) rather than a mapping (unmapped).
    private let owned: Bool

    /// A copy of `data` in memory behaving like a mapped file named `path` (for parsing bytes
    /// that do not come from a file, and for fuzzing the parsers).
    public init(copying data: Data, path: String) {
        self.path = path
        owned = true
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 16)
        _ = data.copyBytes(to: buffer.bindMemory(to: UInt8.self))
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<data.count])
    }

    /// Maps the regular file at `url` read-only (opened as `InputFile` opens every file, so a FIFO
    /// or a device is refused instead of blocking).
    public init(url: URL) throws(TensorFileError) {
        path = url.path
        owned = false
        let (fd, size) = try InputFile.openRegularFile(url)
        defer { close(fd) }
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw .cannotOpen(path: url.path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Tells the kernel the bytes in `range` will not be read again soon, so their pages leave
    /// the resident set (they stay readable and come back from the file on demand). Loading a
    /// checkpoint copies each tensor out and drops its pages, so peak memory is one copy of the
    /// weights rather than two.
    public func release(_ range: Range<Int>) {
        guard !owned, let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        // Only whole pages inside the range: a neighbouring tensor may share the edge pages.
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        guard end > start, start >= 0, end <= bytes.count else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if owned {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}

/// Writes a file so that readers see either nothing or the whole file: the bytes go to a
/// temporary file in the same folder, which is renamed over the target only when complete.
/// The file and then the folder are synced, so a written file survives a crash of the machine.
public enum AtomicFile {
    /// Writes `produce`'s output to `url`; on any error the temporary file is removed and the
    /// target is left untouched.
    public static func write(to url: URL, _ produce: (FileHandle) throws -> Void) throws(TensorFileError) {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw .writeFailed(path: url.path, reason: "cannot create a file in \(directory.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            do {
                try produce(handle)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            guard rename(temporary.path, url.path) == 0 else {
                throw TensorFileError.writeFailed(path: url.path, reason: String(cString: strerror(errno)))
            }
            // The rename is durable only once the folder's entry is synced.
            let folder = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if folder >= 0 {
                _ = fsync(folder)
                close(folder)
            }
        } catch let error as TensorFileError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw .writeFailed(path: url.path, reason: "\(error)")
        }
    }
}
