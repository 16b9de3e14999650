import COpenCVBridge
import DinoTensor
import Foundation

// Dimension letters: h x w the patch grid, H x W the prepared image, C feature channels.

/// Colour maps for scalar pictures, as polynomial fits of the matplotlib / Google maps.
public enum Colormap: String, Sendable, CaseIterable {
    case viridis, inferno, turbo, gray

    /// The colour of `t` in [0, 1] (clamped).
    public func color(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let x = Double(min(max(t.isNaN ? 0 : t, 0), 1))
        let rgb: (Double, Double, Double)
        switch self {
        case .gray:
            rgb = (x, x, x)
        case .turbo:
            // Google's polynomial approximation of Turbo.
            let x2 = x * x, x3 = x2 * x, x4 = x3 * x, x5 = x4 * x
            rgb = (0.13572138 + 4.61539260 * x - 42.66032258 * x2 + 132.13108234 * x3 - 152.94239396 * x4 + 59.28637943 * x5,
                   0.09140261 + 2.19418839 * x + 4.84296658 * x2 - 14.18503333 * x3 + 4.27729857 * x4 + 2.82956604 * x5,
                   0.10667330 + 12.64194608 * x - 60.58204836 * x2 + 110.36276771 * x3 - 89.90310912 * x4 + 27.34824973 * x5)
        case .viridis:
            rgb = Self.polynomial(x, [
                (0.2777273272234177, 0.005407344544966578, 0.3340998053353061),
                (0.1050930431085774, 1.404613529898575, 1.384590162594685),
                (-0.3308618287255563, 0.214847559468213, 0.09509516302823659),
                (-4.634230498983486, -5.799100973351585, -19.33244095627987),
                (6.228269936347081, 14.17993336680509, 56.69055260068105),
                (4.776384997670288, -13.74514537774601, -65.35303263337234),
                (-5.435455855934631, 4.645852612178535, 26.3124352495832),
            ])
        case .inferno:
            rgb = Self.polynomial(x, [
                (0.0002189403691192265, 0.001651004631001012, -0.01948089843709184),
                (0.1065134194856116, 0.5639564367884091, 3.932712388889277),
                (11.60249308247187, -3.972853965665698, -15.9423941062914),
                (-41.70399613139459, 17.43639888205313, 44.35414519872813),
                (77.162935699427, -33.40235894210092, -81.80730925738993),
                (-71.31942824499214, 32.62606426397723, 73.20951985803202),
                (25.13112622477341, -12.24266895238567, -23.07032500287172),
            ])
        }
        func byte(_ v: Double) -> UInt8 { UInt8(min(max(v * 255, 0), 255).rounded()) }
        return (byte(rgb.0), byte(rgb.1), byte(rgb.2))
    }

    private static func polynomial(_ x: Double, _ c: [(Double, Double, Double)]) -> (Double, Double, Double) {
        var r = 0.0, g = 0.0, b = 0.0
        for coefficient in c.reversed() {
            r = r * x + coefficient.0
            g = g * x + coefficient.1
            b = b * x + coefficient.2
        }
        return (r, g, b)
    }
}

/// A per-patch scalar map `[h, w]`, the raw material of heatmaps.
public struct PatchMap: Sendable {
    /// Grid rows `h`.
    public var height: Int
    /// Grid columns `w`.
    public var width: Int
    /// `[h * w]` values, row-major.
    public var values: [Float]

    /// A map from its grid size and values.
    public init(height: Int, width: Int, values: [Float]) {
        precondition(values.count == height * width, "\(values.count) values are not a \(height)x\(width) grid")
        self.height = height
        self.width = width
        self.values = values
    }

    /// The smallest and largest finite value.
    public var range: ClosedRange<Float> {
        let finite = values.filter { $0.isFinite }
        guard let lo = finite.min(), let hi = finite.max() else { return 0...0 }
        return lo...hi
    }

    /// Colours the map with `colormap`, values scaled from `range` to [0, 1].
    public func colored(_ colormap: Colormap, range: ClosedRange<Float>? = nil) -> PatchColors {
        let r = range ?? self.range
        let span = r.upperBound - r.lowerBound
        var rgb = [Float](repeating: 0, count: values.count * 3)
        for (i, v) in values.enumerated() {
            let c = colormap.color(span > 0 ? (v - r.lowerBound) / span : 0.5)
            rgb[i * 3] = Float(c.0)
            rgb[i * 3 + 1] = Float(c.1)
            rgb[i * 3 + 2] = Float(c.2)
        }
        return PatchColors(height: height, width: width, rgb: rgb)
    }
}

/// A per-patch colour grid `[h, w, 3]` (0...255 floats), rendered onto images with
/// `PatchColors.render(for:interpolation:)`.
public struct PatchColors: Sendable {
    /// Grid rows `h`.
    public var height: Int
    /// Grid columns `w`.
    public var width: Int
    /// `[h * w * 3]` values in 0...255.
    public var rgb: [Float]

    /// A colour grid from its size and values.
    public init(height: Int, width: Int, rgb: [Float]) {
        precondition(rgb.count == height * width * 3, "\(rgb.count) values are not a \(height)x\(width)x3 grid")
        self.height = height
        self.width = width
        self.rgb = rgb
    }

    /// How grid cells are spread over pixels.
    public enum Interpolation: Sendable {
        /// Each patch a flat square: shows the token grid.
        case nearest
        /// Bilinear between patch centres (as `align_corners=False`): smooth.
        case bilinear
    }

