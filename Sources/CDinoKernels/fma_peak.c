// The machine's ceiling for the AVX2 kernels: a loop of nothing but independent FMAs, with no
// loads, the same instruction the GEMM micro-kernel's inner loop is made of. `dino bench
// --gemm-rate` runs it on every compute thread at once and reports the forward pass as a share
// of it, so that a latency target can be read as the fraction of this machine's FMA peak it needs.
#include "internal.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "avx2_math.h"

#define FMA(acc) acc = _mm256_fmadd_ps(acc, mul, add)

// 12 independent chains: each FMA's 4-5 cycle latency is hidden behind the others, so the two
// FMA pipes are the only limit. The multiplier and addend keep the values finite (x -> x * (1 -
// 2^-20) + 2^-20 tends to 1) and come through an empty asm so that nothing is folded.
static DINO_AVX2 __attribute__((noinline)) double fma_loop_avx2(size_t iterations) {
    __m256 mul = _mm256_set1_ps(1.0f - 0x1p-20f), add = _mm256_set1_ps(0x1p-20f);
    __asm__("" : "+x"(mul), "+x"(add));
    __m256 a0 = add, a1 = add, a2 = add, a3 = add, a4 = add, a5 = add;
    __m256 a6 = add, a7 = add, a8 = add, a9 = add, a10 = add, a11 = add;
    // The chains start equal; hiding that keeps the compiler from merging them into one.
    __asm__("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    __asm__("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
    for (size_t i = 0; i < iterations; i++) {
        FMA(a0); FMA(a1); FMA(a2); FMA(a3); FMA(a4); FMA(a5);
        FMA(a6); FMA(a7); FMA(a8); FMA(a9); FMA(a10); FMA(a11);
    }
    // The sum is returned so the chains are live (each lane tends to 1: at most about 96).
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    double sum = 0;
    for (int i = 0; i < 8; i++) sum += lanes[i];
    return sum;
}

double dino_fma_peak_loop(size_t iterations, double *checksum) {
    if (dino_kernels_active_isa() != DINO_ISA_AVX2) return 0;
    double sum = fma_loop_avx2(iterations);
    if (checksum) *checksum = sum;
    return (double)iterations * DINO_FMA_PEAK_FLOPS_PER_STEP; // 12 FMAs of 8 lanes, 2 operations each
}

#else

double dino_fma_peak_loop(size_t iterations, double *checksum) {
    (void)iterations;
    (void)checksum;
    return 0;
}

#endif
