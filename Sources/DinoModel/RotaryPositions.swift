import Foundation

/// DINOv3's 2D axial rotary position embedding for one patch grid: per patch, `cos` and `sin`
/// of `D` angles, the first half from the patch centre's row coordinate, the second from its
/// column (each `D / 4` frequencies, repeated twice). CLS and registers are not rotated.
///
/// ref: HF DINOv3ViTRopePositionEmbedding and apply_rotary_pos_emb (inference: no shift,
/// jitter or rescale of the coordinates). Computed in float32 in the reference's order.
public struct RotaryPositions: Sendable, Equatable {
    /// Channels per head, `D` (divisible by 4).
    public let headDim: Int
    /// Patch grid rows and columns.
    public let gridHeight: Int, gridWidth: Int
    /// `[gridHeight * gridWidth, D]`, patches row-major.
    public let cos: [Float]
    /// `[gridHeight * gridWidth, D]`.
    public let sin: [Float]

    /// The tables for a `gridHeight x gridWidth` patch grid, RoPE base `theta`.
    public init(theta: Double, headDim: Int, gridHeight: Int, gridWidth: Int) {
        precondition(headDim % 4 == 0 && headDim > 0, "RoPE needs a head size divisible by 4")
        self.headDim = headDim
        self.gridHeight = gridHeight
        self.gridWidth = gridWidth
        let quarter = headDim / 4
        // inv_freq = 1 / theta ** arange(0, 1, 4 / D), in float32.
        let step = Float(4) / Float(headDim)
        let inverseFrequencies = (0..<quarter).map { j in 1 / powf(Float(theta), Float(j) * step) }
        // Per axis position i of n: the angles 2 pi * centre * inv_freq, centre = 2 * (i + 0.5) / n - 1.
        let twoPi = Float(2 * Double.pi)
        func angles(_ n: Int) -> [[Float]] {
            (0..<n).map { i in
                let scaled = twoPi * (2 * ((Float(i) + 0.5) / Float(n)) - 1)
                return inverseFrequencies.map { scaled * $0 }
            }
        }
        let (rows, columns) = (angles(gridHeight), angles(gridWidth))
        var cos = [Float](repeating: 0, count: gridHeight * gridWidth * headDim)
        var sin = cos
        for row in 0..<gridHeight {
            for column in 0..<gridWidth {
                let base = (row * gridWidth + column) * headDim
                // [row angles, column angles], then angles.tile(2): the D / 2 angles twice.
                for (axis, axisAngles) in [rows[row], columns[column]].enumerated() {
                    for (j, angle) in axisAngles.enumerated() {
                        let (c, s) = (cosf(angle), sinf(angle))
                        for copy in 0..<2 {
                            let index = base + copy * (headDim / 2) + axis * quarter + j
                            cos[index] = c
                            sin[index] = s
                        }
                    }
                }
            }
        }
        self.cos = cos
        self.sin = sin
    }

    /// Rotates the queries and keys of the patch tokens in `qkv` `[B * N, 3C]` (query columns
    /// `0..<C`, key columns `C..<2C`, heads of `D` channels side by side; `tokens` per image, the
    /// patches last) in place:
    /// `x * cos + rotate_half(x) * sin`, with `rotate_half([a, b]) = [-b, a]` per head.
    func rotate(qkv: UnsafeMutablePointer<Float>, batch: Int, tokens: Int, heads: Int) {
        let (d, half, c) = (headDim, headDim / 2, heads * headDim)
        // CLS and the registers come first and are not rotated.
        let prefix = tokens - gridHeight * gridWidth
        precondition(prefix >= 1, "the token count does not match the grid")
        cos.withUnsafeBufferPointer { cosTable in
            sin.withUnsafeBufferPointer { sinTable in
                guard let cosBase = cosTable.baseAddress, let sinBase = sinTable.baseAddress else { return }
                for image in 0..<batch {
                    for patch in 0..<(tokens - prefix) {
                        let row = qkv + ((image * tokens + prefix + patch) * 3 * c)
                        let (cosRow, sinRow) = (cosBase + patch * d, sinBase + patch * d)
                        for part in 0..<2 {  // queries, then keys
                            for head in 0..<heads {
                                let x = row + part * c + head * d
                                // Each pair (i, i + D/2) depends only on itself, so it is rotated in place.
                                for i in 0..<half {
                                    let (a, b) = (x[i], x[i + half])
                                    x[i] = a * cosRow[i] + (-b) * sinRow[i]
                                    x[i + half] = b * cosRow[i + half] + a * sinRow[i + half]
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
