// The CPU's features, read from CPUID, the kernels of each instruction set, and the run-time
// choice among them (AVX-512, then AVX2, then the portable reference kernels).
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define DINO_X86 1
#include <cpuid.h>

// CPUID leaf/subleaf into r[0..3] (EAX, EBX, ECX, EDX); 0 past the CPU's last leaf.
static int cpuid(unsigned leaf, unsigned subleaf, unsigned r[4]) {
    r[0] = r[1] = r[2] = r[3] = 0;
    return __get_cpuid_count(leaf, subleaf, &r[0], &r[1], &r[2], &r[3]);
}

static unsigned long long read_xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (unsigned long long)edx << 32 | eax;
}
#else
#define DINO_X86 0
#endif

enum {
    FEATURE_AVX2 = 1,       // AVX2 + FMA, ymm state saved by the OS
    FEATURE_AVX512 = 2,     // AVX-512 F + VL + BW + DQ, zmm and opmask state saved
    FEATURE_AVX512BF16 = 4, // AVX512_BF16 (with AVX-512 F)
    FEATURE_AMX = 8,        // AMX-TILE + AMX-BF16
    FEATURE_KNOWN = 16,
};

// Read from CPUID directly rather than through __builtin_cpu_supports, whose feature bits live in
// whichever runtime library (compiler-rt or libgcc) the binary links. An instruction set counts
// only if the OS saves its registers (XCR0, readable once CPUID.1:ECX.OSXSAVE[27] is set).
static int detect_features(void) {
    int features = FEATURE_KNOWN;
#if DINO_X86
    unsigned r1[4], r7[4], r71[4];
    if (!cpuid(1, 0, r1) || !(r1[2] >> 27 & 1)) return features;
    unsigned long long xcr0 = read_xcr0();
    if (!cpuid(7, 0, r7)) return features;
    int fma = r1[2] >> 12 & 1, avx2 = r7[1] >> 5 & 1;
    // XCR0 bits 1-2: SSE and AVX state; 5-7: opmask, ZMM_Hi256, Hi16_ZMM.
    if (fma && avx2 && (xcr0 & 0x6) == 0x6) features |= FEATURE_AVX2;
    int avx512f = r7[1] >> 16 & 1, dq = r7[1] >> 17 & 1, bw = r7[1] >> 30 & 1, vl = r7[1] >> 31 & 1;
    int zmm_saved = (xcr0 & 0xE6) == 0xE6;
    if ((features & FEATURE_AVX2) && avx512f && dq && bw && vl && zmm_saved)
        features |= FEATURE_AVX512;
    // AVX512_BF16 is CPUID.(7,1):EAX[5], present when (7,0):EAX >= 1.
    if (avx512f && zmm_saved && r7[0] >= 1 && cpuid(7, 1, r71) && (r71[0] >> 5 & 1)) features |= FEATURE_AVX512BF16;
    // AMX-BF16 is CPUID.(7,0):EDX[22], AMX-TILE EDX[24].
    if ((r7[3] >> 22 & 1) && (r7[3] >> 24 & 1)) features |= FEATURE_AMX;
#endif
    return features;
}

// 0 until first asked. Every GEMM call asks, and CPUID traps to the hypervisor in a VM, so the
// answer is read once; races only ever store the same value.
static volatile int known_features = 0;

static int features(void) {
    int f = known_features;
    if (!f) known_features = f = detect_features();
    return f;
}

int dino_kernels_cpu_has_avx2(void) { return (features() & FEATURE_AVX2) != 0; }
int dino_kernels_cpu_has_avx512(void) { return (features() & FEATURE_AVX512) != 0; }
int dino_kernels_cpu_has_avx512bf16(void) { return (features() & FEATURE_AVX512BF16) != 0; }
int dino_kernels_cpu_has_amx(void) { return (features() & FEATURE_AMX) != 0; }

void dino_cpu_identity(char name[49], int *family, int *model) {
    memset(name, 0, 49);
    *family = *model = 0;
#if DINO_X86
    unsigned r[4];
    if (cpuid(1, 0, r)) {
        unsigned base_family = r[0] >> 8 & 0xF, base_model = r[0] >> 4 & 0xF;
        *family = (int)(base_family == 0xF ? base_family + (r[0] >> 20 & 0xFF) : base_family);
        *model = (int)(base_family == 0x6 || base_family == 0xF ? (r[0] >> 16 & 0xF) << 4 | base_model : base_model);
    }
    if (cpuid(0x80000000u, 0, r) && r[0] >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++) {
            cpuid(0x80000002u + i, 0, r);
            memcpy(name + 16 * i, r, 16);
        }
        // Brand strings are padded with spaces on either side.
        size_t start = 0, end = strlen(name);
        while (start < end && name[start] == ' ') start++;
        while (end > start && name[end - 1] == ' ') end--;
        memmove(name, name + start, end - start);
        name[end - start] = 0;
    }
#endif
}

const char *dino_isa_name(dino_isa isa) {
    switch (isa) {
    case DINO_ISA_AVX512: return "avx512";
    case DINO_ISA_AVX2: return "avx2";
    default: return "portable";
    }
}

static const dino_kernel_set portable_set = {
    DINO_ISA_PORTABLE, dino_layernorm_ref, dino_bias_activation_ref, dino_swiglu_ref,
    dino_residual_ref, dino_softmax_ref, dino_online_softmax_block_ref, dino_pack_strided_plain,
    dino_gemm_packed_ref, dino_gemm_packed_bf16_ref, dino_f16_to_f32_ref, dino_bf16_to_f32_ref,
    dino_f32_to_bf16_ref,
};

