import DinoImage
import DinoTensor

/// Draws a discovered object over its image.
public enum DiscoveryPicture {
    /// Tint of the object's patches (the component holding the seed).
    public static let objectColor: (UInt8, UInt8, UInt8) = (255, 128, 0)
    /// Tint of the other foreground patches (outside the seed's component).
    public static let foregroundColor: (UInt8, UInt8, UInt8) = (0, 170, 255)
    /// The box outline.
    public static let boxColor: (UInt8, UInt8, UInt8) = (255, 230, 0)
    /// The seed patch outline.
    public static let seedColor: (UInt8, UInt8, UInt8) = (255, 0, 40)

    /// `image` (the original the features were computed from, through `prepared`) with the
    /// object's patches tinted orange, the rest of the foreground tinted blue, the box outlined
    /// in yellow, the seed patch outlined in red and an optional caption above the box.
    public static func render(_ object: DiscoveredObject, on image: RGBImage, prepared: PreparedImage, caption: String? = nil) -> RGBImage {
        let grid = object.foreground
        let p = max(1, prepared.width / grid.columns)
        let content = prepared.contentRect, source = prepared.sourceRect
        var canvas = image
        // Each original pixel of the source rectangle, through the resize, to its patch.
        let sx = Double(content.width) / Double(max(source.width, 1)), sy = Double(content.height) / Double(max(source.height, 1))
        for y in max(source.y, 0)..<min(source.y + source.height, image.height) {
            let row = Int(Double(content.y) + (Double(y - source.y) + 0.5) * sy) / p
            guard row < grid.rows else { continue }
            for x in max(source.x, 0)..<min(source.x + source.width, image.width) {
                let column = Int(Double(content.x) + (Double(x - source.x) + 0.5) * sx) / p
                guard column < grid.columns else { continue }
                let tint: (color: (UInt8, UInt8, UInt8), alpha: Float)
                if object.component[row, column] {
                    tint = (objectColor, 0.45)
                } else if grid[row, column] {
                    tint = (foregroundColor, 0.25)
                } else {
                    continue
                }
                let i = (y * image.width + x) * 3
                for (k, value) in [tint.color.0, tint.color.1, tint.color.2].enumerated() {
                    canvas.pixels[i + k] = UInt8((Float(canvas.pixels[i + k]) * (1 - tint.alpha) + Float(value) * tint.alpha).rounded())
                }
            }
        }
        let thickness = max(2, min(image.width, image.height) / 150)
        let box = object.box.inOriginal(of: prepared)
        canvas.drawRectangle(PixelRect(x: box.x0, y: box.y0, width: box.x1 - box.x0, height: box.y1 - box.y0), color: boxColor, thickness: thickness)
        let seedPatch = BoundingBox(x0: object.seed.column * p, y0: object.seed.row * p,
                                    x1: (object.seed.column + 1) * p, y1: (object.seed.row + 1) * p).inOriginal(of: prepared)
        canvas.drawRectangle(PixelRect(x: seedPatch.x0, y: seedPatch.y0, width: seedPatch.x1 - seedPatch.x0, height: seedPatch.y1 - seedPatch.y0),
                             color: seedColor, thickness: max(1, thickness / 2 + 1))
        if let caption {
            let scale = max(0.4, Double(min(image.width, image.height)) / 700)
            let baseline = box.y0 > Int(22 * scale) + 4 ? box.y0 - 4 : box.y0 + Int(22 * scale) + thickness
            canvas.drawText(caption, x: box.x0 + thickness, y: baseline, scale: scale)
        }
        return canvas
    }
}
