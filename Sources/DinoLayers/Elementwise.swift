import DinoTensor
import Foundation

extension Tensor {
    /// `max(x, 0)` elementwise.
    public func relu() -> Tensor { Tensor(shape: shape, scalars: scalars.map { max($0, 0) }) }

    /// The exact (erf) GELU elementwise, as `torch.nn.GELU()`.
    public func gelu() -> Tensor {
        Tensor(shape: shape, scalars: scalars.map { 0.5 * $0 * (1 + erf($0 * Float(0.5).squareRoot())) })
    }

    /// Elementwise sum with a tensor of the same shape.
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "adding \(lhs.shape) and \(rhs.shape)")
        return Tensor(shape: lhs.shape, scalars: zip(lhs.scalars, rhs.scalars).map { $0 + $1 })
    }
}
