// The packed GEMMs with AVX-512: the weights packed at load as for the AVX2 kernel (panels of 16
// columns, one zmm register per step of K), the blocking of gemm_packed.c, and tiles of
// TILE_ROWS rows x TILE_PANELS panels with one zmm accumulator each. Before a block of rows meets
// the panels, its rows are copied into tiles laid out [steps / 16][TILE_ROWS][16], so that every
// broadcast of a step comes from one pointer at a constant offset (twelve rows read in place would
// take twelve of the fifteen general registers). One driver runs three kinds of weights:
// float32, bfloat16 widened to float32 (the AVX2 kernel's interleaved panels), and bfloat16 pairs
// multiplied with AVX512-BF16's dot products (x rounded to bfloat16 pairs as it is copied).
//
// Dimension letters: M rows (tokens), N output features, K input features; a step is one value
// of K (two for the dot products, which take K in pairs).
#include "internal.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "avx512_math.h"

#include <stdlib.h>
#include <string.h>

#ifndef TILE_ROWS
#define TILE_ROWS 12
#endif
#ifndef TILE_PANELS
#define TILE_PANELS 2
#endif
#define MAX_TILE_ROWS 16
#define MAX_TILE_PANELS 4

typedef enum { WEIGHTS_F32, WEIGHTS_BF16, WEIGHTS_BF16_DOT } weight_kind;

#define ALWAYS_INLINE inline __attribute__((always_inline))

// Bytes of one step of one panel.
static ALWAYS_INLINE size_t step_bytes(weight_kind kind) { return kind == WEIGHTS_BF16 ? 32 : 64; }

// The 16 weights of one step of a panel as float32, or as 16 bfloat16 pairs for the dot products.
// bfloat16 panels interleave each row for the AVX2 kernel (lane i holds column i in its low half
// and i + 8 in its high half): a shift and a mask widen the two halves, one insert joins them.
static ALWAYS_INLINE DINO_AVX512 __m512 panel_step(const char *p, weight_kind kind) {
    if (kind == WEIGHTS_BF16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)p);
        __m256 low = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        __m256 high = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u)));
        return _mm512_insertf32x8(_mm512_castps256_ps512(low), high, 1);
    }
    return _mm512_loadu_ps((const float *)p);
}

