import DinoTensor

// Dimension letters: B batch, C channels, H x W input size, H' x W' output size.

/// `torch.nn.functional.interpolate(x, size=(H', W'), mode="bilinear", align_corners=...)` of
/// `[B, C, H, W]`.
public func resizeBilinear(_ x: Tensor, height: Int, width: Int, alignCorners: Bool) -> Tensor {
    precondition(x.rank == 4 && height > 0 && width > 0, "bilinear resize needs [B, C, H, W] and a positive size")
    let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    if h == height && w == width { return x }
    // ref: PyTorch area_pixel_compute_source_index: align_corners maps corner to corner;
    // otherwise centres map to centres and negative sources clamp to 0.
    func taps(_ input: Int, _ output: Int) -> [(Int, Int, Float)] {
        (0..<output).map { o in
            let source: Double
            if alignCorners {
                source = output > 1 ? Double(o) * Double(input - 1) / Double(output - 1) : 0
            } else {
                source = max((Double(o) + 0.5) * Double(input) / Double(output) - 0.5, 0)
            }
            let i0 = min(Int(source), input - 1)
            let i1 = min(i0 + 1, input - 1)
            return (i0, i1, Float(source - Double(i0)))
        }
    }
    let ys = taps(h, height), xs = taps(w, width)
    var out = [Float](repeating: 0, count: planes * height * width)
    for p in 0..<planes {
        let src = p * h * w, dst = p * height * width
        for (oy, (y0, y1, ly)) in ys.enumerated() {
            for (ox, (x0, x1, lx)) in xs.enumerated() {
                let top = x.scalars[src + y0 * w + x0] * (1 - lx) + x.scalars[src + y0 * w + x1] * lx
                let bottom = x.scalars[src + y1 * w + x0] * (1 - lx) + x.scalars[src + y1 * w + x1] * lx
                out[dst + oy * width + ox] = top * (1 - ly) + bottom * ly
            }
        }
    }
    return Tensor(shape: [x.shape[0], x.shape[1], height, width], scalars: out)
}
