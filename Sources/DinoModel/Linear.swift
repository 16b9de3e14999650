import CDinoKernels
import DinoCompute

/// Whether the packed-weight kernels (AVX2 or AVX-512) run rather than OpenBLAS: linear layers
/// pack their weights at load, and attention packs each head's keys and values.
var packedKernelsActive: Bool { dino_kernels_active_isa() != DINO_ISA_PORTABLE }

extension LinearWeights {
    /// What a GEMM does with `x · weightᵀ + bias` besides storing it.
    enum Epilogue {
        /// `out = x · wᵀ + bias`.
        case store
        /// `out = act(x · wᵀ + bias)`.
        case activation(dino_activation)
        /// `out += gamma * (x · wᵀ + bias)` (LayerScale, or a plain add without gamma).
        case residual(gamma: [Float]?)
    }

    /// `out[R, outFeatures] = x[R, inFeatures] · weightᵀ + bias`, finished by `epilogue`. Rows
    /// are split over the compute threads.
    ///
    /// Packed weights run the AVX2 or AVX-512 kernel with the epilogue fused (bf16 weights too,
    /// where the CPU has either; without them they are widened to float32 for this call). Otherwise OpenBLAS computes
    /// the product: each thread broadcasts the bias into its output rows and the GEMM
    /// accumulates onto them (beta = 1), and the epilogue follows as its own pass (a residual
    /// goes through `scratch`, `[R, outFeatures]`).
    ///
    /// - Parameters:
    ///   - x: `[R, inFeatures]`, row stride `ldx` (default `inFeatures`).
    ///   - out: `[R, outFeatures]`, row stride `ldo` (default `outFeatures`).
    func apply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int? = nil, into out: UnsafeMutablePointer<Float>, ldo: Int? = nil,
               epilogue: Epilogue = .store, scratch: UnsafeMutablePointer<Float>? = nil, threads: Int = 1) {
        let lda = ldx ?? inFeatures
        let ldc = ldo ?? outFeatures
        withOptionalPointer(bias) { biasPointer in
            // The packed kernels, fp32 or bf16 weights, with the epilogue fused.
            let kernel: ((UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>, dino_gemm_epilogue, UnsafePointer<Float>?,
                          dino_activation) -> Void)?
            if let packed {
                kernel = { x, ldx, rows, out, mode, gamma, act in
                    dino_gemm_packed(x, ldx, rows, inFeatures, packed, outFeatures, biasPointer, out, ldc, mode, gamma, act)
                }
            } else if let packedBF16Dot {
                // AVX512-BF16 where the CPU has it, else the portable model of its arithmetic.
                kernel = { x, ldx, rows, out, mode, gamma, act in
                    dino_gemm_packed_bf16_dot(x, ldx, rows, inFeatures, packedBF16Dot, outFeatures, biasPointer, out, ldc, mode, gamma, act)
                }
            } else if let packedBF16, packedKernelsActive {
                kernel = { x, ldx, rows, out, mode, gamma, act in
                    dino_gemm_packed_bf16(x, ldx, rows, inFeatures, packedBF16, outFeatures, biasPointer, out, ldc, mode, gamma, act)
                }
            } else {
                kernel = nil
            }
            if let kernel {
                let (mode, activation, gamma): (dino_gemm_epilogue, dino_activation, [Float]?) = switch epilogue {
                case .store: (DINO_GEMM_STORE, DINO_ACT_GELU, nil)
                case .activation(let act): (DINO_GEMM_ACTIVATION, act, nil)
                case .residual(let gamma): (DINO_GEMM_RESIDUAL, DINO_ACT_GELU, gamma)
                }
                withOptionalPointer(gamma) { gammaPointer in
                    ComputeThreads.parallelFor(rows, threads: threads, granularity: 6, minimumPerPart: 12) { _, range in
                        kernel(x + range.lowerBound * lda, lda, range.count, out + range.lowerBound * ldc, mode, gammaPointer, activation)
                    }
                }
                return
            }
            let target: UnsafeMutablePointer<Float>
            let targetStride: Int
            if case .residual = epilogue {
                guard let scratch else { preconditionFailure("a residual GEMM without packed weights needs scratch") }
                (target, targetStride) = (scratch, outFeatures)
            } else {
                (target, targetStride) = (out, ldc)
            }
            // bf16 weights without the packed kernels are widened for this call (the portable path).
            unpackedWeight().withUnsafeBufferPointer { w in
                guard let base = w.baseAddress else { return }
                ComputeThreads.parallelFor(rows, threads: threads) { _, range in
                    let c = target + range.lowerBound * targetStride
                    if let biasPointer { dino_fill_rows(c, targetStride, biasPointer, range.count, outFeatures) }
                    // The weight stays in PyTorch's [out, in] layout and is read transposed.
                    sgemm(transposeB: true, m: range.count, n: outFeatures, k: inFeatures, alpha: 1,
                          a: x + range.lowerBound * lda, lda: lda, b: base, ldb: inFeatures,
                          beta: biasPointer == nil ? 0 : 1, c: c, ldc: targetStride)
                    switch epilogue {
                    case .store:
                        break
                    case .activation(let act):
                        for r in 0..<range.count { dino_bias_activation(c + r * targetStride, nil, 1, outFeatures, act) }
                    case .residual(let gamma):
                        withOptionalPointer(gamma) { g in
                            for r in 0..<range.count {
                                dino_residual(out + (range.lowerBound + r) * ldc, c + r * targetStride, nil, g, 1, outFeatures)
                            }
                        }
                    }
                }
            }
        }
    }
}
