import CDinoKernels
import COpenBLAS
import Dispatch
import Foundation
import Synchronization

/// How many threads a forward pass uses. Process-wide.
///
/// GEMMs, attention heads and elementwise kernels are split over rows by this library's own
/// workers, each calling single-threaded OpenBLAS: on small ViT shapes that is much faster than
/// OpenBLAS's internal threading, and it keeps two thread pools from fighting over the cores.
public enum ComputeThreads {
    private static let count = Atomic<Int>(ProcessInfo.processInfo.activeProcessorCount)

    /// Sets the number of threads (at least 1).
    public static func set(_ threads: Int) {
        count.store(max(1, threads), ordering: .relaxed)
    }

    /// The number of threads in use.
    public static var current: Int { count.load(ordering: .relaxed) }

    /// OpenBLAS itself stays single-threaded; this library parallelises around it.
    static let singleThreadedBLAS: Void = openblas_set_num_threads(1)

    /// Runs `body(part, slice)` on at most `threads` contiguous slices of `0..<total` in
    /// parallel (fewer when the work is small), each slice a multiple of `granularity` except
    /// the last; `part` numbers the slices from 0.
    public static func parallelFor(_ total: Int, threads: Int, granularity: Int = 8, minimumPerPart: Int = 16,
                                   _ body: (_ part: Int, _ slice: Range<Int>) -> Void) {
        // Workers call OpenBLAS themselves; it must not start threads of its own.
        _ = singleThreadedBLAS
        let maxParts = max(1, min(threads, total / max(minimumPerPart, 1)))
        if maxParts <= 1 {
            body(0, 0..<total)
            return
        }
        let chunk = ((total + maxParts - 1) / maxParts + granularity - 1) / granularity * granularity
        let parts = (total + chunk - 1) / chunk
        // Both runners return only when every part is done, so `body` and the buffers it
        // captures outlive the parallel region.
        withoutActuallyEscaping(body) { body in
            var job = ParallelJob(body: body, chunk: chunk, total: total)
            let ran = usesThreadPool ? withUnsafeMutablePointer(to: &job) { dino_pool_run(parts, runParallelPart, $0) } : DINO_POOL_BUSY
            if ran == DINO_POOL_RAN { return }
            if ran == DINO_POOL_NESTED {
                // A region inside a part of another region: the pool's threads are busy with
                // that one, so this thread runs every part itself.
                for part in 0..<parts { job.run(part) }
                return
            }
            // The pool serves another thread's job (or is switched off): a general queue.
            let shared = UncheckedSendable(job)
            DispatchQueue.concurrentPerform(iterations: parts) { shared.value.run($0) }
        }
    }

    private static let poolSwitch = Atomic<Bool>(ProcessInfo.processInfo.environment["DINO_THREAD_POOL"] != "dispatch")

    /// Whether parallel regions run on the pool of `dino_thread_pool.h`, whose workers spin
    /// briefly between regions (the default), or on Dispatch's `concurrentPerform`
    /// (`DINO_THREAD_POOL=dispatch` at start-up, or set here, to compare the two).
    public static var usesThreadPool: Bool {
        get { poolSwitch.load(ordering: .relaxed) }
        set { poolSwitch.store(newValue, ordering: .relaxed) }
    }
}

/// One parallel region of `ComputeThreads.parallelFor`: part `i` covers rows
/// `i * chunk ..< min(total, (i + 1) * chunk)`.
private struct ParallelJob {
    let body: (_ part: Int, _ slice: Range<Int>) -> Void
    let chunk: Int
    let total: Int

    func run(_ part: Int) {
        let start = part * chunk
        body(part, start..<min(total, start + chunk))
    }
}

/// The pool's entry point: `context` points at a `ParallelJob`.
private func runParallelPart(_ context: UnsafeMutableRawPointer?, _ part: Int) {
    context?.assumingMemoryBound(to: ParallelJob.self).pointee.run(part)
}

/// Carries a value into a synchronous parallel region (see `ComputeThreads.parallelFor`).
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Whether the packed-weight kernels (AVX2 or AVX-512) run rather than OpenBLAS: linear layers
/// pack their weights at load, and attention packs each head's keys and values.
var packedKernelsActive: Bool { dino_kernels_active_isa() != DINO_ISA_PORTABLE }

/// Limits checked before a forward pass allocates its activations. Process-wide.
public enum ComputeLimits {
    /// Default largest number of tokens (batch x sequence) in one forward pass: a 4K frame of
    /// ViT-L/14 is about 42 000 tokens, 65 536 tokens of ViT-g need about 4.5 GB of activations.
    public static let defaultMaxTokens = 65_536
    private static let maxTokensValue = Atomic<Int>(defaultMaxTokens)

    /// The largest `B * N` a forward pass accepts.
    public static var maxTokens: Int {
        get { maxTokensValue.load(ordering: .relaxed) }
        set { maxTokensValue.store(max(1, newValue), ordering: .relaxed) }
    }
}

