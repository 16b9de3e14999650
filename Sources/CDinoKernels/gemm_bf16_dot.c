// GEMM with bfloat16 weights and bfloat16 dot products: the packing, the reference, and a
// portable model of AVX512-BF16's VDPBF16PS that runs everywhere else (the tests compare it with
// the definition, and the AVX-512 kernel of gemm_packed_avx512.c with it). See dino_kernels.h for
// the layout and the arithmetic.
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// Rows of one tile of the model. Each output is a sum over K in order whatever the tile, so this
// only sets how the model walks the matrix.
#define DOT_ROWS 12
// Rows whose bfloat16 pairs are converted together and then meet every panel.
#define DOT_BLOCK_TILES 16

static inline uint32_t bf16_pair(uint16_t low, uint16_t high) { return (uint32_t)low | (uint32_t)high << 16; }

static inline float bf16_value(uint16_t bits) {
    uint32_t wide = (uint32_t)bits << 16;
    float v;
    memcpy(&v, &wide, sizeof v);
    return v;
}

size_t dino_packed_weight_count_bf16_dot(size_t N, size_t K) { return (N + 15) / 16 * 16 * ((K + 1) / 2); }

void dino_pack_strided_bf16_dot_ref(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k,
                                    uint32_t *packed) {
    size_t pairs = (K + 1) / 2;
    for (size_t p = 0; p < (N + 15) / 16; p++) {
        for (size_t k = 0; k < pairs; k++) {
            for (size_t j = 0; j < 16; j++) {
                size_t n = p * 16 + j;
                float v[2] = {n < N ? w[n * stride_n + 2 * k * stride_k] : 0.0f,
                              n < N && 2 * k + 1 < K ? w[n * stride_n + (2 * k + 1) * stride_k] : 0.0f};
                uint16_t bits[2];
                dino_f32_to_bf16_ref(v, bits, 2);
                packed[(p * pairs + k) * 16 + j] = bf16_pair(bits[0], bits[1]);
            }
        }
    }
}

void dino_pack_strided_bf16_dot(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, uint32_t *packed) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (dino_kernels_active_isa() == DINO_ISA_AVX512 && (stride_k == 1 || stride_n == 1)) {
        dino_pack_strided_bf16_dot_avx512(w, N, K, stride_n, stride_k, packed);
        return;
    }
#endif
    dino_pack_strided_bf16_dot_ref(w, N, K, stride_n, stride_k, packed);
}

void dino_pack_weight_bf16_dot(const float *w, size_t N, size_t K, uint32_t *packed) {
    dino_pack_strided_bf16_dot(w, N, K, K, 1, packed);
}

// Weight (n, k) of K-pair panels `panel_stride` lanes apart.
static inline float packed_weight(const uint32_t *packed, size_t panel_stride, size_t n, size_t k) {
    uint32_t pair = packed[(n / 16) * panel_stride + k / 2 * 16 + n % 16];
    return bf16_value((uint16_t)(k % 2 ? pair >> 16 : pair & 0xFFFFu));
}

void dino_unpack_weight_bf16_dot(const uint32_t *packed, size_t N, size_t K, float *w) {
    for (size_t n = 0; n < N; n++)
        for (size_t k = 0; k < K; k++) w[n * K + k] = packed_weight(packed, (K + 1) / 2 * 16, n, k);
}

static inline float x_bf16(const float *x, size_t ldx, size_t m, size_t k) {
    uint16_t bits;
    dino_f32_to_bf16(x + m * ldx + k, &bits, 1);
    return bf16_value(bits);
}

void dino_gemm_packed_bf16_dot_ref(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed,
                                   size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                   dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            double acc = 0;
            for (size_t k = 0; k < K; k++) acc += (double)x_bf16(x, ldx, m, k) * packed_weight(packed, panel_stride, n, k);
            float v = (float)acc + (bias ? bias[n] : 0.0f);
            if (mode == DINO_GEMM_ACTIVATION) v = dino_activation_scalar(v, act);
            if (mode == DINO_GEMM_RESIDUAL) out[m * ldo + n] += gamma ? gamma[n] * v : v;
            else out[m * ldo + n] = v;
        }
    }
}

