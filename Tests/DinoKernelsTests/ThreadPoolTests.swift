import CDinoKernels
import Foundation
import Testing

/// What the pool's parts record: how often each part ran, and on how many distinct threads.
private final class PartLog: @unchecked Sendable {
    let lock = NSLock()
    var counts: [Int]
    var threads = Set<UInt64>()
    var nestedResults: [Int32] = []
    var nested = false
    /// Keeps the parts' busy work from being optimised away.
    var sink = 0.0

    init(parts: Int) { counts = Array(repeating: 0, count: parts) }
}

private func recordPart(_ context: UnsafeMutableRawPointer?, _ part: Int) {
    guard let context else { return }
    let log = Unmanaged<PartLog>.fromOpaque(context).takeUnretainedValue()
    var nestedResult: Int32? = nil
    if log.nested {
        // A region inside a part must not run on the pool (its threads are all busy here).
        nestedResult = dino_pool_run(3, { _, _ in }, nil)
    }
    // Long enough that a worker joins before the caller has claimed every part.
    var spin = 0.0
    for i in 0..<20_000 { spin += Double(i).squareRoot() }
    log.lock.lock()
    log.counts[part] += 1
    log.threads.insert(UInt64(pthread_self()))
    log.sink += spin
    if let nestedResult { log.nestedResults.append(nestedResult) }
    log.lock.unlock()
}

private func runOnPool(parts: Int, nested: Bool = false) -> (result: Int32, log: PartLog) {
    let log = PartLog(parts: parts)
    log.nested = nested
    let result = withExtendedLifetime(log) { dino_pool_run(parts, recordPart, Unmanaged.passUnretained(log).toOpaque()) }
    return (result, log)
}

/// The pool is process-wide: other tests' forward passes may hold it. Give them a moment.
private func waitForOtherJobs() { usleep(1000) }

@Suite("Kernels: the compute thread pool", .serialized)
struct ThreadPoolTests {
    @Test("every part runs exactly once, for more parts than cores too", arguments: [1, 2, 3, 5, 17, 64])
    func everyPartOnce(parts: Int) {
        for _ in 0..<20 {
            let (result, log) = runOnPool(parts: parts)
            // 0 only when another test's job holds the pool; then nothing may have run.
            #expect(result == 1 || result == 0)
            #expect(log.counts == Array(repeating: result == 1 ? 1 : 0, count: parts))
        }
    }

    @Test("zero parts is a finished job")
    func zeroParts() {
        #expect(dino_pool_run(0, recordPart, nil) == 1)
    }

    @Test("several parts run on more than one thread when there are several cores")
    func usesWorkers() {
        guard ProcessInfo.processInfo.activeProcessorCount > 1 else { return }
        var threads = Set<UInt64>()
        let deadline = Date().addingTimeInterval(60)
        while threads.count < 2, Date() < deadline {
            let (result, log) = runOnPool(parts: 8)
            if result == 1 { threads.formUnion(log.threads) } else { waitForOtherJobs() }
        }
        #expect(threads.count >= 2)
    }

    @Test("a region inside a part is refused with -1, to be run on that thread")
    func nestedRegion() {
        var ran = 0
        let deadline = Date().addingTimeInterval(60)
        while ran < 10, Date() < deadline {
            let (result, log) = runOnPool(parts: 4, nested: true)
            guard result == 1 else { waitForOtherJobs(); continue }
            ran += 1
            #expect(log.nestedResults == [-1, -1, -1, -1])
            #expect(log.counts == [1, 1, 1, 1])
        }
        #expect(ran == 10)
    }

    @Test("callers on 8 threads at once: each job runs once (on the pool or refused with 0)")
    func concurrentCallers() async {
        // Rounds repeat (up to a minute) while other tests keep the pool busy for every job.
        let deadline = Date().addingTimeInterval(60)
        var outcomes = (0, 0)
        repeat {
            outcomes = await Self.concurrentRound()
            print("thread pool: 1600 jobs from 8 threads, \(outcomes.0) ran on the pool, \(outcomes.1) refused as busy")
            #expect(outcomes.0 + outcomes.1 == 1600)
            if outcomes.0 == 0 { waitForOtherJobs() }
        } while outcomes.0 == 0 && Date() < deadline
        #expect(outcomes.0 > 0)
    }

    /// 200 jobs from each of 8 threads at once: how many ran completely and how many were
    /// refused with nothing run.
    static func concurrentRound() async -> (Int, Int) {
        await withTaskGroup(of: (Int, Int).self) { group in
            for task in 0..<8 {
                group.addTask {
                    var ran = 0, refused = 0
                    for call in 0..<200 {
                        let parts = 1 + (task + call) % 7
                        let (result, log) = runOnPool(parts: parts)
                        if result == 1, log.counts == Array(repeating: 1, count: parts) { ran += 1 }
                        if result == 0, log.counts == Array(repeating: 0, count: parts) { refused += 1 }
                    }
                    return (ran, refused)
                }
            }
            var total = (0, 0)
            for await (ran, refused) in group { total = (total.0 + ran, total.1 + refused) }
            return total
        }
    }
}
