import Foundation

/// The pixel size an image file declares in its header, read without decoding, so that
/// decompression bombs and oversized images are refused before any pixel memory is allocated.
enum ImageHeader {
    /// `(width, height)` as declared, or nil when the header is too short or not understood
    /// (the decoder then reports the problem; a JPEG without a frame header the way libjpeg
    /// reads it is refused by the caller).
    static func declaredSize(_ data: Data, format: ImageFormat) -> (width: Int, height: Int)? {
        // Their headers can be anywhere in the file: read in place.
        if format == .jpeg { return data.withUnsafeBytes { jpegSize($0) } }
        if format == .tiff { return data.withUnsafeBytes { tiffSize($0) } }
        let bytes = [UInt8](data.prefix(64))
        func be16(_ i: Int) -> Int { Int(bytes[i]) << 8 | Int(bytes[i + 1]) }
        func be32(_ i: Int) -> Int { be16(i) << 16 | be16(i + 2) }
        func le16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        func le24(_ i: Int) -> Int { le16(i) | Int(bytes[i + 2]) << 16 }
        func le32(_ i: Int) -> Int { le16(i) | le16(i + 2) << 16 }
        switch format {
        case .png:
            // Signature (8), IHDR length and type (8), then width and height, big-endian.
            guard bytes.count >= 24, Array(bytes[12..<16]) == Array("IHDR".utf8) else { return nil }
            return (be32(16), be32(20))
        case .jpeg, .tiff:
            return nil  // read above
        case .webp:
            guard bytes.count >= 30 else { return nil }
            switch String(decoding: bytes[12..<16], as: UTF8.self) {
            case "VP8 ": return (le16(26) & 0x3FFF, le16(28) & 0x3FFF)
            case "VP8L":
                let bits = le32(21)
                return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            case "VP8X": return (le24(24) + 1, le24(27) + 1)
            default: return nil
            }
        case .bmp:
            guard bytes.count >= 26 else { return nil }
            let height = Int32(bitPattern: UInt32(le32(22)))
            return (Int(Int32(bitPattern: UInt32(le32(18))).magnitude), Int(height.magnitude))
        case .gif:
            guard bytes.count >= 10 else { return nil }
            return (le16(6), le16(8))
        }
    }

    /// The frame size of a JPEG, found as libjpeg finds its frame header: bytes that are not
    /// 0xFF before a marker are skipped (libjpeg warns and goes on; a header walk that gave up
    /// there let an 8 GB frame past the pixel limit, found by Scripts/fuzz.sh), fill bytes and
    /// stuffed zeros too, and the segments before the frame by their lengths.
    // ref: libjpeg-turbo jdmarker.c next_marker, read_markers
    private static func jpegSize(_ bytes: UnsafeRawBufferPointer) -> (width: Int, height: Int)? {
        func be16(_ i: Int) -> Int { Int(bytes[i]) << 8 | Int(bytes[i + 1]) }
        var i = 2
        while true {
            while i < bytes.count, bytes[i] != 0xFF { i += 1 }
            while i < bytes.count, bytes[i] == 0xFF { i += 1 }
            guard i < bytes.count else { return nil }
            let marker = bytes[i]
            i += 1
            switch marker {
            case 0x00, 0x01, 0xD0...0xD7:
                continue  // a stuffed zero, TEM, RSTn: no segment
            case 0xD8, 0xD9, 0xDA:
                return nil  // SOI again, EOI or a scan before any frame: libjpeg fails too
            case 0xC0...0xCF where marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
                // Length (2), precision (1), height (2), width (2).
                guard i + 7 <= bytes.count else { return nil }
                return (be16(i + 5), be16(i + 3))
            default:
                guard i + 2 <= bytes.count, be16(i) >= 2 else { return nil }
                i += be16(i)
            }
        }
    }

    /// ImageWidth (256) and ImageLength (257) of the first IFD.
    private static func tiffSize(_ bytes: UnsafeRawBufferPointer) -> (width: Int, height: Int)? {
        guard bytes.count >= 8 else { return nil }
        let little = bytes[0] == 0x49
        func u16(_ i: Int) -> Int { little ? Int(bytes[i]) | Int(bytes[i + 1]) << 8 : Int(bytes[i]) << 8 | Int(bytes[i + 1]) }
        func u32(_ i: Int) -> Int { little ? u16(i) | u16(i + 2) << 16 : u16(i) << 16 | u16(i + 2) }
        let ifd = u32(4)
        guard ifd + 2 <= bytes.count else { return nil }
        let count = u16(ifd)
        var width: Int?, height: Int?
        for entry in 0..<count {
            let e = ifd + 2 + entry * 12
            guard e + 12 <= bytes.count else { break }
            let tag = u16(e), type = u16(e + 2)
            let value = type == 3 ? u16(e + 8) : u32(e + 8)
            if tag == 256 { width = value }
            if tag == 257 { height = value }
        }
        guard let width, let height else { return nil }
        return (width, height)
    }
}
