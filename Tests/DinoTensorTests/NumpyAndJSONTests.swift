import DinoTensor
import Foundation
import Testing

@Suite(".npy files")
struct NumpyTests {
    @Test("write then read", arguments: [[2, 3, 4], [5], [], [1, 3, 2, 2]])
    func roundTrip(shape: [Int]) throws {
        let folder = try TemporaryFolder()
        let count = shape.reduce(1, *)
        let tensor = Tensor(shape: shape, scalars: (0..<count).map { Float($0) * 0.5 - 3 })
        let url = folder.file("a.npy")
        try NumpyFile.write(tensor, to: url)
        #expect(try NumpyFile.read(url) == tensor)
        // The header of a version 1 file is padded to a multiple of 64 bytes.
        let bytes = try Data(contentsOf: url)
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
    }

    func npy(_ header: String, _ data: [UInt8], version: UInt8 = 1) -> Data {
        var bytes = Data([0x93] + Array("NUMPY".utf8) + [version, 0])
        let h = Array(header.utf8)
        if version == 1 {
            bytes.append(contentsOf: [UInt8(h.count & 0xff), UInt8(h.count >> 8)])
        } else {
            withUnsafeBytes(of: UInt32(h.count).littleEndian) { bytes.append(contentsOf: $0) }
        }
        bytes.append(contentsOf: h)
        bytes.append(contentsOf: data)
        return bytes
    }

    @Test("float64 and version 2 files are read")
    func otherTypes() throws {
        let folder = try TemporaryFolder()
        var data: [UInt8] = []
        for v in [1.5, -2.0] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        let url = folder.file("d.npy")
        try npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", data, version: 2).write(to: url)
        #expect(try NumpyFile.read(url).scalars == [1.5, -2])
    }

    @Test("malformed .npy files are rejected with the file named", arguments: [
        ("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0] as [UInt8]),
        ("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", [0, 0, 0, 0]),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", [0, 0, 0, 0]),
        ("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0, 0, 0, 0, 0]),
        ("{'descr': '<f4', 'shape': (1,), }", [0, 0, 0, 0]),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", []),
        ("not a dict", []),
    ])
    func malformed(header: String, data: [UInt8]) throws {
        let folder = try TemporaryFolder()
        let url = folder.file("bad.npy")
        try npy(header, data).write(to: url)
        do {
            _ = try NumpyFile.read(url)
            Issue.record("accepted \(header)")
        } catch {
            #expect(error.description.contains(url.path))
        }
    }

    @Test("a file that is not .npy is rejected")
    func notNpy() throws {
        let folder = try TemporaryFolder()
        let url = folder.file("x.npy")
        try Data("hello world".utf8).write(to: url)
        #expect(throws: TensorFileError.self) { try NumpyFile.read(url) }
    }
}

@Suite("Strict JSON")
struct JSONTests {
    @Test("documents parse to exact values")
    func parses() throws {
        let value = try JSONValue.parse(Array(#"{"a": [1, -2.5e3, true, null], "b": "x\n\u00e9\ud83d\ude00"}"#.utf8))
        #expect(value["a"]?.arrayValue?.first?.intValue == 1)
        #expect(value["a"]?.arrayValue?[1].doubleValue == -2500)
        #expect(value["b"]?.stringValue == "x\né😀")
        #expect(try JSONValue.parse(Array(value.serialized.utf8)) == value)
    }

    @Test("invalid documents are rejected", arguments: [
        #"{"a": 1, "a": 2}"#, "[1, 2", "{\"a\" 1}", "01", "1.", "\"\\x\"", "[1] x", "\"\u{01}\"", "\"\\ud800\"", "tru", "",
        String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
    ])
    func rejects(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(text.utf8)) }
    }
}
