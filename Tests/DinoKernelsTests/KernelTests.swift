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

/// The dispatching kernels (AVX2 + FMA on CPUs that have it) against the plain reference
/// kernels, on row widths with and without vector tails.
@Suite("Kernels: fast versions against the reference versions")
struct KernelTests {
    static let widths = [1, 7, 8, 13, 64, 384, 385, 1537]

    @Test("the dispatcher picks AVX2 when the CPU has it")
    func dispatch() {
        let active = dino_kernels_active_isa()
        if dino_kernels_cpu_has_avx2() != 0 && ProcessInfo.processInfo.environment["DINO_ISA"] != "portable" {
            #expect(active == DINO_ISA_AVX2)
        } else {
            #expect(active == DINO_ISA_PORTABLE)
        }
        print("kernels: active instruction set \(active == DINO_ISA_AVX2 ? "AVX2+FMA" : "portable")")
    }

    @Test("the FMA-peak loop does 192 FLOPs per step and computes its chains exactly")
    func fmaPeakLoop() {
        let steps = 1000
        var checksum = -1.0
        let flops = dino_fma_peak_loop(steps, &checksum)
        guard dino_kernels_active_isa() == DINO_ISA_AVX2 else {
            #expect(flops == 0 && checksum == -1)
            return
        }
        #expect(flops == Double(192 * steps))
        // Every lane of every chain runs x <- fma(x, 1 - 2^-20, 2^-20) from x = 2^-20; the 12
        // chains are summed in float (one rounding: 8x + 4x) and the 8 lanes in double.
        var x: Float = 0x1p-20
        for _ in 0..<steps { x = Float(0x1p-20).addingProduct(x, 1 - 0x1p-20) }
        #expect(checksum == 8 * Double(12 * x))
    }

    @Test("layernorm", arguments: widths)
    func layernorm(width: Int) {
        let rows = 5
        let x = randomFloats(rows * width, seed: 1).enumerated().map { $0.element + Float($0.offset % 3) * 10 }
        let gamma = randomFloats(width, seed: 2), beta = randomFloats(width, seed: 3)
        var fast = [Float](repeating: 0, count: rows * width), ref = fast
        dino_layernorm(x, width, &fast, width, gamma, beta, rows, width, 1e-6)
        dino_layernorm_ref(x, width, &ref, width, gamma, beta, rows, width, 1e-6)
        let (error, index) = worstRelative(fast, ref)
        #expect(error < 2e-6, "layernorm width \(width): error \(error) at \(index): \(fast[index]) vs \(ref[index])")
    }

