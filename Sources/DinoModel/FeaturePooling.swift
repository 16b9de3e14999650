import DinoTensor

// Dimension letters: B batch, N tokens, C channels, h x w patch grid.

extension Tensor {
    /// The mean over the tokens of `[B, N, C]` (e.g. a `TokenSequence`'s `patchTokens`), as `[B, C]`.
    public func tokenMean() -> Tensor {
        precondition(rank == 3, "token mean needs [B, N, C], got \(shape)")
        let (b, n, c) = (shape[0], shape[1], shape[2])
        var out = [Float](repeating: 0, count: b * c)
        scalars.withUnsafeBufferPointer { x in
            for i in 0..<b {
                for t in 0..<n {
                    let row = (i * n + t) * c
                    for j in 0..<c { out[i * c + j] += x[row + j] }
                }
            }
        }
        let scale = 1 / Float(max(n, 1))
        return Tensor(shape: [b, c], scalars: out.map { $0 * scale })
    }

    /// The mean over the spatial positions of a feature map `[B, C, h, w]`, as `[B, C]`.
    public func spatialMean() -> Tensor {
        precondition(rank >= 2, "spatial mean needs [B, C, ...], got \(shape)")
        let (b, c) = (shape[0], shape[1])
        let area = count / max(b * c, 1)
        var out = [Float](repeating: 0, count: b * c)
        scalars.withUnsafeBufferPointer { x in
            for k in 0..<(b * c) {
                var sum: Float = 0
                for p in 0..<area { sum += x[k * area + p] }
                out[k] = sum / Float(max(area, 1))
            }
        }
        return Tensor(shape: [b, c], scalars: out)
    }
}
