import DinoTensor
import Foundation

/// An encoder for 8-bit palette PNGs, the format of class-index masks.
///
/// The image encoder of `DinoImage` writes RGB only, and a mask must keep its indices, so this
/// writes the few chunks itself: `IHDR` (colour type 3, depth 8), `PLTE`, one `IDAT`, `IEND`.
/// The zlib stream uses one fixed-Huffman deflate block whose only back-references repeat the
/// previous byte (runs of a class along a row) or copy the row above, which is what masks
/// consist of: a 512 x 512 mask of a few regions takes a few kilobytes.
///
/// ref: PNG specification (ISO/IEC 15948) chunks and filter type 0; RFC 1950 (zlib, Adler-32)
/// and RFC 1951 section 3.2.6 (fixed Huffman codes, length and distance tables).
enum PalettePNG {
    /// The PNG bytes of `indices` (`[height, width]`) with `palette` (3 bytes per entry, at
    /// most 256 entries).
    static func encode(indices: [UInt8], width: Int, height: Int, palette: [UInt8]) -> Data {
        precondition(indices.count == width * height && palette.count % 3 == 0 && palette.count <= 768, "bad palette PNG input")
        // Each row is preceded by its filter type, 0 (none).
        var raw = [UInt8](repeating: 0, count: (width + 1) * height)
        for y in 0..<height {
            raw.replaceSubrange((y * (width + 1) + 1)..<((y + 1) * (width + 1)), with: indices[(y * width)..<((y + 1) * width)])
        }
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = [UInt8]()
        header += bigEndian(UInt32(width))
        header += bigEndian(UInt32(height))
        header += [8, 3, 0, 0, 0]  // depth 8, palette, deflate, filter method 0, no interlace
        appendChunk("IHDR", header, to: &png)
        appendChunk("PLTE", palette, to: &png)
        appendChunk("IDAT", zlib(raw, rowLength: width + 1), to: &png)
        appendChunk("IEND", [], to: &png)
        return png
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    private static func appendChunk(_ type: String, _ body: [UInt8], to png: inout Data) {
        let typeBytes = Array(type.utf8)
        png.append(contentsOf: bigEndian(UInt32(body.count)))
        png.append(contentsOf: typeBytes)
        png.append(contentsOf: body)
        png.append(contentsOf: bigEndian(crc32(typeBytes + body)))
    }

    /// zlib wrapper (no preset dictionary, fastest-compression flag) around one final
    /// fixed-Huffman block, then the Adler-32 of the data.
    static func zlib(_ data: [UInt8], rowLength: Int) -> [UInt8] {
        var bits = BitWriter()
        bits.bytes = [0x78, 0x01]
        bits.write(1, count: 1)  // BFINAL
        bits.write(1, count: 2)  // BTYPE = 01, fixed Huffman
        let maxLength = 258
        let upDistance = rowLength <= 32768 ? rowLength : 0
        var i = 0
        while i < data.count {
            var length = 0, distance = 0
            if i >= 1 {
                var n = 0
                while n < maxLength && i + n < data.count && data[i + n] == data[i + n - 1] { n += 1 }
                if n >= 3 { (length, distance) = (n, 1) }
            }
            if upDistance > 0, i >= upDistance {
                var n = 0
                while n < maxLength && i + n < data.count && data[i + n] == data[i + n - upDistance] { n += 1 }
                if n >= 3 && n > length { (length, distance) = (n, upDistance) }
            }
            if length >= 3 {
                bits.writeLength(length)
                bits.writeDistance(distance)
                i += length
            } else {
                bits.writeLiteral(Int(data[i]))
                i += 1
            }
        }
        bits.writeLiteral(256)  // end of block
        bits.flush()
        var out = bits.bytes
        out += bigEndian(adler32(data))
        return out
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        while i < data.count {
            // 5552 bytes is the most that can be summed before b may overflow 32 bits.
            let end = min(i + 5552, data.count)
            while i < end {
                a += UInt32(data[i])
                b += a
                i += 1
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }

    /// CRC-32 (ISO-HDLC) of a chunk's type and data, as PNG requires.
    static func crc32(_ data: [UInt8]) -> UInt32 {
        data.withUnsafeBytes { CRC32.checksum($0) }
    }
}

/// Deflate's bit order: values least-significant bit first, Huffman codes most-significant
/// bit first.
private struct BitWriter {
    var bytes: [UInt8] = []
    private var buffer: UInt32 = 0
    private var filled = 0

    mutating func write(_ value: Int, count: Int) {
        guard count > 0 else { return }
        buffer |= UInt32(value & ((1 << count) - 1)) << UInt32(filled)
        filled += count
        while filled >= 8 {
            bytes.append(UInt8(buffer & 0xFF))
            buffer >>= 8
            filled -= 8
        }
    }

    mutating func writeCode(_ code: Int, length: Int) {
        var reversed = 0
        for bit in 0..<length where (code >> bit) & 1 != 0 { reversed |= 1 << (length - 1 - bit) }
        write(reversed, count: length)
    }

    /// A literal/length symbol with the fixed code of RFC 1951 3.2.6.
    mutating func writeLiteral(_ symbol: Int) {
        switch symbol {
        case 0...143: writeCode(0x30 + symbol, length: 8)
        case 144...255: writeCode(0x190 + symbol - 144, length: 9)
        case 256...279: writeCode(symbol - 256, length: 7)
        default: writeCode(0xC0 + symbol - 280, length: 8)
        }
    }

    private static let lengthBases = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBases = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
                                        3073, 4097, 6145, 8193, 12289, 16385, 24577]
    private static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    mutating func writeLength(_ length: Int) {
        var code = Self.lengthBases.count - 1
        while Self.lengthBases[code] > length { code -= 1 }
        writeLiteral(257 + code)
        write(length - Self.lengthBases[code], count: Self.lengthExtra[code])
    }

    mutating func writeDistance(_ distance: Int) {
        var code = Self.distanceBases.count - 1
        while Self.distanceBases[code] > distance { code -= 1 }
        writeCode(code, length: 5)
        write(distance - Self.distanceBases[code], count: Self.distanceExtra[code])
    }

    mutating func flush() {
        if filled > 0 { bytes.append(UInt8(buffer & 0xFF)) }
        buffer = 0
        filled = 0
    }
}
