// Vector math shared by the AVX2 kernel files: masked loads and stores, horizontal reductions,
// exp, sigmoid, exact GELU and the other FFN activations on 8 floats. Only included by files that
// compile for x86-64 and call these after the dispatcher has checked for AVX2 + FMA.
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

// c[0] x^(n-1) + c[1] x^(n-2) + ... + c[n-1] by Horner's rule, one FMA per coefficient. The
// callers pass constant arrays, so this unrolls into the same code as writing it out.
static inline __attribute__((always_inline)) DINO_AVX2 __m256 horner256(__m256 x, const float *c, int n) {
    __m256 p = _mm256_set1_ps(c[0]);
    for (int i = 1; i < n; i++) p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(c[i]));
    return p;
}

// e^x: Cody-Waite range reduction to r in [-ln2/2, ln2/2], degree-6 polynomial (Cephes expf
// coefficients), 2^n built in the exponent field. Relative error about 2 ulp; inputs below
// -87.3 give 2^-126 instead of underflowing, inputs above 88.37 give +inf.
static inline DINO_AVX2 __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    static const float c[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                              4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
    __m256 p = horner256(r, c, 6);
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// 2^x for x <= 0 (the exponent of a softmax in base 2): n = round(x), f = x - n in [-1/2, 1/2]
// exactly, 2^f by a degree-5 polynomial, 2^n added to the exponent field. Inputs below -125 give
// 2^-125 times 2^f (never a denormal). The polynomial is a relative-error minimax fit
// (Scripts/fit_exp2_poly.py): 7.5e-8 in exact arithmetic, 2.2e-7 evaluated in float32 with fused
// multiply-adds, where the degree-6 Cephes exp2f fit used before gave about 2e-7 with one FMA
// more.
static inline DINO_AVX2 __m256 exp2_nonpositive256(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-125.0f));
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(x, n);
    static const float c[] = {1.327645848505199e-3f, 9.675541892647743e-3f, 5.550713464617729e-2f,
                              2.402212023735046e-1f, 6.931469440460205e-1f, 1.000000119209290f};
    __m256 p = horner256(f, c, 6);
    __m256i bits = _mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23));
    return _mm256_castsi256_ps(bits);
}

static inline DINO_AVX2 __m256 sigmoid256(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), with erf(z) = z P(z^2) / Q(z^2) for |z| <= 3.92
// (beyond, float32 erf is +-1 to within an ulp): a rational minimax fit by
// Scripts/fit_erf_rational.py, largest error 4.3e-8 in exact arithmetic. 19 operations where an
// erfc through exp took 37, which made the first FFN GEMM 15 % slower than a plain store
// (now 7 %). Evaluated in float32, the error is below 7.4e-7 relative to max(1, |GELU|) on
// [-12, 12]; in the negative tail that is an absolute error on values near zero.
static inline DINO_AVX2 __m256 gelu256(__m256 x) {
    const float zmax = 3.92f;
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    z = _mm256_min_ps(_mm256_max_ps(z, _mm256_set1_ps(-zmax)), _mm256_set1_ps(zmax));
    __m256 s = _mm256_mul_ps(z, z);
    static const float pc[] = {2.144581435e-06f, 2.847161837e-04f, 3.568380938e-03f,
                               5.214914216e-02f, 1.852272103e-01f, 1.128379156e+00f};
    static const float qc[] = {3.906541461e-05f, 1.122802606e-03f, 1.456886475e-02f,
                               1.120462517e-01f, 4.974864006e-01f, 1.0f};
    __m256 p = horner256(s, pc, 6), q = horner256(s, qc, 6);
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = _mm256_div_ps(_mm256_mul_ps(z, p), q);
    e = _mm256_min_ps(_mm256_max_ps(e, _mm256_set1_ps(-1.0f)), one);
    __m256 half = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    return _mm256_fmadd_ps(half, e, half);
}

static inline DINO_AVX2 __m256 activation256(__m256 v, dino_activation act) {
    switch (act) {
    case DINO_ACT_GELU:
        return gelu256(v);
    case DINO_ACT_GELU_TANH: {
        // tanh(u) = 1 - 2 / (e^{2u} + 1)
        __m256 u = _mm256_mul_ps(
            _mm256_set1_ps(0.79788456080286536f),
            _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v), v));
        __m256 one = _mm256_set1_ps(1.0f);
        __m256 e = exp256(_mm256_add_ps(u, u));
        __m256 th = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(one, th));
    }
    case DINO_ACT_RELU:
        return _mm256_max_ps(v, _mm256_setzero_ps());
    case DINO_ACT_SILU:
        return _mm256_mul_ps(v, sigmoid256(v));
    case DINO_ACT_QUICK_GELU:
        return _mm256_mul_ps(v, sigmoid256(_mm256_mul_ps(v, _mm256_set1_ps(1.702f))));
    }
    return v;
}


#endif