// --- The portable model of VDPBF16PS ------------------------------------------------------
// Intel SDM, VDPBF16PS: per 32-bit lane, srcdest += src1.odd * src2.odd, then += src1.even *
// src2.even, each an FMA with denormal inputs read as zero, denormal results flushed to zero and
// round to nearest even. A product of two bfloat16 values is exact in float32, so each step is
// one float32 addition.
typedef struct {
    float lane[16];
} model_f32x16;
typedef struct {
    uint32_t lane[16];
} model_pairs;

// Denormals in or out become zero of the same sign (DAZ on the inputs, FTZ on the results).
static inline float model_flush(float v) { return fabsf(v) < FLT_MIN ? copysignf(0.0f, v) : v; }

static inline model_f32x16 model_zero(void) {
    model_f32x16 z;
    memset(&z, 0, sizeof z);
    return z;
}

static inline model_pairs model_load(const uint32_t *p) {
    model_pairs v;
    memcpy(v.lane, p, sizeof v.lane);
    return v;
}

static inline model_pairs model_set1(uint32_t u) {
    model_pairs v;
    for (int i = 0; i < 16; i++) v.lane[i] = u;
    return v;
}

static inline void model_store(float *p, model_f32x16 v) { memcpy(p, v.lane, sizeof v.lane); }

static inline model_f32x16 model_dp(model_f32x16 acc, model_pairs a, model_pairs b) {
    for (int i = 0; i < 16; i++) {
        float s = model_flush(acc.lane[i]);
        float odd = model_flush(bf16_value((uint16_t)(a.lane[i] >> 16))) * model_flush(bf16_value((uint16_t)(b.lane[i] >> 16)));
        s = model_flush(s + odd);
        float even = model_flush(bf16_value((uint16_t)a.lane[i])) * model_flush(bf16_value((uint16_t)b.lane[i]));
        acc.lane[i] = model_flush(s + even);
    }
    return acc;
}

// The raw products of one tile: DOT_ROWS rows of x, as bfloat16 pairs interleaved by row
// (`rows[k * DOT_ROWS + r]` holds x[r][2k] in its low half and x[r][2k + 1] in its high half),
// against two panels of 16 columns (`panel0`, `panel1`, `pairs` x 16 lanes each), into
// tile[DOT_ROWS][32], summing the pairs in order of K as the AVX-512 kernel does.
static void dot_tile_model(const uint32_t *rows, size_t pairs, const uint32_t *panel0, const uint32_t *panel1,
                           float tile[DOT_ROWS][32]) {
    model_f32x16 acc[DOT_ROWS][2];
    for (int r = 0; r < DOT_ROWS; r++) acc[r][0] = acc[r][1] = model_zero();
    for (size_t k = 0; k < pairs; k++) {
        model_pairs b0 = model_load(panel0 + k * 16), b1 = model_load(panel1 + k * 16);
        for (int r = 0; r < DOT_ROWS; r++) {
            model_pairs v = model_set1(rows[k * DOT_ROWS + r]);
            acc[r][0] = model_dp(acc[r][0], v, b0);
            acc[r][1] = model_dp(acc[r][1], v, b1);
        }
    }
    for (int r = 0; r < DOT_ROWS; r++) {
        model_store(tile[r], acc[r][0]);
        model_store(tile[r] + 16, acc[r][1]);
    }
}

// Rows [m0, m0 + count) of x, rounded to bfloat16, into one tile's layout (see dot_tile_model);
// rows past count are zero. `bits` holds K + 1 values.
static void convert_tile(const float *x, size_t ldx, size_t m0, size_t count, size_t K, uint16_t *bits,
                         uint32_t *tile) {
    size_t pairs = (K + 1) / 2;
    for (size_t r = 0; r < DOT_ROWS; r++) {
        if (r >= count) {
            for (size_t k = 0; k < pairs; k++) tile[k * DOT_ROWS + r] = 0;
            continue;
        }
        dino_f32_to_bf16(x + (m0 + r) * ldx, bits, K);
        bits[K] = 0;
        for (size_t k = 0; k < pairs; k++) tile[k * DOT_ROWS + r] = bf16_pair(bits[2 * k], bits[2 * k + 1]);
    }
}

