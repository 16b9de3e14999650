import DinoImage
import DinoTensor
import Foundation

/// One image file of the input and the key it is known by.
public struct FileItem: Sendable, Equatable {
    /// The key: the path as the file list or command line wrote it, or the path relative to
    /// the folder it was found in.
    public var key: String
    /// Where the file is.
    public var path: String

    /// An item with its key and path.
    public init(key: String, path: String) {
        self.key = key
        self.path = path
    }
}

/// What one unit of work reads.
public enum UnitSource: Sendable, Equatable {
    /// A WebDataset tar shard, read whole.
    case tar(path: String)
    /// A run of consecutive image files.
    case files([FileItem])
}

/// One unit of work: the smallest part a shard owns, writes as one output file and records
/// as finished.
public struct DatasetUnit: Sendable, Equatable {
    /// Position in the dataset's unit list (the number the sharding rule uses).
    public var index: Int
    /// What it reads.
    public var source: UnitSource
    /// A short human-readable name: the tar path, or the range of file positions.
    public var name: String
    /// The output file name, unique in the run: the tar's name with `.safetensors`, or
    /// `files-NNNNN.safetensors`.
    public var outputName: String
}

/// The dataset as a list of units: every tar input (in input order) is one unit, then the image
/// files of all file inputs (lists, folders, single images, in input order) in chunks of
/// `chunkSize`. Every shard builds the same plan from the same command line.
public struct DatasetPlan: Sendable {
    /// The units in order.
    public let units: [DatasetUnit]
    /// Files per file unit.
    public let chunkSize: Int
    /// FNV-1a 64 of the unit list (tar paths, file keys and chunk boundaries), so that merge
    /// can tell whether shards ran on the same input.
    public let fingerprint: String

