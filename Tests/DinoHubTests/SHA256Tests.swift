import DinoHub
import Foundation
import Testing

private func oneShot(_ bytes: [UInt8]) -> String { SHA256Hasher.hex(of: bytes) }

private func streamed(_ bytes: [UInt8], chunkSizes: [Int]) -> String {
    var hasher = SHA256Hasher()
    var offset = 0
    var turn = 0
    while offset < bytes.count {
        let size = min(chunkSizes[turn % chunkSizes.count], bytes.count - offset)
        hasher.update(bytes[offset..<(offset + size)])
        offset += size
        turn += 1
    }
    return hasher.finalizeHex()
}

@Suite("SHA-256 (swift-crypto through SHA256Hasher)")
struct SHA256Tests {
    // FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf").
    static let vectors: [(message: String, digest: String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ]

    @Test("NIST vectors: empty, abc, 448-bit and 896-bit messages", arguments: 0..<4)
    func vectors(index: Int) {
        let (message, expected) = Self.vectors[index]
        let bytes = Array(message.utf8)
        #expect(oneShot(bytes) == expected, "message '\(message)'")
        #expect(streamed(bytes, chunkSizes: [1]) == expected, "message '\(message)' byte by byte")
    }

    @Test("NIST vector: one million 'a'")
    func millionA() {
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        #expect(oneShot(bytes) == expected)
        #expect(streamed(bytes, chunkSizes: [4099, 1, 64, 63, 65]) == expected)
    }

    @Test("streaming in odd-sized chunks equals one shot, for lengths around block boundaries")
    func streamingMatchesOneShot() {
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4097] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let whole = oneShot(bytes)
            for chunks in [[1], [3, 7], [13], [63, 2], [65], [100, 1, 27]] {
                #expect(streamed(bytes, chunkSizes: chunks) == whole, "length \(length), chunks \(chunks)")
            }
        }
    }

    @Test("files hash in 1 MiB pieces to the one-shot digest, whole or a prefix; a short file fails")
    func files() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sha256-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bytes = (0..<(2 * (1 << 20) + 12_345)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
        let url = folder.appendingPathComponent("blob")
        try Data(bytes).write(to: url)

        #expect(try SHA256Hasher.hex(ofFileAt: url) == oneShot(bytes))
        for length in [0, 1, 1 << 20, (1 << 20) + 1, bytes.count] {
            var hasher = SHA256Hasher()
            try hasher.update(contentsOf: url, length: Int64(length))
            #expect(hasher.finalizeHex() == oneShot(Array(bytes.prefix(length))), "first \(length) bytes")
        }
        // A resumed download continues the hash of the bytes already on disk.
        var resumed = SHA256Hasher()
        try resumed.update(contentsOf: url, length: 1000)
        resumed.update(bytes[1000...])
        #expect(resumed.finalizeHex() == oneShot(bytes))

        var tooLong = SHA256Hasher()
        #expect(throws: HubError.self) { try tooLong.update(contentsOf: url, length: Int64(bytes.count + 1)) }
        #expect(throws: HubError.self) { try SHA256Hasher.hex(ofFileAt: folder.appendingPathComponent("missing")) }
        let empty = folder.appendingPathComponent("empty")
        try Data().write(to: empty)
        #expect(try SHA256Hasher.hex(ofFileAt: empty) == Self.vectors[0].digest)
    }
}
