@testable import DinoTensor
import Foundation
import Testing

/// Writes bits least-significant first, as DEFLATE packs them, to build streams by hand.
struct DeflateBitWriter {
    var bytes: [UInt8] = []
    private var bitCount = 0

    /// `count` bits of `value`, lowest first (header fields, extra bits).
    mutating func bits(_ value: Int, _ count: Int) {
        for i in 0..<count {
            if bitCount % 8 == 0 { bytes.append(0) }
            if (value >> i) & 1 == 1 { bytes[bytes.count - 1] |= UInt8(1 << (bitCount % 8)) }
            bitCount += 1
        }
    }

    /// A Huffman code of `length` bits, most significant bit first.
    mutating func code(_ code: Int, _ length: Int) {
        for i in (0..<length).reversed() { bits((code >> i) & 1, 1) }
    }

    /// A literal/length symbol of the fixed code (RFC 1951 section 3.2.6).
    mutating func fixedSymbol(_ symbol: Int) {
        switch symbol {
        case 0...143: code(0x30 + symbol, 8)
        case 144...255: code(0x190 + symbol - 144, 9)
        case 256...279: code(symbol - 256, 7)
        default: code(0xC0 + symbol - 280, 8)
        }
    }
}

@Suite("DEFLATE and CRC-32 through zlib")
struct InflateTests {
    static func inflate(_ stream: [UInt8], size: Int) throws(Inflate.Failure) -> [UInt8] {
        try stream.withUnsafeBytes { raw in Result { () throws(Inflate.Failure) in try Inflate.decompress(raw, outputSize: size) } }.get()
    }

    @Test("CRC-32 of the standard check string, of nothing, and continued over pieces")
    func crc() {
        let check = Array("123456789".utf8)
        #expect(check.withUnsafeBytes { CRC32.checksum($0) } == 0xCBF4_3926)
        #expect([UInt8]().withUnsafeBytes { CRC32.checksum($0) } == 0)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        let whole = long.withUnsafeBytes { CRC32.checksum($0) }
        let first = long[..<333].withUnsafeBytes { CRC32.checksum($0) }
        #expect(long[333...].withUnsafeBytes { CRC32.checksum($0, continuing: first) } == whole)
        #expect([UInt8]().withUnsafeBytes { CRC32.checksum($0, continuing: whole) } == whole)
    }

    @Test("zlib's streams decode to the recorded size and CRC-32")
    func zlibStreams() throws {
        let folder = PthFixtures.url("deflate")
        let manifest = try String(contentsOf: folder.appendingPathComponent("manifest.txt"), encoding: .utf8)
        let lines = manifest.split(separator: "\n")
        #expect(lines.count == 8)
        for line in lines {
            let fields = line.split(separator: " ")
            let name = String(fields[0])
            let size = try #require(Int(fields[1]))
            let crc = try #require(UInt32(fields[2], radix: 16))
            let stream = try [UInt8](Data(contentsOf: folder.appendingPathComponent("\(name).deflate")))
            let output = try Self.inflate(stream, size: size)
            #expect(output.withUnsafeBytes { CRC32.checksum($0) } == crc, "\(name)")
            // One byte short of the stream, or one more or fewer output bytes, is an error.
            if !stream.isEmpty {
                #expect(throws: Inflate.Failure.self, "\(name) cut short") { try Self.inflate(Array(stream.dropLast()), size: size) }
            }
            #expect(throws: Inflate.Failure.self, "\(name) with a byte more") { try Self.inflate(stream + [0], size: size) }
            #expect(throws: Inflate.Failure.self, "\(name) larger than declared") { try Self.inflate(stream, size: size + 1) }
            if size > 0 {
                #expect(throws: Inflate.Failure.self, "\(name) smaller than declared") { try Self.inflate(stream, size: size - 1) }
            }
        }
    }

    @Test("hand-built blocks: stored, fixed with an overlapping match")
    func handBuilt() throws {
        // A final stored block holding "abc".
        #expect(try Self.inflate([0x01, 0x03, 0x00, 0xFC, 0xFF, 0x61, 0x62, 0x63], size: 3) == Array("abc".utf8))
        // Fixed block: 'a', then a match of length 10 at distance 1 (a run), end of block.
        var writer = DeflateBitWriter()
        writer.bits(1, 1)
        writer.bits(1, 2)
        writer.fixedSymbol(Int(UInt8(ascii: "a")))
        writer.fixedSymbol(264)  // length 10, no extra bits
        writer.code(0, 5)  // distance code 0 = distance 1
        writer.fixedSymbol(256)
        #expect(try Self.inflate(writer.bytes, size: 11) == [UInt8](repeating: UInt8(ascii: "a"), count: 11))
    }

