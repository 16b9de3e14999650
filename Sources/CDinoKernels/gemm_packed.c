// GEMM against weights packed once at load: out[M, N] (op)= x[M, K] · wᵀ + bias, where w is a
// PyTorch-layout weight [N, K]. Packing puts each panel of 16 output columns in K-major order
// ([N/16][K][16], zero-padded), so the AVX2 micro-kernel reads 16 weights per step with two
// aligned loads and never re-packs them (OpenBLAS packs the weight on every call, about an eighth
// of a ViT-S forward pass). The activation rows are read in place.
//
// Dimension letters: M rows (tokens), N output features, K input features, P = N rounded up to 16.
#include "internal.h"

#include <math.h>
#include <string.h>

size_t dino_packed_weight_count(size_t N, size_t K) { return (N + 15) / 16 * 16 * K; }

void dino_pack_strided_ref(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed) {
    size_t panels = (N + 15) / 16;
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * 16 * K;
        for (size_t k = 0; k < K; k++) {
            for (size_t j = 0; j < 16; j++) {
                size_t n = p * 16 + j;
                panel[k * 16 + j] = n < N ? w[n * stride_n + k * stride_k] : 0.0f;
            }
        }
    }
}

// Attention packs every head's keys and values in every block, so the two layouts it uses get
// loops without the general index arithmetic: keys ([keys, D] rows, stride_k 1) are a transpose
// of 16 rows at a time (in vector registers where `transpose` is given: it returns the steps of K
// it did); values (stride_n 1) copy 16 contiguous floats per step of K.
static inline __attribute__((always_inline)) void
pack_strided(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed,
             size_t (*transpose)(const float *rows, size_t stride, size_t K, float *panel)) {
    if (stride_n != 1 && stride_k != 1) {
        dino_pack_strided_ref(w, N, K, stride_n, stride_k, packed);
        return;
    }
    for (size_t p = 0; p < (N + 15) / 16; p++) {
        float *panel = packed + p * 16 * K;
        const float *src = w + p * 16 * stride_n;
        size_t valid = N - p * 16 < 16 ? N - p * 16 : 16;
        if (valid < 16) memset(panel, 0, 16 * K * sizeof(float));
        if (stride_n == 1) {
            // A full panel copies a constant 64 bytes per step, which the compiler inlines.
            for (size_t k = 0; k < K; k++) {
                if (valid == 16) memcpy(panel + k * 16, src + k * stride_k, 16 * sizeof(float));
                else memcpy(panel + k * 16, src + k * stride_k, valid * sizeof(float));
            }
        } else {
            size_t done = valid == 16 && transpose ? transpose(src, stride_n, K, panel) : 0;
            for (size_t j = 0; j < valid; j++) {
                const float *row = src + j * stride_n;
                for (size_t k = done; k < K; k++) panel[k * 16 + j] = row[k];
            }
        }
    }
}

