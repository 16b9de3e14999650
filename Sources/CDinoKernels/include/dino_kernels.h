// Hot loops of the DINOv2 forward pass.
//
// Every kernel has a plain reference version (`*_ref`, scalar C with libm) and a
// public entry point that dispatches at run time to the best instruction set the CPU has:
// AVX-512 (F + VL + BW + DQ), then AVX2 + FMA, then the reference version.
//
// Dimension letters: R rows (tokens of all images), C columns (channels),
// N number of elements, P patch size, B batch.
#ifndef DINO_KERNELS_H
#define DINO_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction sets the dispatcher can choose, in increasing order of preference.
typedef enum {
    DINO_ISA_PORTABLE = 0,
    DINO_ISA_AVX2 = 1,   // AVX2 + FMA
    DINO_ISA_AVX512 = 2, // AVX-512 F + VL + BW + DQ (and AVX2 + FMA)
} dino_isa;

/// The instruction set the dispatching kernels use now.
dino_isa dino_kernels_active_isa(void);
/// Whether this CPU can run the AVX2 + FMA kernels.
int dino_kernels_cpu_has_avx2(void);
/// Whether this CPU (and the OS, which must save the zmm state) can run the AVX-512 kernels.
int dino_kernels_cpu_has_avx512(void);
/// Forces the dispatching kernels onto `isa`, or the best instruction set below it that the CPU
/// has. Returns the instruction set now active. The environment variable
/// DINO_ISA=portable|avx2|avx512 does the same at start-up.
dino_isa dino_kernels_force_isa(dino_isa isa);
/// "portable", "avx2" or "avx512".
const char *dino_isa_name(dino_isa isa);

/// Whether this CPU has AMX (AMX-TILE and AMX-BF16). Reported only: no kernel uses it yet.
int dino_kernels_cpu_has_amx(void);
/// The CPU's brand string (CPUID leaves 0x80000002-4, at most 48 characters, NUL-terminated)
/// and its family and model numbers (leaf 1, extended fields included); "" and 0 elsewhere.
void dino_cpu_identity(char name[49], int *family, int *model);

/// Activation functions of the FFN (`config.hidden_act`).
typedef enum {
    DINO_ACT_GELU = 0,       // exact: 0.5 x (1 + erf(x / sqrt 2))
    DINO_ACT_GELU_TANH = 1,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    DINO_ACT_RELU = 2,
    DINO_ACT_SILU = 3,       // x * sigmoid(x)
    DINO_ACT_QUICK_GELU = 4, // x * sigmoid(1.702 x)
} dino_activation;

// --- LayerNorm ------------------------------------------------------------------
// x: [R, C] (row stride ldx), y: [R, C] (row stride ldy), gamma, beta: [C].
// y = (x - mean) / sqrt(var + eps) * gamma + beta, statistics per row; y may equal x.
void dino_layernorm(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma,
                    const float *beta, size_t R, size_t C, float eps);
void dino_layernorm_ref(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma,
                        const float *beta, size_t R, size_t C, float eps);

// --- Bias + activation ------------------------------------------------------------
// x: [R, C] in place, bias: [C] or NULL. x = act(x + bias).
void dino_bias_activation(float *x, const float *bias, size_t R, size_t C, dino_activation act);
void dino_bias_activation_ref(float *x, const float *bias, size_t R, size_t C, dino_activation act);

// --- SwiGLU gate -----------------------------------------------------------------
// x12: [R, 2H] (first H columns x1, last H columns x2), bias: [2H] or NULL, out: [R, H].
// out = silu(x1 + b1) * (x2 + b2).
void dino_swiglu(const float *x12, const float *bias, float *out, size_t R, size_t H);
void dino_swiglu_ref(const float *x12, const float *bias, float *out, size_t R, size_t H);

// --- Residual with LayerScale ----------------------------------------------------
// x: [R, C] residual stream in place, y: [R, C] branch output, bias: [C] or NULL,
// gamma: [C] or NULL (no LayerScale). x += gamma * (y + bias).
void dino_residual(float *x, const float *y, const float *bias, const float *gamma, size_t R,
                   size_t C);
void dino_residual_ref(float *x, const float *y, const float *bias, const float *gamma, size_t R,
                       size_t C);

// --- Softmax ---------------------------------------------------------------------
// x: [R, C] in place (row stride ldx). Each row becomes softmax(scale * row).
void dino_softmax(float *x, size_t ldx, size_t R, size_t C, float scale);
void dino_softmax_ref(float *x, size_t ldx, size_t R, size_t C, float scale);

