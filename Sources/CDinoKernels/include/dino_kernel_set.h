// The kernels of one instruction set, side by side: what the dispatching entry points of
// dino_kernels.h call, per instruction set, so that tests and benchmarks can run the AVX2 and
// the AVX-512 kernels in one process (forcing the process-wide choice would change it under
// every other caller). Each field has the signature of the entry point of the same name, except
// that gemm_packed and gemm_packed_bf16 take a panel stride (as dino_gemm_packed_strided: 16 K
// when packed whole). Pointers may be NULL only where marked.
#ifndef DINO_KERNEL_SET_H
#define DINO_KERNEL_SET_H

#include "dino_kernels.h"

#ifndef __clang__
#define _Nullable
#endif

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __clang__
#pragma clang assume_nonnull begin
#endif

typedef struct {
    dino_isa isa;
    void (*layernorm)(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma, const float *beta, size_t R,
                      size_t C, float eps);
    void (*bias_activation)(float *x, const float *_Nullable bias, size_t R, size_t C, dino_activation act);
    void (*swiglu)(const float *x12, const float *_Nullable bias, float *out, size_t R, size_t H);
    void (*residual)(float *x, const float *y, const float *_Nullable bias, const float *_Nullable gamma, size_t R,
                     size_t C);
    void (*softmax)(float *x, size_t ldx, size_t R, size_t C, float scale);
    void (*online_softmax_block)(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l, float *o,
                                 size_t ldo, size_t D);
    void (*pack_strided)(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed);
    void (*gemm_packed)(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                        size_t N, const float *_Nullable bias, float *out, size_t ldo, dino_gemm_epilogue mode,
                        const float *_Nullable gamma, dino_activation act);
    void (*gemm_packed_bf16)(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed,
                             size_t panel_stride, size_t N, const float *_Nullable bias, float *out, size_t ldo,
                             dino_gemm_epilogue mode, const float *_Nullable gamma, dino_activation act);
    void (*f16_to_f32)(const uint16_t *src, float *dst, size_t N);
    void (*bf16_to_f32)(const uint16_t *src, float *dst, size_t N);
    void (*f32_to_bf16)(const float *src, uint16_t *dst, size_t N);
} dino_kernel_set;

/// The kernels of `isa` (the portable set: the reference kernels), or NULL where this CPU or
/// this build cannot run them.
const dino_kernel_set *_Nullable dino_kernels_for_isa(dino_isa isa);

#ifdef __clang__
#pragma clang assume_nonnull end
#endif

#ifdef __cplusplus
}
#endif

#endif
