import DinoTensor

extension Tensor {
    /// `max(x, 0)` elementwise.
    public func relu() -> Tensor { Tensor(shape: shape, scalars: scalars.map { max($0, 0) }) }

    /// Elementwise sum with a tensor of the same shape.
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        precondition(lhs.shape == rhs.shape, "adding \(lhs.shape) and \(rhs.shape)")
        return Tensor(shape: lhs.shape, scalars: zip(lhs.scalars, rhs.scalars).map { $0 + $1 })
    }
}
