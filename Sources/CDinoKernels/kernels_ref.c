// Plain reference kernels: scalar C, libm, double accumulation where it helps. They are the
// portable fallback of the dispatcher and the yardstick of the kernel tests.
#include "dino_kernels.h"
#include "internal.h"

#include <math.h>
#include <string.h>

void dino_layernorm_ref(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma,
                        const float *beta, size_t R, size_t C, float eps) {
    for (size_t r = 0; r < R; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        double sum = 0;
        for (size_t c = 0; c < C; c++) sum += xr[c];
        double mean = sum / (double)C;
        double sq = 0;
        for (size_t c = 0; c < C; c++) {
            double d = xr[c] - mean;
            sq += d * d;
        }
        double rstd = 1.0 / sqrt(sq / (double)C + (double)eps);
        for (size_t c = 0; c < C; c++) {
            yr[c] = (float)(((double)xr[c] - mean) * rstd) * gamma[c] + beta[c];
        }
    }
}

float dino_activation_scalar(float v, dino_activation act) {
    switch (act) {
    case DINO_ACT_GELU:
        return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case DINO_ACT_GELU_TANH: {
        float inner = 0.79788456080286536f * (v + 0.044715f * v * v * v);
        return 0.5f * v * (1.0f + tanhf(inner));
    }
    case DINO_ACT_RELU:
        return v > 0 ? v : 0;
    case DINO_ACT_SILU:
        return v / (1.0f + expf(-v));
    case DINO_ACT_QUICK_GELU:
        return v / (1.0f + expf(-1.702f * v));
    }
    return v;
}

void dino_bias_activation_ref(float *x, const float *bias, size_t R, size_t C, dino_activation act) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * C;
        for (size_t c = 0; c < C; c++) {
            float v = xr[c] + (bias ? bias[c] : 0.0f);
            xr[c] = dino_activation_scalar(v, act);
        }
    }
}

void dino_swiglu_ref(const float *x12, const float *bias, float *out, size_t R, size_t H) {
    for (size_t r = 0; r < R; r++) {
        const float *a = x12 + r * 2 * H;
        const float *b = a + H;
        float *o = out + r * H;
        for (size_t c = 0; c < H; c++) {
            float x1 = a[c] + (bias ? bias[c] : 0.0f);
            float x2 = b[c] + (bias ? bias[H + c] : 0.0f);
            o[c] = x1 / (1.0f + expf(-x1)) * x2;
        }
    }
}

void dino_residual_ref(float *x, const float *y, const float *bias, const float *gamma, size_t R,
                       size_t C) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * C;
        const float *yr = y + r * C;
        for (size_t c = 0; c < C; c++) {
            float v = yr[c] + (bias ? bias[c] : 0.0f);
            xr[c] += gamma ? gamma[c] * v : v;
        }
    }
}

void dino_softmax_ref(float *x, size_t ldx, size_t R, size_t C, float scale) {
    for (size_t r = 0; r < R; r++) {
        float *xr = x + r * ldx;
        float mx = -INFINITY;
        for (size_t c = 0; c < C; c++) mx = fmaxf(mx, xr[c] * scale);
        double sum = 0;
        for (size_t c = 0; c < C; c++) {
            float e = expf(xr[c] * scale - mx);
            xr[c] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (size_t c = 0; c < C; c++) xr[c] *= inv;
    }
}

void dino_patchify(const float *image, float *out, size_t B, size_t Cin, size_t H, size_t W,
                   size_t P) {
    size_t gh = H / P, gw = W / P, K = Cin * P * P;
    for (size_t b = 0; b < B; b++) {
        for (size_t py = 0; py < gh; py++) {
            for (size_t px = 0; px < gw; px++) {
                float *row = out + ((b * gh + py) * gw + px) * K;
                for (size_t c = 0; c < Cin; c++) {
                    const float *plane = image + (b * Cin + c) * H * W;
                    for (size_t ky = 0; ky < P; ky++) {
                        memcpy(row + (c * P + ky) * P, plane + (py * P + ky) * W + px * P,
                               P * sizeof(float));
                    }
                }
            }
        }
    }
}

void dino_f16_to_f32_ref(const uint16_t *src, float *dst, size_t N) {
    for (size_t i = 0; i < N; i++) {
        uint32_t h = src[i];
        uint32_t sign = (h & 0x8000u) << 16;
        uint32_t exp = (h >> 10) & 0x1f;
        uint32_t man = h & 0x3ff;
        uint32_t bits;
        if (exp == 0) {
            if (man == 0) {
                bits = sign;
            } else { // subnormal: renormalise
                int e = -1;
                do {
                    e++;
                    man <<= 1;
                } while ((man & 0x400u) == 0);
                bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
            }
        } else if (exp == 0x1f) {
            bits = sign | 0x7f800000u | (man << 13);
        } else {
            bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
        }
        memcpy(dst + i, &bits, 4);
    }
}

void dino_bf16_to_f32_ref(const uint16_t *src, float *dst, size_t N) {
    for (size_t i = 0; i < N; i++) {
        uint32_t bits = (uint32_t)src[i] << 16;
        memcpy(dst + i, &bits, 4);
    }
}

void dino_f32_to_bf16_ref(const float *src, uint16_t *dst, size_t N) {
    for (size_t i = 0; i < N; i++) {
        uint32_t bits;
        memcpy(&bits, src + i, 4);
        if ((bits & 0x7fffffffu) > 0x7f800000u) { // NaN stays a quiet NaN
            dst[i] = (uint16_t)((bits >> 16) | 0x40u);
            continue;
        }
        uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
        dst[i] = (uint16_t)((bits + rounding) >> 16);
    }
}

void dino_online_softmax_block_ref(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l,
                                   float *o, size_t ldo, size_t D) {
    for (size_t r = 0; r < R; r++) {
        float *sr = s + r * lds;
        float mx = m[r];
        for (size_t c = 0; c < Ck; c++) mx = fmaxf(mx, sr[c] * scale);
        float alpha = expf(m[r] - mx);
        double sum = 0;
        for (size_t c = 0; c < Ck; c++) {
            float e = expf(sr[c] * scale - mx);
            sr[c] = e;
            sum += e;
        }
        l[r] = l[r] * alpha + (float)sum;
        float *orow = o + r * ldo;
        for (size_t d = 0; d < D; d++) orow[d] *= alpha;
        m[r] = mx;
    }
}

void dino_divide_rows(float *o, size_t ldo, size_t R, size_t D, const float *l) {
    for (size_t r = 0; r < R; r++) {
        float inv = 1.0f / l[r];
        float *orow = o + r * ldo;
        for (size_t d = 0; d < D; d++) orow[d] *= inv;
    }
}

void dino_fill_rows(float *y, size_t ldy, const float *bias, size_t R, size_t C) {
    for (size_t r = 0; r < R; r++) memcpy(y + r * ldy, bias, C * sizeof(float));
}
