// Inner-loop variants of the packed GEMM kernel (Sources/CDinoKernels/gemm_packed.c), timed with
// every operand in L1 so that only the loop itself is measured, against a plain FMA loop (the
// core's peak). The variants alternate every 100 calls, so that this VM's slow and fast minutes
// fall on all of them alike; the README's Performance section quotes these figures.
//
//   clang -O2 -o /tmp/gemm_loop_variants Benchmarks/gemm_loop_variants.c && /tmp/gemm_loop_variants
//
// x86-64 with AVX2 + FMA only. Every variant runs 12 accumulators of 8 floats (96 outputs) over
// K steps, so all do the same FLOPs; they differ in how the operands reach the FMAs.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define K 256
#define ROUNDS 3000
#define CALLS 100

static float x[8 * K] __attribute__((aligned(64)));  // rows of activations, K-major
static float w[48 * K] __attribute__((aligned(64))); // a weight panel, K-major
float sink[96];                                       // keeps the results alive

#define TARGET __attribute__((target("avx2,fma"), noinline))
#define FMA(acc, a, b) acc = _mm256_fmadd_ps(a, b, acc)
#define ZERO12                                                                                                 \
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, \
           a9 = a0, a10 = a0, a11 = a0;
#define STORE12                                                                                                \
    {                                                                                                          \
        __m256 r[12] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};                                     \
        for (int i = 0; i < 12; i++) _mm256_storeu_ps(sink + 8 * i, r[i]);                                     \
    }
#define ASM_OUTPUTS                                                                                            \
    [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4), [a5] "+x"(a5), [a6] "+x"(a6),   \
        [a7] "+x"(a7), [a8] "+x"(a8), [a9] "+x"(a9), [a10] "+x"(a10), [a11] "+x"(a11), [p] "+r"(p), [q] "+r"(q), \
        [k] "+r"(k)
#define ASM_CLOBBERS "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc"

// The plain FMA loop: no loads at all, 12 independent chains.
TARGET static void fma_peak(void) {
    ZERO12 __m256 b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
    for (int k = 0; k < K; k++) {
        FMA(a0, a0, b); FMA(a1, a1, b); FMA(a2, a2, b); FMA(a3, a3, b); FMA(a4, a4, b); FMA(a5, a5, b);
        FMA(a6, a6, b); FMA(a7, a7, b); FMA(a8, a8, b); FMA(a9, a9, b); FMA(a10, a10, b); FMA(a11, a11, b);
        b = _mm256_add_ps(b, c);
    }
    STORE12
}

// The kernel's loop: 6 rows x 16 columns, two weight loads and six broadcasts per step.
TARGET static void tile6x16(void) {
    ZERO12 const float *p = w, *q = x;
    for (int k = 0; k < K; k++, p += 16, q += 6) {
        __m256 b0 = _mm256_load_ps(p), b1 = _mm256_load_ps(p + 8), v;
        v = _mm256_broadcast_ss(q + 0); FMA(a0, v, b0); FMA(a1, v, b1);
        v = _mm256_broadcast_ss(q + 1); FMA(a2, v, b0); FMA(a3, v, b1);
        v = _mm256_broadcast_ss(q + 2); FMA(a4, v, b0); FMA(a5, v, b1);
        v = _mm256_broadcast_ss(q + 3); FMA(a6, v, b0); FMA(a7, v, b1);
        v = _mm256_broadcast_ss(q + 4); FMA(a8, v, b0); FMA(a9, v, b1);
        v = _mm256_broadcast_ss(q + 5); FMA(a10, v, b0); FMA(a11, v, b1);
    }
    STORE12
}

// Diagnostic, not a GEMM: the same loop with three broadcasts, each feeding four FMAs.
TARGET static void tile6x16_three_broadcasts(void) {
    ZERO12 const float *p = w, *q = x;
    for (int k = 0; k < K; k++, p += 16, q += 6) {
        __m256 b0 = _mm256_load_ps(p), b1 = _mm256_load_ps(p + 8), v;
        v = _mm256_broadcast_ss(q + 0); FMA(a0, v, b0); FMA(a1, v, b1); FMA(a2, v, b0); FMA(a3, v, b1);
        v = _mm256_broadcast_ss(q + 1); FMA(a4, v, b0); FMA(a5, v, b1); FMA(a6, v, b0); FMA(a7, v, b1);
        v = _mm256_broadcast_ss(q + 2); FMA(a8, v, b0); FMA(a9, v, b1); FMA(a10, v, b0); FMA(a11, v, b1);
    }
    STORE12
}

