import ArgumentParser
import DinoModel
import DinoTensor
import Foundation

/// Times the forward pass of a model folder; `Scripts/bench_reference.py` runs it beside
/// PyTorch and ONNX Runtime in one run and prints the ratios.
@main
struct DinoBenchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dino-bench",
        abstract: "Time the DINOv2 forward pass (model load and warm-up not counted).")

    @Option(help: "Model folder (config.json + model.safetensors).")
    var model: String

    @Option(help: "Input size in pixels, H or HxW (multiples of the patch size).")
    var size: String = "224"

    @Option(help: "Images per forward pass.")
    var batch: Int = 1

    @Option(help: "Timed forward passes.")
    var runs: Int = 10

    @Option(help: "Untimed forward passes first.")
    var warmup: Int = 2

    @Option(help: "GEMM threads.")
    var threads: Int = 2

    @Flag(help: "Print one JSON object (median_ms, min_ms, gflops, peak_rss_mb, runs_ms).")
    var json = false

    func run() throws {
        let parts = size.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 1 || parts.count == 2 else { throw ValidationError("--size must be H or HxW, got \(size)") }
        let (height, width) = (parts[0], parts.count == 2 ? parts[1] : parts[0])
        ComputeThreads.set(threads)
        let vit = try VisionTransformer(directory: URL(fileURLWithPath: model))
        let channels = vit.configuration.numChannels
        // A fixed pseudo-random input (LCG), so every run sees the same values.
        var state: UInt32 = 12345
        let pixels = Tensor(shape: [batch, channels, height, width], scalars: (0..<(batch * channels * height * width)).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 24) * 4 - 2
        })
        for _ in 0..<warmup { _ = try vit(pixels) }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try vit(pixels)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        let sorted = times.sorted()
        let median = sorted.isEmpty ? 0 : (sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2)
        let minimum = sorted.first ?? 0
        let gflops = median > 0 ? vit.forwardFLOPs(batch: batch, height: height, width: width) / (median * 1e6) : 0
        let rss = peakResidentMegabytes()
        if json {
            let list = times.map { String(format: "%.3f", $0) }.joined(separator: ", ")
            print(String(format: "{\"median_ms\": %.3f, \"min_ms\": %.3f, \"gflops\": %.2f, \"peak_rss_mb\": %.1f, \"runs_ms\": [%@]}",
                         median, minimum, gflops, rss, list))
        } else {
            print(String(format: "%@ %dx%d batch %d, %d threads: median %.2f ms, min %.2f ms, %.1f GFLOP/s, peak RSS %.1f MB",
                         model, height, width, batch, threads, median, minimum, gflops, rss))
        }
    }

    /// Peak resident set size of this process (`VmHWM`), in MB.
    func peakResidentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kilobytes / 1024
        }
        return 0
    }
}