// Bias and epilogue on `rows` x `valid` products, as dino_gemm_packed_bf16_dot_ref does them.
static void finish_tile(float tile[DOT_ROWS][32], size_t rows, size_t valid, float *out, size_t ldo, const float *bias,
                        dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    for (size_t r = 0; r < rows; r++) {
        float *dst = out + r * ldo;
        switch (mode) {
        case DINO_GEMM_RESIDUAL:
            dino_residual(dst, tile[r], bias, gamma, 1, valid);
            break;
        case DINO_GEMM_ACTIVATION:
            memcpy(dst, tile[r], valid * sizeof(float));
            dino_bias_activation(dst, bias, 1, valid, act);
            break;
        default:
            for (size_t j = 0; j < valid; j++) dst[j] = tile[r][j] + (bias ? bias[j] : 0.0f);
        }
    }
}

void dino_gemm_packed_bf16_dot_model(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed,
                                     size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                     dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    if (M == 0 || N == 0) return;
    size_t pairs = (K + 1) / 2, panels = (N + 15) / 16;
    size_t tiles = (M + DOT_ROWS - 1) / DOT_ROWS;
    size_t block_tiles = tiles < DOT_BLOCK_TILES ? tiles : DOT_BLOCK_TILES;
    uint32_t *rows = malloc((block_tiles * pairs * DOT_ROWS + 1) * sizeof(uint32_t));
    uint16_t *bits = malloc((K + 1) * sizeof(uint16_t));
    if (!rows || !bits) {
        // No memory for the converted rows: the reference needs none.
        free(rows);
        free(bits);
        dino_gemm_packed_bf16_dot_ref(x, ldx, M, K, packed, panel_stride, N, bias, out, ldo, mode, gamma, act);
        return;
    }
    float tile[DOT_ROWS][32];
    for (size_t t0 = 0; t0 < tiles; t0 += block_tiles) {
        size_t t1 = tiles - t0 < block_tiles ? tiles : t0 + block_tiles;
        for (size_t t = t0; t < t1; t++) {
            size_t m0 = t * DOT_ROWS;
            convert_tile(x, ldx, m0, M - m0 < DOT_ROWS ? M - m0 : DOT_ROWS, K, bits, rows + (t - t0) * pairs * DOT_ROWS);
        }
        for (size_t p = 0; p < panels; p += 2) {
            const uint32_t *panel0 = packed + p * panel_stride;
            // A last odd panel runs against itself; only its own columns are stored.
            const uint32_t *panel1 = p + 1 < panels ? panel0 + panel_stride : panel0;
            size_t n0 = p * 16;
            size_t valid = N - n0 < 32 ? N - n0 : 32;
            for (size_t t = t0; t < t1; t++) {
                size_t m0 = t * DOT_ROWS;
                dot_tile_model(rows + (t - t0) * pairs * DOT_ROWS, pairs, panel0, panel1, tile);
                finish_tile(tile, M - m0 < DOT_ROWS ? M - m0 : DOT_ROWS, valid, out + m0 * ldo + n0, ldo,
                            bias ? bias + n0 : NULL, mode, gamma ? gamma + n0 : NULL, act);
            }
        }
    }
    free(rows);
    free(bits);
}

int dino_gemm_bf16_dot_uses_avx512(void) {
    return dino_kernels_active_isa() == DINO_ISA_AVX512 && dino_kernels_cpu_has_avx512bf16();
}

void dino_gemm_packed_bf16_dot_strided(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed,
                                       size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                       dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (dino_gemm_bf16_dot_uses_avx512()) {
        dino_gemm_packed_bf16_dot_avx512(x, ldx, M, K, packed, panel_stride, N, bias, out, ldo, mode, gamma, act);
        return;
    }
#endif
    dino_gemm_packed_bf16_dot_model(x, ldx, M, K, packed, panel_stride, N, bias, out, ldo, mode, gamma, act);
}

void dino_gemm_packed_bf16_dot(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed, size_t N,
                               const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                               dino_activation act) {
    dino_gemm_packed_bf16_dot_strided(x, ldx, M, K, packed, (K + 1) / 2 * 16, N, bias, out, ldo, mode, gamma, act);
}