extension LinearWeights {
    /// What a GEMM does with `x · weightᵀ + bias` besides storing it.
    enum Epilogue {
        /// `out = x · wᵀ + bias`.
        case store
        /// `out = act(x · wᵀ + bias)`.
        case activation(dino_activation)
        /// `out += gamma * (x · wᵀ + bias)` (LayerScale, or a plain add without gamma).
        case residual(gamma: [Float]?)
    }

    /// `out[R, outFeatures] = x[R, inFeatures] · weightᵀ + bias`, finished by `epilogue`. Rows
    /// are split over the compute threads.
    ///
    /// Packed weights run the AVX2 or AVX-512 kernel with the epilogue fused (bf16 weights too,
    /// where the CPU has either; without them they are widened to float32 for this call). Otherwise OpenBLAS computes
    /// the product: each thread broadcasts the bias into its output rows and the GEMM
    /// accumulates onto them (beta = 1), and the epilogue follows as its own pass (a residual
    /// goes through `scratch`, `[R, outFeatures]`).
    ///
    /// - Parameters:
    ///   - x: `[R, inFeatures]`, row stride `ldx` (default `inFeatures`).
    ///   - out: `[R, outFeatures]`, row stride `ldo` (default `outFeatures`).
    func apply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int? = nil, into out: UnsafeMutablePointer<Float>, ldo: Int? = nil,
               epilogue: Epilogue = .store, scratch: UnsafeMutablePointer<Float>? = nil, threads: Int = 1) {
        let lda = ldx ?? inFeatures
        let ldc = ldo ?? outFeatures
        withOptionalPointer(bias) { biasPointer in
            // The packed kernels, fp32 or bf16 weights, with the epilogue fused.
            let kernel: ((UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>, dino_gemm_epilogue, UnsafePointer<Float>?,
                          dino_activation) -> Void)?
            if let packed {
                kernel = { x, ldx, rows, out, mode, gamma, act in
                    dino_gemm_packed(x, ldx, rows, inFeatures, packed, outFeatures, biasPointer, out, ldc, mode, gamma, act)
                }
            } else if let packedBF16Dot {
                // AVX512-BF16 where the CPU has it, else the portable model of its arithmetic.
                kernel = { x, ldx, rows, out, mode, gamma, act in
                    dino_gemm_packed_bf16_dot(x, ldx, rows, inFeatures, packedBF16Dot, outFeatures, biasPointer, out, ldc, mode, gamma, act)
                }
            } else if let packedBF16, packedKernelsActive {
                kernel = { x, ldx, rows, out, mode, gamma, act in
                    dino_gemm_packed_bf16(x, ldx, rows, inFeatures, packedBF16, outFeatures, biasPointer, out, ldc, mode, gamma, act)
                }
            } else {
                kernel = nil
            }
            if let kernel {
                let (mode, activation, gamma): (dino_gemm_epilogue, dino_activation, [Float]?) = switch epilogue {
                case .store: (DINO_GEMM_STORE, DINO_ACT_GELU, nil)
                case .activation(let act): (DINO_GEMM_ACTIVATION, act, nil)
                case .residual(let gamma): (DINO_GEMM_RESIDUAL, DINO_ACT_GELU, gamma)
                }
                withOptionalPointer(gamma) { gammaPointer in
                    ComputeThreads.parallelFor(rows, threads: threads, granularity: 6, minimumPerPart: 12) { _, range in
                        kernel(x + range.lowerBound * lda, lda, range.count, out + range.lowerBound * ldc, mode, gammaPointer, activation)
                    }
                }
                return
            }
            let target: UnsafeMutablePointer<Float>
            let targetStride: Int
            if case .residual = epilogue {
                guard let scratch else { preconditionFailure("a residual GEMM without packed weights needs scratch") }
                (target, targetStride) = (scratch, outFeatures)
            } else {
                (target, targetStride) = (out, ldc)
            }
            // bf16 weights without the packed kernels are widened for this call (the portable path).
            unpackedWeight().withUnsafeBufferPointer { w in
                guard let base = w.baseAddress else { return }
                ComputeThreads.parallelFor(rows, threads: threads) { _, range in
                    let c = target + range.lowerBound * targetStride
                    if let biasPointer { dino_fill_rows(c, targetStride, biasPointer, range.count, outFeatures) }
                    // The weight stays in PyTorch's [out, in] layout and is read transposed.
                    sgemm(transposeB: true, m: range.count, n: outFeatures, k: inFeatures, alpha: 1,
                          a: x + range.lowerBound * lda, lda: lda, b: base, ldb: inFeatures,
                          beta: biasPointer == nil ? 0 : 1, c: c, ldc: targetStride)
                    switch epilogue {
                    case .store:
                        break
                    case .activation(let act):
                        for r in 0..<range.count { dino_bias_activation(c + r * targetStride, nil, 1, outFeatures, act) }
                    case .residual(let gamma):
                        withOptionalPointer(gamma) { g in
                            for r in 0..<range.count {
                                dino_residual(out + (range.lowerBound + r) * ldc, c + r * targetStride, nil, g, 1, outFeatures)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Row-major `C[M, N] = alpha · A[M, K] · op(B) + beta · C` on raw pointers with leading
/// dimensions, single-threaded.
@inline(__always)
func sgemm(
    transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    _ = ComputeThreads.singleThreadedBLAS
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
