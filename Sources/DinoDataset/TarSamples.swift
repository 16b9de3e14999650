import Foundation

/// One WebDataset sample: the consecutive tar members sharing a key.
public struct TarSample: Sendable, Equatable {
    /// The key: the member path up to the first dot of its file name (`a/b/0001` for
    /// `a/b/0001.jpg`).
    public var key: String
    /// The members by extension (what follows that first dot: `jpg`, `json`, `seg.png`), in
    /// archive order.
    public var members: [(extension: String, member: TarMember)]

    /// Same key and the same members in the same order.
    public static func == (lhs: TarSample, rhs: TarSample) -> Bool {
        lhs.key == rhs.key && lhs.members.elementsEqual(rhs.members) { $0.extension == $1.extension && $0.member == $1.member }
    }

    /// Extensions read as images, in order of preference when a sample has several.
    public static let imageExtensions = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"]

    /// The member holding the sample's image: the first of `imageExtensions` present (compared
    /// without case), or nil.
    public var imageMember: TarMember? {
        for wanted in Self.imageExtensions {
            if let found = members.first(where: { $0.extension.lowercased() == wanted }) { return found.member }
        }
        return nil
    }

    /// Splits a member path into key and extension as WebDataset does: the extension starts at
    /// the first dot of the file name; names without a dot, or starting with one, are not
    /// sample members.
    // ref: webdataset/tariterators.py base_plus_ext, r"^((?:.*/|)[^.]+)[.]([^/]*)$"
    public static func split(_ path: String) -> (key: String, extension: String)? {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let fileName = path[slash...]
        guard let dot = fileName.firstIndex(of: "."), dot != fileName.startIndex else { return nil }
        return (String(path[..<dot]), String(path[path.index(after: dot)...]))
    }
}

/// Groups a tar's members into samples: consecutive members with the same key form one sample,
/// as WebDataset's `group_by_keys` does. A key that comes back after another key, or one
/// extension twice in a sample, is an error, so every key names exactly one sample.
public struct TarSampleReader {
    /// The underlying archive.
    public let reader: TarReader
    private var pending: (key: String, extension: String, member: TarMember)?
    private var seen: [String: Int] = [:]
    private var done = false

    /// Reads samples from the archive at `url`.
    public init(url: URL) throws(DatasetError) {
        reader = try TarReader(url: url)
    }

    /// The next sample in archive order, or nil at the end.
    public mutating func next() throws(DatasetError) -> TarSample? {
        guard !done else { return nil }
        var sample: TarSample?
        while true {
            let entry: (key: String, extension: String, member: TarMember)
            if let held = pending {
                entry = held
                pending = nil
            } else {
                guard let member = try reader.next() else {
                    done = true
                    return sample
                }
                guard let (key, ext) = TarSample.split(member.name) else { continue }
                entry = (key, ext, member)
            }
            if var current = sample {
                if entry.key != current.key {
                    pending = entry
                    return current
                }
                if current.members.contains(where: { $0.extension == entry.extension }) {
                    throw .duplicateKey(key: "\(entry.key).\(entry.extension)",
                                        first: "\(reader.path) at byte \(current.members[0].member.headerOffset)",
                                        second: "\(reader.path) at byte \(entry.member.headerOffset)")
                }
                current.members.append((entry.extension, entry.member))
                sample = current
            } else {
                if let first = seen[entry.key] {
                    throw .duplicateKey(key: entry.key, first: "\(reader.path) at byte \(first)",
                                        second: "\(reader.path) at byte \(entry.member.headerOffset)")
                }
                seen[entry.key] = entry.member.headerOffset
                sample = TarSample(key: entry.key, members: [(entry.extension, entry.member)])
            }
        }
    }
}
