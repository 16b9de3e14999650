@testable import DinoDataset
import DinoImage
import DinoTensor
import Foundation
import Synchronization
import Testing

/// A small dataset on disk: tar shards of JPEG/PNG samples with JSON sidecars, and a file list.
struct SmallDataset {
    let folder: TemporaryFolder
    var tars: [String] = []
    var list: String = ""
    var keys: [String] = []
    let fileCount: Int

    /// `tarCount` tars of `perTar` samples and a list of `fileCount` images; `corrupt` keys
    /// get bytes that are not an image.
    init(tarCount: Int, perTar: Int, fileCount: Int, corrupt: Set<String> = [], repeatKey: String? = nil) throws {
        folder = try TemporaryFolder()
        self.fileCount = fileCount
        var seed = 0
        for t in 0..<tarCount {
            var tar = TarBuilder()
            for s in 0..<perTar {
                let key = repeatKey.map { s == 0 ? $0 : "\(t)\(s)" } ?? String(format: "%05d%04d", t, s)
                let ext = s % 3 == 0 ? "png" : "jpg"
                let image = corrupt.contains(key) ? Data("not an image".utf8) : try TestImages.encoded(seed: seed, ext: ext)
                seed += 1
                tar.file("\(key).\(ext)", Array(image))
                tar.file("\(key).json", Array("{\"key\": \"\(key)\"}".utf8))
                keys.append(key)
            }
            tar.end()
            let path = folder.path(String(format: "shards/%05d.tar", t))
            try FileManager.default.createDirectory(atPath: folder.path("shards"), withIntermediateDirectories: true)
            try tar.write(to: URL(fileURLWithPath: path))
            tars.append(path)
        }
        var lines: [String] = []
        for f in 0..<fileCount {
            let name = String(format: "files/img%04d.jpg", f)
            try folder.write(name, try TestImages.encoded(seed: seed, width: 24 + f % 5, height: 18))
            seed += 1
            lines.append(name)
        }
        keys += lines
        list = try folder.write("list.txt", Data(lines.joined(separator: "\n").utf8))
    }

    var inputs: [String] { tars + (fileCount > 0 ? [list] : []) }
}

/// Features standing in for a model: each image's per-channel mean and its first pixel, so
/// that rows are distinct and depend on the image only.
func fakeExtract(_ pixels: Tensor) -> [Tensor] {
    let (b, area) = (pixels.shape[0], pixels.shape[2] * pixels.shape[3])
    var out: [Float] = []
    for i in 0..<b {
        for c in 0..<3 {
            let start = (i * 3 + c) * area
            out.append(pixels.scalars[start..<(start + area)].reduce(0, +) / Float(area))
        }
        out.append(pixels.scalars[i * 3 * area])
    }
    return [Tensor(shape: [b, 4], scalars: out)]
}

let fakeSettings = ExtractionSettings(model: "fake", modelType: "test", hiddenSize: 4, patchSize: 14, registers: 0,
                                      preprocessing: "resize to 28x28", features: [FeatureColumn(name: "cls_token", width: 4)])

func runShard(_ dataset: SmallDataset, shard: ShardSpec, output: URL, chunkSize: Int = 7, batchSize: Int = 4, decodeThreads: Int = 2,
              resume: Bool = false, settings: ExtractionSettings = fakeSettings, preprocessing: Preprocessing = .size(height: 28, width: 28),
              stopAfter: Int? = nil) throws -> (RunSummary, [RunEvent]) {
    let plan = try DatasetPlan(inputs: dataset.inputs, chunkSize: chunkSize)
    let options = RunOptions(preparation: PreparationOptions(preprocessing: preprocessing, patchSize: 14),
                             batchSize: batchSize, decodeThreads: decodeThreads, threads: 1, resume: resume)
    let runner = ShardRunner(plan: plan, shard: shard, folder: output, settings: settings, options: options, host: "test-host",
                             digest: testDigest)
    var events: [RunEvent] = []
    let done = Atomic<Int>(0)
    let summary = try runner.run(extract: { pixels in
        done.add(pixels.shape[0], ordering: .relaxed)
        return fakeExtract(pixels)
    }, events: { events.append($0) }, stopSignal: {
        guard let stopAfter else { return nil }
        return done.load(ordering: .relaxed) >= stopAfter ? 15 : nil
    })
    return (summary, events)
}

