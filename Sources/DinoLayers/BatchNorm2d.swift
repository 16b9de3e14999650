import DinoTensor

// Dimension letters: B batch, C channels, H x W size. Tensors are NCHW, row-major, float32.

/// `torch.nn.BatchNorm2d` in inference form: `(x - running_mean) / sqrt(running_var + eps) * weight + bias`.
public struct BatchNorm2d: Sendable {
    /// Scale `[C]` (`weight`).
    public let weight: [Float]
    /// Shift `[C]` (`bias`).
    public let bias: [Float]
    /// Running mean `[C]` (`running_mean`).
    public let runningMean: [Float]
    /// Running variance `[C]` (`running_var`).
    public let runningVar: [Float]
    /// Added to the variance before the square root.
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
