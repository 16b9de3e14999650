import CDinoSHA256
import Foundation

/// Streaming SHA-256 over the C implementation, producing lowercase hex as the hub's ETags
/// spell it.
struct SHA256 {
    private var context = dino_sha256_context()

    init() { dino_sha256_init(&context) }

    mutating func update(_ data: Data) {
        data.withUnsafeBytes { bytes in dino_sha256_update(&context, bytes.baseAddress, bytes.count) }
    }

    /// The digest as 64 lowercase hex digits; the hasher must not be used afterwards.
    mutating func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: Int(DINO_SHA256_DIGEST_SIZE))
        dino_sha256_final(&context, &digest)
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        for byte in digest {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// Hashes the first `length` bytes of a file, to pick up a resumed download where the
    /// previous attempt stopped.
    mutating func update(contentsOf url: URL, length: Int64) throws(HubError) {
        guard length > 0 else { return }
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch {
            throw .fileSystem(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        var remaining = length
        while remaining > 0 {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: Int(min(remaining, 1 << 20))) } catch {
                throw .fileSystem(path: url.path, reason: "cannot read: \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else {
                throw .fileSystem(path: url.path, reason: "file shrank while being read")
            }
            update(chunk)
            remaining -= Int64(chunk.count)
        }
    }
}