    /// The grid drawn at the original image size: each patch covers its pixels of the prepared
    /// image, padding is cut away and crops are placed where they came from (pixels outside a
    /// crop stay black).
    public func render(for prepared: PreparedImage, interpolation: Interpolation = .bilinear) -> RGBImage {
        let (hp, wp) = (prepared.height, prepared.width)
        let content = prepared.contentRect, source = prepared.sourceRect
        var canvas = RGBImage(width: prepared.originalSize.width, height: prepared.originalSize.height)
        guard source.width > 0, source.height > 0 else { return canvas }
        // For each pixel of the source rectangle: its position in prepared pixels, then in grid cells.
        let sx = Double(content.width) / Double(source.width), sy = Double(content.height) / Double(source.height)
        let gx = Double(width) / Double(wp), gy = Double(height) / Double(hp)
        var row = [UInt8](repeating: 0, count: source.width * 3)
        for y in 0..<source.height {
            let preparedY = Double(content.y) + (Double(y) + 0.5) * sy
            for x in 0..<source.width {
                let preparedX = Double(content.x) + (Double(x) + 0.5) * sx
                let color = sample(gridX: preparedX * gx - 0.5, gridY: preparedY * gy - 0.5, interpolation)
                row[x * 3] = UInt8(min(max(color.0, 0), 255).rounded())
                row[x * 3 + 1] = UInt8(min(max(color.1, 0), 255).rounded())
                row[x * 3 + 2] = UInt8(min(max(color.2, 0), 255).rounded())
            }
            canvas.paste(RGBImage(width: source.width, height: 1, pixels: row), x: source.x, y: source.y + y)
        }
        return canvas
    }

    private func sample(gridX: Double, gridY: Double, _ interpolation: Interpolation) -> (Float, Float, Float) {
        func at(_ gx: Int, _ gy: Int) -> (Float, Float, Float) {
            let i = (min(max(gy, 0), height - 1) * width + min(max(gx, 0), width - 1)) * 3
            return (rgb[i], rgb[i + 1], rgb[i + 2])
        }
        switch interpolation {
        case .nearest:
            return at(Int((gridX + 0.5).rounded(.down)), Int((gridY + 0.5).rounded(.down)))
        case .bilinear:
            let x0 = Int(gridX.rounded(.down)), y0 = Int(gridY.rounded(.down))
            let tx = Float(gridX - Double(x0)), ty = Float(gridY - Double(y0))
            let a = at(x0, y0), b = at(x0 + 1, y0), c = at(x0, y0 + 1), d = at(x0 + 1, y0 + 1)
            func mix(_ p: Float, _ q: Float, _ r: Float, _ s: Float) -> Float {
                (p * (1 - tx) + q * tx) * (1 - ty) + (r * (1 - tx) + s * tx) * ty
            }
            return (mix(a.0, b.0, c.0, d.0), mix(a.1, b.1, c.1, d.1), mix(a.2, b.2, c.2, d.2))
        }
    }
}

extension RGBImage {
    /// This image blended with `overlay` of the same size: `(1 - alpha) * self + alpha * overlay`.
    public func blended(with overlay: RGBImage, alpha: Float) -> RGBImage {
        precondition(overlay.width == width && overlay.height == height, "overlay size differs")
        var out = pixels
        for i in 0..<out.count {
            out[i] = UInt8((Float(pixels[i]) * (1 - alpha) + Float(overlay.pixels[i]) * alpha).rounded())
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Draws `text` with its baseline at `(x, y)`, light with a dark outline.
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Double = 1, color: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        pixels.withUnsafeMutableBufferPointer { p in
            _ = dino_cv_put_text(p.baseAddress, Int32(width), Int32(height), text, Int32(x), Int32(y), scale, color.0, color.1, color.2)
        }
    }

    /// Draws the outline of a rectangle, `thickness` pixels wide, clipped to the image.
    public mutating func drawRectangle(_ rect: PixelRect, color: (UInt8, UInt8, UInt8), thickness: Int = 2) {
        for t in 0..<thickness {
            let (x0, y0, x1, y1) = (rect.x + t, rect.y + t, rect.x + rect.width - 1 - t, rect.y + rect.height - 1 - t)
            guard x0 <= x1, y0 <= y1 else { return }
            for x in x0...x1 { setPixel(x, y0, color); setPixel(x, y1, color) }
            for y in y0...y1 { setPixel(x0, y, color); setPixel(x1, y, color) }
        }
    }

    /// Sets one pixel if it lies inside the image.
    public mutating func setPixel(_ x: Int, _ y: Int, _ color: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = color.0
        pixels[i + 1] = color.1
        pixels[i + 2] = color.2
    }

    /// Tiles images in a grid of `columns`, each scaled to `tileHeight` rows (aspect kept) with an
    /// optional caption, on a dark background.
    public static func mosaic(_ tiles: [(image: RGBImage, caption: String?)], columns: Int, tileHeight: Int, gap: Int = 4) -> RGBImage {
        guard let first = tiles.first else { return RGBImage(width: 1, height: 1) }
        let tileWidth = max(1, Int((Double(first.image.width) * Double(tileHeight) / Double(first.image.height)).rounded()))
        let cols = max(1, min(columns, tiles.count))
        let rows = (tiles.count + cols - 1) / cols
        var canvas = RGBImage(width: cols * tileWidth + (cols + 1) * gap, height: rows * tileHeight + (rows + 1) * gap,
                              color: (24, 24, 24))
        let captionScale = max(0.5, Double(tileHeight) / 320)
        for (i, tile) in tiles.enumerated() {
            let x = gap + (i % cols) * (tileWidth + gap), y = gap + (i / cols) * (tileHeight + gap)
            canvas.paste(tile.image.resized(width: tileWidth, height: tileHeight), x: x, y: y)
            if let caption = tile.caption {
                canvas.drawText(caption, x: x + 6, y: y + Int(22 * captionScale) + 4, scale: captionScale)
            }
        }
        return canvas
    }
}
