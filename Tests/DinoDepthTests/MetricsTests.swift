import DinoDepth
import DinoImage
import DinoTensor
import Foundation
import Testing

/// The metrics against numpy (`Scripts/make_depth_fixtures.py`, following the Monocular Depth
/// Estimation Toolbox that dinov2's depth evaluation uses) on stored ground truth and predictions.
@Suite("Depth metrics against numpy")
struct MetricsTests {
    struct Case: Decodable {
        var align: String
        var crop: String
        var min_depth: Double
        var max_depth: Double
        var images: [String: [String: Double]]
        var mean: [String: Double]
    }

    static let metricsURL = Fixtures.url("eval/metrics.json")

    static func reference(_ key: String) throws -> Case {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: metricsURL)) as? [String: Any]
        let entry = try #require(json?[key])
        return try JSONDecoder().decode(Case.self, from: JSONSerialization.data(withJSONObject: entry))
    }

    /// Every metric within `1e-9 + 1e-7 * |ref|` (both sides compute in double on the same
    /// float32 maps); pixel counts exact.
    func expectMetrics(_ actual: DepthMetrics, _ expected: [String: Double], _ label: String) {
        let values: [String: Double] = [
            "a1": actual.delta1, "a2": actual.delta2, "a3": actual.delta3, "abs_rel": actual.absRel, "sq_rel": actual.sqRel,
            "rmse": actual.rmse, "rmse_log": actual.rmseLog, "log_10": actual.log10, "silog": actual.silog,
        ]
        var worst = 0.0
        for (name, value) in values {
            guard let truth = expected[name] else { Issue.record("\(label): no reference for \(name)"); continue }
            let error = abs(value - truth)
            worst = max(worst, error / max(abs(truth), 1e-12))
            #expect(error <= 1e-9 + 1e-7 * abs(truth), "\(label) \(name): \(value), numpy \(truth)")
        }
        if let pixels = expected["pixels"] { #expect(Double(actual.pixels) == pixels, "\(label): \(actual.pixels) pixels, numpy \(pixels)") }
        print(String(format: "metrics %@: worst relative difference %.2g", label, worst))
    }

    @Test("per-image metrics and their mean, plain, median-scaled and scale-shift aligned",
          arguments: [("plain", DepthAlignment.none), ("median", .median), ("disparity", .scaleShift)])
    func storedMaps(key: String, alignment: DepthAlignment) throws {
        let reference = try Self.reference(key)
        let evaluation = DepthEvaluation(minDepth: reference.min_depth, maxDepth: reference.max_depth, crop: .none, alignment: alignment)
        var all: [DepthMetrics] = []
        for name in reference.images.keys.sorted() {
            let gt = try DepthFile.read(Fixtures.url("eval/ground_truth/\(name).png"), depthScale: 1000)
            let prediction = try DepthFile.read(Fixtures.url("eval/predictions/\(name).depth.npy"))
            let metrics = try #require(try evaluation.metrics(prediction: prediction, groundTruth: gt))
            expectMetrics(metrics, try #require(reference.images[name]), "\(key) \(name)")
            all.append(metrics)
        }
        expectMetrics(try #require(DepthMetrics.mean(all)), reference.mean, "\(key) mean")
    }

    @Test("the NYU Eigen, KITTI Garg and KITTI Eigen crops", arguments: [
        ("nyu-eigen", EvaluationCrop.nyuEigen, 480, 640, 10.0), ("garg", .garg, 352, 1216, 80.0), ("kitti-eigen", .kittiEigen, 375, 1242, 80.0),
    ])
    func crops(key: String, crop: EvaluationCrop, height: Int, width: Int, maxDepth: Double) throws {
        // The maps of the fixture script's formula, computed identically here.
        var gt = [Float](repeating: 0, count: height * width), pred = gt
        for y in 0..<height {
            for x in 0..<width {
                let g = 0.5 + Double((x * 7 + y * 3) % 500) / 50.0
                gt[y * width + x] = Float(g)
                pred[y * width + x] = Float(g * (0.8 + 0.4 * Double((x * 13 + y * 29) % 101) / 100.0))
            }
        }
        let evaluation = DepthEvaluation(minDepth: 0.001, maxDepth: maxDepth, crop: crop)
        let metrics = try #require(try evaluation.metrics(prediction: DepthMap(width: width, height: height, values: pred),
                                                         groundTruth: DepthMap(width: width, height: height, values: gt)))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.metricsURL)) as? [String: Any]
        let entry = try #require((json?["crop.\(key)"] as? [String: Any])?["metrics"] as? [String: Double])
        expectMetrics(metrics, entry, "crop \(key)")
    }

    @Test("masks: missing and out-of-range ground truth, sizes, empty images")
    func masks() throws {
        let gt = DepthMap(width: 3, height: 2, values: [0, 1, 2, 12, .nan, 3])
        let evaluation = DepthEvaluation(minDepth: 0.001, maxDepth: 10)
        #expect(try evaluation.validMask(gt) == [false, true, true, false, false, true])
        let metrics = try #require(try evaluation.metrics(prediction: DepthMap(width: 3, height: 2, values: [5, 1, 2, 5, 5, 3]), groundTruth: gt))
        #expect(metrics.pixels == 3 && metrics.absRel == 0 && metrics.delta1 == 1 && metrics.rmse == 0)
        #expect(try evaluation.metrics(prediction: DepthMap(width: 1, height: 1, values: [1]), groundTruth: DepthMap(width: 1, height: 1, values: [0])) == nil)
        #expect(throws: DepthError.self) {
            try evaluation.metrics(prediction: DepthMap(width: 2, height: 3, values: [Float](repeating: 1, count: 6)), groundTruth: gt)
        }
        #expect(throws: DepthError.self) { try EvaluationCrop.nyuEigen.region(height: 100, width: 100) }
        // Predictions are clamped to the range before the logs.
        let clamped = try #require(try evaluation.metrics(prediction: DepthMap(width: 1, height: 1, values: [-1]), groundTruth: DepthMap(width: 1, height: 1, values: [1])))
        #expect(clamped.absRel == 0.999)
    }

    @Test("median scaling and scale-shift alignment recover a scaled prediction")
    func alignment() throws {
        let gt = DepthMap(width: 4, height: 1, values: [1, 2, 4, 8])
        let scaled = DepthMap(width: 4, height: 1, values: [3, 6, 12, 24])
        let median = try #require(try DepthEvaluation(maxDepth: 10, alignment: .median).metrics(prediction: scaled, groundTruth: gt))
        #expect(median.absRel < 1e-12 && median.delta1 == 1)
        // Disparity 2 / depth + 0.5 aligns exactly.
        let disparity = DepthMap(width: 4, height: 1, values: gt.values.map { 2 / $0 + 0.5 })
        let fitted = try #require(try DepthEvaluation(maxDepth: 10, alignment: .scaleShift).metrics(prediction: disparity, groundTruth: gt))
        #expect(fitted.absRel < 1e-6 && fitted.delta1 == 1)
    }
}