#if DINO_X86
// AVX2 has no conversion kernels of its own: they run at load time, where the reference is fast
// enough, and the bf16 dot products that convert on every call need AVX-512 anyway.
static const dino_kernel_set avx2_set = {
    DINO_ISA_AVX2, dino_layernorm_avx2, dino_bias_activation_avx2, dino_swiglu_avx2,
    dino_residual_avx2, dino_softmax_avx2, dino_online_softmax_block_avx2, dino_pack_strided_avx2,
    dino_gemm_packed_avx2, dino_gemm_packed_bf16_avx2, dino_f16_to_f32_ref, dino_bf16_to_f32_ref,
    dino_f32_to_bf16_ref,
};

static const dino_kernel_set avx512_set = {
    DINO_ISA_AVX512, dino_layernorm_avx512, dino_bias_activation_avx512, dino_swiglu_avx512,
    dino_residual_avx512, dino_softmax_avx512, dino_online_softmax_block_avx512, dino_pack_strided_avx512,
    dino_gemm_packed_avx512, dino_gemm_packed_bf16_avx512, dino_f16_to_f32_avx512, dino_bf16_to_f32_avx512,
    dino_f32_to_bf16_avx512,
};
#endif

const dino_kernel_set *dino_kernels_for_isa(dino_isa isa) {
    switch (isa) {
    case DINO_ISA_PORTABLE: return &portable_set;
#if DINO_X86
    case DINO_ISA_AVX2: return dino_kernels_cpu_has_avx2() ? &avx2_set : NULL;
    case DINO_ISA_AVX512: return dino_kernels_cpu_has_avx512() ? &avx512_set : NULL;
#endif
    default: return NULL;
    }
}

// `wanted`, or the best instruction set below it that the CPU has.
static dino_isa supported(dino_isa wanted) {
    int isa = (int)wanted;
    while (isa > DINO_ISA_PORTABLE && !dino_kernels_for_isa((dino_isa)isa)) isa--;
    return isa < DINO_ISA_PORTABLE ? DINO_ISA_PORTABLE : (dino_isa)isa;
}

// NULL until first use; then the active set. Races only ever store the same value.
static const dino_kernel_set *volatile active_set = NULL;

static const dino_kernel_set *active(void) {
    const dino_kernel_set *set = active_set;
    if (set) return set;
    const char *env = getenv("DINO_ISA");
    dino_isa wanted = DINO_ISA_AVX512;
    if (env && strcmp(env, "portable") == 0) wanted = DINO_ISA_PORTABLE;
    if (env && strcmp(env, "avx2") == 0) wanted = DINO_ISA_AVX2;
    active_set = set = dino_kernels_for_isa(supported(wanted));
    return set;
}

dino_isa dino_kernels_active_isa(void) { return active()->isa; }

dino_isa dino_kernels_force_isa(dino_isa isa) {
    active_set = dino_kernels_for_isa(supported(isa));
    return active()->isa;
}

void dino_layernorm(const float *x, size_t ldx, float *y, size_t ldy, const float *gamma,
                    const float *beta, size_t R, size_t C, float eps) {
    active()->layernorm(x, ldx, y, ldy, gamma, beta, R, C, eps);
}

void dino_bias_activation(float *x, const float *bias, size_t R, size_t C, dino_activation act) {
    active()->bias_activation(x, bias, R, C, act);
}

void dino_swiglu(const float *x12, const float *bias, float *out, size_t R, size_t H) {
    active()->swiglu(x12, bias, out, R, H);
}

void dino_residual(float *x, const float *y, const float *bias, const float *gamma, size_t R,
                   size_t C) {
    active()->residual(x, y, bias, gamma, R, C);
}

void dino_softmax(float *x, size_t ldx, size_t R, size_t C, float scale) {
    active()->softmax(x, ldx, R, C, scale);
}

void dino_online_softmax_block(float *s, size_t lds, size_t R, size_t Ck, float scale, float *m, float *l, float *o,
                               size_t ldo, size_t D) {
    active()->online_softmax_block(s, lds, R, Ck, scale, m, l, o, ldo, D);
}

void dino_pack_strided(const float *w, size_t N, size_t K, size_t stride_n, size_t stride_k, float *packed) {
    active()->pack_strided(w, N, K, stride_n, stride_k, packed);
}

void dino_gemm_packed_strided(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t panel_stride,
                              size_t N, const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode,
                              const float *gamma, dino_activation act) {
    active()->gemm_packed(x, ldx, M, K, packed, panel_stride, N, bias, out, ldo, mode, gamma, act);
}

void dino_gemm_packed(const float *x, size_t ldx, size_t M, size_t K, const float *packed, size_t N, const float *bias,
                      float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma, dino_activation act) {
    dino_gemm_packed_strided(x, ldx, M, K, packed, 16 * K, N, bias, out, ldo, mode, gamma, act);
}

void dino_gemm_packed_bf16(const float *x, size_t ldx, size_t M, size_t K, const uint16_t *packed, size_t N,
                           const float *bias, float *out, size_t ldo, dino_gemm_epilogue mode, const float *gamma,
                           dino_activation act) {
    active()->gemm_packed_bf16(x, ldx, M, K, packed, 16 * K, N, bias, out, ldo, mode, gamma, act);
}

void dino_f16_to_f32(const uint16_t *src, float *dst, size_t N) { active()->f16_to_f32(src, dst, N); }
void dino_bf16_to_f32(const uint16_t *src, float *dst, size_t N) { active()->bf16_to_f32(src, dst, N); }
void dino_f32_to_bf16(const float *src, uint16_t *dst, size_t N) { active()->f32_to_bf16(src, dst, N); }
