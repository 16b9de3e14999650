import Foundation

/// Grey PNG images with their full sample depth, which the image decoder (8-bit RGB) loses: the
/// 16-bit depth maps of NYU and KITTI (`uint16` millimetres, or metres x 256).
///
/// Reads non-interlaced grey images of 8 or 16 bits (colour type 0) with any filter; writes
/// 16-bit grey with stored (uncompressed) deflate blocks, which every PNG reader accepts.
// ref: PNG specification (ISO/IEC 15948) chunks, filters and CRC; RFC 1950 (zlib) and RFC 1951
// (deflate).
enum GreyPNG {
    /// A decoded image: samples row-major, as integers.
    struct Image {
        var width: Int
        var height: Int
        var bitDepth: Int
        var samples: [UInt16]
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    static func decode(_ bytes: [UInt8], path: String) throws(DepthError) -> Image {
        func failure(_ reason: String) -> DepthError { .cannotReadDepth(path: path, reason: reason) }
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else { throw failure("not a PNG file") }
        var offset = 8
        var header: (width: Int, height: Int, depth: Int, colour: Int, interlace: Int)?
        var compressed: [UInt8] = []
        func be32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
        while true {
            guard offset + 12 <= bytes.count else { throw failure("truncated before the IEND chunk") }
            let length = be32(offset)
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard length >= 0, offset + 12 + length <= bytes.count else { throw failure("chunk \(type) runs past the end of the file") }
            let data = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            let stored = UInt32(be32(offset + 8 + length))
            guard crc32(Array(bytes[(offset + 4)..<(offset + 8)]) + data) == stored else { throw failure("chunk \(type) fails its CRC") }
            offset += 12 + length
            switch type {
            case "IHDR":
                guard length == 13 else { throw failure("IHDR of \(length) bytes") }
                func at(_ i: Int) -> Int { Int(data[i]) << 24 | Int(data[i + 1]) << 16 | Int(data[i + 2]) << 8 | Int(data[i + 3]) }
                header = (at(0), at(4), Int(data[8]), Int(data[9]), Int(data[12]))
            case "IDAT":
                compressed += data
            case "IEND":
                guard let header else { throw failure("no IHDR chunk") }
                guard header.colour == 0 else {
                    throw failure("colour type \(header.colour) is not grey; depth maps are single-channel 8- or 16-bit PNGs")
                }
                guard header.depth == 8 || header.depth == 16 else { throw failure("\(header.depth)-bit samples (only 8 and 16 are read)") }
                guard header.interlace == 0 else { throw failure("interlaced PNGs are not read; save without interlacing") }
                guard header.width > 0, header.height > 0, header.width <= 1 << 16, header.height <= 1 << 16 else {
                    throw failure("image size \(header.width) x \(header.height)")
                }
                return try unfilter(try Zlib.inflate(compressed, expected: header.height * (1 + header.width * header.depth / 8), path: path),
                                    width: header.width, height: header.height, depth: header.depth, path: path)
            default:
                break
            }
        }
    }

    private static func unfilter(_ raw: [UInt8], width: Int, height: Int, depth: Int, path: String) throws(DepthError) -> Image {
        let bpp = depth / 8, stride = width * bpp
        var previous = [UInt8](repeating: 0, count: stride)
        var current = [UInt8](repeating: 0, count: stride)
        var samples = [UInt16](repeating: 0, count: width * height)
        for y in 0..<height {
            let start = y * (stride + 1)
            let filter = raw[start]
            for i in 0..<stride {
                let x = raw[start + 1 + i]
                let a = i >= bpp ? Int(current[i - bpp]) : 0
                let b = Int(previous[i])
                let c = i >= bpp ? Int(previous[i - bpp]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c
                    let (pa, pb, pc) = (abs(p - a), abs(p - b), abs(p - c))
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw .cannotReadDepth(path: path, reason: "row \(y) has unknown filter type \(filter)")
                }
                current[i] = x &+ UInt8(truncatingIfNeeded: predictor)
            }
            for column in 0..<width {
                samples[y * width + column] = depth == 16
                    ? UInt16(current[column * 2]) << 8 | UInt16(current[column * 2 + 1]) : UInt16(current[column])
            }
            swap(&previous, &current)
        }
        return Image(width: width, height: height, bitDepth: depth, samples: samples)
    }

