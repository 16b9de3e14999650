import DinoTensor
import Foundation
import Testing

extension CLI {
    static let discoveryFixtures = repository.appendingPathComponent("Tests/DinoDiscoveryTests/Fixtures")
}

/// The JSON lines a command printed.
private func jsonLines(_ text: String) throws -> [JSONValue] {
    try text.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try JSONValue.parse(Data($0.utf8)) }
}

private func ints(_ value: JSONValue?) -> [Int] { value?.arrayValue?.compactMap(\.intValue) ?? [] }

@Suite("dino discover (end to end)")
struct DiscoverCommandTests {
    @Test("discover prints box, seed and score per image, equal to the reference, and draws pictures at the image size")
    func images() throws {
        let scratch = try Scratch()
        let model = CLI.model("reg4_downsample")
        let chelsea = CLI.photos.appendingPathComponent("chelsea.png").path
        let astronaut = CLI.photos.appendingPathComponent("astronaut.png").path
        let result = try CLI.run(["discover", "--model", model, chelsea, astronaut, "--output-dir", scratch.path("out"), "--json", scratch.path("d.json")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try jsonLines(result.stdout)
        #expect(lines.count == 2)
        #expect(lines.first?.objectValue?.map(\.key) == ["image", "box", "seed", "score"])
        // The reference LOST on HF's keys (Scripts/make_discovery_fixtures.py, cases chelsea_reg4 / astronaut_reg4).
        #expect(ints(lines.first?["box"]) == [378, 280, 406, 300] && ints(lines.first?["seed"]) == [21, 27])
        #expect(ints(lines.last?["box"]) == [392, 0, 434, 182] && ints(lines.last?["seed"]) == [7, 28])
        #expect(abs((lines.first?["score"]?.doubleValue ?? 0) - 0.64965517) < 1e-6)
        #expect(try pngSize(scratch.path("out/chelsea.discover.png")) == (451, 300))
        #expect(try pngSize(scratch.path("out/astronaut.discover.png")) == (512, 512))
        let written = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: scratch.path("d.json"))))
        #expect(written.arrayValue == lines)
    }

    @Test("--method tokencut --features v gives the reference TokenCut object")
    func tokenCut() throws {
        let scratch = try Scratch()
        let result = try CLI.run(["discover", "--model", CLI.model("reg4_downsample"), "--method", "tokencut", "--features", "v",
                                  CLI.photos.appendingPathComponent("chelsea.png").path, "--output-dir", scratch.path("out")])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(try jsonLines(result.stdout).first)
        #expect(ints(line["box"]) == [308, 168, 451, 300] && ints(line["seed"]) == [14, 27])
    }

    @Test("a corrupt or missing image fails alone: the others complete, the exit code is 1")
    func failures() throws {
        let scratch = try Scratch()
        let broken = CLI.discoveryFixtures.appendingPathComponent("voc/JPEGImages/broken.jpg").path
        let result = try CLI.run(["discover", "--model", CLI.model("reg4_downsample"), broken, scratch.path("missing.png"),
                                  CLI.photos.appendingPathComponent("coffee.png").path, "--output-dir", scratch.path("out")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("broken.jpg: corrupt or truncated JPEG"), "\(result.stderr)")
        #expect(result.stderr.contains("missing.png"))
        #expect(try jsonLines(result.stdout).count == 1)
        #expect(try pngSize(scratch.path("out/coffee.discover.png")) == (600, 400))
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/broken.discover.png")))

        let tooLarge = try CLI.run(["discover", "--model", CLI.model("reg4_downsample"), "--max-patches", "100",
                                    CLI.photos.appendingPathComponent("coffee.png").path, "--output-dir", scratch.path("out")])
        #expect(tooLarge.status == 1)
        #expect(tooLarge.stderr.contains("1247 patches, more than --max-patches 100"), "\(tooLarge.stderr)")
    }

    @Test("wrong options are usage errors")
    func usage() throws {
        let model = CLI.model("reg4_downsample"), image = CLI.photos.appendingPathComponent("coffee.png").path
        for arguments in [["--method", "dino"], ["--features", "x"], ["--tau", "0.3"], ["--method", "tokencut", "--k-patches", "5"],
                          ["--k-patches", "0"]] {
            let result = try CLI.run(["discover", "--model", model, image] + arguments)
            #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
        }
    }

    @Test("eval on the VOC fixture: CorLoc and per-image boxes equal the reference LOST on HF's keys")
    func evalVOC() throws {
        let scratch = try Scratch()
        let result = try CLI.run(["discover", "eval", "--model", CLI.model("reg4_downsample"),
                                  "--dataset", CLI.discoveryFixtures.appendingPathComponent("voc").path,
                                  "--json", scratch.path("voc.json"), "--csv", scratch.path("voc.csv")])
        #expect(result.status == 0, "\(result.stderr)")
        let reference = try JSONValue.parse(Data(contentsOf: CLI.discoveryFixtures.appendingPathComponent("voc/corloc_reference.json")))
        let expected = try #require(reference["lost_reg4_keys"])
        let corloc = try #require(expected["default"]?["corloc"]?.doubleValue)
        #expect(result.stdout.contains(String(format: "CorLoc      %.2f %%", corloc)), "\(result.stdout)")
        let report = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: scratch.path("voc.json"))))
        #expect(report["corloc"]?.doubleValue == corloc)
        let images = try #require(report["images"]?.arrayValue)
        #expect(images.count == 5)
        for image in images {
            let id = try #require(image["id"]?.stringValue)
            #expect(ints(image["box"]) == ints(expected["images"]?[id]?["box"]), "\(id)")
            #expect(ints(image["seed"]) == ints(expected["images"]?[id]?["seed"]), "\(id)")
            #expect(image["correct"] == expected["default"]?["images"]?[id]?["correct"], "\(id)")
        }
        let csv = try String(contentsOfFile: scratch.path("voc.csv"), encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "id,image,x0,y0,x1,y1,seed_row,seed_col,score,best_iou,correct")
        #expect(csv.count == 6)
    }

    @Test("eval reports a corrupt image and a malformed annotation, evaluates the rest, and exits 1")
    func evalFailures() throws {
        let scratch = try Scratch()
        let result = try CLI.run(["discover", "eval", "--model", CLI.model("reg4_downsample"), "--split", "all",
                                  "--dataset", CLI.discoveryFixtures.appendingPathComponent("voc").path, "--json", scratch.path("all.json")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("broken.jpg"), "\(result.stderr)")
        #expect(result.stderr.contains("badbox.xml: 'object[0].bndbox.xmax' is '200.5'"), "\(result.stderr)")
        #expect(result.stdout.contains("evaluated   5") && result.stdout.contains("failed      2"), "\(result.stdout)")
        let report = try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: scratch.path("all.json"))))
        #expect(report["failures"]?.arrayValue?.count == 2)
        #expect(report["images"]?.arrayValue?.count == 5)

        let noHard = try CLI.run(["discover", "eval", "--model", CLI.model("reg4_downsample"), "--no-hard",
                                  "--dataset", CLI.discoveryFixtures.appendingPathComponent("voc").path])
        #expect(noHard.status == 0, "\(noHard.stderr)")
        #expect(noHard.stdout.contains("excluded    1") && noHard.stdout.contains("evaluated   4"), "\(noHard.stdout)")
    }

    @Test("eval on the COCO20k fixture: a listed image missing from the annotations is reported")
    func evalCOCO() throws {
        let result = try CLI.run(["discover", "eval", "--model", CLI.model("reg4_downsample"), "--format", "coco20k",
                                  "--dataset", CLI.discoveryFixtures.appendingPathComponent("coco20k").path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no image with id 77"), "\(result.stderr)")
        #expect(result.stdout.contains("evaluated   3"), "\(result.stdout)")
        let missing = try CLI.run(["discover", "eval", "--model", CLI.model("reg4_downsample"), "--dataset", "/nonexistent/voc"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("/nonexistent/voc"))
    }
}
