import DinoCompute
import DinoModel
import DinoTensor
import Foundation
import Testing

@Suite("Concurrent use of one model")
struct ConcurrencyTests {
    @Test("1000 mixed-size inferences from 8 tasks equal the sequential results")
    func stress() async throws {
        let model = try VisionTransformer(directory: Fixtures.folder("reg4_downsample"))
        let sizes = [(28, 28), (56, 42), (14, 112), (84, 84), (42, 70), (112, 56), (28, 140), (70, 70)]
        let inputs: [Tensor] = sizes.enumerated().map { index, size in
            let count = 3 * size.0 * size.1 * (index % 2 + 1)
            return Tensor(shape: [index % 2 + 1, 3, size.0, size.1],
                          scalars: (0..<count).map { Float((($0 + index) * 2654435761 % 4093)) / 2046 - 1 })
        }
        let expected = try inputs.map { try model($0).lastHiddenState }
        let start = Date()
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for call in 0..<125 {
                        let index = (task * 7 + call * 3) % inputs.count
                        if try model(inputs[index]).lastHiddenState != expected[index] { wrong += 1 }
                    }
                    return wrong
                }
            }
            return try await group.reduce(0, +)
        }
        print(String(format: "concurrency: 1000 inferences from 8 tasks in %.2f s, %d differing from sequential", Date().timeIntervalSince(start), mismatches))
        #expect(mismatches == 0)
    }
}

@Suite("Compute threads")
struct ComputeThreadsTests {
    @Test("a forward pass gives the same bits with 1, 2, 3 and 5 compute threads")
    func threadCountInvariance() throws {
        let model = try VisionTransformer(directory: Fixtures.folder("reg4_downsample"))
        let count = 2 * 3 * 70 * 56
        let pixels = Tensor(shape: [2, 3, 70, 56], scalars: (0..<count).map { Float(($0 * 40503) % 2039) / 1019 - 1 })
        let initial = ComputeThreads.current
        defer { ComputeThreads.set(initial) }
        var outputs: [Tensor] = []
        for threads in [1, 2, 3, 5] {
            ComputeThreads.set(threads)
            outputs.append(try model(pixels).lastHiddenState)
        }
        #expect(outputs.allSatisfy { $0 == outputs[0] })
    }

    @Test("a forward pass gives the same bits on the pool and on Dispatch")
    func poolAndDispatchAgree() throws {
        let model = try VisionTransformer(directory: Fixtures.folder("reg4_downsample"))
        let count = 2 * 3 * 56 * 42
        let pixels = Tensor(shape: [2, 3, 56, 42], scalars: (0..<count).map { Float(($0 * 2654435761) % 4093) / 2046 - 1 })
        ComputeThreads.usesThreadPool = false
        let viaDispatch = try model(pixels).lastHiddenState
        ComputeThreads.usesThreadPool = true
        let viaPool = try model(pixels).lastHiddenState
        #expect(viaPool == viaDispatch)
    }
}
