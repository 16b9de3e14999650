/// One member of a zip archive, located and checked against the file.
struct ZipMember: Sendable {
    /// The member's name (a path inside the archive).
    var name: String
    /// 0 = stored, 8 = deflate.
    var method: UInt16
    /// The CRC-32 of the uncompressed bytes; 0 when the writer did not record one (PyTorch can
    /// be told to skip it).
    var crc32: UInt32
    var compressedSize: Int
    var uncompressedSize: Int
    /// Where the member's local header starts in the file.
    var headerOffset: Int
    /// Where the member's (possibly compressed) bytes start in the file.
    var dataOffset: Int
}

/// The bytes of a member: a slice of the mapping when stored, a decompressed copy when deflated.
enum ZipMemberBytes {
    case mapped(UnsafeRawBufferPointer)
    case owned([UInt8])
}

/// The central directory of a zip archive (zip64 included), read strictly from a memory
/// mapping: every member must lie inside the file, before the central directory, without
/// overlapping another, and its local header must agree with the central directory.
///
/// Only what `torch.save` writes is supported: a single disk, members stored or deflated, no
/// encryption.
struct ZipArchive: Sendable {
    /// The archive's path, for error messages.
    let path: String
    /// Members in central-directory order.
    let members: [ZipMember]
    private let index: [String: Int]

    /// Most members accepted; a checkpoint has one per storage plus a handful.
    static let maxMembers = 1 << 20

    private static let localHeaderSignature: UInt32 = 0x0403_4B50
    private static let centralHeaderSignature: UInt32 = 0x0201_4B50
    private static let endSignature: UInt32 = 0x0605_4B50
    private static let zip64EndSignature: UInt32 = 0x0606_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50

    /// Reads the directory of the archive in `bytes` (the whole file).
    init(bytes: UnsafeRawBufferPointer, path: String) throws(TensorFileError) {
        self.path = path
        let reader = LittleEndianBytes(bytes: bytes)
        let size = bytes.count

        // The end record is the last 22 bytes plus a comment of at most 65535 bytes; searching
        // from the end and requiring the comment to reach exactly to the end of the file keeps
        // a signature inside the comment from being taken for the record.
        var endOffset: Int?
        if size >= 22 {
            var candidate = size - 22
            let lowest = max(0, size - 22 - 0xFFFF)
            while candidate >= lowest {
                if reader.u32(candidate) == Self.endSignature, candidate + 22 + Int(reader.u16(candidate + 20)) == size {
                    endOffset = candidate
                    break
                }
                candidate -= 1
            }
        }
        guard let end = endOffset else {
            if size >= 4, reader.u32(0) == Self.localHeaderSignature {
                throw .truncated(path: path, reason: "zip archive without its end-of-central-directory record (the download or copy was cut short)")
            }
            throw .invalidHeader(path: path, reason: "not a zip archive (no end-of-central-directory record)")
        }

        var diskNumber = Int(reader.u16(end + 4))
        var directoryDisk = Int(reader.u16(end + 6))
        var membersOnDisk = Int(reader.u16(end + 8))
        var memberCount = Int(reader.u16(end + 10))
        var directorySize = Int(reader.u32(end + 12))
        var directoryOffset = Int(reader.u32(end + 16))
        // The central directory must end before the zip64 end record when there is one.
        var directoryLimit = end
        if end >= 20, reader.u32(end - 20) == Self.zip64LocatorSignature {
            let locator = end - 20
            guard reader.u32(locator + 4) == 0, reader.u32(locator + 16) == 1 else {
                throw .invalidHeader(path: path, reason: "multi-disk zip archives are not supported")
            }
            let record64 = reader.u64(locator + 8)
            guard locator >= 56, record64 <= UInt64(locator - 56) else {
                throw .invalidHeader(path: path, reason: "zip64 end record offset \(record64) is outside the file")
            }
            let record = Int(record64)
            guard reader.u32(record) == Self.zip64EndSignature else {
                throw .invalidHeader(path: path, reason: "no zip64 end record at offset \(record)")
            }
            diskNumber = Int(reader.u32(record + 16))
            directoryDisk = Int(reader.u32(record + 20))
            let fields = [reader.u64(record + 24), reader.u64(record + 32), reader.u64(record + 40), reader.u64(record + 48)]
            guard fields.allSatisfy({ $0 <= UInt64(size) }) else {
                throw .invalidHeader(path: path, reason: "zip64 end record holds sizes larger than the file")
            }
            membersOnDisk = Int(fields[0])
            memberCount = Int(fields[1])
            directorySize = Int(fields[2])
            directoryOffset = Int(fields[3])
            directoryLimit = record
        } else if membersOnDisk == 0xFFFF || memberCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            throw .invalidHeader(path: path, reason: "zip64 sizes without a zip64 end record")
        }
        guard diskNumber == 0, directoryDisk == 0, membersOnDisk == memberCount else {
            throw .invalidHeader(path: path, reason: "multi-disk zip archives are not supported")
        }
        guard memberCount <= Self.maxMembers else {
            throw .invalidHeader(path: path, reason: "\(memberCount) members exceed the limit of \(Self.maxMembers)")
        }
        guard directoryOffset <= directoryLimit, directorySize <= directoryLimit - directoryOffset else {
            throw .truncated(path: path, reason: "the central directory (\(directorySize) bytes at \(directoryOffset)) runs past its end record")
        }

