/// How the checkpoint's `M x M` grid of patch position embeddings is resampled to the patch grid
/// `h x w` of an input of another size. Computed in float32-exact double precision weights,
/// separably (width first, then height), as PyTorch's `interpolate` does.
public enum PositionInterpolation: Sendable, Equatable {
    /// `interpolate(size=(h, w), mode="bicubic", align_corners=False, antialias=True)`: HF
    /// `dinov2_with_registers`, the original `*_reg` models and timm.
    case antialiasedBicubic
    /// `interpolate(size=(h, w), mode="bicubic", align_corners=False)`: HF `dinov2`
    /// (transformers 5.x).
    case bicubic
    /// `interpolate(scale_factor=((h + offset) / M, (w + offset) / M), mode="bicubic",
    /// align_corners=False)`: the original facebookresearch/dinov2 code for plain models
    /// (`interpolate_offset = 0.1`), also older HF versions.
    case bicubicScaleOffset(Double)

    /// Resampling weights of one axis: output `i` reads `weights[i][k]` from input `start[i] + k`.
    struct AxisWeights: Equatable {
        var start: [Int]
        var weights: [[Double]]
    }

    /// The resampling weights for one axis from `input` to `output` positions.
    func axisWeights(input: Int, output: Int) -> AxisWeights {
        switch self {
        case .antialiasedBicubic:
            return Self.antialiasedWeights(input: input, output: output)
        case .bicubic:
            return Self.cubicWeights(input: input, output: output, scale: Double(input) / Double(output))
        case .bicubicScaleOffset(let offset):
            // ref: torch area_pixel_compute_scale: with a scale factor s the source step is 1 / s.
            let factor = (Double(output) + offset) / Double(input)
            return Self.cubicWeights(input: input, output: output, scale: 1 / factor)
        }
    }

    /// Output size along one axis; for the scale-factor mode `floor(M * s)`, which the offset
    /// keeps equal to the target.
    func outputSize(input: Int, target: Int) -> Int {
        switch self {
        case .antialiasedBicubic, .bicubic:
            return target
        case .bicubicScaleOffset(let offset):
            return Int((Double(input) * ((Double(target) + offset) / Double(input))).rounded(.down))
        }
    }

    // ref: PyTorch aten/src/ATen/native/cpu/UpSampleKernel.cpp, antialiased ("aa") separable
    // interpolation: support = 2 * max(scale, 1), center = scale * (i + 0.5), the cubic filter
    // with a = -0.5 stretched by max(scale, 1), weights normalised to sum 1.
    private static func antialiasedWeights(input: Int, output: Int) -> AxisWeights {
        let scale = Double(input) / Double(output)
        let stretch = max(scale, 1)
        let support = 2 * stretch
        var result = AxisWeights(start: [], weights: [])
        for i in 0..<output {
            let center = scale * (Double(i) + 0.5)
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), input)
            var weights = (lo..<hi).map { j in cubic((Double(j) - center + 0.5) / stretch, a: -0.5) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            result.start.append(lo)
            result.weights.append(weights)
        }
        return result
    }

    // ref: PyTorch upsample_bicubic2d: source = scale * (i + 0.5) - 0.5 (not clamped), four taps
    // around floor(source) with the cubic convolution kernel a = -0.75, indices clamped to the
    // border. Clamped taps are folded into the border weight so each output keeps one window.
    private static func cubicWeights(input: Int, output: Int, scale: Double) -> AxisWeights {
        var result = AxisWeights(start: [], weights: [])
        for i in 0..<output {
            let source = scale * (Double(i) + 0.5) - 0.5
            let base = Int(source.rounded(.down))
            let t = source - Double(base)
            let taps = [cubic(t + 1, a: -0.75), cubic(t, a: -0.75), cubic(1 - t, a: -0.75), cubic(2 - t, a: -0.75)]
            let lo = min(max(base - 1, 0), input - 1)
            let hi = min(max(base + 2, 0), input - 1)
            var weights = [Double](repeating: 0, count: hi - lo + 1)
            for (k, w) in taps.enumerated() {
                let j = min(max(base - 1 + k, 0), input - 1)
                weights[j - lo] += w
            }
            result.start.append(lo)
            result.weights.append(weights)
        }
        return result
    }

    /// Keys' cubic convolution kernel.
    private static func cubic(_ x: Double, a: Double) -> Double {
        let x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// Resamples a `[M, M, C]` grid (row-major, channels last) to `[h, w, C]`.
    ///
    /// - Parameters:
    ///   - grid: `[M * M * C]`.
    ///   - side: `M`.
    ///   - channels: `C`.
    ///   - height: `h`, the target rows.
    ///   - width: `w`, the target columns.
    /// - Returns: `[h * w * C]`.
    public func resample(_ grid: [Float], side: Int, channels: Int, height: Int, width: Int) -> [Float] {
        precondition(grid.count == side * side * channels, "grid of \(grid.count) values is not \(side)x\(side)x\(channels)")
        let wx = axisWeights(input: side, output: width)
        let wy = axisWeights(input: side, output: height)
        // Width first: [M, w, C].
        var rows = [Float](repeating: 0, count: side * width * channels)
        var accumulator = [Float](repeating: 0, count: channels)
        for y in 0..<side {
            for x in 0..<width {
                for c in 0..<channels { accumulator[c] = 0 }
                for (k, weight) in wx.weights[x].enumerated() {
                    let w = Float(weight)
                    let src = (y * side + wx.start[x] + k) * channels
                    for c in 0..<channels { accumulator[c] += w * grid[src + c] }
                }
                let dst = (y * width + x) * channels
                for c in 0..<channels { rows[dst + c] = accumulator[c] }
            }
        }
        // Then height: [h, w, C].
        var out = [Float](repeating: 0, count: height * width * channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { accumulator[c] = 0 }
                for (k, weight) in wy.weights[y].enumerated() {
                    let w = Float(weight)
                    let src = ((wy.start[y] + k) * width + x) * channels
                    for c in 0..<channels { accumulator[c] += w * rows[src + c] }
                }
                let dst = (y * width + x) * channels
                for c in 0..<channels { out[dst + c] = accumulator[c] }
            }
        }
        return out
    }
}
