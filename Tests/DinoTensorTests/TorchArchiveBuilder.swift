import Foundation

/// The `torch.save` fixtures written by `Scripts/make_pth_fixtures.py`.
enum PthFixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pth")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
}

/// Builds zip archives laid out as `torch.save` lays them out, around hand-written pickles, so
/// that the tests can feed the reader what no real writer produces.
struct TorchArchiveBuilder {
    struct Member {
        var name: String
        var data: [UInt8]
        var method: UInt16 = 0
        var flags: UInt16 = 0
        /// The size the central directory declares (the data's size when nil).
        var declaredSize: Int?
    }

    var members: [Member] = []

    /// `archive/data.pkl`, `archive/byteorder`, `archive/data/<key>` for each storage and
    /// `archive/version`.
    init(pickle: [UInt8], storages: [(String, [UInt8])] = [], byteorder: String? = "little", folder: String = "archive") {
        members.append(Member(name: "\(folder)/data.pkl", data: pickle))
        if let byteorder { members.append(Member(name: "\(folder)/byteorder", data: Array(byteorder.utf8))) }
        for (key, data) in storages { members.append(Member(name: "\(folder)/data/\(key)", data: data)) }
        members.append(Member(name: "\(folder)/version", data: Array("3\n".utf8)))
    }

    init(members: [Member]) { self.members = members }

    /// The archive bytes (CRC fields 0, which marks them as not recorded).
    var bytes: Data {
        var out = Data()
        var central = Data()
        for member in members {
            let offset = out.count
            let name = Array(member.name.utf8)
            let size = UInt32(member.data.count)
            let declared = UInt32(member.declaredSize ?? member.data.count)
            out.append(le32(0x0403_4B50))
            out.append(le16(20))
            out.append(le16(member.flags))
            out.append(le16(member.method))
            out.append(le32(0))  // time, date
            out.append(le32(0))  // crc
            out.append(le32(size))
            out.append(le32(declared))
            out.append(le16(UInt16(name.count)))
            out.append(le16(0))
            out.append(contentsOf: name)
            out.append(contentsOf: member.data)

            central.append(le32(0x0201_4B50))
            central.append(le16(20))
            central.append(le16(20))
            central.append(le16(member.flags))
            central.append(le16(member.method))
            central.append(le32(0))
            central.append(le32(0))
            central.append(le32(size))
            central.append(le32(declared))
            central.append(le16(UInt16(name.count)))
            central.append(le16(0))  // extra
            central.append(le16(0))  // comment
            central.append(le16(0))  // disk
            central.append(le16(0))  // internal attributes
            central.append(le32(0))  // external attributes
            central.append(le32(UInt32(offset)))
            central.append(contentsOf: name)
        }
        let directoryOffset = out.count
        out.append(central)
        out.append(le32(0x0605_4B50))
        out.append(le16(0))
        out.append(le16(0))
        out.append(le16(UInt16(members.count)))
        out.append(le16(UInt16(members.count)))
        out.append(le32(UInt32(central.count)))
        out.append(le32(UInt32(directoryOffset)))
        out.append(le16(0))
        return out
    }

    private func le16(_ v: UInt16) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
    private func le32(_ v: UInt32) -> Data { withUnsafeBytes(of: v.littleEndian) { Data($0) } }
}

/// Pickle opcodes, written out by hand (protocol 2, as `torch.save` writes).
enum Pickle {
    static let proto: [UInt8] = [0x80, 0x02]
    static let stop: [UInt8] = [UInt8(ascii: ".")]
    static let mark: [UInt8] = [UInt8(ascii: "(")]
    static let emptyDict: [UInt8] = [UInt8(ascii: "}")]
    static let emptyList: [UInt8] = [UInt8(ascii: "]")]
    static let emptyTuple: [UInt8] = [UInt8(ascii: ")")]
    static let tuple: [UInt8] = [UInt8(ascii: "t")]
    static let tuple1: [UInt8] = [0x85]
    static let setItem: [UInt8] = [UInt8(ascii: "s")]
    static let setItems: [UInt8] = [UInt8(ascii: "u")]
    static let append: [UInt8] = [UInt8(ascii: "a")]
    static let reduce: [UInt8] = [UInt8(ascii: "R")]
    static let build: [UInt8] = [UInt8(ascii: "b")]
    static let persistentID: [UInt8] = [UInt8(ascii: "Q")]
    static let newFalse: [UInt8] = [0x89]
    static let newTrue: [UInt8] = [0x88]
    static let none: [UInt8] = [UInt8(ascii: "N")]

    static func string(_ s: String) -> [UInt8] {
        let bytes = Array(s.utf8)
        return [UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(bytes.count).littleEndian, Array.init) + bytes
    }

    static func int(_ v: Int32) -> [UInt8] { [UInt8(ascii: "J")] + withUnsafeBytes(of: v.littleEndian, Array.init) }

    static func long(_ v: Int64) -> [UInt8] { [0x8A, 8] + withUnsafeBytes(of: v.littleEndian, Array.init) }

    static func global(_ module: String, _ name: String) -> [UInt8] {
        [UInt8(ascii: "c")] + Array("\(module)\n\(name)\n".utf8)
    }

    static func put(_ index: UInt8) -> [UInt8] { [UInt8(ascii: "q"), index] }

    static func get(_ index: UInt8) -> [UInt8] { [UInt8(ascii: "h"), index] }

    static func tupleOf(_ items: [[UInt8]]) -> [UInt8] { mark + items.joined() + tuple }

    static func ints(_ values: [Int64]) -> [UInt8] { tupleOf(values.map { long($0) }) }

    /// A tensor as `torch.save` pickles it: `_rebuild_tensor_v2(storage, offset, size, stride,
    /// False, OrderedDict())`, the storage given by its persistent id.
    static func tensor(
        key: String, storageClass: String = "FloatStorage", numel: Int64, offset: Int64 = 0, size: [Int64], stride: [Int64],
        metadata: [UInt8]? = nil
    ) -> [UInt8] {
        let storage = tupleOf([string("storage"), global("torch", storageClass), string(key), string("cpu"), long(numel)]) + persistentID
        var args = [storage, long(offset), ints(size), ints(stride), newFalse, global("collections", "OrderedDict") + emptyTuple + reduce]
        if let metadata { args.append(metadata) }
        return global("torch._utils", "_rebuild_tensor_v2") + tupleOf(args) + reduce
    }

    /// `{key: value, ...}` with the values already pickled.
    static func dict(_ items: [(String, [UInt8])]) -> [UInt8] {
        emptyDict + mark + items.map { string($0.0) + $0.1 }.joined() + setItems
    }

    /// A whole pickle: protocol, body, STOP.
    static func program(_ body: [UInt8]) -> [UInt8] { proto + body + stop }
}

/// Little-endian float32 bytes.
func float32Bytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
}
