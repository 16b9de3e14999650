import DinoTensor
import Foundation
import Testing

extension CLI {
    static let photos = repository.appendingPathComponent("Examples/images")
    static let imageFixtures = repository.appendingPathComponent("Tests/DinoImageTests/Fixtures")
    static func model(_ name: String) -> String { fixtures.appendingPathComponent(name).path }
}

/// PNG width and height from the IHDR chunk.
func pngSize(_ path: String) throws -> (width: Int, height: Int) {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(24))
    func be32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
    return (be32(16), be32(20))
}

@Suite("dino image commands (end to end)")
struct ImageCommandsTests {
    @Test("only the tool's own messages reach stderr: what OpenCV, libpng and libjpeg say is in the errors")
    func ownMessagesOnly() throws {
        let scratch = try Scratch()
        // chelsea.png has an iCCP chunk libpng warns about; the others are broken in ways that
        // made OpenCV, libpng or libjpeg print their own lines.
        let rocket = try Data(contentsOf: CLI.photos.appendingPathComponent("rocket.jpg"))
        var corrupt = rocket
        let scan = (rocket.firstRange(of: Data([0xFF, 0xDA]))?.lowerBound ?? 0) + 2000
        corrupt.replaceSubrange(scan..<(scan + 300), with: Data(count: 300))
        try corrupt.write(to: scratch.url.appendingPathComponent("corrupt.jpg"))
        let tiff = try Data(contentsOf: CLI.imageFixtures.appendingPathComponent("formats/photo.tiff"))
        try tiff.prefix(tiff.count / 2).write(to: scratch.url.appendingPathComponent("truncated.tiff"))
        let inputs = [CLI.photos.appendingPathComponent("chelsea.png").path, scratch.path("corrupt.jpg"), scratch.path("truncated.tiff"),
                      CLI.imageFixtures.appendingPathComponent("formats/truncated.png").path,
                      CLI.repository.appendingPathComponent("Tests/DinoCLITests/BadInputs/image/bogus.bmp").path]
        let result = try CLI.run(["features", "--model", CLI.model("reg1_nointerp"), "--output-dir", scratch.path("out")] + inputs)
        #expect(result.status == 1, "\(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        for line in lines where !line.hasPrefix("error: ") && !line.hasPrefix("features: ") {
            Issue.record("not the tool's own line: \(line)")
        }
        #expect(lines.filter { $0.hasPrefix("error: ") }.count == 3, "\(result.stderr)")
        #expect(result.stderr.contains("truncated.tiff: corrupt or truncated TIFF") && result.stderr.contains("TIFFReadRGBAStrip"))
        #expect(result.stderr.contains("truncated.png: corrupt or truncated PNG") && result.stderr.contains("libpng: "))
    }

    @Test("features on a photo with the classification preset equal HF's outputs on HF's pixel_values")
    func featuresMatchReference() throws {
        let scratch = try Scratch()
        let result = try CLI.run(["features", "--model", CLI.model("reg4_downsample"), CLI.photos.appendingPathComponent("astronaut.png").path,
                                  "--classification", "--registers", "--output-dir", scratch.path("out")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("\r"), "no progress bar when stderr is not a terminal")
        let written = try SafetensorsFile(url: URL(fileURLWithPath: scratch.path("out/astronaut.safetensors")))
        let reference = try SafetensorsFile(url: CLI.imageFixtures.appendingPathComponent("preprocess/model.astronaut.safetensors"))
        let last = try reference.tensor("last_hidden_state")  // [1, 261, 32]
        #expect(scaledError(try written.tensor("cls_token"), try reference.tensor("pooler_output")) <= 1e-4)
        // The registers are tokens 1...4 of the final-normed sequence.
        let registers = try written.tensor("register_tokens")
        #expect(registers.shape == [1, 4, 32])
        #expect(scaledError(registers, Tensor(shape: [1, 4, 32], scalars: Array(last.scalars[32..<(5 * 32)]))) <= 1e-4)
        // The last stage's map is the patch tokens of last_hidden_state as [1, C, 16, 16].
        let map = try written.tensor("feature_maps.stage2")
        #expect(map.shape == [1, 32, 16, 16])
        var expected = [Float](repeating: 0, count: 32 * 256)
        for t in 0..<256 { for c in 0..<32 { expected[c * 256 + t] = last.scalars[(5 + t) * 32 + c] } }
        #expect(scaledError(map, Tensor(shape: [1, 32, 16, 16], scalars: expected)) <= 1e-4)
        #expect(written.metadata["image_size"] == "512x512")
    }

    @Test("--classification on a DINOv3 model without preprocessor_config.json uses the DINOv3 processor (224 x 224, stretched)")
    func dinov3Classification() throws {
        let scratch = try Scratch()
        let result = try CLI.run(["features", "--model", CLI.model("dinov3_reg4"), CLI.photos.appendingPathComponent("chelsea.png").path,
                                  "--classification", "--output-dir", scratch.path("out")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("DINOv3 processor (bilinear to 224x224, stretched)"), "\(result.stderr)")
        let written = try SafetensorsFile(url: URL(fileURLWithPath: scratch.path("out/chelsea.safetensors")))
        #expect(try written.tensor("feature_maps.stage2").shape == [1, 32, 14, 14])
    }

    @Test("classify prints the reference's top label and probability")
    func classify() throws {
        let scratch = try Scratch()
        let result = try CLI.run(["classify", "--model", CLI.model("batch2_classifier"), CLI.photos.appendingPathComponent("astronaut.png").path,
                                  "--top-k", "2", "--json", scratch.path("top.json")])
        #expect(result.status == 0, "\(result.stderr)")
        let logits = try SafetensorsFile(url: CLI.imageFixtures.appendingPathComponent("preprocess/classifier.astronaut.safetensors")).tensor("logits").scalars
        let exps = logits.map { Foundation.exp(Double($0 - (logits.max() ?? 0))) }
        let probabilities = exps.map { $0 / exps.reduce(0, +) }
        let best = try #require(probabilities.indices.max { probabilities[$0] < probabilities[$1] })
        let labels = ["cat", "dog", "bird", "fish", "horse"]
        #expect(result.stdout.contains(String(format: "%@ %.4f", labels[best], probabilities[best])), "\(result.stdout)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch.path("top.json")))) as? [[String: Any]]
        let predictions = json?.first?["predictions"] as? [[String: Any]]
        #expect(predictions?.count == 2)
        #expect(predictions?.first?["label"] as? String == labels[best])
    }

    @Test("pca, attention and norms write pictures at the image size, deterministically")
    func pictures() throws {
        let scratch = try Scratch()
        let inputs = [CLI.photos.appendingPathComponent("astronaut.png").path, CLI.photos.appendingPathComponent("coffee.png").path]
        let model = CLI.model("reg4_downsample")
        for command in [["pca", "--mask-threshold", "0.3"], ["attention", "--separate", "--tile-height", "100"], ["norms"]] {
            let result = try CLI.run(command + ["--model", model, "--resize", "224", "--output-dir", scratch.path("out")] + inputs)
            #expect(result.status == 0, "\(command[0]): \(result.stderr)")
        }
        #expect(try pngSize(scratch.path("out/astronaut.pca.png")) == (512, 512))
        #expect(try pngSize(scratch.path("out/coffee.pca.png")) == (600, 400))
        #expect(try pngSize(scratch.path("out/coffee.norms.png")) == (600, 400))
        #expect(try pngSize(scratch.path("out/coffee.attention.cls_head2.png")) == (600, 400))
        #expect(FileManager.default.fileExists(atPath: scratch.path("out/astronaut.attention.register4.png")))
        // Mosaic: image, CLS mean, 2 heads, 4 registers = 8 tiles of 100 px height in 4 columns.
        let mosaic = try pngSize(scratch.path("out/astronaut.attention.png"))
        #expect(mosaic.height == 2 * 100 + 3 * 4 && mosaic.width == 4 * 100 + 5 * 4)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch.path("out/coffee.norms.json")))) as? [String: Any]
        #expect(report?["grid"] as? [Int] == [16, 24])
        #expect((report?["register_norms"] as? [Double])?.count == 4)
        let threshold = report?["threshold"] as? Double ?? 0
        for outlier in report?["outliers"] as? [[String: Any]] ?? [] { #expect((outlier["norm"] as? Double ?? 0) > threshold) }

        let first = try Data(contentsOf: URL(fileURLWithPath: scratch.path("out/astronaut.pca.png")))
        let again = try CLI.run(["pca", "--mask-threshold", "0.3", "--model", model, "--resize", "224", "--output-dir", scratch.path("again")] + inputs)
        #expect(again.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: scratch.path("again/astronaut.pca.png"))) == first)
    }

    @Test("a folder with corrupt images completes the good ones and reports the bad ones")
    func corruptFolder() throws {
        let scratch = try Scratch()
        let folder = CLI.imageFixtures.appendingPathComponent("formats").path
        let result = try CLI.run(["features", "--model", CLI.model("reg1_nointerp"), folder, "--pad", "--output-dir", scratch.path("out")])
        #expect(result.status == 1)
        for broken in ["truncated.jpg", "truncated.png", "not_an_image.jpg", "empty.png", "header_only.png"] {
            #expect(result.stderr.contains("\(folder)/\(broken)"), "\(broken) not reported")
        }
        let written = try FileManager.default.contentsOfDirectory(atPath: scratch.path("out")).sorted()
        let good = ["cmyk", "exif_rotate3", "exif_rotate6", "gray", "gray16", "palette", "photo", "photo_2", "photo_3", "photo_4",
                    "rgb", "rgb16", "rgba"]
        #expect(written == good.map { "\($0).safetensors" }.sorted(), "\(written)")
        #expect(result.stderr.contains("13 of 18 images done, 5 failed"), "\(result.stderr)")
    }

    @Test("a hub id resolves from a Hugging Face cache laid out as Python lays it out, offline")
    func hubIDFromCache() throws {
        let scratch = try Scratch()
        let commit = String(repeating: "ab", count: 20)
        let repo = scratch.url.appendingPathComponent("hub/models--acme--tiny-dino")
        let blobs = repo.appendingPathComponent("blobs"), snapshot = repo.appendingPathComponent("snapshots/\(commit)")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: repo.appendingPathComponent("refs"), withIntermediateDirectories: true)
        try Data(commit.utf8).write(to: repo.appendingPathComponent("refs/main"))
        for (i, file) in ["config.json", "model.safetensors"].enumerated() {
            let blob = blobs.appendingPathComponent("blob\(i)")
            try FileManager.default.copyItem(at: URL(fileURLWithPath: CLI.model("reg1_nointerp")).appendingPathComponent(file), to: blob)
            try FileManager.default.createSymbolicLink(atPath: snapshot.appendingPathComponent(file).path, withDestinationPath: "../../blobs/blob\(i)")
        }
        let result = try CLI.run(["features", "--model", "acme/tiny-dino", CLI.photos.appendingPathComponent("rocket.jpg").path,
                                  "--output-dir", scratch.path("out")],
                                 environment: ["HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": scratch.url.appendingPathComponent("hub").path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: scratch.path("out/rocket.safetensors")))
        let missing = try CLI.run(["features", "--model", "acme/other", CLI.photos.appendingPathComponent("rocket.jpg").path],
                                  environment: ["HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": scratch.url.appendingPathComponent("hub").path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("acme/other"), "\(missing.stderr)")
    }
}
