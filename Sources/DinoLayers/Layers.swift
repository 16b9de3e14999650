import CDinoKernels
import COpenBLAS
import DinoCompute
import DinoTensor

// Dimension letters: B batch, I input channels, O output channels, H x W input size,
// H' x W' output size, K kernel side. Tensors are NCHW, row-major, float32.

/// Why a layer could not be built from its weights, or applied to an input.
public enum LayerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A weight has the wrong rank or shape.
    case weightShape(layer: String, expected: String, actual: [Int])
    /// The input does not fit the layer.
    case inputShape(layer: String, expected: String, actual: [Int])
    /// A hyper-parameter is impossible (stride 0, negative padding...).
    case invalidParameter(layer: String, reason: String)

    public var description: String {
        switch self {
        case let .weightShape(layer, expected, actual): return "\(layer): weight of shape \(actual), expected \(expected)"
        case let .inputShape(layer, expected, actual): return "\(layer): input of shape \(actual), expected \(expected)"
        case let .invalidParameter(layer, reason): return "\(layer): \(reason)"
        }
    }
}

/// The scalars of a layer's optional bias, which must be `[channels]`.
private func biasScalars(_ bias: Tensor?, channels: Int, layer: String) throws(LayerError) -> [Float]? {
    guard let bias else { return nil }
    guard bias.shape == [channels] else {
        throw .weightShape(layer: layer + ".bias", expected: "[\(channels)]", actual: bias.shape)
    }
    return bias.scalars
}

/// `torch.nn.Conv2d` with `groups = 1`: im2col then one GEMM per image.
public struct Conv2d: Sendable {
    /// `[O, I, K, K]` flattened to `[O, I * K * K]`.
    public let weight: [Float]
    /// `[O]`, or nil.
    public let bias: [Float]?
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    /// A convolution from PyTorch-layout weights `[O, I, K, K]` (square kernels).
    public init(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0, name: String = "conv") throws(LayerError) {
        guard weight.rank == 4, weight.shape[2] == weight.shape[3] else {
            throw .weightShape(layer: name, expected: "[O, I, K, K]", actual: weight.shape)
        }
        guard stride >= 1, padding >= 0 else { throw .invalidParameter(layer: name, reason: "stride \(stride), padding \(padding)") }
        self.bias = try biasScalars(bias, channels: weight.shape[0], layer: name)
        self.weight = weight.scalars
        outChannels = weight.shape[0]
        inChannels = weight.shape[1]
        kernelSize = weight.shape[2]
        self.stride = stride
        self.padding = padding
    }

    /// Output size along one axis.
    public func outputSize(_ input: Int) -> Int { (input + 2 * padding - kernelSize) / stride + 1 }

    /// Largest im2col tile per thread, in floats (16 MB): the convolution runs over tiles of
    /// output rows so memory stays bounded at any image size.
    static let tileFloats = 4 << 20

