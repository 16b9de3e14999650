import DinoTensor
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One file stored in a tar archive.
public struct TarMember: Sendable, Equatable {
    /// The member's path inside the archive (GNU long name or pax `path` applied, `./` removed).
    public var name: String
    /// Bytes of data.
    public var size: Int
    /// Byte offset of the member's (last) header block, for error messages.
    public var headerOffset: Int
    /// Byte offset of the member's data.
    public var dataOffset: Int
}

/// Reads the regular files of a tar archive one after another from a file descriptor, without
/// unpacking anything to disk and without holding more than one member in memory.
///
/// Reads POSIX ustar, old GNU and V7 headers, GNU long names (`././@LongLink`, types `L` and
/// `K`), pax extended headers (`x`, whose `path` and `size` apply to the next member) and pax
/// global headers (`g`, checked and ignored). Every header's checksum is verified. Directories,
/// links, devices and sparse files are skipped. A file that ends inside a header or a member, or
/// without the end-of-archive block, is an error naming the offset.
public final class TarReader {
    /// The archive's path, for error messages.
    public let path: String
    /// The archive's size in bytes.
    public let fileSize: Int
    private let descriptor: Int32
    /// Offset of the next header block.
    private var offset = 0
    private var finished = false

    /// Bytes in a tar block.
    public static let blockSize = 512
    /// Longest GNU long name or pax header read into memory.
    static let maxMetadataBytes = 1 << 20

    /// Opens the archive at `url` for reading.
    public init(url: URL) throws(DatasetError) {
        path = url.path
        do {
            (descriptor, fileSize) = try InputFile.openRegularFile(url)
        } catch {
            throw .cannotRead(path: url.path, reason: error.detail)
        }
    }

    deinit { close(descriptor) }

    /// The next regular file, or nil after the end-of-archive block.
    public func next() throws(DatasetError) -> TarMember? {
        guard !finished else { return nil }
        var longName: String?
        var pax: [String: String] = [:]
        while true {
            let headerOffset = offset
            guard headerOffset + Self.blockSize <= fileSize else {
                let reason = headerOffset == fileSize
                    ? "the file ends without the end-of-archive block"
                    : "the file ends \(fileSize - headerOffset) bytes into a header"
                throw .truncatedTar(path: path, offset: headerOffset, reason: reason)
            }
            let header = try read(at: headerOffset, count: Self.blockSize)
            if header.allSatisfy({ $0 == 0 }) {
                // A zero block ends the archive; writers add a second one and pad to a record,
                // which need not be read.
                finished = true
                return nil
            }
            try verifyChecksum(header, at: headerOffset)
            let typeFlag = header[156]
            var size = try number(header, 124, 12, field: "size", at: headerOffset)
            if let paxSize = pax["size"], typeFlag != UInt8(ascii: "x"), typeFlag != UInt8(ascii: "g") {
                guard let value = Int(paxSize), value >= 0 else {
                    throw .invalidTar(path: path, offset: headerOffset, reason: "pax size '\(paxSize)' is not a byte count")
                }
                size = value
            }
            let dataOffset = headerOffset + Self.blockSize
            guard size <= fileSize - dataOffset else {
                throw .truncatedTar(path: path, offset: headerOffset,
                                    reason: "a member declares \(size) bytes but only \(fileSize - dataOffset) follow its header")
            }
            let padded = (size + Self.blockSize - 1) / Self.blockSize * Self.blockSize
            offset = dataOffset + min(padded, fileSize - dataOffset)
            switch typeFlag {
            case UInt8(ascii: "L"):
                longName = cString(try metadata(at: dataOffset, size: size, headerOffset: headerOffset))
            case UInt8(ascii: "K"):
                // A long link target: links are skipped, so only its size matters.
                continue
            case UInt8(ascii: "x"):
                pax = try paxRecords(try metadata(at: dataOffset, size: size, headerOffset: headerOffset), at: headerOffset)
            case UInt8(ascii: "g"):
                _ = try paxRecords(try metadata(at: dataOffset, size: size, headerOffset: headerOffset), at: headerOffset)
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                let name = pax["path"] ?? longName ?? headerName(header)
                return TarMember(name: Self.clean(name), size: size, headerOffset: headerOffset, dataOffset: dataOffset)
            default:
                // Directories, links, devices, FIFOs, sparse files: nothing to read.
                longName = nil
                pax = [:]
            }
        }
    }

    /// The data of `member`, refused when larger than `limit` bytes.
    public func data(of member: TarMember, limit: Int) throws(DatasetError) -> Data {
        guard member.size <= limit else {
            throw .memberTooLarge(path: path, member: member.name, size: member.size, limit: limit)
        }
        return Data(try read(at: member.dataOffset, count: member.size))
    }

