import DinoLayers
import DinoModel
import DinoTensor
import Foundation
import Testing

@testable import DinoSegmentation

/// The head and the whole pipeline against PyTorch references of the same random weights.
@Suite("linear head parity")
struct HeadParityTests {
    /// The DINOv2 cases and the DINOv3 ones (`dinov3_*`, `Scripts/make_dinov3_head_fixtures.py`:
    /// the same heads and reference code on a 4-block DINOv3 backbone, patch 16, RoPE, 4 registers).
    static let cases = ["head_linear_42x70", "head_linear_56x56", "head_ms_42x70", "head_ms_56x56",
                        "dinov3_head_linear_48x80", "dinov3_head_ms_64x48"]
    static let tolerance: Float = 1e-4

    func layers(_ name: String) -> LayerSelection { name.contains("_ms_") ? .last(4) : .last(1) }

    @Test("head on the reference features matches PyTorch's BNHead", arguments: cases)
    func headOnReferenceFeatures(_ name: String) throws {
        let file = try Fixtures.file("\(name).safetensors")
        let head = try fixtureHead(file, layers: layers(name), classes: 5)
        let maps = try file.tensorNames.filter { $0.hasPrefix("features.") }.sorted().map { try file.tensor($0) }
        let grid = try head(maps)
        let expectedGrid = try file.tensor("logits_grid")
        let gridDiff = Difference(grid, expectedGrid)
        #expect(gridDiff.maxAbs <= Self.tolerance, "\(name) grid logits: \(gridDiff)")
        let pixels = try file.tensor("pixel_values")
        let upsampled = try head.logits(maps, height: pixels.shape[2], width: pixels.shape[3])
        let diff = Difference(upsampled, try file.tensor("logits"))
        #expect(diff.maxAbs <= Self.tolerance, "\(name) logits: \(diff)")
    }

    @Test("backbone + head on pixels matches HF hidden states + final norm + BNHead", arguments: cases)
    func pipelineOnPixels(_ name: String) throws {
        let file = try Fixtures.file("\(name).safetensors")
        let segmenter = try Segmenter(model: try Fixtures.model(for: name), head: try fixtureHead(file, layers: layers(name), classes: 5))
        let pixels = try file.tensor("pixel_values")
        let input = try segmenter.headInput(pixels)
        let maps = try file.tensorNames.filter { $0.hasPrefix("features.") }.sorted().map { try file.tensor($0) }
        let featureDiff = Difference(input, concatenateChannels(maps))
        print("parity \(name): max |head input - reference features| = \(featureDiff.maxAbs)")
        #expect(featureDiff.maxAbs <= Self.tolerance, "\(name) features: \(featureDiff)")
        let logits = try segmenter.logits(pixels)
        let diff = Difference(logits, try file.tensor("logits"))
        print("parity \(name): max |logits - reference| = \(diff.maxAbs) (max |reference| \(try file.tensor("logits").maxAbs))")
        #expect(diff.maxAbs <= Self.tolerance, "\(name): \(diff)")
    }

    @Test("feature maps of different sizes are resized to the first before concatenation")
    func resizeConcat() throws {
        let file = try Fixtures.file("head_resize_concat.safetensors")
        let head = try fixtureHead(file, layers: .last(4), classes: 3)
        let maps = try (0..<4).map { try file.tensor("maps.\($0)") }
        let diff = Difference(try head(maps), try file.tensor("logits_grid"))
        #expect(diff.maxAbs <= Self.tolerance, "\(diff)")
    }

    @Test("sliding windows match mmseg's slide_inference", arguments: ["aligned", "padded", "small"])
    func slidingWindows(_ name: String) throws {
        let file = try Fixtures.file("slide_\(name).safetensors")
        let crop = try #require(JSONSerialization.jsonObject(with: Data((file.metadata["crop"] ?? "").utf8)) as? [Int])
        let stride = try #require(JSONSerialization.jsonObject(with: Data((file.metadata["stride"] ?? "").utf8)) as? [Int])
        let segmenter = try Segmenter(model: try Fixtures.model(), head: try fixtureHead(file, layers: .blocks([3]), classes: 5))
        let window = try SlidingWindow(crop: (crop[0], crop[1]), stride: (stride[0], stride[1]))
        let logits = try segmenter.logits(try file.tensor("pixel_values"), mode: .slide(window))
        let diff = Difference(logits, try file.tensor("logits"))
        print("parity slide_\(name): max |logits - reference| = \(diff.maxAbs)")
        #expect(diff.maxAbs <= Self.tolerance, "\(name): \(diff)")
    }

    @Test("window grid as mmseg lays it out")
    func windowGrid() throws {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("manifest.json"))) as? [String: Any]
        let cases = try #require(manifest?["cases"] as? [String: Any])
        for name in ["slide_aligned", "slide_padded", "slide_small"] {
            let entry = try #require(cases[name] as? [String: Any])
            let size = try #require(entry["size"] as? [Int]), crop = try #require(entry["crop"] as? [Int])
            let stride = try #require(entry["stride"] as? [Int]), expected = try #require(entry["windows"] as? [[Int]])
            let rects = try SlidingWindow(crop: (crop[0], crop[1]), stride: (stride[0], stride[1])).windows(height: size[0], width: size[1])
            #expect(rects.map { [$0.y, $0.x, $0.y + $0.height, $0.x + $0.width] } == expected, "\(name)")
        }
        #expect(throws: SegmentationError.self) { try SlidingWindow(crop: (28, 28), stride: (29, 14)) }
    }

    @Test("a head whose channels do not fit the backbone is refused")
    func incompatibleHead() throws {
        let file = try Fixtures.file("head_linear_56x56.safetensors")
        let head = try fixtureHead(file, layers: .last(4), classes: 5)
        #expect(throws: SegmentationError.self) { try Segmenter(model: try Fixtures.model(), head: head) }
        let deep = try fixtureHead(file, layers: .blocks([7]), classes: 5)
        #expect(throws: SegmentationError.self) { try Segmenter(model: try Fixtures.model(), head: deep) }
    }
}