    @Test("layernorm in place with a row stride")
    func layernormStrided() {
        let (rows, width, stride) = (3, 13, 20)
        var x = randomFloats(rows * stride, seed: 4)
        let gamma = randomFloats(width, seed: 5), beta = randomFloats(width, seed: 6)
        var ref = [Float](repeating: 0, count: rows * width)
        dino_layernorm_ref(x, stride, &ref, width, gamma, beta, rows, width, 1e-5)
        let untouched = x
        x.withUnsafeMutableBufferPointer { p in
            dino_layernorm(p.baseAddress, stride, p.baseAddress, stride, gamma, beta, rows, width, 1e-5)
        }
        for r in 0..<rows {
            let row = Array(x[(r * stride)..<(r * stride + width)])
            #expect(worstRelative(row, Array(ref[(r * width)..<((r + 1) * width)])).error < 2e-6)
            #expect(Array(x[(r * stride + width)..<((r + 1) * stride)]) == Array(untouched[(r * stride + width)..<((r + 1) * stride)]),
                    "padding between rows was written")
        }
    }

    @Test("bias + activation", arguments: [DINO_ACT_GELU, DINO_ACT_GELU_TANH, DINO_ACT_RELU, DINO_ACT_SILU, DINO_ACT_QUICK_GELU])
    func activation(kind: dino_activation) {
        for width in Self.widths {
            let rows = 3
            let x = randomFloats(rows * width, seed: 7, range: 12)
            let bias = randomFloats(width, seed: 8)
            var fast = x, ref = x
            dino_bias_activation(&fast, bias, rows, width, kind)
            dino_bias_activation_ref(&ref, bias, rows, width, kind)
            let (error, index) = worstRelative(fast, ref)
            #expect(error < 1e-6, "activation \(kind.rawValue) width \(width): error \(error) at \(index): \(fast[index]) vs \(ref[index])")
        }
    }

    @Test("exact GELU against double-precision erf over a dense range")
    func geluAccuracy() {
        let x = stride(from: Float(-12), through: 12, by: 1.0 / 1024).map { $0 }
        var fast = x
        dino_bias_activation(&fast, nil, 1, x.count, DINO_ACT_GELU)
        var worst: Double = 0
        for (v, g) in zip(x, fast) {
            let exact = 0.5 * Double(v) * (1 + erf(Double(v) / 2.0.squareRoot()))
            worst = max(worst, abs(Double(g) - exact) / max(1, abs(exact)))
        }
        print("kernels: GELU worst error vs double erf over [-12, 12]: \(worst)")
        #expect(worst < 1e-6)
    }

    @Test("softmax", arguments: widths)
    func softmax(width: Int) {
        let rows = 4
        let x = randomFloats(rows * width, seed: 9, range: 30)
        var fast = x, ref = x
        dino_softmax(&fast, width, rows, width, 0.125)
        dino_softmax_ref(&ref, width, rows, width, 0.125)
        let (error, index) = worstRelative(fast, ref)
        #expect(error < 1e-6, "softmax width \(width): error \(error) at \(index)")
        for r in 0..<rows {
            let sum = fast[(r * width)..<((r + 1) * width)].reduce(0, +)
            #expect(abs(sum - 1) < 1e-5)
        }
    }

    @Test("residual with and without LayerScale and bias", arguments: widths)
    func residual(width: Int) {
        let rows = 3
        let x = randomFloats(rows * width, seed: 10), y = randomFloats(rows * width, seed: 11)
        let bias = randomFloats(width, seed: 12), gamma = randomFloats(width, seed: 13)
        for (b, g) in [(bias, gamma), (nil, gamma), (bias, nil), (nil, nil)] as [([Float]?, [Float]?)] {
            var fast = x, ref = x
            withPointer(b) { bp in withPointer(g) { gp in
                dino_residual(&fast, y, bp, gp, rows, width)
                dino_residual_ref(&ref, y, bp, gp, rows, width)
            } }
            #expect(worstRelative(fast, ref).error < 1e-6)
        }
    }

    @Test("SwiGLU gate", arguments: widths)
    func swiglu(width: Int) {
        let rows = 3
        let x12 = randomFloats(rows * 2 * width, seed: 16, range: 10), bias = randomFloats(2 * width, seed: 17)
        var fast = [Float](repeating: 0, count: rows * width), ref = fast
        dino_swiglu(x12, bias, &fast, rows, width)
        dino_swiglu_ref(x12, bias, &ref, rows, width)
        #expect(worstRelative(fast, ref).error < 1e-6)
    }
}

func withPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Element-type conversions against Swift's own `Float16` and exhaustive round trips.
@Suite("Kernels: half and bfloat16 conversion")
struct ConversionTests {
    @Test("every half value converts as Swift's Float16 does")
    func halfExhaustive() {
        let bits = (0...UInt16.max).map { $0 }
        var floats = [Float](repeating: 0, count: bits.count)
        dino_f16_to_f32(bits, &floats, bits.count)
        var mismatches = 0
        for (i, b) in bits.enumerated() {
            let expected = Float(Float16(bitPattern: b))
            if expected.isNaN {
                if !floats[i].isNaN { mismatches += 1 }
            } else if floats[i].bitPattern != expected.bitPattern {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
    }

    @Test("bfloat16 is the top half of a float, rounded to nearest even")
    func bfloat16() {
        let values: [Float] = [1, -2.5, 3.14159, 1e-30, 65504, 1.00390625, 1.01171875, 1.0078125]
        var bits = [UInt16](repeating: 0, count: values.count)
        dino_f32_to_bf16(values, &bits, values.count)
        var back = [Float](repeating: 0, count: values.count)
        dino_bf16_to_f32(bits, &back, values.count)
        for (v, b) in zip(values, back) {
            #expect(abs(v - b) <= abs(v) / 128, "\(v) -> \(b)")
        }
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
        #expect(back[5] == 1)
        #expect(back[6] == 1.015625)
    }
}

/// The streaming softmax: processing keys block by block must give softmax(scale * s) · v.
@Suite("Kernels: online softmax for tiled attention")
struct OnlineSoftmaxTests {
    @Test("block-wise accumulation equals the plain softmax product (scores up to 6 and up to 300 after scaling)",
          arguments: [1, 7, 64, 300], [20, 1000] as [Float])
    func matchesPlain(blockSize: Int, range: Float) {
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
        for fast in [true, false] {
            var m = [Float](repeating: -.infinity, count: rows), l = [Float](repeating: 0, count: rows)
            var o = [Float](repeating: 0, count: rows * d)
            for start in stride(from: 0, to: keys, by: blockSize) {
                let columns = min(blockSize, keys - start)
                var tile = [Float](repeating: 0, count: rows * columns)
                for r in 0..<rows { for k in 0..<columns { tile[r * columns + k] = scores[r * keys + start + k] } }
                if fast {
                    dino_online_softmax_block(&tile, columns, rows, columns, scale, &m, &l, &o, d, d)
                } else {
                    dino_online_softmax_block_ref(&tile, columns, rows, columns, scale, &m, &l, &o, d, d)
                }
                for r in 0..<rows { for j in 0..<d { for k in 0..<columns { o[r * d + j] += tile[r * columns + k] * values[(start + k) * d + j] } } }
            }
            dino_divide_rows(&o, d, rows, d, l)
            let worst = zip(o, expected).map { abs(Double($0) - $1) }.max() ?? 0
            // Each exponent scale * s - max carries a float rounding (here and in `expected`, which
            // rounds scale * s): up to one ulp of the largest |scale * s| in total, a relative
            // error of each probability, times the largest |value| in the weighted average.
            let largest = Double(scores.map { abs($0 * scale) }.max() ?? 0)
            let bound = 1e-5 + Double(Float(largest).ulp) * Double(values.map(abs).max() ?? 0)
            #expect(worst < bound, "block \(blockSize) \(fast ? "AVX2" : "reference"): max error \(worst), bound \(bound)")
        }
    }
}

/// The packed-weight GEMM (AVX2 micro-kernel) against its plain reference, with row and column
/// tails and every epilogue, for float32 and bfloat16 weights.
@Suite("Kernels: GEMM with packed weights")
struct PackedGemmTests {
    /// `w` rounded to bfloat16 and widened back, as the bf16 kernels see it.
    static func roundedToBF16(_ w: [Float]) -> [Float] {
        var bits = [UInt16](repeating: 0, count: w.count)
        dino_f32_to_bf16(w, &bits, w.count)
        var back = [Float](repeating: 0, count: w.count)
        dino_bf16_to_f32(bits, &back, w.count)
        return back
    }

    /// Odd sizes and tails of every kind; 433 rows make three row blocks, K 3100 two K blocks
    /// (the kernel splits K above 3072) and K 6500 three.
    static let oddShapes = [(1, 1, 1), (5, 17, 3), (6, 16, 8), (7, 33, 20), (13, 40, 64), (261, 96, 384), (250, 37, 1000), (433, 24, 50),
                            (14, 33, 3100), (7, 17, 6500), (9, 20, 0)]

    /// (N, K, stride_n, stride_k): attention's keys of one head (rows of a [tokens, 3C] buffer),
    /// its values (transposed), both with tails of N and K, and a layout with neither stride 1.
    static let packLayouts = [(261, 64, 1152, 1), (37, 13, 50, 1), (16, 8, 8, 1), (5, 3, 7, 1), (64, 261, 1, 1152), (40, 19, 1, 45),
                              (1, 1, 1, 1), (33, 9, 2, 70), (20, 0, 1, 20)]

    @Test("packing keys and values equals the plain loop and the definition", arguments: packLayouts)
    func packStrided(n: Int, k: Int, strideN: Int, strideK: Int) {
        let source = randomFloats(max(1, (n - 1) * strideN + (k - 1) * strideK + 1), seed: 46)
        let count = dino_packed_weight_count(n, k)
        var fast = [Float](repeating: .nan, count: count), ref = [Float](repeating: .nan, count: count)
        dino_pack_strided(source, n, k, strideN, strideK, &fast)
        dino_pack_strided_ref(source, n, k, strideN, strideK, &ref)
        let differing = (0..<count).filter { fast[$0] != ref[$0] }
        #expect(differing.isEmpty, "\(n)x\(k) strides \(strideN), \(strideK): \(differing.count) of \(count) differ, first at \(differing.first ?? -1)")
        // Panel p holds columns 16p..16p+15 K-major, zero past N.
        let expected = (0..<count).map { i -> Float in
            let (panel, within) = (i / (16 * k), i % (16 * k))
            let column = panel * 16 + within % 16, step = within / 16
            return column < n ? source[column * strideN + step * strideK] : 0
        }
        let wrong = (0..<count).filter { ref[$0] != expected[$0] }
        #expect(wrong.isEmpty, "\(n)x\(k) strides \(strideN), \(strideK): the reference differs at \(wrong.count) of \(count)")
    }

    @Test("matches the reference for odd shapes and every epilogue", arguments: oddShapes)
    func shapes(m: Int, n: Int, k: Int) {
        for bf16 in [false, true] {
            check(m: m, n: n, k: k, bf16: bf16)
        }
    }

    /// Attention's products: no bias, and the residual without LayerScale (a plain add), on whole
    /// 6 x 16 tiles (which take their own epilogue) and on tails.
    @Test("matches the reference without bias or LayerScale", arguments: [(120, 512, 64), (12, 64, 350), (54, 350, 64), (6, 16, 8)])
    func withoutBiasOrScale(m: Int, n: Int, k: Int) {
        check(m: m, n: n, k: k, bf16: false, plain: true)
    }

    func check(m: Int, n: Int, k: Int, bf16: Bool, plain: Bool = false) {
        let label = "\(m)x\(n)x\(k) \(bf16 ? "bf16" : "fp32")\(plain ? " without bias or LayerScale" : "")"
        let x = randomFloats(m * (k + 3), seed: 41)  // row stride k + 3
        let original = randomFloats(n * k, seed: 42)
        let bias: [Float]? = plain ? nil : randomFloats(n, seed: 43), gamma: [Float]? = plain ? nil : randomFloats(n, seed: 44)
        // The weight the kernels multiply with: bf16 packing rounds it.
        let w = bf16 ? Self.roundedToBF16(original) : original
        var packed = [Float](repeating: 0, count: dino_packed_weight_count(n, k))
        var packedBF16 = [UInt16](repeating: 0, count: dino_packed_weight_count(n, k))
        if bf16 { dino_pack_weight_bf16(original, n, k, &packedBF16) } else { dino_pack_weight(original, n, k, &packed) }
        func fastGEMM(_ out: inout [Float], _ ldo: Int, _ mode: dino_gemm_epilogue) {
            withPointer(bias) { b in withPointer(gamma) { g in
                if bf16 { dino_gemm_packed_bf16(x, k + 3, m, k, packedBF16, n, b, &out, ldo, mode, g, DINO_ACT_GELU) }
                else { dino_gemm_packed(x, k + 3, m, k, packed, n, b, &out, ldo, mode, g, DINO_ACT_GELU) }
            } }
        }
        func referenceGEMM(_ out: inout [Float], _ ldo: Int, _ mode: dino_gemm_epilogue, _ g: [Float]?) {
            withPointer(bias) { b in withPointer(g) { g in
                if bf16 { dino_gemm_packed_bf16_ref(x, k + 3, m, k, packedBF16, 16 * k, n, b, &out, ldo, mode, g, DINO_ACT_GELU) }
                else { dino_gemm_packed_ref(x, k + 3, m, k, packed, 16 * k, n, b, &out, ldo, mode, g, DINO_ACT_GELU) }
            } }
        }
        // Float32 summation error bound per element: 2 K eps sum_k |x_k w_k| (the reference
        // accumulates in double), times at most 4 for the GELU slope and LayerScale here.
        var bound = [Double](repeating: 0, count: m * (n + 2))
        for r in 0..<m { for c in 0..<n {
            var s: Double = 0
            for i in 0..<k { s += abs(Double(x[r * (k + 3) + i]) * Double(w[c * k + i])) }
            bound[r * (n + 2) + c] = 4 * (2 * Double(k) * 1.19e-7 * s) + 1e-6
        } }
        for mode in [DINO_GEMM_STORE, DINO_GEMM_ACTIVATION, DINO_GEMM_RESIDUAL] {
            let start = randomFloats(m * (n + 2), seed: 45)  // row stride n + 2; residual adds onto it
            var fast = start, ref = start
            fastGEMM(&fast, n + 2, mode)
            referenceGEMM(&ref, n + 2, mode, gamma)
            let over = (0..<fast.count).filter { abs(Double(fast[$0]) - Double(ref[$0])) > bound[$0] }
            let overCount = over.count  // (the count only: a failing expectation prints its operands)
            #expect(overCount == 0, "\(label) mode \(mode.rawValue): \(over.count) values beyond the summation bound, first at \(over.first ?? -1)")
            // The padding columns between rows are never written.
            for r in 0..<m { #expect(fast[r * (n + 2) + n] == start[r * (n + 2) + n]) }
        }
        // The reference against a direct triple loop on the unpacked (rounded) weight.
        var direct = [Float](repeating: 0, count: m * n)
        for r in 0..<m { for c in 0..<n {
            var s: Double = 0
            for i in 0..<k { s += Double(x[r * (k + 3) + i]) * Double(w[c * k + i]) }
            direct[r * n + c] = Float(s) + (bias?[c] ?? 0)
        } }
        var ref = [Float](repeating: 0, count: m * n)
        referenceGEMM(&ref, n, DINO_GEMM_STORE, nil)
        #expect(worstRelative(ref, direct).error < 1e-6, "\(label)")
        if bf16 {
            // Unpacking gives back exactly the rounded weight in [N, K] layout.
            var unpacked = [Float](repeating: .nan, count: n * k)
            dino_unpack_weight_bf16(packedBF16, n, k, &unpacked)
            #expect(unpacked == w, "\(label): unpacked weight differs from the rounded one")
            // And the rounding is to nearest: within half a bfloat16 step (2^-8 relative).
            #expect(zip(original, w).allSatisfy { abs($0 - $1) <= abs($0) / 256 }, "\(label)")
        }
    }
}
