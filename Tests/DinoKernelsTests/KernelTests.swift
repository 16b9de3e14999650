import CDinoKernels
import Foundation
import Testing

/// Deterministic pseudo-random floats in `[-range, range)`.
func randomFloats(_ count: Int, seed: UInt64, range: Float = 4) -> [Float] {
    var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * range
    }
}

/// Largest `|a - b| / max(1, |b|)`, and where it happened.
func worstRelative(_ a: [Float], _ b: [Float]) -> (error: Float, index: Int) {
    var worst: Float = 0
    var index = 0
    for i in 0..<a.count {
        let e = abs(a[i] - b[i]) / max(1, abs(b[i]))
        if !(e <= worst) { worst = e.isNaN ? .infinity : e; index = i }
    }
    return (worst, index)
}

func withPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// The flags of the first CPU in /proc/cpuinfo, or nil where there is none (not Linux).
func cpuinfoFlags() -> Set<String>? {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
    return Set(flagsLine.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
}

/// The run-time choice of instruction set, and the FMA-peak loops.
@Suite("Kernels: dispatch")
struct DispatchTests {
    @Test("the dispatcher picks the best instruction set the CPU has (AVX-512, then AVX2), or the one DINO_ISA names")
    func dispatch() {
        let active = dino_kernels_active_isa()
        let best = dino_kernels_cpu_has_avx512() != 0 ? DINO_ISA_AVX512 : dino_kernels_cpu_has_avx2() != 0 ? DINO_ISA_AVX2 : DINO_ISA_PORTABLE
        switch ProcessInfo.processInfo.environment["DINO_ISA"] {
        case "portable": #expect(active == DINO_ISA_PORTABLE)
        case "avx2": #expect(active == (best == DINO_ISA_PORTABLE ? DINO_ISA_PORTABLE : DINO_ISA_AVX2))
        default: #expect(active == best)
        }
        #expect(dino_kernels_for_isa(active)?.pointee.isa == active)
        #expect(dino_kernels_for_isa(DINO_ISA_PORTABLE) != nil)
        #expect((dino_kernels_for_isa(DINO_ISA_AVX512) != nil) == (dino_kernels_cpu_has_avx512() != 0))
        print("kernels: active instruction set \(String(cString: dino_isa_name(active)))")
    }

    @Test("AVX2 and AVX-512 are detected exactly when the kernel lists their flags")
    func detection() throws {
        #if arch(x86_64)
        let flags = try #require(cpuinfoFlags())
        #expect(flags.contains("sse2"), "the flags line was not read: \(flags.count) flags")
        #expect((dino_kernels_cpu_has_avx2() != 0) == (flags.contains("avx2") && flags.contains("fma")))
        let avx512 = ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
        #expect((dino_kernels_cpu_has_avx512() != 0) == avx512)
        #expect((dino_kernels_cpu_has_amx() != 0) == (flags.contains("amx_tile") && flags.contains("amx_bf16")))
        #else
        #expect(dino_kernels_cpu_has_avx2() == 0 && dino_kernels_cpu_has_avx512() == 0)
        #endif
    }

    @Test("the CPU identity has the family and model /proc/cpuinfo gives")
    func identity() throws {
        var name = [CChar](repeating: 0, count: 49)
        var family: Int32 = 0, model: Int32 = 0
        dino_cpu_identity(&name, &family, &model)
        #if arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return }
        func field(_ key: String) -> String? {
            info.split(separator: "\n").first { $0.hasPrefix(key) }?.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        #expect(field("cpu family").flatMap(Int.init) == Int(family))
        #expect(field("model\t").flatMap(Int.init) == Int(model))
        print("CPU: \(String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)), family \(family), model \(model)")
        #else
        #expect(family == 0 && model == 0)
        #endif
    }

    @Test("the FMA-peak loop does 12 independent FMAs per step and computes its chains exactly",
          arguments: [(DINO_ISA_AVX2, 8), (DINO_ISA_AVX512, 16)])
    func fmaPeakLoop(isa: dino_isa, lanes: Int) {
        let steps = 1000
        var checksum = -1.0
        let flops = dino_fma_peak_loop(isa, steps, &checksum)
        guard dino_kernels_for_isa(isa) != nil else {
            #expect(flops == 0 && checksum == -1)
            return
        }
        #expect(flops == Double(12 * lanes * 2 * steps))
        #expect(flops == Double(steps) * Double(isa == DINO_ISA_AVX2 ? DINO_FMA_PEAK_FLOPS_PER_STEP : DINO_FMA_PEAK_FLOPS_PER_STEP_AVX512))
        // Every lane of every chain runs x <- fma(x, 1 - 2^-20, 2^-20) from x = 2^-20; the 12
        // chains are summed in float (one rounding: 8x + 4x) and the lanes in double.
        var x: Float = 0x1p-20
        for _ in 0..<steps { x = Float(0x1p-20).addingProduct(x, 1 - 0x1p-20) }
        #expect(checksum == Double(lanes) * Double(12 * x))
        #expect(dino_fma_peak_loop(DINO_ISA_PORTABLE, steps, nil) == 0)
    }

    @Test("the dispatching entry points give the active set's results")
    func entryPoints() throws {
        let kernels = try #require(dino_kernels_for_isa(dino_kernels_active_isa())).pointee
        let (rows, width) = (5, 77)
        let x = randomFloats(rows * width, seed: 61), gamma = randomFloats(width, seed: 62), beta = randomFloats(width, seed: 63)
        var viaEntry = [Float](repeating: 0, count: rows * width), viaSet = viaEntry
        dino_layernorm(x, width, &viaEntry, width, gamma, beta, rows, width, 1e-6)
        kernels.layernorm(x, width, &viaSet, width, gamma, beta, rows, width, 1e-6)
        #expect(viaEntry == viaSet)
        var packedEntry = [Float](repeating: 0, count: dino_packed_weight_count(width, rows))
        var packedSet = packedEntry
        dino_pack_weight(x, width, rows, &packedEntry)
        kernels.pack_strided(x, width, rows, rows, 1, &packedSet)
        var outEntry = [Float](repeating: 0, count: rows * width), outSet = outEntry
        dino_gemm_packed(x, width, rows, rows, packedEntry, width, beta, &outEntry, width, DINO_GEMM_ACTIVATION, nil, DINO_ACT_GELU)
        kernels.gemm_packed(x, width, rows, rows, packedSet, 16 * rows, width, beta, &outSet, width, DINO_GEMM_ACTIVATION, nil, DINO_ACT_GELU)
        #expect(outEntry == outSet)
    }
}

/// The element-type conversions of the reference against Swift's own `Float16` and exhaustive
/// round trips (the AVX-512 ones are compared with these in `KernelSetChecks`).
@Suite("Kernels: half and bfloat16 conversion")
struct ConversionTests {
    @Test("every half value converts as Swift's Float16 does")
    func halfExhaustive() {
        ConversionChecks.halfExhaustive { dino_f16_to_f32_ref($0, $1, $2) }
    }

    @Test("bfloat16 is the top half of a float, rounded to nearest even")
    func bfloat16() {
        ConversionChecks.bfloat16({ dino_f32_to_bf16_ref($0, $1, $2) }, { dino_bf16_to_f32_ref($0, $1, $2) })
    }
}

/// The checks of the conversion tests, for any set's conversion functions.
enum ConversionChecks {
    typealias ToFloat = (UnsafePointer<UInt16>, UnsafeMutablePointer<Float>, Int) -> Void
    typealias FromFloat = (UnsafePointer<Float>, UnsafeMutablePointer<UInt16>, Int) -> Void

    static func halfExhaustive(_ toFloat: ToFloat) {
        let bits = (0...UInt16.max).map { $0 }
        var floats = [Float](repeating: 0, count: bits.count)
        toFloat(bits, &floats, bits.count)
        var mismatches = 0
        for (i, b) in bits.enumerated() {
            let expected = Float(Float16(bitPattern: b))
            if expected.isNaN ? !floats[i].isNaN : floats[i].bitPattern != expected.bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    static func bfloat16(_ fromFloat: FromFloat, _ toFloat: ToFloat) {
        let values: [Float] = [1, -2.5, 3.14159, 1e-30, 65504, 1.00390625, 1.01171875, 1.0078125]
        var bits = [UInt16](repeating: 0, count: values.count)
        fromFloat(values, &bits, values.count)
        var back = [Float](repeating: 0, count: values.count)
        toFloat(bits, &back, values.count)
        for (v, b) in zip(values, back) {
            #expect(abs(v - b) <= abs(v) / 128, "\(v) -> \(b)")
        }
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        #expect(back[5] == 1)
        #expect(back[6] == 1.015625)
    }
}

/// The streaming softmax of the reference: processing keys block by block must give
/// softmax(scale * s) · v (the vector kernels are checked the same way in `KernelSetChecks`).
@Suite("Kernels: online softmax for tiled attention")
struct OnlineSoftmaxTests {
    @Test("block-wise accumulation equals the plain softmax product (scores up to 6 and up to 300 after scaling)",
          arguments: [1, 7, 64, 300], [20, 1000] as [Float])
    func matchesPlain(blockSize: Int, range: Float) {
        Self.check(blockSize: blockSize, range: range, label: "reference") {
            dino_online_softmax_block_ref($0, $1, $2, $3, $4, $5, $6, $7, $8, $9)
        }
    }

    /// Runs `block` over 300 keys in blocks of `blockSize` and compares the result with the plain
    /// softmax product in double precision.
    static func check(blockSize: Int, range: Float, label: String,
                      _ block: (UnsafeMutablePointer<Float>, Int, Int, Int, Float, UnsafeMutablePointer<Float>,
                                UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void) {
        let (rows, keys, d) = (5, 300, 9)
        let scores = randomFloats(rows * keys, seed: 31, range: range)
        let values = randomFloats(keys * d, seed: 32)
        let scale: Float = 0.3
        // Reference: full softmax then the product, in double.
        var expected = [Double](repeating: 0, count: rows * d)
        for r in 0..<rows {
            let row = (0..<keys).map { Double(scores[r * keys + $0] * scale) }
            let mx = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - mx) }
            let sum = e.reduce(0, +)
            for j in 0..<d { expected[r * d + j] = (0..<keys).reduce(0) { $0 + e[$1] / sum * Double(values[$1 * d + j]) } }
        }
        var m = [Float](repeating: -.infinity, count: rows), l = [Float](repeating: 0, count: rows)
        var o = [Float](repeating: 0, count: rows * d)
        for start in stride(from: 0, to: keys, by: blockSize) {
            let columns = min(blockSize, keys - start)
            var tile = [Float](repeating: 0, count: rows * columns)
            for r in 0..<rows { for k in 0..<columns { tile[r * columns + k] = scores[r * keys + start + k] } }
            block(&tile, columns, rows, columns, scale, &m, &l, &o, d, d)
            for r in 0..<rows { for j in 0..<d { for k in 0..<columns { o[r * d + j] += tile[r * columns + k] * values[(start + k) * d + j] } } }
        }
        dino_divide_rows(&o, d, rows, d, l)
        let worst = zip(o, expected).map { abs(Double($0) - $1) }.max() ?? 0
        // Each exponent scale * s - max carries a float rounding (here and in `expected`, which
        // rounds scale * s): up to one ulp of the largest |scale * s| in total, a relative
        // error of each probability, times the largest |value| in the weighted average.
        let largest = Double(scores.map { abs($0 * scale) }.max() ?? 0)
        let bound = 1e-5 + Double(Float(largest).ulp) * Double(values.map(abs).max() ?? 0)
        #expect(worst < bound, "block \(blockSize) \(label): max error \(worst), bound \(bound)")
    }
}

/// The packed-weight GEMM's plain reference against a direct triple loop, and the layout of the
/// packed panels (the vector kernels are checked against the reference in `KernelSetChecks`).
@Suite("Kernels: GEMM with packed weights, the reference")
struct PackedGemmReferenceTests {
    @Test("the reference matches a direct triple loop, and bf16 packing rounds to nearest", arguments: GemmCheck.oddShapes)
    func reference(m: Int, n: Int, k: Int) throws {
        let kernels = try #require(dino_kernels_for_isa(DINO_ISA_PORTABLE)).pointee
        for bf16 in [false, true] {
            GemmCheck(m: m, n: n, k: k, bf16: bf16).checkReference(kernels)
        }
    }

    @Test("the plain packer (no vector transposes) equals the reference", arguments: GemmCheck.packLayouts)
    func plainPacking(n: Int, k: Int, strideN: Int, strideK: Int) throws {
        GemmCheck.checkPacking(try #require(dino_kernels_for_isa(DINO_ISA_PORTABLE)).pointee, n: n, k: k, strideN: strideN, strideK: strideK)
    }
}
