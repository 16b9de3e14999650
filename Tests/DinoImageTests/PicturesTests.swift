@testable import DinoImage
import DinoTensor
import Foundation
import Testing

@Suite("Preprocessing geometry")
struct PreprocessingGeometryTests {
    let image = RGBImage(width: 100, height: 60, color: (200, 100, 50))

    @Test("resize rounds both sides to multiples of the patch size, keeping the aspect ratio")
    func resize() throws {
        let prepared = try Preprocessing.resize(shortSide: 224).prepare(image, patchSize: 14)
        #expect(prepared.pixels.shape == [3, 224, 378])  // 100 * 224 / 60 = 373.3 -> 378 = 27 * 14
        #expect(prepared.contentRect == PixelRect(x: 0, y: 0, width: 378, height: 224))
        #expect(prepared.sourceRect == PixelRect(x: 0, y: 0, width: 100, height: 60))
    }

    @Test("pad centres the image and fills with zeros (the mean colour after normalisation)")
    func pad() throws {
        let prepared = try Preprocessing.pad.prepare(image, patchSize: 14)
        #expect(prepared.pixels.shape == [3, 70, 112])
        #expect(prepared.contentRect == PixelRect(x: 6, y: 5, width: 100, height: 60))
        #expect(prepared.pixels.scalars[0] == 0)
        let inside = prepared.pixels.scalars[5 * 112 + 6]
        #expect(abs(inside - (200 / 255 - 0.485) / 0.229) < 1e-5)
        let bottomRight = try Preprocessing.padBottomRight.prepare(image, patchSize: 14)
        #expect(bottomRight.contentRect == PixelRect(x: 0, y: 0, width: 100, height: 60))
    }

    @Test("resize-and-pad keeps the exact aspect ratio")
    func resizeAndPad() throws {
        let prepared = try Preprocessing.resizeAndPad(shortSide: 100).prepare(image, patchSize: 14)
        #expect(prepared.contentRect.width == 167 && prepared.contentRect.height == 100)
        #expect(prepared.pixels.shape == [3, 112, 168])
    }

    @Test("size must be multiples of the patch size")
    func size() throws {
        #expect(try Preprocessing.size(height: 28, width: 42).prepare(image, patchSize: 14).pixels.shape == [3, 28, 42])
        #expect(throws: ImageError.self) { try Preprocessing.size(height: 30, width: 42).prepare(image, patchSize: 14) }
        #expect(throws: ImageError.self) { try Preprocessing.resize(shortSide: 0).prepare(image, patchSize: 14) }
    }

    @Test("classification resizes the shortest edge, crops the centre and records the source region")
    func classification() throws {
        let prepared = try Preprocessing.classification(.dinov2).prepare(image, patchSize: 14)
        #expect(prepared.pixels.shape == [3, 224, 224])
        // 100x60 -> 426x256 (int(256 * 100 / 60) = 426), crop left (426 - 224) / 2 = 101, top 16.
        #expect(prepared.sourceRect.x == 24 && prepared.sourceRect.width == 53)
    }
}

@Suite("Pictures")
struct PicturesTests {
    @Test("patch colours land on the right pixels through padding")
    func renderPadded() throws {
        let image = RGBImage(width: 20, height: 10)
        let prepared = try Preprocessing.pad.prepare(image, patchSize: 14)  // 28 x 14, content at x = 4
        // Two patches: left red, right blue.
        let colors = PatchColors(height: 1, width: 2, rgb: [255, 0, 0, 0, 0, 255])
        let picture = colors.render(for: prepared, interpolation: .nearest)
        #expect(picture.width == 20 && picture.height == 10)
        // Original pixel x maps to prepared x + 4; patch boundary at prepared x = 14, i.e. x = 10.
        #expect(Array(picture.pixels[(9 * 3)..<(9 * 3 + 3)]) == [255, 0, 0])
        #expect(Array(picture.pixels[(10 * 3)..<(10 * 3 + 3)]) == [0, 0, 255])
    }

    @Test("colour maps run from dark to bright")
    func colormaps() {
        for map in Colormap.allCases where map != .turbo {
            let (r0, g0, b0) = map.color(0), (r1, g1, b1) = map.color(1)
            #expect(Int(r0) + Int(g0) + Int(b0) < Int(r1) + Int(g1) + Int(b1), "\(map)")
        }
        #expect(Colormap.gray.color(0.5) == (128, 128, 128))
    }

    @Test("PCA finds planted directions with deterministic signs")
    func pca() throws {
        // Rows spread along e0 (large), e1 (medium), e2 (small), plus a constant offset.
        var rows: [Float] = []
        var state: UInt32 = 7
        func noise() -> Float { state = state &* 1_103_515_245 &+ 12345; return Float(state >> 16) / 65536 - 0.5 }
        for _ in 0..<400 {
            rows += [10 * noise() + 3, 4 * noise() - 1, 1 * noise(), 0.01 * noise(), 5]
        }
        let pca = try PrincipalComponents.fit(rows, count: 400, channels: 5, components: 3)
        for (k, axis) in [0, 1, 2].enumerated() {
            #expect(abs(pca.components[k][axis] - 1) < 0.02, "component \(k): \(pca.components[k])")
        }
        #expect(pca.variances[0] > pca.variances[1] && pca.variances[1] > pca.variances[2])
        #expect(abs(pca.mean[4] - 5) < 1e-5)
        let projected = pca.project(Array(rows[0..<5]), count: 1)
        #expect(abs(projected[0] - (rows[0] - pca.mean[0])) < 0.3)
        #expect(throws: ImageError.self) { try PrincipalComponents.fit([1, 2], count: 1, channels: 2, components: 1) }
    }

    @Test("mosaic tiles keep their aspect ratio and carry captions")
    func mosaic() {
        let tile = RGBImage(width: 40, height: 20, color: (255, 255, 255))
        let out = RGBImage.mosaic([(tile, "a"), (tile, nil), (tile, "c")], columns: 2, tileHeight: 10, gap: 2)
        #expect(out.width == 2 * 20 + 3 * 2 && out.height == 2 * 10 + 3 * 2)
    }
}
