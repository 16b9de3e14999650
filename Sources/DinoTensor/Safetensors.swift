import CDinoKernels
import Foundation

/// Element types a safetensors file can declare.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }
}

/// Anything that hands out named float tensors: one safetensors file or a sharded checkpoint.
public protocol TensorSource: Sendable {
    /// Tensor names, in file order.
    var tensorNames: [String] { get }
    /// The declared shape of a tensor, without reading its data.
    func shape(of name: String) throws(TensorFileError) -> [Int]
    /// The tensor converted to float32.
    func tensor(_ name: String) throws(TensorFileError) -> Tensor
    /// Where the tensor is stored, for error messages.
    func location(of name: String) -> String
}

/// A memory-mapped `.safetensors` file whose header has been checked as strictly as the
/// reference `safetensors` library checks it.
///
/// Layout: 8-byte little-endian header length `n`, `n` bytes of JSON header
/// (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`),
/// then the data section. Offsets are relative to the data section and must tile it exactly.
public final class SafetensorsFile: TensorSource {
    /// One tensor's header entry.
    public struct Entry: Sendable, Equatable {
        /// The tensor's name.
        public var name: String
        /// Declared element type.
        public var dtype: SafetensorsDType
        /// Declared shape.
        public var shape: [Int]
        /// Byte range inside the data section.
        public var byteRange: Range<Int>
    }

    /// Largest header the reader accepts, as in the reference implementation.
    public static let maxHeaderBytes = 100_000_000

    /// The file's path.
    public let path: String
    /// Entries in header order.
    public let entries: [Entry]
    /// The free-form `__metadata__` map.
    public let metadata: [String: String]
    private let index: [String: Int]
    private let file: MappedFile
    private let dataStart: Int

    /// Maps and validates the file at `url`.
    public convenience init(url: URL) throws(TensorFileError) {
        try self.init(mapped: MappedFile(url: url))
    }

    /// Validates safetensors bytes held in memory; `name` stands for the file in messages.
    public convenience init(data: Data, name: String) throws(TensorFileError) {
        try self.init(mapped: MappedFile(copying: data, path: name))
    }

