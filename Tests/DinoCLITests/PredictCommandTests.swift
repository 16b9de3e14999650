import DinoTensor
import Foundation
import Testing

@Suite("dino predict (end to end)")
struct PredictCommandTests {
    static let backbone = DepthFixtures.backbone  // plain DINOv2, C = 16, 12 blocks
    static let photos = ["chelsea.png", "coffee.png", "astronaut.png"].map { CLI.photos.appendingPathComponent($0).path }

    /// A segmentation head for the depth fixtures' backbone, trained for a moment on the colour photos.
    static func segmentationHead(_ scratch: Scratch) throws -> String {
        let path = scratch.path("seg.safetensors")
        let run = try CLI.run(["probe", "train", "--model", backbone, "--dataset", CLI.segmentation("colours"), "--split", "train",
                               "--resize", "56", "--epochs", "2", "--batch-size", "4", "--seed", "3", "--output", path,
                               "--cache", scratch.path("cache"), "--threads", "2"])
        #expect(run.status == 0, "\(run.stderr)")
        return path
    }

    /// Every file of `folder`, by name.
    static func files(_ folder: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(name))
        }
        return out
    }

    @Test("three heads in one run write, bit for bit, what each head's own command writes")
    func sameFilesAsEachHeadAlone() throws {
        let scratch = try Scratch()
        let segmentation = try Self.segmentationHead(scratch)
        let depth = DepthFixtures.head("nyu_linear")
        let common = ["--model", Self.backbone, "--resize", "56", "--batch-size", "2"] + Self.photos
        let together = try CLI.run(["predict", "--head", "segment=\(segmentation)", "--head", "depth=\(depth)", "--head", "discover=lost",
                                    "--output-dir", scratch.path("all"), "--json", scratch.path("all.json")] + common)
        #expect(together.status == 0, "\(together.stderr)")
        let alone = [
            try CLI.run(["segment", "--head", segmentation, "--output-dir", scratch.path("one")] + common),
            try CLI.run(["depth", "--head", depth, "--output-dir", scratch.path("one")] + common),
            try CLI.run(["discover", "--output-dir", scratch.path("one")] + common),
        ]
        for run in alone { #expect(run.status == 0, "\(run.stderr)") }
        let (all, one) = (try Self.files(scratch.path("all")), try Self.files(scratch.path("one")))
        #expect(all.count == 3 * 5, "labels, overlay, depth picture, raw depth and discovery picture per image: \(all.keys.sorted())")
        #expect(Set(all.keys) == Set(one.keys))
        for (name, data) in all { #expect(one[name] == data, "\(name) differs from the head's own command") }
        // Each image's record holds every head's record, as the single commands print them.
        let records = try #require(try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: scratch.path("all.json")))).arrayValue)
        #expect(records.count == 3)
        for record in records {
            #expect(record["segment"]?["labels"]?.stringValue?.hasSuffix(".labels.png") == true)
            #expect(record["depth"]?["median"]?.doubleValue != nil)
            #expect(record["discover"]?["box"]?.arrayValue?.count == 4)
        }
        #expect(together.stdout.split(separator: "\n").count == alone.map { $0.stdout.split(separator: "\n").count }.reduce(0, +))
    }

    @Test("unknown, repeated or malformed heads are usage errors naming the problem")
    func usage() throws {
        let image = Self.photos[0]
        for (arguments, message) in [
            (["--head", "colour=x"], "no head named 'colour'"),
            (["--head", "discover=lost", "--head", "discover=tokencut"], "given twice"),
            (["--head", "discover"], "NAME=ARGUMENT"),
            ([String](), "at least one --head"),
        ] {
            let run = try CLI.run(["predict", "--model", Self.backbone, image] + arguments)
            #expect(run.status == 64, "\(arguments)")
            #expect(run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
        let badArgument = try CLI.run(["predict", "--model", Self.backbone, image, "--head", "discover=kmeans"])
        #expect(badArgument.status != 0 && badArgument.stderr.contains("lost or tokencut"), "\(badArgument.stderr)")
    }
}