void dino_pack_strided_plain(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed) {
    pack_strided(w, N, K, stride_n, stride_k, packed, NULL);
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
void dino_pack_strided_avx2(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed) {
    pack_strided(w, N, K, stride_n, stride_k, packed, dino_transpose_panel_avx2);
}

void dino_pack_strided_avx512(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed) {
    pack_strided(w, N, K, stride_n, stride_k, packed, dino_transpose_panel_avx512);
}
#endif

void dino_pack_weight(const float *w, size_t N, size_t K, float *packed) { dino_pack_strided(w, N, K, K, 1, packed); }

// bfloat16 panels keep the same [N/16][K][16] order, with each row of 16 interleaved so that
// 32-bit lane i holds column i in its low half and column i + 8 in its high half: one 256-bit load
// then becomes columns 0-7 by a shift left of 16 and columns 8-15 by masking the low halves.
static inline size_t bf16_slot(size_t j) { return j < 8 ? 2 * j : 2 * (j - 8) + 1; }

void dino_pack_weight_bf16(const float *w, size_t N, size_t K, uint16_t *packed) {
    // Each row of 16 is packed as dino_pack_weight packs it (zero padding included), then rounded
    // and interleaved.
    float row[16];
    uint16_t bits[16];
    for (size_t p = 0; p < (N + 15) / 16; p++) {
        size_t valid = N - p * 16 < 16 ? N - p * 16 : 16;
        for (size_t k = 0; k < K; k++) {
            dino_pack_strided(w + p * 16 * K + k, valid, 1, K, 1, row);
            dino_f32_to_bf16(row, bits, 16);
            for (size_t j = 0; j < 16; j++) packed[(p * K + k) * 16 + bf16_slot(j)] = bits[j];
        }
    }
}

void dino_unpack_weight_bf16(const uint16_t *packed, size_t N, size_t K, float *w) {
    for (size_t n = 0; n < N; n++) {
        const uint16_t *panel = packed + (n / 16) * 16 * K + bf16_slot(n % 16);
        for (size_t k = 0; k < K; k++) {
            uint32_t bits = (uint32_t)panel[k * 16] << 16;
            memcpy(&w[n * K + k], &bits, sizeof bits);
        }
    }
}

// Element (k, j) of a panel, float32 or bfloat16.
static inline float panel_value(const void *panel, int bf16, size_t k, size_t j) {
    if (!bf16) return ((const float *)panel)[k * 16 + j];
    uint32_t bits = (uint32_t)((const uint16_t *)panel)[k * 16 + bf16_slot(j)] << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void gemm_packed_ref(const float *x, size_t ldx, size_t M, size_t K, const void *packed, int bf16,
                            size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                            dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    size_t element = bf16 ? sizeof(uint16_t) : sizeof(float);
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            const void *panel = (const char *)packed + (n / 16) * panel_stride * element;
            double acc = 0;
            for (size_t k = 0; k < K; k++) acc += (double)x[m * ldx + k] * panel_value(panel, bf16, k, n % 16);
            float v = (float)acc + (bias ? bias[n] : 0.0f);
            if (mode == DINO_GEMM_ACTIVATION) v = dino_activation_scalar(v, act);
            if (mode == DINO_GEMM_RESIDUAL) out[m * ldo + n] += gamma ? gamma[n] * v : v;
            else out[m * ldo + n] = v;
        }
    }
}

void dino_gemm_packed_ref(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                          size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                          dino_activation act) {
    gemm_packed_ref(x, ldx, M, K, packed, 0, panel_stride, N, bias, out, ldo, mode, gamma, act);
}

void dino_gemm_packed_bf16_ref(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed,
                               size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                               dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    gemm_packed_ref(x, ldx, M, K, packed, 1, panel_stride, N, bias, out, ldo, mode, gamma, act);
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "avx2_math.h"

// Up to 6 rows x 16 columns of out from the same 16-column weight panel: 12 accumulators, two
// weight loads and one broadcast per row and step of K.
#define ROWS 6

// A whole 6 x 16 tile whose sum over K is complete: the same arithmetic as gemm_finish256() for each
// vector (so the same bits), with the mode and bias tests made once per tile instead of per
// vector and no masks: the generic loop over gemm_finish256() took about a quarter of attention's
// q kᵀ product (K = 64; docs/performance.md).
static inline __attribute__((always_inline)) DINO_AVX2 void
finish_full_tile(__m256 acc[ROWS][2], float *dst, size_t ldo, const float *bias, dino_gemm_epilogue mode,
                 const float *gamma, dino_activation act) {
    if (bias) {
        __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
        for (int r = 0; r < ROWS; r++) {
            acc[r][0] = _mm256_add_ps(acc[r][0], b0);
            acc[r][1] = _mm256_add_ps(acc[r][1], b1);
        }
    }
    if (mode == DINO_GEMM_RESIDUAL && gamma) {
        __m256 g0 = _mm256_loadu_ps(gamma), g1 = _mm256_loadu_ps(gamma + 8);
        for (int r = 0; r < ROWS; r++) {
            float *d = dst + r * ldo;
            _mm256_storeu_ps(d, _mm256_fmadd_ps(g0, acc[r][0], _mm256_loadu_ps(d)));
            _mm256_storeu_ps(d + 8, _mm256_fmadd_ps(g1, acc[r][1], _mm256_loadu_ps(d + 8)));
        }
    } else if (mode == DINO_GEMM_RESIDUAL) {
        for (int r = 0; r < ROWS; r++) {
            float *d = dst + r * ldo;
            _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[r][0]));
            _mm256_storeu_ps(d + 8, _mm256_add_ps(_mm256_loadu_ps(d + 8), acc[r][1]));
        }
    } else if (mode == DINO_GEMM_ACTIVATION) {
        for (int r = 0; r < ROWS; r++) {
            _mm256_storeu_ps(dst + r * ldo, activation256(acc[r][0], act));
            _mm256_storeu_ps(dst + r * ldo + 8, activation256(acc[r][1], act));
        }
    } else {
        for (int r = 0; r < ROWS; r++) {
            _mm256_storeu_ps(dst + r * ldo, acc[r][0]);
            _mm256_storeu_ps(dst + r * ldo + 8, acc[r][1]);
        }
    }
}

