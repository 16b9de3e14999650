import Foundation

/// NumPy `.npy` files (format versions 1, 2 and 3), read into float32 tensors and written as
/// little-endian float32.
public enum NumpyFile {
    private static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Element types read from `descr` (little-endian or byte-order free only).
    private static let dtypes: [String: SafetensorsDType] = [
        "f4": .F32, "f8": .F64, "f2": .F16, "i8": .I64, "i4": .I32, "i2": .I16, "i1": .I8, "u1": .U8, "b1": .BOOL,
    ]

    /// Reads the array in `url` as float32 (other numeric types are converted by value).
    public static func read(_ url: URL) throws(TensorFileError) -> Tensor {
        try read(mapped: MappedFile(url: url))
    }

    /// Reads the array in the bytes of `file` (a mapping, or bytes copied in to parse or fuzz).
    public static func read(mapped file: MappedFile) throws(TensorFileError) -> Tensor {
        let path = file.path
        let bytes = file.bytes
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw .invalidHeader(path: path, reason: "not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw .truncated(path: path, reason: "header length missing") }
            headerLength = Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian)
            headerStart = 12
        default:
            throw .invalidHeader(path: path, reason: "unsupported .npy format version \(major)")
        }
        guard headerStart + headerLength <= bytes.count else {
            throw .truncated(path: path, reason: "header of \(headerLength) bytes runs past the end of the file")
        }
        guard let header = String(validating: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self) else {
            throw .invalidHeader(path: path, reason: "header is not UTF-8 text")
        }
        let fields = try parseHeader(header, path: path)
        guard !fields.fortranOrder else {
            throw .invalidHeader(path: path, reason: "Fortran-ordered arrays are not supported; save with np.ascontiguousarray")
        }
        var descr = fields.descr
        let order = descr.first
        if order == "<" || order == "|" || order == "=" {
            descr.removeFirst()
        } else if order == ">" {
            throw .unsupportedDType(path: path, tensor: "array", dtype: fields.descr + " (big-endian)")
        }
        guard let dtype = dtypes[descr] else { throw .unsupportedDType(path: path, tensor: "array", dtype: fields.descr) }
        var count = 1
        for d in fields.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .invalidHeader(path: path, reason: "shape \(fields.shape) overflows") }
            count = product
        }
        let dataStart = headerStart + headerLength
        let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, needed == bytes.count - dataStart else {
            throw .byteCountMismatch(path: path, tensor: "array", shape: fields.shape, dtype: fields.descr, bytes: bytes.count - dataStart)
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[dataStart...])
        let scalars = withExtendedLifetime(file) { TensorBytes.decode(raw, dtype: dtype, count: count) }
        return Tensor(shape: fields.shape, scalars: scalars)
    }

    /// Writes `tensor` to `url` as a little-endian float32 `.npy` (version 1), atomically.
    public static func write(_ tensor: Tensor, to url: URL) throws(TensorFileError) {
        let shapeText: String
        switch tensor.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        // Pad so that magic + version + length + header is a multiple of 64, ending in a newline.
        let total = 10 + header.count + 1
        header += [UInt8](repeating: UInt8(ascii: " "), count: (64 - total % 64) % 64)
        header.append(UInt8(ascii: "\n"))
        guard header.count <= Int(UInt16.max) else {
            throw .writeFailed(path: url.path, reason: "shape \(tensor.shape) makes the header too long")
        }
        try AtomicFile.write(to: url) { handle in
            var prefix = magic + [1, 0]
            prefix += [UInt8(header.count & 0xff), UInt8(header.count >> 8)]
            try handle.write(contentsOf: Data(prefix + header))
            try tensor.scalars.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
        }
    }

    private struct HeaderFields {
        var descr = ""
        var fortranOrder = false
        var shape: [Int] = []
    }

    /// Parses the Python dict literal of a .npy header, accepting only the three standard keys.
    private static func parseHeader(_ text: String, path: String) throws(TensorFileError) -> HeaderFields {
        var scanner = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        func bad(_ reason: String) -> TensorFileError { .invalidHeader(path: path, reason: "\(reason) in header \(text.debugDescription)") }
        func skipSpaces() { while let c = scanner.first, c == " " { scanner.removeFirst() } }
        func expect(_ c: Character) throws(TensorFileError) {
            skipSpaces()
            guard scanner.first == c else { throw bad("expected '\(c)'") }
            scanner.removeFirst()
        }
        func quoted() throws(TensorFileError) -> String {
            skipSpaces()
            guard let q = scanner.first, q == "'" || q == "\"" else { throw bad("expected a quoted string") }
            scanner.removeFirst()
            guard let end = scanner.firstIndex(of: q) else { throw bad("unterminated string") }
            let value = String(scanner[..<end])
            scanner = scanner[scanner.index(after: end)...]
            return value
        }
        var fields = HeaderFields()
        var seen = Set<String>()
        try expect("{")
        while true {
            skipSpaces()
            if scanner.first == "}" { scanner.removeFirst(); break }
            let key = try quoted()
            guard seen.insert(key).inserted else { throw bad("duplicate key '\(key)'") }
            try expect(":")
            skipSpaces()
            switch key {
            case "descr":
                fields.descr = try quoted()
            case "fortran_order":
                if scanner.hasPrefix("True") { fields.fortranOrder = true; scanner.removeFirst(4) }
                else if scanner.hasPrefix("False") { fields.fortranOrder = false; scanner.removeFirst(5) }
                else { throw bad("fortran_order must be True or False") }
            case "shape":
                try expect("(")
                while true {
                    skipSpaces()
                    if scanner.first == ")" { scanner.removeFirst(); break }
                    let digits = scanner.prefix { $0.isASCII && $0.isNumber }
                    guard !digits.isEmpty, let d = Int(digits) else { throw bad("shape must hold non-negative integers") }
                    fields.shape.append(d)
                    scanner.removeFirst(digits.count)
                    skipSpaces()
                    if scanner.first == "," { scanner.removeFirst() }
                    else if scanner.first != ")" { throw bad("expected ',' or ')' in shape") }
                }
            default:
                throw bad("unknown key '\(key)'")
            }
            skipSpaces()
            if scanner.first == "," { scanner.removeFirst() }
            else if scanner.first != "}" { throw bad("expected ',' or '}'") }
        }
        guard seen == ["descr", "fortran_order", "shape"] else { throw bad("descr, fortran_order and shape are all required") }
        guard scanner.allSatisfy({ $0 == " " }) else { throw bad("unexpected text after the dict") }
        return fields
    }
}
