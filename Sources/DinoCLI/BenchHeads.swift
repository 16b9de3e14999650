import ArgumentParser
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Dispatch
import Foundation

/// `dino bench --head NAME=ARG ...`: each head alone (its backbone pass and its prediction, no
/// files) against all of them together through one `HeadPipeline`, interleaved run by run.
struct HeadsBenchmark {
    let heads: [any ImageHead]
    let names: [String]
    let batch: [ImageItem]

    /// Heads from `--head` specs on `model`, on a fixed pseudo-random image of `height x width`
    /// prepared with an exact resize.
    init(specs: [String], model: VisionTransformer, modelFolder: URL, batch size: Int, height: Int, width: Int) throws {
        var heads: [any ImageHead] = []
        var names: [String] = []
        for spec in specs {
            let (name, argument) = try PredictCommand.split(spec)
            guard let registration = registeredHeads.first(where: { $0.name == name }) else {
                throw ValidationError("--head \(spec): " + PipelineError.unknownHead(name: name, known: registeredHeads.map(\.name)).description)
            }
            heads.append(try registration.load(argument: argument, model: model, modelFolder: modelFolder))
            names.append(name)
        }
        var state: UInt32 = 2024
        let bytes = (0..<(3 * height * width)).map { _ -> UInt8 in
            state = state &* 1_664_525 &+ 1_013_904_223
            return UInt8(truncatingIfNeeded: state >> 24)
        }
        let image = RGBImage(width: width, height: height, pixels: bytes)
        let prepared = try Preprocessing.size(height: height, width: width).prepare(image, patchSize: model.configuration.patchSize)
        self.heads = heads
        self.names = names
        batch = (0..<size).map { ImageItem(url: URL(fileURLWithPath: "bench-\($0).png"), image: image, prepared: prepared, outputStem: "bench-\($0)") }
    }

    /// Median milliseconds of each head alone and of all together, over `runs` interleaved rounds.
    func measure(runs: Int, warmup: Int) throws -> (alone: [Double], together: Double) {
        let singles = heads.map { HeadPipeline(heads: [$0], folder: URL(fileURLWithPath: "/dev/null")) }
        let all = HeadPipeline(heads: heads, folder: URL(fileURLWithPath: "/dev/null"))
        func time(_ pipeline: HeadPipeline) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try pipeline.predictions(batch)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
        for _ in 0..<warmup {
            for pipeline in singles + [all] { _ = try time(pipeline) }
        }
        var alone = [[Double]](repeating: [], count: heads.count)
        var together: [Double] = []
        for _ in 0..<runs {
            for (index, pipeline) in singles.enumerated() { alone[index].append(try time(pipeline)) }
            together.append(try time(all))
        }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        return (alone.map(median), median(together))
    }
}
