import CDinoKernels
import DinoCompute

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
    /// Whether the streaming products round q, k, the probabilities and v to bfloat16 and sum
    /// them with dot products (`BFloat16Products.dotProducts`), as the model's linear layers do.
    let dotProducts: Bool

    /// Query rows per tile of the streaming path.
    static func queryBlock(tokens n: Int) -> Int { min(n, packedKernelsActive ? 120 : 256) }
    /// Key columns per tile of the streaming path (a multiple of 16 for the packed kernel).
    static func keyBlock(tokens n: Int) -> Int { min(n, packedKernelsActive ? 512 : 1024) }
    /// Scores one thread of the streaming path needs, `Bq * Bk`.
    static func blockScores(tokens n: Int) -> Int { queryBlock(tokens: n) * keyBlock(tokens: n) }
    /// Floats one thread needs for the packed keys and values of one head, and a contiguous copy
    /// of one block of queries.
    static func packedHead(tokens n: Int, headDim d: Int) -> Int {
        packedKernelsActive ? dino_packed_weight_count(n, d) + dino_packed_weight_count(d, n) + queryBlock(tokens: n) * d : 0
    }

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
        if packedKernelsActive {
            streamingPacked(qkv: qkv, into: out, workspace: workspace)
        } else {
            streamingBLAS(qkv: qkv, into: out, workspace: workspace)
        }
    }

    /// The streaming attention on the packed-GEMM kernel: each thread takes whole (image, head)
    /// pairs, packs that head's keys ([N, D]) and values (transposed, [D, N]) once, and runs both
    /// products of every tile on them (OpenBLAS would re-pack both for every tile).
    ///
    /// Each block of queries is copied to contiguous rows first. In place, rows 3C floats apart use
    /// half of the 64 L1 sets for ViT-S (3C = 1152 floats is 72 cache lines, 8 sets apart) and a
    /// quarter for ViT-B, so the block does not stay in L1 across the key panels (measurements:
    /// docs/performance.md).
    private func streamingPacked(qkv: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let (n, d, c) = (tokens, headDim, width)
        let bq = Self.queryBlock(tokens: n), bk = Self.keyBlock(tokens: n)
        let keysSize = dino_packed_weight_count(n, d), perThread = Self.packedHead(tokens: n, headDim: d)
        // bfloat16 K-pair panels take half the floats of the float32 ones, in the same buffers.
        let keyPanelStride = (d + 1) / 2 * 16, valuePanelStride = (n + 1) / 2 * 16
        ComputeThreads.parallelFor(batch * heads, threads: threads, granularity: 1, minimumPerPart: 1) { part, pairs in
            let tile = workspace.scores + part * bq * bk
            let rowMax = workspace.rowMax + part * bq, rowSum = workspace.rowSum + part * bq
            let keys = workspace.packedHeads + part * perThread, values = keys + keysSize
            let queries = values + dino_packed_weight_count(d, n)
            keys.withMemoryRebound(to: UInt32.self, capacity: keysSize) { keysDot in
                values.withMemoryRebound(to: UInt32.self, capacity: dino_packed_weight_count(d, n)) { valuesDot in
                    for pair in pairs {
                        let (i, head) = (pair / heads, pair % heads)
                        let base = qkv + i * n * 3 * c + head * d
                        if dotProducts {
                            dino_pack_strided_bf16_dot(base + c, n, d, 3 * c, 1, keysDot)
                            dino_pack_strided_bf16_dot(base + 2 * c, d, n, 1, 3 * c, valuesDot)
                        } else {
                            dino_pack_strided(base + c, n, d, 3 * c, 1, keys)
                            dino_pack_strided(base + 2 * c, d, n, 1, 3 * c, values)
                        }
                        for first in stride(from: 0, to: n, by: bq) {
                            let rows = min(bq, n - first)
                            for r in 0..<rows { (queries + r * d).update(from: base + (first + r) * 3 * c, count: d) }
                            let o = out + (i * n + first) * c + head * d
                            startBlock(rows: rows, output: o, rowMax: rowMax, rowSum: rowSum)
                            for key in stride(from: 0, to: n, by: bk) {
                                let columns = min(bk, n - key)
                                // Key blocks start at multiples of 16 keys (a panel) and of 2 (a pair of values).
                                if dotProducts {
                                    dino_gemm_packed_bf16_dot_strided(queries, d, rows, d, keysDot + key / 16 * keyPanelStride,
                                                                      keyPanelStride, columns, nil, tile, bk, DINO_GEMM_STORE, nil,
                                                                      DINO_ACT_GELU)
                                } else {
                                    dino_gemm_packed_strided(queries, d, rows, d, keys + key * d, 16 * d, columns, nil, tile, bk,
                                                             DINO_GEMM_STORE, nil, DINO_ACT_GELU)
                                }
                                dino_online_softmax_block(tile, bk, rows, columns, scale, rowMax, rowSum, o, c, d)
                                if dotProducts {
                                    dino_gemm_packed_bf16_dot_strided(tile, bk, rows, columns, valuesDot + key / 2 * 16,
                                                                      valuePanelStride, d, nil, o, c, DINO_GEMM_RESIDUAL, nil,
                                                                      DINO_ACT_GELU)
                                } else {
                                    dino_gemm_packed_strided(tile, bk, rows, columns, values + key * 16, 16 * n, d, nil, o, c,
                                                             DINO_GEMM_RESIDUAL, nil, DINO_ACT_GELU)
                                }
                            }
                            dino_divide_rows(o, c, rows, d, rowSum)
                        }
                    }
                }
            }
        }
    }

    /// Starts the online softmax of a block of `rows` queries: running max -inf, sum and output
    /// (`[rows, D]`, row stride C) zero.
    private func startBlock(rows: Int, output: UnsafeMutablePointer<Float>, rowMax: UnsafeMutablePointer<Float>,
                            rowSum: UnsafeMutablePointer<Float>) {
        rowMax.update(repeating: -.infinity, count: rows)
        rowSum.update(repeating: 0, count: rows)
        for r in 0..<rows { (output + r * width).update(repeating: 0, count: headDim) }
    }

    /// The streaming attention on OpenBLAS, for CPUs without the packed kernels.
    private func streamingBLAS(qkv: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, workspace: Workspace) {
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
                startBlock(rows: rows, output: o, rowMax: rowMax, rowSum: rowSum)
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
