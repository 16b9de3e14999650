import DinoTensor
import Foundation

/// One output file of a merged run.
public struct IndexedFile: Sendable, Equatable {
    /// Path of the file, relative to the index's folder when inside it.
    public var path: String
    /// Rows (keys) it holds.
    public var rows: Int
    /// SHA-256 of the file.
    public var sha256: String
}

/// The merged index of a run: every key with the file and row of its features.
public struct DatasetIndex: Sendable {
    /// The format field of this version.
    public static let format = "dino-extract-index/1"

    /// The settings every shard shared.
    public var settings: ExtractionSettings
    /// Number of shards merged.
    public var shardCount: Int
    /// Output files, in unit order.
    public var files: [IndexedFile]
    /// Every key with features: `(key, file number in files, row)`, in unit then row order.
    public var entries: [(key: String, file: Int, row: Int)]
    /// Keys without features (only with `allowFailures`).
    public var failures: [KeyFailure]
    /// Per host: shards run there, images, and the sum of their latest runs' images/second.
    public var hosts: [(host: String, shards: Int, images: Int, imagesPerSecond: Double)]
    /// Things the user should know that do not make the merge fail.
    public var notes: [String]

    /// The index as JSON text: `format`, `settings`, `shards`, `files` (`path`, `rows`,
    /// `sha256`), `keys` as `[key, file, row]` triples, and `failures`.
    public var serialized: String {
        JSONValue.object([
            ("format", .string(Self.format)), ("tool", .string(ShardManifest.toolVersion)),
            ("settings", settings.json), ("shards", .int(shardCount)), ("count", .int(entries.count)),
            ("files", .array(files.map { .object([("path", .string($0.path)), ("rows", .int($0.rows)), ("sha256", .string($0.sha256))]) })),
            ("keys", .array(entries.map { .array([.string($0.key), .int($0.file), .int($0.row)]) })),
            ("failures", .array(failures.map { .object([("key", .string($0.key)), ("reason", .string($0.reason))]) })),
        ]).serialized + "\n"
    }

    /// Writes the index to `url` atomically.
    public func write(to url: URL) throws(DatasetError) {
        do {
            try AtomicFile.write(to: url) { try $0.write(contentsOf: Data(serialized.utf8)) }
        } catch {
            throw .writeFailed(path: url.path, reason: "\(error)")
        }
    }
}

/// Checks the manifests of a sharded run against each other and their outputs, and builds
/// the index.
public enum ManifestMerge {
    /// The manifests in `locations`: folders (every `manifest-*-of-*.json` inside) or manifest
    /// files, each with its path.
    public static func manifests(in locations: [String]) throws(DatasetError) -> [(url: URL, manifest: ShardManifest)] {
        var urls: [URL] = []
        for location in locations {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else { throw .missingInput(path: location) }
            if isDirectory.boolValue {
                let names: [String]
                do { names = try FileManager.default.contentsOfDirectory(atPath: location) } catch {
                    throw .cannotRead(path: location, reason: (error as NSError).localizedDescription)
                }
                let found = names.filter { $0.hasPrefix("manifest-") && $0.hasSuffix(".json") }.sorted()
                guard !found.isEmpty else { throw .unsupportedInput(path: location, reason: "no manifest-*-of-*.json in this folder") }
                urls += found.map { URL(fileURLWithPath: location).appendingPathComponent($0) }
            } else {
                urls.append(URL(fileURLWithPath: location))
            }
        }
        var result: [(URL, ShardManifest)] = []
        for url in urls { result.append((url, try ShardManifest(url: url))) }
        return result
    }

