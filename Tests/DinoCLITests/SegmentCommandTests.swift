import DinoTensor
import Foundation
import Testing

extension CLI {
    static let segmentationFixtures = repository.appendingPathComponent("Tests/DinoSegmentationTests/Fixtures")
    static func segmentation(_ name: String) -> String { segmentationFixtures.appendingPathComponent(name).path }
}

/// The colour type byte of a PNG's IHDR chunk (3 = palette).
func pngColorType(_ path: String) throws -> UInt8 {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(26))
    return bytes[25]
}

@Suite("dino segment and dino probe (end to end)")
struct SegmentCommandTests {
    static let model = CLI.segmentation("model")
    static let colours = CLI.segmentation("colours")

    func train(_ scratch: Scratch, _ name: String, extra: [String] = []) throws -> CLI.Result {
        try CLI.run(["probe", "train", "--model", Self.model, "--dataset", Self.colours, "--split", "train", "--resize", "112",
                     "--epochs", "30", "--batch-size", "4", "--lr", "0.01", "--seed", "3", "--output", scratch.path("\(name).safetensors"),
                     "--cache", scratch.path("cache"), "--threads", "2"] + extra)
    }

    @Test("probe train learns the colour classes of the photos far above the trivial baseline; one seed, one head")
    func trainAndEvaluate() throws {
        let scratch = try Scratch()
        let first = try train(scratch, "head", extra: ["--eval-split", "val", "--json", scratch.path("train.json")])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("cached in") && first.stderr.contains("epoch 30/30"))
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch.path("train.json")))) as? [String: Any]
        let losses = try #require(record?["epoch_losses"] as? [Double])
        #expect(losses.count == 30 && (losses.last ?? 9) < (losses.first ?? 0) * 0.6, "losses \(losses)")
        let evaluation = try #require(record?["evaluation"] as? [String: Any])
        let mIoU = try #require(evaluation["mIoU"] as? Double)
        // The trivial baseline: every pixel the most frequent class (IoU = its share, 0 elsewhere).
        let classes = try #require(evaluation["classes"] as? [[String: Any]])
        let areas = classes.compactMap { $0["area_label"] as? Double }
        let baseline = (areas.max() ?? 0) / areas.reduce(0, +) / Double(areas.filter { $0 > 0 }.count)
        print("probe train: val mIoU \(mIoU), majority-class baseline \(baseline), epoch losses \(losses.first ?? 0) -> \(losses.last ?? 0), train \(record?["train_seconds"] ?? "?") s")
        #expect(mIoU > 0.5 && mIoU > 4 * baseline, "mIoU \(mIoU) vs baseline \(baseline)")
        #expect(first.stdout.contains("mIoU"))

        // Same seed again (features now from the cache): byte-identical head.
        let second = try train(scratch, "again")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("reused from"))
        let a = try Data(contentsOf: URL(fileURLWithPath: scratch.path("head.safetensors")))
        let b = try Data(contentsOf: URL(fileURLWithPath: scratch.path("again.safetensors")))
        #expect(a == b, "the same seed gave another head")
        let other = try train(scratch, "other", extra: ["--seed", "4"])
        #expect(other.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.path("other.safetensors"))) != a)

        let head = try SafetensorsFile(url: URL(fileURLWithPath: scratch.path("head.safetensors")))
        #expect(head.metadata["classes"] == "[\"dark\",\"warm\",\"cool\",\"pale\"]")
        #expect(head.metadata["layers"] == "last:1" && head.metadata["input_policy"] == "resize:112" && head.metadata["backbone"] == Self.model)
        #expect(try head.shape(of: "decode_head.conv_seg.weight") == [4, 32, 1, 1])

        // probe eval reproduces the scores, writes JSON and predictions.
        let eval = try CLI.run(["probe", "eval", "--model", Self.model, "--head", scratch.path("head.safetensors"), "--dataset", Self.colours,
                                "--split", "val", "--json", scratch.path("eval.json"), "--predictions", scratch.path("pred")])
        #expect(eval.status == 0, "\(eval.stderr)")
        #expect(eval.stdout.contains(String(format: "mIoU %.2f", mIoU * 100)), "\(eval.stdout)")
        let scores = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch.path("eval.json")))) as? [String: Any]
        #expect(abs((scores?["mIoU"] as? Double ?? 0) - mIoU) < 1e-9 && scores?["split"] as? String == "val")
        #expect(try pngSize(scratch.path("pred/coffee_3.png")) == (112, 112))
        #expect(try pngColorType(scratch.path("pred/coffee_3.png")) == 3)

        // segment: label maps and overlays at the photos' sizes, whole and in windows.
        let photos = [CLI.photos.appendingPathComponent("coffee.png").path, CLI.photos.appendingPathComponent("astronaut.png").path]
        for extra in [[], ["--window", "56x56", "--stride", "42x42"]] {
            let out = scratch.path("seg\(extra.count)")
            let run = try CLI.run(["segment", "--model", Self.model, "--head", scratch.path("head.safetensors"), "--output-dir", out,
                                   "--json", scratch.path("seg.json")] + extra + photos)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(try pngSize("\(out)/coffee.labels.png") == (600, 400) && (try pngSize("\(out)/coffee.overlay.png")) == (600, 400))
            #expect(try pngSize("\(out)/astronaut.labels.png") == (512, 512))
            #expect(try pngColorType("\(out)/coffee.labels.png") == 3)
            #expect(run.stdout.contains("coffee.png: 600x400"))
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch.path("seg.json")))) as? [[String: Any]]
        #expect(report?.count == 2 && (report?.first?["size"] as? [Int]) == [600, 400])
        let shares = report?.first?["classes"] as? [[String: Any]] ?? []
        #expect(abs(shares.compactMap { $0["fraction"] as? Double }.reduce(0, +) - 1) < 1e-9)
    }

    @Test("segment runs a released-layout .pth head; failures are per image and set the exit code")
    func pthHeadAndFailures() throws {
        let scratch = try Scratch()
        let broken = scratch.path("broken.png")
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: broken))
        let run = try CLI.run(["segment", "--model", Self.model, "--head", CLI.segmentation("head_official.pth"), "--resize", "56",
                               "--output-dir", scratch.path("out"), CLI.photos.appendingPathComponent("chelsea.png").path, broken])
        #expect(run.status == 1)
        #expect(run.stderr.contains("broken.png"))
        #expect(try pngSize(scratch.path("out/chelsea.labels.png")) == (451, 300))
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/broken.labels.png")))
        let again = try CLI.run(["segment", "--model", Self.model, "--head", CLI.segmentation("head_official.pth"), "--resize", "56",
                                 "--output-dir", scratch.path("out"), "--resume", CLI.photos.appendingPathComponent("chelsea.png").path])
        #expect(again.status == 0 && again.stderr.contains("already done"), "\(again.stderr)")
    }

    @Test("probe train and eval recognise an ADE20K copy that holds only its validation split")
    func adeValidationOnly() throws {
        let scratch = try Scratch()
        let ade = scratch.url.appendingPathComponent("ade")
        for part in ["images/validation", "annotations/validation"] {
            try FileManager.default.createDirectory(at: ade.appendingPathComponent(part).deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: CLI.segmentation("ade/\(part)"), toPath: ade.appendingPathComponent(part).path)
        }
        let train = try CLI.run(["probe", "train", "--model", Self.model, "--dataset", ade.path, "--split", "validation", "--resize", "56",
                                 "--epochs", "1", "--output", scratch.path("head.safetensors"), "--cache", scratch.path("cache")])
        #expect(train.status == 0, "\(train.stderr)")
        // eval's default split for ADE20K is validation.
        let eval = try CLI.run(["probe", "eval", "--model", Self.model, "--head", scratch.path("head.safetensors"), "--dataset", ade.path])
        #expect(eval.status == 0, "\(eval.stderr)")
        #expect(eval.stdout.contains("(1 images)"), "\(eval.stdout)")
    }

    @Test("unusable heads, datasets and settings fail with a message")
    func errors() throws {
        let scratch = try Scratch()
        let photo = CLI.photos.appendingPathComponent("camera.png").path
        let cases: [([String], String)] = [
            (["segment", "--model", Self.model, "--head", scratch.path("none.safetensors"), photo], "no such file"),
            (["segment", "--model", Self.model, "--head", CLI.segmentation("head_official.pth"), "--layers", "ms", photo], "channels"),
            (["segment", "--model", Self.model, "--head", CLI.segmentation("head_official.pth"), "--window", "3x", photo], "--window"),
            (["probe", "train", "--model", Self.model, "--dataset", scratch.path("nothing"), "--output", scratch.path("h.safetensors")], "layout"),
            (["probe", "train", "--model", Self.model, "--dataset", Self.colours, "--split", "train", "--output", scratch.path("h.pth")], ".safetensors"),
            (["probe", "train", "--model", Self.model, "--dataset", Self.colours, "--split", "train", "--layers", "blocks:9",
              "--output", scratch.path("h.safetensors")], "block 9"),
            (["probe", "eval", "--model", Self.model, "--head", CLI.segmentation("head_official.pth"), "--dataset", CLI.segmentation("voc")], "label"),
        ]
        for (arguments, message) in cases {
            let run = try CLI.run(arguments)
            #expect(run.status != 0, "\(arguments) succeeded")
            #expect(run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
    }
}
