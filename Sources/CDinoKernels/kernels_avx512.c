// AVX-512 versions of the kernels in kernels_ref.c. Compiled for every x86-64 target through
// function attributes (SwiftPM builds C for baseline x86-64) and only called after the
// dispatcher has checked the CPU. Tails are handled with masked loads and stores.
#include "internal.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <math.h>

#define DINO_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))

static inline DINO_AVX512 __mmask16 tail_mask(size_t remaining) {
    return remaining >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << remaining) - 1u);
}

// e^x: Cody-Waite range reduction to r in [-ln2/2, ln2/2], degree-6 polynomial (Cephes
// expf coefficients), scaling by 2^n with vscalefps. Relative error about 2 ulp.
static inline DINO_AVX512 __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-103.0f)), _mm512_set1_ps(88.7228f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 y = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

static inline DINO_AVX512 __m512 sigmoid512(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// Exact GELU through erfc: with z = |x| / sqrt 2 and t = 1 / (1 + z / 2),
// erfc(z) = t exp(-z^2 - 1.26551223 + t (1.00002368 + ...)) with fractional error below
// 1.2e-7 everywhere (Numerical Recipes, erfcc). Then 1 + erf(x / sqrt 2) is erfc(z) for
// x < 0 and 2 - erfc(z) otherwise, which keeps the negative tail accurate.
static inline DINO_AVX512 __m512 gelu512(__m512 x) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), one));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    __m512 e = _mm512_sub_ps(p, _mm512_mul_ps(z, z));
    __m512 erfc = _mm512_mul_ps(t, exp512(e));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 onePlusErf = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0f), erfc), erfc);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), onePlusErf);
}

static inline DINO_AVX512 __m512 activation512(__m512 v, dino_activation act) {
    switch (act) {
    case DINO_ACT_GELU:
        return gelu512(v);
    case DINO_ACT_GELU_TANH: {
        // tanh(u) = 1 - 2 / (e^{2u} + 1)
        __m512 u = _mm512_mul_ps(
            _mm512_set1_ps(0.79788456080286536f),
            _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), v), _mm512_mul_ps(v, v), v));
        __m512 one = _mm512_set1_ps(1.0f);
        __m512 e = exp512(_mm512_add_ps(u, u));
        __m512 th = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
        return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(one, th));
    }
    case DINO_ACT_RELU:
        return _mm512_max_ps(v, _mm512_setzero_ps());
    case DINO_ACT_SILU:
        return _mm512_mul_ps(v, sigmoid512(v));
    case DINO_ACT_QUICK_GELU:
        return _mm512_mul_ps(v, sigmoid512(_mm512_mul_ps(v, _mm512_set1_ps(1.702f))));
    }
    return v;
}

DINO_AVX512 void dino_layernorm_avx512(const float *x, size_t ldx, float *y, size_t ldy,
                                       const float *gamma, const float *beta, size_t R, size_t C,
                                       float eps) {
    for (size_t r = 0; r < R; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        __m512 acc = _mm512_setzero_ps();
        for (size_t c = 0; c < C; c += 16) {
            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(C - c), xr + c));
        }
        float mean = _mm512_reduce_add_ps(acc) / (float)C;
        __m512 vmean = _mm512_set1_ps(mean);
        __m512 sq = _mm512_setzero_ps();
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xr + c), vmean);
            sq = _mm512_fmadd_ps(d, d, sq);
        }
        float var = _mm512_reduce_add_ps(sq) / (float)C;
        __m512 rstd = _mm512_set1_ps(1.0f / sqrtf(var + eps));
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), vmean), rstd);
            __m512 v = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(m, gamma + c),
                                       _mm512_maskz_loadu_ps(m, beta + c));
            _mm512_mask_storeu_ps(yr + c, m, v);
        }
    }
}

