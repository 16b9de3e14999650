import DinoTensor
import Foundation
import Testing

/// Every subcommand that reads images, found from `dino --help` so that a command added later
/// is covered too, honours the image options it accepts: `--max-pixels` fails the image and
/// writes nothing, and `--resume` after a complete run rewrites nothing.
@Suite("Image options of every image command")
struct ImageOptionsTests {
    /// How a command's run is set up for these checks.
    struct Setup {
        /// Options besides the inputs and outputs (the model, a head...).
        var arguments: [String]
        /// Input images.
        var inputs: [String]
        /// Whether the command writes per-image files into `--output-dir`.
        var writesFolder = true
        /// A run-level file option (e.g. `--json`) whose file also must not be rewritten.
        var reportOption: String?
        /// Whether the command refuses `--resume` (evaluations, which need every image).
        var refusesResume = false
        /// Whether the command keeps a manifest of its units (extract): failed images are listed
        /// there so that a merge knows what is missing, and each run, a resumed one too, is
        /// logged in it; the unit outputs are what must not be rewritten.
        var recordsFailures = false
    }

    static let model = CLI.model("reg4_downsample")
    static let two = ["chelsea.png", "camera.png"].map { CLI.photos.appendingPathComponent($0).path }

    /// The setup of every image command; a command missing here fails the test.
    static let table: [String: Setup] = [
        "features": Setup(arguments: ["--model", model, "--resize", "56"], inputs: two),
        "pca": Setup(arguments: ["--model", model, "--resize", "56"], inputs: two),
        "attention": Setup(arguments: ["--model", model, "--resize", "56"], inputs: two),
        "norms": Setup(arguments: ["--model", model, "--resize", "56"], inputs: two),
        "classify": Setup(arguments: ["--model", CLI.model("dinov2_classifier")], inputs: two, writesFolder: false, reportOption: "--json"),
        "segment": Setup(arguments: ["--model", CLI.segmentation("model"), "--head", CLI.segmentation("head_official.pth"), "--resize", "56"],
                         inputs: two, reportOption: "--json"),
        "depth predict": Setup(arguments: ["--model", DepthFixtures.backbone, "--head", DepthFixtures.head("nyu_linear"), "--resize", "56"],
                               inputs: two, reportOption: "--json"),
        "depth eval": Setup(arguments: ["--model", DepthFixtures.backbone, "--head", DepthFixtures.head("nyu_linear"),
                                        "--ground-truth", DepthFixtures.path("eval/ground_truth")],
                            inputs: [DepthFixtures.path("eval/images")], writesFolder: false, refusesResume: true),
        "discover images": Setup(arguments: ["--model", model, "--resize", "56"], inputs: two, reportOption: "--json"),
        "predict": Setup(arguments: ["--model", model, "--head", "discover=lost", "--resize", "56"], inputs: two, reportOption: "--json"),
        "extract run": Setup(arguments: ["--model", model, "--size", "56x56", "--patch-mean"], inputs: two, recordsFailures: true),
    ]

    /// Leaf subcommands (`depth predict`, not `depth`) whose help lists `--max-pixels`.
    static func imageCommands() throws -> [String] {
        func subcommands(of path: [String]) throws -> [String] {
            let help = try CLI.run(path + ["--help"]).stdout
            guard let section = help.components(separatedBy: "SUBCOMMANDS:").dropFirst().first else { return [] }
            // Subcommand lines are indented by two spaces (wrapped descriptions by more); the list
            // ends at the first blank line, before "See 'dino help <subcommand>'".
            let lines = section.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().prefix { !$0.isEmpty }
            return lines.compactMap { line -> String? in
                guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first else { return nil }
                return String(name)
            }
        }
        var found: [String] = []
        func visit(_ path: [String]) throws {
            let children = try subcommands(of: path)
            if children.isEmpty {
                if try CLI.run(path + ["--help"]).stdout.contains("--max-pixels") { found.append(path.joined(separator: " ")) }
                return
            }
            for child in children where child != "help" { try visit(path + [child]) }
        }
        try visit([])
        return found.sorted()
    }

