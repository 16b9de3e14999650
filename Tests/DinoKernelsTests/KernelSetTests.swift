import CDinoKernels
import Foundation
import Testing

/// The AVX2 kernels against the plain reference kernels: odd widths and shapes, every epilogue.
/// Runs where the CPU has AVX2 + FMA.
@Suite("Kernels: the AVX2 set against the reference", .enabled(if: dino_kernels_for_isa(DINO_ISA_AVX2) != nil))
struct AVX2KernelTests {
    static let checks = KernelSetChecks(isa: DINO_ISA_AVX2)

    @Test("elementwise kernels, LayerNorm, softmax, online softmax", arguments: ElementwiseCheck.all)
    func elementwise(_ check: ElementwiseCheck) throws { try Self.checks.run(check) }

    @Test("GEMM with packed float32 and bfloat16 weights, every epilogue", arguments: GemmCheck.all)
    func gemm(_ check: GemmCheck) throws { check.run(try Self.checks.kernels()) }

    @Test("packing keys and values", arguments: GemmCheck.packLayouts)
    func packing(n: Int, k: Int, strideN: Int, strideK: Int) throws {
        GemmCheck.checkPacking(try Self.checks.kernels(), n: n, k: k, strideN: strideN, strideK: strideK)
    }

    @Test("conversions")
    func conversions() throws { try Self.checks.conversions() }
}

/// The AVX-512 kernels against the plain reference kernels: odd widths and shapes, every
/// epilogue. Runs where the CPU has AVX-512 F + VL + BW + DQ.
@Suite("Kernels: the AVX-512 set against the reference", .enabled(if: dino_kernels_for_isa(DINO_ISA_AVX512) != nil))
struct AVX512KernelTests {
    static let checks = KernelSetChecks(isa: DINO_ISA_AVX512)

    @Test("elementwise kernels, LayerNorm, softmax, online softmax", arguments: ElementwiseCheck.all)
    func elementwise(_ check: ElementwiseCheck) throws { try Self.checks.run(check) }

    @Test("GEMM with packed float32 and bfloat16 weights, every epilogue", arguments: GemmCheck.all)
    func gemm(_ check: GemmCheck) throws { check.run(try Self.checks.kernels()) }

    @Test("packing keys and values", arguments: GemmCheck.packLayouts)
    func packing(n: Int, k: Int, strideN: Int, strideK: Int) throws {
        GemmCheck.checkPacking(try Self.checks.kernels(), n: n, k: k, strideN: strideN, strideK: strideK)
    }

    @Test("conversions")
    func conversions() throws { try Self.checks.conversions() }

    @Test("the elementwise math gives the AVX2 kernels' bits (one algorithm at two widths)",
          .enabled(if: dino_kernels_for_isa(DINO_ISA_AVX2) != nil),
          arguments: [DINO_ACT_GELU, DINO_ACT_GELU_TANH, DINO_ACT_RELU, DINO_ACT_SILU, DINO_ACT_QUICK_GELU])
    func sameBitsAsAVX2(kind: dino_activation) throws {
        let avx512 = try Self.checks.kernels(), avx2 = try KernelSetChecks(isa: DINO_ISA_AVX2).kernels()
        let x = randomFloats(3 * 1537, seed: 64, range: 12), bias = randomFloats(1537, seed: 65)
        var a = x, b = x
        avx512.bias_activation(&a, bias, 3, 1537, kind)
        avx2.bias_activation(&b, bias, 3, 1537, kind)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "activation \(kind.rawValue)")
    }
}

/// One kernel set's checks, shared by the suites of each instruction set.
struct KernelSetChecks: Sendable {
    let isa: dino_isa

    /// The set, which the suites only ask for where the CPU can run it.
    func kernels() throws -> dino_kernel_set {
        try #require(dino_kernels_for_isa(isa), "\(String(cString: dino_isa_name(isa))) kernels are not available").pointee
    }

    func run(_ check: ElementwiseCheck) throws {
        check.run(try kernels(), label: String(cString: dino_isa_name(isa)))
    }