    /// A 16-bit grey PNG of `samples` (row-major).
    static func encode16(width: Int, height: Int, samples: [UInt16]) -> [UInt8] {
        precondition(samples.count == width * height && width > 0 && height > 0, "\(samples.count) samples are not \(width) x \(height)")
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (1 + 2 * width))
        for y in 0..<height {
            raw.append(0)
            for x in 0..<width {
                let v = samples[y * width + x]
                raw += [UInt8(v >> 8), UInt8(v & 0xff)]
            }
        }
        var png = signature
        func chunk(_ type: String, _ data: [UInt8]) {
            let body = Array(type.utf8) + data
            png += be32(data.count) + body + be32(Int(crc32(body)))
        }
        chunk("IHDR", be32(width) + be32(height) + [16, 0, 0, 0, 0])
        chunk("IDAT", Zlib.stored(raw))
        chunk("IEND", [])
        return png
    }

    static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

/// zlib streams: inflate (all three deflate block types) and stored-block deflate.
enum Zlib {
    /// The decompressed bytes of a zlib stream, which must hold exactly `expected` bytes.
    static func inflate(_ stream: [UInt8], expected: Int, path: String) throws(DepthError) -> [UInt8] {
        func failure(_ reason: String) -> DepthError { .cannotReadDepth(path: path, reason: reason) }
        guard stream.count >= 6, stream[0] & 0x0f == 8, (Int(stream[0]) << 8 | Int(stream[1])) % 31 == 0, stream[1] & 0x20 == 0 else {
            throw failure("the image data is not a zlib deflate stream")
        }
        var reader = BitReader(bytes: stream, position: 2, path: path)
        var out: [UInt8] = []
        out.reserveCapacity(expected)
        var last = false
        while !last {
            last = try reader.bits(1) == 1
            switch try reader.bits(2) {
            case 0:
                reader.alignToByte()
                let length = try reader.bits(16), complement = try reader.bits(16)
                guard length ^ 0xffff == complement, reader.position + length <= stream.count else {
                    throw failure("corrupt stored deflate block")
                }
                out += stream[reader.position..<(reader.position + length)]
                reader.position += length
            case 1:
                try inflateBlock(&reader, &out, literals: fixedLiterals, distances: fixedDistances, limit: expected)
            case 2:
                let (literals, distances) = try dynamicCodes(&reader)
                try inflateBlock(&reader, &out, literals: literals, distances: distances, limit: expected)
            default:
                throw failure("invalid deflate block type")
            }
            guard out.count <= expected else { throw failure("the image data holds more than \(expected) bytes") }
        }
        guard out.count == expected else { throw failure("the image data holds \(out.count) bytes, expected \(expected)") }
        reader.alignToByte()
        guard reader.position + 4 <= stream.count else { throw failure("the zlib stream lacks its Adler-32 checksum") }
        let stored = UInt32(stream[reader.position]) << 24 | UInt32(stream[reader.position + 1]) << 16
            | UInt32(stream[reader.position + 2]) << 8 | UInt32(stream[reader.position + 3])
        guard adler32(out) == stored else { throw failure("the image data fails its Adler-32 checksum") }
        return out
    }

