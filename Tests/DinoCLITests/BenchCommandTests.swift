import CDinoKernels
import Foundation
import Testing

/// `dino bench`: the JSON report, the bf16 accuracy report, and refusals. (Timings are reported,
/// never asserted: speed is measured by Scripts/bench_reference.py.)
@Suite("dino bench (end to end)")
struct BenchCommandTests {
    static let model = CLI.fixtures.appendingPathComponent("reg4_downsample").path

    func report(_ arguments: [String], environment: [String: String] = [:]) throws -> [String: Any] {
        let result = try CLI.run(["bench", "--model", Self.model, "--size", "56x70", "--warmup", "0", "--json"] + arguments,
                                 environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test("--json prints one object with median_ms, min_ms, gflops, peak_rss_mb and every run")
    func json() throws {
        let object = try report(["--runs", "3", "--batch", "2", "--gemm-rate"])
        let runs = try #require(object["runs_ms"] as? [Double])
        #expect(runs.count == 3)
        let median = try #require(object["median_ms"] as? Double), minimum = try #require(object["min_ms"] as? Double)
        #expect(minimum == runs.min())
        #expect(median == runs.sorted()[1])
        #expect(try #require(object["gflops"] as? Double) > 0)
        #expect(try #require(object["peak_rss_mb"] as? Double) > 0)
        #expect(object["precision"] as? String == "fp32")
        // The largest GEMM of this model at 56x70 and batch 2: 2 x (1 + 4 + 4 x 5) rows, the FFN.
        #expect(object["gemm_m"] as? Double == 50)
        #expect(try #require(object["gemm_gflops"] as? Double) > 0)
        // The machine: CPUID's identity and the kernels chosen (the CLI's process, same CPU and
        // environment).
        let isa = dino_kernels_active_isa()
        #expect(object["isa"] as? String == String(cString: dino_isa_name(isa)))
        #expect(object["cpu"] is String && object["cpu_family"] is Double && object["cpu_model"] is Double)
        #expect(object["avx512_bf16"] as? Bool == (dino_kernels_cpu_has_avx512bf16() != 0))
        #expect(object["amx"] as? Bool == (dino_kernels_cpu_has_amx() != 0))
        // The FMA peak is measured where the packed kernels run, on their vectors; beside the
        // AVX-512 one, the AVX2 one.
        if isa != DINO_ISA_PORTABLE {
            #expect(try #require(object["fma_peak_gflops"] as? Double) > 0)
        } else {
            #expect(object["fma_peak_gflops"] == nil)
        }
        #expect((object["fma_peak_gflops_avx2"] != nil) == (isa == DINO_ISA_AVX512))
    }

    @Test("--precision bf16 --accuracy reports every output against fp32")
    func accuracy() throws {
        let object = try report(["--runs", "1", "--precision", "bf16", "--accuracy"])
        #expect(object["precision"] as? String == "bf16")
        let entries = try #require(object["accuracy"] as? [[String: Any]])
        let names = entries.compactMap { $0["output"] as? String }
        // 2 blocks: last_hidden_state, pooler_output, 3 hidden states, 2 attentions, 3 stages.
        #expect(names == ["last_hidden_state", "pooler_output", "hidden_states.0", "hidden_states.1", "hidden_states.2",
                          "attentions.0", "attentions.1", "feature_maps.stem", "feature_maps.stage1", "feature_maps.stage2"])
        for entry in entries {
            let cosine = try #require(entry["cosine"] as? Double), error = try #require(entry["max_abs_error"] as? Double)
            #expect(cosine >= 0.999 && cosine <= 1 + 1e-9, "\(entry)")
            #expect(error > 0 || (entry["output"] as? String)?.hasPrefix("attentions") == true, "\(entry)")
        }
        #expect(try #require(object["cosine_min_feature_maps"] as? Double) >= 0.999)
    }

    @Test("DINO_BF16_PRODUCTS picks how bf16 weights are multiplied, and the report says which", arguments: ["dotProducts", "widened"])
    func bf16Products(_ products: String) throws {
        let object = try report(["--runs", "1", "--precision", "bf16", "--accuracy"], environment: ["DINO_BF16_PRODUCTS": products])
        #expect(object["bf16_products"] as? String == products)
        let kernel = object["bf16_dot_kernel"] as? String
        #expect(kernel == (products == "widened" ? nil : dino_kernels_cpu_has_avx512bf16() != 0 ? "avx512-bf16" : "portable model"))
        #expect(try #require(object["cosine_min_feature_maps"] as? Double) >= 0.999)
    }

    @Test("an unknown DINO_BF16_PRODUCTS exits non-zero naming it")
    func rejectsUnknownProducts() throws {
        let result = try CLI.run(["bench", "--model", Self.model, "--runs", "1", "--precision", "bf16"],
                                 environment: ["DINO_BF16_PRODUCTS": "fp8"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("DINO_BF16_PRODUCTS=fp8"), "\(result.stderr)")
    }

    @Test("bad sizes and precisions exit non-zero with a message naming them",
          arguments: [(["--size", "50"], "50"), (["--size", "abc"], "--size"), (["--precision", "fp8"], "--precision fp8")])
    func rejects(extra: [String], mention: String) throws {
        let result = try CLI.run(["bench", "--model", Self.model, "--runs", "1"] + extra)
        #expect(result.status != 0)
        #expect(result.stderr.contains(mention), "\(result.stderr)")
    }
}
