// Vector helpers shared by the AVX-512 kernel files: tail masks, masked loads and stores,
// reductions, the vector math of simd_math.inc on 16 floats (exp512, exp2_nonpositive512,
// sigmoid512, gelu512, activation512) and the GEMM epilogue of gemm_finish.inc (gemm_finish512). Only included by files that compile for x86-64 and call
// these after the dispatcher has checked for AVX-512 F + VL + BW + DQ.
#ifndef DINO_AVX512_MATH_H
#define DINO_AVX512_MATH_H

#include "internal.h"

#include <immintrin.h>
#include <math.h>

#define DINO_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))

// The first min(remaining, 16) lanes.
static inline DINO_AVX512 __mmask16 tail_mask16(size_t remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1);
}

static inline DINO_AVX512 __m512 load16(const float *p, __mmask16 m, size_t remaining) {
    return remaining >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

static inline DINO_AVX512 void store16(float *p, __mmask16 m, size_t remaining, __m512 v) {
    if (remaining >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, m, v);
}

// float32 to bfloat16 to nearest even as dino_f32_to_bf16_ref (NaN stays a quiet NaN), 16 at a
// time with integer arithmetic: VCVTNEPS2BF16 would flush denormals, which the reference keeps.
static inline DINO_AVX512 __m256i bf16_round16(__m512 v) {
    __m512i bits = _mm512_castps_si512(v);
    __m512i rounding = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(_mm512_srli_epi32(bits, 16),
                                                                                   _mm512_set1_epi32(1)));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, rounding), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)),
                                            _mm512_set1_epi32(0x7F800000));
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rounded, nan, quiet));
}

// The names kernels_simd.inc and gemm_finish.inc use for these (see there).
#define VW 16
#define VMASK __mmask16
#define VTAIL(n) tail_mask16(n)
#define VLOAD(p, m, n) load16(p, m, n)
#define VSTORE(p, m, n, v) store16(p, m, n, v)

#define VF __m512
#define VI __m512i
#define VNAME(name) name##512
#define VATTR DINO_AVX512
#define VSET1(f) _mm512_set1_ps(f)
#define VZERO() _mm512_setzero_ps()
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VMIN(a, b) _mm512_min_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VFMADD(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFNMADD(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define VROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VCVT_EPI32(x) _mm512_cvtps_epi32(x)
#define VADD_EPI32(a, b) _mm512_add_epi32(a, b)
#define VSET1_EPI32(i) _mm512_set1_epi32(i)
#define VSLLI_EPI32(x, n) _mm512_slli_epi32(x, n)
#define VAS_INT(f) _mm512_castps_si512(f)
#define VAS_FLOAT(i) _mm512_castsi512_ps(i)
#include "simd_math.inc"
#include "gemm_finish.inc"

#endif
