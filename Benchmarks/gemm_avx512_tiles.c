// Tile shapes of the AVX-512 packed GEMM (Sources/CDinoKernels/gemm_packed_avx512.c) against
// each other and against the AVX2 kernel, on one thread, on the GEMMs of a ViT-S and ViT-B forward
// pass at 224 px (each thread's 131 rows; attention's 120-query blocks of one head). The variants
// alternate round by round, so that this VM's slow and fast spells fall on all of them alike;
// docs/performance.md quotes these figures. Build and run from the repository root:
//
//   clang -O2 -fno-omit-frame-pointer -I Sources/CDinoKernels/include -o /tmp/gemm_avx512_tiles \
//     Benchmarks/gemm_avx512_tiles.c $(ls Sources/CDinoKernels/*.c | grep -v gemm_packed_avx512) -lm -lpthread
//   /tmp/gemm_avx512_tiles [rounds]
//
// x86-64 with AVX-512 F + VL + BW + DQ. Prints, per shape, each variant's median GFLOP/s over the
// rounds with the range, and its time relative to the first variant (the default tile); where the
// CPU has AVX512-BF16, the bfloat16 dot-product GEMM (same driver and tile) too, at the same
// FLOP count (2 per multiply-add).
#include "../Sources/CDinoKernels/gemm_packed_avx512.c"

#include <stdio.h>
#include <time.h>

typedef void (*gemm_fn)(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                        size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                        dino_activation act);

#define VARIANT(rows, panels)                                                                                         \
    static DINO_AVX512 __attribute__((noinline)) void tile_##rows##x##panels(                                         \
        const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride, size_t N,           \
        const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma, dino_activation act) { \
        gemm_avx512(rows, panels, WEIGHTS_F32, x, ldx, M, K, (const char *)packed, panel_stride * sizeof(float), N,    \
                    bias, out, ldo, mode, gamma, act);                                                                \
    }
VARIANT(8, 3)
VARIANT(14, 2)
VARIANT(6, 4)
VARIANT(16, 1)

static const struct {
    const char *name;
    gemm_fn fn;
} variants[] = {
    {"default", dino_gemm_packed_avx512}, {"8x3", tile_8x3}, {"14x2", tile_14x2},
    {"6x4", tile_6x4},                    {"16x1", tile_16x1}, {"AVX2 6x16", dino_gemm_packed_avx2},
};
#define VARIANTS (sizeof variants / sizeof variants[0])

static const struct {
    const char *name;
    size_t M, N, K;
    dino_gemm_epilogue mode;
    int gamma;
} shapes[] = {
    {"ViT-S qkv", 131, 1152, 384, DINO_GEMM_STORE, 0},      {"ViT-S proj", 131, 384, 384, DINO_GEMM_RESIDUAL, 1},
    {"ViT-S fc1", 131, 1536, 384, DINO_GEMM_ACTIVATION, 0}, {"ViT-S fc2", 131, 384, 1536, DINO_GEMM_RESIDUAL, 1},
    {"ViT-B qkv", 131, 2304, 768, DINO_GEMM_STORE, 0},      {"ViT-B fc1", 131, 3072, 768, DINO_GEMM_ACTIVATION, 0},
    {"ViT-B fc2", 131, 768, 3072, DINO_GEMM_RESIDUAL, 1},   {"q.k (261 keys)", 120, 261, 64, DINO_GEMM_STORE, 0},
    {"p.v (261 keys)", 120, 64, 261, DINO_GEMM_RESIDUAL, 0}, {"ViT-S fc1 518", 687, 1536, 384, DINO_GEMM_ACTIVATION, 0},
};
#define SHAPES (sizeof shapes / sizeof shapes[0])

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *random_floats(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1 << 24) - 0.5f;
    }
    return p;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    if (!dino_kernels_cpu_has_avx512()) {
        printf("this CPU has no AVX-512\n");
        return 1;
    }
    for (size_t s = 0; s < SHAPES; s++) {
        size_t M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        float *x = random_floats(M * K, 1), *w = random_floats(N * K, 2), *bias = random_floats(N, 3);
        float *gamma = shapes[s].gamma ? random_floats(N, 4) : NULL;
        float *packed = malloc(dino_packed_weight_count(N, K) * sizeof(float));
        dino_pack_weight(w, N, K, packed);
        float *out = calloc(M * N, sizeof(float)), *check = calloc(M * N, sizeof(float));
        int dot = dino_kernels_cpu_has_avx512bf16();
        uint32_t *dot_packed = malloc(dino_packed_weight_count_bf16_dot(N, K) * sizeof(uint32_t));
        dino_pack_weight_bf16_dot(w, N, K, dot_packed);
        double dot_rates[64];
        double flops = 2.0 * M * N * K;
        // About 20 ms of work per variant and round.
        int calls = (int)(20e-3 * 30e9 / flops) + 1;
        double rates[VARIANTS][64];
        if (rounds > 64) rounds = 64;
        for (int r = 0; r < rounds; r++) {
            for (size_t v = 0; v < VARIANTS; v++) {
                memset(out, 0, M * N * sizeof(float));
                double start = now();
                for (int c = 0; c < calls; c++)
                    variants[v].fn(x, K, M, K, packed, 16 * K, N, bias, out, N, shapes[s].mode, gamma, DINO_ACT_GELU);
                rates[v][r] = flops * calls / (now() - start) / 1e9;
            }
            if (dot) {
                memset(out, 0, M * N * sizeof(float));
                double start = now();
                for (int c = 0; c < calls; c++)
                    dino_gemm_packed_bf16_dot_avx512(x, K, M, K, dot_packed, (K + 1) / 2 * 16, N, bias, out, N,
                                                     shapes[s].mode, gamma, DINO_ACT_GELU);
                dot_rates[r] = flops * calls / (now() - start) / 1e9;
            }
        }
        // Every variant computes the same store (residual modes accumulate, so compare a store).
        dino_gemm_packed_ref(x, K, M, K, packed, 16 * K, N, bias, check, N, DINO_GEMM_STORE, NULL, DINO_ACT_GELU);
        double worst = 0;
        for (size_t v = 0; v < VARIANTS; v++) {
            variants[v].fn(x, K, M, K, packed, 16 * K, N, bias, out, N, DINO_GEMM_STORE, NULL, DINO_ACT_GELU);
            for (size_t i = 0; i < M * N; i++) worst = fmax(worst, fabs(out[i] - check[i]));
        }
        printf("%-16s %4zu x %4zu x %4zu (max |diff| %.1e):", shapes[s].name, M, N, K, worst);
        double base = 0;
        for (size_t v = 0; v < VARIANTS; v++) {
            qsort(rates[v], rounds, sizeof(double), compare);
            double median = rates[v][rounds / 2];
            if (v == 0) base = median;
            printf("  %s %.1f [%.1f-%.1f] %.2fx", variants[v].name, median, rates[v][0], rates[v][rounds - 1], base / median);
        }
        if (dot) {
            qsort(dot_rates, rounds, sizeof(double), compare);
            double median = dot_rates[rounds / 2];
            printf("  bf16 dot %.1f [%.1f-%.1f] %.2fx", median, dot_rates[0], dot_rates[rounds - 1], base / median);
        }
        printf("\n");
        free(x), free(w), free(bias), free(gamma), free(packed), free(out), free(check), free(dot_packed);
    }
    return 0;
}
