import DinoTensor

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
