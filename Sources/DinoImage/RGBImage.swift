import CDinoKernels

/// An 8-bit RGB image, row-major, three bytes per pixel.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// `[height, width, 3]` bytes.
    public var pixels: [UInt8]

    /// An image from its bytes; `pixels.count` must be `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "\(pixels.count) bytes are not a \(width)x\(height) RGB image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image filled with one colour.
    public init(width: Int, height: Int, color: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            pixels[i * 3] = color.0
            pixels[i * 3 + 1] = color.1
            pixels[i * 3 + 2] = color.2
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// The image resized to `width x height` with antialiased bicubic filtering, exactly as
    /// Pillow's `Image.resize(..., BICUBIC)`.
    public func resized(width newWidth: Int, height newHeight: Int) -> RGBImage {
        precondition(newWidth > 0 && newHeight > 0, "cannot resize to \(newWidth)x\(newHeight)")
        if newWidth == width && newHeight == height { return self }
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        let status = out.withUnsafeMutableBufferPointer { dst in
            dino_resize_rgb8_bicubic(pixels, Int32(width), Int32(height), dst.baseAddress, Int32(newWidth), Int32(newHeight))
        }
        precondition(status == 0, "resampling \(width)x\(height) to \(newWidth)x\(newHeight) ran out of memory")
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }

    /// The `width x height` region whose top-left corner is `(x, y)`; it must lie inside.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage {
        precondition(x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= width && y + h <= height,
                     "crop \(w)x\(h)+\(x)+\(y) outside \(width)x\(height)")
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for row in 0..<h {
            let src = ((y + row) * width + x) * 3
            out.replaceSubrange((row * w * 3)..<((row + 1) * w * 3), with: pixels[src..<(src + w * 3)])
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// Copies `other` into this image with its top-left corner at `(x, y)`, clipped to the image.
    public mutating func paste(_ other: RGBImage, x: Int, y: Int) {
        for row in 0..<other.height where y + row >= 0 && y + row < height {
            for column in 0..<other.width where x + column >= 0 && x + column < width {
                let src = (row * other.width + column) * 3
                let dst = ((y + row) * width + x + column) * 3
                pixels[dst] = other.pixels[src]
                pixels[dst + 1] = other.pixels[src + 1]
                pixels[dst + 2] = other.pixels[src + 2]
            }
        }
    }
}

/// A single-channel image with its samples' full depth (depth maps, label masks).
public struct GreyImage: Sendable, Equatable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// Bits per sample as stored: 8 or 16.
    public var bitDepth: Int
    /// `[height, width]` samples (8-bit images widened, not scaled).
    public var samples: [UInt16]
}
