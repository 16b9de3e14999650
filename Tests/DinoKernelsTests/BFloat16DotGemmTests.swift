import CDinoKernels
import Foundation
import Testing

/// The GEMM with bfloat16 dot products (`dino_gemm_packed_bf16_dot`): its K-pair packing, the
/// portable model of AVX512-BF16's `VDPBF16PS` against a plain definition, and, on CPUs that have
/// the instruction, the AVX512 kernel against the model.
@Suite("Kernels: GEMM with bfloat16 dot products")
struct BFloat16DotGemmTests {
    /// Tails of every kind: M not a multiple of the 12-row tile, an odd number of 16-column panels
    /// (the last runs alone), odd K (the last pair is half padding), K = 0, more than one block of
    /// 16 tiles (200 rows), two row blocks of the AVX-512 kernel (433 rows), K past 32 pairs with a
    /// tail of them (K 97).
    static let shapes = [(1, 1, 1), (5, 17, 3), (12, 32, 64), (13, 48, 7), (25, 40, 385), (200, 33, 96), (7, 16, 0), (30, 100, 130),
                         (433, 24, 97)]

    static func bf16Bits(_ values: [Float]) -> [UInt16] {
        var bits = [UInt16](repeating: 0, count: values.count)
        dino_f32_to_bf16(values, &bits, values.count)
        return bits
    }

