import Foundation

/// A dense, row-major float32 tensor.
///
/// The shape lists the extent of each dimension, outermost first; `scalars` holds
/// `shape.reduce(1, *)` values in row-major order.
public struct Tensor: Sendable, Equatable {
    /// Extent of each dimension, outermost first.
    public var shape: [Int]
    /// The values, row-major.
    public var scalars: [Float]

    /// Creates a tensor from its shape and values; the counts must agree.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not hold \(scalars.count) values")
        self.shape = shape
        self.scalars = scalars
    }

    /// Creates a tensor of the given shape filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// Number of values.
    public var count: Int { scalars.count }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The same values seen with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    /// The `index`-th slice along the first dimension, `[d1, d2, ...]`.
    public subscript(index: Int) -> Tensor {
        precondition(rank >= 1 && index >= 0 && index < shape[0], "index \(index) out of range for \(shape)")
        let inner = Array(shape.dropFirst())
        let size = inner.reduce(1, *)
        return Tensor(shape: inner, scalars: Array(scalars[(index * size)..<((index + 1) * size)]))
    }

    /// Stacks tensors of one shape along a new first dimension.
    public static func stack(_ parts: [Tensor]) -> Tensor {
        guard let first = parts.first else { return Tensor(shape: [0], scalars: []) }
        precondition(parts.allSatisfy { $0.shape == first.shape }, "stack needs tensors of one shape")
        var scalars = [Float]()
        scalars.reserveCapacity(first.count * parts.count)
        for part in parts { scalars += part.scalars }
        return Tensor(shape: [parts.count] + first.shape, scalars: scalars)
    }

    /// Largest absolute value (0 for an empty tensor).
    public var maxAbs: Float { scalars.reduce(0) { max($0, abs($1)) } }
}

extension Tensor: CustomStringConvertible {
    /// Shape and the first few values.
    public var description: String {
        let head = scalars.prefix(6).map { String(format: "%.6g", Double($0)) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(scalars.count > 6 ? ", ..." : "")])"
    }
}

