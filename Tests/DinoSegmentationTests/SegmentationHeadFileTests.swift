import DinoImage
import DinoModel
import DinoTensor
import Foundation
import Testing

@testable import DinoSegmentation

@Suite("head files")
struct SegmentationHeadFileTests {
    func sampleHead() throws -> SegmentationHead {
        let configuration = SegmentationHeadConfiguration(
            layers: .blocks([1, 3]), classNames: ["sky", "tree \"quoted\"", "road"], backbone: "facebook/dinov2-with-registers-small",
            inputPolicy: "resize:448", reduceZeroLabel: true, notes: ["epochs": "3"])
        var head = try SegmentationHead(configuration: configuration, channels: 64, seed: 9)
        head.runningMean = head.runningMean.indices.map { Float($0) * 0.01 }
        head.batchesTracked = 17
        return head
    }

    @Test("a written head reads back with its parameters and metadata")
    func roundTrip() throws {
        let scratch = try ScratchFolder()
        let head = try sampleHead()
        let url = scratch.path("head.safetensors")
        try SegmentationHeadFile.write(head, to: url)
        let file = try SafetensorsFile(url: url)
        #expect(Set(file.tensorNames) == Set(["decode_head.conv_seg.weight", "decode_head.conv_seg.bias", "decode_head.bn.weight",
                                              "decode_head.bn.bias", "decode_head.bn.running_mean", "decode_head.bn.running_var",
                                              "decode_head.bn.num_batches_tracked"]))
        #expect(try file.shape(of: "decode_head.conv_seg.weight") == [3, 64, 1, 1])
        let loaded = try SegmentationHeadFile.load(url, hiddenSize: 999)
        #expect(loaded.configuration == head.configuration)
        #expect(loaded.classifierWeight == head.classifierWeight && loaded.runningMean == head.runningMean && loaded.batchesTracked == 17)
        let overridden = try SegmentationHeadFile.load(url, hiddenSize: 999, layers: .last(2))
        #expect(overridden.configuration.layers == .last(2))
    }

    @Test("files without metadata: layers from the channel count, classes from the class count")
    func inferred() throws {
        let linear = try SegmentationHeadFile.inferredConfiguration(channels: 384, classes: 150, hiddenSize: 384, file: "x")
        #expect(linear.layers == .last(1) && linear.classNames.count == 150 && linear.reduceZeroLabel && linear.classNames[0] == "wall")
        let ms = try SegmentationHeadFile.inferredConfiguration(channels: 1536, classes: 21, hiddenSize: 384, file: "x")
        #expect(ms.layers == .last(4) && ms.classNames[0] == "background" && !ms.reduceZeroLabel)
        #expect(throws: SegmentationError.self) { try SegmentationHeadFile.inferredConfiguration(channels: 500, classes: 21, hiddenSize: 384, file: "x") }
    }

    @Test("the official .pth layout ({meta, state_dict}, int64 num_batches_tracked) loads as in PyTorch", arguments: ["head_official", "head_official_f16"])
    func officialPth(_ name: String) throws {
        let head = try SegmentationHeadFile.load(Fixtures.url("\(name).pth"), hiddenSize: 32)
        let twin = try Fixtures.file("\(name).safetensors")
        #expect(head.configuration.layers == .last(1))
        #expect(head.configuration.classNames == DatasetClasses.numbered(5))
        #expect(head.batchesTracked == 40000)
        let pairs: [(String, [Float])] = [
            ("decode_head.conv_seg.weight", head.classifierWeight), ("decode_head.conv_seg.bias", head.classifierBias),
            ("decode_head.bn.weight", head.batchNormWeight), ("decode_head.bn.bias", head.batchNormBias),
            ("decode_head.bn.running_mean", head.runningMean), ("decode_head.bn.running_var", head.runningVariance),
        ]
        for (key, values) in pairs { #expect(values == (try twin.tensor(key)).scalars, "\(key)") }
        // Same head as the safetensors twin loaded the same way, and it runs on the fixture model.
        let fromSafetensors = try SegmentationHeadFile.load(Fixtures.url("\(name).safetensors"), hiddenSize: 32)
        #expect(fromSafetensors.classifierWeight == head.classifierWeight)
        _ = try Segmenter(model: try Fixtures.model(), head: head)
    }

    @Test("strict reading: missing, unexpected and mis-shaped tensors are named")
    func strict() throws {
        let scratch = try ScratchFolder()
        let good = try Fixtures.file("head_official.safetensors")
        func write(_ tensors: [(String, Tensor)]) throws -> URL {
            let url = scratch.path("bad-\(UUID().uuidString).safetensors")
            try SafetensorsFile.write(tensors.map { (name: $0.0, tensor: $0.1) }, to: url)
            return url
        }
        var tensors = try good.tensorNames.map { ($0, try good.tensor($0)) }
        let missing = try write(tensors.filter { $0.0 != "decode_head.bn.running_var" })
        #expect(throws: SegmentationError.missingTensor(key: "decode_head.bn.running_var", file: missing.path)) {
            try SegmentationHeadFile.load(missing, hiddenSize: 32)
        }
        let extra = try write(tensors + [("backbone.cls_token", Tensor(shape: [1], scalars: [0]))])
        #expect(throws: SegmentationError.unexpectedTensor(key: "backbone.cls_token", file: extra.path)) {
            try SegmentationHeadFile.load(extra, hiddenSize: 32)
        }
        tensors = tensors.map { $0.0 == "decode_head.bn.bias" ? ($0.0, Tensor(shape: [31], repeating: 0)) : $0 }
        let shaped = try write(tensors)
        #expect(throws: SegmentationError.shapeMismatch(key: "decode_head.bn.bias", file: shaped.path, expected: [32], actual: [31])) {
            try SegmentationHeadFile.load(shaped, hiddenSize: 32)
        }
        #expect(throws: SegmentationError.self) { try SegmentationHeadFile.load(scratch.path("head.onnx"), hiddenSize: 32) }
    }

    @Test("input policies and layer selections survive their text form")
    func textForms() throws {
        for preset in [Preprocessing.resize(shortSide: 448), .resizeAndPad(shortSide: 512), .pad, .padBottomRight, .size(height: 518, width: 1036)] {
            let text = try #require(InputPolicy.text(preset))
            #expect(try InputPolicy.preset(text) == preset)
        }
        #expect(throws: SegmentationError.self) { try InputPolicy.preset("resize:-3") }
        #expect(try LayerSelection(text: "ms") == .last(4) && (try LayerSelection(text: "linear")) == .last(1))
        #expect(try LayerSelection(text: "blocks:8,9,10,11").blocks(depth: 12) == [8, 9, 10, 11])
        #expect(try LayerSelection(text: "last:4").blocks(depth: 24) == [20, 21, 22, 23])
        #expect(throws: SegmentationError.self) { try LayerSelection(text: "blocks:12").blocks(depth: 12) }
    }
}
