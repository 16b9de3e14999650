import DinoImage
import DinoTensor
import Foundation

/// How a shard runs.
public struct RunOptions: Sendable {
    /// How samples become pixels.
    public var preparation: PreparationOptions
    /// Images per forward pass (of one grid size).
    public var batchSize: Int
    /// Threads decoding and preparing images beside inference (0: in line, no overlap).
    public var decodeThreads: Int
    /// Compute threads of the model (recorded in the manifest).
    public var threads: Int
    /// Continue a shard that ran before in the same folder.
    public var resume: Bool

    /// Options from their parts.
    public init(preparation: PreparationOptions, batchSize: Int, decodeThreads: Int, threads: Int, resume: Bool) {
        self.preparation = preparation
        self.batchSize = batchSize
        self.decodeThreads = decodeThreads
        self.threads = threads
        self.resume = resume
    }
}

/// What happens during a run, for the command line to report.
public enum RunEvent: Sendable {
    /// A unit was finished by an earlier run (`--resume`) and is skipped.
    case unitSkipped(DatasetUnit)
    /// A unit was finished, and the manifest recording it is on disk.
    case unitFinished(DatasetUnit, UnitRecord)
    /// A unit could not be read; it is recorded as failed and retried by `--resume`.
    case unitFailed(DatasetUnit, reason: String)
    /// A key has no features.
    case keyFailed(DatasetUnit, KeyFailure)
    /// More images have features: the total of this run so far.
    case progress(images: Int)
    /// Something the user should know that does not stop the run.
    case warning(String)
}

/// How a run ended.
public struct RunSummary: Sendable {
    /// The shard's manifest as written last.
    public var manifest: ShardManifest
    /// Images run through the model in this run.
    public var images: Int
    /// Keys that failed in this run.
    public var failedKeys: Int
    /// Units that could not be read in this run.
    public var failedUnits: Int
    /// Units finished in this run.
    public var finishedUnits: Int
    /// Units skipped as finished before.
    public var skippedUnits: Int
    /// Wall-clock seconds of the run.
    public var seconds: Double
    /// Seconds spent in the model.
    public var inferenceSeconds: Double
    /// Seconds inference waited for prepared images.
    public var waitSeconds: Double
    /// Whether the run stopped early because a signal asked it to.
    public var interrupted: Bool

    /// Images per second of wall-clock time.
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }
}

/// Runs one shard: builds its unit list, skips what an earlier run finished, streams the
/// samples through the preparation pipeline, batches images of equal grid size, and writes one
/// output per unit (`[K, width]` per feature column, the keys in the `keys` metadata) followed
/// by the updated manifest, both atomically. A run stopped at any point (even by SIGKILL)
/// leaves only complete outputs and a manifest naming exactly the finished ones; temporary
/// files of the unit in progress are removed by the next run.
public final class ShardRunner {
    /// The function computing features: pixels `[B, 3, H, W]` to one `[B, width]` tensor per
    /// feature column, in the settings' order.
    public typealias Extract = (_ pixels: Tensor) throws -> [Tensor]
    /// The SHA-256 of a file, lowercase hex.
    public typealias Digest = (_ url: URL) throws -> String

    private let plan: DatasetPlan
    private let shard: ShardSpec
    private let folder: URL
    private let settings: ExtractionSettings
    private let options: RunOptions
    private let digest: Digest
    private let host: String

    /// A runner writing into `folder` (created if missing).
    public init(plan: DatasetPlan, shard: ShardSpec, folder: URL, settings: ExtractionSettings, options: RunOptions,
                host: String = ProcessInfo.processInfo.hostName, digest: @escaping Digest) {
        self.plan = plan
        self.shard = shard
        self.folder = folder
        self.settings = settings
        self.options = options
        self.digest = digest
        self.host = host
    }

    /// The manifest's location.
    public var manifestURL: URL { folder.appendingPathComponent(ShardManifest.fileName(for: shard)) }

