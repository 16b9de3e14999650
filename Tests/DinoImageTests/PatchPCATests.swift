import DinoImage
import Testing

/// The PCA picture's colours: the joint fit, the regular subsample and the foreground mask.
@Suite("PCA picture colours")
struct PatchPCATests {
    /// Two images of `[n, 4]` rows: `image 0` spread along channel 0 around +5 ("foreground"),
    /// `image 1` around -5 with less spread ("background"), channels 1-3 small noise.
    static func features() -> [[Float]] {
        var state: UInt32 = 11
        func noise() -> Float { state = state &* 1_103_515_245 &+ 12345; return Float(state >> 16) / 65536 - 0.5 }
        let foreground = (0..<30).flatMap { _ in [5 + 2 * noise(), noise(), 0.5 * noise(), 0.1 * noise()] }
        let background = (0..<20).flatMap { _ in [-5 + noise(), noise(), 0.5 * noise(), 0.1 * noise()] }
        return [foreground, background]
    }

    @Test("a regular subsample takes every (count / limit)-th row, and all rows below the limit")
    func regularSample() {
        let rows: [Float] = (0..<10).flatMap { [Float($0), -Float($0)] }
        let sample = PatchPCA.regularSample(rows, count: 10, channels: 2, limit: 4)
        #expect(sample.count == 4 && sample.rows == [0, 0, 2, -2, 5, -5, 7, -7])
        #expect(PatchPCA.regularSample(rows, count: 10, channels: 2, limit: 10).rows == rows)
    }

    @Test("colours span 0...255 jointly over the images; every patch is foreground without a mask")
    func jointScaling() throws {
        let pca = try PatchPCA(features: Self.features(), channels: 4, maxFitRows: 1000)
        #expect(pca.fittedRows == 50 && pca.foreground.map(\.count) == [30, 20] && pca.foreground.allSatisfy { $0.allSatisfy { $0 } })
        #expect(pca.colors.map(\.count) == [90, 60])
        let all = pca.colors.flatMap { $0 }
        for m in 0..<3 {
            let channel = stride(from: m, to: all.count, by: 3).map { all[$0] }
            #expect(abs((channel.min() ?? -1) - 0) < 1e-3 && abs((channel.max() ?? 0) - 255) < 1e-3, "component \(m)")
        }
        // The first component separates the two images: the foreground image is brighter in red.
        let red = pca.colors.map { rgb in stride(from: 0, to: rgb.count, by: 3).map { rgb[$0] } }
        #expect((red[1].max() ?? 255) < (red[0].min() ?? 0))
    }

    @Test("a mask keeps one side of the first component, refits on it and blacks out the rest")
    func foregroundMask() throws {
        let pca = try PatchPCA(features: Self.features(), channels: 4, maxFitRows: 1000, mask: PatchPCA.Mask(threshold: 0.5))
        #expect(pca.foreground[0].allSatisfy { $0 } && pca.foreground[1].allSatisfy { !$0 })
        #expect(pca.fittedRows == 30)
        #expect(pca.colors[1].allSatisfy { $0 == 0 })
        let inverted = try PatchPCA(features: Self.features(), channels: 4, maxFitRows: 1000, mask: PatchPCA.Mask(threshold: 0.5, inverted: true))
        #expect(inverted.foreground[1].allSatisfy { $0 } && inverted.fittedRows == 20 && inverted.colors[0].allSatisfy { $0 == 0 })
        #expect(throws: ImageError.self) {
            try PatchPCA(features: Self.features(), channels: 4, maxFitRows: 1000, mask: PatchPCA.Mask(threshold: 1))
        }
    }
}