    /// Every file below `folder` (and `extra`), with its inode and modification time.
    static func snapshot(_ folder: String, extra: String?) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        func record(_ path: String) {
            var info = stat()
            if stat(path, &info) == 0 {
                out[path] = [Int(info.st_ino), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec), Int(info.st_size)]
            }
        }
        if let items = FileManager.default.enumerator(atPath: folder) {
            for case let item as String in items { record(folder + "/" + item) }
        }
        if let extra { record(extra) }
        return out
    }

    @Test("the table covers every image command, and every command in it is one")
    func tableIsComplete() throws {
        let commands = try Self.imageCommands()
        #expect(commands.count >= 10, "\(commands)")
        for command in commands { #expect(Self.table[command] != nil, "\(command) reads images: add it to ImageOptionsTests.table") }
        for command in Self.table.keys { #expect(commands.contains(command), "\(command) no longer takes --max-pixels") }
    }

    @Test("--max-pixels fails each image with the limit named, and nothing is written", arguments: table.keys.sorted())
    func maxPixels(_ command: String) throws {
        let setup = try #require(Self.table[command])
        let scratch = try Scratch()
        let (out, report) = (scratch.path("out"), scratch.path("report.json"))
        var arguments = command.split(separator: " ").map(String.init) + setup.arguments + setup.inputs + ["--max-pixels", "100"]
        if setup.writesFolder { arguments += ["--output-dir", out] }
        if let option = setup.reportOption { arguments += [option, report] }
        let run = try CLI.run(arguments)
        #expect(run.status == 1, "\(command): \(run.stderr)")
        #expect(run.stderr.contains("exceeds the limit of 100 pixels"), "\(command): \(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: report), "\(command) wrote its report")
        if setup.recordsFailures {
            // No features: every row failed, and the failures are named where the outputs are listed.
            let text = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".json") }
                .map { try String(contentsOfFile: out + "/" + $0, encoding: .utf8) }.joined()
            #expect(text.contains("\"rows\":0") && text.contains("exceeds the limit of 100 pixels"), "\(command): \(text)")
        } else {
            #expect(!FileManager.default.fileExists(atPath: out), "\(command) wrote \(out)")
        }
    }

    @Test("a second run with --resume rewrites nothing", arguments: table.keys.sorted())
    func resume(_ command: String) throws {
        let setup = try #require(Self.table[command])
        let scratch = try Scratch()
        let (out, report) = (scratch.path("out"), scratch.path("report.json"))
        var arguments = command.split(separator: " ").map(String.init) + setup.arguments + setup.inputs
        if setup.writesFolder { arguments += ["--output-dir", out] }
        if let option = setup.reportOption { arguments += [option, report] }
        if setup.refusesResume {
            let refused = try CLI.run(arguments + ["--resume"])
            #expect(refused.status == 64 && refused.stderr.contains("--resume"), "\(command): \(refused.stderr)")
            return
        }
        let first = try CLI.run(arguments)
        #expect(first.status == 0, "\(command): \(first.stderr)")
        func outputs() throws -> [String: [Int]] {
            let all = Self.snapshot(out, extra: setup.reportOption == nil ? nil : report)
            return setup.recordsFailures ? all.filter { !$0.key.hasSuffix(".json") } : all
        }
        func manifestUnits() throws -> [JSONValue] {
            guard setup.recordsFailures else { return [] }
            return try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix("manifest-") }.sorted().map {
                try JSONValue.parse(Data(contentsOf: URL(fileURLWithPath: out + "/" + $0)))["units"] ?? .null
            }
        }
        let (before, unitsBefore) = (try outputs(), try manifestUnits())
        #expect(!before.isEmpty, "\(command) wrote nothing to compare")
        let second = try CLI.run(arguments + ["--resume"])
        #expect(second.status == 0, "\(command): \(second.stderr)")
        #expect(try outputs() == before, "\(command) rewrote files with --resume")
        #expect(try manifestUnits() == unitsBefore, "\(command) changed its manifest's units with --resume")
    }
}
