// Vector helpers shared by the AVX2 kernel files: masked loads and stores, horizontal reductions,
// the vector math of simd_math.inc on 8 floats (exp256, exp2_nonpositive256, sigmoid256,
// gelu256, activation256) and the GEMM epilogue of gemm_finish.inc (gemm_finish256). Only included by files that compile for x86-64 and call these after
// the dispatcher has checked for AVX2 + FMA.
#ifndef DINO_AVX2_MATH_H
#define DINO_AVX2_MATH_H

#include "internal.h"

#include <immintrin.h>
#include <math.h>

#define DINO_AVX2 __attribute__((target("avx2,fma")))

// Lane mask for the `remaining` first lanes (all lanes when remaining >= 8).
static inline DINO_AVX2 __m256i tail_mask(size_t remaining) {
    int n = remaining >= 8 ? 8 : (int)remaining;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline DINO_AVX2 __m256 load(const float *p, __m256i m, size_t remaining) {
    return remaining >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

static inline DINO_AVX2 void store(float *p, __m256i m, size_t remaining, __m256 v) {
    if (remaining >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, m, v);
}

static inline DINO_AVX2 float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline DINO_AVX2 float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The names kernels_simd.inc and gemm_finish.inc use for these (see there).
#define VW 8
#define VMASK __m256i
#define VTAIL(n) tail_mask(n)
#define VLOAD(p, m, n) load(p, m, n)
#define VSTORE(p, m, n, v) store(p, m, n, v)

#define VF __m256
#define VI __m256i
#define VNAME(name) name##256
#define VATTR DINO_AVX2
#define VSET1(f) _mm256_set1_ps(f)
#define VZERO() _mm256_setzero_ps()
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define VMIN(a, b) _mm256_min_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VFMADD(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VFNMADD(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define VROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VCVT_EPI32(x) _mm256_cvtps_epi32(x)
#define VADD_EPI32(a, b) _mm256_add_epi32(a, b)
#define VSET1_EPI32(i) _mm256_set1_epi32(i)
#define VSLLI_EPI32(x, n) _mm256_slli_epi32(x, n)
#define VAS_INT(f) _mm256_castps_si256(f)
#define VAS_FLOAT(i) _mm256_castsi256_ps(i)
#include "simd_math.inc"
#include "gemm_finish.inc"

#endif
