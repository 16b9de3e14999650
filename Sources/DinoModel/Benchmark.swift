import CDinoKernels
import COpenBLAS
import DinoCompute
import DinoTensor
import Dispatch
import Foundation
import Synchronization

/// Timing of repeated forward passes, for `dino bench` (which `Scripts/bench_reference.py` runs).
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
        let pixels = input(channels: model.configuration.numChannels, batch: batch, height: height, width: width)
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

    /// The fixed pseudo-random input the benchmark runs: `[batch, channels, height, width]` in [-2, 2).
    public static func input(channels: Int, batch: Int, height: Int, width: Int) -> Tensor {
        var state: UInt32 = 12345
        return Tensor(shape: [batch, channels, height, width], scalars: (0..<(batch * channels * height * width)).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Float(state >> 8) / Float(1 << 24) * 4 - 2
        })
    }

    /// GFLOP/s of `C[M, N] = A[M, K] · B[N, K]ᵀ` as the forward pass runs its GEMMs (rows split
    /// over `threads` workers, single-threaded OpenBLAS each), and as OpenBLAS runs it with its
    /// own `threads` threads, and, where the packed kernels run (AVX2 or AVX-512), as this
    /// library's packed kernel runs it (rows split over `threads`); the median of `runs` after two
    /// warm-ups.
    public static func gemmRate(m: Int, n: Int, k: Int, threads: Int, runs: Int = 20)
        -> (rowSplit: Double, openBLASThreads: Double, packed: Double?) {
        var state: UInt32 = 99
        func random(_ count: Int) -> [Float] {
            (0..<count).map { _ in state = state &* 1_664_525 &+ 1_013_904_223; return Float(state >> 8) / Float(1 << 24) - 0.5 }
        }
        let weights = LinearWeights(weight: random(n * k), bias: nil, outFeatures: n, inFeatures: k)
        let a = random(m * k)
        var c = [Float](repeating: 0, count: m * n)
        // GFLOP/s of `body` writing into `c`: the median of `runs` after two warm-ups.
        func time(_ body: (UnsafeMutablePointer<Float>) -> Void) -> Double {
            c.withUnsafeMutableBufferPointer { out -> Double in
                guard let base = out.baseAddress else { return 0 }
                var times: [Double] = []
                for i in 0..<(runs + 2) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    body(base)
                    if i >= 2 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
                }
                let median = times.sorted()[times.count / 2]
                return 2 * Double(m) * Double(n) * Double(k) / median / 1e9
            }
        }
        // OpenBLAS's own threads spin for a while after its last call and take the cores from
        // whatever runs next (the packed kernel at a third of its rate in some processes, Zen 4),
        // so they run last.
        var packedRate: Double? = nil
        if packedKernelsActive {
            let packedWeights = weights.packedForGEMM()
            packedRate = time { packedWeights.apply(a, rows: m, into: $0, threads: threads) }
        }
        let split = time { weights.apply(a, rows: m, into: $0, threads: threads) }
        _ = ComputeThreads.singleThreadedBLAS
        openblas_set_num_threads(Int32(threads))
        let native = time { sgemm(transposeB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: weights.weight, ldb: k, beta: 0, c: $0, ldc: n) }
        openblas_set_num_threads(1)
        return (split, native, packedRate)
    }

    /// GFLOP/s of a loop of nothing but independent FMAs on `isa`'s vectors (`dino_fma_peak_loop`,
    /// no loads) on `threads` threads at once: the ceiling of that instruction set's GEMM kernels
    /// on this machine. The median of `runs` parallel regions after one warm-up; nil where the CPU
    /// cannot run `isa` (or it is portable).
    public static func fmaPeak(isa: dino_isa, threads: Int, runs: Int = 9, iterations: Int = 4_000_000) -> Double? {
        let flopsPerIteration = dino_fma_peak_loop(isa, 1, nil)
        guard flopsPerIteration > 0, threads >= 1, runs >= 1, iterations >= 1 else { return nil }
        var rates: [Double] = []
        for i in 0..<(runs + 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            ComputeThreads.parallelFor(threads, threads: threads, granularity: 1, minimumPerPart: 1) { _, parts in
                for _ in parts { _ = dino_fma_peak_loop(isa, iterations, nil) }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if i > 0 { rates.append(Double(threads * iterations) * flopsPerIteration / seconds / 1e9) }
        }
        return rates.sorted()[rates.count / 2]
    }

    /// The shape `(M, N, K)` of the model's largest GEMM at this input: the first FFN layer,
    /// `[B * N, C] x [C, F]` (`2F` for SwiGLU).
    public static func largestGEMM(_ model: VisionTransformer, batch: Int, height: Int, width: Int) -> (m: Int, n: Int, k: Int) {
        let cfg = model.configuration
        let tokens = batch * (1 + cfg.numRegisterTokens + (height / cfg.patchSize) * (width / cfg.patchSize))
        return (tokens, cfg.useSwigluFFN ? 2 * cfg.ffnHiddenSize : cfg.ffnHiddenSize, cfg.hiddenSize)
    }

    /// `gemm_gflops`, `gemm_gflops_openblas`, `gemm_gflops_packed` (packed kernels only), the
    /// shape, `fma_peak_gflops` (the FMA loop of the active instruction set on the same threads)
    /// and, where that is AVX-512, `fma_peak_gflops_avx2` beside it, for the JSON report.
    public static func gemmReport(_ model: VisionTransformer, batch: Int, height: Int, width: Int, threads: Int) -> [String: Double] {
        var report: [String: Double] = [:]
        // The FMA loops first: OpenBLAS's threads, which gemmRate runs last, spin for a while after.
        let isa = dino_kernels_active_isa()
        if let peak = fmaPeak(isa: isa, threads: threads) { report["fma_peak_gflops"] = peak }
        if isa == DINO_ISA_AVX512, let peak = fmaPeak(isa: DINO_ISA_AVX2, threads: threads) { report["fma_peak_gflops_avx2"] = peak }
        let (m, n, k) = largestGEMM(model, batch: batch, height: height, width: width)
        let rate = gemmRate(m: m, n: n, k: k, threads: threads)
        report.merge(["gemm_gflops": rate.rowSplit, "gemm_gflops_openblas": rate.openBLASThreads,
                      "gemm_m": Double(m), "gemm_n": Double(n), "gemm_k": Double(k)]) { $1 }
        if let packed = rate.packed { report["gemm_gflops_packed"] = packed }
        return report
    }

    /// Peak resident set size of this process (`VmHWM` of /proc/self/status), in MB; 0 where unavailable.
    public static func peakResidentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (line.split(separator: " ").compactMap { Double($0) }.first ?? 0) / 1024
        }
        return 0
    }

    /// One JSON object: `median_ms`, `min_ms`, `gflops`, `peak_rss_mb`, `runs_ms`, plus `extra`
    /// fields (10 significant digits, enough for cosines near 1) and `fragments` (values already
    /// in JSON).
    public func json(extra: [String: Double] = [:], fragments: [String: String] = [:]) -> String {
        let list = runs.map { String(format: "%.3f", $0) }.joined(separator: ", ")
        let more = extra.sorted { $0.key < $1.key }.map { String(format: ", \"%@\": %.10g", $0.key, $0.value) }.joined()
            + fragments.sorted { $0.key < $1.key }.map { ", \"\($0.key)\": \($0.value)" }.joined()
        return String(format: "{\"median_ms\": %.3f, \"min_ms\": %.3f, \"gflops\": %.2f, \"peak_rss_mb\": %.1f%@, \"runs_ms\": [%@]}",
                      median, minimum, gflops, peakResidentMegabytes, more, list)
    }
}