// One step of a row in the assembly loops: broadcast x[row] (at byte `offset` of q) into `reg`,
// then multiply it into 2 or 3 accumulators against the weight vectors held in ymm12-ymm14.
#define BROADCAST(offset, reg) "vbroadcastss " #offset "(%[q]), %%" reg "\n\t"
#define FMA_REG(weight, reg, acc) "vfmadd231ps %%" weight ", %%" reg ", %[" #acc "]\n\t"
#define ROW2(offset, reg, acc0, acc1) BROADCAST(offset, reg) FMA_REG("ymm12", reg, acc0) FMA_REG("ymm13", reg, acc1)
#define ROW3(offset, acc0, acc1, acc2) \
    BROADCAST(offset, "ymm15") FMA_REG("ymm12", "ymm15", acc0) FMA_REG("ymm13", "ymm15", acc1) FMA_REG("ymm14", "ymm15", acc2)
// A weight vector at byte `offset` of p as the FMA's memory operand.
#define FMA_MEM(offset, reg, acc) "vfmadd231ps " #offset "(%[p]), %%" reg ", %[" #acc "]\n\t"
#define LOOP_END(p_bytes, q_bytes) "add $" #p_bytes ", %[p]\n\t add $" #q_bytes ", %[q]\n\t dec %[k]\n\t jnz 1b\n\t"

// An assembly variant: `body` is one step of K, looped K times with p and q advanced by it.
#define ASM_VARIANT(name, body)                                                                                \
    TARGET static void name(void) {                                                                            \
        ZERO12 const float *p = w, *q = x;                                                                     \
        long k = K;                                                                                            \
        __asm__ volatile("1:\n\t" body : ASM_OUTPUTS : : ASM_CLOBBERS);                                         \
        STORE12                                                                                                \
    }

// The kernel's loop in assembly, two broadcast registers alternating.
ASM_VARIANT(tile6x16_asm,
            "vmovaps (%[p]), %%ymm12\n\t vmovaps 32(%[p]), %%ymm13\n\t"
            ROW2(0, "ymm15", a0, a1) ROW2(4, "ymm14", a2, a3) ROW2(8, "ymm15", a4, a5)
            ROW2(12, "ymm14", a6, a7) ROW2(16, "ymm15", a8, a9) ROW2(20, "ymm14", a10, a11)
            LOOP_END(64, 24))

// 4 rows x 24 columns in assembly (the compiler spills this one): three weight loads and four
// broadcasts per step.
ASM_VARIANT(tile4x24_asm,
            "vmovaps (%[p]), %%ymm12\n\t vmovaps 32(%[p]), %%ymm13\n\t vmovaps 64(%[p]), %%ymm14\n\t"
            ROW3(0, a0, a1, a2) ROW3(4, a3, a4, a5) ROW3(8, a6, a7, a8) ROW3(12, a9, a10, a11)
            LOOP_END(96, 16))

// 3 rows x 32 columns with the weights as the FMAs' memory operands: three broadcasts and twelve
// load-FMAs per step.
ASM_VARIANT(tile3x32_memory_operands,
            BROADCAST(0, "ymm13") BROADCAST(4, "ymm14") BROADCAST(8, "ymm15")
            FMA_MEM(0, "ymm13", a0) FMA_MEM(32, "ymm13", a1) FMA_MEM(64, "ymm13", a2) FMA_MEM(96, "ymm13", a3)
            FMA_MEM(0, "ymm14", a4) FMA_MEM(32, "ymm14", a5) FMA_MEM(64, "ymm14", a6) FMA_MEM(96, "ymm14", a7)
            FMA_MEM(0, "ymm15", a8) FMA_MEM(32, "ymm15", a9) FMA_MEM(64, "ymm15", a10) FMA_MEM(96, "ymm15", a11)
            LOOP_END(128, 12))

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "this benchmark needs AVX2 and FMA\n");
        return 1;
    }
    for (int i = 0; i < 8 * K; i++) x[i] = 0.001f * (float)(i % 97);
    for (int i = 0; i < 48 * K; i++) w[i] = 0.002f * (float)(i % 89);
    static void (*const variants[])(void) = {fma_peak, tile6x16, tile6x16_three_broadcasts, tile6x16_asm, tile4x24_asm,
                                             tile3x32_memory_operands};
    static const char *const names[] = {"plain FMA loop (peak)", "6x16, the kernel's loop", "6x16, 3 broadcasts (diagnostic)",
                                        "6x16 in assembly", "4x24 in assembly", "3x32, weights as FMA operands"};
    enum { COUNT = sizeof variants / sizeof variants[0] };
    double seconds[COUNT] = {0};
    for (int round = 0; round < ROUNDS; round++) {
        for (int v = 0; v < COUNT; v++) {
            double start = now();
            for (int call = 0; call < CALLS; call++) variants[v]();
            seconds[v] += now() - start;
        }
    }
    double flops = 2.0 * 96 * K * CALLS * ROUNDS;
    for (int v = 0; v < COUNT; v++) printf("%-34s %6.1f GFLOP/s\n", names[v], flops / seconds[v] / 1e9);
    return 0;
}
