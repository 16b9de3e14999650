import DinoTensor
import Foundation
import Testing

/// The depth fixtures of `Scripts/make_depth_fixtures.py`.
enum DepthFixtures {
    static let folder = CLI.repository.appendingPathComponent("Tests/DinoDepthTests/Fixtures")
    static var backbone: String { folder.appendingPathComponent("backbone").path }
    static func head(_ name: String) -> String { folder.appendingPathComponent("heads/dinov2_vitt14_\(name)_head.safetensors").path }
    static func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
    static let coffee = CLI.photos.appendingPathComponent("coffee.png").path

    /// Every 10th row and column of a `[400, 600]` map, as the reference stores it.
    static func subsampled(_ map: Tensor) -> Tensor {
        var values: [Float] = []
        for y in stride(from: 0, to: 400, by: 10) {
            for x in stride(from: 0, to: 600, by: 10) { values.append(map.scalars[y * 600 + x]) }
        }
        return Tensor(shape: [1, 1, 40, 60], scalars: values)
    }

    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }
}

@Suite("dino depth (end to end)")
struct DepthCommandTests {
    /// The released `.pth` layout for two heads (state dict beside optimizer state, range from the
    /// name; unwrapped, range from the `_config.py` beside it), `.safetensors` for the third.
    @Test("dinov2 heads on a photo: picture and raw map at the photo's size, equal to the reference pipeline",
          arguments: [("nyu_linear", "pth"), ("kitti_linear4", "pth"), ("nyu_dpt", "safetensors")])
    func dinov2Heads(head: String, format: String) throws {
        let scratch = try Scratch()
        let headFile = DepthFixtures.folder.appendingPathComponent("heads/dinov2_vitt14_\(head)_head.\(format)").path
        // 84 x 126 keeps coffee.png's 3:2 aspect: Pillow's bicubic resize, as in the reference.
        let result = try CLI.run(["depth", "--model", DepthFixtures.backbone, "--head", headFile, DepthFixtures.coffee,
                                  "--size", "84x126", "--output-dir", scratch.path("out")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("coffee.png: 600x400, depth (m) "), "\(result.stdout)")
        #expect(try pngSize(scratch.path("out/coffee.depth.png")) == (600, 400))
        let map = try NumpyFile.read(URL(fileURLWithPath: scratch.path("out/coffee.depth.npy")))
        #expect(map.shape == [400, 600])
        let reference = try SafetensorsFile(url: DepthFixtures.folder.appendingPathComponent("heads.safetensors")).tensor("photo.\(head).depth")
        let error = scaledError(DepthFixtures.subsampled(map), reference)
        print("parity CLI photo \(head): scaled error \(error)")
        #expect(error <= 1e-4)
        let range: ClosedRange<Float> = head.hasPrefix("kitti") ? 0.001...80 : 0.001...10
        #expect(map.scalars.allSatisfy { range.contains($0) })
    }

    @Test("Depth Anything on a photo with its own processor", arguments: ["depth_anything", "depth_anything_metric"])
    func depthAnything(model: String) throws {
        let scratch = try Scratch()
        let result = try CLI.run(["depth", "--model", DepthFixtures.path(model), DepthFixtures.coffee, "--output-dir", scratch.path("out"),
                                  "--colormap", "inferno"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains(model == "depth_anything" ? "relative inverse depth" : "depth (m)"), "\(result.stdout)")
        #expect(try pngSize(scratch.path("out/coffee.depth.png")) == (600, 400))
        let map = try NumpyFile.read(URL(fileURLWithPath: scratch.path("out/coffee.depth.npy")))
        let reference = try SafetensorsFile(url: DepthFixtures.folder.appendingPathComponent("depth_anything.safetensors")).tensor("photo.\(model).depth")
        let error = scaledError(DepthFixtures.subsampled(map), reference)
        print("parity CLI photo \(model): scaled error \(error)")
        #expect(error <= 1e-4)
    }

    @Test("16-bit PNG output holds the depth in millimetres (read back by dino depth eval)")
    func png16() throws {
        let scratch = try Scratch()
        let common = ["depth", "--model", DepthFixtures.backbone, "--head", DepthFixtures.head("nyu_dpt"), DepthFixtures.coffee, "--size", "84x126"]
        #expect(try CLI.run(common + ["--output-dir", scratch.path("npy")]).status == 0)
        let result = try CLI.run(common + ["--output-dir", scratch.path("png"), "--raw", "png16"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try pngSize(scratch.path("png/coffee.depth16.png")) == (600, 400))
        #expect(!FileManager.default.fileExists(atPath: scratch.path("png/coffee.depth.npy")))
        // The float map as ground truth, the 16-bit map as prediction: equal to half a millimetre.
        try FileManager.default.createDirectory(atPath: scratch.path("gt"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: scratch.path("npy/coffee.depth.npy"), toPath: scratch.path("gt/coffee.npy"))
        let eval = try CLI.run(["depth", "eval", "--predictions", scratch.path("png"), "--ground-truth", scratch.path("gt"),
                                "--min-depth", "0.0001", "--max-depth", "100", "--json", scratch.path("eval.json")])
        #expect(eval.status == 0, "\(eval.stderr)")
        let mean = try #require(try DepthFixtures.json(scratch.path("eval.json"))["mean"] as? [String: Double])
        #expect(try #require(mean["rmse"]) <= 0.0005, "\(mean)")
        #expect(mean["pixels"] == 240_000)
    }

    @Test("eval of stored predictions equals the numpy metrics", arguments: [("plain", "none"), ("median", "median"), ("disparity", "scale-shift")])
    func evalPredictions(key: String, align: String) throws {
        let scratch = try Scratch()
        let result = try CLI.run(["depth", "eval", "--predictions", DepthFixtures.path("eval/predictions"), "--ground-truth",
                                  DepthFixtures.path("eval/ground_truth"), "--max-depth", "10", "--align", align, "--json", scratch.path("m.json")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("mean (3)"))
        let written = try DepthFixtures.json(scratch.path("m.json"))
        let reference = try #require(try DepthFixtures.json(DepthFixtures.path("eval/metrics.json"))[key] as? [String: Any])
        let mean = try #require(written["mean"] as? [String: Double])
        let expected = try #require(reference["mean"] as? [String: Double])
        for (name, value) in expected {
            let actual = try #require(mean[name], "\(name) missing")
            #expect(abs(actual - value) <= 1e-9 + 1e-7 * abs(value), "\(key) \(name): \(actual), numpy \(value)")
        }
        #expect((written["images"] as? [Any])?.count == 3)
        #expect((written["settings"] as? [String: Any])?["alignment"] as? String == align)
    }

    @Test("eval with a model equals predict then eval of the written maps")
    func evalModel() throws {
        let scratch = try Scratch()
        let images = DepthFixtures.path("eval/images")
        let model = ["--model", DepthFixtures.backbone, "--head", DepthFixtures.head("nyu_linear")]
        let direct = try CLI.run(["depth", "eval"] + model + [images, "--ground-truth", DepthFixtures.path("eval/ground_truth"),
                                                              "--json", scratch.path("direct.json")])
        #expect(direct.status == 0, "\(direct.stderr)")
        #expect(direct.stderr.contains("range 0.001-10 m"), "\(direct.stderr)")
        // eval pads by default (the released evaluation's centre padding); predict must be told.
        #expect(try CLI.run(["depth"] + model + [images, "--pad", "--output-dir", scratch.path("maps")]).status == 0)
        let stored = try CLI.run(["depth", "eval", "--predictions", scratch.path("maps"), "--ground-truth", DepthFixtures.path("eval/ground_truth"),
                                  "--max-depth", "10", "--json", scratch.path("stored.json")])
        #expect(stored.status == 0, "\(stored.stderr)")
        let a = try #require(try DepthFixtures.json(scratch.path("direct.json"))["mean"] as? [String: Double])
        let b = try #require(try DepthFixtures.json(scratch.path("stored.json"))["mean"] as? [String: Double])
        #expect(a == b)
    }

    @Test("--resume skips images whose raw map exists; eval refuses it")
    func resume() throws {
        let scratch = try Scratch()
        let run = ["depth", "--model", DepthFixtures.backbone, "--head", DepthFixtures.head("nyu_linear"), "--size", "42x56",
                   DepthFixtures.path("eval/images"), "--output-dir", scratch.path("out")]
        #expect(try CLI.run(run).status == 0)
        try FileManager.default.removeItem(atPath: scratch.path("out/view1.depth.npy"))
        let again = try CLI.run(run + ["--resume"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("2 already done (--resume)"), "\(again.stderr)")
        #expect(again.stdout.contains("view1.png") && !again.stdout.contains("view0.png"), "\(again.stdout)")
        #expect(FileManager.default.fileExists(atPath: scratch.path("out/view1.depth.npy")))
        let eval = try CLI.run(["depth", "eval", "--model", DepthFixtures.backbone, "--head", DepthFixtures.head("nyu_linear"), "--resume",
                                DepthFixtures.path("eval/images"), "--ground-truth", DepthFixtures.path("eval/ground_truth")])
        #expect(eval.status == 64)
    }

    @Test("failures: usage errors exit 64, bad files exit 1 and name the file, other images complete")
    func failures() throws {
        let scratch = try Scratch()
        let noHead = try CLI.run(["depth", "--model", DepthFixtures.backbone, DepthFixtures.coffee, "--output-dir", scratch.path("out")])
        #expect(noHead.status == 64 && noHead.stderr.contains("--head"), "\(noHead.stderr)")
        let headOnDepthAnything = try CLI.run(["depth", "--model", DepthFixtures.path("depth_anything"), "--head", DepthFixtures.head("nyu_dpt"),
                                               DepthFixtures.coffee])
        #expect(headOnDepthAnything.status == 64, "\(headOnDepthAnything.stderr)")
        let missingHead = try CLI.run(["depth", "--model", DepthFixtures.backbone, "--head", scratch.path("absent_head.pth"), DepthFixtures.coffee])
        #expect(missingHead.status == 1 && missingHead.stderr.contains("absent_head.pth"), "\(missingHead.stderr)")
        #expect(try CLI.run(["depth", "eval", "--ground-truth", scratch.path("gt")]).status == 64)

        // A corrupt image among good ones: reported, the others written, exit 1.
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: scratch.path("broken.png")))
        let mixed = try CLI.run(["depth", "--model", DepthFixtures.backbone, "--head", DepthFixtures.head("nyu_linear"), "--size", "42x56",
                                 scratch.path("broken.png"), DepthFixtures.path("eval/images/view0.png"), "--output-dir", scratch.path("out")])
        #expect(mixed.status == 1)
        #expect(mixed.stderr.contains("broken.png"), "\(mixed.stderr)")
        #expect(FileManager.default.fileExists(atPath: scratch.path("out/view0.depth.npy")))
        #expect(try NumpyFile.read(URL(fileURLWithPath: scratch.path("out/view0.depth.npy"))).shape == [30, 40])

        // Eval with one image lacking ground truth: the others are evaluated, exit 1.
        try FileManager.default.createDirectory(atPath: scratch.path("gt"), withIntermediateDirectories: true)
        for name in ["view0.png", "view1.png"] {
            try FileManager.default.copyItem(atPath: DepthFixtures.path("eval/ground_truth/\(name)"), toPath: scratch.path("gt/\(name)"))
        }
        let partial = try CLI.run(["depth", "eval", "--model", DepthFixtures.backbone, "--head", DepthFixtures.head("nyu_linear"),
                                   DepthFixtures.path("eval/images"), "--ground-truth", scratch.path("gt"), "--json", scratch.path("p.json")])
        #expect(partial.status == 1)
        #expect(partial.stderr.contains("view2"), "\(partial.stderr)")
        let report = try DepthFixtures.json(scratch.path("p.json"))
        #expect((report["images"] as? [Any])?.count == 2)
        #expect((report["failed"] as? [String])?.count == 1)
    }
}
