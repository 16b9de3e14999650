import DinoTensor
import Foundation
import Testing

/// The bad-input corpus (`Tests/DinoCLITests/BadInputs`, from `Scripts/make_bad_inputs.py`):
/// every malformed file must give a typed error naming the file and its problem, a non-zero exit
/// code, and no half-written output.
@Suite("Bad-input corpus")
struct BadInputCorpusTests {
    struct Case: Sendable, CustomStringConvertible {
        var format: String
        var file: String
        var expect: String
        var description: String { file }
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("BadInputs")

    static let cases: [Case] = {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("manifest.json")),
              let items = try? JSONSerialization.jsonObject(with: data) as? [[String: String]] else { return [] }
        return items.compactMap { item in
            guard let format = item["format"], let file = item["file"], let expect = item["message_contains"] else { return nil }
            return Case(format: format, file: file, expect: expect)
        }
    }()

    @Test("the corpus has at least 40 files across every format")
    func size() {
        #expect(Self.cases.count >= 40)
        #expect(Set(Self.cases.map(\.format)) == ["safetensors", "config", "pth", "image", "npy", "voc", "coco", "manifest"])
    }

    /// Runs the command that reads `case` and returns the result plus the bad file's path as the
    /// message must name it.
    func run(_ item: Case, in scratch: Scratch) throws -> (CLI.Result, String) {
        let bad = Self.folder.appendingPathComponent(item.file)
        let good = URL(fileURLWithPath: CLI.model("reg1_nointerp"))
        let pixels = scratch.path("pixels.npy")
        try NumpyFile.write(Tensor(shape: [1, 3, 56, 56], repeating: 0.1), to: URL(fileURLWithPath: pixels))
        let output = scratch.path("out/features.safetensors")
        try FileManager.default.createDirectory(atPath: scratch.path("out"), withIntermediateDirectories: true)
        let model = scratch.url.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        switch item.format {
        case "safetensors":
            try FileManager.default.copyItem(at: good.appendingPathComponent("config.json"), to: model.appendingPathComponent("config.json"))
            try FileManager.default.copyItem(at: bad, to: model.appendingPathComponent("model.safetensors"))
            return (try CLI.run(["features", "--model", model.path, "--pixels", pixels, "--output", output]),
                    model.appendingPathComponent("model.safetensors").path)
        case "config":
            try FileManager.default.copyItem(at: good.appendingPathComponent("model.safetensors"), to: model.appendingPathComponent("model.safetensors"))
            try FileManager.default.copyItem(at: bad, to: model.appendingPathComponent("config.json"))
            return (try CLI.run(["features", "--model", model.path, "--pixels", pixels, "--output", output]),
                    model.appendingPathComponent("config.json").path)
        case "pth":
            return (try CLI.run(["features", "--model", bad.path, "--pixels", pixels, "--output", output]), bad.path)
        case "npy":
            return (try CLI.run(["features", "--model", good.path, "--pixels", bad.path, "--output", output]), bad.path)
        case "image":
            return (try CLI.run(["features", "--model", good.path, bad.path, "--output-dir", scratch.path("out")]), bad.path)
        case "manifest":
            // The output the manifest names through ../ exists, an exact copy of what it records.
            let run = scratch.url.appendingPathComponent("run")
            try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
            let copy = run.appendingPathComponent("manifest-00000-of-00001.json")
            try FileManager.default.copyItem(at: bad, to: copy)
            try FileManager.default.copyItem(at: Self.folder.appendingPathComponent("manifest/outside.safetensors"),
                                             to: scratch.url.appendingPathComponent("outside.safetensors"))
            return (try CLI.run(["extract", "merge", run.path, "--index", scratch.path("out/index.json")]), copy.path)
        case "voc":
            let dataset = scratch.url.appendingPathComponent("voc")
            for sub in ["JPEGImages", "Annotations", "ImageSets/Main"] {
                try FileManager.default.createDirectory(at: dataset.appendingPathComponent(sub), withIntermediateDirectories: true)
            }
            try FileManager.default.copyItem(at: CLI.photos.appendingPathComponent("rocket.jpg"), to: dataset.appendingPathComponent("JPEGImages/a.jpg"))
            try FileManager.default.copyItem(at: bad, to: dataset.appendingPathComponent("Annotations/a.xml"))
            try Data("a\n".utf8).write(to: dataset.appendingPathComponent("ImageSets/Main/trainval.txt"))
            return (try CLI.run(["discover", "eval", "--model", good.path, "--dataset", dataset.path, "--format", "voc",
                                 "--json", scratch.path("out/corloc.json")]),
                    dataset.appendingPathComponent("Annotations/a.xml").path)
        default:  // coco
            let dataset = scratch.url.appendingPathComponent("coco")
            try FileManager.default.createDirectory(at: dataset, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: CLI.photos.appendingPathComponent("rocket.jpg"), to: dataset.appendingPathComponent("a.jpg"))
            try Data("a.jpg\n".utf8).write(to: dataset.appendingPathComponent("list.txt"))
            return (try CLI.run(["discover", "eval", "--model", good.path, "--dataset", dataset.path, "--format", "coco20k",
                                 "--annotations", bad.path, "--file-list", dataset.appendingPathComponent("list.txt").path,
                                 "--json", scratch.path("out/corloc.json")]), bad.path)
        }
    }

