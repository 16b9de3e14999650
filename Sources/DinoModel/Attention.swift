import CDinoKernels

// Dimension letters: B batch, N tokens, H heads, D head dim, C = H * D; Bq x Bk a tile of
// query rows by key columns.

/// Multi-head self-attention over the fused projections `qkv` `[B * N, 3C]` (query, key, value
/// column blocks, heads side by side), writing the heads' outputs side by side into
/// `[B * N, C]`. Work is split over (image, head, query block) across the compute threads.
struct AttentionKernel {
    let batch: Int
    let tokens: Int
    let heads: Int
    let headDim: Int
    let threads: Int

    /// Query rows per tile of the streaming path.
    static func queryBlock(tokens n: Int) -> Int { min(n, 256) }
    /// Key columns per tile of the streaming path.
    static func keyBlock(tokens n: Int) -> Int { min(n, 1024) }
    /// Scores one thread of the streaming path needs, `Bq * Bk`.
    static func blockScores(tokens n: Int) -> Int { queryBlock(tokens: n) * keyBlock(tokens: n) }

    private var scale: Float { 1 / Float(headDim).squareRoot() }
    private var width: Int { heads * headDim }

    /// Softmax(q kᵀ · scale) v with the probabilities kept: `probabilities` `[B, H, N, N]`;
    /// `scores` holds `threads * N * N` floats of scratch.
    func full(qkv: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
              scores: UnsafeMutablePointer<Float>) {
        let (n, d, c) = (tokens, headDim, width)
        ComputeThreads.parallelFor(batch * heads, threads: threads, granularity: 1, minimumPerPart: 1) { part, pairs in
            let tile = scores + part * n * n
            for pair in pairs {
                let (i, head) = (pair / heads, pair % heads)
                let q = qkv + i * n * 3 * c + head * d
                sgemm(transposeB: true, m: n, n: n, k: d, alpha: 1, a: q, lda: 3 * c, b: q + c, ldb: 3 * c, beta: 0, c: tile, ldc: n)
                dino_softmax(tile, n, n, n, scale)
                (probabilities + pair * n * n).update(from: tile, count: n * n)
                sgemm(transposeB: false, m: n, n: d, k: n, alpha: 1, a: tile, lda: n, b: q + 2 * c, ldb: 3 * c,
                      beta: 0, c: out + i * n * c + head * d, ldc: c)
            }
        }
    }

    /// The same result without any `N x N` matrix: tiles of `Bq` query rows against `Bk` keys
    /// with an online softmax (running max and sum per row, output rescaled as the max grows),
    /// so memory stays `threads * Bq * Bk` at any resolution.
    func streaming(qkv: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let (n, d, c) = (tokens, headDim, width)
        let bq = Self.queryBlock(tokens: n), bk = Self.keyBlock(tokens: n)
        let queryBlocks = (n + bq - 1) / bq
        ComputeThreads.parallelFor(batch * heads * queryBlocks, threads: threads, granularity: 1, minimumPerPart: 1) { part, items in
            let tile = workspace.scores + part * bq * bk
            let rowMax = workspace.rowMax + part * bq, rowSum = workspace.rowSum + part * bq
            for item in items {
                let (pair, block) = (item / queryBlocks, item % queryBlocks)
                let (i, head) = (pair / heads, pair % heads)
                let first = block * bq, rows = min(bq, n - first)
                let q = qkv + (i * n + first) * 3 * c + head * d
                let o = out + (i * n + first) * c + head * d
                rowMax.update(repeating: -.infinity, count: rows)
                rowSum.update(repeating: 0, count: rows)
                for r in 0..<rows { (o + r * c).update(repeating: 0, count: d) }
                for key in stride(from: 0, to: n, by: bk) {
                    let columns = min(bk, n - key)
                    let k = qkv + (i * n + key) * 3 * c + c + head * d
                    sgemm(transposeB: true, m: rows, n: columns, k: d, alpha: 1, a: q, lda: 3 * c, b: k, ldb: 3 * c,
                          beta: 0, c: tile, ldc: bk)
                    dino_online_softmax_block(tile, bk, rows, columns, scale, rowMax, rowSum, o, c, d)
                    sgemm(transposeB: false, m: rows, n: d, k: columns, alpha: 1, a: tile, lda: bk, b: k + c, ldb: 3 * c,
                          beta: 1, c: o, ldc: c)
                }
                dino_divide_rows(o, c, rows, d, rowSum)
            }
        }
    }
}