/// 16-bit grey PNG depth maps (decoded here; the image decoder keeps 8 bits) and `.npy` maps.
@Suite("Depth map files")
struct DepthFileTests {
    @Test("Pillow's 16- and 8-bit grey PNGs decode to their samples", arguments: ["gray16", "gray8"])
    func pillowPNG(name: String) throws {
        let map = try DepthFile.read(Fixtures.url("png/\(name).png"), depthScale: 1)
        let expected = try NumpyFile.read(Fixtures.url("png/\(name).npy"))
        #expect([map.height, map.width] == expected.shape)
        #expect(map.values == expected.scalars)
    }

    @Test("PNGs that are not grey, or corrupt, are refused with the reason")
    func refused() throws {
        #expect {
            try DepthFile.read(Fixtures.url("png/rgb8.png"))
        } throws: { error in
            "\(error)".contains("3 channels") && "\(error)".contains("rgb8.png")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("depth-png-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var bytes = [UInt8](try Data(contentsOf: Fixtures.url("png/gray16.png")))
        bytes[45] ^= 0xff  // inside the first chunk after IHDR: its CRC no longer matches
        try Data(bytes).write(to: scratch)
        #expect { try DepthFile.read(scratch) } throws: { "\($0)".contains("corrupt") && "\($0)".contains(scratch.path) }
        try Data(bytes.prefix(60)).write(to: scratch)
        #expect { try DepthFile.read(scratch) } throws: { "\($0)".contains("corrupt") && "\($0)".contains(scratch.path) }
    }

    @Test("16-bit PNG and npy writing round-trip")
    func roundTrip() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("depth-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let values: [Float] = (0..<(70 * 300)).map { Float($0 % 9000) / 1000 }
        let map = DepthMap(width: 300, height: 70, values: values)
        try DepthFile.writePNG16(map, to: folder.appendingPathComponent("d.png"), depthScale: 1000)
        let back = try DepthFile.read(folder.appendingPathComponent("d.png"), depthScale: 1000)
        #expect(back.width == 300 && back.height == 70)
        #expect(zip(back.values, values).allSatisfy { abs($0 - $1) <= 0.0005 })
        // libpng (through the image decoder, which keeps the high byte of 16-bit samples) reads it too.
        let decoded = try ImageIO.read(folder.appendingPathComponent("d.png"))
        #expect(decoded.width == 300 && decoded.height == 70)
        #expect((0..<values.count).allSatisfy { decoded.pixels[$0 * 3] == UInt8(UInt16((values[$0] * 1000).rounded()) >> 8) })
        // Saturation, NaN and negative values.
        try DepthFile.writePNG16(DepthMap(width: 3, height: 1, values: [100, .nan, -1]), to: folder.appendingPathComponent("e.png"))
        #expect(try DepthFile.read(folder.appendingPathComponent("e.png"), depthScale: 1).values == [65535, 0, 0])
        try DepthFile.writeNumpy(map, to: folder.appendingPathComponent("d.npy"))
        #expect(try DepthFile.read(folder.appendingPathComponent("d.npy")) == map)
        try NumpyFile.write(Tensor(shape: [1, 1, 70, 300], scalars: values), to: folder.appendingPathComponent("b.npy"))
        #expect(try DepthFile.read(folder.appendingPathComponent("b.npy")) == map)
        try NumpyFile.write(Tensor(shape: [2, 70, 150], scalars: values), to: folder.appendingPathComponent("c.npy"))
        #expect(throws: DepthError.self) { try DepthFile.read(folder.appendingPathComponent("c.npy")) }
    }
}