// acc + the pairwise bfloat16 products of a and b per lane (VDPBF16PS). In assembly so that the
// float32 kernels, compiled without AVX512-BF16, can share this file's inline functions.
static ALWAYS_INLINE DINO_AVX512 __m512 dot_bf16(__m512 acc, __m512 a, __m512 b) {
    __asm__("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

// One step of K: acc[r][i] += x[r][k] * panel i, where x[r][k] is xb[r * 16] (a block of the copied
// tile, offset to the step) and panel i's weights of the step start at w + i * panel_bytes.
static ALWAYS_INLINE DINO_AVX512 void tile_step(const int rows, const int panels, weight_kind kind, const float *xb,
                                                const char *w, size_t panel_bytes,
                                                __m512 acc[MAX_TILE_ROWS][MAX_TILE_PANELS]) {
    __m512 b[MAX_TILE_PANELS];
#pragma clang loop unroll(full)
    for (int i = 0; i < panels; i++) b[i] = panel_step(w + i * panel_bytes, kind);
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        __m512 v = _mm512_set1_ps(xb[r * 16]);
#pragma clang loop unroll(full)
        for (int i = 0; i < panels; i++)
            acc[r][i] = kind == WEIGHTS_BF16_DOT ? dot_bf16(acc[r][i], v, b[i]) : _mm512_fmadd_ps(v, b[i], acc[r][i]);
    }
}

// acc[r][i] += row r of the copied tile `xt` times panel i, over `steps` steps; panel i starts at
// w + i * panel_bytes.
static ALWAYS_INLINE DINO_AVX512 void tile_product(const int rows, const int panels, weight_kind kind, const float *xt,
                                                   const char *w, size_t panel_bytes, size_t steps,
                                                   __m512 acc[MAX_TILE_ROWS][MAX_TILE_PANELS]) {
    const size_t sb = step_bytes(kind);
    size_t k = 0;
    for (size_t kb = 0; kb < steps / 16; kb++) {
        const float *xb = xt + kb * rows * 16;
#pragma clang loop unroll_count(4)
        for (size_t kk = 0; kk < 16; kk++, k++) tile_step(rows, panels, kind, xb + kk, w + k * sb, panel_bytes, acc);
    }
    const float *xb = xt + steps / 16 * rows * 16;
    for (size_t kk = 0; k < steps; kk++, k++) tile_step(rows, panels, kind, xb + kk, w + k * sb, panel_bytes, acc);
}

// A whole tile whose sum over K is complete: gemm_finish512()'s arithmetic with the mode and bias tests
// made once per tile and no masks.
static ALWAYS_INLINE DINO_AVX512 void finish_full_tile(const int rows, const int panels,
                                                       __m512 acc[MAX_TILE_ROWS][MAX_TILE_PANELS], float *dst,
                                                       size_t ldo, const float *bias, dino_gemm_epilogue mode,
                                                       const float *gamma, dino_activation act) {
    if (bias) {
#pragma clang loop unroll(full)
        for (int i = 0; i < panels; i++) {
            __m512 b = _mm512_loadu_ps(bias + 16 * i);
#pragma clang loop unroll(full)
            for (int r = 0; r < rows; r++) acc[r][i] = _mm512_add_ps(acc[r][i], b);
        }
    }
    // One loop per mode, chosen once per tile.
#define EACH_VECTOR(expression)                                                                                       \
    _Pragma("clang loop unroll(full)") for (int r = 0; r < rows; r++) {                                               \
        _Pragma("clang loop unroll(full)") for (int i = 0; i < panels; i++) {                                         \
            float *d = dst + r * ldo + 16 * i;                                                                        \
            __m512 v = acc[r][i];                                                                                     \
            _mm512_storeu_ps(d, expression);                                                                          \
        }                                                                                                             \
    }
    if (mode == DINO_GEMM_RESIDUAL && gamma) {
        EACH_VECTOR(_mm512_fmadd_ps(_mm512_loadu_ps(gamma + 16 * i), v, _mm512_loadu_ps(d)))
    } else if (mode == DINO_GEMM_RESIDUAL) {
        EACH_VECTOR(_mm512_add_ps(_mm512_loadu_ps(d), v))
    } else if (mode == DINO_GEMM_ACTIVATION) {
        EACH_VECTOR(activation512(v, act))
    } else {
        EACH_VECTOR(v)
    }
#undef EACH_VECTOR
}

// Rows [m0, m0 + count) of x, steps [k0, k0 + steps) (pairs for the dot products, rounded to
// bfloat16 as dino_f32_to_bf16 rounds), into one tile [ceil(steps / 16)][rows][16], zero past
// count and past the steps.
static ALWAYS_INLINE DINO_AVX512 void copy_tile(const int rows, weight_kind kind, const float *x, size_t ldx,
                                                size_t count, size_t K, size_t k0, size_t steps, float *xt) {
    size_t blocks = (steps + 15) / 16;
    for (int r = 0; r < rows; r++) {
        const float *src = x + r * ldx;
        for (size_t kb = 0; kb < blocks; kb++) {
            float *dst = xt + (kb * rows + r) * 16;
            if ((size_t)r >= count) {
                _mm512_storeu_ps(dst, _mm512_setzero_ps());
            } else if (kind == WEIGHTS_BF16_DOT) {
                size_t k = 32 * kb, left = K - k;
                __m256i low = bf16_round16(load16(src + k, tail_mask16(left), left));
                __m256i high = bf16_round16(left > 16 ? load16(src + k + 16, tail_mask16(left - 16), left - 16)
                                                      : _mm512_setzero_ps());
                _mm512_storeu_si512(dst, _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1));
            } else {
                size_t k = k0 + 16 * kb, left = k0 + steps - k;
                _mm512_storeu_ps(dst, load16(src + k, tail_mask16(left), left));
            }
        }
    }
}

