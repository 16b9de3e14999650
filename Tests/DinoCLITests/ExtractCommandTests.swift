// DinoImage is linked into this test target through DinoCLI; it re-encodes the example photos
// as the small JPEGs of the test dataset.
import DinoImage
import DinoTensor
import Foundation
import Testing

/// A WebDataset-style dataset made from crops of the example photos: tar shards in
/// img2dataset's layout (`SSSSSIIII.jpg` + `.json` + `.txt`, written by GNU tar in pax format)
/// and loose JPEGs in nested folders with a file list.
struct ExtractDataset {
    let root: URL
    /// The tar shards as a brace pattern.
    let tarPattern: String
    /// The file list (paths relative to its folder).
    let list: String
    /// Every key: tar keys, then list lines.
    var keys: [String] = []

    init(in scratch: Scratch, tars: Int, perTar: Int, files: Int) throws {
        root = scratch.url.appendingPathComponent("dataset")
        let photos = try ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg"].map {
            try ImageIO.read(CLI.photos.appendingPathComponent($0))
        }
        var counter = 0
        func nextImage() throws -> Data {
            // A different 64x64 view of a photo each time: a window whose size and place vary.
            let photo = photos[counter % photos.count]
            let side = min(photo.width, photo.height) / (2 + counter % 3)
            let x = (counter * 37) % (photo.width - side + 1)
            let y = (counter * 53) % (photo.height - side + 1)
            counter += 1
            let tile = photo.cropped(x: x, y: y, width: side, height: side).resized(width: 64, height: 64)
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("dino-extract-\(UUID().uuidString).jpg")
            defer { try? FileManager.default.removeItem(at: url) }
            try ImageIO.write(tile, to: url, jpegQuality: 85)
            return try Data(contentsOf: url)
        }
        let staging = scratch.url.appendingPathComponent("staging")
        let shards = root.appendingPathComponent("shards")
        try FileManager.default.createDirectory(at: shards, withIntermediateDirectories: true)
        for t in 0..<tars {
            let folder = staging.appendingPathComponent("\(t)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var members: [String] = []
            for i in 0..<perTar {
                let key = String(format: "%05d%04d", t, i)
                try nextImage().write(to: folder.appendingPathComponent(key + ".jpg"))
                try Data("{\"key\": \"\(key)\", \"width\": 64}".utf8).write(to: folder.appendingPathComponent(key + ".json"))
                try Data("a crop of a photo".utf8).write(to: folder.appendingPathComponent(key + ".txt"))
                members += [key + ".jpg", key + ".json", key + ".txt"]
                keys.append(key)
            }
            let tar = Process()
            tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
            tar.currentDirectoryURL = folder
            tar.arguments = ["--format=pax", "-cf", shards.appendingPathComponent(String(format: "%05d.tar", t)).path] + members
            try tar.run()
            tar.waitUntilExit()
            try #require(tar.terminationStatus == 0)
        }
        try? FileManager.default.removeItem(at: staging)
        tarPattern = shards.path + "/{" + String(format: "%05d", 0) + ".." + String(format: "%05d", tars - 1) + "}.tar"
        var lines: [String] = []
        for i in 0..<files {
            let relative = "../files/dir\(i % 3)/img\(String(format: "%04d", i)).jpg"
            let url = root.appendingPathComponent("lists").appendingPathComponent(relative).standardizedFileURL
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try nextImage().write(to: url)
            lines.append(relative)
        }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("lists"), withIntermediateDirectories: true)
        list = root.appendingPathComponent("lists/all.txt").path
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: list))
        keys += lines
    }
}