/// The machine a benchmark ran on: the CPU, and the kernels this library chose on it.
public struct MachineReport: Sendable, Equatable {
    /// The CPU's brand string (CPUID), empty where unknown.
    public var cpuName: String
    /// The CPU's family number (CPUID leaf 1, extended family included); 0 where unknown.
    public var cpuFamily: Int
    /// The CPU's model number (CPUID leaf 1, extended model included); 0 where unknown.
    public var cpuModel: Int
    /// The instruction set of the active kernels: `avx512`, `avx2` or `portable`.
    public var isa: String
    /// Whether the CPU has AVX512-BF16 (the bfloat16 dot products).
    public var hasAVX512BF16: Bool
    /// Whether the CPU has AMX (AMX-TILE and AMX-BF16), which no kernel uses yet.
    public var hasAMX: Bool

    /// This machine, as CPUID describes it, and the kernels active now.
    public static var current: MachineReport {
        var name = [CChar](repeating: 0, count: 49)
        var family: Int32 = 0, model: Int32 = 0
        dino_cpu_identity(&name, &family, &model)
        let bytes = name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return MachineReport(cpuName: String(decoding: bytes, as: UTF8.self), cpuFamily: Int(family), cpuModel: Int(model),
                             isa: String(cString: dino_isa_name(dino_kernels_active_isa())),
                             hasAVX512BF16: dino_kernels_cpu_has_avx512bf16() != 0, hasAMX: dino_kernels_cpu_has_amx() != 0)
    }

    /// The kernel set as people write it: `AVX2`, `AVX-512`, `PORTABLE`.
    public var isaDisplayName: String { isa.uppercased().replacingOccurrences(of: "AVX512", with: "AVX-512") }

    /// One line for people: the CPU, the kernels, and the extensions that matter here.
    public var summary: String {
        let cpu = cpuName.isEmpty ? "unknown CPU" : cpuName
        return "\(cpu) (family \(cpuFamily), model \(cpuModel)): \(isa) kernels, AVX512-BF16 \(hasAVX512BF16 ? "yes" : "no"), "
            + (hasAMX ? "AMX present (not used yet)" : "no AMX")
    }

    /// The fields `dino bench --json` adds, as JSON values: `cpu`, `cpu_family`, `cpu_model`,
    /// `isa`, `avx512_bf16`, `amx`.
    public var jsonFields: [String: String] {
        ["cpu": Self.jsonString(cpuName), "cpu_family": "\(cpuFamily)", "cpu_model": "\(cpuModel)", "isa": Self.jsonString(isa),
         "avx512_bf16": hasAVX512BF16 ? "true" : "false", "amx": hasAMX ? "true" : "false"]
    }

    /// `text` as a JSON string literal.
    private static func jsonString(_ text: String) -> String {
        guard let data = try? JSONEncoder().encode(text), let literal = String(data: data, encoding: .utf8) else { return "\"\"" }
        return literal
    }
}