    /// Checks that the manifests come from one run (same settings, inputs and shard count),
    /// that every shard is present once and finished every unit it owns, that every output
    /// file is as recorded (size, SHA-256, keys and matrix shapes), and that no key is
    /// missing or appears twice; returns the index with file paths relative to `indexFolder`.
    /// Keys that failed to decode are an error unless `allowFailures`.
    public static func merge(_ manifests: [(url: URL, manifest: ShardManifest)], indexFolder: URL, allowFailures: Bool,
                             digest: ShardRunner.Digest) throws(DatasetError) -> DatasetIndex {
        guard let (firstURL, first) = manifests.first else {
            throw .missingShard(index: 0, count: 1, searched: "the locations given")
        }
        let count = first.shard.count
        var byShard: [Int: (URL, ShardManifest)] = [:]
        for (url, manifest) in manifests {
            if let (field, expected, actual) = manifest.settings.difference(from: first.settings) {
                throw .incompatibleSettings(path: url.path, field: field, expected: expected, actual: actual)
            }
            for (field, expected, actual) in [
                ("shard count", "\(count)", "\(manifest.shard.count)"),
                ("input fingerprint", first.inputFingerprint, manifest.inputFingerprint),
                ("unit count", "\(first.unitCount)", "\(manifest.unitCount)"),
                ("chunk size", "\(first.chunkSize)", "\(manifest.chunkSize)"),
            ] where expected != actual {
                throw .incompatibleSettings(path: url.path, field: field, expected: expected + " (as in \(firstURL.path))", actual: actual)
            }
            if let (other, _) = byShard[manifest.shard.index] {
                throw .duplicateShard(index: manifest.shard.index, first: other.path, second: url.path)
            }
            byShard[manifest.shard.index] = (url, manifest)
        }
        let searched = Set(manifests.map { $0.url.deletingLastPathComponent().path }).sorted().joined(separator: ", ")
        var units: [(url: URL, record: UnitRecord)] = []
        for index in 0..<count {
            guard let (url, manifest) = byShard[index] else { throw .missingShard(index: index, count: count, searched: searched) }
            let owned = (0..<first.unitCount).filter { $0 % count == index }
            guard manifest.assigned == owned else {
                throw .invalidManifest(path: url.path, reason: "assigned units \(manifest.assigned) are not the units \(owned) of shard \(index)/\(count)")
            }
            let finished = Dictionary(manifest.units.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
            for unit in owned {
                guard let record = finished[unit] else {
                    let source = manifest.failedUnits.first { $0.index == unit }.map { "\($0.source): \($0.reason)" } ?? "not run yet"
                    throw .unfinishedUnit(manifest: url.path, unit: unit, source: source)
                }
                units.append((url, record))
            }
        }
        units.sort { $0.record.index < $1.record.index }

        var files: [IndexedFile] = []
        var entries: [(key: String, file: Int, row: Int)] = []
        var failures: [KeyFailure] = []
        var firstSeen: [String: String] = [:]
        for (url, record) in units {
            guard record.rows + record.failures.count == record.expected else {
                throw .missingKeys(source: "\(url.path): unit \(record.index) (\(record.source))", expected: record.expected,
                                   actual: record.rows + record.failures.count)
            }
            let output = try record.outputURL(manifest: url)
            let keys = try checkOutput(output, record: record, settings: first.settings, digest: digest)
            for (row, key) in keys.enumerated() {
                let location = "\(output.path) row \(row)"
                if let earlier = firstSeen[key] { throw .duplicateKey(key: key, first: earlier, second: location) }
                firstSeen[key] = location
                entries.append((key, files.count, row))
            }
            for failure in record.failures {
                let location = "\(record.source) (failed)"
                if let earlier = firstSeen[failure.key] { throw .duplicateKey(key: failure.key, first: earlier, second: location) }
                firstSeen[failure.key] = location
            }
            failures += record.failures
            files.append(IndexedFile(path: relativePath(output, to: indexFolder), rows: record.rows, sha256: record.sha256))
        }
        if !failures.isEmpty && !allowFailures {
            throw .failedKeys(count: failures.count, examples: failures.prefix(3).map { "\($0.key): \($0.reason)" })
        }
        var hosts: [String: (shards: Int, images: Int, rate: Double)] = [:]
        for (_, manifest) in byShard.values {
            guard let last = manifest.runs.last else { continue }
            let images = manifest.units.reduce(0) { $0 + $1.rows }
            let previous = hosts[last.host] ?? (0, 0, 0)
            hosts[last.host] = (previous.shards + 1, previous.images + images, previous.rate + last.imagesPerSecond)
        }
        // Batch composition and thread count change the GEMM blocking, hence the last bits.
        let compute = Set(byShard.values.flatMap { $0.1.runs.filter { $0.images > 0 }.map { "batch \($0.batchSize), \($0.threads) threads" } })
        let notes = compute.count > 1
            ? ["shards ran with different settings (\(compute.sorted().joined(separator: "; "))): rows agree to about 1e-6, not bit for bit"]
            : []
        return DatasetIndex(settings: first.settings, shardCount: count, files: files, entries: entries, failures: failures,
                            hosts: hosts.sorted { $0.key < $1.key }.map { ($0.key, $0.value.shards, $0.value.images, $0.value.rate) },
                            notes: notes)
    }

    /// The keys of an output file after checking it against its record: size, SHA-256, the
    /// `keys` metadata and the shape of every feature matrix.
    static func checkOutput(_ url: URL, record: UnitRecord, settings: ExtractionSettings,
                            digest: ShardRunner.Digest) throws(DatasetError) -> [String] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              let size = (attributes[.size] as? NSNumber)?.intValue
        else { throw .outputMismatch(path: url.path, field: "file", expected: "present", actual: "missing") }
        guard size == record.bytes else {
            throw .outputMismatch(path: url.path, field: "size", expected: "\(record.bytes) bytes", actual: "\(size) bytes")
        }
        // Before the digest opens it: a FIFO would block it.
        do { try InputFile.checkRegularFile(url) } catch {
            throw .outputMismatch(path: url.path, field: "file", expected: "a regular file", actual: error.detail)
        }
        let sha: String
        do { sha = try digest(url) } catch { throw .cannotRead(path: url.path, reason: "\(error)") }
        guard sha == record.sha256 else { throw .outputMismatch(path: url.path, field: "sha256", expected: record.sha256, actual: sha) }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(url: url) } catch { throw .cannotRead(path: url.path, reason: "\(error)") }
        guard let text = file.metadata["keys"], let parsed = try? JSONValue.parse(Array(text.utf8)), let items = parsed.arrayValue else {
            throw .outputMismatch(path: url.path, field: "keys metadata", expected: "a JSON array of keys", actual: "missing or not JSON")
        }
        let keys = items.compactMap(\.stringValue)
        guard keys.count == items.count, keys.count == record.rows else {
            throw .outputMismatch(path: url.path, field: "number of keys", expected: "\(record.rows)", actual: "\(keys.count)")
        }
        for column in settings.features {
            let shape: [Int]
            do { shape = try file.shape(of: column.name) } catch { throw .cannotRead(path: url.path, reason: "\(error)") }
            guard shape == [record.rows, column.width] else {
                throw .outputMismatch(path: url.path, field: "shape of \(column.name)", expected: "\([record.rows, column.width])", actual: "\(shape)")
            }
        }
        return keys
    }

    /// `url` relative to `folder` when inside it, else absolute.
    static func relativePath(_ url: URL, to folder: URL) -> String {
        let path = url.standardizedFileURL.path
        let base = folder.standardizedFileURL.path
        let prefix = base.hasSuffix("/") ? base : base + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}
