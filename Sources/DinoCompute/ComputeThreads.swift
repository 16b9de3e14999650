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
    package static let singleThreadedBLAS: Void = openblas_set_num_threads(1)

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
