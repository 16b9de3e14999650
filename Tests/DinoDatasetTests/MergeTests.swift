import DinoDataset
import DinoTensor
import Foundation
import Testing

@Suite("Manifests and merge")
struct MergeTests {
    /// Runs every shard of `count` into `output`.
    func runAll(_ dataset: SmallDataset, count: Int, output: URL, allowFailures: Bool = false) throws {
        for index in 0..<count {
            _ = try runShard(dataset, shard: try ShardSpec(index: index, count: count), output: output, chunkSize: 3)
        }
    }

    func merge(_ locations: [URL], allowFailures: Bool = false) throws -> DatasetIndex {
        try ManifestMerge.merge(try ManifestMerge.manifests(in: locations.map(\.path)), indexFolder: locations[0],
                                allowFailures: allowFailures, digest: testDigest)
    }

    func mergeError(_ locations: [URL], allowFailures: Bool = false) throws -> DatasetError? {
        do {
            _ = try merge(locations, allowFailures: allowFailures)
            return nil
        } catch let error as DatasetError {
            return error
        }
    }

    func editManifest(_ folder: URL, shard: ShardSpec, _ edit: (inout ShardManifest) -> Void) throws {
        let url = folder.appendingPathComponent(ShardManifest.fileName(for: shard))
        var manifest = try ShardManifest(url: url)
        edit(&manifest)
        try manifest.write(to: url)
    }

