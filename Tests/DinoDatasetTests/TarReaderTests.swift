import DinoDataset
import Foundation
import Testing

@Suite("Tar reader")
struct TarReaderTests {
    func members(_ builder: TarBuilder, in folder: TemporaryFolder, name: String = "a.tar") throws -> [(String, [UInt8])] {
        let url = folder.url.appendingPathComponent(name)
        try builder.write(to: url)
        let reader = try TarReader(url: url)
        var result: [(String, [UInt8])] = []
        while let member = try reader.next() {
            result.append((member.name, Array(try reader.data(of: member, limit: 1 << 20))))
        }
        return result
    }

    func readError(_ builder: TarBuilder, in folder: TemporaryFolder) throws -> DatasetError? {
        do {
            _ = try members(builder, in: folder)
            return nil
        } catch let error as DatasetError {
            return error
        }
    }

    @Test("ustar, old GNU and V7 headers; the ustar prefix; ./ removed; directories skipped")
    func formats() throws {
        let folder = try TemporaryFolder()
        var tar = TarBuilder()
        tar.file("./000.jpg", Array("abc".utf8))
        tar.header(name: "dir/", size: 0, type: "5")
        tar.file("name.txt", Array("prefixed".utf8), prefix: "deep/folder")
        tar.file("gnu.json", Array("{}".utf8), magic: .gnu)
        tar.file("v7.txt", [UInt8](repeating: 7, count: 600), magic: .v7)
        tar.header(name: "link.jpg", size: 0, type: "2")
        tar.file("empty.cls", [])
        tar.end()
        let read = try members(tar, in: folder)
        #expect(read.map(\.0) == ["000.jpg", "deep/folder/name.txt", "gnu.json", "v7.txt", "empty.cls"])
        #expect(read[0].1 == Array("abc".utf8))
        #expect(read[3].1 == [UInt8](repeating: 7, count: 600))
        #expect(read[4].1.isEmpty)
    }

    @Test("GNU long names, pax path and size, pax global headers ignored")
    func longNames() throws {
        let folder = try TemporaryFolder()
        let long = String(repeating: "d/", count: 80) + "sample.with.dots.jpg"
        var tar = TarBuilder()
        tar.gnuLongNameFile(long, Array("long".utf8))
        tar.pax([("comment", "global")], global: true)
        tar.pax([("path", "pax/é-ünïcode.png"), ("mtime", "1.5")])
        tar.file("ignored-name", Array("pax".utf8))
        // A pax size overrides the header's (writers put 0 there for files of 8 GiB and more).
        tar.pax([("size", "5")])
        tar.header(name: "sized.txt", size: 0)
        tar.data(Array("12345".utf8))
        tar.file("after.txt", Array("x".utf8))
        tar.end()
        let read = try members(tar, in: folder)
        #expect(read.map(\.0) == [long, "pax/é-ünïcode.png", "sized.txt", "after.txt"])
        #expect(read[0].1 == Array("long".utf8))
        #expect(read[1].1 == Array("pax".utf8))
        #expect(read[2].1 == Array("12345".utf8))
    }

    @Test("base-256 sizes are read")
    func base256() throws {
        let folder = try TemporaryFolder()
        var tar = TarBuilder()
        tar.header(name: "big.bin", size: 700, base256Size: true)
        tar.data([UInt8](repeating: 1, count: 700))
        tar.end()
        let read = try members(tar, in: folder)
        #expect(read.count == 1 && read[0].1.count == 700)
    }

    @Test("archives written by GNU tar in ustar, gnu and pax formats read the same")
    func systemTar() throws {
        let folder = try TemporaryFolder()
        let source = folder.url.appendingPathComponent("src")
        let deep = String(repeating: "long-folder-name/", count: 8) + "0001.jpg"
        let names = ["0000.jpg", "0000.json", deep]
        for (i, name) in names.enumerated() {
            try folder.write("src/" + name, Data((0..<(100 * (i + 1))).map { UInt8($0 % 251) }))
        }
        for format in ["ustar", "gnu", "pax"] where !(format == "ustar" && deep.count > 255) {
            let archive = folder.path("\(format).tar")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
            process.currentDirectoryURL = source
            process.arguments = ["--format=\(format)", "-cf", archive] + names
            try process.run()
            process.waitUntilExit()
            try #require(process.terminationStatus == 0)
            let reader = try TarReader(url: URL(fileURLWithPath: archive))
            var read: [String: [UInt8]] = [:]
            while let member = try reader.next() { read[member.name] = Array(try reader.data(of: member, limit: 1 << 20)) }
            #expect(Set(read.keys) == Set(names), "\(format)")
            for (i, name) in names.enumerated() {
                #expect(read[name] == (0..<(100 * (i + 1))).map { UInt8($0 % 251) }, "\(format) \(name)")
            }
        }
    }

    @Test("a corrupt checksum names the tar and the header's offset")
    func badChecksum() throws {
        let folder = try TemporaryFolder()
        var tar = TarBuilder()
        tar.file("a.jpg", Array("ok".utf8))
        let second = tar.offset
        tar.file("b.jpg", Array("bad".utf8))
        tar.end()
        var bytes = tar.bytes
        bytes[second + 10] ^= 0x20  // inside the name field
        let url = folder.url.appendingPathComponent("bad.tar")
        try Data(bytes).write(to: url)
        let reader = try TarReader(url: url)
        #expect(try reader.next()?.name == "a.jpg")
        do {
            _ = try reader.next()
            Issue.record("no error")
        } catch {
            guard case .invalidTar(let path, let offset, let reason) = error else { Issue.record("\(error)"); return }
            #expect(path == url.path && offset == second && reason.contains("checksum"), "\(error)")
            #expect(error.description.contains("bad.tar") && error.description.contains("byte \(second)"))
        }
    }

