// AVX2 + FMA versions of the kernels in kernels_ref.c (8 floats per vector; the loops are
// kernels_simd.inc's). Compiled for every x86-64 target through function attributes (SwiftPM
// builds C for baseline x86-64) and only called after the dispatcher has checked the CPU.
#include "internal.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "avx2_math.h"

#define KNAME(name) dino_##name##_avx2
#define VMASKLOAD(p, m) _mm256_maskload_ps(p, m)
#define VMASKSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VKEEP(m, v) _mm256_and_ps(v, _mm256_castsi256_ps(m))
#define VSELECT(m, v, w) _mm256_blendv_ps(w, v, _mm256_castsi256_ps(m))
#define VHSUM(v) hsum(v)
#define VHMAX(v) hmax(v)
#define VFMSUB(a, b, c) _mm256_fmsub_ps(a, b, c)
#include "kernels_simd.inc"

#endif