    /// The conversion tests of the reference on this set's conversions, and bit-for-bit equality
    /// with the reference on random values, denormals, infinities and NaNs (a NaN may be quieted).
    func conversions() throws {
        let k = try kernels()
        ConversionChecks.halfExhaustive(k.f16_to_f32)
        ConversionChecks.bfloat16(k.f32_to_bf16, k.bf16_to_f32)
        let specials: [Float] = [0, -0.0, .infinity, -.infinity, .nan, -.nan, .signalingNaN, .leastNonzeroMagnitude,
                                 -.leastNormalMagnitude, Float(bitPattern: 0x007F_FFFF), Float(bitPattern: 0x7F7F_FFFF),
                                 Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000)]
        for count in [0, 1, 15, 16, 17, 1000 + specials.count] {
            let values = Array((specials + randomFloats(1000, seed: 66, range: 1e6)).prefix(count))
            var fast = [UInt16](repeating: 0, count: count), ref = fast
            k.f32_to_bf16(values, &fast, count)
            dino_f32_to_bf16_ref(values, &ref, count)
            #expect(fast == ref, "f32 -> bf16, \(count) values: \(zip(fast, ref).filter { $0 != $1 }.count) differ")
            let bits = fast
            var wide = [Float](repeating: 0, count: count), wideRef = wide
            k.bf16_to_f32(bits, &wide, count)
            dino_bf16_to_f32_ref(bits, &wideRef, count)
            #expect(wide.map(\.bitPattern) == wideRef.map(\.bitPattern), "bf16 -> f32, \(count) values")
        }
    }
}

/// One check of an elementwise kernel (or LayerNorm, softmax, online softmax) against the
/// reference, on one row width or activation.
enum ElementwiseCheck: Sendable, CustomTestStringConvertible {
    case layernorm(width: Int)
    case layernormStrided
    case activation(dino_activation)
    case geluAccuracy
    case softmax(width: Int)
    case residual(width: Int)
    case swiglu(width: Int)
    case onlineSoftmax(blockSize: Int, range: Float)

    /// Row widths with and without vector tails at 8 and 16 floats.
    static let widths = [1, 7, 8, 13, 16, 17, 64, 384, 385, 1537]

    static var all: [ElementwiseCheck] {
        widths.map { .layernorm(width: $0) } + [.layernormStrided]
            + [DINO_ACT_GELU, DINO_ACT_GELU_TANH, DINO_ACT_RELU, DINO_ACT_SILU, DINO_ACT_QUICK_GELU].map { .activation($0) }
            + [.geluAccuracy] + widths.map { .softmax(width: $0) } + widths.map { .residual(width: $0) }
            + widths.map { .swiglu(width: $0) }
            + [1, 7, 16, 64, 300].flatMap { block in [20, 1000].map { .onlineSoftmax(blockSize: block, range: $0) } }
    }

    var testDescription: String {
        switch self {
        case .layernorm(let width): "layernorm, width \(width)"
        case .layernormStrided: "layernorm in place with a row stride"
        case .activation(let kind): "bias + activation \(kind.rawValue)"
        case .geluAccuracy: "exact GELU against double-precision erf"
        case .softmax(let width): "softmax, width \(width)"
        case .residual(let width): "residual with and without LayerScale and bias, width \(width)"
        case .swiglu(let width): "SwiGLU gate, width \(width)"
        case .onlineSoftmax(let block, let range): "online softmax, blocks of \(block), scores up to \(range)"
        }
    }

