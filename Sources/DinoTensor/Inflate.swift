/// A DEFLATE decoder (RFC 1951, raw stream as zip archives store it) for checkpoint members
/// that were compressed.
///
/// It is written for safety before speed: every read is bounds checked, the output can never
/// grow past the size the archive declared, and anything the RFC does not allow (a reserved
/// block type, an over-subscribed code, a distance reaching before the start of the output, a
/// stored block whose length check fails) is an error.
enum Inflate {
    /// Why a stream could not be decoded.
    struct Failure: Error, Equatable {
        var reason: String
    }

    /// Decodes the raw DEFLATE stream `input`, which must produce exactly `outputSize` bytes and
    /// end within its last byte.
    static func decompress(_ input: UnsafeRawBufferPointer, outputSize: Int) throws(Failure) -> [UInt8] {
        precondition(outputSize >= 0, "negative output size")
        var output = [UInt8](repeating: 0, count: outputSize)
        var reader = BitReader(input: input)
        let produced = try output.withUnsafeMutableBufferPointer { (buffer) throws(Failure) -> Int in
            var writer = Writer(buffer: buffer)
            var isLast = false
            while !isLast {
                isLast = try reader.bits(1) == 1
                switch try reader.bits(2) {
                case 0: try copyStoredBlock(&reader, &writer)
                case 1: try decodeBlock(&reader, &writer, literals: FixedCodes.literals, distances: FixedCodes.distances)
                case 2:
                    let (literals, distances) = try readDynamicCodes(&reader)
                    try decodeBlock(&reader, &writer, literals: literals, distances: distances)
                default: throw Failure(reason: "reserved block type 3")
                }
            }
            return writer.count
        }
        guard produced == outputSize else {
            throw Failure(reason: "the stream holds \(produced) bytes, the archive declares \(outputSize)")
        }
        guard reader.position == input.count else {
            throw Failure(reason: "\(input.count - reader.position) bytes follow the end of the stream")
        }
        return output
    }

    // MARK: - Bits and bytes

    /// Reads bits least-significant first, as DEFLATE packs them.
    private struct BitReader {
        let input: UnsafeRawBufferPointer
        /// The next byte not yet in `buffer`.
        var position = 0
        var buffer: UInt32 = 0
        /// Valid bits in `buffer`; always below 8 between calls, because bytes are only taken
        /// while fewer bits than asked for are held.
        var count = 0

        init(input: UnsafeRawBufferPointer) { self.input = input }

        /// The next `n` (at most 16) bits as an integer.
        mutating func bits(_ n: Int) throws(Failure) -> Int {
            while count < n {
                guard position < input.count else { throw Failure(reason: "the stream ends early") }
                buffer |= UInt32(input[position]) << UInt32(count)
                position += 1
                count += 8
            }
            let value = Int(buffer & ((1 << UInt32(n)) - 1))
            buffer >>= UInt32(n)
            count -= n
            return value
        }

        /// Drops the bits left in the current byte (stored blocks start on a byte boundary).
        mutating func alignToByte() {
            buffer = 0
            count = 0
        }
    }

    /// The output, with the declared size as a hard limit.
    private struct Writer {
        let buffer: UnsafeMutableBufferPointer<UInt8>
        var count = 0

        mutating func append(_ byte: UInt8) throws(Failure) {
            guard count < buffer.count else { throw Failure(reason: "the stream holds more than the declared \(buffer.count) bytes") }
            buffer[count] = byte
            count += 1
        }

        /// Copies `length` bytes starting `distance` back; the ranges may overlap (a run).
        mutating func copyMatch(length: Int, distance: Int) throws(Failure) {
            guard distance <= count else {
                throw Failure(reason: "a match reaches \(distance) bytes back but only \(count) were written")
            }
            guard length <= buffer.count - count else {
                throw Failure(reason: "the stream holds more than the declared \(buffer.count) bytes")
            }
            for _ in 0..<length {
                buffer[count] = buffer[count - distance]
                count += 1
            }
        }
    }

    private static func copyStoredBlock(_ reader: inout BitReader, _ writer: inout Writer) throws(Failure) {
        reader.alignToByte()
        let start = reader.position
        guard reader.input.count - start >= 4 else { throw Failure(reason: "a stored block header is cut short") }
        let length = Int(reader.input[start]) | Int(reader.input[start + 1]) << 8
        let complement = Int(reader.input[start + 2]) | Int(reader.input[start + 3]) << 8
        guard length ^ 0xFFFF == complement else { throw Failure(reason: "a stored block's length check fails") }
        guard reader.input.count - start - 4 >= length else { throw Failure(reason: "a stored block runs past the end of the stream") }
        for i in 0..<length { try writer.append(reader.input[start + 4 + i]) }
        reader.position = start + 4 + length
    }

    // MARK: - Huffman codes

    /// A canonical Huffman code given by its code lengths (RFC 1951 section 3.2.2): codes of
    /// one length are consecutive integers assigned in symbol order, shorter codes first.
    private struct Code {
        /// How many symbols have each code length 0...15.
        var lengthCounts = [Int](repeating: 0, count: 16)
        /// Symbols sorted by code (by length, then by symbol).
        var symbols: [Int] = []

