import DinoDepth
import DinoImage
import DinoModel
import DinoTensor
import Foundation
import Testing

/// The dinov2 depth heads against the dinov2 repository's own `BNHead` / `DPTHead` and
/// `DepthEncoderDecoder` (random weights, `Scripts/make_depth_fixtures.py`), on a tiny Meta-named
/// backbone: a square batch of two (6 x 6 patches) and a non-square image with an odd grid (5 x 8).
@Suite("dinov2 depth heads against the reference")
struct HeadParityTests {
    static let heads = ["nyu_linear", "kitti_linear4", "nyu_dpt"]

    static func backbone() throws -> VisionTransformer {
        try VisionTransformer(directory: Fixtures.url("backbone"))
    }

    static func depther(_ head: String, overrides: DepthHeadConfiguration.Overrides = .init()) throws -> DinoV2Depther {
        try DinoV2Depther(model: try backbone(), headFile: Fixtures.url("heads/dinov2_vitt14_\(head)_head.safetensors"), overrides: overrides)
    }

    @Test("head output and clamped, resized depth match", arguments: heads, ["square", "wide"])
    func parity(head: String, size: String) throws {
        let depther = try Self.depther(head)
        try expectMatchesReference(depther, head: head, size: size)
    }

    @Test("kinds, blocks and ranges come from the head files")
    func configuration() throws {
        let linear = try Self.depther("nyu_linear")
        guard case .linear(let lin1) = linear.head else { Issue.record("nyu_linear is not a linear head"); return }
        #expect(lin1.layerCount == 1 && lin1.bins.count == 256)
        #expect(linear.blocks == [11])
        #expect(linear.kind == .metric(0.001...10))
        #expect(lin1.bins.first == 0.001 && lin1.bins.last == 10)
        let lin4 = try Self.depther("kitti_linear4")
        #expect(lin4.head.name == "linear4" && lin4.blocks == [2, 5, 8, 11])
        #expect(lin4.configuration == DepthHeadConfiguration(minDepth: 0.001, maxDepth: 80, blocks: [2, 5, 8, 11], dataset: "kitti"))
        let dpt = try Self.depther("nyu_dpt")
        #expect(dpt.head.name == "dpt" && dpt.blocks == [2, 5, 8, 11])
        guard case .dpt(let head) = dpt.head else { Issue.record("nyu_dpt is not a DPT head"); return }
        #expect(head.channels == 16 && head.embedDim == 16)
    }

    @Test("overrides change the range and the blocks")
    func overrides() throws {
        let depther = try Self.depther("nyu_linear", overrides: .init(minDepth: 0.5, maxDepth: 20, blocks: [5]))
        #expect(depther.configuration.minDepth == 0.5 && depther.configuration.maxDepth == 20 && depther.blocks == [5])
        let prediction = try depther.predict(try Fixtures.reference("wide.pixels"))
        #expect(prediction.scalars.allSatisfy { $0 >= 0.5 && $0 <= 20 })
        #expect(throws: DepthError.self) { try Self.depther("kitti_linear4", overrides: .init(blocks: [1, 2])) }
    }

    @Test("the blocks of the released heads by backbone size")
    func releasedBlocks() throws {
        #expect(try DinoV2Depther.releasedBlocks(layerCount: 4, backboneDepth: 12) == [2, 5, 8, 11])
        #expect(try DinoV2Depther.releasedBlocks(layerCount: 4, backboneDepth: 24) == [4, 11, 17, 23])
        #expect(try DinoV2Depther.releasedBlocks(layerCount: 4, backboneDepth: 40) == [9, 19, 29, 39])
        #expect(try DinoV2Depther.releasedBlocks(layerCount: 1, backboneDepth: 24) == [23])
        #expect(throws: DepthError.self) { try DinoV2Depther.releasedBlocks(layerCount: 4, backboneDepth: 7) }
    }
}

/// The same dinov2 depth heads and reference (`DepthEncoderDecoder` with dinov2's `BNHead` /
/// `DPTHead`) on a DINOv3 backbone (`Scripts/make_dinov3_head_fixtures.py`: HF `DINOv3ViTModel`,
/// 12 blocks of width 16, patch 16, RoPE, 4 registers), whose `get_intermediate_layers` drops the
/// registers too. The head files carry no `out_indices`: the blocks come from the backbone's depth.
@Suite("dinov2 depth heads on a DINOv3 backbone against the reference")
struct DINOv3HeadParityTests {
    static let heads = ["nyu_linear", "kitti_linear4", "nyu_dpt"]

    static func depther(_ head: String) throws -> DinoV2Depther {
        try DinoV2Depther(model: try VisionTransformer(directory: Fixtures.url("dinov3_model")),
                          headFile: Fixtures.url("dinov3_heads/dinov3_\(head)_head.safetensors"))
    }

