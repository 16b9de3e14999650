import Foundation
import Testing

/// The examples run as a user runs them: the built executable on the bundled photos.
enum Example {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs the example executable `name` (built beside the test bundle) and returns its exit
    /// status and standard output.
    static func run(_ name: String, _ arguments: [String]) throws -> (status: Int32, stdout: String) {
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if folder.lastPathComponent.hasSuffix(".xctest") { folder.deleteLastPathComponent() }
        let process = Process()
        process.executableURL = folder.appendingPathComponent(name)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

@Suite("Examples: a custom head")
struct PatchClusteringTests {
    @Test("the k-means head runs beside LOST on one pass: every patch in a cluster, a picture per image, the same result twice")
    func clusters() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("patch-clusters-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let model = Example.repository.appendingPathComponent("Tests/DinoModelTests/Fixtures/reg4_downsample").path
        let images = ["coffee.png", "chelsea.png"].map { Example.repository.appendingPathComponent("Examples/images/\($0)").path }
        let first = try Example.run("PatchClustering", [model, "3"] + images + ["--output-dir", output.path])
        #expect(first.status == 0)
        let lines = first.stdout.split(separator: "\n").map(String.init)
        let clusterLines = lines.filter { $0.contains("clusters of") }
        #expect(clusterLines.count == 2 && lines.count == 4, "one clusters line and one LOST line per image: \(lines)")
        for line in clusterLines {
            // "coffee.png: 16x24 patches in 3 clusters of [a, b, c]": the sizes cover the grid.
            let grid = try #require(line.split(separator: " ").dropFirst().first?.split(separator: "x").compactMap { Int($0) })
            let sizes = line.split(separator: "[").last?.dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? []
            #expect(sizes.count == 3 && sizes.reduce(0, +) == grid.reduce(1, *), "\(line)")
        }
        for name in ["coffee.clusters.png", "chelsea.clusters.png", "coffee.discover.png", "chelsea.discover.png"] {
            #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent(name).path), "\(name)")
        }
        #expect(try Example.run("PatchClustering", [model, "3"] + images + ["--output-dir", output.path]).stdout == first.stdout)
        #expect(try Example.run("PatchClustering", [model, "zero"] + images).status == 1)
    }
}
