import DinoTensor
import Foundation
import Testing

@Suite("Long runs: interruption, resume, write failures")
struct LongRunTests {
    /// A folder of `count` copies of one photo.
    func photoFolder(_ scratch: Scratch, count: Int) throws -> String {
        let folder = scratch.url.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let photo = CLI.photos.appendingPathComponent("rocket.jpg")
        for i in 0..<count {
            try FileManager.default.copyItem(at: photo, to: folder.appendingPathComponent(String(format: "img%03d.jpg", i)))
        }
        return folder.path
    }

    @Test("SIGINT stops cleanly with only complete outputs, and --resume finishes without redoing work")
    func interruptAndResume() throws {
        let scratch = try Scratch()
        let count = 120
        let folder = try photoFolder(scratch, count: count)
        let output = scratch.url.appendingPathComponent("out")
        let arguments = ["features", "--model", CLI.model("reg4_downsample"), folder, "--size", "224x224",
                         "--batch-size", "1", "--threads", "1", "--output-dir", output.path]
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Interrupt once a few outputs exist.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let done = (try? FileManager.default.contentsOfDirectory(atPath: output.path).filter { $0.hasSuffix(".safetensors") }.count) ?? 0
            if done >= 3 { break }
            usleep(5_000)
        }
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130, "\(stderr)")
        #expect(stderr.contains("interrupted by signal 2"), "\(stderr)")
        let written = try FileManager.default.contentsOfDirectory(atPath: output.path)
        #expect(written.allSatisfy { $0.hasSuffix(".safetensors") }, "partial files left: \(written)")
        #expect(written.count > 0 && written.count < count, "interrupted after \(written.count) of \(count)")
        var stamps: [String: Date] = [:]
        for name in written {
            _ = try SafetensorsFile(url: output.appendingPathComponent(name))  // every output is complete
            stamps[name] = try FileManager.default.attributesOfItem(atPath: output.appendingPathComponent(name).path)[.modificationDate] as? Date
        }

        let resumed = try CLI.run(arguments + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("\(written.count) already done (--resume)"), "\(resumed.stderr)")
        let all = try FileManager.default.contentsOfDirectory(atPath: output.path)
        #expect(all.count == count)
        for (name, stamp) in stamps {
            let now = try FileManager.default.attributesOfItem(atPath: output.appendingPathComponent(name).path)[.modificationDate] as? Date
            #expect(now == stamp, "\(name) was written again")
        }
    }

    @Test("an output that cannot be written fails that image only")
    func unwritableOutput() throws {
        let scratch = try Scratch()
        let folder = try photoFolder(scratch, count: 3)
        let output = scratch.url.appendingPathComponent("out")
        // A directory where img001's output file should go makes its rename fail.
        try FileManager.default.createDirectory(at: output.appendingPathComponent("img001.safetensors"), withIntermediateDirectories: true)
        let result = try CLI.run(["features", "--model", CLI.model("reg4_downsample"), folder, "--size", "224x224",
                                  "--output-dir", output.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("img001.safetensors"), "\(result.stderr)")
        #expect(result.stderr.contains("2 of 3 images done, 1 failed"), "\(result.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: output.path).sorted()
        #expect(names == ["img000.safetensors", "img001.safetensors", "img002.safetensors"])
    }

    @Test("--max-pixels and --max-tokens refuse before allocating, naming the size and the limit")
    func limits() throws {
        let scratch = try Scratch()
        let photo = CLI.photos.appendingPathComponent("astronaut.png").path
        let pixels = try CLI.run(["features", "--model", CLI.model("reg4_downsample"), photo, "--max-pixels", "1000",
                                  "--output-dir", scratch.path("a")])
        #expect(pixels.status == 1)
        #expect(pixels.stderr.contains("512x512") && pixels.stderr.contains("1000"), "\(pixels.stderr)")
        let tokens = try CLI.run(["features", "--model", CLI.model("reg4_downsample"), photo, "--max-tokens", "100",
                                  "--output-dir", scratch.path("b")])
        #expect(tokens.status == 1)
        #expect(tokens.stderr.contains("over the limit of 100"), "\(tokens.stderr)")
    }
}