        /// Whether the lengths ask for more codes than exist (such a stream is invalid).
        var isOverSubscribed = false
        /// The longest code; a bit sequence longer than it is no code at all.
        var maxLength = 0

        /// Builds the code from lengths in 0...15. An incomplete set is accepted (the RFC allows
        /// a single distance code) and its unused codes fail on decode.
        init(lengths: ArraySlice<Int>) {
            for length in lengths { lengthCounts[length] += 1 }
            var available = 1
            for length in 1...15 {
                available = available * 2 - lengthCounts[length]
                if available < 0 { isOverSubscribed = true }
                if lengthCounts[length] > 0 { maxLength = length }
            }
            var next = [Int](repeating: 0, count: 16)
            for length in 1..<15 { next[length + 1] = next[length] + lengthCounts[length] }
            symbols = [Int](repeating: 0, count: lengths.count - lengthCounts[0])
            for (symbol, length) in lengths.enumerated() where length != 0 {
                symbols[next[length]] = symbol
                next[length] += 1
            }
        }

        /// Reads one symbol, a bit at a time: after `length` bits the code is compared with the
        /// range of codes of that length.
        func decode(_ reader: inout BitReader) throws(Failure) -> Int {
            var code = 0  // the bits read so far, first bit most significant
            var first = 0  // the first code of the current length
            var index = 0  // where the current length's symbols start in `symbols`
            for length in stride(from: 1, through: maxLength, by: 1) {
                code |= try reader.bits(1)
                let count = lengthCounts[length]
                if code - first < count { return symbols[index + code - first] }
                index += count
                first = (first + count) << 1
                code <<= 1
            }
            throw Failure(reason: "a bit sequence that is no Huffman code of the block")
        }
    }

    /// The fixed codes of block type 1.
    private enum FixedCodes {
        static let literals: Code = {
            var lengths = [Int](repeating: 8, count: 288)
            for i in 144..<256 { lengths[i] = 9 }
            for i in 256..<280 { lengths[i] = 7 }
            return Code(lengths: lengths[...])
        }()
        static let distances = Code(lengths: [Int](repeating: 5, count: 30)[...])
    }

    /// Order in which a dynamic block lists the code-length code's lengths.
    private static let codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    private static func readDynamicCodes(_ reader: inout BitReader) throws(Failure) -> (Code, Code) {
        let literalCount = try reader.bits(5) + 257
        let distanceCount = try reader.bits(5) + 1
        let codeLengthCount = try reader.bits(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else {
            throw Failure(reason: "a dynamic block declares \(literalCount) literal and \(distanceCount) distance codes")
        }
        var codeLengthLengths = [Int](repeating: 0, count: 19)
        for i in 0..<codeLengthCount { codeLengthLengths[codeLengthOrder[i]] = try reader.bits(3) }
        let codeLengthCode = try checked(Code(lengths: codeLengthLengths[...]))

        var lengths: [Int] = []
        let total = literalCount + distanceCount
        lengths.reserveCapacity(total)
        while lengths.count < total {
            let symbol = try codeLengthCode.decode(&reader)
            let value: Int
            let repeats: Int
            switch symbol {
            case 0...15:
                value = symbol
                repeats = 1
            case 16:
                guard let previous = lengths.last else { throw Failure(reason: "a repeat code with no previous length") }
                value = previous
                repeats = 3 + (try reader.bits(2))
            case 17:
                value = 0
                repeats = 3 + (try reader.bits(3))
            default:
                value = 0
                repeats = 11 + (try reader.bits(7))
            }
            guard lengths.count + repeats <= total else { throw Failure(reason: "code lengths run past the declared count") }
            lengths += repeatElement(value, count: repeats)
        }
        guard lengths[256] != 0 else { throw Failure(reason: "a dynamic block without an end-of-block code") }
        return (try checked(Code(lengths: lengths[0..<literalCount])), try checked(Code(lengths: lengths[literalCount...])))
    }

    private static func checked(_ code: Code) throws(Failure) -> Code {
        guard !code.isOverSubscribed else { throw Failure(reason: "an over-subscribed Huffman code") }
        return code
    }

    // MARK: - Compressed blocks

    private static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtraBits = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBase = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
        8193, 12289, 16385, 24577,
    ]
    private static let distanceExtraBits = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    private static func decodeBlock(_ reader: inout BitReader, _ writer: inout Writer, literals: Code, distances: Code) throws(Failure) {
        while true {
            let symbol = try literals.decode(&reader)
            if symbol < 256 {
                try writer.append(UInt8(symbol))
                continue
            }
            if symbol == 256 { return }
            let lengthIndex = symbol - 257
            guard lengthIndex < lengthBase.count else { throw Failure(reason: "invalid length symbol \(symbol)") }
            let length = lengthBase[lengthIndex] + (try reader.bits(lengthExtraBits[lengthIndex]))
            let distanceSymbol = try distances.decode(&reader)
            guard distanceSymbol < distanceBase.count else { throw Failure(reason: "invalid distance symbol \(distanceSymbol)") }
            let distance = distanceBase[distanceSymbol] + (try reader.bits(distanceExtraBits[distanceSymbol]))
            try writer.copyMatch(length: length, distance: distance)
        }
    }
}