    @Test("truncation inside a member, inside a header, or before the end blocks names the offset",
          arguments: [("data", 700, 0), ("header", 1536 + 100, 1536), ("end", 2560, 2560)])
    func truncated(kind: String, keep: Int, offsetExpected: Int) throws {
        let folder = try TemporaryFolder()
        var tar = TarBuilder()
        tar.file("a.jpg", [UInt8](repeating: 1, count: 600))  // header 0, data 512..<1536
        tar.file("b.jpg", [UInt8](repeating: 2, count: 10))   // header 1536, data 2048
        tar.end()
        let url = folder.url.appendingPathComponent("cut.tar")
        try Data(tar.bytes.prefix(keep)).write(to: url)
        let reader = try TarReader(url: url)
        do {
            while let member = try reader.next() { _ = try reader.data(of: member, limit: 1 << 20) }
            Issue.record("\(kind): no error")
        } catch {
            guard case .truncatedTar(let path, let offset, _) = error else { Issue.record("\(kind): \(error)"); return }
            #expect(path == url.path)
            #expect(offset == offsetExpected, "\(kind): \(error)")
        }
    }

    @Test("a file that is not a tar is refused at byte 0")
    func notATar() throws {
        let folder = try TemporaryFolder()
        let url = URL(fileURLWithPath: try folder.write("photo.tar", try TestImages.encoded(seed: 1, width: 64, height: 64)))
        #expect {
            _ = try TarReader(url: url).next()
        } throws: { error in
            guard case .invalidTar(_, 0, _)? = error as? DatasetError else { return false }
            return true
        }
    }

    @Test("a member over the size limit is refused without reading it; the next member still reads")
    func memberLimit() throws {
        let folder = try TemporaryFolder()
        var tar = TarBuilder()
        tar.file("big.jpg", [UInt8](repeating: 1, count: 2000))
        tar.file("small.jpg", [1, 2, 3])
        tar.end()
        let url = folder.url.appendingPathComponent("a.tar")
        try tar.write(to: url)
        let reader = try TarReader(url: url)
        let big = try #require(try reader.next())
        #expect(throws: DatasetError.memberTooLarge(path: url.path, member: "big.jpg", size: 2000, limit: 1000)) {
            try reader.data(of: big, limit: 1000)
        }
        let small = try #require(try reader.next())
        #expect(Array(try reader.data(of: small, limit: 1000)) == [1, 2, 3])
    }

    @Test("malformed pax records are refused")
    func badPax() throws {
        let folder = try TemporaryFolder()
        var tar = TarBuilder()
        tar.header(name: "PaxHeaders/x", size: 12, type: "x")
        tar.data(Array("99 path=a\n\0\0".utf8))
        tar.file("a.jpg", [1])
        tar.end()
        let error = try readError(tar, in: folder)
        guard case .invalidTar(_, 0, let reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(reason.contains("pax"))
    }
}

@Suite("WebDataset samples")
struct TarSampleTests {
    @Test("keys and extensions split at the first dot of the file name, as WebDataset does")
    func split() {
        #expect(TarSample.split("000001.jpg")! == ("000001", "jpg"))
        #expect(TarSample.split("a/b.c/0001.seg.png")! == ("a/b.c/0001", "seg.png"))
        #expect(TarSample.split("dir/noext") == nil)
        #expect(TarSample.split("dir/.hidden.jpg") == nil)
        #expect(TarSample.split("x.")! == ("x", ""))
    }

    @Test("consecutive members with one key form a sample; the image member is chosen by preference")
    func grouping() throws {
        let folder = try TemporaryFolder()
        var tar = TarBuilder()
        for (name, text) in [("001.json", "{}"), ("001.JPG", "j"), ("001.txt", "t"), ("002.png", "p"), ("002.jpg", "j2"),
                             ("README", "r"), ("003.json", "{}")] {
            tar.file(name, Array(text.utf8))
        }
        tar.end()
        let url = folder.url.appendingPathComponent("s.tar")
        try tar.write(to: url)
        var reader = try TarSampleReader(url: url)
        var samples: [TarSample] = []
        while let sample = try reader.next() { samples.append(sample) }
        #expect(samples.map(\.key) == ["001", "002", "003"])
        #expect(samples[0].members.map(\.extension) == ["json", "JPG", "txt"])
        #expect(samples[0].imageMember?.name == "001.JPG")
        #expect(samples[1].imageMember?.name == "002.jpg")  // jpg preferred over png
        #expect(samples[2].imageMember == nil)
    }

    @Test("a key that comes back later, or an extension twice, is a duplicate")
    func duplicates() throws {
        let folder = try TemporaryFolder()
        for names in [["a.jpg", "b.jpg", "a.json"], ["a.jpg", "a.jpg"]] {
            var tar = TarBuilder()
            for name in names { tar.file(name, [1]) }
            tar.end()
            let url = folder.url.appendingPathComponent("d.tar")
            try tar.write(to: url)
            var reader = try TarSampleReader(url: url)
            #expect(throws: DatasetError.self, "\(names)") {
                while try reader.next() != nil {}
            }
        }
    }
}

private func == (lhs: (String, String), rhs: (String, String)) -> Bool { lhs.0 == rhs.0 && lhs.1 == rhs.1 }
