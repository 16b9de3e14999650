import DinoTensor
import Foundation
import Synchronization
import Testing

/// A FIFO nobody writes to. A reader that blocks on it (the bug these tests catch) is released
/// after `limit` seconds by a writer that opens and closes it, so the test fails instead of hanging.
final class UnattendedFIFO: Sendable {
    let url: URL

    init(_ url: URL) throws {
        self.url = url
        guard mkfifo(url.path, 0o600) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// Seconds `body` took (at least `limit` when it blocked on the FIFO).
    func secondsTaken(limit: Double = 5, _ body: () -> Void) -> Double {
        let done = Atomic<Bool>(false)
        let path = url.path
        let started = Date()
        let thread = Thread {
            while !done.load(ordering: .relaxed) {
                if Date().timeIntervalSince(started) > limit {
                    // Succeeds only while a reader is waiting in open(); closing gives it end of file.
                    let fd = open(path, O_WRONLY | O_NONBLOCK)
                    if fd >= 0 { close(fd) }
                }
                usleep(20_000)
            }
        }
        thread.start()
        body()
        let seconds = Date().timeIntervalSince(started)
        done.store(true, ordering: .relaxed)
        return seconds
    }
}

@Suite("Opening input files")
struct InputFileTests {
    /// Readers of every file kind this module reads, each given a FIFO.
    static let readers: [(String, @Sendable (URL) throws -> Void)] = [
        ("InputFile.contents", { _ = try InputFile.contents(of: $0) }),
        ("MappedFile", { _ = try MappedFile(url: $0) }),
        ("SafetensorsFile", { _ = try SafetensorsFile(url: $0) }),
        ("NumpyFile", { _ = try NumpyFile.read($0) }),
        ("TorchCheckpoint", { _ = try TorchCheckpoint(url: $0) }),
        ("ShardedSafetensors", { _ = try ShardedSafetensors(indexURL: $0) }),
    ]

    @Test("a FIFO is refused at once with an error naming it", arguments: readers.map(\.0))
    func fifo(reader: String) throws {
        let folder = try TemporaryFolder()
        let fifo = try UnattendedFIFO(folder.file("model.safetensors"))
        guard let read = Self.readers.first(where: { $0.0 == reader })?.1 else { return }
        var message = ""
        let seconds = fifo.secondsTaken {
            do {
                try read(fifo.url)
                message = "read"
            } catch {
                message = "\(error)"
            }
        }
        #expect(seconds < 2, "\(reader) blocked on a FIFO for \(seconds) s")
        #expect(message.hasPrefix(fifo.url.path) && message.contains("FIFO"), "\(reader): \(message)")
    }

    @Test("a directory and a missing file are refused, naming them")
    func notFiles() throws {
        let folder = try TemporaryFolder()
        #expect(throws: TensorFileError.cannotOpen(path: folder.url.path, reason: "a directory, not a regular file")) {
            try InputFile.contents(of: folder.url)
        }
        let missing = folder.file("missing.json")
        #expect(throws: TensorFileError.cannotOpen(path: missing.path, reason: "No such file or directory")) {
            try InputFile.contents(of: missing)
        }
    }

    @Test("contents reads the whole file")
    func contents() throws {
        let folder = try TemporaryFolder()
        let bytes = Data((0..<100_000).map { UInt8($0 % 251) })
        try bytes.write(to: folder.file("a.bin"))
        #expect(try InputFile.contents(of: folder.file("a.bin")) == bytes)
        try Data().write(to: folder.file("empty"))
        #expect(try InputFile.contents(of: folder.file("empty")).isEmpty)
        // A file over the limit is refused from its size, before anything is allocated for it.
        #expect(throws: TensorFileError.cannotOpen(path: folder.file("a.bin").path, reason: "100000 bytes is over the limit of 1000 for this file")) {
            try InputFile.contents(of: folder.file("a.bin"), maxBytes: 1000)
        }
    }

    @Test("paths from a file stay in its folder", arguments: [
        ("model-00001.safetensors", true), ("shards/a.safetensors", true), ("../a.safetensors", false),
        ("/etc/passwd", false), ("a/../../b", false), ("", false), ("./a", false), ("a//b", false), ("a\\..\\b", false),
    ])
    func confined(entry: String, allowed: Bool) throws {
        let folder = URL(fileURLWithPath: "/data/run")
        if allowed {
            #expect(try InputFile.confined(entry, in: folder, source: "/data/run/index.json").path == "/data/run/" + entry)
        } else {
            #expect(throws: TensorFileError.pathOutsideFolder(path: "/data/run/index.json", entry: entry, folder: "/data/run")) {
                try InputFile.confined(entry, in: folder, source: "/data/run/index.json")
            }
        }
    }

    @Test("a sharded index naming a shard outside its folder is refused before any shard is opened")
    func shardOutside() throws {
        let folder = try TemporaryFolder()
        let index = folder.file("model.safetensors.index.json")
        try Data(#"{"weight_map": {"a": "../outside.safetensors"}}"#.utf8).write(to: index)
        #expect(throws: TensorFileError.pathOutsideFolder(path: index.path, entry: "../outside.safetensors", folder: folder.url.path)) {
            try ShardedSafetensors(indexURL: index)
        }
    }
}
