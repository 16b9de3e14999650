import CDinoSHA256
import Foundation
import Testing

private func hex(_ digest: [UInt8]) -> String { digest.map { String(format: "%02x", $0) }.joined() }

private func oneShot(_ bytes: [UInt8]) -> String {
    var digest = [UInt8](repeating: 0, count: Int(DINO_SHA256_DIGEST_SIZE))
    bytes.withUnsafeBytes { dino_sha256($0.baseAddress, $0.count, &digest) }
    return hex(digest)
}

private func streamed(_ bytes: [UInt8], chunkSizes: [Int]) -> String {
    var context = dino_sha256_context()
    dino_sha256_init(&context)
    var offset = 0
    var turn = 0
    while offset < bytes.count {
        let size = min(chunkSizes[turn % chunkSizes.count], bytes.count - offset)
        bytes[offset..<(offset + size)].withUnsafeBytes { dino_sha256_update(&context, $0.baseAddress, size) }
        offset += size
        turn += 1
    }
    var digest = [UInt8](repeating: 0, count: Int(DINO_SHA256_DIGEST_SIZE))
    dino_sha256_final(&context, &digest)
    return hex(digest)
}

@Suite("SHA-256 (C)")
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
}