    /// Builds the plan from command-line inputs (brace patterns are expanded first):
    /// - `*.tar`: a WebDataset tar shard;
    /// - a folder: its images, recursively, sorted by path, keys relative to the folder;
    /// - an image file (by extension): itself, keyed by the path as written;
    /// - any other file: a file list, one path per line, relative to the list's folder,
    ///   keyed by the line as written (blank lines are skipped).
    public init(inputs: [String], chunkSize: Int) throws(DatasetError) {
        guard chunkSize >= 1 else { throw .invalidShard(setting: "--chunk-size \(chunkSize)", reason: "must be at least 1") }
        var tars: [String] = []
        var files: [FileItem] = []
        var keys: [String: String] = [:]
        func add(_ item: FileItem, from location: String) throws(DatasetError) {
            if let first = keys[item.key] { throw .duplicateKey(key: item.key, first: first, second: location) }
            keys[item.key] = location
            files.append(item)
        }
        for input in inputs {
            for path in try BraceExpansion.expand(input) {
                let lower = path.lowercased()
                if lower.hasSuffix(".tar.gz") || lower.hasSuffix(".tgz") || lower.hasSuffix(".tar.zst") {
                    throw .unsupportedInput(path: path, reason: "compressed tars are not read; decompress them (WebDataset shards are plain .tar)")
                }
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .missingInput(path: path) }
                if isDirectory.boolValue {
                    let found = try Self.images(inFolder: path)
                    guard !found.isEmpty else { throw .unsupportedInput(path: path, reason: "no images (\(Self.extensionList)) in this folder") }
                    for item in found { try add(item, from: "folder \(path)") }
                } else if lower.hasSuffix(".tar") {
                    tars.append(path)
                } else if ImageIO.fileExtensions.contains(URL(fileURLWithPath: path).pathExtension.lowercased()) {
                    try add(FileItem(key: path, path: path), from: "the command line")
                } else {
                    let listed = try Self.fileList(path)
                    guard !listed.isEmpty else { throw .unsupportedInput(path: path, reason: "the file list names no files") }
                    for (line, item) in listed { try add(item, from: "\(path) line \(line)") }
                }
            }
        }
        var units: [DatasetUnit] = []
        var names = Set<String>()
        func unique(_ stem: String) -> String {
            var name = stem + ".safetensors"
            var counter = 2
            while !names.insert(name).inserted {
                name = "\(stem)-\(counter).safetensors"
                counter += 1
            }
            return name
        }
        for tar in tars {
            let stem = String(URL(fileURLWithPath: tar).lastPathComponent.dropLast(4))
            units.append(DatasetUnit(index: units.count, source: .tar(path: tar), name: tar, outputName: unique(stem)))
        }
        for (chunk, start) in stride(from: 0, to: files.count, by: chunkSize).enumerated() {
            let end = min(start + chunkSize, files.count)
            units.append(DatasetUnit(index: units.count, source: .files(Array(files[start..<end])), name: "files \(start)..<\(end)",
                                     outputName: unique(String(format: "files-%05d", chunk))))
        }
        self.units = units
        self.chunkSize = chunkSize
        var hash = FNV1a64()
        for unit in units {
            switch unit.source {
            case .tar(let path): hash.add("tar"); hash.add(path)
            case .files(let items): hash.add("files"); items.forEach { hash.add($0.key) }
            }
        }
        fingerprint = hash.hex
    }

    /// The units shard `shard` owns, in order.
    public func units(of shard: ShardSpec) -> [DatasetUnit] {
        units.filter { shard.owns(unit: $0.index) }
    }

    /// Number of image files over all file units.
    public var fileCount: Int {
        units.reduce(0) { total, unit in
            if case .files(let items) = unit.source { return total + items.count }
            return total
        }
    }

    private static var extensionList: String { ImageIO.fileExtensions.sorted().joined(separator: ", ") }

    /// Images under `folder`, recursively, hidden files and folders left out, in byte order of
    /// their relative paths (which are their keys).
    static func images(inFolder folder: String) throws(DatasetError) -> [FileItem] {
        guard let enumerator = FileManager.default.enumerator(atPath: folder) else {
            throw .cannotRead(path: folder, reason: "cannot list the folder")
        }
        var found: [String] = []
        while let relative = enumerator.nextObject() as? String {
            let components = relative.split(separator: "/")
            if components.contains(where: { $0.hasPrefix(".") }) { continue }
            if ImageIO.fileExtensions.contains(URL(fileURLWithPath: relative).pathExtension.lowercased()) { found.append(relative) }
        }
        found.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let base = URL(fileURLWithPath: folder)
        return found.map { FileItem(key: $0, path: base.appendingPathComponent($0).path) }
    }

    /// The lines of a file list with their line numbers (from 1); relative paths are taken
    /// from the list's folder.
    static func fileList(_ path: String) throws(DatasetError) -> [(line: Int, item: FileItem)] {
        let data: Data
        do { data = try InputFile.contents(of: URL(fileURLWithPath: path)) } catch { throw .cannotRead(path: path, reason: error.detail) }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        var items: [(Int, FileItem)] = []
        // Split the bytes, not the string: Swift reads "\r\n" as one character.
        for (number, bytes) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let trimmed = bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes[...]
            guard !trimmed.contains(0), let line = String(bytes: trimmed, encoding: .utf8) else {
                throw .unsupportedInput(path: path, reason: "line \(number + 1) is not UTF-8 text (a file list has one image path per line)")
            }
            if line.allSatisfy(\.isWhitespace) { continue }
            let resolved = line.hasPrefix("/") ? line : folder.appendingPathComponent(line).path
            items.append((number + 1, FileItem(key: line, path: resolved)))
        }
        return items
    }
}

/// 64-bit FNV-1a over strings, each followed by a 0 byte so that boundaries count.
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ text: String) {
        for byte in text.utf8 { mix(byte) }
        mix(0)
    }

    private mutating func mix(_ byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }

    var hex: String {
        let digits = String(value, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - digits.count) + digits
    }
}
