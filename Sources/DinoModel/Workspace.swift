import CDinoKernels
import DinoCompute
import DinoTensor

// Dimension letters in this file: B batch, N tokens per image, C hidden size, F FFN hidden width.

extension VisionTransformer {
    /// Workspaces up to this many floats (256 MB; ViT-S at 1036 px needs about 30 M, at 224 px
    /// 1.5 M) are kept for the next forward pass; larger ones are freed when the pass ends.
    static let keptWorkspaceFloats = 64 << 20

    /// The kept workspace if it has this shape, else a new one. A forward pass owns its workspace
    /// until it hands it back, so passes running at the same time each get their own.
    func takeWorkspace(_ shape: Workspace.Shape) -> Workspace {
        let kept = workspaceCache.withLock { kept -> Workspace? in
            guard let workspace = kept, workspace.shape == shape else { return nil }
            kept = nil
            return workspace
        }
        return kept ?? Workspace(shape)
    }

    /// Keeps `workspace` for the next pass: allocating, zeroing and faulting in a workspace is a
    /// measurable share of a small forward (docs/performance.md).
    func keepWorkspace(_ workspace: Workspace) {
        guard workspace.floats <= Self.keptWorkspaceFloats else { return }
        workspaceCache.withLock { $0 = workspace }
    }
}

/// The elementwise C kernels over row-major `[rows, columns]` buffers, rows split over threads.
struct RowKernels {
    let threads: Int

    private func split(_ rows: Int, _ body: (Range<Int>) -> Void) {
        ComputeThreads.parallelFor(rows, threads: threads, minimumPerPart: 32) { _, range in body(range) }
    }

    func layerNorm(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ norm: LayerNormWeights,
                   rows: Int, columns c: Int, eps: Float) {
        split(rows) { range in
            dino_layernorm(x + range.lowerBound * c, c, y + range.lowerBound * c, c, norm.weight, norm.bias, range.count, c, eps)
        }
    }

    /// `out = silu(x1) * x2` for `x12 = [x1 | x2]`.
    func swiglu(_ x12: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        split(rows) { range in
            dino_swiglu(x12 + range.lowerBound * 2 * width, nil, out + range.lowerBound * width, range.count, width)
        }
    }
}

/// Calls `body` with the array's base address, or nil for a nil array.
@inline(__always)
func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Activation buffers of one forward pass, reused by every block. Every buffer is written before
/// it is read within a pass, so a workspace serves later passes of the same shape as it is.
/// `@unchecked Sendable`: a workspace belongs to one pass at a time (see `takeWorkspace`).
final class Workspace: @unchecked Sendable {
    /// What the buffers' sizes derive from; a kept workspace serves only its own shape.
    struct Shape: Equatable {
        var rows: Int
        var hidden: Int
        var ffnWidth: Int
        var swiglu: Bool
        var patchRows: Int
        var patchColumns: Int
        var threads: Int
        var scoresPerThread: Int
        var rowStatisticsPerThread: Int
        var packedHeadPerThread: Int
    }

    let shape: Shape
    /// Floats in all buffers together.
    let floats: Int
    /// Residual stream `[B * N, C]`.
    let x: UnsafeMutablePointer<Float>
    /// LayerNorm output `[B * N, C]`.
    let normed: UnsafeMutablePointer<Float>
    /// Fused projections `[B * N, 3C]`.
    let qkv: UnsafeMutablePointer<Float>
    /// Attention output, heads side by side `[B * N, C]`.
    let attention: UnsafeMutablePointer<Float>
    /// Branch output before the residual add `[B * N, C]`.
    let branch: UnsafeMutablePointer<Float>
    /// FFN hidden activations `[B * N, F]` (`[B * N, 2F]` for SwiGLU).
    let hidden: UnsafeMutablePointer<Float>
    /// SwiGLU gate output `[B * N, F]`.
    let gate: UnsafeMutablePointer<Float>
    /// Attention scores per thread: `[N, N]` when probabilities are kept, else one block.
    let scores: UnsafeMutablePointer<Float>
    /// Running max and sum of the streaming softmax, per thread one query block each.
    let rowMax: UnsafeMutablePointer<Float>
    let rowSum: UnsafeMutablePointer<Float>
    /// Packed keys and values of one head and a copied block of queries, per thread (packed-kernel attention).
    let packedHeads: UnsafeMutablePointer<Float>
    /// im2col patches `[B * h * w, K]`.
    let patches: UnsafeMutablePointer<Float>
    /// Patch projections `[B * h * w, C]`.
    let embedded: UnsafeMutablePointer<Float>
    private let all: [UnsafeMutablePointer<Float>]

    init(_ shape: Shape) {
        self.shape = shape
        var floats = 0
        func make(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
            floats += max(count, 1)
            return pointer
        }
        let (rows, c, f) = (shape.rows, shape.hidden, shape.ffnWidth)
        x = make(rows * c)
        normed = make(rows * c)
        qkv = make(rows * 3 * c)
        attention = make(rows * c)
        branch = make(rows * c)
        hidden = make(rows * (shape.swiglu ? 2 * f : f))
        gate = make(shape.swiglu ? rows * f : 0)
        scores = make(shape.threads * shape.scoresPerThread)
        rowMax = make(shape.threads * shape.rowStatisticsPerThread)
        rowSum = make(shape.threads * shape.rowStatisticsPerThread)
        packedHeads = make(shape.threads * shape.packedHeadPerThread)
        patches = make(shape.patchRows * shape.patchColumns)
        embedded = make(shape.patchRows * c)
        all = [x, normed, qkv, attention, branch, hidden, gate, scores, rowMax, rowSum, packedHeads, patches, embedded]
        self.floats = floats
    }

    deinit {
        for pointer in all { pointer.deallocate() }
    }
}
