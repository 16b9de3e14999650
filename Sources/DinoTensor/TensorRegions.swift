// Dimension letters: B batch, C channels (or classes), H x W the plane.

extension Tensor {
    /// The `rect` region of every plane of `[B, C, H, W]`: `[B, C, rect.height, rect.width]`.
    public func cropped(to rect: PixelRect) -> Tensor {
        precondition(rank == 4, "cropping needs [B, C, H, W], got \(shape)")
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        precondition(rect.x >= 0 && rect.y >= 0 && rect.x + rect.width <= w && rect.y + rect.height <= h, "crop \(rect) outside \(h)x\(w)")
        if rect.x == 0, rect.y == 0, rect.width == w, rect.height == h { return self }
        var out = [Float](repeating: 0, count: planes * rect.height * rect.width)
        for p in 0..<planes {
            for y in 0..<rect.height {
                let src = (p * h + rect.y + y) * w + rect.x
                let dst = (p * rect.height + y) * rect.width
                out.replaceSubrange(dst..<(dst + rect.width), with: scalars[src..<(src + rect.width)])
            }
        }
        return Tensor(shape: [shape[0], shape[1], rect.height, rect.width], scalars: out)
    }

    /// Every plane of `[B, C, H, W]` with zeros added around it.
    public func padded(top: Int, bottom: Int, left: Int, right: Int) -> Tensor {
        precondition(rank == 4 && min(top, bottom, left, right) >= 0, "padding needs [B, C, H, W] and non-negative sizes")
        if top == 0, bottom == 0, left == 0, right == 0 { return self }
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let (ph, pw) = (h + top + bottom, w + left + right)
        var out = [Float](repeating: 0, count: planes * ph * pw)
        for p in 0..<planes {
            for y in 0..<h {
                let src = (p * h + y) * w, dst = (p * ph + y + top) * pw + left
                out.replaceSubrange(dst..<(dst + w), with: scalars[src..<(src + w)])
            }
        }
        return Tensor(shape: [shape[0], shape[1], ph, pw], scalars: out)
    }

    /// Adds `self` `[B, C, rect.height, rect.width]` into `sum` `[B, C, height, width]` at `rect`.
    public func add(into sum: inout [Float], height: Int, width: Int, at rect: PixelRect) {
        let planes = shape[0] * shape[1]
        precondition(rank == 4 && shape[2] == rect.height && shape[3] == rect.width && sum.count == planes * height * width,
                     "\(shape) does not fit \(rect) of \(height)x\(width)")
        for p in 0..<planes {
            for y in 0..<rect.height {
                let src = (p * rect.height + y) * rect.width
                let dst = (p * height + rect.y + y) * width + rect.x
                for x in 0..<rect.width { sum[dst + x] += scalars[src + x] }
            }
        }
    }
}