/// Every key's feature row, read from the outputs of a folder's manifests.
func featuresByKey(_ folder: URL) throws -> [String: [Float]] {
    var result: [String: [Float]] = [:]
    for (url, manifest) in try ManifestMerge.manifests(in: [folder.path]) {
        for record in manifest.units {
            let file = try SafetensorsFile(url: url.deletingLastPathComponent().appendingPathComponent(record.output))
            let keys = try JSONValue.parse(Array((file.metadata["keys"] ?? "").utf8)).arrayValue?.compactMap(\.stringValue) ?? []
            let tensor = try file.tensor("cls_token")
            for (row, key) in keys.enumerated() {
                #expect(result[key] == nil, "\(key) twice")
                result[key] = Array(tensor.scalars[(row * 4)..<((row + 1) * 4)])
            }
        }
    }
    return result
}

@Suite("Preparation pipeline and batching")
struct PipelineTests {
    @Test("items come out in input order with 0, 1 and 3 decode threads and a small window", arguments: [0, 1, 3])
    func order(decodeThreads: Int) throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 9, fileCount: 11, corrupt: ["000010002"])
        let plan = try DatasetPlan(inputs: dataset.inputs, chunkSize: 4)
        let pipeline = PreparationPipeline(units: plan.units, options: PreparationOptions(preprocessing: .size(height: 28, width: 28), patchSize: 14),
                                           decodeThreads: decodeThreads, window: 3, shouldStop: { false })
        defer { pipeline.close() }
        var keys: [String] = []
        var ends: [(Int, Int)] = []
        var failures: [String] = []
        while let item = pipeline.next() {
            switch item {
            case let .image(unit, position, key, pixels):
                #expect(pixels.shape == [3, 28, 28])
                #expect(unit == ends.count && position == keys.count - ends.reduce(0) { $0 + $1.1 })
                keys.append(key)
            case let .failure(_, _, key, reason):
                keys.append(key)
                failures.append(key)
                #expect(reason.contains("00001.tar:000010002.jpg"), "\(reason)")
            case let .unitEnd(unit, count, error):
                #expect(error == nil)
                #expect(unit == ends.count)
                ends.append((unit, count))
            }
        }
        #expect(keys == dataset.keys)
        #expect(failures == ["000010002"])
        #expect(ends.map(\.1) == [9, 9, 4, 4, 3])
    }

    @Test("closing a pipeline in the middle returns promptly")
    func closeEarly() throws {
        let dataset = try SmallDataset(tarCount: 1, perTar: 30, fileCount: 0)
        let plan = try DatasetPlan(inputs: dataset.tars, chunkSize: 4)
        let pipeline = PreparationPipeline(units: plan.units, options: PreparationOptions(preprocessing: .size(height: 28, width: 28), patchSize: 14),
                                           decodeThreads: 2, window: 4, shouldStop: { false })
        _ = pipeline.next()
        pipeline.close()
        if case .some(let item) = pipeline.next() { Issue.record("\(item) after close") }
    }

    @Test("a corrupt tar ends its unit with an error naming the tar; the next unit still runs")
    func corruptTar() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 3, fileCount: 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dataset.tars[0]))
        bytes = bytes.prefix(bytes.count - 1500)
        try bytes.write(to: URL(fileURLWithPath: dataset.tars[0]))
        let plan = try DatasetPlan(inputs: dataset.tars, chunkSize: 4)
        let pipeline = PreparationPipeline(units: plan.units, options: PreparationOptions(preprocessing: .size(height: 28, width: 28), patchSize: 14),
                                           decodeThreads: 1, window: 4, shouldStop: { false })
        defer { pipeline.close() }
        var ends: [DatasetError?] = []
        while let item = pipeline.next() {
            if case let .unitEnd(_, _, error) = item { ends.append(error) }
        }
        #expect(ends.count == 2)
        guard case .truncatedTar(let path, _, _)?? = ends.first else { Issue.record("\(ends)"); return }
        #expect(path == dataset.tars[0])
        #expect(ends[1] == nil)
    }

    @Test("equal shapes give full batches; mixed shapes are grouped; too many waiting releases the fullest")
    func batcher() {
        func entry(_ position: Int, _ h: Int) -> Batcher.Entry {
            Batcher.Entry(position: position, key: "\(position)", pixels: Tensor(shape: [3, h, 14]))
        }
        var same = Batcher(batchSize: 3, maxPending: 12)
        var released: [[Int]] = []
        for i in 0..<7 { released += same.add(entry(i, 14)).map { $0.map(\.position) } }
        released += same.flush().map { $0.map(\.position) }
        #expect(released == [[0, 1, 2], [3, 4, 5], [6]])

        var mixed = Batcher(batchSize: 2, maxPending: 3)
        released = []
        for (i, h) in [14, 28, 42, 14, 56, 56].enumerated() { released += mixed.add(entry(i, h)).map { $0.map(\.position) } }
        released += mixed.flush().map { $0.map(\.position) }
        // 14 fills at position 3; positions 1, 2, 4 then wait (3 waiting); 5 fills 56.
        #expect(released == [[0, 3], [4, 5], [1], [2]])
        var crowded = Batcher(batchSize: 4, maxPending: 3)
        released = []
        for (i, h) in [14, 28, 14, 42, 56].enumerated() { released += crowded.add(entry(i, h)).map { $0.map(\.position) } }
        #expect(released == [[0, 2]])
    }
}