    /// Validates the bytes of a mapped (or copied) file.
    public init(mapped file: MappedFile) throws(TensorFileError) {
        let path = file.path
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw .truncated(path: path, reason: "\(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw .invalidHeader(path: path, reason: "header length \(headerLength) exceeds the limit of \(Self.maxHeaderBytes) bytes")
        }
        guard Int(headerLength) <= bytes.count - 8 else {
            throw .truncated(path: path, reason: "header of \(headerLength) bytes runs past the end of the \(bytes.count)-byte file")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + Int(headerLength))])
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw .invalidHeader(path: path, reason: "header does not start with '{'")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(headerBytes)
        } catch {
            throw .invalidHeader(path: path, reason: error.description)
        }
        guard let members = json.objectValue else { throw .invalidHeader(path: path, reason: "header is not a JSON object") }

        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard let items = value.objectValue else {
                    throw .invalidHeader(path: path, reason: "__metadata__ is not an object")
                }
                for (key, item) in items {
                    guard let text = item.stringValue else {
                        throw .invalidHeader(path: path, reason: "__metadata__ value for '\(key)' is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try Self.parseEntry(name: name, value: value, path: path))
        }

        // The data section must be tiled exactly: sorted by start, each tensor begins where the
        // previous one ended, the first at 0 and the last at the end of the file.
        let dataStart = 8 + Int(headerLength)
        let dataLength = bytes.count - dataStart
        var expectedStart = 0
        for entry in entries.sorted(by: { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }) {
            if entry.byteRange.lowerBound != expectedStart {
                let reason = entry.byteRange.lowerBound < expectedStart
                    ? "data_offsets \(entry.byteRange) overlap another tensor"
                    : "data_offsets \(entry.byteRange) leave a gap after byte \(expectedStart)"
                throw .invalidOffsets(path: path, tensor: entry.name, reason: reason)
            }
            expectedStart = entry.byteRange.upperBound
            if expectedStart > dataLength {
                throw .truncated(path: path, reason: "tensor '\(entry.name)' ends at data byte \(expectedStart) but the data section has \(dataLength) bytes")
            }
        }
        guard expectedStart == dataLength else {
            throw .invalidHeader(path: path, reason: "\(dataLength - expectedStart) bytes after the last tensor belong to no tensor")
        }

        self.path = path
        self.entries = entries
        self.metadata = metadata
        self.file = file
        self.dataStart = dataStart
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { index[entry.name] = i }
        self.index = index
    }

    private static func parseEntry(name: String, value: JSONValue, path: String) throws(TensorFileError) -> Entry {
        guard let fields = value.objectValue else {
            throw .invalidHeader(path: path, reason: "entry '\(name)' is not an object")
        }
        for (key, _) in fields where !["dtype", "shape", "data_offsets"].contains(key) {
            throw .invalidHeader(path: path, reason: "entry '\(name)' has unknown field '\(key)'")
        }
        guard let dtypeName = value["dtype"]?.stringValue else {
            throw .invalidHeader(path: path, reason: "entry '\(name)' has no string dtype")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw .unsupportedDType(path: path, tensor: name, dtype: dtypeName)
        }
        guard let dims = value["shape"]?.arrayValue else {
            throw .invalidHeader(path: path, reason: "entry '\(name)' has no shape array")
        }
        var shape: [Int] = []
        var count = 1
        for dim in dims {
            guard let d = dim.intValue, d >= 0 else {
                throw .invalidHeader(path: path, reason: "entry '\(name)' has an invalid dimension \(dim.serialized)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .invalidHeader(path: path, reason: "entry '\(name)' shape \(dims.map(\.serialized)) overflows") }
            count = product
            shape.append(d)
        }
        guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
            let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0, end >= begin
        else {
            throw .invalidOffsets(path: path, tensor: name, reason: "data_offsets must be [begin, end] with 0 <= begin <= end")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes == end - begin else {
            throw .byteCountMismatch(path: path, tensor: name, shape: shape, dtype: dtypeName, bytes: end - begin)
        }
        return Entry(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
    }

    /// Tensor names in header order.
    public var tensorNames: [String] { entries.map(\.name) }

    /// The header entry of `name`.
    public func entry(_ name: String) throws(TensorFileError) -> Entry {
        guard let i = index[name] else { throw .missingTensor(path: path, tensor: name) }
        return entries[i]
    }

    public func shape(of name: String) throws(TensorFileError) -> [Int] { try entry(name).shape }

    public func location(of name: String) -> String { path }

    /// The raw bytes of a tensor inside the mapping; valid while this object lives.
    public func withRawBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let e = try entry(name)
        return try withExtendedLifetime(file) {
            try body(UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.byteRange.lowerBound)..<(dataStart + e.byteRange.upperBound)]))
        }
    }

    /// The tensor converted to float32 (integer and boolean types are converted by value).
    public func tensor(_ name: String) throws(TensorFileError) -> Tensor {
        let e = try entry(name)
        let count = e.shape.reduce(1, *)
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.byteRange.lowerBound)..<(dataStart + e.byteRange.upperBound)])
        let scalars = withExtendedLifetime(file) { TensorBytes.decode(raw, dtype: e.dtype, count: count) }
        file.release((dataStart + e.byteRange.lowerBound)..<(dataStart + e.byteRange.upperBound))
        return Tensor(shape: e.shape, scalars: scalars)
    }

    /// Writes tensors to `url` as a safetensors file (F32), atomically.
    ///
    /// - Parameters:
    ///   - tensors: name and tensor pairs, written in this order; names must be unique.
    ///   - metadata: optional `__metadata__` strings.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to url: URL) throws(TensorFileError) {
        var seen = Set<String>()
        var members: [(key: String, value: JSONValue)] = []
        if !metadata.isEmpty {
            members.append(("__metadata__", .object(metadata.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })))
        }
        var offset = 0
        for (name, tensor) in tensors {
            guard seen.insert(name).inserted else { throw .duplicateTensor(path: url.path, tensor: name) }
            let size = tensor.count * 4
            members.append((name, .object([
                ("dtype", .string("F32")),
                ("shape", .array(tensor.shape.map { .number(String($0)) })),
                ("data_offsets", .array([.number(String(offset)), .number(String(offset + size))])),
            ])))
            offset += size
        }
        var header = Array(JSONValue.object(members).serialized.utf8)
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while (header.count % 8) != 0 { header.append(UInt8(ascii: " ")) }
        try AtomicFile.write(to: url) { handle in
            var length = UInt64(header.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: Data(header))
            for (_, tensor) in tensors {
                try tensor.scalars.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
            }
        }
    }
}

/// Conversion of stored element types to float32.
enum TensorBytes {
    static func decode(_ raw: UnsafeRawBufferPointer, dtype: SafetensorsDType, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            guard count > 0, let dst = out.baseAddress, let src = raw.baseAddress else {
                initialized = count
                return
            }
            switch dtype {
            case .F32:
                memcpy(dst, src, count * 4)
            case .F16, .BF16:
                // Copy first: the mapping gives no 2-byte alignment guarantee.
                let halves = [UInt16](unsafeUninitializedCapacity: count) { buffer, n in
                    if let base = buffer.baseAddress { memcpy(base, src, count * 2) }
                    n = count
                }
                if dtype == .F16 { dino_f16_to_f32(halves, dst, count) } else { dino_bf16_to_f32(halves, dst, count) }
            case .F64:
                for i in 0..<count { dst[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            case .I64:
                for i in 0..<count { dst[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))) }
            case .I32:
                for i in 0..<count { dst[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))) }
            case .I16:
                for i in 0..<count { dst[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))) }
            case .I8:
                for i in 0..<count { dst[i] = Float(raw.load(fromByteOffset: i, as: Int8.self)) }
            case .U8, .BOOL:
                for i in 0..<count { dst[i] = Float(raw[i]) }
            }
            initialized = count
        }
    }
}