    /// `[B, I, H, W]` -> `[B, O, H', W']`, output rows split over the compute threads.
    public func callAsFunction(_ x: Tensor) throws(LayerError) -> Tensor {
        guard x.rank == 4, x.shape[1] == inChannels else {
            throw .inputShape(layer: "conv", expected: "[B, \(inChannels), H, W]", actual: x.shape)
        }
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (outputSize(h), outputSize(w))
        guard oh >= 1, ow >= 1 else { throw .inputShape(layer: "conv", expected: "at least \(kernelSize - 2 * padding) pixels", actual: x.shape) }
        let k = kernelSize, rows = inChannels * k * k, positions = oh * ow
        let pointwise = k == 1 && stride == 1 && padding == 0
        let tileRows = max(1, min(oh, Self.tileFloats / max(rows * ow, 1)))
        let tiles = (oh + tileRows - 1) / tileRows
        let threads = ComputeThreads.current
        var out = [Float](repeating: 0, count: b * outChannels * positions)
        var scratch = [Float](repeating: 0, count: pointwise ? 0 : threads * rows * tileRows * ow)
        x.scalars.withUnsafeBufferPointer { xs in
            out.withUnsafeMutableBufferPointer { o in
                scratch.withUnsafeMutableBufferPointer { columnsBuffer in
                    guard let input = xs.baseAddress, let output = o.baseAddress else { return }
                    ComputeThreads.parallelFor(b * tiles, threads: threads, granularity: 1, minimumPerPart: 1) { part, items in
                        for item in items {
                            let (image, tile) = (item / tiles, item % tiles)
                            let firstRow = tile * tileRows, tileHeight = min(tileRows, oh - firstRow)
                            let count = tileHeight * ow
                            let src = input + image * inChannels * h * w
                            let dst = output + image * outChannels * positions + firstRow * ow
                            let b: UnsafePointer<Float>
                            let ldb: Int
                            if pointwise {
                                (b, ldb) = (UnsafePointer(src + firstRow * ow), positions)
                            } else {
                                // im2col of this tile: [(i * K + ky) * K + kx, row * W' + ox]
                                guard let columns = columnsBuffer.baseAddress.map({ $0 + part * rows * tileRows * ow }) else { return }
                                dino_im2col(src, inChannels, h, w, k, stride, padding, firstRow, tileHeight, ow, columns)
                                (b, ldb) = (UnsafePointer(columns), count)
                            }
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outChannels), Int32(count), Int32(rows),
                                        1, weight, Int32(rows), b, Int32(ldb), 0, dst, Int32(positions))
                            if let bias {
                                for o in 0..<outChannels { for j in 0..<count { dst[o * positions + j] += bias[o] } }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [b, outChannels, oh, ow], scalars: out)
    }
}

/// `torch.nn.ConvTranspose2d` with `groups = 1`: one GEMM per image, then col2im.
public struct ConvTranspose2d: Sendable {
    /// `[I, O, K, K]` flattened to `[I, O * K * K]`.
    public let weight: [Float]
    /// `[O]`, or nil.
    public let bias: [Float]?
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let outputPadding: Int

    /// A transposed convolution from PyTorch-layout weights `[I, O, K, K]`.
    public init(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0,
                name: String = "conv_transpose") throws(LayerError) {
        guard weight.rank == 4, weight.shape[2] == weight.shape[3] else {
            throw .weightShape(layer: name, expected: "[I, O, K, K]", actual: weight.shape)
        }
        guard stride >= 1, padding >= 0, outputPadding >= 0, outputPadding < stride else {
            throw .invalidParameter(layer: name, reason: "stride \(stride), padding \(padding), output padding \(outputPadding)")
        }
        self.bias = try biasScalars(bias, channels: weight.shape[1], layer: name)
        self.weight = weight.scalars
        inChannels = weight.shape[0]
        outChannels = weight.shape[1]
        kernelSize = weight.shape[2]
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
    }

    /// Output size along one axis.
    public func outputSize(_ input: Int) -> Int { (input - 1) * stride - 2 * padding + kernelSize + outputPadding }

    /// `[B, I, H, W]` -> `[B, O, H', W']`.
    public func callAsFunction(_ x: Tensor) throws(LayerError) -> Tensor {
        guard x.rank == 4, x.shape[1] == inChannels else {
            throw .inputShape(layer: "conv_transpose", expected: "[B, \(inChannels), H, W]", actual: x.shape)
        }
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (outputSize(h), outputSize(w))
        let k = kernelSize, rows = outChannels * k * k, positions = h * w
        var out = [Float](repeating: 0, count: b * outChannels * oh * ow)
        var columns = [Float](repeating: 0, count: rows * positions)
        for image in 0..<b {
            // columns[o * K * K + ky * K + kx, iy * W + ix] = sum_i weight[i, o, ky, kx] * x[i, iy, ix]
            x.scalars.withUnsafeBufferPointer { xs in
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(rows), Int32(positions), Int32(inChannels),
                            1, weight, Int32(rows), xs.baseAddress.map { $0 + image * inChannels * positions }, Int32(positions),
                            0, &columns, Int32(positions))
            }
            let output = image * outChannels * oh * ow
            for o in 0..<outChannels {
                for ky in 0..<k {
                    for kx in 0..<k {
                        let row = ((o * k + ky) * k + kx) * positions
                        for iy in 0..<h {
                            let oy = iy * stride - padding + ky
                            guard oy >= 0, oy < oh else { continue }
                            for ix in 0..<w {
                                let ox = ix * stride - padding + kx
                                guard ox >= 0, ox < ow else { continue }
                                out[output + (o * oh + oy) * ow + ox] += columns[row + iy * w + ix]
                            }
                        }
                    }
                }
                if let bias {
                    for j in 0..<(oh * ow) { out[output + o * oh * ow + j] += bias[o] }
                }
            }
        }
        return Tensor(shape: [b, outChannels, oh, ow], scalars: out)
    }
}

/// `torch.nn.BatchNorm2d` in inference form: `(x - running_mean) / sqrt(running_var + eps) * weight + bias`.
public struct BatchNorm2d: Sendable {
    public let weight: [Float]
    public let bias: [Float]
    public let runningMean: [Float]
    public let runningVar: [Float]
    public let eps: Float

    /// Batch norm from its four `[C]` tensors.
    public init(weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, eps: Float = 1e-5, name: String = "bn") throws(LayerError) {
        let c = weight.count
        for (label, t) in [("bias", bias), ("running_mean", runningMean), ("running_var", runningVar)] where t.shape != [c] || weight.shape != [c] {
            throw .weightShape(layer: "\(name).\(label)", expected: "[\(c)]", actual: t.shape)
        }
        self.weight = weight.scalars
        self.bias = bias.scalars
        self.runningMean = runningMean.scalars
        self.runningVar = runningVar.scalars
        self.eps = eps
    }

    /// Channels `C`.
    public var channels: Int { weight.count }

    /// `[B, C, H, W]` normalised per channel.
    public func callAsFunction(_ x: Tensor) throws(LayerError) -> Tensor {
        guard x.rank == 4, x.shape[1] == channels else {
            throw .inputShape(layer: "batch_norm", expected: "[B, \(channels), H, W]", actual: x.shape)
        }
        let plane = x.shape[2] * x.shape[3]
        var out = x
        for i in 0..<x.shape[0] {
            for c in 0..<channels {
                let scale = weight[c] / (runningVar[c] + eps).squareRoot()
                let shift = bias[c] - runningMean[c] * scale
                let base = (i * channels + c) * plane
                for j in 0..<plane { out.scalars[base + j] = x.scalars[base + j] * scale + shift }
            }
        }
        return out
    }
}

/// `torch.nn.Linear` on the last dimension: `[..., I]` -> `[..., O]`, weight `[O, I]`.
public struct Dense: Sendable {
    public let weight: [Float]
    public let bias: [Float]?
    public let inFeatures: Int
    public let outFeatures: Int

    /// A linear layer from PyTorch-layout weights `[O, I]`.
    public init(weight: Tensor, bias: Tensor?, name: String = "linear") throws(LayerError) {
        guard weight.rank == 2 else { throw .weightShape(layer: name, expected: "[O, I]", actual: weight.shape) }
        self.bias = try biasScalars(bias, channels: weight.shape[0], layer: name)
        self.weight = weight.scalars
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
    }

    /// Applies the layer to every row of `x`.
    public func callAsFunction(_ x: Tensor) throws(LayerError) -> Tensor {
        guard x.shape.last == inFeatures else { throw .inputShape(layer: "linear", expected: "[..., \(inFeatures)]", actual: x.shape) }
        let rows = x.count / inFeatures
        var out = [Float](repeating: 0, count: rows * outFeatures)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                    1, x.scalars, Int32(inFeatures), weight, Int32(inFeatures), 0, &out, Int32(outFeatures))
        if let bias {
            for r in 0..<rows { for o in 0..<outFeatures { out[r * outFeatures + o] += bias[o] } }
        }
        return Tensor(shape: Array(x.shape.dropLast()) + [outFeatures], scalars: out)
    }
}

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

/// Concatenates `[B, C_k, H, W]` tensors along channels.
public func concatenateChannels(_ parts: [Tensor]) -> Tensor {
    guard let first = parts.first else { return Tensor(shape: [0], scalars: []) }
    let (b, h, w) = (first.shape[0], first.shape[2], first.shape[3])
    precondition(parts.allSatisfy { $0.rank == 4 && $0.shape[0] == b && $0.shape[2] == h && $0.shape[3] == w },
                 "channel concatenation needs one batch and spatial size")
    let channels = parts.reduce(0) { $0 + $1.shape[1] }
    var out: [Float] = []
    out.reserveCapacity(b * channels * h * w)
    for i in 0..<b {
        for part in parts {
            let size = part.shape[1] * h * w
            out += part.scalars[(i * size)..<((i + 1) * size)]
        }
    }
    return Tensor(shape: [b, channels, h, w], scalars: out)
}

extension Tensor {
    /// `max(x, 0)` elementwise.
    public func relu() -> Tensor { Tensor(shape: shape, scalars: scalars.map { max($0, 0) }) }

    /// Elementwise sum with a tensor of the same shape.
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "adding \(lhs.shape) and \(rhs.shape)")
        return Tensor(shape: lhs.shape, scalars: zip(lhs.scalars, rhs.scalars).map { $0 + $1 })
    }
}
