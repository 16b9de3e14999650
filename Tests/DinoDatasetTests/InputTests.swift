import DinoDataset
import Foundation
import Testing

@Suite("Brace expansion")
struct BraceExpansionTests {
    @Test("numeric ranges keep zero padding; lists and several braces expand left to right")
    func expansions() throws {
        #expect(try BraceExpansion.expand("shards/{00000..00003}.tar")
            == ["shards/00000.tar", "shards/00001.tar", "shards/00002.tar", "shards/00003.tar"])
        let wide = try BraceExpansion.expand("{00000..01023}.tar")
        #expect(wide.count == 1024 && wide.first == "00000.tar" && wide.last == "01023.tar")
        #expect(try BraceExpansion.expand("{8..11}") == ["8", "9", "10", "11"])
        #expect(try BraceExpansion.expand("{08..11}") == ["08", "09", "10", "11"])
        #expect(try BraceExpansion.expand("{3..1}") == ["3", "2", "1"])
        #expect(try BraceExpansion.expand("{-1..1}") == ["-1", "0", "1"])
        #expect(try BraceExpansion.expand("{train,val}/{0..1}.tar") == ["train/0.tar", "train/1.tar", "val/0.tar", "val/1.tar"])
        #expect(try BraceExpansion.expand("plain/path.tar") == ["plain/path.tar"])
        #expect(try BraceExpansion.expand("{a,}x") == ["ax", "x"])
        #expect(try BraceExpansion.expand("x{abc}{0..1}") == ["x{abc}0", "x{abc}1"])
    }

    @Test("malformed patterns are refused with the pattern named",
          arguments: ["a{0..3", "a}b", "{a{b,c}}", "{a..c}", "{1..x}", "{0..2000000}"])
    func malformed(pattern: String) {
        #expect {
            _ = try BraceExpansion.expand(pattern)
        } throws: { error in
            guard case .invalidBraces(let named, _)? = error as? DatasetError else { return false }
            return named == pattern
        }
    }
}

@Suite("Dataset inputs")
struct DatasetPlanTests {
    @Test("file lists: one path per line relative to the list's folder, blank lines and CRLF handled, keys as written")
    func fileList() throws {
        let folder = try TemporaryFolder()
        try folder.write("images/a.jpg", Data([1]))
        try folder.write("images/sub/b.png", Data([2]))
        let absolute = try folder.write("elsewhere/c.jpg", Data([3]))
        let list = try folder.write("lists/train.txt", Data("../images/a.jpg\r\n\n../images/sub/b.png\n  \n\(absolute)\n".utf8))
        let plan = try DatasetPlan(inputs: [list], chunkSize: 2)
        #expect(plan.units.count == 2)
        guard case .files(let first) = plan.units[0].source, case .files(let second) = plan.units[1].source else {
            Issue.record("not file units")
            return
        }
        #expect(first.map(\.key) == ["../images/a.jpg", "../images/sub/b.png"])
        #expect(second.map(\.key) == [absolute])
        #expect(first.map { URL(fileURLWithPath: $0.path).standardizedFileURL.path }
            == [folder.path("images/a.jpg"), folder.path("images/sub/b.png")].map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        #expect(plan.units.map(\.outputName) == ["files-00000.safetensors", "files-00001.safetensors"])
        #expect(plan.fileCount == 3)
    }

    @Test("folders: images only, recursive, hidden entries skipped, sorted by path; keys relative to the folder")
    func folder() throws {
        let folder = try TemporaryFolder()
        for name in ["b.jpg", "a/z.png", "a/b.JPEG", "notes.txt", ".hidden.jpg", ".cache/x.jpg", "B.jpg"] {
            try folder.write("data/" + name, Data([0]))
        }
        let plan = try DatasetPlan(inputs: [folder.path("data")], chunkSize: 100)
        guard case .files(let items) = plan.units.first?.source else { Issue.record("no file unit"); return }
        #expect(items.map(\.key) == ["B.jpg", "a/b.JPEG", "a/z.png", "b.jpg"])
    }

    @Test("tars come first in input order, then the file chunks; output names are unique")
    func units() throws {
        let folder = try TemporaryFolder()
        var tar = TarBuilder()
        tar.end()
        for name in ["s/00000.tar", "s/00001.tar", "t/00000.tar"] { try tar.write(to: URL(fileURLWithPath: try folder.write(name, Data()))) }
        try folder.write("img/x.jpg", Data([0]))
        let plan = try DatasetPlan(inputs: [folder.path("img"), folder.path("s/{00000..00001}.tar"), folder.path("t/00000.tar")], chunkSize: 10)
        #expect(plan.units.map(\.name) == [folder.path("s/00000.tar"), folder.path("s/00001.tar"), folder.path("t/00000.tar"), "files 0..<1"])
        #expect(plan.units.map(\.outputName) == ["00000.safetensors", "00001.safetensors", "00000-2.safetensors", "files-00000.safetensors"])
        #expect(plan.units.map(\.index) == [0, 1, 2, 3])
    }

    @Test("the same key twice is refused, naming both places")
    func duplicateKeys() throws {
        let folder = try TemporaryFolder()
        try folder.write("a.jpg", Data([0]))
        let list = try folder.write("list.txt", Data("a.jpg\nb.jpg\na.jpg\n".utf8))
        #expect(throws: DatasetError.duplicateKey(key: "a.jpg", first: "\(list) line 1", second: "\(list) line 3")) {
            try DatasetPlan(inputs: [list], chunkSize: 10)
        }
    }

    @Test("missing inputs, compressed tars, empty folders and binary lists are refused")
    func refused() throws {
        let folder = try TemporaryFolder()
        try folder.write("empty/readme.md", Data("x".utf8))
        try folder.write("x.tar.gz", Data([0]))
        try folder.write("binary.lst", Data([0x61, 0, 0x62]))
        #expect(throws: DatasetError.missingInput(path: folder.path("nope/{0..1}.tar").replacingOccurrences(of: "{0..1}", with: "0"))) {
            try DatasetPlan(inputs: [folder.path("nope/{0..1}.tar")], chunkSize: 10)
        }
        for input in ["x.tar.gz", "empty", "binary.lst"] {
            #expect(throws: DatasetError.self, "\(input)") { try DatasetPlan(inputs: [folder.path(input)], chunkSize: 10) }
        }
    }

    @Test("the fingerprint changes with the input and the chunking, not with the run")
    func fingerprint() throws {
        let folder = try TemporaryFolder()
        let list = try folder.write("l.txt", Data("a.jpg\nb.jpg\nc.jpg\n".utf8))
        let other = try folder.write("m.txt", Data("a.jpg\nb.jpg\nd.jpg\n".utf8))
        let a = try DatasetPlan(inputs: [list], chunkSize: 2)
        #expect(a.fingerprint == (try DatasetPlan(inputs: [list], chunkSize: 2)).fingerprint)
        #expect(a.fingerprint != (try DatasetPlan(inputs: [other], chunkSize: 2)).fingerprint)
        #expect(a.fingerprint != (try DatasetPlan(inputs: [list], chunkSize: 1)).fingerprint)
    }
}
