import CDinoKernels
import COpenBLAS
import DinoCompute
import DinoTensor

// Dimension letters: B batch, I input channels, O output channels, H x W input size,
// H' x W' output size, K kernel side. Tensors are NCHW, row-major, float32.

/// `torch.nn.Conv2d` with `groups = 1`: im2col then one GEMM per image.
public struct Conv2d: Sendable {
    /// `[O, I, K, K]` flattened to `[O, I * K * K]`.
    public let weight: [Float]
    /// `[O]`, or nil.
    public let bias: [Float]?
    /// Input channels `I`.
    public let inChannels: Int
    /// Output channels `O`.
    public let outChannels: Int
    /// Kernel side `K`.
    public let kernelSize: Int
    /// Step between kernel positions, both axes.
    public let stride: Int
    /// Zeros added on every side.
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