// --- Streaming (online) softmax for tiled attention -------------------------------------
// One key block of flash-style attention. s: [R, Ck] raw scores q·k of R query rows against
// Ck keys (row stride lds); m, l: [R] running max and running sum (start at -inf and 0);
// o: [R, D] running output (row stride ldo). For each row: the new max includes scale * s,
// o and l are rescaled by exp(old max - new max), s becomes exp(scale * s - new max) (the
// block's unnormalised probabilities, to be multiplied with the block's values into o), and
// l gains their sum.
void dino_online_softmax_block(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l,
                               float *o, size_t ldo, size_t D);
void dino_online_softmax_block_ref(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l,
                                   float *o, size_t ldo, size_t D);
// o: [R, D] (row stride ldo) divided row-wise by l: [R].
void dino_divide_rows(float *o, size_t ldo, size_t R, size_t D, const float *l);

// --- Bias broadcast ------------------------------------------------------------------
// y: [R, C] (row stride ldy) set to bias: [C] on every row (so a GEMM can accumulate onto it).
void dino_fill_rows(float *y, size_t ldy, const float *bias, size_t R, size_t C);

// --- GEMM against weights packed at load ------------------------------------------------
// The weight w: [N, K] (PyTorch's [out, in]) is packed once into panels of 16 output columns:
// [ceil(N/16)][K][16], zero-padded. Then out: [M, N] (row stride ldo) is computed from
// x: [M, K] (row stride ldx) and finished by `mode`:
//   DINO_GEMM_STORE       out = x · wᵀ + bias
//   DINO_GEMM_ACTIVATION  out = act(x · wᵀ + bias)
//   DINO_GEMM_RESIDUAL    out += gamma * (x · wᵀ + bias)  (LayerScale; plain add when gamma is NULL)
// bias: [N] or NULL; gamma: [N] or NULL.
typedef enum {
    DINO_GEMM_STORE = 0,
    DINO_GEMM_ACTIVATION = 1,
    DINO_GEMM_RESIDUAL = 2,
} dino_gemm_epilogue;

size_t dino_packed_weight_count(size_t N, size_t K);
void dino_pack_weight(const float *w, size_t N, size_t K, float *packed);
// Packs any strided N x K matrix the same way: element (n, k) at w[n * stride_n + k * stride_k]
// (attention packs the keys of one head as [keys, D] and its values transposed as [D, keys]).
void dino_pack_strided(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed);
void dino_pack_strided_ref(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed);
void dino_gemm_packed(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t N, const float *bias,
                      float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma, dino_activation act);
// As dino_gemm_packed with the panels panel_stride floats apart (16 K when packed whole; a slice
// of keys of a wider packed matrix keeps the wider stride).
void dino_gemm_packed_strided(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                              size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode,
                              const float *gamma, dino_activation act);
void dino_gemm_packed_ref(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                          size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                          dino_activation act);

// --- The same GEMM with bfloat16 weights ------------------------------------------------
// Weights rounded to bfloat16 (to nearest even) and packed in the same panels, each row of 16
// interleaved for the AVX2 kernel: the 32-bit lane i of a row holds column i in its low half and
// column i + 8 in its high half. The kernel widens each weight to float32 exactly (a shift), so
// the products and sums are float32 as in dino_gemm_packed; x and out stay float32. CPUs without
// AVX2 run the reference; dino_unpack_weight_bf16 gives the weight back in PyTorch's [N, K] layout
// (as float32) for a BLAS fallback.
void dino_pack_weight_bf16(const float *w, size_t N, size_t K, uint16_t *packed);
void dino_unpack_weight_bf16(const uint16_t *packed, size_t N, size_t K, float *w);
void dino_gemm_packed_bf16(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed, size_t N,
                           const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                           dino_activation act);
void dino_gemm_packed_bf16_ref(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed,
                               size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                               dino_gemm_epilogue mode, const float *gamma, dino_activation act);

// --- The same GEMM with bfloat16 dot products ----------------------------------------------
// For CPUs with AVX512-BF16: x is rounded to bfloat16 too (to nearest even) and each pair of
// products is summed by VDPBF16PS into float32 accumulators. The weights are packed in panels of
// 16 columns, K in pairs: the 32-bit lane j of pair k of panel p holds w[16p + j][2k] in its low
// half and w[16p + j][2k + 1] in its high half (zero past N and K); the panel is
// dino_packed_weight_count_bf16_dot(N, K) uint32_t. dino_gemm_packed_bf16_dot runs the AVX512
// kernel where the CPU has AVX512-BF16 and the active ISA is AVX-512; elsewhere the same
// arithmetic through a portable model of the instruction (dino_gemm_packed_bf16_dot_model, slow;
// the tests check it against the reference). The reference sums bf16(x) * w in double precision.
int dino_kernels_cpu_has_avx512bf16(void);
int dino_gemm_bf16_dot_uses_avx512(void);
size_t dino_packed_weight_count_bf16_dot(size_t N, size_t K);
void dino_pack_weight_bf16_dot(const float *w, size_t N, size_t K, uint32_t *packed);
// Packs any strided N x K matrix the same way: element (n, k) at w[n * stride_n + k * stride_k]
// (attention packs one head's keys as [keys, D] and its values transposed as [D, keys]).
void dino_pack_strided_bf16_dot(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, uint32_t *packed);
void dino_pack_strided_bf16_dot_ref(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k,
                                    uint32_t *packed);
