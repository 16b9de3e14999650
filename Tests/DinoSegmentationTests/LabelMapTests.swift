import DinoImage
import DinoLayers
import DinoTensor
import Foundation
import Testing

@testable import DinoSegmentation

@Suite("label maps")
struct LabelMapTests {
    func expected(_ name: String) throws -> LabelMap {
        let t = try Fixtures.file("labels/expected.safetensors").tensor(name)
        return LabelMap(width: t.shape[1], height: t.shape[0], labels: t.scalars.map { UInt8($0) })
    }

    @Test("grey, palette (VOC) and 1-bit PNGs give their stored indices")
    func readsIndices() throws {
        #expect(try LabelMapFile.read(Fixtures.url("labels/grey.png")) == (try expected("grey")))
        #expect(try LabelMapFile.read(Fixtures.url("labels/palette.png")) == (try expected("palette")))
        #expect(try LabelMapFile.read(Fixtures.url("labels/bits.png")) == (try expected("bits")))
        #expect(try LabelMapFile.read(Fixtures.url("labels/grey_as_rgb.png")) == (try expected("grey")))
    }

    @Test("16-bit, colour and ambiguous-palette PNGs and JPEGs are refused with the reason", arguments: [
        ("grey16.png", "16-bit"), ("colour.png", "colour PNG"), ("ambiguous_palette.png", "share the colour"),
    ])
    func refuses(_ file: String, _ reason: String) throws {
        do {
            _ = try LabelMapFile.read(Fixtures.url("labels/\(file)"))
            Issue.record("\(file) was accepted")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
            #expect(error.description.contains(file))
        }
        #expect(throws: SegmentationError.self) { try LabelMapFile.read(Fixtures.url("voc/JPEGImages/2007_000032.jpg")) }
    }

    @Test("written palette PNGs decode (libpng checks CRCs and Adler-32) to the same indices")
    func writeRoundTrip() throws {
        let scratch = try ScratchFolder()
        var random = SeededRandom(seed: 11)
        // Regions (long runs and repeated rows) and noise (literals), odd sizes, 255 present.
        var labels = [UInt8](repeating: 0, count: 301 * 77)
        for y in 0..<77 { for x in 0..<301 { labels[y * 301 + x] = UInt8((x / 40 + y / 20) % 6) } }
        for i in stride(from: 0, to: labels.count, by: 7) where random.uniform() < 0.3 { labels[i] = UInt8(random.index(below: 21)) }
        labels[5] = 255
        let map = LabelMap(width: 301, height: 77, labels: labels)
        let url = scratch.path("labels.png")
        try LabelMapFile.write(map, to: url)
        #expect(try LabelMapFile.read(url) == map)
        let rgb = try ImageIO.read(url)
        let palette = SegmentationPalette.standard
        #expect(rgb == palette.colored(map))
        let flat = LabelMap(width: 640, height: 480, filling: 3)
        try LabelMapFile.write(flat, to: url)
        #expect(try LabelMapFile.read(url) == flat)
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? 0
        #expect(size < 4_000, "a one-class 640x480 mask takes \(size) bytes")
    }

    @Test("the VOC colour map")
    func palette() {
        let p = SegmentationPalette.standard
        #expect(p.color(0) == (0, 0, 0) && p.color(1) == (128, 0, 0) && p.color(2) == (0, 128, 0))
        #expect(p.color(15) == (192, 128, 128) && p.color(255) == (224, 224, 192))
    }

    @Test("reduce_zero_label: 0 -> ignore, k -> k - 1, 255 stays")
    func reduceZero() {
        let map = LabelMap(width: 4, height: 1, labels: [0, 1, 150, 255])
        #expect(map.reducingZeroLabel().labels == [255, 0, 149, 255])
    }

    @Test("nearest-neighbour resizing as OpenCV's INTER_NEAREST")
    func nearest() {
        let map = LabelMap(width: 3, height: 2, labels: [0, 1, 2, 3, 4, 5])
        #expect(map.resized(width: 6, height: 4).labels == [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 3, 3, 4, 4, 5, 5])
        #expect(map.resized(width: 2, height: 1).labels == [0, 1])
    }

    @Test("argmax of resized logits equals resizeBilinear then argmax, ties to the lower class")
    func argmax() {
        var random = SeededRandom(seed: 5)
        let (k, h, w) = (19, 4, 6)
        var scalars = (0..<(k * h * w)).map { _ in Float(random.normal()) }
        for j in 0..<(h * w) { scalars[3 * h * w + j] = scalars[12 * h * w + j] }  // ties between classes 3 and 12
        let logits = Tensor(shape: [k, h, w], scalars: scalars)
        let map = LabelMap.argmax(logits, height: 13, width: 29)
        let up = resizeBilinear(logits.reshaped([1, k, h, w]), height: 13, width: 29, alignCorners: false)
        for j in 0..<(13 * 29) {
            let values = (0..<k).map { up.scalars[$0 * 13 * 29 + j] }
            let best = values.firstIndex(of: values.max() ?? 0) ?? 0
            #expect(Int(map.labels[j]) == best)
        }
    }

    @Test("overlay: ignored pixels keep the photo, others blend with their class colour")
    func overlay() {
        let image = RGBImage(width: 4, height: 2, color: (100, 100, 100))
        let map = LabelMap(width: 4, height: 2, labels: [1, 1, 255, 2, 2, 2, 1, 255])
        let out = SegmentationPalette.standard.overlay(image, labels: map, classNames: ["a", "b", "c"], alpha: 0.5, legend: false)
        #expect(Array(out.pixels[0..<3]) == [114, 50, 50])
        #expect(Array(out.pixels[6..<9]) == [100, 100, 100])
    }
}
