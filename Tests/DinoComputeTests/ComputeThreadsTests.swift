import DinoCompute
import Testing

@Suite("Compute threads: parallel regions")
struct ComputeThreadsTests {
    @Test("parallelFor covers every index once, nested regions included, on the pool and on Dispatch")
    func coverage() {
        for usePool in [true, false] {
            ComputeThreads.usesThreadPool = usePool
            defer { ComputeThreads.usesThreadPool = true }
            for (total, threads, granularity) in [(0, 2, 8), (1, 2, 8), (13, 2, 6), (261, 2, 6), (1000, 3, 8), (97, 8, 1)] {
                var visits = [Int](repeating: 0, count: total)
                var nestedVisits = [Int](repeating: 0, count: total * 3)
                visits.withUnsafeMutableBufferPointer { visits in
                    nestedVisits.withUnsafeMutableBufferPointer { nested in
                        ComputeThreads.parallelFor(total, threads: threads, granularity: granularity, minimumPerPart: 1) { _, slice in
                            for i in slice { visits[i] += 1 }
                            // A region inside a region (slices are disjoint, so are these).
                            ComputeThreads.parallelFor(slice.count * 3, threads: threads, granularity: 1, minimumPerPart: 1) { _, inner in
                                for j in inner { nested[slice.lowerBound * 3 + j] += 1 }
                            }
                        }
                    }
                }
                #expect(visits == Array(repeating: 1, count: total), "pool \(usePool), total \(total), threads \(threads)")
                #expect(nestedVisits == Array(repeating: 1, count: total * 3), "pool \(usePool), total \(total), threads \(threads)")
            }
        }
    }
}
