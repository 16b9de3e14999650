import DinoImage
import DinoTensor
import Foundation

/// Class colours for label maps and overlays.
public struct SegmentationPalette: Sendable, Equatable {
    /// 256 colours, three bytes each; entry `i` colours class `i`, entry 255 ignored pixels.
    public var bytes: [UInt8]

    /// The Pascal VOC colour map for every index: the index's bits dealt out to red, green and
    /// blue in turn, from the most significant colour bit down. Class 0 is black, 255 is
    /// (224, 224, 192), the colour VOC gives its "void" border.
    public static let standard: SegmentationPalette = {
        var bytes = [UInt8](repeating: 0, count: 768)
        for index in 0..<256 {
            var (r, g, b) = (0, 0, 0)
            var c = index
            for bit in 0..<8 {
                r |= (c & 1) << (7 - bit)
                g |= ((c >> 1) & 1) << (7 - bit)
                b |= ((c >> 2) & 1) << (7 - bit)
                c >>= 3
            }
            bytes[index * 3] = UInt8(r)
            bytes[index * 3 + 1] = UInt8(g)
            bytes[index * 3 + 2] = UInt8(b)
        }
        return SegmentationPalette(bytes: bytes)
    }()

    /// A palette from its 768 bytes.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 768, "a palette has 256 RGB entries")
        self.bytes = bytes
    }

    /// The colour of class `index`.
    public func color(_ index: UInt8) -> (UInt8, UInt8, UInt8) {
        let i = Int(index) * 3
        return (bytes[i], bytes[i + 1], bytes[i + 2])
    }

    /// The label map in colour.
    public func colored(_ map: LabelMap) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: map.labels.count * 3)
        for (i, label) in map.labels.enumerated() {
            let c = Int(label) * 3
            pixels[i * 3] = bytes[c]
            pixels[i * 3 + 1] = bytes[c + 1]
            pixels[i * 3 + 2] = bytes[c + 2]
        }
        return RGBImage(width: map.width, height: map.height, pixels: pixels)
    }

    /// `image` with each pixel blended with its class colour (`alpha` of the colour; ignored
    /// pixels keep the photo), and a legend of the classes present, largest first, in the top
    /// left corner.
    public func overlay(_ image: RGBImage, labels map: LabelMap, classNames: [String], alpha: Float = 0.5,
                        legend: Bool = true) -> RGBImage {
        precondition(image.width == map.width && image.height == map.height, "overlay needs a label map of the image's size")
        var out = image.blended(with: colored(map), alpha: alpha)
        for (i, label) in map.labels.enumerated() where label == LabelMap.ignoreIndex {
            out.pixels.replaceSubrange((i * 3)..<(i * 3 + 3), with: image.pixels[(i * 3)..<(i * 3 + 3)])
        }
        guard legend else { return out }
        let present = map.classShares
        let scale = max(0.5, Double(min(image.width, image.height)) / 512)
        let line = Int(24 * scale), swatch = Int(16 * scale), margin = Int(8 * scale)
        let shown = present.prefix(max(1, (image.height - 2 * margin) / max(line, 1)))
        for (row, share) in shown.enumerated() {
            let label = share.label
            let top = margin + row * line
            let color = self.color(UInt8(label))
            for y in top..<(top + swatch) {
                for x in margin..<(margin + swatch) { out.setPixel(x, y, color) }
            }
            out.drawRectangle(PixelRect(x: margin, y: top, width: swatch, height: swatch), color: (255, 255, 255), thickness: 1)
            let name = label < classNames.count ? classNames[label] : "class\(label)"
            let percent = Double(share.pixels) * 100 / Double(max(map.labels.count, 1))
            out.drawText(String(format: "%@ %.0f%%", name, percent), x: margin + swatch + margin, y: top + swatch - max(1, swatch / 8), scale: 0.5 * scale)
        }
        return out
    }
}
