import ArgumentParser
import DinoCompute
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
            min_ms, gflops, peak_rss_mb and runs_ms instead, with the machine: cpu (CPUID's \
            brand string), cpu_family, cpu_model, isa (the kernels chosen: avx512, avx2 or \
            portable), avx512_bf16 and amx. Scripts/bench_reference.py runs \
            this side by side with PyTorch and ONNX Runtime. --precision bf16 times the model \
            with bfloat16 weights; --accuracy then also loads the fp32 model and reports the \
            cosine similarity and largest error of every output against it (after the timing, \
            so the peak RSS is the timed model's).
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

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Flag(name: .long, help: "Also measure the sgemm rate of the model's largest GEMM shape (gemm_gflops: OpenBLAS split over rows by this library; gemm_gflops_openblas: OpenBLAS's own threads; gemm_gflops_packed: the packed AVX2 or AVX-512 kernel, where it runs), and the FMA peak of the same threads (fma_peak_gflops: a loop of independent FMAs with no loads on the active instruction set's vectors, the ceiling of its kernels; on AVX-512 also fma_peak_gflops_avx2).")
    var gemmRate = false

    @Flag(name: .long, help: "Compare every output (hidden states, attentions, pooler, every stage's feature map) with the fp32 model's on the benchmark input.")
    var accuracy = false

    @Option(name: .customLong("head"), help: ArgumentHelp(
        "Time heads instead of the bare forward: each head alone (its pass and prediction) and all of them on one pass, interleaved (NAME=ARGUMENT as for predict; repeat).",
        valueName: "name=argument"))
    var heads: [String] = []

    func validate() throws {
        if !heads.isEmpty && (accuracy || gemmRate) { throw ValidationError("--head times heads; --accuracy and --gemm-rate go with the bare forward") }
        guard parsedSize != nil else { throw ValidationError("--size must be H or HxW, got \(size)") }
        if batch < 1 || runs < 1 || warmup < 0 { throw ValidationError("--batch and --runs must be at least 1, --warmup at least 0") }
    }

    /// Output groups of the accuracy report: JSON key suffix and output-name prefix.
    static let accuracyGroups = [("feature_maps", "feature_maps."), ("last_hidden_state", "last_hidden_state"),
                                 ("pooler_output", "pooler_output"), ("hidden_states", "hidden_states."),
                                 ("attentions", "attentions.")]

    private var parsedSize: (Int, Int)? {
        let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 1 || parts.count == 2, parts.allSatisfy({ $0 > 0 }) else { return nil }
        return (parts[0], parts.count == 2 ? parts[1] : parts[0])
    }

    func run() throws {
        let (model, folder) = try modelOptions.load()
        guard let (height, width) = parsedSize else { return }
        if !heads.isEmpty {
            try runHeads(model, folder: folder, height: height, width: width)
            return
        }
        let result = try ForwardBenchmark.measure(model, batch: batch, height: height, width: width, runs: runs, warmup: warmup)
        let extra = gemmRate
            ? ForwardBenchmark.gemmReport(model, batch: batch, height: height, width: width, threads: ComputeThreads.current) : [:]
        var comparison: PrecisionComparison? = nil
        if accuracy {
            var fp32 = modelOptions.compute
            fp32.precision = WeightPrecision.fp32.rawValue
            let (reference, _) = try ModelOptions.load(modelOptions.model, compute: fp32)
            let pixels = ForwardBenchmark.input(channels: model.configuration.numChannels, batch: batch, height: height, width: width)
            comparison = try PrecisionComparison.compare(reference: reference, candidate: model, pixels: pixels)
        }
        let machine = MachineReport.current
        if json {
            var fields = extra
            if let comparison {
                for (key, prefix) in Self.accuracyGroups {
                    fields["cosine_min_\(key)"] = comparison.minimumCosine(prefix: prefix)
                    fields["max_abs_error_\(key)"] = comparison.maximumError(prefix: prefix)
                }
            }
            var fragments = machine.jsonFields
            fragments["precision"] = "\"\(model.precision.rawValue)\""
            if let products = model.bf16Products {
                fragments["bf16_products"] = "\"\(products.rawValue)\""
                if products == .dotProducts {
                    fragments["bf16_dot_kernel"] = BFloat16Products.hasAVX512BF16 ? "\"avx512-bf16\"" : "\"portable model\""
                }
            }
            if let comparison { fragments["accuracy"] = comparison.json }
            print(result.json(extra: fields, fragments: fragments))
        } else {
            print(String(format: "%@ %dx%d, batch %d, %d threads: median %.2f ms, min %.2f ms, %.1f GFLOP/s, %.1f images/s, peak RSS %.1f MB",
                         modelOptions.model, height, width, batch, ComputeThreads.current, result.median, result.minimum,
                         result.gflops, Double(batch) * 1000 / max(result.median, 1e-9), result.peakResidentMegabytes))
            print("CPU: " + machine.summary)
            if let split = extra["gemm_gflops"], let native = extra["gemm_gflops_openblas"] {
                let packed = extra["gemm_gflops_packed"]
                let best = max(split, native, packed ?? 0)
                print(String(format: "largest GEMM %.0fx%.0fx%.0f: %.1f GFLOP/s OpenBLAS row split, %.1f OpenBLAS threads%@; forward reaches %.0f%% of the best",
                             extra["gemm_m"] ?? 0, extra["gemm_n"] ?? 0, extra["gemm_k"] ?? 0, split, native,
                             packed.map { String(format: ", %.1f packed kernel", $0) } ?? "", 100 * result.gflops / best))
                if let peak = extra["fma_peak_gflops"] {
                    print(String(format: "FMA peak (independent %@ FMAs, no loads, %d threads): %.1f GFLOP/s; the forward reaches %.0f%%, the best GEMM %.0f%%",
                                 machine.isaDisplayName, ComputeThreads.current, peak, 100 * result.gflops / peak, 100 * best / peak))
                }
                if let avx2 = extra["fma_peak_gflops_avx2"] {
                    print(String(format: "FMA peak of AVX2 FMAs on the same threads: %.1f GFLOP/s", avx2))
                }
            }
            if let products = model.bf16Products {
                let how = products == .widened ? "widened to float32 in the kernel"
                    : BFloat16Products.hasAVX512BF16 ? "bfloat16 dot products (AVX512-BF16)"
                    : "bfloat16 dot products through the portable model of AVX512-BF16 (slow: for accuracy, not speed)"
                print("bf16 weights, " + how)
            }
            if let comparison {
                for (key, prefix) in Self.accuracyGroups {
                    print(String(format: "%@ vs fp32, %@: cosine >= %.6f, max |error| %.3g", model.precision.rawValue, key,
                                 comparison.minimumCosine(prefix: prefix), comparison.maximumError(prefix: prefix)))
                }
            }
        }
    }

    private func runHeads(_ model: VisionTransformer, folder: URL, height: Int, width: Int) throws {
        let bench = try HeadsBenchmark(specs: heads, model: model, modelFolder: folder, batch: batch, height: height, width: width)
        let (alone, together) = try bench.measure(runs: runs, warmup: warmup)
        let slowest = alone.max() ?? 0
        if json {
            let items = zip(bench.names, alone).map { String(format: "\"%@\": %.3f", $0, $1) }.joined(separator: ", ")
            print(String(format: "{\"alone_ms\": {%@}, \"together_ms\": %.3f, \"together_over_slowest\": %.4f, \"together_over_sum\": %.4f}",
                         items, together, together / slowest, together / alone.reduce(0, +)))
        } else {
            for (name, ms) in zip(bench.names, alone) { print(String(format: "%@ alone: median %.2f ms", name, ms)) }
            print(String(format: "all %d heads on one pass: median %.2f ms, %.3fx the slowest alone, %.3fx the sum (%@ %dx%d, batch %d, %d runs interleaved)",
                         alone.count, together, together / slowest, together / alone.reduce(0, +), modelOptions.model, height, width, batch, runs))
        }
    }
}