/// Every key's features (all columns, concatenated) from a merged index.
func indexedFeatures(_ index: URL) throws -> [String: [Float]] {
    let json = try JSONValue.parse(Array(try Data(contentsOf: index)))
    let folder = index.deletingLastPathComponent()
    let files = try (json["files"]?.arrayValue ?? []).map { item in
        try SafetensorsFile(url: folder.appendingPathComponent(item["path"]?.stringValue ?? ""))
    }
    let columns = (json["settings"]?["features"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
    var tensors: [Int: [Tensor]] = [:]
    var result: [String: [Float]] = [:]
    for entry in json["keys"]?.arrayValue ?? [] {
        guard let triple = entry.arrayValue, triple.count == 3, let key = triple[0].stringValue, let file = triple[1].intValue,
              let row = triple[2].intValue else { continue }
        if tensors[file] == nil { tensors[file] = try columns.map { try files[file].tensor($0) } }
        var features: [Float] = []
        for tensor in tensors[file] ?? [] {
            let width = tensor.shape[1]
            features += tensor.scalars[(row * width)..<((row + 1) * width)]
        }
        #expect(result[key] == nil, "\(key) indexed twice")
        result[key] = features
    }
    return result
}

/// Starts `dino` without waiting for it.
func startDino(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe) {
    let process = Process()
    process.executableURL = CLI.executable
    process.arguments = arguments
    var base = ProcessInfo.processInfo.environment
    for name in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                 "SLURM_ARRAY_TASK_STEP", "JOB_COMPLETION_INDEX"] { base[name] = nil }
    process.environment = base.merging(environment) { $1 }
    let err = Pipe()
    process.standardError = err
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    return (process, err)
}

/// Finished units recorded in a shard's manifest (0 while it does not exist or is being replaced).
func finishedUnits(_ manifest: URL) -> Int {
    guard let data = try? Data(contentsOf: manifest), let json = try? JSONValue.parse(Array(data)) else { return 0 }
    return json["units"]?.arrayValue?.count ?? 0
}

@Suite("dino extract (end to end)")
struct ExtractCommandTests {
    static let model = CLI.model("reg4_downsample")
    /// Settings every run of a test shares: equal batches and threads give bit-identical rows.
    static let common = ["--model", model, "--size", "112x112", "--batch-size", "8", "--threads", "1", "--chunk-size", "25",
                         "--patch-mean", "--out-features", "stage1"]

    @Test("3 shards over tars and files, one SIGKILLed and one SIGTERMed midway, resumed and merged, equal a single run")
    func shardKillResumeMerge() throws {
        let scratch = try Scratch()
        let dataset = try ExtractDataset(in: scratch, tars: 6, perTar: 40, files: 120)
        let inputs = [dataset.tarPattern, dataset.list]

        // The single-process reference.
        let reference = scratch.url.appendingPathComponent("reference")
        let single = try CLI.run(["extract"] + Self.common + inputs + ["--output-dir", reference.path])
        #expect(single.status == 0, "\(single.stderr)")
        #expect(single.stderr.contains("360 images in 11 units, 0 failed"), "\(single.stderr)")
        #expect(single.stderr.contains("images/s"), "\(single.stderr)")
        let singleMerge = try CLI.run(["extract", "merge", reference.path])
        #expect(singleMerge.status == 0, "\(singleMerge.stderr)")
        let expected = try indexedFeatures(reference.appendingPathComponent("index.json"))
        #expect(Set(expected.keys) == Set(dataset.keys) && expected.count == 360)

        // Three shards at once: the index from --shard, from Slurm's and from Kubernetes' variables.
        // Shard 1 decodes in line and shard 2 with two threads: neither changes the features.
        let output = scratch.url.appendingPathComponent("sharded")
        let run = ["extract"] + Self.common + inputs + ["--output-dir", output.path]
        let (first, firstErr) = try startDino(run + ["--shard", "0/3"])
        let (second, _) = try startDino(run + ["--decode-threads", "0"],
                                        environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"])
        let (third, thirdErr) = try startDino(run + ["--shard-count", "3", "--decode-threads", "2"], environment: ["JOB_COMPLETION_INDEX": "2"])
        defer { for process in [first, second, third] where process.isRunning { process.terminate() } }
        let secondManifest = output.appendingPathComponent("manifest-00001-of-00003.json")
        let thirdManifest = output.appendingPathComponent("manifest-00002-of-00003.json")
        let deadline = Date().addingTimeInterval(60)
        var killed = false, terminated = false
        while Date() < deadline && (!killed || !terminated) {
            if !killed && finishedUnits(secondManifest) >= 1 {
                kill(second.processIdentifier, SIGKILL)
                killed = true
            }
            if !terminated && finishedUnits(thirdManifest) >= 1 {
                kill(third.processIdentifier, SIGTERM)
                terminated = true
            }
            usleep(1_000)
        }
        let firstLog = String(decoding: firstErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let thirdLog = String(decoding: thirdErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        for process in [first, second, third] { process.waitUntilExit() }
        #expect(first.terminationStatus == 0, "\(firstLog)")
        #expect(firstLog.contains("extract shard 0/3 (from --shard): 4 of 11 units"), "\(firstLog)")
        // Both stopped before their last unit: each owns 4 units (1 4 7 10 and 2 5 8).
        #expect(second.terminationReason == .uncaughtSignal && second.terminationStatus == SIGKILL, "shard 1 finished before the kill")
        #expect(third.terminationStatus == 128 + SIGTERM, "\(thirdLog)")
        #expect(thirdLog.contains("(from JOB_COMPLETION_INDEX)") && thirdLog.contains("interrupted by signal 15"), "\(thirdLog)")
        let killedUnits = finishedUnits(secondManifest)
        let stoppedUnits = finishedUnits(thirdManifest)
        #expect(killedUnits >= 1 && killedUnits < 4 && stoppedUnits >= 1 && stoppedUnits < 3, "\(killedUnits), \(stoppedUnits)")

        // A merge now names an unfinished unit and writes no index; whatever the kill left
        // (a temporary file, or an output the manifest does not list yet) is not taken as output.
        // A planted temporary file stands for a write cut short at the worst moment.
        try Data("half a file".utf8).write(to: output.appendingPathComponent(".00004.safetensors.partial-1-2"))
        let early = try CLI.run(["extract", "merge", output.path])
        #expect(early.status != 0)
        #expect(early.stderr.contains("is not finished") && early.stderr.contains("--resume"), "\(early.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("index.json").path))

        // Resuming finishes the two shards without rewriting the outputs their manifests recorded.
        var stamps: [String: Date] = [:]
        for manifest in [secondManifest, thirdManifest] {
            let json = try JSONValue.parse(Array(try Data(contentsOf: manifest)))
            for unit in json["units"]?.arrayValue ?? [] {
                guard let name = unit["output"]?.stringValue else { continue }
                stamps[name] = try FileManager.default.attributesOfItem(atPath: output.appendingPathComponent(name).path)[.modificationDate] as? Date
            }
        }
        #expect(stamps.count == killedUnits + stoppedUnits)
        let resumedSecond = try CLI.run(run + ["--resume"], environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"])
        #expect(resumedSecond.status == 0, "\(resumedSecond.stderr)")
        #expect(resumedSecond.stderr.contains("\(killedUnits) units already done (--resume)"), "\(resumedSecond.stderr)")
        let resumedThird = try CLI.run(run + ["--shard", "2/3", "--resume"])
        #expect(resumedThird.status == 0, "\(resumedThird.stderr)")
        #expect(resumedThird.stderr.contains("\(stoppedUnits) units already done (--resume)"), "\(resumedThird.stderr)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: output.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
        for (name, before) in stamps {
            let now = try FileManager.default.attributesOfItem(atPath: output.appendingPathComponent(name).path)[.modificationDate] as? Date
            #expect(now == before, "\(name) was written again")
        }
        let manifestsNow = try [secondManifest, thirdManifest].map { try JSONValue.parse(Array(try Data(contentsOf: $0))) }
        #expect(manifestsNow[1]["runs"]?.arrayValue?.first?["interrupted_by"]?.intValue == 15)

        // Merge: every key once, with the single run's features, bit for bit.
        let merged = try CLI.run(["extract", "merge", output.path])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stdout.contains("merged 3 shards: 360 keys in 11 files"), "\(merged.stdout)")
        let features = try indexedFeatures(output.appendingPathComponent("index.json"))
        #expect(features.count == 360 && Set(features.keys) == Set(dataset.keys))
        var differing: [String] = []
        for (key, row) in features where row != expected[key] { differing.append(key) }
        #expect(differing.isEmpty, "\(differing.count) keys differ from the single run, e.g. \(differing.prefix(3))")
        #expect(features.values.first?.count == 3 * 32, "cls_token, patch_mean and stage_mean.stage1")
    }

    @Test("the pooled features are the model's outputs: HF transformers' for CLS, patch mean and the last stage, dino features' for stage1")
    func pooledFeaturesAreTheModels() throws {
        let scratch = try Scratch()
        let photo = CLI.photos.appendingPathComponent("astronaut.png").path
        let model = CLI.model("reg4_downsample")
        let run = try CLI.run(["extract", "--model", model, photo, "--classification", "--patch-mean", "--out-features", "stage1,stage2",
                               "--output-dir", scratch.path("out")])
        #expect(run.status == 0, "\(run.stderr)")
        let output = try SafetensorsFile(url: URL(fileURLWithPath: scratch.path("out/files-00000.safetensors")))
        #expect(output.metadata["keys"] == JSONValue.array([.string(photo)]).serialized)

        // HF's Dinov2WithRegistersModel on the same image through HF's processor (the features
        // test checks those pixels): [1, 1 + 4 + 256, 32], tokens CLS, registers, patches.
        let reference = try SafetensorsFile(url: CLI.imageFixtures.appendingPathComponent("preprocess/model.astronaut.safetensors"))
        let last = try reference.tensor("last_hidden_state")
        var patchMean = [Float](repeating: 0, count: 32)
        for t in 5..<261 { for c in 0..<32 { patchMean[c] += last.scalars[t * 32 + c] / 256 } }
        let hfPatchMean = Tensor(shape: [1, 32], scalars: patchMean)
        for (name, expected) in [("cls_token", try reference.tensor("pooler_output")), ("patch_mean", hfPatchMean),
                                 // stage2 is the last block; apply_layernorm makes its map the final-normed tokens.
                                 ("stage_mean.stage2", hfPatchMean)] {
            let error = scaledError(try output.tensor(name), expected)
            #expect(error <= 1e-4, "\(name): scaled error \(error) against HF")
        }

        // stage1 against the model's own feature map from dino features.
        let features = try CLI.run(["features", "--model", model, photo, "--classification", "--out-features", "stage1",
                                    "--output-dir", scratch.path("features")])
        #expect(features.status == 0, "\(features.stderr)")
        let map = try SafetensorsFile(url: URL(fileURLWithPath: scratch.path("features/astronaut.safetensors"))).tensor("feature_maps.stage1")
        #expect(map.shape == [1, 32, 16, 16])
        let stage1 = Tensor(shape: [1, 32], scalars: (0..<32).map { c in map.scalars[(c * 256)..<((c + 1) * 256)].reduce(0, +) / 256 })
        let error = scaledError(try output.tensor("stage_mean.stage1"), stage1)
        #expect(error <= 1e-4, "stage_mean.stage1: scaled error \(error) against the feature map's mean")
    }

    @Test("refusals: a second run without --resume, bad shard settings, a merge of other settings")
    func refusals() throws {
        let scratch = try Scratch()
        let dataset = try ExtractDataset(in: scratch, tars: 2, perTar: 4, files: 6)
        let output = scratch.path("out")
        let base = ["extract"] + Self.common + [dataset.tarPattern, dataset.list, "--output-dir", output]
        let firstRun = try CLI.run(base)
        #expect(firstRun.status == 0, "\(firstRun.stderr)")
        let again = try CLI.run(base)
        #expect(again.status != 0 && again.stderr.contains("--resume"), "\(again.stderr)")

        let badShard = try CLI.run(base + ["--shard", "3/3"])
        #expect(badShard.status != 0 && badShard.stderr.contains("--shard 3/3"), "\(badShard.stderr)")
        let noCount = try CLI.run(base, environment: ["JOB_COMPLETION_INDEX": "1"])
        #expect(noCount.status != 0 && noCount.stderr.contains("--shard-count"), "\(noCount.stderr)")
        let missing = try CLI.run(["extract"] + Self.common + [scratch.path("none/{0..3}.tar"), "--output-dir", scratch.path("x")])
        #expect(missing.status != 0 && missing.stderr.contains(scratch.path("none/0.tar")), "\(missing.stderr)")

        // An output that cannot be written stops the run with the file named; --resume continues
        // once the cause is gone.
        let blocked = scratch.url.appendingPathComponent("blocked")
        try FileManager.default.createDirectory(at: blocked.appendingPathComponent("00001.safetensors"), withIntermediateDirectories: true)
        let unwritable = try CLI.run(["extract"] + Self.common + [dataset.tarPattern, dataset.list, "--output-dir", blocked.path])
        #expect(unwritable.status != 0 && unwritable.stderr.contains(blocked.appendingPathComponent("00001.safetensors").path),
                "\(unwritable.stderr)")
        try FileManager.default.removeItem(at: blocked.appendingPathComponent("00001.safetensors"))
        let unblocked = try CLI.run(["extract"] + Self.common + [dataset.tarPattern, dataset.list, "--output-dir", blocked.path, "--resume"])
        #expect(unblocked.status == 0 && unblocked.stderr.contains("1 units already done"), "\(unblocked.stderr)")

        // The same data with another preprocessing in another folder cannot merge with the first.
        let other = scratch.path("other")
        let otherRun = try CLI.run(["extract", "--model", Self.model, "--size", "56x56", "--batch-size", "8", "--threads", "1",
                                    "--chunk-size", "25", "--patch-mean", "--out-features", "stage1", dataset.tarPattern, dataset.list,
                                    "--output-dir", other])
        #expect(otherRun.status == 0, "\(otherRun.stderr)")
        try FileManager.default.moveItem(atPath: other + "/manifest-00000-of-00001.json", toPath: other + "/manifest-00000-of-00001.moved")
        let mixed = try CLI.run(["extract", "merge", output + "/manifest-00000-of-00001.json", other + "/manifest-00000-of-00001.moved"])
        #expect(mixed.status != 0 && mixed.stderr.contains("preprocessing"), "\(mixed.stderr)")
    }

    @Test("a truncated tar fails its unit, naming the tar and offset; the rest completes and merge reports it")
    func truncatedTar() throws {
        let scratch = try Scratch()
        let dataset = try ExtractDataset(in: scratch, tars: 3, perTar: 5, files: 0)
        let broken = dataset.root.appendingPathComponent("shards/00001.tar")
        let bytes = try Data(contentsOf: broken)
        try bytes.prefix(bytes.count - 4000).write(to: broken)
        let output = scratch.path("out")
        let result = try CLI.run(["extract"] + Self.common + [dataset.tarPattern, "--output-dir", output])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("\(broken.path): truncated tar at byte"), "\(result.stderr)")
        #expect(result.stderr.contains("10 images in 2 units") && result.stderr.contains("unreadable units: 1"), "\(result.stderr)")
        let merged = try CLI.run(["extract", "merge", output])
        #expect(merged.status != 0 && merged.stderr.contains("00001.tar") && merged.stderr.contains("truncated"), "\(merged.stderr)")
    }
}