        var members: [ZipMember] = []
        // The declared count is only trusted as far as the directory's size can hold it.
        members.reserveCapacity(min(memberCount, directorySize / 46))
        var index: [String: Int] = [:]
        var position = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for number in 0..<memberCount {
            let member = try Self.readCentralHeader(reader, at: &position, end: directoryEnd, dataLimit: directoryOffset, number: number, path: path)
            guard index[member.name] == nil else {
                throw .invalidHeader(path: path, reason: "zip member '\(member.name)' appears twice")
            }
            index[member.name] = members.count
            members.append(member)
        }
        guard position == directoryEnd else {
            throw .invalidHeader(path: path, reason: "\(directoryEnd - position) bytes of the central directory belong to no member")
        }

        // Members may not share bytes: sorted by position, each one's data ends before the next
        // local header starts.
        var previousEnd = 0
        var previousName = ""
        for member in members.sorted(by: { $0.headerOffset < $1.headerOffset }) {
            guard member.headerOffset >= previousEnd else {
                throw .invalidHeader(path: path, reason: "zip members '\(previousName)' and '\(member.name)' overlap")
            }
            previousEnd = member.dataOffset + member.compressedSize
            previousName = member.name
        }
        self.members = members
        self.index = index
    }

    /// The member called `name`, if any.
    func member(named name: String) -> ZipMember? {
        index[name].map { members[$0] }
    }

    private static func readCentralHeader(
        _ reader: LittleEndianBytes, at position: inout Int, end: Int, dataLimit: Int, number: Int, path: String
    ) throws(TensorFileError) -> ZipMember {
        let start = position
        guard end - start >= 46, reader.u32(start) == centralHeaderSignature else {
            throw .invalidHeader(path: path, reason: "central directory entry \(number) at offset \(start) is malformed")
        }
        let flags = reader.u16(start + 8)
        let method = reader.u16(start + 10)
        let crc = reader.u32(start + 16)
        var compressedSize = UInt64(reader.u32(start + 20))
        var uncompressedSize = UInt64(reader.u32(start + 24))
        let nameLength = Int(reader.u16(start + 28))
        let extraLength = Int(reader.u16(start + 30))
        let commentLength = Int(reader.u16(start + 32))
        var diskStart = UInt32(reader.u16(start + 34))
        var localOffset = UInt64(reader.u32(start + 42))
        let next = start + 46 + nameLength + extraLength + commentLength
        guard next <= end else {
            throw .invalidHeader(path: path, reason: "central directory entry \(number) runs past the directory")
        }
        let nameBytes = UnsafeRawBufferPointer(rebasing: reader.bytes[(start + 46)..<(start + 46 + nameLength)])
        guard let name = String(validating: nameBytes, as: UTF8.self) else {
            throw .invalidHeader(path: path, reason: "zip member \(number) has a name that is not UTF-8")
        }

        // Zip64 extra field: the 64-bit values of exactly those fields saturated above, in order.
        var extra = start + 46 + nameLength
        let extraEnd = extra + extraLength
        while extraEnd - extra >= 4 {
            let id = reader.u16(extra)
            let length = Int(reader.u16(extra + 2))
            guard extra + 4 + length <= extraEnd else {
                throw .invalidHeader(path: path, reason: "zip member '\(name)' has a malformed extra field")
            }
            if id == 0x0001 {
                var field = extra + 4
                func take64() throws(TensorFileError) -> UInt64 {
                    guard field + 8 <= extra + 4 + length else {
                        throw .invalidHeader(path: path, reason: "zip member '\(name)' has a short zip64 field")
                    }
                    defer { field += 8 }
                    return reader.u64(field)
                }
                if uncompressedSize == 0xFFFF_FFFF { uncompressedSize = try take64() }
                if compressedSize == 0xFFFF_FFFF { compressedSize = try take64() }
                if localOffset == 0xFFFF_FFFF { localOffset = try take64() }
                if diskStart == 0xFFFF {
                    guard field + 4 <= extra + 4 + length else {
                        throw .invalidHeader(path: path, reason: "zip member '\(name)' has a short zip64 field")
                    }
                    diskStart = reader.u32(field)
                }
            }
            extra += 4 + length
        }
        position = next

        guard diskStart == 0 else { throw .invalidHeader(path: path, reason: "zip member '\(name)' is on another disk") }
        guard flags & 0x41 == 0 else { throw .invalidHeader(path: path, reason: "zip member '\(name)' is encrypted") }
        guard method == 0 || method == 8 else {
            throw .invalidHeader(path: path, reason: "zip member '\(name)' uses compression method \(method); only stored (0) and deflate (8) are read")
        }
        let fileSize = UInt64(reader.bytes.count)
        guard localOffset < fileSize, compressedSize <= fileSize, uncompressedSize <= UInt64(Int.max) else {
            throw .truncated(path: path, reason: "zip member '\(name)' lies outside the \(fileSize)-byte file")
        }
        if method == 0, compressedSize != uncompressedSize {
            throw .invalidHeader(path: path, reason: "stored zip member '\(name)' has \(compressedSize) bytes but declares \(uncompressedSize)")
        }

        let local = Int(localOffset)
        guard local <= dataLimit - 30, reader.u32(local) == localHeaderSignature else {
            throw .invalidHeader(path: path, reason: "zip member '\(name)' has no local header at offset \(local)")
        }
        let localNameLength = Int(reader.u16(local + 26))
        let localExtraLength = Int(reader.u16(local + 28))
        let dataOffset = local + 30 + localNameLength + localExtraLength
        guard localNameLength == nameLength, dataOffset <= dataLimit,
            UnsafeRawBufferPointer(rebasing: reader.bytes[(local + 30)..<(local + 30 + nameLength)]).elementsEqual(nameBytes)
        else {
            throw .invalidHeader(path: path, reason: "zip member '\(name)': local header disagrees with the central directory")
        }
        guard Int(compressedSize) <= dataLimit - dataOffset else {
            throw .truncated(path: path, reason: "zip member '\(name)' (\(compressedSize) bytes at \(dataOffset)) runs into the central directory")
        }
        return ZipMember(
            name: name, method: method, crc32: crc, compressedSize: Int(compressedSize),
            uncompressedSize: Int(uncompressedSize), headerOffset: local, dataOffset: dataOffset)
    }

    /// A member's bytes. Deflated members are decompressed and always checked against their
    /// CRC; stored members are checked only when `verify` is set, since that reads every byte.
    func contents(of member: ZipMember, in bytes: UnsafeRawBufferPointer, verify: Bool) throws(TensorFileError) -> ZipMemberBytes {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[member.dataOffset..<(member.dataOffset + member.compressedSize)])
        switch member.method {
        case 0:
            if verify, member.crc32 != 0 { try checkCRC(member, CRC32.checksum(raw)) }
            return .mapped(raw)
        default:
            // DEFLATE cannot expand data by more than 1032:1, so a larger declared size is a lie
            // told to make the reader allocate.
            let (bound, overflow) = member.compressedSize.multipliedReportingOverflow(by: 1032)
            guard !overflow, member.uncompressedSize <= bound + 64 else {
                throw .invalidHeader(path: path, reason: "deflated zip member '\(member.name)' declares \(member.uncompressedSize) bytes, impossible from \(member.compressedSize)")
            }
            let output: [UInt8]
            do {
                output = try Inflate.decompress(raw, outputSize: member.uncompressedSize)
            } catch {
                throw .invalidHeader(path: path, reason: "zip member '\(member.name)' is not valid DEFLATE data: \(error.reason)")
            }
            try checkCRC(member, output.withUnsafeBytes { CRC32.checksum($0) })
            return .owned(output)
        }
    }

    private func checkCRC(_ member: ZipMember, _ actual: UInt32) throws(TensorFileError) {
        guard member.crc32 == 0 || actual == member.crc32 else {
            throw .invalidHeader(
                path: path,
                reason: "zip member '\(member.name)' is corrupt: CRC-32 \(hex(actual)) but the archive records \(hex(member.crc32))")
        }
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// Little-endian reads at offsets the caller has already checked against `bytes.count`.
struct LittleEndianBytes {
    let bytes: UnsafeRawBufferPointer

    func u16(_ offset: Int) -> UInt16 {
        precondition(offset >= 0 && offset + 2 <= bytes.count, "read of 2 bytes at \(offset) outside \(bytes.count)")
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(_ offset: Int) -> UInt32 {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "read of 4 bytes at \(offset) outside \(bytes.count)")
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int) -> UInt64 {
        precondition(offset >= 0 && offset + 8 <= bytes.count, "read of 8 bytes at \(offset) outside \(bytes.count)")
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}