    @Test("head output and clamped, resized depth match", arguments: heads, ["square", "wide"])
    func parity(head: String, size: String) throws {
        let depther = try Self.depther(head)
        #expect(depther.model.configuration.isDINOv3)
        try expectMatchesReference(depther, head: head, size: size, in: "dinov3_heads.safetensors", label: "dinov3 ")
    }

    @Test("without out_indices the blocks come from the DINOv3 configuration's depth")
    func blocksFromConfiguration() throws {
        let lin1 = try Self.depther("nyu_linear")
        #expect(lin1.configuration.blocks == nil)
        #expect(lin1.model.configuration.numHiddenLayers == 12 && lin1.blocks == [11])
        #expect(try Self.depther("kitti_linear4").blocks == [2, 5, 8, 11])
        #expect(try Self.depther("nyu_dpt").blocks == [2, 5, 8, 11])
        // ViT-L-deep DINOv3 configurations take the released ViT-L / g choices, derived from numHiddenLayers.
        for (depth, expected) in [(24, [4, 11, 17, 23]), (40, [9, 19, 29, 39])] {
            let configuration = DinoConfiguration(modelType: "dinov3_vit") { $0.numHiddenLayers = depth }
            #expect(configuration.isDINOv3)
            #expect(try DinoV2Depther.releasedBlocks(layerCount: 4, backboneDepth: configuration.numHiddenLayers) == expected)
            #expect(try DinoV2Depther.releasedBlocks(layerCount: 1, backboneDepth: configuration.numHiddenLayers) == [depth - 1])
        }
    }
}

/// HF transformers' `DepthAnythingForDepthEstimation` (tiny random config, relative and metric).
@Suite("Depth Anything against transformers")
struct DepthAnythingParityTests {
    @Test("predicted_depth and the processor's bicubic post-processing match",
          arguments: ["depth_anything", "depth_anything_metric"], ["square", "wide"])
    func parity(model name: String, size: String) throws {
        let model = try DepthAnythingModel(directory: Fixtures.url(name))
        let pixels = try Fixtures.reference("\(size).pixels")
        let depth = try model.predict(pixels)
        expectClose(depth, try Fixtures.reference("\(name).\(size).depth", in: "depth_anything.safetensors"), "\(name) \(size) predicted_depth")
        // post_process_depth_estimation to 50 x 75: the whole prediction, bicubic.
        let b = pixels.shape[0]
        let maps = (0..<b).flatMap { DepthMap(prediction: depth[$0], width: 75, height: 50, upsampling: model.upsampling).values }
        expectClose(Tensor(shape: [b, 50, 75], scalars: maps),
                    try Fixtures.reference("\(name).\(size).post_processed", in: "depth_anything.safetensors"), "\(name) \(size) post-processed")
    }

    @Test("kinds follow depth_estimation_type")
    func kinds() throws {
        #expect(try DepthAnythingModel(directory: Fixtures.url("depth_anything")).kind == .relativeDisparity)
        #expect(try DepthAnythingModel(directory: Fixtures.url("depth_anything_metric")).kind == .metric(0...20))
    }

    struct ProcessorCase: Decodable {
        var width: Int
        var height: Int
        var resized_width: Int
        var resized_height: Int
    }

    @Test("the processor's sizes equal HF's get_resize_output_image_size")
    func processorSizes() throws {
        let processor = try DepthAnythingProcessor.load(from: Fixtures.url("depth_anything/preprocessor_config.json"))
        #expect(processor == DepthAnythingProcessor())
        let cases = try JSONDecoder().decode([ProcessorCase].self, from: Data(contentsOf: Fixtures.url("processor.json")))
        for c in cases {
            let size = processor.outputSize(width: c.width, height: c.height)
            #expect(size.width == c.resized_width && size.height == c.resized_height, "\(c.width)x\(c.height): got \(size)")
        }
    }
}

/// Bringing predictions back to the image: padding is cut away, the rest resampled.
@Suite("Depth maps at the image size")
struct DepthMapTests {
    @Test("a centre-padded image's map is the prediction's content rectangle")
    func padding() throws {
        // 40 x 30 pads to 42 x 42: one column left, six rows on top.
        let prepared = try Preprocessing.pad.prepare(RGBImage(width: 40, height: 30), patchSize: 14)
        #expect(prepared.contentRect == PixelRect(x: 1, y: 6, width: 40, height: 30))
        let grid: [Float] = (0..<(42 * 42)).map { (i: Int) -> Float in Float(i / 42 * 100 + i % 42) }
        let prediction = Tensor(shape: [42, 42], scalars: grid)
        var expected: [Float] = []
        for y in 0..<30 {
            for x in 0..<40 { expected.append(Float((y + 6) * 100 + x + 1)) }
        }
        for mode in [DepthUpsampling.bilinear, .bicubic] {
            let map = DepthMap(prediction: prediction, for: prepared, upsampling: mode)
            #expect(map.width == 40 && map.height == 30)
            #expect(map.values == expected, "\(mode)")
        }
    }

