// Shared between the kernel files; not part of the public header.
#ifndef DINO_KERNELS_INTERNAL_H
#define DINO_KERNELS_INTERNAL_H
#include "dino_kernel_set.h"

float dino_activation_scalar(float v, dino_activation act);

void dino_layernorm_avx2(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma,
                           const float *beta, size_t R, size_t C, float eps);
void dino_bias_activation_avx2(float *x, const float *bias, size_t R, size_t C,
                                 dino_activation act);
void dino_swiglu_avx2(const float *x12, const float *bias, float *out, size_t R, size_t H);
void dino_residual_avx2(float *x, const float *y, const float *bias, const float *gamma, size_t R,
                          size_t C);
void dino_softmax_avx2(float *x, size_t ldx, size_t R, size_t C, float scale);
void dino_online_softmax_block_avx2(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l,
                                    float *o, size_t ldo, size_t D);
void dino_gemm_packed_avx2(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                           size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                           dino_activation act);
void dino_gemm_packed_bf16_avx2(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed,
                                size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                dino_gemm_epilogue mode, const float *gamma, dino_activation act);
size_t dino_transpose_panel_avx2(const float *rows, size_t stride, size_t K, float *panel);

void dino_layernorm_avx512(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma, const float *beta,
                           size_t R, size_t C, float eps);
void dino_bias_activation_avx512(float *x, const float *bias, size_t R, size_t C, dino_activation act);
void dino_swiglu_avx512(const float *x12, const float *bias, float *out, size_t R, size_t H);
void dino_residual_avx512(float *x, const float *y, const float *bias, const float *gamma, size_t R, size_t C);
void dino_softmax_avx512(float *x, size_t ldx, size_t R, size_t C, float scale);
void dino_online_softmax_block_avx512(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l,
                                      float *o, size_t ldo, size_t D);
void dino_gemm_packed_avx512(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                             size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode,
                             const float *gamma, dino_activation act);
void dino_gemm_packed_bf16_avx512(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed,
                                  size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                  dino_gemm_epilogue mode, const float *gamma, dino_activation act);
/// The GEMM with bfloat16 dot products on AVX512-BF16 (see dino_gemm_packed_bf16_dot_strided).
void dino_gemm_packed_bf16_dot_avx512(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed,
                                      size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                      dino_gemm_epilogue mode, const float *gamma, dino_activation act);
/// dino_pack_strided_bf16_dot for stride_k == 1 or stride_n == 1, with AVX-512.
void dino_pack_strided_bf16_dot_avx512(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k,
                                       uint32_t *packed);
size_t dino_transpose_panel_avx512(const float *rows, size_t stride, size_t K, float *panel);
void dino_f16_to_f32_avx512(const uint16_t *src, float *dst, size_t N);
void dino_bf16_to_f32_avx512(const uint16_t *src, float *dst, size_t N);
void dino_f32_to_bf16_avx512(const float *src, uint16_t *dst, size_t N);

/// dino_pack_strided with copies for the two strides attention uses (no vector transposes), and
/// with the AVX2 or AVX-512 transposes of 16 rows for the keys.
void dino_pack_strided_plain(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed);
void dino_pack_strided_avx2(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed);
void dino_pack_strided_avx512(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed);

// Blocking of the packed GEMMs, for `M` rows of `K` steps in tiles of `tile_rows` rows: a panel
// slice (KC steps of weights) serves MC rows, whose KC-long slices of x stay in L2 or L3 across
// all panels. Every row block streams the whole weight, so the blocks are made equal: 131 rows
// are one block, not 120 plus an 11-row remainder that would stream the weight again. K is not
// split up to 3072 (every ViT up to ViT-L): the slice then streams from L2 instead of sitting in
// L1, which the prefetchers keep up with, and no partial sums go through memory. Row blocks of
// up to 216 rows beat 72, 144 and 288 (these sizes and their measurements: docs/performance.md).
static inline __attribute__((always_inline)) void dino_gemm_blocking(size_t M, size_t K, size_t tile_rows, size_t *KC,
                                                                     size_t *MC) {
    const size_t KC_MAX = 3072, MC_MAX = 216;
    size_t k_blocks = (K + KC_MAX - 1) / KC_MAX;
    *KC = k_blocks > 1 ? (K + k_blocks - 1) / k_blocks : KC_MAX;
    size_t row_blocks = (M + MC_MAX - 1) / MC_MAX;
    *MC = row_blocks ? ((M + row_blocks - 1) / row_blocks + tile_rows - 1) / tile_rows * tile_rows : tile_rows;
}

#endif