    /// `name` without the `./` prefixes archivers add.
    static func clean(_ name: String) -> String {
        var text = Substring(name)
        while text.hasPrefix("./") { text = text.dropFirst(2) }
        return String(text)
    }

    private func read(at position: Int, count: Int) throws(DatasetError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress.map { $0 + done }, count - done, off_t(position + done))
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw .cannotRead(path: path, reason: "at byte \(position + done): \(String(cString: strerror(errno)))")
            }
            guard got > 0 else {
                throw .truncatedTar(path: path, offset: position + done, reason: "the file shrank while being read")
            }
            done += got
        }
        return bytes
    }

    private func metadata(at position: Int, size: Int, headerOffset: Int) throws(DatasetError) -> [UInt8] {
        guard size <= Self.maxMetadataBytes else {
            throw .invalidTar(path: path, offset: headerOffset,
                              reason: "a long-name or pax header of \(size) bytes is over the limit of \(Self.maxMetadataBytes)")
        }
        return try read(at: position, count: size)
    }

    /// The checksum is the sum of the header's bytes with the checksum field counted as spaces;
    /// some old writers summed signed bytes, so either sum is accepted.
    private func verifyChecksum(_ header: [UInt8], at position: Int) throws(DatasetError) {
        let stored = try number(header, 148, 8, field: "checksum", at: position)
        var unsigned = 0
        var signed = 0
        for (i, byte) in header.enumerated() {
            let value = (148..<156).contains(i) ? 0x20 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else {
            throw .invalidTar(path: path, offset: position, reason: "checksum mismatch: the header records \(stored), its bytes sum to \(unsigned)")
        }
    }

    /// A numeric header field: octal digits (space- or NUL-terminated, leading spaces allowed),
    /// or GNU base-256 when the first byte has its high bit set (sizes of 8 GiB and more).
    private func number(_ header: [UInt8], _ start: Int, _ length: Int, field: String, at position: Int) throws(DatasetError) -> Int {
        let bytes = header[start..<(start + length)]
        if let first = bytes.first, first & 0x80 != 0 {
            guard first == 0x80 else {
                throw .invalidTar(path: path, offset: position, reason: "the \(field) field is a negative base-256 number")
            }
            var value = 0
            for byte in bytes.dropFirst() {
                guard value <= (Int.max >> 8) else {
                    throw .invalidTar(path: path, offset: position, reason: "the \(field) field overflows")
                }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var value = 0
        var index = bytes.startIndex
        while index < bytes.endIndex, bytes[index] == UInt8(ascii: " ") { index += 1 }
        while index < bytes.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[index]) {
            guard value <= (Int.max >> 3) else {
                throw .invalidTar(path: path, offset: position, reason: "the \(field) field overflows")
            }
            value = value << 3 | Int(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        guard bytes[index...].allSatisfy({ $0 == 0 || $0 == UInt8(ascii: " ") }) else {
            let text = String(decoding: bytes.map { (32..<127).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
            throw .invalidTar(path: path, offset: position, reason: "the \(field) field '\(text)' is not an octal number (not a tar file?)")
        }
        return value
    }

    /// The ustar name: `prefix/name` when the POSIX magic is present and the prefix is set (the
    /// old GNU format keeps other data in the prefix bytes).
    private func headerName(_ header: [UInt8]) -> String {
        let name = cString(header[0..<100])
        let posix = Array(header[257..<263]) == Array("ustar\0".utf8)
        let prefix = posix ? cString(header[345..<500]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    private func cString<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Pax records, each `LENGTH KEY=VALUE\n` where LENGTH counts the whole record.
    private func paxRecords(_ bytes: [UInt8], at position: Int) throws(DatasetError) -> [String: String] {
        var records: [String: String] = [:]
        var index = 0
        while index < bytes.count {
            // Writers may pad the data block with NULs after the last record.
            if bytes[index] == 0, bytes[index...].allSatisfy({ $0 == 0 }) { break }
            guard let space = bytes[index...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: bytes[index..<space], as: UTF8.self)),
                  length > space - index + 1, index + length <= bytes.count, bytes[index + length - 1] == UInt8(ascii: "\n")
            else {
                throw .invalidTar(path: path, offset: position, reason: "malformed pax record at byte \(index) of the extended header")
            }
            let record = bytes[(space + 1)..<(index + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else {
                throw .invalidTar(path: path, offset: position, reason: "pax record at byte \(index) has no '='")
            }
            records[String(decoding: record[record.startIndex..<equals], as: UTF8.self)] =
                String(decoding: record[(equals + 1)...], as: UTF8.self)
            index += length
        }
        return records
    }
}