    /// Runs the shard; once `stopSignal` returns a signal number, stops after the batch in
    /// progress (the unit in progress is left for `--resume`).
    public func run(extract: Extract, events: (RunEvent) -> Void,
                    stopSignal: @escaping @Sendable () -> Int32?) throws(DatasetError) -> RunSummary {
        let shouldStop: @Sendable () -> Bool = { stopSignal() != nil }
        let startDate = Date()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: folder.path, reason: (error as NSError).localizedDescription)
        }
        var manifest = try startingManifest(events: events)
        let mine = plan.units(of: shard)
        removeStaleTemporaries(mine)
        let done = Set(manifest.units.map(\.index))
        let todo = mine.filter { !done.contains($0.index) }
        for unit in mine where done.contains(unit.index) { events(.unitSkipped(unit)) }
        manifest.failedUnits = []
        try manifest.write(to: manifestURL)

        var summary = RunSummary(manifest: manifest, images: 0, failedKeys: 0, failedUnits: 0, finishedUnits: 0,
                                 skippedUnits: mine.count - todo.count, seconds: 0, inferenceSeconds: 0, waitSeconds: 0,
                                 interrupted: false)
        let clock = ContinuousClock()
        let start = clock.now
        // Enough prepared images for a few batches of look-ahead, and work for every decoder.
        let window = max(4 * options.batchSize, 2 * options.decodeThreads)
        let pipeline = PreparationPipeline(units: todo, options: options.preparation, decodeThreads: options.decodeThreads,
                                           window: window, shouldStop: shouldStop)
        defer { pipeline.close() }
        var batcher = Batcher(batchSize: options.batchSize, maxPending: window)
        var current = UnitState()
        var unitStart = clock.now

        func runBatch(_ batch: [Batcher.Entry]) {
            let pixels = Tensor.stack(batch.map(\.pixels))
            let began = clock.now
            do {
                let columns = try extract(pixels)
                precondition(columns.count == settings.features.count, "extract returned \(columns.count) feature tensors")
                for (row, entry) in batch.enumerated() {
                    current.rows[entry.position] = zip(columns, settings.features).map { tensor, column in
                        precondition(tensor.shape == [batch.count, column.width], "\(column.name) has shape \(tensor.shape)")
                        return Array(tensor.scalars[(row * column.width)..<((row + 1) * column.width)])
                    }
                    current.keys[entry.position] = entry.key
                }
            } catch {
                for entry in batch { current.failures[entry.position] = KeyFailure(key: entry.key, reason: "\(error)") }
            }
            summary.inferenceSeconds += (clock.now - began).seconds
            summary.images += batch.count
            events(.progress(images: summary.images))
        }

        while !shouldStop() {
            let waitStart = clock.now
            guard let item = pipeline.next() else { break }
            summary.waitSeconds += (clock.now - waitStart).seconds
            switch item {
            case let .image(_, position, key, pixels):
                for batch in batcher.add(Batcher.Entry(position: position, key: key, pixels: pixels)) { runBatch(batch) }
            case let .failure(_, position, key, reason):
                current.failures[position] = KeyFailure(key: key, reason: reason)
            case let .unitEnd(unitNumber, count, error):
                let unit = todo[unitNumber]
                let event: RunEvent
                if let error {
                    batcher = Batcher(batchSize: options.batchSize, maxPending: window)
                    manifest.failedUnits.append(UnitFailure(index: unit.index, source: unit.name, reason: "\(error)"))
                    summary.failedUnits += 1
                    event = .unitFailed(unit, reason: "\(error)")
                } else {
                    for batch in batcher.flush() { runBatch(batch) }
                    let failed = current.failures.sorted { $0.key < $1.key }.map(\.value)
                    failed.forEach { events(.keyFailed(unit, $0)) }
                    summary.failedKeys += failed.count
                    let record = try writeOutput(unit, current, expected: count, failures: failed, seconds: (clock.now - unitStart).seconds)
                    manifest.units.append(record)
                    manifest.units.sort { $0.index < $1.index }
                    summary.finishedUnits += 1
                    event = .unitFinished(unit, record)
                }
                // Reported once the manifest is on disk: a kill after "done" never redoes the unit.
                try manifest.write(to: manifestURL)
                events(event)
                current = UnitState()
                unitStart = clock.now
            }
        }
        pipeline.close()
        let signal = stopSignal()
        summary.interrupted = signal != nil
        summary.seconds = (clock.now - start).seconds
        manifest.runs.append(RunRecord(
            host: host, started: ISO8601DateFormatter().string(from: startDate), seconds: summary.seconds, images: summary.images,
            imagesPerSecond: summary.imagesPerSecond, batchSize: options.batchSize, threads: options.threads,
            decodeThreads: options.decodeThreads, interruptedBy: signal.map { Int($0) }))
        try manifest.write(to: manifestURL)
        summary.manifest = manifest
        return summary
    }

    /// The features of the unit in progress, by sample position.
    private struct UnitState {
        var rows: [Int: [[Float]]] = [:]
        var keys: [Int: String] = [:]
        var failures: [Int: KeyFailure] = [:]
    }

    /// The manifest to continue from: the existing one when resuming (checked against this
    /// run, finished units whose output is gone or changed dropped), else a fresh one.
    private func startingManifest(events: (RunEvent) -> Void) throws(DatasetError) -> ShardManifest {
        let fresh = ShardManifest(shard: shard, settings: settings, plan: plan)
        // Runs with another shard count write the same output names: one folder, one count.
        let suffix = String(format: "-of-%05d.json", shard.count)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        where name.hasPrefix("manifest-") && name.hasSuffix(".json") && !name.hasSuffix(suffix) {
            let count = name.dropLast(5).split(separator: "-").last.map(String.init) ?? "?"
            throw .incompatibleSettings(path: folder.appendingPathComponent(name).path, field: "shard count",
                                        expected: "\(shard.count) (this run; use another --output-dir)", actual: count)
        }
        guard FileManager.default.fileExists(atPath: manifestURL.path) else { return fresh }
        guard options.resume else { throw .existingRun(path: manifestURL.path) }
        var existing = try ShardManifest(url: manifestURL)
        let path = manifestURL.path
        if let (field, expected, actual) = existing.settings.difference(from: settings) {
            throw .incompatibleSettings(path: path, field: field, expected: expected, actual: actual)
        }
        for (field, before, now) in [("input fingerprint", existing.inputFingerprint, fresh.inputFingerprint),
                                     ("unit count", "\(existing.unitCount)", "\(fresh.unitCount)"),
                                     ("chunk size", "\(existing.chunkSize)", "\(fresh.chunkSize)"),
                                     ("shard", existing.shard.description, fresh.shard.description)] where before != now {
            // "actual" is what the folder holds, "expected" what this run was given.
            throw .incompatibleSettings(path: path, field: field, expected: now, actual: before)
        }
        var kept: [UnitRecord] = []
        for record in existing.units {
            let url = try record.outputURL(manifest: manifestURL)
            // One stat gives the size and refuses a FIFO in place of an output, which would block the digest.
            if let size = try? InputFile.checkRegularFile(url), size == record.bytes, (try? digest(url)) == record.sha256 {
                kept.append(record)
            } else {
                events(.warning("\(url.path): missing or changed since it was recorded; unit \(record.index) (\(record.source)) is redone"))
            }
        }
        existing.units = kept
        return existing
    }

    /// Deletes `AtomicFile` temporaries (`.NAME.partial-*`) of this shard's outputs and
    /// manifest left by a killed run; no other shard writes these names.
    private func removeStaleTemporaries(_ units: [DatasetUnit]) {
        let names = Set(units.map(\.outputName) + [manifestURL.lastPathComponent])
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for entry in entries where entry.hasPrefix(".") {
            guard let range = entry.range(of: ".partial-") else { continue }
            if names.contains(String(entry[entry.index(after: entry.startIndex)..<range.lowerBound])) {
                try? FileManager.default.removeItem(at: folder.appendingPathComponent(entry))
            }
        }
    }

    private func writeOutput(_ unit: DatasetUnit, _ state: UnitState, expected: Int, failures: [KeyFailure],
                             seconds: Double) throws(DatasetError) -> UnitRecord {
        let positions = state.rows.keys.sorted()
        let keys = positions.compactMap { state.keys[$0] }
        var tensors: [(name: String, tensor: Tensor)] = []
        for (c, column) in settings.features.enumerated() {
            var scalars: [Float] = []
            scalars.reserveCapacity(positions.count * column.width)
            for position in positions { scalars += state.rows[position]?[c] ?? [] }
            tensors.append((column.name, Tensor(shape: [positions.count, column.width], scalars: scalars)))
        }
        let metadata = [
            "format": "dino-extract/1", "tool": ShardManifest.toolVersion, "keys": JSONValue.array(keys.map { .string($0) }).serialized,
            "source": unit.name, "unit": "\(unit.index)", "model": settings.model, "preprocessing": settings.preprocessing,
        ]
        let url = folder.appendingPathComponent(unit.outputName)
        do {
            try SafetensorsFile.write(tensors, metadata: metadata, to: url)
        } catch {
            throw .writeFailed(path: url.path, reason: "\(error)")
        }
        let size: Int
        let sha: String
        do {
            size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
            sha = try digest(url)
        } catch {
            throw .cannotRead(path: url.path, reason: "\(error)")
        }
        return UnitRecord(index: unit.index, source: unit.name, output: unit.outputName, rows: keys.count, expected: expected,
                          failures: failures, bytes: size, sha256: sha, seconds: seconds)
    }
}