    func run(_ k: dino_kernel_set, label: String) {
        switch self {
        case .layernorm(let width):
            let rows = 5
            let x = randomFloats(rows * width, seed: 1).enumerated().map { $0.element + Float($0.offset % 3) * 10 }
            let gamma = randomFloats(width, seed: 2), beta = randomFloats(width, seed: 3)
            var fast = [Float](repeating: 0, count: rows * width), ref = fast
            k.layernorm(x, width, &fast, width, gamma, beta, rows, width, 1e-6)
            dino_layernorm_ref(x, width, &ref, width, gamma, beta, rows, width, 1e-6)
            let (error, index) = worstRelative(fast, ref)
            #expect(error < 2e-6, "\(label) layernorm width \(width): error \(error) at \(index): \(fast[index]) vs \(ref[index])")
        case .layernormStrided:
            let (rows, width, stride) = (3, 13, 20)
            var x = randomFloats(rows * stride, seed: 4)
            let gamma = randomFloats(width, seed: 5), beta = randomFloats(width, seed: 6)
            var ref = [Float](repeating: 0, count: rows * width)
            dino_layernorm_ref(x, stride, &ref, width, gamma, beta, rows, width, 1e-5)
            let untouched = x
            x.withUnsafeMutableBufferPointer { p in
                guard let base = p.baseAddress else { return }
                k.layernorm(base, stride, base, stride, gamma, beta, rows, width, 1e-5)
            }
            for r in 0..<rows {
                let row = Array(x[(r * stride)..<(r * stride + width)])
                #expect(worstRelative(row, Array(ref[(r * width)..<((r + 1) * width)])).error < 2e-6)
                #expect(Array(x[(r * stride + width)..<((r + 1) * stride)]) == Array(untouched[(r * stride + width)..<((r + 1) * stride)]),
                        "\(label): padding between rows was written")
            }
        case .activation(let kind):
            for width in Self.widths {
                let rows = 3
                let x = randomFloats(rows * width, seed: 7, range: 12)
                let bias = randomFloats(width, seed: 8)
                var fast = x, ref = x
                k.bias_activation(&fast, bias, rows, width, kind)
                dino_bias_activation_ref(&ref, bias, rows, width, kind)
                let (error, index) = worstRelative(fast, ref)
                #expect(error < 1e-6, "\(label) activation \(kind.rawValue) width \(width): error \(error) at \(index): \(fast[index]) vs \(ref[index])")
            }
        case .geluAccuracy:
            let x = stride(from: Float(-12), through: 12, by: 1.0 / 1024).map { $0 }
            var fast = x
            k.bias_activation(&fast, nil, 1, x.count, DINO_ACT_GELU)
            var worst: Double = 0
            for (v, g) in zip(x, fast) {
                let exact = 0.5 * Double(v) * (1 + erf(Double(v) / 2.0.squareRoot()))
                worst = max(worst, abs(Double(g) - exact) / max(1, abs(exact)))
            }
            print("kernels: \(label) GELU worst error vs double erf over [-12, 12]: \(worst)")
            #expect(worst < 1e-6)
        case .softmax(let width):
            let rows = 4
            let x = randomFloats(rows * width, seed: 9, range: 30)
            var fast = x, ref = x
            k.softmax(&fast, width, rows, width, 0.125)
            dino_softmax_ref(&ref, width, rows, width, 0.125)
            let (error, index) = worstRelative(fast, ref)
            #expect(error < 1e-6, "\(label) softmax width \(width): error \(error) at \(index)")
            for r in 0..<rows {
                let sum = fast[(r * width)..<((r + 1) * width)].reduce(0, +)
                #expect(abs(sum - 1) < 1e-5)
            }
        case .residual(let width):
            let rows = 3
            let x = randomFloats(rows * width, seed: 10), y = randomFloats(rows * width, seed: 11)
            let bias = randomFloats(width, seed: 12), gamma = randomFloats(width, seed: 13)
            for (b, g) in [(bias, gamma), (nil, gamma), (bias, nil), (nil, nil)] as [([Float]?, [Float]?)] {
                var fast = x, ref = x
                withPointer(b) { bp in withPointer(g) { gp in
                    k.residual(&fast, y, bp, gp, rows, width)
                    dino_residual_ref(&ref, y, bp, gp, rows, width)
                } }
                #expect(worstRelative(fast, ref).error < 1e-6, "\(label) residual width \(width)")
            }
        case .swiglu(let width):
            let rows = 3
            let x12 = randomFloats(rows * 2 * width, seed: 16, range: 10), bias = randomFloats(2 * width, seed: 17)
            var fast = [Float](repeating: 0, count: rows * width), ref = fast
            k.swiglu(x12, bias, &fast, rows, width)
            dino_swiglu_ref(x12, bias, &ref, rows, width)
            #expect(worstRelative(fast, ref).error < 1e-6, "\(label) SwiGLU width \(width)")
        case .onlineSoftmax(let block, let range):
            OnlineSoftmaxTests.check(blockSize: block, range: range, label: label, k.online_softmax_block)
        }
    }
}

