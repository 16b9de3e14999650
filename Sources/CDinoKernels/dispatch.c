// Run-time choice between the AVX2 kernels and the portable reference kernels.
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int cpu_has_avx2(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (!dino_avx2_compiled()) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

// -1 until first use; then the active dino_isa. Races only ever store the same value.
static volatile int active_isa = -1;

static dino_isa resolve(void) {
    int isa = active_isa;
    if (isa >= 0) return (dino_isa)isa;
    const char *env = getenv("DINO_ISA");
    int wantPortable = env && strcmp(env, "portable") == 0;
    isa = (!wantPortable && cpu_has_avx2()) ? DINO_ISA_AVX2 : DINO_ISA_PORTABLE;
    active_isa = isa;
    return (dino_isa)isa;
}

int dino_kernels_cpu_has_avx2(void) { return cpu_has_avx2(); }

dino_isa dino_kernels_active_isa(void) { return resolve(); }

dino_isa dino_kernels_force_isa(dino_isa isa) {
    active_isa = (isa == DINO_ISA_AVX2 && cpu_has_avx2()) ? DINO_ISA_AVX2 : DINO_ISA_PORTABLE;
    return (dino_isa)active_isa;
}

void dino_layernorm(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma,
                    const float *beta, size_t R, size_t C, float eps) {
    if (resolve() == DINO_ISA_AVX2) dino_layernorm_avx2(x, ldx, y, ldy, gamma, beta, R, C, eps);
    else dino_layernorm_ref(x, ldx, y, ldy, gamma, beta, R, C, eps);
}

void dino_bias_activation(float *x, const float *bias, size_t R, size_t C, dino_activation act) {
    if (resolve() == DINO_ISA_AVX2) dino_bias_activation_avx2(x, bias, R, C, act);
    else dino_bias_activation_ref(x, bias, R, C, act);
}

void dino_swiglu(const float *x12, const float *bias, float *out, size_t R, size_t H) {
    if (resolve() == DINO_ISA_AVX2) dino_swiglu_avx2(x12, bias, out, R, H);
    else dino_swiglu_ref(x12, bias, out, R, H);
}

void dino_residual(float *x, const float *y, const float *bias, const float *gamma, size_t R,
                   size_t C) {
    if (resolve() == DINO_ISA_AVX2) dino_residual_avx2(x, y, bias, gamma, R, C);
    else dino_residual_ref(x, y, bias, gamma, R, C);
}

void dino_softmax(float *x, size_t ldx, size_t R, size_t C, float scale) {
    if (resolve() == DINO_ISA_AVX2) dino_softmax_avx2(x, ldx, R, C, scale);
    else dino_softmax_ref(x, ldx, R, C, scale);
}

void dino_online_softmax_block(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l, float *o,
                               size_t ldo, size_t D) {
    if (resolve() == DINO_ISA_AVX2) dino_online_softmax_block_avx2(s, lds, R, Ck, scale, m, l, o, ldo, D);
    else dino_online_softmax_block_ref(s, lds, R, Ck, scale, m, l, o, ldo, D);
}

void dino_gemm_packed_strided(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                              size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode,
                              const float *gamma, dino_activation act) {
    if (resolve() == DINO_ISA_AVX2)
        dino_gemm_packed_avx2(x, ldx, M, K, packed, panel_stride, N, bias, out, ldo, mode, gamma, act);
    else dino_gemm_packed_ref(x, ldx, M, K, packed, panel_stride, N, bias, out, ldo, mode, gamma, act);
}

void dino_gemm_packed(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t N, const float *bias,
                      float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    dino_gemm_packed_strided(x, ldx, M, K, packed, 16 * K, N, bias, out, ldo, mode, gamma, act);
}

void dino_gemm_packed_bf16(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed, size_t N,
                           const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                           dino_activation act) {
    if (resolve() == DINO_ISA_AVX2)
        dino_gemm_packed_bf16_avx2(x, ldx, M, K, packed, 16 * K, N, bias, out, ldo, mode, gamma, act);
    else dino_gemm_packed_bf16_ref(x, ldx, M, K, packed, 16 * K, N, bias, out, ldo, mode, gamma, act);
}
