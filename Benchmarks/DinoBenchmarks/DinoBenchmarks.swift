import ArgumentParser
import DinoModel
import Foundation

/// Times the forward pass of a model folder; `Scripts/bench_reference.py` runs it beside
/// PyTorch and ONNX Runtime in one run and prints the ratios. (`dino bench` is the same
/// measurement inside the main tool.)
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

    @Option(help: "Compute threads.")
    var threads: Int = 2

    @Flag(help: "Print one JSON object (median_ms, min_ms, gflops, peak_rss_mb, runs_ms).")
    var json = false

    @Flag(help: "Also measure the sgemm rate of the model's largest GEMM shape (gemm_gflops, gemm_gflops_openblas).")
    var gemmRate = false

    func run() throws {
        let parts = size.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 1 || parts.count == 2 else { throw ValidationError("--size must be H or HxW, got \(size)") }
        let (height, width) = (parts[0], parts.count == 2 ? parts[1] : parts[0])
        ComputeThreads.set(threads)
        let vit = try VisionTransformer(directory: URL(fileURLWithPath: model))
        let result = try ForwardBenchmark.measure(vit, batch: batch, height: height, width: width, runs: runs, warmup: warmup)
        let extra = gemmRate ? ForwardBenchmark.gemmReport(vit, batch: batch, height: height, width: width, threads: threads) : [:]
        print(json ? result.json(extra: extra) : String(
            format: "%@ %dx%d batch %d, %d threads: median %.2f ms, min %.2f ms, %.1f GFLOP/s, peak RSS %.1f MB",
            model, height, width, batch, threads, result.median, result.minimum, result.gflops, result.peakResidentMegabytes))
    }
}
