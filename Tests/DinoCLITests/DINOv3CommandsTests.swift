import DinoTensor
import Foundation
import Testing

/// Every image command runs on DINOv3 backbones as it does on DINOv2 ones (the fixtures of
/// Scripts/make_dinov3_fixtures.py and make_dinov3_head_fixtures.py; parity of the numbers is in
/// the model and head test targets). `classify` is left out: DINOv3 checkpoints have no classifier.
@Suite("Image commands on DINOv3")
struct DINOv3CommandsTests {
    static let model = CLI.model("dinov3_reg4")
    static let segmentationModel = CLI.segmentation("dinov3_model")
    static let depthModel = DepthFixtures.path("dinov3_model")
    static func depthHead(_ name: String) -> String { DepthFixtures.path("dinov3_heads/dinov3_\(name)_head.safetensors") }
    static let two = ["chelsea.png", "camera.png"].map { CLI.photos.appendingPathComponent($0).path }

    static let setups: [String: [String]] = [
        "features": ["--model", model, "--resize", "64"],
        "pca": ["--model", model, "--resize", "64"],
        "attention": ["--model", model, "--resize", "64"],
        "norms": ["--model", model, "--resize", "64"],
        "discover images": ["--model", model, "--resize", "64"],
        "segment": ["--model", segmentationModel, "--head", CLI.segmentation("head_official.pth"), "--resize", "64"],
        "depth predict": ["--model", depthModel, "--head", depthHead("nyu_linear"), "--resize", "64"],
        "predict": ["--model", segmentationModel, "--head", "segment=" + CLI.segmentation("head_official.pth"),
                    "--head", "discover=lost", "--resize", "64"],
        "extract run": ["--model", model, "--size", "64x64", "--patch-mean"],
    ]

    @Test("each command completes on a DINOv3 model and writes its outputs", arguments: setups.keys.sorted())
    func completes(_ command: String) throws {
        let scratch = try Scratch()
        let out = scratch.path("out")
        let arguments = command.split(separator: " ").map(String.init) + (Self.setups[command] ?? []) + Self.two + ["--output-dir", out]
        let result = try CLI.run(arguments)
        #expect(result.status == 0, "\(command): \(result.stderr)")
        let written = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        #expect(written.contains { $0.hasPrefix("chelsea") || $0.hasPrefix("manifest") }, "\(command) wrote \(written)")
    }

    @Test("probe train (its loss falls over 30 epochs) and probe eval run on a DINOv3 backbone")
    func probe() throws {
        let scratch = try Scratch()
        let colours = CLI.segmentation("colours")
        let train = try CLI.run(["probe", "train", "--model", Self.segmentationModel, "--dataset", colours, "--split", "train",
                                 "--resize", "112", "--epochs", "30", "--batch-size", "4", "--lr", "0.01", "--seed", "3",
                                 "--output", scratch.path("head.safetensors"), "--json", scratch.path("train.json")])
        #expect(train.status == 0, "\(train.stderr)")
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch.path("train.json")))) as? [String: Any]
        let losses = try #require(record?["epoch_losses"] as? [Double])
        #expect(losses.count == 30 && (losses.last ?? 9) < (losses.first ?? 0), "losses \(losses)")
        let eval = try CLI.run(["probe", "eval", "--model", Self.segmentationModel, "--head", scratch.path("head.safetensors"),
                                "--dataset", colours, "--split", "val", "--json", scratch.path("eval.json")])
        #expect(eval.status == 0 && eval.stdout.contains("mIoU"), "\(eval.stderr)")
    }
}