    @Test("each bad file fails with a message naming it and its problem, and leaves no output", arguments: cases)
    func rejects(_ item: Case) throws {
        let scratch = try Scratch()
        let (result, path) = try run(item, in: scratch)
        #expect(result.status != 0, "\(item.file) was accepted")
        #expect(result.stderr.contains(path), "\(item.file): message does not name \(path): \(result.stderr)")
        #expect(result.stderr.lowercased().contains(item.expect.lowercased()), "\(item.file): message lacks '\(item.expect)': \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Program crashed"), "\(item.file) crashed")
        let outputs = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path("out"))) ?? []
        #expect(outputs.filter { !$0.hasSuffix("corloc.json") }.isEmpty, "\(item.file): output left behind: \(outputs)")
    }

    /// Every kind of file the tool reads, replaced by a FIFO made at test time: `setup` gets the
    /// scratch folder and returns the arguments and the FIFO's path.
    static let fifoCases: [(String, @Sendable (Scratch) throws -> (arguments: [String], fifo: String))] = [
        ("weights", { scratch in
            let model = try folder(scratch, "model", copying: ["config.json"])
            return (["features", "--model", model, "--pixels", try pixels(scratch), "--output", scratch.path("out/f.safetensors")],
                    try fifo(model + "/model.safetensors"))
        }),
        ("config", { scratch in
            let model = try folder(scratch, "model", copying: ["model.safetensors"])
            return (["features", "--model", model, "--pixels", try pixels(scratch), "--output", scratch.path("out/f.safetensors")],
                    try fifo(model + "/config.json"))
        }),
        ("preprocessor config", { scratch in
            let model = try folder(scratch, "model", copying: ["config.json", "model.safetensors"])
            return (["features", "--model", model, "--classification", chelsea, "--output-dir", scratch.path("out")],
                    try fifo(model + "/preprocessor_config.json"))
        }),
        ("pth checkpoint", { scratch in
            let checkpoint = try fifo(scratch.path("backbone.pth"))
            return (["features", "--model", checkpoint, "--pixels", try pixels(scratch), "--output", scratch.path("out/f.safetensors")],
                    checkpoint)
        }),
        ("--pixels .npy", { scratch in
            let input = try fifo(scratch.path("pixels.npy"))
            return (["features", "--model", CLI.model("reg1_nointerp"), "--pixels", input, "--output", scratch.path("out/f.safetensors")], input)
        }),
        ("--pixels .safetensors", { scratch in
            let input = try fifo(scratch.path("pixels.safetensors"))
            return (["features", "--model", CLI.model("reg1_nointerp"), "--pixels", input, "--output", scratch.path("out/f.safetensors")], input)
        }),
        ("image", { scratch in
            let image = try fifo(scratch.path("photo.png"))
            return (["features", "--model", CLI.model("reg1_nointerp"), image, "--output-dir", scratch.path("out")], image)
        }),
        ("head", { scratch in
            let head = try fifo(scratch.path("head.pth"))
            return (["segment", "--model", CLI.model("reg1_nointerp"), "--head", head, chelsea, "--output-dir", scratch.path("out")], head)
        }),
        ("tar shard", { scratch in
            let tar = try fifo(scratch.path("shard.tar"))
            return (["extract", "--model", CLI.model("reg1_nointerp"), tar, "--output-dir", scratch.path("out")], tar)
        }),
        ("file list", { scratch in
            let list = try fifo(scratch.path("files.txt"))
            return (["extract", "--model", CLI.model("reg1_nointerp"), list, "--output-dir", scratch.path("out")], list)
        }),
        ("manifest", { scratch in
            let manifest = try fifo(scratch.path("manifest-00000-of-00001.json"))
            return (["extract", "merge", manifest, "--index", scratch.path("out/index.json")], manifest)
        }),
    ]

    static let chelsea = CLI.photos.appendingPathComponent("chelsea.png").path

    static func fifo(_ path: String) throws -> String {
        guard mkfifo(path, 0o600) == 0 else { throw CocoaError(.fileWriteUnknown) }
        return path
    }

    static func folder(_ scratch: Scratch, _ name: String, copying files: [String]) throws -> String {
        let folder = scratch.url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in files {
            try FileManager.default.copyItem(atPath: CLI.model("reg1_nointerp") + "/" + file, toPath: folder.appendingPathComponent(file).path)
        }
        return folder.path
    }

    static func pixels(_ scratch: Scratch) throws -> String {
        let path = scratch.path("pixels.npy")
        try NumpyFile.write(Tensor(shape: [1, 3, 56, 56], repeating: 0.1), to: URL(fileURLWithPath: path))
        return path
    }

    @Test("a FIFO in place of any file the tool reads fails at once, naming it", arguments: fifoCases.map(\.0))
    func fifo(kind: String) throws {
        guard let setup = Self.fifoCases.first(where: { $0.0 == kind })?.1 else { return }
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.path("out"), withIntermediateDirectories: true)
        let (arguments, fifo) = try setup(scratch)
        let result = try CLI.run(arguments, timeout: 30)
        #expect(!result.timedOut, "\(kind): dino blocked on the FIFO \(fifo)")
        #expect(result.status != 0, "\(kind): accepted")
        #expect(result.stderr.contains(fifo) && result.stderr.contains("FIFO"), "\(kind): \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"), "\(kind) crashed")
    }
}