    /// Streams that break a rule of RFC 1951, with the failure they must give.
    static let invalid: [(String, [UInt8], Int, String)] = [
        ("reserved block type", [0x07], 0, "invalid block type"),
        ("stored length check", [0x01, 0x03, 0x00, 0x00, 0x00, 0x61, 0x62, 0x63], 3, "invalid stored block lengths"),
        ("stored block past the end", [0x01, 0x05, 0x00, 0xFA, 0xFF, 0x61], 5, "ends early"),
        ("distance before the start", {
            var writer = DeflateBitWriter()
            writer.bits(1, 1)
            writer.bits(1, 2)
            writer.fixedSymbol(257)  // length 3
            writer.code(3, 5)  // distance 4, with nothing written yet
            writer.fixedSymbol(256)
            return writer.bytes
        }(), 3, "too far back"),
        ("length symbol 286", {
            var writer = DeflateBitWriter()
            writer.bits(1, 1)
            writer.bits(1, 2)
            writer.fixedSymbol(286)
            return writer.bytes
        }(), 3, "invalid literal/length code"),
        ("distance symbol 30", {
            var writer = DeflateBitWriter()
            writer.bits(1, 1)
            writer.bits(1, 2)
            writer.fixedSymbol(Int(UInt8(ascii: "a")))
            writer.fixedSymbol(257)
            writer.code(30, 5)
            return writer.bytes
        }(), 4, "invalid distance code"),
        ("over-subscribed code lengths", {
            // Dynamic block whose code-length code gives four symbols length 1.
            var writer = DeflateBitWriter()
            writer.bits(1, 1)
            writer.bits(2, 2)
            writer.bits(0, 5)  // 257 literal codes
            writer.bits(0, 5)  // 1 distance code
            writer.bits(0, 4)  // 4 code-length code lengths
            for _ in 0..<4 { writer.bits(1, 3) }
            return writer.bytes
        }(), 1, "invalid code lengths set"),
        ("repeat with nothing to repeat", {
            var writer = DeflateBitWriter()
            writer.bits(1, 1)
            writer.bits(2, 2)
            writer.bits(0, 5)
            writer.bits(0, 5)
            writer.bits(0, 4)  // code lengths for symbols 16, 17, 18, 0
            writer.bits(1, 3)  // symbol 16: length 1 (code 0)
            writer.bits(1, 3)  // symbol 17: length 1 (code 1)
            writer.bits(0, 3)
            writer.bits(0, 3)
            writer.code(0, 1)  // symbol 16 first: repeat the previous length, of which there is none
            writer.bits(0, 2)
            return writer.bytes
        }(), 1, "invalid bit length repeat"),
        ("empty input", [], 0, "ends early"),
    ]

    @Test("streams breaking the RFC fail with a reason", arguments: 0..<invalid.count)
    func rejectsInvalid(_ index: Int) {
        let (label, stream, size, expected) = Self.invalid[index]
        do {
            let output = try Self.inflate(stream, size: size)
            Issue.record("\(label): decoded to \(output)")
        } catch {
            #expect(error.reason.contains(expected), "\(label): \(error.reason)")
        }
    }

    @Test("a bomb stops at the declared size: a 10 MB run declared as 1000 bytes is refused")
    func bomb() throws {
        // Fixed block: 'a', then 40 000 matches of length 258 at distance 1 (about 65 kB of stream).
        var writer = DeflateBitWriter()
        writer.bits(1, 1)
        writer.bits(1, 2)
        writer.fixedSymbol(Int(UInt8(ascii: "a")))
        for _ in 0..<40_000 {
            writer.fixedSymbol(285)  // length 258, no extra bits
            writer.code(0, 5)
        }
        writer.fixedSymbol(256)
        let size = 1 + 40_000 * 258
        #expect(try Self.inflate(writer.bytes, size: size) == [UInt8](repeating: UInt8(ascii: "a"), count: size))
        do {
            let output = try Self.inflate(writer.bytes, size: 1000)
            Issue.record("decoded \(output.count) bytes")
        } catch {
            #expect(error.reason.contains("more than the declared 1000 bytes"), "\(error.reason)")
        }
    }
}
