import DinoLayers
import DinoTensor
import Foundation
import Testing

/// Head layers against torch.nn outputs stored by `Scripts/make_layer_fixtures.py`.
@Suite("Head layers against PyTorch")
struct LayersTests {
    static let reference: SafetensorsFile? = try? SafetensorsFile(
        url: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/layers.safetensors"))

    func tensor(_ name: String) throws -> Tensor {
        try #require(Self.reference).tensor(name)
    }

    /// Checks `max|diff| <= 1e-4 * max(1, max|ref|)` and reports the worst difference.
    func expectClose(_ actual: Tensor, _ name: String) throws {
        let expected = try tensor(name)
        #expect(actual.shape == expected.shape, "\(name): shape \(actual.shape), expected \(expected.shape)")
        guard actual.shape == expected.shape else { return }
        let worst = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
        print("layers \(name): max|diff| \(worst)")
        #expect(worst <= 1e-4 * max(1, expected.maxAbs), "\(name): max|diff| \(worst)")
    }

    @Test("Conv2d", arguments: ["conv1x1", "conv3x3", "conv3x3_stride2", "conv4x4_stride4"])
    func conv(_ name: String) throws {
        let p = try tensor("\(name).params").scalars.map { Int($0) }
        let conv = try Conv2d(weight: try tensor("\(name).weight"), bias: try tensor("\(name).bias"), stride: p[1], padding: p[2])
        try expectClose(try conv(try tensor("\(name).input")), "\(name).output")
    }

    @Test("ConvTranspose2d", arguments: ["deconv4x4_stride4", "deconv2x2_stride2", "deconv3x3_stride2_pad1"])
    func deconv(_ name: String) throws {
        let p = try tensor("\(name).params").scalars.map { Int($0) }
        let deconv = try ConvTranspose2d(weight: try tensor("\(name).weight"), bias: try tensor("\(name).bias"),
                                         stride: p[1], padding: p[2], outputPadding: p[3])
        try expectClose(try deconv(try tensor("\(name).input")), "\(name).output")
    }

    @Test("BatchNorm2d and Linear")
    func batchNormAndLinear() throws {
        let bn = try BatchNorm2d(weight: try tensor("batchnorm.weight"), bias: try tensor("batchnorm.bias"),
                                 runningMean: try tensor("batchnorm.running_mean"), runningVar: try tensor("batchnorm.running_var"))
        try expectClose(try bn(try tensor("batchnorm.input")), "batchnorm.output")
        let linear = try Dense(weight: try tensor("linear.weight"), bias: try tensor("linear.bias"))
        try expectClose(try linear(try tensor("linear.input")), "linear.output")
    }

    @Test("bilinear resizing, with and without align_corners",
          arguments: [("bilinear_up4", false), ("bilinear_up2_align", true), ("bilinear_odd", false), ("bilinear_odd_align", true),
                      ("bilinear_down", false)])
    func bilinear(name: String, align: Bool) throws {
        let expected = try tensor("\(name).output")
        let out = resizeBilinear(try tensor("\(name).input"), height: expected.shape[2], width: expected.shape[3], alignCorners: align)
        try expectClose(out, "\(name).output")
    }

    @Test("shape errors name the layer")
    func errors() throws {
        #expect(throws: LayerError.self) { try Conv2d(weight: Tensor(shape: [2, 3, 3]), bias: nil) }
        let conv = try Conv2d(weight: Tensor(shape: [2, 3, 1, 1]), bias: nil)
        #expect(throws: LayerError.self) { try conv(Tensor(shape: [1, 4, 2, 2])) }
    }
}
