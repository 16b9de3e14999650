// Shared between the kernel files; not part of the public header.
#ifndef DINO_KERNELS_INTERNAL_H
#define DINO_KERNELS_INTERNAL_H
#include "dino_kernels.h"

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
/// 1 when the AVX2 kernels were compiled for this architecture.
int dino_avx2_compiled(void);

#endif