// out[M, N] (op)= x[M, K] . wᵀ + bias for one kind of packed weights (see the file comment).
static ALWAYS_INLINE DINO_AVX512 void gemm_avx512(const int rows, const int panels, weight_kind kind, const float *x,
                                                  size_t ldx, size_t M, size_t K, const char *packed,
                                                  size_t panel_stride_bytes, size_t N, const float *bias, float *out,
                                                  size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                                                  dino_activation act) {
    if (M == 0 || N == 0) return;
    size_t KC, MC;
    dino_gemm_blocking(M, K, rows, &KC, &MC);
    // The dot products sum K in one piece, as the portable model of the instruction does.
    if (kind == WEIGHTS_BF16_DOT) KC = K > 0 ? K : 1;
    size_t total_steps = kind == WEIGHTS_BF16_DOT ? (K + 1) / 2 : K;
    size_t block_steps = kind == WEIGHTS_BF16_DOT ? total_steps : KC;
    size_t tile_floats = (block_steps + 15) / 16 * 16 * rows;
    float *xt = malloc((MC / rows) * tile_floats * sizeof(float));
    if (!xt) {
        // No memory for the copied rows: the plain kernels need none.
        if (kind == WEIGHTS_F32)
            dino_gemm_packed_ref(x, ldx, M, K, (const float *)packed, panel_stride_bytes / 4, N, bias, out, ldo, mode,
                                 gamma, act);
        else if (kind == WEIGHTS_BF16)
            dino_gemm_packed_bf16_ref(x, ldx, M, K, (const uint16_t *)packed, panel_stride_bytes / 2, N, bias, out, ldo,
                                      mode, gamma, act);
        else
            dino_gemm_packed_bf16_dot_model(x, ldx, M, K, (const uint32_t *)packed, panel_stride_bytes / 4, N, bias, out,
                                            ldo, mode, gamma, act);
        return;
    }
    const size_t sb = step_bytes(kind);
    size_t all_panels = (N + 15) / 16;
    for (size_t k0 = 0; k0 < K || k0 == 0; k0 += KC) {
        size_t kend = K - k0 < KC ? K : k0 + KC;
        size_t steps = kind == WEIGHTS_BF16_DOT ? total_steps : kend - k0;
        int first = k0 == 0, last = kend == K;
        for (size_t mb = 0; mb < M; mb += MC) {
            size_t mend = M - mb < MC ? M : mb + MC;
            size_t tiles = (mend - mb + rows - 1) / rows;
            for (size_t t = 0; t < tiles; t++) {
                size_t m0 = mb + t * rows;
                copy_tile(rows, kind, x + m0 * ldx, ldx, mend - m0 < (size_t)rows ? mend - m0 : rows, K, k0, steps,
                          xt + t * tile_floats);
            }
            for (size_t p = 0; p < all_panels; p += panels) {
                const char *w = packed + p * panel_stride_bytes + k0 * sb;
                size_t group = all_panels - p < (size_t)panels ? all_panels - p : panels;
                size_t n0 = p * 16, valid = N - n0 < 16 * group ? N - n0 : 16 * group;
                // The weights that come next (the next group of panels; after the last, the first
                // group for the next rows or the next block of K) are not where the hardware
                // prefetchers look: each tile fetches its share of them into L2, as in the AVX2
                // kernel.
                const char *next = NULL;
                size_t next_group = panels, next_steps = steps;
                if (p + panels < all_panels) {
                    next = w + panels * panel_stride_bytes;
                    next_group = all_panels - p - panels < (size_t)panels ? all_panels - p - panels : panels;
                } else if (mend < M) {
                    next = packed + k0 * sb;
                } else if (kend < K) {
                    next = packed + kend * sb;
                    next_steps = K - kend < KC ? K - kend : KC;
                }
                if (next && next_group > all_panels) next_group = all_panels;
                size_t lines_per_panel = (next_steps * sb + 63) / 64, next_lines = next ? next_group * lines_per_panel : 0;
                size_t lines_per_tile = (next_lines + tiles - 1) / tiles;
                for (size_t t = 0; t < tiles; t++) {
                    size_t m0 = mb + t * rows, count = mend - m0 < (size_t)rows ? mend - m0 : rows;
                    size_t line = t * lines_per_tile, end = line + lines_per_tile < next_lines ? line + lines_per_tile : next_lines;
                    if (line < end) {
                        size_t panel = line / lines_per_panel, offset = line % lines_per_panel;
                        for (; line < end; line++) {
                            _mm_prefetch(next + panel * panel_stride_bytes + offset * 64, _MM_HINT_T2);
                            if (++offset == lines_per_panel) offset = 0, panel++;
                        }
                    }
                    __m512 acc[MAX_TILE_ROWS][MAX_TILE_PANELS];
#pragma clang loop unroll(full)
                    for (int r = 0; r < rows; r++) {
#pragma clang loop unroll(full)
                        for (int i = 0; i < panels; i++) acc[r][i] = _mm512_setzero_ps();
                    }
                    const float *tile = xt + t * tile_floats;
                    // A last group of fewer panels runs its own loop (each a constant count).
                    switch (group) {
#define GROUP(g)                                                                                                      \
    case g:                                                                                                           \
        if (g <= panels) tile_product(rows, g <= panels ? g : 1, kind, tile, w, panel_stride_bytes, steps, acc);       \
        break;
                        GROUP(1) GROUP(2) GROUP(3) GROUP(4)
#undef GROUP
                    }
                    float *dst = out + m0 * ldo + n0;
                    if (count == (size_t)rows && valid == 16 * (size_t)panels && first && last) {
                        finish_full_tile(rows, panels, acc, dst, ldo, bias ? bias + n0 : NULL, mode,
                                         gamma ? gamma + n0 : NULL, act);
                        continue;
                    }
                    // Constant indices only, so that the accumulators stay in registers.
#pragma clang loop unroll(full)
                    for (int r = 0; r < rows; r++) {
#pragma clang loop unroll(full)
                        for (int i = 0; i < panels; i++) {
                            if ((size_t)r < count && 16 * (size_t)i < valid) {
                                size_t left = valid - 16 * (size_t)i;
                                gemm_finish512(acc[r][i], dst + r * ldo + 16 * i, n0 + 16 * i, left < 16 ? left : 16,
                                               bias, mode, gamma, act, first, last);
                            }
                        }
                    }
                }
            }
        }
        if (K == 0) break;
    }
    free(xt);
}

