// The machine's ceiling for the GEMM kernels: a loop of nothing but independent FMAs, with no
// loads, the instruction the micro-kernels' inner loops are made of, on AVX2 (8 floats) or
// AVX-512 (16 floats) vectors. `dino bench --gemm-rate` runs it on every compute thread at once
// and reports the forward pass as a share of it, so that a latency target can be read as the
// fraction of this machine's FMA peak it needs. The AVX-512 loop tells whether 512-bit FMAs
// are twice as fast as 256-bit ones (two 512-bit units, Intel servers) or not (Zen 4 splits them).
#include "internal.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "avx2_math.h"

#define DINO_AVX512_FMA __attribute__((target("avx512f,avx2,fma")))

// The sum of n lanes, in double.
static double sum_lanes(const float *lanes, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += lanes[i];
    return sum;
}

// A function running 12 independent chains of FMAs on vectors `V` of `LANES` floats: each FMA's
// 4-5 cycle latency is hidden behind the others, so the FMA pipes are the only limit. The
// multiplier and addend keep the values finite (x -> x * (1 - 2^-20) + 2^-20 tends to 1) and come
// through an empty asm so that nothing is folded. It returns the sum of the final values, so
// that the chains are live.
#define FMA_LOOP(name, attributes, V, LANES, SET1, FMADD, ADD, STORE)                                                  \
    static attributes __attribute__((noinline)) double name(size_t iterations) {                                      \
        V mul = SET1(1.0f - 0x1p-20f), add = SET1(0x1p-20f);                                                          \
        __asm__("" : "+v"(mul), "+v"(add));                                                                           \
        V a0 = add, a1 = add, a2 = add, a3 = add, a4 = add, a5 = add;                                                 \
        V a6 = add, a7 = add, a8 = add, a9 = add, a10 = add, a11 = add;                                               \
        /* The chains start equal; hiding that keeps the compiler from merging them into one. */                      \
        __asm__("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));                                     \
        __asm__("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));                                   \
        for (size_t i = 0; i < iterations; i++) {                                                                     \
            a0 = FMADD(a0, mul, add); a1 = FMADD(a1, mul, add); a2 = FMADD(a2, mul, add);                             \
            a3 = FMADD(a3, mul, add); a4 = FMADD(a4, mul, add); a5 = FMADD(a5, mul, add);                             \
            a6 = FMADD(a6, mul, add); a7 = FMADD(a7, mul, add); a8 = FMADD(a8, mul, add);                             \
            a9 = FMADD(a9, mul, add); a10 = FMADD(a10, mul, add); a11 = FMADD(a11, mul, add);                         \
        }                                                                                                             \
        V total = ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))),                             \
                      ADD(ADD(a8, a9), ADD(a10, a11)));                                                               \
        float lanes[LANES];                                                                                           \
        STORE(lanes, total);                                                                                          \
        return sum_lanes(lanes, LANES);                                                                               \
    }

FMA_LOOP(fma_loop_avx2, DINO_AVX2, __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps)
FMA_LOOP(fma_loop_avx512, DINO_AVX512_FMA, __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps)

double dino_fma_peak_loop(dino_isa isa, size_t iterations, double *checksum) {
    if (!dino_kernels_for_isa(isa)) return 0;
    double sum, flops;
    switch (isa) {
    case DINO_ISA_AVX2:
        sum = fma_loop_avx2(iterations);
        flops = (double)iterations * DINO_FMA_PEAK_FLOPS_PER_STEP; // 12 FMAs of 8 lanes, 2 operations each
        break;
    case DINO_ISA_AVX512:
        sum = fma_loop_avx512(iterations);
        flops = (double)iterations * DINO_FMA_PEAK_FLOPS_PER_STEP_AVX512; // 12 FMAs of 16 lanes
        break;
    default:
        return 0;
    }
    if (checksum) *checksum = sum;
    return flops;
}

#else

double dino_fma_peak_loop(dino_isa isa, size_t iterations, double *checksum) {
    (void)isa;
    (void)iterations;
    (void)checksum;
    return 0;
}

#endif