/// One check of a set's packed GEMM against the reference: an odd shape, float32 or bfloat16
/// weights, with bias and LayerScale or without, in every epilogue.
struct GemmCheck: Sendable, CustomTestStringConvertible {
    let m: Int, n: Int, k: Int
    let bf16: Bool
    var plain = false

    /// Odd sizes and tails of every kind; 433 rows make three row blocks, K 3100 two K blocks
    /// (the kernels split K above 3072) and K 6500 three; 30 and 64 columns fill two 16-column
    /// panels partly and exactly, 100 leaves a panel of a tile of two alone.
    static let oddShapes = [(1, 1, 1), (5, 17, 3), (6, 16, 8), (7, 33, 20), (13, 40, 64), (261, 96, 384), (250, 37, 1000),
                            (433, 24, 50), (14, 33, 3100), (7, 17, 6500), (9, 20, 0), (25, 30, 17), (12, 64, 31),
                            (24, 100, 33), (37, 80, 16)]

    /// (N, K, stride_n, stride_k): attention's keys of one head (rows of a [tokens, 3C] buffer),
    /// its values (transposed), both with tails of N and K, and a layout with neither stride 1.
    static let packLayouts = [(261, 64, 1152, 1), (37, 13, 50, 1), (16, 8, 8, 1), (5, 3, 7, 1), (64, 261, 1, 1152), (40, 19, 1, 45),
                              (1, 1, 1, 1), (33, 9, 2, 70), (20, 0, 1, 20), (32, 40, 2304, 1), (16, 17, 20, 1)]

    static var all: [GemmCheck] {
        oddShapes.flatMap { s in [false, true].map { GemmCheck(m: s.0, n: s.1, k: s.2, bf16: $0) } }
            // Attention's products: no bias, and the residual without LayerScale (a plain add),
            // on whole tiles (which take their own epilogue) and on tails.
            + [(120, 512, 64), (12, 64, 350), (54, 350, 64), (6, 16, 8), (24, 64, 261)].map {
                GemmCheck(m: $0.0, n: $0.1, k: $0.2, bf16: false, plain: true)
            }
    }

    var testDescription: String { "\(m)x\(n)x\(k) \(bf16 ? "bf16" : "fp32")\(plain ? " without bias or LayerScale" : "")" }

    /// `w` rounded to bfloat16 and widened back, as the bf16 kernels see it.
    static func roundedToBF16(_ w: [Float]) -> [Float] {
        var bits = [UInt16](repeating: 0, count: w.count)
        dino_f32_to_bf16_ref(w, &bits, w.count)
        var back = [Float](repeating: 0, count: w.count)
        dino_bf16_to_f32_ref(bits, &back, w.count)
        return back
    }

    private var x: [Float] { randomFloats(m * (k + 3), seed: 41) }  // row stride k + 3
    private var original: [Float] { randomFloats(n * k, seed: 42) }
    private var bias: [Float]? { plain ? nil : randomFloats(n, seed: 43) }
    private var gamma: [Float]? { plain ? nil : randomFloats(n, seed: 44) }

    private func packed() -> (fp32: [Float], bf16: [UInt16]) {
        var packed = [Float](repeating: 0, count: dino_packed_weight_count(n, k))
        var packedBF16 = [UInt16](repeating: 0, count: dino_packed_weight_count(n, k))
        if bf16 { dino_pack_weight_bf16(original, n, k, &packedBF16) } else { dino_pack_weight(original, n, k, &packed) }
        return (packed, packedBF16)
    }

