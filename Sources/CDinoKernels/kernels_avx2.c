// AVX2 + FMA versions of the kernels in kernels_ref.c (8 floats per vector). Compiled for every
// x86-64 target through function attributes (SwiftPM builds C for baseline x86-64) and only
// called after the dispatcher has checked the CPU. Row tails use masked loads and stores.
#include "internal.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
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

// e^x: Cody-Waite range reduction to r in [-ln2/2, ln2/2], degree-6 polynomial (Cephes expf
// coefficients), 2^n built in the exponent field. Relative error about 2 ulp; inputs below
// -87.3 give 2^-126 instead of underflowing, inputs above 88.37 give +inf.
static inline DINO_AVX2 __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline DINO_AVX2 __m256 sigmoid256(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// Exact GELU through erfc: with z = |x| / sqrt 2 and t = 1 / (1 + z / 2),
// erfc(z) = t exp(-z^2 - 1.26551223 + t (1.00002368 + ...)) with fractional error below
// 1.2e-7 everywhere (Numerical Recipes, erfcc). Then 1 + erf(x / sqrt 2) is erfc(z) for
// x < 0 and 2 - erfc(z) otherwise, which keeps the negative tail accurate.
static inline DINO_AVX2 __m256 gelu256(__m256 x) {
    __m256 absx = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 z = _mm256_mul_ps(absx, _mm256_set1_ps(0.70710678118654752f));
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 erfc = _mm256_mul_ps(t, exp256(_mm256_fnmadd_ps(z, z, p)));
    __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 onePlusErf = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), erfc), erfc, negative);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), onePlusErf);
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

DINO_AVX2 void dino_layernorm_avx2(const float *x, size_t ldx, float *y, size_t ldy,
                                   const float *gamma, const float *beta, size_t R, size_t C,
                                   float eps) {
    for (size_t r = 0; r < R; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        __m256 acc = _mm256_setzero_ps();
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            acc = _mm256_add_ps(acc, load(xr + c, m, C - c));
        }
        __m256 vmean = _mm256_set1_ps(hsum(acc) / (float)C);
        __m256 sq = _mm256_setzero_ps();
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            // Masked-out lanes load 0; zero their deviation too.
            __m256 d = _mm256_and_ps(_mm256_sub_ps(load(xr + c, m, C - c), vmean), _mm256_castsi256_ps(m));
            sq = _mm256_fmadd_ps(d, d, sq);
        }
        __m256 rstd = _mm256_set1_ps(1.0f / sqrtf(hsum(sq) / (float)C + eps));
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            __m256 d = _mm256_mul_ps(_mm256_sub_ps(load(xr + c, m, C - c), vmean), rstd);
            store(yr + c, m, C - c, _mm256_fmadd_ps(d, load(gamma + c, m, C - c), load(beta + c, m, C - c)));
        }
    }
}

DINO_AVX2 void dino_bias_activation_avx2(float *x, const float *bias, size_t R, size_t C,
                                         dino_activation act) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * C;
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            __m256 v = load(xr + c, m, C - c);
            if (bias) v = _mm256_add_ps(v, load(bias + c, m, C - c));
            store(xr + c, m, C - c, activation256(v, act));
        }
    }
}

DINO_AVX2 void dino_add_bias_avx2(float *x, size_t ldx, const float *bias, size_t R, size_t C) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * ldx;
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            store(xr + c, m, C - c, _mm256_add_ps(load(xr + c, m, C - c), load(bias + c, m, C - c)));
        }
    }
}

DINO_AVX2 void dino_swiglu_avx2(const float *x12, const float *bias, float *out, size_t R,
                                size_t H) {
    for (size_t r = 0; r < R; r++) {
        const float *a = x12 + r * 2 * H;
        const float *b = a + H;
        float *o = out + r * H;
        for (size_t c = 0; c < H; c += 8) {
            __m256i m = tail_mask(H - c);
            __m256 x1 = load(a + c, m, H - c);
            __m256 x2 = load(b + c, m, H - c);
            if (bias) {
                x1 = _mm256_add_ps(x1, load(bias + c, m, H - c));
                x2 = _mm256_add_ps(x2, load(bias + H + c, m, H - c));
            }
            store(o + c, m, H - c, _mm256_mul_ps(_mm256_mul_ps(x1, sigmoid256(x1)), x2));
        }
    }
}

DINO_AVX2 void dino_residual_avx2(float *x, const float *y, const float *bias,
                                  const float *gamma, size_t R, size_t C) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * C;
        const float *yr = y + r * C;
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            __m256 v = load(yr + c, m, C - c);
            if (bias) v = _mm256_add_ps(v, load(bias + c, m, C - c));
            __m256 xv = load(xr + c, m, C - c);
            xv = gamma ? _mm256_fmadd_ps(load(gamma + c, m, C - c), v, xv) : _mm256_add_ps(xv, v);
            store(xr + c, m, C - c, xv);
        }
    }
}

