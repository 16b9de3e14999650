import DinoTensor
import Dispatch
import Foundation

/// Timing of repeated forward passes, for `dino bench` and `dino-bench`.
public struct ForwardBenchmark: Sendable {
    /// Milliseconds of each timed pass.
    public var runs: [Double]
    /// Floating-point operations of one pass (`VisionTransformer.forwardFLOPs`).
    public var flops: Double
    /// Peak resident set size of the process so far, in MB.
    public var peakResidentMegabytes: Double

    /// Median of `runs` in ms.
    public var median: Double {
        let sorted = runs.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Fastest run in ms.
    public var minimum: Double { runs.min() ?? 0 }

    /// GFLOP/s at the median time.
    public var gflops: Double { median > 0 ? flops / (median * 1e6) : 0 }

    /// Times `runs` forward passes of `model` on a fixed pseudo-random input `[batch, 3, height, width]`
    /// after `warmup` untimed passes.
    public static func measure(_ model: VisionTransformer, batch: Int, height: Int, width: Int, runs: Int, warmup: Int) throws(DinoModelError) -> ForwardBenchmark {
        let channels = model.configuration.numChannels
        var state: UInt32 = 12345
        let pixels = Tensor(shape: [batch, channels, height, width], scalars: (0..<(batch * channels * height * width)).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 24) * 4 - 2
        })
        for _ in 0..<warmup { _ = try model(pixels) }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model(pixels)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return ForwardBenchmark(runs: times, flops: model.forwardFLOPs(batch: batch, height: height, width: width),
                                peakResidentMegabytes: peakResidentMegabytes())
    }

    /// Peak resident set size of this process (`VmHWM` of /proc/self/status), in MB; 0 where unavailable.
    public static func peakResidentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (line.split(separator: " ").compactMap { Double($0) }.first ?? 0) / 1024
        }
        return 0
    }

    /// One JSON object: `median_ms`, `min_ms`, `gflops`, `peak_rss_mb`, `runs_ms`.
    public var json: String {
        let list = runs.map { String(format: "%.3f", $0) }.joined(separator: ", ")
        return String(format: "{\"median_ms\": %.3f, \"min_ms\": %.3f, \"gflops\": %.2f, \"peak_rss_mb\": %.1f, \"runs_ms\": [%@]}",
                      median, minimum, gflops, peakResidentMegabytes, list)
    }
}
