import ArgumentParser
import DinoModel
import Foundation

/// `dino bench`: latency, throughput and memory of the forward pass.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the forward pass of a model (load and warm-up not counted).",
        discussion: """
            Prints the median and minimum latency over --runs passes on a fixed pseudo-random \
            input, the GFLOP/s at the median (GEMM FLOPs of the forward pass), and the peak \
            resident memory of the process. --json prints one JSON object with median_ms, \
            min_ms, gflops, peak_rss_mb and runs_ms instead. Scripts/bench_reference.py runs \
            this side by side with PyTorch and ONNX Runtime.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Input size in pixels, H or HxW (multiples of the patch size).")
    var size: String = "224"

    @Option(name: .long, help: "Images per forward pass.")
    var batch = 1

    @Option(name: .long, help: "Timed forward passes.")
    var runs = 10

    @Option(name: .long, help: "Untimed forward passes first.")
    var warmup = 2

    @Option(name: .long, help: "Weight precision: fp32.")
    var precision = "fp32"

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Flag(name: .long, help: "Also measure the sgemm rate of the model's largest GEMM shape (gemm_gflops: OpenBLAS split over rows by this library; gemm_gflops_openblas: OpenBLAS's own threads; gemm_gflops_packed: the packed AVX2 kernel, where it runs).")
    var gemmRate = false

    func validate() throws {
        guard parsedSize != nil else { throw ValidationError("--size must be H or HxW, got \(size)") }
        if batch < 1 || runs < 1 || warmup < 0 { throw ValidationError("--batch and --runs must be at least 1, --warmup at least 0") }
        guard precision == "fp32" else { throw ValidationError("--precision \(precision) is not available; see the README (fp32 only)") }
    }

    private var parsedSize: (Int, Int)? {
        let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 1 || parts.count == 2, parts.allSatisfy({ $0 > 0 }) else { return nil }
        return (parts[0], parts.count == 2 ? parts[1] : parts[0])
    }

    func run() throws {
        let (model, _) = try modelOptions.load()
        guard let (height, width) = parsedSize else { return }
        let result = try ForwardBenchmark.measure(model, batch: batch, height: height, width: width, runs: runs, warmup: warmup)
        let extra = gemmRate
            ? ForwardBenchmark.gemmReport(model, batch: batch, height: height, width: width, threads: ComputeThreads.current) : [:]
        if json {
            print(result.json(extra: extra))
        } else {
            print(String(format: "%@ %dx%d, batch %d, %d threads: median %.2f ms, min %.2f ms, %.1f GFLOP/s, %.1f images/s, peak RSS %.1f MB",
                         modelOptions.model, height, width, batch, ComputeThreads.current, result.median, result.minimum,
                         result.gflops, Double(batch) * 1000 / max(result.median, 1e-9), result.peakResidentMegabytes))
            if let split = extra["gemm_gflops"], let native = extra["gemm_gflops_openblas"] {
                let packed = extra["gemm_gflops_packed"]
                let best = max(split, native, packed ?? 0)
                print(String(format: "largest GEMM %.0fx%.0fx%.0f: %.1f GFLOP/s OpenBLAS row split, %.1f OpenBLAS threads%@; forward reaches %.0f%% of the best",
                             extra["gemm_m"] ?? 0, extra["gemm_n"] ?? 0, extra["gemm_k"] ?? 0, split, native,
                             packed.map { String(format: ", %.1f packed kernel", $0) } ?? "", 100 * result.gflops / best))
            }
        }
    }
}
