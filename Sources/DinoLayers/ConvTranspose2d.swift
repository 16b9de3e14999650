import COpenBLAS
import DinoTensor

// Dimension letters: B batch, I input channels, O output channels, H x W input size,
// H' x W' output size, K kernel side. Tensors are NCHW, row-major, float32.

/// `torch.nn.ConvTranspose2d` with `groups = 1`: one GEMM per image, then col2im.
public struct ConvTranspose2d: Sendable {
    /// `[I, O, K, K]` flattened to `[I, O * K * K]`.
    public let weight: [Float]
    /// `[O]`, or nil.
    public let bias: [Float]?
    /// Input channels `I`.
    public let inChannels: Int
    /// Output channels `O`.
    public let outChannels: Int
    /// Kernel side `K`.
    public let kernelSize: Int
    /// Upsampling factor, both axes.
    public let stride: Int
    /// Rows and columns cut from every side of the output.
    public let padding: Int
    /// Rows and columns added at the bottom and right of the output.
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