DINO_AVX512 void dino_gemm_packed_avx512(const float *x, size_t ldx, size_t M, size_t K, const float *packed,
                                         size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                         dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    gemm_avx512(TILE_ROWS, TILE_PANELS, WEIGHTS_F32, x, ldx, M, K, (const char *)packed, panel_stride * sizeof(float), N,
                bias, out, ldo, mode, gamma, act);
}

DINO_AVX512 void dino_gemm_packed_bf16_avx512(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed,
                                              size_t panel_stride, size_t N, const float *bias, float *out, size_t ldo,
                                              dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    gemm_avx512(TILE_ROWS, TILE_PANELS, WEIGHTS_BF16, x, ldx, M, K, (const char *)packed, panel_stride * sizeof(uint16_t),
                N, bias, out, ldo, mode, gamma, act);
}

DINO_AVX512 void dino_gemm_packed_bf16_dot_avx512(const float *x, size_t ldx, size_t M, size_t K, const uint32_t *packed,
                                                  size_t panel_stride, size_t N, const float *bias, float *out,
                                                  size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                                                  dino_activation act) {
    gemm_avx512(TILE_ROWS, TILE_PANELS, WEIGHTS_BF16_DOT, x, ldx, M, K, (const char *)packed,
                panel_stride * sizeof(uint32_t), N, bias, out, ldo, mode, gamma, act);
}

// The K-pair panels of dino_pack_strided_bf16_dot for the two layouts attention packs. Keys
// (stride_k 1): 16 rows of 32 steps are rounded into 16 x 16 pairs and transposed as floats (the
// transpose moves 32-bit lanes, bits untouched). Values (stride_n 1): steps 2k and 2k + 1 are two
// rows of 16 columns, rounded and interleaved. Rounding as dino_f32_to_bf16_ref.
DINO_AVX512 void dino_pack_strided_bf16_dot_avx512(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k,
                                                   uint32_t *packed) {
    size_t pairs = (K + 1) / 2;
    for (size_t p = 0; p < (N + 15) / 16; p++) {
        uint32_t *panel = packed + p * pairs * 16;
        size_t valid = N - p * 16 < 16 ? N - p * 16 : 16;
        __mmask16 columns = tail_mask16(valid);
        if (stride_n == 1) {
            const float *src = w + p * 16;
            for (size_t k = 0; k < pairs; k++) {
                __m512i low = _mm512_cvtepu16_epi32(bf16_round16(load16(src + 2 * k * stride_k, columns, valid)));
                __m512i high = 2 * k + 1 < K
                                   ? _mm512_cvtepu16_epi32(bf16_round16(load16(src + (2 * k + 1) * stride_k, columns, valid)))
                                   : _mm512_setzero_si512();
                _mm512_storeu_si512(panel + k * 16, _mm512_or_si512(low, _mm512_slli_epi32(high, 16)));
            }
            continue;
        }
        const float *src = w + p * 16 * stride_n;
        for (size_t k0 = 0; k0 < pairs; k0 += 16) {
            // Rows of 16 pairs (32 steps), zero past N and K, then one 16 x 16 transpose.
            uint32_t rows[16][16], block[16][16];
            size_t left = K - 2 * k0;
            for (size_t j = 0; j < 16; j++) {
                if (j >= valid) {
                    _mm512_storeu_si512(rows[j], _mm512_setzero_si512());
                    continue;
                }
                const float *row = src + j * stride_n + 2 * k0;
                __m256i low = bf16_round16(load16(row, tail_mask16(left), left));
                __m256i high = bf16_round16(left > 16 ? load16(row + 16, tail_mask16(left - 16), left - 16) : _mm512_setzero_ps());
                _mm512_storeu_si512(rows[j], _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1));
            }
            size_t count = pairs - k0 < 16 ? pairs - k0 : 16;
            float *target = count == 16 ? (float *)(panel + k0 * 16) : (float *)block;
            dino_transpose_panel_avx512((const float *)rows, 16, 16, target);
            if (count < 16) memcpy(panel + k0 * 16, block, count * 16 * sizeof(uint32_t));
        }
    }
}

#endif