    private func gemm(_ kernels: dino_kernel_set, packed: (fp32: [Float], bf16: [UInt16]), _ out: inout [Float], _ ldo: Int,
                      _ mode: dino_gemm_epilogue, _ g: [Float]?) {
        let x = self.x
        withPointer(bias) { b in withPointer(g) { g in
            if bf16 { kernels.gemm_packed_bf16(x, k + 3, m, k, packed.bf16, 16 * k, n, b, &out, ldo, mode, g, DINO_ACT_GELU) }
            else { kernels.gemm_packed(x, k + 3, m, k, packed.fp32, 16 * k, n, b, &out, ldo, mode, g, DINO_ACT_GELU) }
        } }
    }

    /// The set's GEMM against the reference in every epilogue, within the float32 summation bound.
    func run(_ kernels: dino_kernel_set) {
        let label = testDescription
        let x = self.x
        let w = bf16 ? Self.roundedToBF16(original) : original
        let packed = packed()
        let reference = dino_kernels_for_isa(DINO_ISA_PORTABLE)!.pointee
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
            gemm(kernels, packed: packed, &fast, n + 2, mode, gamma)
            gemm(reference, packed: packed, &ref, n + 2, mode, gamma)
            let over = (0..<fast.count).filter { abs(Double(fast[$0]) - Double(ref[$0])) > bound[$0] }
            let overCount = over.count  // (the count only: a failing expectation prints its operands)
            #expect(overCount == 0, "\(label) mode \(mode.rawValue): \(over.count) values beyond the summation bound, first at \(over.first ?? -1)")
            // The padding columns between rows are never written.
            let padding = (0..<m).filter { fast[$0 * (n + 2) + n] != start[$0 * (n + 2) + n] }.count
            #expect(padding == 0, "\(label) mode \(mode.rawValue): \(padding) padding values written")
        }
    }

    /// The reference against a direct triple loop on the unpacked (rounded) weight, and the bf16
    /// packing's rounding.
    func checkReference(_ reference: dino_kernel_set) {
        let label = testDescription
        let x = self.x, original = self.original
        let w = bf16 ? Self.roundedToBF16(original) : original
        let packed = packed()
        var direct = [Float](repeating: 0, count: m * n)
        for r in 0..<m { for c in 0..<n {
            var s: Double = 0
            for i in 0..<k { s += Double(x[r * (k + 3) + i]) * Double(w[c * k + i]) }
            direct[r * n + c] = Float(s) + (bias?[c] ?? 0)
        } }
        var ref = [Float](repeating: 0, count: m * n)
        gemm(reference, packed: packed, &ref, n, DINO_GEMM_STORE, nil)
        #expect(worstRelative(ref, direct).error < 1e-6, "\(label)")
        if bf16 {
            // Unpacking gives back exactly the rounded weight in [N, K] layout.
            var unpacked = [Float](repeating: .nan, count: n * k)
            dino_unpack_weight_bf16(packed.bf16, n, k, &unpacked)
            #expect(unpacked == w, "\(label): unpacked weight differs from the rounded one")
            // And the rounding is to nearest: within half a bfloat16 step (2^-8 relative).
            #expect(zip(original, w).allSatisfy { abs($0 - $1) <= abs($0) / 256 }, "\(label)")
        }
    }

    /// The set's packer against the reference packer, and the reference against the definition.
    static func checkPacking(_ kernels: dino_kernel_set, n: Int, k: Int, strideN: Int, strideK: Int) {
        let source = randomFloats(max(1, (n - 1) * strideN + (k - 1) * strideK + 1), seed: 46)
        let count = dino_packed_weight_count(n, k)
        var fast = [Float](repeating: .nan, count: count), ref = [Float](repeating: .nan, count: count)
        kernels.pack_strided(source, n, k, strideN, strideK, &fast)
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
}