/// Groups prepared images into batches of one pixel shape. Images arrive in input order; a
/// batch is released when its shape has `batchSize` images, or, when more than `maxPending`
/// images wait (many different shapes), the fullest shape is released early. The batches
/// depend only on the order and shapes of the images, so a unit is batched the same way in
/// every run.
struct Batcher {
    struct Entry {
        var position: Int
        var key: String
        var pixels: Tensor
    }

    let batchSize: Int
    let maxPending: Int
    private var buckets: [(shape: [Int], entries: [Entry])] = []
    private var pending = 0

    init(batchSize: Int, maxPending: Int) {
        self.batchSize = batchSize
        self.maxPending = max(batchSize, maxPending)
    }

    /// Adds an image; returns the batches now complete.
    mutating func add(_ entry: Entry) -> [[Entry]] {
        if let i = buckets.firstIndex(where: { $0.shape == entry.pixels.shape }) {
            buckets[i].entries.append(entry)
        } else {
            buckets.append((entry.pixels.shape, [entry]))
        }
        pending += 1
        var released: [[Entry]] = []
        if let full = buckets.firstIndex(where: { $0.entries.count >= batchSize }) {
            released.append(take(full))
        } else if pending > maxPending, let fullest = buckets.indices.max(by: { buckets[$0].entries.count < buckets[$1].entries.count }) {
            released.append(take(fullest))
        }
        return released
    }

    /// Releases every waiting image, oldest shape first.
    mutating func flush() -> [[Entry]] {
        defer {
            buckets = []
            pending = 0
        }
        return buckets.map(\.entries)
    }

    private mutating func take(_ index: Int) -> [Entry] {
        let entries = buckets.remove(at: index).entries
        pending -= entries.count
        return entries
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
