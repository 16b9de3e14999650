import DinoImage
import Foundation

/// Builds tar archives byte by byte, so that each header format and each kind of damage can
/// be produced exactly.
struct TarBuilder {
    enum Magic {
        /// POSIX ustar: "ustar\0" "00", prefix field used.
        case ustar
        /// Old GNU: "ustar  \0".
        case gnu
        /// V7: no magic.
        case v7
    }

    private(set) var bytes: [UInt8] = []

    /// Offset where the next header will start.
    var offset: Int { bytes.count }

    /// Appends one header block.
    mutating func header(name: String, size: Int, type: Character = "0", magic: Magic = .ustar, prefix: String = "",
                         base256Size: Bool = false) {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at start: Int, length: Int) {
            let utf8 = Array(text.utf8)
            precondition(utf8.count <= length, "\(text) does not fit in \(length) bytes")
            block.replaceSubrange(start..<(start + utf8.count), with: utf8)
        }
        func octal(_ value: Int, at start: Int, length: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: length - 1 - digits.count) + digits, at: start, length: length - 1)
        }
        put(name, at: 0, length: 100)
        octal(0o644, at: 100, length: 8)
        octal(1000, at: 108, length: 8)
        octal(1000, at: 116, length: 8)
        if base256Size {
            block[124] = 0x80
            var value = size
            for i in stride(from: 135, through: 125, by: -1) {
                block[i] = UInt8(value & 0xFF)
                value >>= 8
            }
        } else {
            octal(size, at: 124, length: 12)
        }
        octal(1_700_000_000, at: 136, length: 12)
        block[156] = type.asciiValue ?? 0
        switch magic {
        case .ustar:
            put("ustar", at: 257, length: 6)
            put("00", at: 263, length: 2)
            put(prefix, at: 345, length: 155)
        case .gnu:
            put("ustar  ", at: 257, length: 8)
        case .v7:
            break
        }
        for i in 148..<156 { block[i] = 0x20 }
        let sum = block.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        put(String(repeating: "0", count: 6 - digits.count) + digits, at: 148, length: 6)
        block[154] = 0
        block[155] = 0x20
        bytes += block
    }

    /// Appends data padded to whole blocks.
    mutating func data(_ content: [UInt8]) {
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }

    /// Appends a regular file.
    mutating func file(_ name: String, _ content: [UInt8], magic: Magic = .ustar, prefix: String = "") {
        header(name: name, size: content.count, magic: magic, prefix: prefix)
        data(content)
    }

    /// Appends a regular file whose name goes in a GNU `././@LongLink` member.
    mutating func gnuLongNameFile(_ name: String, _ content: [UInt8]) {
        let nameBytes = Array(name.utf8) + [0]
        header(name: "././@LongLink", size: nameBytes.count, type: "L", magic: .gnu)
        data(nameBytes)
        file(String(name.prefix(99)), content, magic: .gnu)
    }

    /// Appends a pax extended (or global) header with `records`.
    mutating func pax(_ records: [(String, String)], global: Bool = false) {
        var content: [UInt8] = []
        for (key, value) in records {
            let body = " \(key)=\(value)\n"
            // The length counts its own digits.
            var length = body.utf8.count + 1
            while String(length).count + body.utf8.count != length { length += 1 }
            content += Array("\(length)\(body)".utf8)
        }
        header(name: "PaxHeaders/x", size: content.count, type: global ? "g" : "x")
        data(content)
    }

    /// Appends the two zero blocks that end an archive.
    mutating func end() {
        bytes += [UInt8](repeating: 0, count: 1024)
    }

    /// Writes the archive to `url`.
    func write(to url: URL) throws {
        try Data(bytes).write(to: url)
    }
}

/// A temporary folder removed at the end of the test.
final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("dino-dataset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes `content` at `name` (folders created), returning the path.
    @discardableResult
    func write(_ name: String, _ content: Data) throws -> String {
        let target = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try content.write(to: target)
        return target.path
    }
}

enum TestImages {
    /// A small image whose colours depend on `seed`, encoded as JPEG or PNG (by `ext`).
    static func encoded(seed: Int, width: Int = 20, height: Int = 16, ext: String = "jpg") throws -> Data {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                pixels[i] = UInt8((x * 13 + seed * 37) % 256)
                pixels[i + 1] = UInt8((y * 17 + seed * 11) % 256)
                pixels[i + 2] = UInt8((x * y + seed * 5) % 256)
            }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dino-test-\(UUID().uuidString).\(ext)")
        defer { try? FileManager.default.removeItem(at: url) }
        try ImageIO.write(RGBImage(width: width, height: height, pixels: pixels), to: url)
        return try Data(contentsOf: url)
    }
}

/// A stand-in for SHA-256 in tests: FNV-1a 64 of the file's bytes (the runner only compares
/// digests for equality).
func testDigest(_ url: URL) throws -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in try Data(contentsOf: url) { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
    return String(hash, radix: 16)
}
