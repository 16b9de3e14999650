import Crypto
import DinoTensor
import Foundation

/// Streaming SHA-256 (swift-crypto) of byte buffers and files, spelled as 64 lowercase hex
/// digits as the hub's ETags and `dino extract`'s manifests spell it.
public struct SHA256Hasher {
    private var hasher = SHA256()

    /// Bytes read from a file per step, so hashing a multi-gigabyte file needs little memory.
    static let readSize = 1 << 20

    /// A hasher that has seen no bytes.
    public init() {}

    /// Feeds `bytes`; any number of calls, of any sizes.
    public mutating func update(_ bytes: some DataProtocol) {
        hasher.update(data: bytes)
    }

    /// Feeds the first `length` bytes of a file (to pick up a resumed download where the
    /// previous attempt stopped), or all of it when `length` is nil; fails if the file is shorter.
    public mutating func update(contentsOf url: URL, length: Int64? = nil) throws(HubError) {
        guard length.map({ $0 > 0 }) ?? true else { return }
        // Opened as every reader opens files (non-blocking, regular files only), so a FIFO in
        // place of the file is refused here rather than by a check before each call.
        let handle: FileHandle
        do { handle = FileHandle(fileDescriptor: try InputFile.openRegularFile(url).descriptor, closeOnDealloc: true) } catch {
            throw .fileSystem(path: url.path, reason: "cannot read: \(error.detail)")
        }
        defer { try? handle.close() }
        var remaining = length ?? Int64.max
        while remaining > 0 {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: Int(min(remaining, Int64(Self.readSize)))) } catch {
                throw .fileSystem(path: url.path, reason: "cannot read: \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else {
                guard length == nil else { throw .fileSystem(path: url.path, reason: "file shrank while being read") }
                return
            }
            update(chunk)
            remaining -= Int64(chunk.count)
        }
    }

    /// The digest of the bytes fed so far, as 64 lowercase hex digits.
    public func finalizeHex() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(2 * SHA256.byteCount)
        for byte in hasher.finalize() {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// The SHA-256 of `bytes`, as 64 lowercase hex digits.
    public static func hex(of bytes: some DataProtocol) -> String {
        var hasher = SHA256Hasher()
        hasher.update(bytes)
        return hasher.finalizeHex()
    }

    /// The SHA-256 of a whole file, read in 1 MiB pieces, as 64 lowercase hex digits.
    public static func hex(ofFileAt url: URL) throws(HubError) -> String {
        var hasher = SHA256Hasher()
        try hasher.update(contentsOf: url)
        return hasher.finalizeHex()
    }
}