DINO_AVX512 void dino_bias_activation_avx512(float *x, const float *bias, size_t R, size_t C,
                                             dino_activation act) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * C;
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 v = _mm512_maskz_loadu_ps(m, xr + c);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
            _mm512_mask_storeu_ps(xr + c, m, activation512(v, act));
        }
    }
}

DINO_AVX512 void dino_add_bias_avx512(float *x, size_t ldx, const float *bias, size_t R, size_t C) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * ldx;
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, xr + c), _mm512_maskz_loadu_ps(m, bias + c));
            _mm512_mask_storeu_ps(xr + c, m, v);
        }
    }
}

DINO_AVX512 void dino_swiglu_avx512(const float *x12, const float *bias, float *out, size_t R,
                                    size_t H) {
    for (size_t r = 0; r < R; r++) {
        const float *a = x12 + r * 2 * H;
        const float *b = a + H;
        float *o = out + r * H;
        for (size_t c = 0; c < H; c += 16) {
            __mmask16 m = tail_mask(H - c);
            __m512 x1 = _mm512_maskz_loadu_ps(m, a + c);
            __m512 x2 = _mm512_maskz_loadu_ps(m, b + c);
            if (bias) {
                x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m, bias + c));
                x2 = _mm512_add_ps(x2, _mm512_maskz_loadu_ps(m, bias + H + c));
            }
            _mm512_mask_storeu_ps(o + c, m, _mm512_mul_ps(_mm512_mul_ps(x1, sigmoid512(x1)), x2));
        }
    }
}

DINO_AVX512 void dino_residual_avx512(float *x, const float *y, const float *bias,
                                      const float *gamma, size_t R, size_t C) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * C;
        const float *yr = y + r * C;
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 v = _mm512_maskz_loadu_ps(m, yr + c);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c));
            __m512 xv = _mm512_maskz_loadu_ps(m, xr + c);
            xv = gamma ? _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, gamma + c), v, xv) : _mm512_add_ps(xv, v);
            _mm512_mask_storeu_ps(xr + c, m, xv);
        }
    }
}

DINO_AVX512 void dino_softmax_avx512(float *x, size_t ldx, size_t R, size_t C, float scale) {
    __m512 vscale = _mm512_set1_ps(scale);
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * ldx;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + c), vscale);
            vmax = _mm512_mask_max_ps(vmax, m, vmax, v);
        }
        __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        __m512 sum = _mm512_setzero_ps();
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 v = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, xr + c), vscale, mx);
            __m512 e = _mm512_maskz_mov_ps(m, exp512(v));
            sum = _mm512_add_ps(sum, e);
            _mm512_mask_storeu_ps(xr + c, m, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (size_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            _mm512_mask_storeu_ps(xr + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + c), inv));
        }
    }
}

int dino_avx512_compiled(void) { return 1; }

#else

// Not x86-64: the dispatcher never selects these; they forward to the reference kernels.
void dino_layernorm_avx512(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma,
                           const float *beta, size_t R, size_t C, float eps) {
    dino_layernorm_ref(x, ldx, y, ldy, gamma, beta, R, C, eps);
}
void dino_bias_activation_avx512(float *x, const float *bias, size_t R, size_t C,
                                 dino_activation act) {
    dino_bias_activation_ref(x, bias, R, C, act);
}
void dino_add_bias_avx512(float *x, size_t ldx, const float *bias, size_t R, size_t C) {
    dino_add_bias_ref(x, ldx, bias, R, C);
}
void dino_swiglu_avx512(const float *x12, const float *bias, float *out, size_t R, size_t H) {
    dino_swiglu_ref(x12, bias, out, R, H);
}
void dino_residual_avx512(float *x, const float *y, const float *bias, const float *gamma, size_t R,
                          size_t C) {
    dino_residual_ref(x, y, bias, gamma, R, C);
}
void dino_softmax_avx512(float *x, size_t ldx, size_t R, size_t C, float scale) {
    dino_softmax_ref(x, ldx, R, C, scale);
}
int dino_avx512_compiled(void) { return 0; }

#endif