void dino_unpack_weight_bf16_dot(const uint32_t *packed, size_t N, size_t K, float *w);
void dino_gemm_packed_bf16_dot(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed, size_t N,
                               const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                               dino_activation act);
// As dino_gemm_packed_bf16_dot with the panels panel_stride lanes apart ((K + 1) / 2 * 16 when
// packed whole; a slice of a wider packed matrix keeps the wider stride, and starts at an even K).
void dino_gemm_packed_bf16_dot_strided(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed,
                                       size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                       dino_gemm_epilogue mode, const float *gamma, dino_activation act);
void dino_gemm_packed_bf16_dot_model(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed,
                                     size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                     dino_gemm_epilogue mode, const float *gamma, dino_activation act);
void dino_gemm_packed_bf16_dot_ref(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed,
                                   size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                   dino_gemm_epilogue mode, const float *gamma, dino_activation act);

// --- FMA peak ----------------------------------------------------------------------------
// Runs `iterations` steps of 12 independent FMAs (no loads) on vectors of `isa` (8 floats for
// AVX2, 16 for AVX-512) on the calling thread and returns the floating-point operations done
// (DINO_FMA_PEAK_FLOPS_PER_STEP, or _AVX512, per step), or 0 where the CPU cannot run `isa` or it
// is portable. `checksum`, if not NULL, receives the sum of the final values (each lane tends to 1).
// Time it to get the FMA peak that bounds the GEMM kernels of that instruction set.
#define DINO_FMA_PEAK_FLOPS_PER_STEP 192
#define DINO_FMA_PEAK_FLOPS_PER_STEP_AVX512 384
double dino_fma_peak_loop(dino_isa isa, size_t iterations, double *checksum);

// --- Patch extraction (im2col of a stride-P, kernel-P convolution) ----------------
// image: [B, Cin, H, W]; out: [B * (H/P) * (W/P), Cin * P * P], rows in row-major patch
// order (y, then x), columns in the conv weight order (channel, ky, kx).
void dino_patchify(const float *image, float *out, size_t B, size_t Cin, size_t H, size_t W,
                   size_t P);

// --- im2col of a square-kernel convolution (one image, a band of output rows) --------------
// image: [I, H, W]; columns: [I * K * K, rows * W'] with W' = out_width = (W + 2 pad - K) / stride + 1.
// Row (i * K + ky) * K + kx, column r * W' + ox holds
// image[i, (first_row + r) * stride - pad + ky, ox * stride - pad + kx], or 0 outside the image:
// the right operand of the GEMM out[O, rows * W'] = weight[O, I * K * K] · columns.
// Portable C; dino_im2col copies contiguous runs where dino_im2col_ref tests every element.
void dino_im2col(const float *image, size_t I, size_t H, size_t W, size_t K, size_t stride, size_t pad,
                 size_t first_row, size_t rows, size_t out_width, float *columns);
void dino_im2col_ref(const float *image, size_t I, size_t H, size_t W, size_t K, size_t stride, size_t pad,
                     size_t first_row, size_t rows, size_t out_width, float *columns);

// --- Image resampling -----------------------------------------------------------------
// src: RGB8 [sh, sw, 3], dst: RGB8 [dh, dw, 3]. Antialiased bicubic exactly as Pillow's
// Image.resize(BICUBIC) computes it (fixed-point weights, 8-bit intermediate). Returns 0, or -1
// for invalid sizes or when memory runs out.
int dino_resize_rgb8_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

// --- Element type conversion -------------------------------------------------------
// src: [N] IEEE half / bfloat16 bit patterns, dst: [N] float.
void dino_f16_to_f32(const uint16_t *src, float *dst, size_t N);
void dino_bf16_to_f32(const uint16_t *src, float *dst, size_t N);
// src: [N] float, dst: [N] bfloat16 bit patterns, round to nearest even.
void dino_f32_to_bf16(const float *src, uint16_t *dst, size_t N);
void dino_f16_to_f32_ref(const uint16_t *src, float *dst, size_t N);
void dino_bf16_to_f32_ref(const uint16_t *src, float *dst, size_t N);
void dino_f32_to_bf16_ref(const float *src, uint16_t *dst, size_t N);

#ifdef __cplusplus
}
#endif

#endif