    @Test("colours run near warm, far cool, whichever way the values run")
    func colours() {
        let map = DepthMap(width: 3, height: 1, values: [1, 2, .nan])
        let metric = map.colored(.gray, kind: .metric(0...10))
        let disparity = map.colored(.gray, kind: .relativeDisparity)
        #expect(metric.pixels[0] == 255 && metric.pixels[3] == 0)  // 1 m is nearer: bright
        #expect(disparity.pixels[0] == 0 && disparity.pixels[3] == 255)  // larger disparity is nearer
        #expect(metric.pixels[6...8].allSatisfy { $0 == 0 })
    }
}

@Suite("Depth Anything configuration limits")
struct DepthAnythingLimitTests {
    /// Writes `config.json` (or `preprocessor_config.json`) of the fixture, edited, into a scratch folder.
    func edited(_ file: String, _ edit: (inout [String: Any]) -> Void) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dino-depth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("depth_anything/\(file)"))) as? [String: Any] ?? [:]
        edit(&object)
        let url = folder.appendingPathComponent(file)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        return url
    }

    // Each of these reached Int(Double) conversions (kernel sizes, strides, resize arithmetic)
    // that trap on huge values, or sized layers from the value alone.
    static let configEdits: [(String, @Sendable (inout [String: Any]) -> Void)] = [
        ("reassemble_factors", { $0["reassemble_factors"] = [4, 2, 1, 1e300] }),
        ("reassemble_factors", { $0["reassemble_factors"] = [4, 2, 1, 1e-300] }),
        ("neck_hidden_sizes", { $0["neck_hidden_sizes"] = [48, 96, 192, 1 << 40] }),
        ("fusion_hidden_size", { $0["fusion_hidden_size"] = 1 << 40 }),
        ("head_hidden_size", { $0["head_hidden_size"] = 1 << 40 }),
    ]

    static let processorEdits: [(String, @Sendable (inout [String: Any]) -> Void)] = [
        ("size", { $0["size"] = ["height": 1 << 60, "width": 518] }),
        ("ensure_multiple_of", { $0["ensure_multiple_of"] = 1 << 60 }),
    ]

    /// Expects `load` to refuse `file` of the fixture edited by `edit`, naming `field`.
    func expectRefusal(_ file: String, _ field: String, _ edit: (inout [String: Any]) -> Void, load: (URL) throws -> Void) throws {
        let url = try edited(file, edit)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        #expect {
            try load(url)
        } throws: { error in
            guard case .invalidConfiguration(url.path, field, _)? = error as? DepthError else { return false }
            return true
        }
    }

    @Test("size fields beyond their limits name the field", arguments: 0..<configEdits.count)
    func configuration(_ index: Int) throws {
        let (field, edit) = Self.configEdits[index]
        try expectRefusal("config.json", field, edit) { _ = try DepthAnythingConfiguration.load(from: $0) }
    }

    @Test("processor sizes beyond their limits name the field", arguments: 0..<processorEdits.count)
    func processor(_ index: Int) throws {
        let (field, edit) = Self.processorEdits[index]
        try expectRefusal("preprocessor_config.json", field, edit) { _ = try DepthAnythingProcessor.load(from: $0) }
    }
}

/// The head output, then the clamped depth resized to the input (encode_decode: the clamp, then
/// bilinear to the input size), against the references of `head` at `size` in `file`.
func expectMatchesReference(_ depther: DinoV2Depther, head: String, size: String, in file: String = "heads.safetensors",
                            label: String = "") throws {
    let pixels = try Fixtures.reference("\(size).pixels", in: file)
    expectClose(try depther.headOutput(pixels), try Fixtures.reference("\(head).\(size).head", in: file), "\(label)\(head) \(size) head output")
    let prediction = try depther.predict(pixels)
    let expected = try Fixtures.reference("\(head).\(size).depth", in: file)
    let (b, h, w) = (pixels.shape[0], pixels.shape[2], pixels.shape[3])
    let maps = (0..<b).flatMap { DepthMap(prediction: prediction[$0], width: w, height: h, upsampling: depther.upsampling).values }
    expectClose(Tensor(shape: [b, 1, h, w], scalars: maps), expected, "\(label)\(head) \(size) depth at the input size")
}