@Suite("Shard runs")
struct ShardRunTests {
    @Test("one shard writes an output per unit, the keys in order, and a complete manifest")
    func singleRun() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 5, fileCount: 9)
        let output = dataset.folder.url.appendingPathComponent("out")
        let (summary, _) = try runShard(dataset, shard: .whole, output: output)
        #expect(summary.images == 19 && summary.failedKeys == 0 && summary.manifest.isComplete)
        #expect(summary.manifest.units.map(\.output) == ["00000.safetensors", "00001.safetensors", "files-00000.safetensors", "files-00001.safetensors"])
        #expect(summary.manifest.units.map(\.rows) == [5, 5, 7, 2])
        let features = try featuresByKey(output)
        #expect(Set(features.keys) == Set(dataset.keys))
        let file = try SafetensorsFile(url: output.appendingPathComponent("00001.safetensors"))
        #expect(file.metadata["keys"] == JSONValue.array((0..<5).map { .string(String(format: "00001%04d", $0)) }).serialized)
        #expect(file.metadata["source"] == dataset.tars[1])
        let manifest = try ShardManifest(url: output.appendingPathComponent("manifest-00000-of-00001.json"))
        #expect(manifest.serialized == summary.manifest.serialized)
        #expect(manifest.runs.count == 1 && manifest.runs[0].images == 19 && manifest.runs[0].host == "test-host")
    }

    @Test("a unit is reported finished only once the manifest on disk records it")
    func finishedAfterManifest() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 3, fileCount: 4)
        let output = dataset.folder.url.appendingPathComponent("out")
        let plan = try DatasetPlan(inputs: dataset.inputs, chunkSize: 3)
        let runner = ShardRunner(plan: plan, shard: .whole, folder: output, settings: fakeSettings,
                                 options: RunOptions(preparation: PreparationOptions(preprocessing: .size(height: 28, width: 28), patchSize: 14),
                                                     batchSize: 2, decodeThreads: 1, threads: 1, resume: false),
                                 host: "test-host", digest: testDigest)
        var reported: [Int] = []
        _ = try runner.run(extract: fakeExtract, events: { event in
            guard case let .unitFinished(unit, _) = event else { return }
            reported.append(unit.index)
            let recorded = (try? ShardManifest(url: runner.manifestURL))?.units.map(\.index) ?? []
            #expect(recorded.contains(unit.index), "unit \(unit.index) reported done; the manifest on disk records \(recorded)")
        }, stopSignal: { nil })
        #expect(reported == [0, 1, 2, 3])
    }

    @Test("batch size and decode threads do not change the features")
    func deterministic() throws {
        let dataset = try SmallDataset(tarCount: 1, perTar: 6, fileCount: 5)
        let a = dataset.folder.url.appendingPathComponent("a")
        let b = dataset.folder.url.appendingPathComponent("b")
        _ = try runShard(dataset, shard: .whole, output: a, batchSize: 1, decodeThreads: 0)
        _ = try runShard(dataset, shard: .whole, output: b, batchSize: 5, decodeThreads: 3)
        #expect(try featuresByKey(a) == featuresByKey(b))
    }

    @Test("variable image sizes are batched by shape and every key still gets its row")
    func variableSizes() throws {
        let dataset = try SmallDataset(tarCount: 0, perTar: 0, fileCount: 15)
        let output = dataset.folder.url.appendingPathComponent("out")
        let (summary, _) = try runShard(dataset, shard: .whole, output: output, chunkSize: 15, preprocessing: .pad)
        #expect(summary.images == 15)
        #expect(try featuresByKey(output).count == 15)
    }

    @Test("a second run without --resume is refused; with --resume it skips every finished unit")
    func resumeSkips() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 3, fileCount: 4)
        let output = dataset.folder.url.appendingPathComponent("out")
        _ = try runShard(dataset, shard: try ShardSpec(index: 1, count: 2), output: output, chunkSize: 2)
        #expect(throws: DatasetError.existingRun(path: output.appendingPathComponent("manifest-00001-of-00002.json").path)) {
            try runShard(dataset, shard: try ShardSpec(index: 1, count: 2), output: output, chunkSize: 2)
        }
        let (again, events) = try runShard(dataset, shard: try ShardSpec(index: 1, count: 2), output: output, chunkSize: 2, resume: true)
        #expect(again.images == 0 && again.skippedUnits == 2 && again.manifest.isComplete)
        #expect(events.filter { if case .unitSkipped = $0 { return true } else { return false } }.count == 2)
        #expect(again.manifest.runs.count == 2)
    }

    @Test("stopping mid-run leaves complete outputs only; --resume finishes with the same features as one run")
    func stopAndResume() throws {
        let dataset = try SmallDataset(tarCount: 3, perTar: 6, fileCount: 10)
        let reference = dataset.folder.url.appendingPathComponent("reference")
        _ = try runShard(dataset, shard: .whole, output: reference, chunkSize: 4)
        let output = dataset.folder.url.appendingPathComponent("out")
        let (stopped, _) = try runShard(dataset, shard: .whole, output: output, chunkSize: 4, batchSize: 2, stopAfter: 9)
        #expect(stopped.interrupted && !stopped.manifest.isComplete)
        #expect(stopped.manifest.runs.last?.interruptedBy == 15)
        let finished = stopped.manifest.units.count
        #expect(finished >= 1 && finished < 6, "\(finished) units finished")
        // A killed writer leaves a temporary file; it must not count as output and is removed.
        try Data("partial".utf8).write(to: output.appendingPathComponent(".files-00001.safetensors.partial-99-1"))
        let (resumed, _) = try runShard(dataset, shard: .whole, output: output, chunkSize: 4, batchSize: 2, resume: true)
        #expect(resumed.skippedUnits == finished && resumed.manifest.isComplete)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: output.path)).contains { $0.contains(".partial-") })
        #expect(try featuresByKey(output) == featuresByKey(reference))
    }

    @Test("--resume redoes a unit whose output was deleted or changed, and refuses other settings")
    func resumeChecks() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 3, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        _ = try runShard(dataset, shard: .whole, output: output)
        try Data("changed".utf8).write(to: output.appendingPathComponent("00001.safetensors"))
        let (again, events) = try runShard(dataset, shard: .whole, output: output, resume: true)
        #expect(again.finishedUnits == 1 && again.skippedUnits == 1)
        #expect(events.contains { if case .warning(let text) = $0 { return text.contains("00001.safetensors") } else { return false } })
        var other = fakeSettings
        other.preprocessing = "resize to 42x42"
        #expect {
            try runShard(dataset, shard: .whole, output: output, resume: true, settings: other)
        } throws: { error in
            guard case .incompatibleSettings(_, "preprocessing", "resize to 42x42", "resize to 28x28")? = error as? DatasetError else { return false }
            return true
        }
    }

    @Test("a folder holding a run with another shard count is refused")
    func otherShardCount() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 2, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        _ = try runShard(dataset, shard: try ShardSpec(index: 0, count: 2), output: output)
        #expect {
            try runShard(dataset, shard: try ShardSpec(index: 0, count: 3), output: output)
        } throws: { error in
            guard case .incompatibleSettings(let path, "shard count", _, "00002")? = error as? DatasetError else { return false }
            return path.hasSuffix("manifest-00000-of-00002.json")
        }
    }

    @Test("failed keys are recorded with their reason and get no row")
    func failedKeys() throws {
        let dataset = try SmallDataset(tarCount: 1, perTar: 4, fileCount: 0, corrupt: ["000000002"])
        let output = dataset.folder.url.appendingPathComponent("out")
        let (summary, _) = try runShard(dataset, shard: .whole, output: output)
        #expect(summary.failedKeys == 1)
        let record = try #require(summary.manifest.units.first)
        #expect(record.rows == 3 && record.expected == 4 && record.failures.map(\.key) == ["000000002"])
        #expect(try featuresByKey(output).keys.sorted() == ["000000000", "000000001", "000000003"])
    }
}
