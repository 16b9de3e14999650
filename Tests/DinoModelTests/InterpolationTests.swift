@testable import DinoModel
import DinoTensor
import Testing

/// Position-embedding resampling against `torch.nn.functional.interpolate` outputs stored by
/// `Scripts/make_fixtures.py` (`Fixtures/interpolation`), for grids 37x37 and 4x4.
@Suite("Position-embedding interpolation")
struct InterpolationTests {
    static let targets37 = [(16, 16), (32, 32), (37, 37), (39, 39), (78, 78), (16, 24), (39, 20), (78, 50), (5, 3)]
    static let targets4 = [(2, 8), (9, 6), (3, 5), (4, 4), (1, 1)]

    /// `[1, C, M, M]` (PyTorch layout) to `[M * M * C]` (channels last, as the model stores it).
    func channelsLast(_ t: Tensor) -> [Float] {
        let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
        var out = [Float](repeating: 0, count: c * h * w)
        for ch in 0..<c { for y in 0..<h { for x in 0..<w { out[(y * w + x) * c + ch] = t.scalars[(ch * h + y) * w + x] } } }
        return out
    }

    @Test("antialiased bicubic, plain bicubic and the 0.1-offset scale factor match PyTorch",
          arguments: ["aa", "plain", "offset"])
    func matchesTorch(_ mode: String) throws {
        let reference = try Fixtures.reference("interpolation")
        let interpolation: PositionInterpolation = switch mode {
        case "aa": .antialiasedBicubic
        case "plain": .bicubic
        default: .bicubicScaleOffset(0.1)
        }
        var worst: Float = 0
        for (prefix, grid, targets) in [("", "grid", Self.targets37), ("grid4.", "grid4", Self.targets4)] {
            let source = try #require(reference[grid])
            let (c, m) = (source.shape[1], source.shape[2])
            for (h, w) in targets {
                let expected = try #require(reference["\(prefix)\(mode).\(h)x\(w)"])
                let out = interpolation.resample(channelsLast(source), side: m, channels: c, height: h, width: w)
                let comparison = expectClose(Tensor(shape: [h * w * c], scalars: out),
                                             Tensor(shape: [h * w * c], scalars: channelsLast(expected)),
                                             "\(prefix)\(mode).\(h)x\(w)")
                worst = max(worst, comparison.scaledError)
            }
        }
        print("interpolation \(mode): worst max|diff|/max(1,max|ref|) = \(worst)")
    }

    @Test("the offset mode keeps the target size")
    func offsetSize() {
        for m in [4, 16, 37] {
            for target in 1...200 {
                #expect(PositionInterpolation.bicubicScaleOffset(0.1).outputSize(input: m, target: target) == target)
            }
        }
    }
}