    /// A zlib stream of stored deflate blocks (no compression).
    static func stored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let length = min(65535, data.count - start)
            let final: UInt8 = start + length == data.count ? 1 : 0
            out += [final, UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8((~length >> 8) & 0xff)]
            out += data[start..<(start + length)]
            start += length
        } while start < data.count
        return out + GreyPNG.be32(Int(adler32(data)))
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var index = 0
        while index < data.count {
            // 5552 bytes keep the sums below 2^32 before the modulo (zlib's NMAX).
            let end = min(index + 5552, data.count)
            for i in index..<end {
                a += UInt32(data[i])
                b += a
            }
            a %= 65521
            b %= 65521
            index = end
        }
        return b << 16 | a
    }

    struct BitReader {
        let bytes: [UInt8]
        var position: Int
        var buffer = 0
        var count = 0

        /// The file, for messages.
        let path: String

        init(bytes: [UInt8], position: Int, path: String) {
            self.bytes = bytes
            self.position = position
            self.path = path
        }

        func failure(_ reason: String) -> DepthError { .cannotReadDepth(path: path, reason: reason) }

        /// The next `n` bits, least significant first (deflate's bit order).
        mutating func bits(_ n: Int) throws(DepthError) -> Int {
            while count < n {
                guard position < bytes.count else { throw failure("the image data ends inside a deflate block") }
                buffer |= Int(bytes[position]) << count
                position += 1
                count += 8
            }
            let value = buffer & ((1 << n) - 1)
            buffer >>= n
            count -= n
            return value
        }

        mutating func alignToByte() {
            buffer = 0
            count = 0
        }
    }

    /// A canonical Huffman code: symbols by code length, and counts per length.
    struct Code {
        var counts: [Int]
        var symbols: [Int]

        init(lengths: [Int]) {
            counts = [Int](repeating: 0, count: 16)
            for l in lengths { counts[l] += 1 }
            counts[0] = 0
            var offsets = [Int](repeating: 0, count: 16)
            for l in 1..<16 { offsets[l] = offsets[l - 1] + counts[l - 1] }
            symbols = [Int](repeating: 0, count: lengths.count)
            for (symbol, l) in lengths.enumerated() where l > 0 {
                symbols[offsets[l]] = symbol
                offsets[l] += 1
            }
        }

        /// Decodes one symbol, reading the code bit by bit (canonical codes are MSB first).
        func decode(_ reader: inout BitReader) throws(DepthError) -> Int {
            var code = 0, first = 0, index = 0
            for length in 1..<16 {
                code |= try reader.bits(1)
                let count = counts[length]
                if code - first < count { return symbols[index + code - first] }
                index += count
                first = (first + count) << 1
                code <<= 1
            }
            throw reader.failure("invalid Huffman code in the image data")
        }
    }

    static let fixedLiterals = Code(lengths: (0..<288).map { $0 < 144 ? 8 : $0 < 256 ? 9 : $0 < 280 ? 7 : 8 })
    static let fixedDistances = Code(lengths: [Int](repeating: 5, count: 30))
    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                               4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    private static func dynamicCodes(_ reader: inout BitReader) throws(DepthError) -> (Code, Code) {
        let literalCount = try reader.bits(5) + 257, distanceCount = try reader.bits(5) + 1, codeCount = try reader.bits(4) + 4
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        var codeLengths = [Int](repeating: 0, count: 19)
        for i in 0..<codeCount { codeLengths[order[i]] = try reader.bits(3) }
        let lengthCode = Code(lengths: codeLengths)
        var lengths: [Int] = []
        while lengths.count < literalCount + distanceCount {
            let symbol = try lengthCode.decode(&reader)
            switch symbol {
            case 0...15: lengths.append(symbol)
            case 16:
                guard let previous = lengths.last else { throw reader.failure("corrupt deflate code lengths") }
                lengths += [Int](repeating: previous, count: 3 + (try reader.bits(2)))
            case 17: lengths += [Int](repeating: 0, count: 3 + (try reader.bits(3)))
            default: lengths += [Int](repeating: 0, count: 11 + (try reader.bits(7)))
            }
        }
        guard lengths.count == literalCount + distanceCount else { throw reader.failure("corrupt deflate code lengths") }
        return (Code(lengths: Array(lengths[0..<literalCount])), Code(lengths: Array(lengths[literalCount...])))
    }

    private static func inflateBlock(_ reader: inout BitReader, _ out: inout [UInt8], literals: Code, distances: Code, limit: Int) throws(DepthError) {
        while true {
            let symbol = try literals.decode(&reader)
            if symbol < 256 {
                out.append(UInt8(symbol))
            } else if symbol == 256 {
                return
            } else {
                let index = symbol - 257
                guard index < lengthBase.count else { throw reader.failure("invalid deflate length symbol") }
                let length = lengthBase[index] + (try reader.bits(lengthExtra[index]))
                let distanceSymbol = try distances.decode(&reader)
                guard distanceSymbol < distanceBase.count else { throw reader.failure("invalid deflate distance symbol") }
                let distance = distanceBase[distanceSymbol] + (try reader.bits(distanceExtra[distanceSymbol]))
                guard distance <= out.count else { throw reader.failure("deflate distance reaches before the data") }
                let start = out.count - distance
                for i in 0..<length { out.append(out[start + i]) }
            }
            guard out.count <= limit else { throw reader.failure("the image data holds more than \(limit) bytes") }
        }
    }
}
