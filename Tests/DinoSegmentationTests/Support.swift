import DinoModel
import DinoTensor
import Foundation
import Testing

@testable import DinoSegmentation

/// The fixtures of `Scripts/make_segmentation_fixtures.py`.
enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let photos = repository.appendingPathComponent("Examples/images")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
    static func file(_ name: String) throws -> SafetensorsFile { try SafetensorsFile(url: url(name)) }
    static func model() throws -> VisionTransformer { try VisionTransformer(directory: url("model")) }
    /// The backbone of a fixture: `dinov3_model` (`Scripts/make_dinov3_head_fixtures.py`) for `dinov3_*` files.
    static func model(for fixture: String) throws -> VisionTransformer {
        try VisionTransformer(directory: url(fixture.hasPrefix("dinov3_") ? "dinov3_model" : "model"))
    }
}

/// Largest absolute difference, its flat index and the first values of both, for failure reports.
struct Difference: CustomStringConvertible {
    var maxAbs: Float
    var index: Int
    var actual: [Float]
    var expected: [Float]

    init(_ a: Tensor, _ b: Tensor) {
        precondition(a.shape == b.shape, "comparing \(a.shape) with \(b.shape)")
        maxAbs = 0
        index = 0
        for (i, (x, y)) in zip(a.scalars, b.scalars).enumerated() where abs(x - y) > maxAbs || !(x - y).isFinite {
            maxAbs = (x - y).isFinite ? abs(x - y) : .infinity
            index = i
        }
        actual = Array(a.scalars.prefix(4))
        expected = Array(b.scalars.prefix(4))
    }

    init(_ a: [Float], _ b: [Float]) { self.init(Tensor(shape: [a.count], scalars: a), Tensor(shape: [b.count], scalars: b)) }

    var description: String { "max |diff| \(maxAbs) at \(index); first actual \(actual), expected \(expected)" }
}

/// The head stored in a fixture under the released names, with `blocks` as its layers.
func fixtureHead(_ file: SafetensorsFile, layers: LayerSelection, classes: Int) throws -> SegmentationHead {
    let configuration = SegmentationHeadConfiguration(layers: layers, classNames: DatasetClasses.numbered(classes))
    let names = file.tensorNames.filter { $0.hasPrefix("decode_head.") }
    return try SegmentationHeadFile.read(Subset(file: file, names: names), file: file.path, configuration: configuration)
}

/// Some tensors of a safetensors file, as a `TensorSource`.
struct Subset: TensorSource {
    let file: SafetensorsFile
    let names: [String]
    var tensorNames: [String] { names }
    func shape(of name: String) throws(TensorFileError) -> [Int] { try file.shape(of: name) }
    func tensor(_ name: String) throws(TensorFileError) -> Tensor { try file.tensor(name) }
    func location(of name: String) -> String { file.path }
}

/// A scratch folder removed at the end of the test.
final class ScratchFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("dino-seg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> URL { url.appendingPathComponent(name) }
}