DINO_AVX2 void dino_softmax_avx2(float *x, size_t ldx, size_t R, size_t C, float scale) {
    __m256 vscale = _mm256_set1_ps(scale);
    __m256 minusInf = _mm256_set1_ps(-INFINITY);
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * ldx;
        __m256 vmax = minusInf;
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            __m256 v = _mm256_blendv_ps(minusInf, _mm256_mul_ps(load(xr + c, m, C - c), vscale), _mm256_castsi256_ps(m));
            vmax = _mm256_max_ps(vmax, v);
        }
        __m256 mx = _mm256_set1_ps(hmax(vmax));
        __m256 sum = _mm256_setzero_ps();
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            __m256 e = exp256(_mm256_fmsub_ps(load(xr + c, m, C - c), vscale, mx));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
            sum = _mm256_add_ps(sum, e);
            store(xr + c, m, C - c, e);
        }
        __m256 inv = _mm256_set1_ps(1.0f / hsum(sum));
        for (size_t c = 0; c < C; c += 8) {
            __m256i m = tail_mask(C - c);
            store(xr + c, m, C - c, _mm256_mul_ps(load(xr + c, m, C - c), inv));
        }
    }
}

DINO_AVX2 void dino_online_softmax_block_avx2(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m,
                                              float *l, float *o, size_t ldo, size_t D) {
    __m256 vscale = _mm256_set1_ps(scale);
    __m256 minusInf = _mm256_set1_ps(-INFINITY);
    for (size_t r = 0; r < R; r++) {
        float *sr = s + r * lds;
        __m256 vmax = _mm256_set1_ps(m[r]);
        for (size_t c = 0; c < Ck; c += 8) {
            __m256i mask = tail_mask(Ck - c);
            __m256 v = _mm256_blendv_ps(minusInf, _mm256_mul_ps(load(sr + c, mask, Ck - c), vscale), _mm256_castsi256_ps(mask));
            vmax = _mm256_max_ps(vmax, v);
        }
        float mx = hmax(vmax);
        __m256 vmx = _mm256_set1_ps(mx);
        __m256 sum = _mm256_setzero_ps();
        for (size_t c = 0; c < Ck; c += 8) {
            __m256i mask = tail_mask(Ck - c);
            __m256 e = exp256(_mm256_fmsub_ps(load(sr + c, mask, Ck - c), vscale, vmx));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
            sum = _mm256_add_ps(sum, e);
            store(sr + c, mask, Ck - c, e);
        }
        // The first block has m = -inf: alpha is then 0, and o and l start at 0 anyway.
        float alpha = m[r] == -INFINITY ? 0.0f : expf(m[r] - mx);
        l[r] = l[r] * alpha + hsum(sum);
        if (alpha != 1.0f) {
            __m256 va = _mm256_set1_ps(alpha);
            float *orow = o + r * ldo;
            for (size_t d = 0; d < D; d += 8) {
                __m256i mask = tail_mask(D - d);
                store(orow + d, mask, D - d, _mm256_mul_ps(load(orow + d, mask, D - d), va));
            }
        }
        m[r] = mx;
    }
}

int dino_avx2_compiled(void) { return 1; }

#else

// Not x86-64: the dispatcher never selects these; they forward to the reference kernels.
void dino_layernorm_avx2(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma,
                         const float *beta, size_t R, size_t C, float eps) {
    dino_layernorm_ref(x, ldx, y, ldy, gamma, beta, R, C, eps);
}
void dino_bias_activation_avx2(float *x, const float *bias, size_t R, size_t C, dino_activation act) {
    dino_bias_activation_ref(x, bias, R, C, act);
}
void dino_add_bias_avx2(float *x, size_t ldx, const float *bias, size_t R, size_t C) {
    dino_add_bias_ref(x, ldx, bias, R, C);
}
void dino_swiglu_avx2(const float *x12, const float *bias, float *out, size_t R, size_t H) {
    dino_swiglu_ref(x12, bias, out, R, H);
}
void dino_residual_avx2(float *x, const float *y, const float *bias, const float *gamma, size_t R,
                        size_t C) {
    dino_residual_ref(x, y, bias, gamma, R, C);
}
void dino_softmax_avx2(float *x, size_t ldx, size_t R, size_t C, float scale) {
    dino_softmax_ref(x, ldx, R, C, scale);
}
void dino_online_softmax_block_avx2(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l,
                                    float *o, size_t ldo, size_t D) {
    dino_online_softmax_block_ref(s, lds, R, Ck, scale, m, l, o, ldo, D);
}
int dino_avx2_compiled(void) { return 0; }

#endif