// The 16 weights of one step of K: two float32 loads, or one bfloat16 load widened by a shift and
// a mask (see bf16_slot). `bf16` is a constant in each caller, so each gets its own loop.
static inline __attribute__((always_inline)) DINO_AVX2 void panel_step(const void *b, int bf16, __m256 *b0, __m256 *b1) {
    if (bf16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)b);
        *b0 = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        *b1 = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u)));
    } else {
        *b0 = _mm256_loadu_ps((const float *)b);
        *b1 = _mm256_loadu_ps((const float *)b + 8);
    }
}

static inline __attribute__((always_inline)) DINO_AVX2 void
gemm_packed_avx2(const float *x, size_t ldx, size_t M, size_t K, const void *packed, int bf16, size_t panel_stride,
                 size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                 dino_activation act) {
    size_t element = bf16 ? sizeof(uint16_t) : sizeof(float);
    size_t KC, MC;
    dino_gemm_blocking(M, K, ROWS, &KC, &MC);
    size_t panels = (N + 15) / 16;
    for (size_t k0 = 0; k0 < K || k0 == 0; k0 += KC) {
        size_t kend = K - k0 < KC ? K : k0 + KC;
        int first = k0 == 0, last = kend == K;
        for (size_t mb = 0; mb < M; mb += MC) {
            size_t mend = M - mb < MC ? M : mb + MC;
            for (size_t p = 0; p < panels; p++) {
                const char *panel = (const char *)packed + (p * panel_stride + k0 * 16) * element;
                size_t n0 = p * 16;
                size_t valid = N - n0 < 16 ? N - n0 : 16;
                // The slice of weights that comes next (the next panel; after the last, the first
                // panel for the next rows or the next block of K) is not where the hardware
                // prefetchers look: each tile fetches its share of it into L2 (T2 keeps it out
                // of L1, which holds this slice).
                const char *next = NULL;
                size_t next_steps = kend - k0;
                if (p + 1 < panels) {
                    next = panel + panel_stride * element;
                } else if (mend < M) {
                    next = (const char *)packed + k0 * 16 * element;
                } else if (kend < K) {
                    next = (const char *)packed + kend * 16 * element;
                    next_steps = K - kend < KC ? K - kend : KC;
                }
                size_t next_lines = next ? (next_steps * 16 * element + 63) / 64 : 0;
                size_t tiles = (mend - mb + ROWS - 1) / ROWS, lines_per_tile = (next_lines + tiles - 1) / tiles;
                for (size_t m0 = mb; m0 < mend; m0 += ROWS) {
                    size_t rows = mend - m0 < ROWS ? mend - m0 : ROWS;
                    size_t line = (m0 - mb) / ROWS * lines_per_tile;
                    for (size_t end = line + lines_per_tile < next_lines ? line + lines_per_tile : next_lines; line < end; line++)
                        _mm_prefetch(next + line * 64, _MM_HINT_T2);
                    const float *r0 = x + m0 * ldx + k0;
                    // Rows past the end alias the last valid row; their results are not stored.
                    const float *r1 = x + (m0 + (rows > 1 ? 1 : 0)) * ldx + k0;
                    const float *r2 = x + (m0 + (rows > 2 ? 2 : 0)) * ldx + k0;
                    const float *r3 = x + (m0 + (rows > 3 ? 3 : 0)) * ldx + k0;
                    const float *r4 = x + (m0 + (rows > 4 ? 4 : 0)) * ldx + k0;
                    const float *r5 = x + (m0 + (rows > 5 ? 5 : 0)) * ldx + k0;
                    __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps();
                    __m256 a10 = _mm256_setzero_ps(), a11 = _mm256_setzero_ps();
                    __m256 a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
                    __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps();
                    __m256 a40 = _mm256_setzero_ps(), a41 = _mm256_setzero_ps();
                    __m256 a50 = _mm256_setzero_ps(), a51 = _mm256_setzero_ps();
                    // The output rows this tile adds to (a later K block, or a residual) were
                    // written long ago and have left the caches: fetch them while the loop runs.
                    if (!first || mode == DINO_GEMM_RESIDUAL) {
                        for (size_t r = 0; r < rows; r++) {
                            const float *dst = out + (m0 + r) * ldo + n0;
                            _mm_prefetch((const char *)dst, _MM_HINT_T0);
                            _mm_prefetch((const char *)(dst + valid - 1), _MM_HINT_T0);
                        }
                    }
                    const char *b = panel;
                    // Unrolled by 4, the fastest of 1, 2, 4 and 8 (docs/performance.md).
#pragma clang loop unroll_count(4)
                    for (size_t k = 0; k < kend - k0; k++, b += 16 * element) {
                        __m256 b0, b1, v;
                        panel_step(b, bf16, &b0, &b1);
                        v = _mm256_broadcast_ss(r0 + k);
                        a00 = _mm256_fmadd_ps(v, b0, a00);
                        a01 = _mm256_fmadd_ps(v, b1, a01);
                        v = _mm256_broadcast_ss(r1 + k);
                        a10 = _mm256_fmadd_ps(v, b0, a10);
                        a11 = _mm256_fmadd_ps(v, b1, a11);
                        v = _mm256_broadcast_ss(r2 + k);
                        a20 = _mm256_fmadd_ps(v, b0, a20);
                        a21 = _mm256_fmadd_ps(v, b1, a21);
                        v = _mm256_broadcast_ss(r3 + k);
                        a30 = _mm256_fmadd_ps(v, b0, a30);
                        a31 = _mm256_fmadd_ps(v, b1, a31);
                        v = _mm256_broadcast_ss(r4 + k);
                        a40 = _mm256_fmadd_ps(v, b0, a40);
                        a41 = _mm256_fmadd_ps(v, b1, a41);
                        v = _mm256_broadcast_ss(r5 + k);
                        a50 = _mm256_fmadd_ps(v, b0, a50);
                        a51 = _mm256_fmadd_ps(v, b1, a51);
                    }
                    __m256 acc[ROWS][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
                    if (rows == ROWS && valid == 16 && first && last) {
                        finish_full_tile(acc, out + m0 * ldo + n0, ldo, bias ? bias + n0 : NULL, mode,
                                         gamma ? gamma + n0 : NULL, act);
                        continue;
                    }
                    for (size_t r = 0; r < rows; r++) {
                        float *dst = out + (m0 + r) * ldo + n0;
                        gemm_finish256(acc[r][0], dst, n0, valid, bias, mode, gamma, act, first, last);
                        gemm_finish256(acc[r][1], dst + 8, n0 + 8, valid > 8 ? valid - 8 : 0, bias, mode, gamma, act, first,
                                       last);
                    }
                }
            }
        }
        if (K == 0) break;
    }
}

// Panel element (k, j) = rows[j * stride + k] for 16 rows, in blocks of 8 x 8 (unpack, shuffle,
// swap lanes); returns the steps of K done, a multiple of 8.
DINO_AVX2 size_t dino_transpose_panel_avx2(const float *rows, size_t stride, size_t K, float *panel) {
    size_t k0 = 0;
    for (; k0 + 8 <= K; k0 += 8) {
        for (size_t half = 0; half < 16; half += 8) {
            const float *r = rows + half * stride + k0;
            __m256 v[8];
            for (int j = 0; j < 8; j++) v[j] = _mm256_loadu_ps(r + j * stride);
            __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
            __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
            __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
            __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
            // u0-u3: rows 0-3 at steps 0-3 of the block (low lane) and 4-7 (high lane); u4-u7:
            // rows 4-7. Swapping lanes then gives one step of K for 8 rows per vector.
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *out = panel + k0 * 16 + half;
            _mm256_storeu_ps(out + 0 * 16, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(out + 1 * 16, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(out + 2 * 16, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(out + 3 * 16, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(out + 4 * 16, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(out + 5 * 16, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(out + 6 * 16, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(out + 7 * 16, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    }
    return k0;
}

DINO_AVX2 void dino_gemm_packed_avx2(const float *x, size_t ldx, size_t M, size_t K, const float *packed,
                                     size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                     dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    gemm_packed_avx2(x, ldx, M, K, packed, 0, panel_stride, N, bias, out, ldo, mode, gamma, act);
}

DINO_AVX2 void dino_gemm_packed_bf16_avx2(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed,
                                          size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                          dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    gemm_packed_avx2(x, ldx, M, K, packed, 1, panel_stride, N, bias, out, ldo, mode, gamma, act);
}

#endif
