import COpenBLAS
import DinoTensor

// Dimension letters: I input features, O output features.

/// `torch.nn.Linear` on the last dimension: `[..., I]` -> `[..., O]`, weight `[O, I]`.
public struct Dense: Sendable {
    /// `[O, I]`, row-major.
    public let weight: [Float]
    /// `[O]`, or nil.
    public let bias: [Float]?
    /// Input features `I`.
    public let inFeatures: Int
    /// Output features `O`.
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
