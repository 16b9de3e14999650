// AVX2 + FMA versions of the kernels in kernels_ref.c (8 floats per vector). Compiled for every
// x86-64 target through function attributes (SwiftPM builds C for baseline x86-64) and only
// called after the dispatcher has checked the CPU. Row tails use masked loads and stores.
#include "internal.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "avx2_math.h"

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
    if (!(scale > 0)) {  // the base-2 form below needs max(scale * s) = scale * max(s)
        dino_online_softmax_block_ref(s, lds, R, Ck, scale, m, l, o, ldo, D);
        return;
    }
    // Base 2: e^(scale s - mx) = 2^(s * scale log2(e) - mx log2(e)), one FMA before exp2.
    const float log2e = 1.44269504088896341f;
    __m256 vscale2 = _mm256_set1_ps(scale * log2e);
    size_t full = Ck / 8 * 8, tail = Ck - full;
    __m256i tailMask = tail_mask(tail);
    for (size_t r = 0; r < R; r++) {
        float *sr = s + r * lds;
        // The largest raw score: scale > 0 keeps the order, so scaling waits until after. Two
        // maxima and, below, two sums in flight, so neither loop waits on one dependency chain.
        // With the degree-5 exp2 this block takes 0.88-0.98x the time it took with one chain and
        // the degree-6 polynomial, at 261-512 keys (interleaved in one process; largest relative
        // error of a probability against double precision 7.2e-7, before 6.5e-7: the rounding of
        // the argument dominates).
        __m256 vmax0 = _mm256_set1_ps(-INFINITY), vmax1 = vmax0;
        size_t c = 0;
        for (; c + 16 <= full; c += 16) {
            vmax0 = _mm256_max_ps(vmax0, _mm256_loadu_ps(sr + c));
            vmax1 = _mm256_max_ps(vmax1, _mm256_loadu_ps(sr + c + 8));
        }
        if (c < full) vmax0 = _mm256_max_ps(vmax0, _mm256_loadu_ps(sr + c));
        float raw = hmax(_mm256_max_ps(vmax0, vmax1));
        for (c = full; c < Ck; c++) raw = sr[c] > raw ? sr[c] : raw;
        float mx = m[r] > raw * scale ? m[r] : raw * scale;
        __m256 offset = _mm256_set1_ps(mx * log2e);
        __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
        for (c = 0; c + 16 <= full; c += 16) {
            __m256 e0 = exp2_nonpositive256(_mm256_fmsub_ps(_mm256_loadu_ps(sr + c), vscale2, offset));
            __m256 e1 = exp2_nonpositive256(_mm256_fmsub_ps(_mm256_loadu_ps(sr + c + 8), vscale2, offset));
            sum0 = _mm256_add_ps(sum0, e0);
            sum1 = _mm256_add_ps(sum1, e1);
            _mm256_storeu_ps(sr + c, e0);
            _mm256_storeu_ps(sr + c + 8, e1);
        }
        if (c < full) {
            __m256 e = exp2_nonpositive256(_mm256_fmsub_ps(_mm256_loadu_ps(sr + c), vscale2, offset));
            sum0 = _mm256_add_ps(sum0, e);
            _mm256_storeu_ps(sr + c, e);
        }
        if (tail) {
            __m256 e = exp2_nonpositive256(_mm256_fmsub_ps(_mm256_maskload_ps(sr + full, tailMask), vscale2, offset));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(tailMask));
            sum1 = _mm256_add_ps(sum1, e);
            _mm256_maskstore_ps(sr + full, tailMask, e);
        }
        __m256 sum = _mm256_add_ps(sum0, sum1);
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