    static func widened(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    @Test("packing puts w[16p + j][2k], w[16p + j][2k + 1] in lane j of pair k of panel p, zero past N and K", arguments: shapes)
    func packing(m: Int, n: Int, k: Int) {
        let w = randomFloats(n * k, seed: 52)
        let bits = Self.bf16Bits(w)
        let pairs = (k + 1) / 2
        let count = dino_packed_weight_count_bf16_dot(n, k)
        #expect(count == (n + 15) / 16 * 16 * pairs)
        var packed = [UInt32](repeating: 0xDEAD_BEEF, count: count)
        dino_pack_weight_bf16_dot(w, n, k, &packed)
        var wrong = 0
        for p in 0..<((n + 15) / 16) { for pair in 0..<pairs { for j in 0..<16 {
            let column = 16 * p + j
            let low: UInt16 = column < n ? bits[column * k + 2 * pair] : 0
            let high: UInt16 = column < n && 2 * pair + 1 < k ? bits[column * k + 2 * pair + 1] : 0
            if packed[(p * pairs + pair) * 16 + j] != UInt32(low) | UInt32(high) << 16 { wrong += 1 }
        } } }
        #expect(wrong == 0, "\(n)x\(k): \(wrong) of \(count) lanes differ from the layout")
        var unpacked = [Float](repeating: .nan, count: n * k)
        dino_unpack_weight_bf16_dot(packed, n, k, &unpacked)
        #expect(unpacked == bits.map(Self.widened), "\(n)x\(k): unpacking does not give the rounded weight back")
    }

    @Test("the portable model of VDPBF16PS matches the definition for odd shapes and every epilogue", arguments: shapes)
    func model(m: Int, n: Int, k: Int) {
        check(m: m, n: n, k: k) { x, ldx, packed, b, out, ldo, mode, g in
            dino_gemm_packed_bf16_dot_model(x, ldx, m, k, packed, (k + 1) / 2 * 16, n, b, out, ldo, mode, g, DINO_ACT_GELU)
        }
    }

    @Test("the AVX512-BF16 kernel matches the definition and the portable model", .enabled(if: dino_gemm_bf16_dot_uses_avx512() != 0),
          arguments: shapes)
    func avx512(m: Int, n: Int, k: Int) {
        let model = check(m: m, n: n, k: k) { x, ldx, packed, b, out, ldo, mode, g in
            dino_gemm_packed_bf16_dot_model(x, ldx, m, k, packed, (k + 1) / 2 * 16, n, b, out, ldo, mode, g, DINO_ACT_GELU)
        }
        let hardware = check(m: m, n: n, k: k) { x, ldx, packed, b, out, ldo, mode, g in
            dino_gemm_packed_bf16_dot(x, ldx, m, k, packed, n, b, out, ldo, mode, g, DINO_ACT_GELU)
        }
        // The model follows the SDM's order of the two products and its rounding, and the kernel
        // sums each output's pairs in the same order with the same epilogue: the same bits (first
        // seen on Zen 4; a CPU that rounds otherwise would fail here and keep the bound above).
        let differing = zip(model, hardware).filter { $0.0.bitPattern != $0.1.bitPattern }.count
        #expect(differing == 0, "AVX512-BF16 against the model, \(m)x\(n)x\(k): \(differing) of \(model.count) outputs differ")
    }

    @Test("strided packing (attention's keys and values) equals the plain loop and the layout", arguments: GemmCheck.packLayouts)
    func stridedPacking(n: Int, k: Int, strideN: Int, strideK: Int) {
        let source = randomFloats(max(1, (n - 1) * strideN + (k - 1) * strideK + 1), seed: 58)
        let count = dino_packed_weight_count_bf16_dot(n, k)
        var fast = [UInt32](repeating: 0xDEAD_BEEF, count: count), ref = fast
        dino_pack_strided_bf16_dot(source, n, k, strideN, strideK, &fast)
        dino_pack_strided_bf16_dot_ref(source, n, k, strideN, strideK, &ref)
        #expect(fast == ref, "\(n)x\(k) strides \(strideN), \(strideK): \(zip(fast, ref).filter { $0 != $1 }.count) of \(count) differ")
        // The reference against the layout: element (n, k) at source[n * strideN + k * strideK].
        let pairs = (k + 1) / 2
        var wrong = 0
        for p in 0..<((n + 15) / 16) { for pair in 0..<pairs { for j in 0..<16 {
            let column = 16 * p + j
            func bits(_ step: Int) -> UInt32 {
                guard column < n, step < k else { return 0 }
                return UInt32(Self.bf16Bits([source[column * strideN + step * strideK]])[0])
            }
            if ref[(p * pairs + pair) * 16 + j] != bits(2 * pair) | bits(2 * pair + 1) << 16 { wrong += 1 }
        } } }
        #expect(wrong == 0, "\(n)x\(k) strides \(strideN), \(strideK): \(wrong) lanes differ from the layout")
    }

    /// (tokens, D, first key, keys): attention's key blocks of one head, a slice of a wider packed
    /// matrix, with tails of keys and an odd number of them (the last pair of values half padding).
    @Test("a slice of packed keys and values (attention's blocks) matches the definition",
          arguments: [(100, 64, 32, 50), (261, 64, 0, 261), (300, 32, 256, 44), (45, 16, 16, 29)])
    func slices(tokens: Int, d: Int, first: Int, keys: Int) {
        let rows = 13
        let q = randomFloats(rows * d, seed: 59), kv = randomFloats(tokens * 2 * d, seed: 60)  // [tokens, 2D]: keys, values
        let p = randomFloats(rows * keys, seed: 61, range: 1)
        var keyPanels = [UInt32](repeating: 0, count: dino_packed_weight_count_bf16_dot(tokens, d))
        var valuePanels = [UInt32](repeating: 0, count: dino_packed_weight_count_bf16_dot(d, tokens))
        dino_pack_strided_bf16_dot(kv, tokens, d, 2 * d, 1, &keyPanels)
        dino_pack_strided_bf16_dot(Array(kv[d...]), d, tokens, 1, 2 * d, &valuePanels)
        let keyStride = (d + 1) / 2 * 16, valueStride = (tokens + 1) / 2 * 16
        var scores = [Float](repeating: 0, count: rows * keys), outputs = [Float](repeating: 0, count: rows * d)
        keyPanels.withUnsafeBufferPointer { kp in valuePanels.withUnsafeBufferPointer { vp in
            dino_gemm_packed_bf16_dot_strided(q, d, rows, d, kp.baseAddress! + first / 16 * keyStride, keyStride, keys, nil,
                                              &scores, keys, DINO_GEMM_STORE, nil, DINO_ACT_GELU)
            dino_gemm_packed_bf16_dot_strided(p, keys, rows, keys, vp.baseAddress! + first / 2 * 16, valueStride, d, nil,
                                              &outputs, d, DINO_GEMM_STORE, nil, DINO_ACT_GELU)
        } }
        let qr = Self.bf16Bits(q).map(Self.widened), kvr = Self.bf16Bits(kv).map(Self.widened)
        let pr = Self.bf16Bits(p).map(Self.widened)
        var worstScore = 0.0, worstOutput = 0.0
        for r in 0..<rows {
            for j in 0..<keys {
                var sum = 0.0, magnitude = 0.0
                for i in 0..<d {
                    let product = Double(qr[r * d + i]) * Double(kvr[(first + j) * 2 * d + i])
                    sum += product
                    magnitude += abs(product)
                }
                worstScore = max(worstScore, abs(Double(scores[r * keys + j]) - sum) / (2 * Double(d) * 1.19e-7 * magnitude + 1e-30))
            }
            for c in 0..<d {
                var sum = 0.0, magnitude = 0.0
                for j in 0..<keys {
                    let product = Double(pr[r * keys + j]) * Double(kvr[(first + j) * 2 * d + d + c])
                    sum += product
                    magnitude += abs(product)
                }
                worstOutput = max(worstOutput, abs(Double(outputs[r * d + c]) - sum) / (2 * Double(keys) * 1.19e-7 * magnitude + 1e-30))
            }
        }
        // Errors as fractions of the float32 summation bound (2 K eps of the sum of |products|).
        #expect(worstScore <= 1 && worstOutput <= 1, "q.k: \(worstScore), p.v: \(worstOutput) of the summation bound")
    }

    @Test("the dispatching entry point runs on this CPU and matches the definition")
    func dispatch() {
        check(m: 37, n: 50, k: 90) { x, ldx, packed, b, out, ldo, mode, g in
            dino_gemm_packed_bf16_dot(x, 90 + 3, 37, 90, packed, 50, b, out, ldo, mode, g, DINO_ACT_GELU)
        }
        print("bfloat16 dot products run on \(dino_gemm_bf16_dot_uses_avx512() != 0 ? "AVX512-BF16" : "the portable model")")
    }

    /// Runs `gemm` (row stride K + 3 in, N + 2 out) in every epilogue against the definition:
    /// x and w rounded to bfloat16, products summed in double, bias, GELU or LayerScale residual.
    /// Returns the outputs of the residual run.
    @discardableResult
    func check(m: Int, n: Int, k: Int,
               _ gemm: (UnsafePointer<Float>, Int, UnsafePointer<UInt32>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>, Int,
                        dino_gemm_epilogue, UnsafePointer<Float>?) -> Void) -> [Float] {
        let label = "\(m)x\(n)x\(k)"
        let ldx = k + 3, ldo = n + 2
        let x = randomFloats(m * ldx, seed: 53), w = randomFloats(n * k, seed: 54)
        let bias = randomFloats(n, seed: 55), gamma = randomFloats(n, seed: 56)
        var packed = [UInt32](repeating: 0, count: dino_packed_weight_count_bf16_dot(n, k))
        dino_pack_weight_bf16_dot(w, n, k, &packed)
        let xr = Self.bf16Bits(x).map(Self.widened), wr = Self.bf16Bits(w).map(Self.widened)
        var last: [Float] = []
        for mode in [DINO_GEMM_STORE, DINO_GEMM_ACTIVATION, DINO_GEMM_RESIDUAL] {
            let start = randomFloats(m * ldo, seed: 57)
            var out = start
            x.withUnsafeBufferPointer { xp in packed.withUnsafeBufferPointer { pp in bias.withUnsafeBufferPointer { bp in
                gamma.withUnsafeBufferPointer { gp in
                    out.withUnsafeMutableBufferPointer { op in
                        gemm(xp.baseAddress!, ldx, pp.baseAddress!, bp.baseAddress, op.baseAddress!, ldo, mode,
                             mode == DINO_GEMM_RESIDUAL ? gp.baseAddress : nil)
                    }
                }
            } } }
            var over = 0, worst = 0.0
            for r in 0..<m { for c in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for i in 0..<k {
                    let product = Double(xr[r * ldx + i]) * Double(wr[c * k + i])
                    sum += product
                    magnitude += abs(product)
                }
                var v = Float(sum) + bias[c]
                if mode == DINO_GEMM_ACTIVATION { v = Float(0.5 * Double(v) * (1 + erf(Double(v) / 2.0.squareRoot()))) }
                let expected = mode == DINO_GEMM_RESIDUAL ? start[r * ldo + c] + gamma[c] * v : v
                // Float32 summation (2 K eps of the sum of |products|), times at most 4 for the GELU
                // slope and LayerScale here, plus the activation's own error.
                let bound = 4 * (2 * Double(k) * 1.19e-7 * magnitude) + 1e-5
                let error = abs(Double(out[r * ldo + c]) - Double(expected))
                worst = max(worst, error)
                if error > bound { over += 1 }
            } }
            #expect(over == 0, "\(label) mode \(mode.rawValue): \(over) values beyond the summation bound (worst error \(worst))")
            // The padding columns between rows are never written.
            let padding = (0..<m).filter { out[$0 * ldo + n] != start[$0 * ldo + n] }.count
            #expect(padding == 0, "\(label) mode \(mode.rawValue): \(padding) padding values written")
            last = out
        }
        return last
    }
}

@Suite("Kernels: CPU feature detection")
struct CPUFeatureTests {
    /// The kernel's CPUID reading against the kernel's own report in /proc/cpuinfo (Linux only).
    @Test("AVX512-BF16 is detected exactly when the kernel lists avx512f and avx512_bf16")
    func avx512bf16() throws {
        #if arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let flags = Set(flagsLine.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
        #expect(flags.contains("avx2"), "the flags line was not read: \(flags.count) flags")
        let listed = flags.contains("avx512f") && flags.contains("avx512_bf16")
        #expect((dino_kernels_cpu_has_avx512bf16() != 0) == listed)
        #else
        #expect(dino_kernels_cpu_has_avx512bf16() == 0)
        #endif
    }
}