    @Test("three shards merge into one index with every key once, at its file and row")
    func mergesShards() throws {
        let dataset = try SmallDataset(tarCount: 4, perTar: 3, fileCount: 8)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 3, output: output)
        let index = try merge([output])
        #expect(index.entries.map(\.key).sorted() == dataset.keys.sorted())
        #expect(index.shardCount == 3 && index.files.count == 7 && index.failures.isEmpty)
        #expect(index.files.map(\.path) == ["00000.safetensors", "00001.safetensors", "00002.safetensors", "00003.safetensors",
                                            "files-00000.safetensors", "files-00001.safetensors", "files-00002.safetensors"])
        let features = try featuresByKey(output)
        for entry in index.entries.prefix(20) {
            let file = try SafetensorsFile(url: output.appendingPathComponent(index.files[entry.file].path))
            let row = Array(try file.tensor("cls_token").scalars[(entry.row * 4)..<((entry.row + 1) * 4)])
            #expect(row == features[entry.key])
        }
        #expect(index.hosts.count == 1 && index.hosts[0].host == "test-host" && index.hosts[0].shards == 3)
        let url = output.appendingPathComponent("index.json")
        try index.write(to: url)
        let parsed = try JSONValue.parse(Array(try Data(contentsOf: url)))
        #expect(parsed["format"]?.stringValue == DatasetIndex.format)
        #expect(parsed["keys"]?.arrayValue?.count == dataset.keys.count)
        #expect(parsed["count"]?.intValue == dataset.keys.count)
    }

    @Test("a shard without a manifest is reported as missing")
    func missingShard() throws {
        let dataset = try SmallDataset(tarCount: 3, perTar: 2, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 3, output: output)
        try FileManager.default.removeItem(at: output.appendingPathComponent("manifest-00001-of-00003.json"))
        #expect(try mergeError([output]) == .missingShard(index: 1, count: 3, searched: output.path))
    }

    @Test("the same shard in two folders is a duplicate")
    func duplicateShard() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 2, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        let copy = dataset.folder.url.appendingPathComponent("copy")
        try runAll(dataset, count: 2, output: output)
        try FileManager.default.copyItem(at: output, to: copy)
        try FileManager.default.removeItem(at: copy.appendingPathComponent("manifest-00001-of-00002.json"))
        guard case .duplicateShard(0, _, _)? = try mergeError([output, copy]) else { Issue.record("not a duplicate shard"); return }
    }

    @Test("a unit a shard has not finished makes its keys missing")
    func unfinishedUnit() throws {
        let dataset = try SmallDataset(tarCount: 4, perTar: 2, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 2, output: output)
        try editManifest(output, shard: try ShardSpec(index: 1, count: 2)) { $0.units.removeLast() }
        guard case .unfinishedUnit(_, 3, _)? = try mergeError([output]) else { Issue.record("not an unfinished unit"); return }
    }

    @Test("fewer keys than the unit's input had is a missing-key error")
    func missingKey() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 3, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 1, output: output)
        try editManifest(output, shard: .whole) { $0.units[1].expected = 4 }
        guard case .missingKeys(let source, 4, 3)? = try mergeError([output]) else { Issue.record("not missing keys"); return }
        #expect(source.contains("00001.tar"))
    }

    @Test("a key in two tars is a duplicate, naming both files and rows")
    func duplicateKey() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 2, fileCount: 0, repeatKey: "same")
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 2, output: output)
        let error = try mergeError([output])
        #expect(error == .duplicateKey(key: "same", first: output.appendingPathComponent("00000.safetensors").path + " row 0",
                                       second: output.appendingPathComponent("00001.safetensors").path + " row 0"))
    }

    @Test("shards run with other settings, inputs or counts are incompatible")
    func incompatible() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 2, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 2, output: output)
        let second = try ShardSpec(index: 1, count: 2)
        let fingerprint = try ShardManifest(url: output.appendingPathComponent(ShardManifest.fileName(for: second))).inputFingerprint
        try editManifest(output, shard: second) { $0.settings.features[0].width = 8 }
        guard case .incompatibleSettings(_, "features", "cls_token[4]", "cls_token[8]")? = try mergeError([output]) else {
            Issue.record("features difference not found")
            return
        }
        try editManifest(output, shard: second) {
            $0.settings.features[0].width = 4
            $0.inputFingerprint = "fnv1a64:0"
        }
        guard case .incompatibleSettings(_, "input fingerprint", _, "fnv1a64:0")? = try mergeError([output]) else {
            Issue.record("input difference not found")
            return
        }
        try editManifest(output, shard: second) { $0.inputFingerprint = fingerprint }
        let other = dataset.folder.url.appendingPathComponent("other")
        try runAll(dataset, count: 3, output: other)
        try FileManager.default.removeItem(at: other.appendingPathComponent("manifest-00000-of-00003.json"))
        guard case .incompatibleSettings(_, "shard count", _, _)? = try mergeError([output, other]) else {
            Issue.record("shard count difference not found")
            return
        }
    }

    @Test("an output changed after its manifest was written is refused")
    func changedOutput() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 2, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 1, output: output)
        let file = output.appendingPathComponent("00001.safetensors")
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: file)
        #expect {
            try merge([output])
        } throws: { error in
            guard case .outputMismatch(let path, "sha256", _, _)? = error as? DatasetError else { return false }
            return path == file.path
        }
        try FileManager.default.removeItem(at: file)
        guard case .outputMismatch(_, "file", _, "missing")? = try mergeError([output]) else { Issue.record("missing file not found"); return }
    }

    @Test("a manifest whose output leaves its folder is refused by merge and by --resume, naming the manifest")
    func outputOutside() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 2, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 1, output: output)
        // The tampered manifest points at an exact copy of the output, outside the folder.
        let outside = dataset.folder.url.appendingPathComponent("outside.safetensors")
        try FileManager.default.moveItem(at: output.appendingPathComponent("00001.safetensors"), to: outside)
        let shard = try ShardSpec(index: 0, count: 1)
        try editManifest(output, shard: shard) { $0.units[1].output = "../outside.safetensors" }
        let manifest = output.appendingPathComponent(ShardManifest.fileName(for: shard)).path
        guard case .invalidManifest(manifest, let reason)? = try mergeError([output]) else {
            Issue.record("merge followed ../outside.safetensors")
            return
        }
        #expect(reason.contains("'../outside.safetensors'") && reason.contains("not inside"), "\(reason)")
        #expect {
            try runShard(dataset, shard: shard, output: output, chunkSize: 3, resume: true)
        } throws: { error in
            guard case .invalidManifest(manifest, _)? = error as? DatasetError else { return false }
            return true
        }
    }

    @Test("a FIFO in place of an output is refused without opening it")
    func outputFIFO() throws {
        let dataset = try SmallDataset(tarCount: 1, perTar: 2, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 1, output: output)
        let file = output.appendingPathComponent("00000.safetensors")
        try FileManager.default.removeItem(at: file)
        #expect(mkfifo(file.path, 0o600) == 0)
        try editManifest(output, shard: try ShardSpec(index: 0, count: 1)) { $0.units[0].bytes = 0 }
        guard case .outputMismatch(file.path, "file", "a regular file", let actual)? = try mergeError([output]) else {
            Issue.record("the FIFO was not refused")
            return
        }
        #expect(actual.contains("FIFO"))
    }

    @Test("failed keys stop the merge unless allowed, and are then listed")
    func failedKeys() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 3, fileCount: 0, corrupt: ["000010001"])
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 2, output: output)
        guard case .failedKeys(1, let examples)? = try mergeError([output]) else { Issue.record("failures not reported"); return }
        #expect(examples.first?.hasPrefix("000010001: ") == true)
        let index = try merge([output], allowFailures: true)
        #expect(index.entries.count == 5 && index.failures.map(\.key) == ["000010001"])
    }

    @Test("a unit whose every key failed has an empty output, and merges with --allow-failures")
    func allFailed() throws {
        let dataset = try SmallDataset(tarCount: 2, perTar: 2, fileCount: 0, corrupt: ["000010000", "000010001"])
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 1, output: output)
        let file = try SafetensorsFile(url: output.appendingPathComponent("00001.safetensors"))
        #expect(try file.shape(of: "cls_token") == [0, 4])
        #expect(file.metadata["keys"] == "[]")
        let index = try merge([output], allowFailures: true)
        #expect(index.entries.map(\.key) == ["000000000", "000000001"] && index.failures.count == 2)
    }

    @Test("a manifest with a wrong field type or another format is refused, naming the field")
    func invalidManifest() throws {
        let folder = try TemporaryFolder()
        let dataset = try SmallDataset(tarCount: 1, perTar: 1, fileCount: 0)
        let output = dataset.folder.url.appendingPathComponent("out")
        try runAll(dataset, count: 1, output: output)
        let text = try String(contentsOf: output.appendingPathComponent("manifest-00000-of-00001.json"), encoding: .utf8)
        let broken = try folder.write("m.json", Data(text.replacingOccurrences(of: "\"hidden_size\":4", with: "\"hidden_size\":\"4\"").utf8))
        #expect(throws: DatasetError.invalidManifest(path: broken, reason: "field settings.hidden_size is not an integer")) {
            try ShardManifest(url: URL(fileURLWithPath: broken))
        }
        let future = try folder.write("f.json", Data(text.replacingOccurrences(of: ShardManifest.format, with: "dino-extract-manifest/9").utf8))
        #expect(throws: DatasetError.self) { try ShardManifest(url: URL(fileURLWithPath: future)) }
    }
}
