// AVX-512 (F + VL + BW + DQ) versions of the kernels in kernels_ref.c: kernels_simd.inc's loops
// on 16 floats per vector, with mask registers for the row tails, and the element-type
// conversions. Compiled through function attributes like kernels_avx2.c and only called after
// the dispatcher has checked the CPU.
#include "internal.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "avx512_math.h"


#define KNAME(name) dino_##name##_avx512
#define VMASKLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define VMASKSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VKEEP(m, v) _mm512_maskz_mov_ps(m, v)
#define VSELECT(m, v, w) _mm512_mask_blend_ps(m, w, v)
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHMAX(v) _mm512_reduce_max_ps(v)
#define VFMSUB(a, b, c) _mm512_fmsub_ps(a, b, c)
#include "kernels_simd.inc"

// Panel element (k, j) = rows[j * stride + k] for 16 rows, in blocks of 16 x 16 (the 8 x 8 AVX2
// transpose at twice the width: unpack, shuffle, then two rounds of 128-bit lane shuffles);
// returns the steps of K done, a multiple of 16.
DINO_AVX512 size_t dino_transpose_panel_avx512(const float *rows, size_t stride, size_t K, float *panel) {
    size_t k0 = 0;
    for (; k0 + 16 <= K; k0 += 16) {
        __m512 v[16], t[16], u[16];
        for (int j = 0; j < 16; j++) v[j] = _mm512_loadu_ps(rows + j * stride + k0);
        for (int j = 0; j < 16; j += 2) {
            t[j] = _mm512_unpacklo_ps(v[j], v[j + 1]);
            t[j + 1] = _mm512_unpackhi_ps(v[j], v[j + 1]);
        }
        for (int j = 0; j < 16; j += 4) {
            u[j] = _mm512_shuffle_ps(t[j], t[j + 2], 0x44);
            u[j + 1] = _mm512_shuffle_ps(t[j], t[j + 2], 0xEE);
            u[j + 2] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0x44);
            u[j + 3] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
        }
        // u[4q + i]: 128-bit lane L holds rows 4q..4q+3 at step 4L + i. Pairing groups q and q + 1,
        // t[4q + i] gets steps i and 8 + i of rows 4q..4q+7, t[4q + 4 + i] steps 4 + i and 12 + i.
        for (int q = 0; q < 4; q += 2) {
            for (int i = 0; i < 4; i++) {
                __m512 a = u[4 * q + i], b = u[4 * q + 4 + i];
                t[4 * q + i] = _mm512_shuffle_f32x4(a, b, 0x88);
                t[4 * q + 4 + i] = _mm512_shuffle_f32x4(a, b, 0xDD);
            }
        }
        // Rows 0-7 with rows 8-15: one step of K for all 16 rows per vector.
        for (int i = 0; i < 4; i++) {
            for (int h = 0; h < 2; h++) {
                __m512 a = t[4 * h + i], b = t[8 + 4 * h + i];
                _mm512_storeu_ps(panel + (k0 + 4 * h + i) * 16, _mm512_shuffle_f32x4(a, b, 0x88));
                _mm512_storeu_ps(panel + (k0 + 8 + 4 * h + i) * 16, _mm512_shuffle_f32x4(a, b, 0xDD));
            }
        }
    }
    return k0;
}

DINO_AVX512 void dino_f32_to_bf16_avx512(const float *src, uint16_t *dst, size_t N) {
    for (size_t i = 0; i < N; i += 16) {
        __mmask16 m = tail_mask16(N - i);
        __m256i h = bf16_round16(load16(src + i, m, N - i));
        if (N - i >= 16) _mm256_storeu_si256((__m256i *)(dst + i), h);
        else _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

DINO_AVX512 void dino_bf16_to_f32_avx512(const uint16_t *src, float *dst, size_t N) {
    for (size_t i = 0; i < N; i += 16) {
        __mmask16 m = tail_mask16(N - i);
        __m256i h = N - i >= 16 ? _mm256_loadu_si256((const __m256i *)(src + i)) : _mm256_maskz_loadu_epi16(m, src + i);
        store16(dst + i, m, N - i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
}

// VCVTPH2PS and VCVTPS2PH (F16C, widened by AVX-512F) convert exactly as the reference: every
// half, subnormals included, and float to half to nearest even.
DINO_AVX512 void dino_f16_to_f32_avx512(const uint16_t *src, float *dst, size_t N) {
    for (size_t i = 0; i < N; i += 16) {
        __mmask16 m = tail_mask16(N - i);
        __m256i h = N - i >= 16 ? _mm256_loadu_si256((const __m256i *)(src + i)) : _mm256_maskz_loadu_epi16(m, src + i);
        store16(dst + i, m, N - i, _mm512_cvtph_ps(h));
    }
}

#endif
