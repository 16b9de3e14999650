#ifndef DINO_COPENBLAS_SHIM_H
#define DINO_COPENBLAS_SHIM_H
// Debian's libopenblas-dev keeps cblas.h in the openblas-pthread include folder,
// which pkg-config "openblas" puts on the search path. cblas.h also declares
// openblas_set_num_threads / openblas_get_num_threads.
#include <cblas.h>
#include <stddef.h>

// LAPACK symmetric eigensolvers, which OpenBLAS ships (Fortran ABI: every argument by pointer,
// and gfortran's hidden lengths of the character arguments at the end).
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w, float *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
void ssygvd_(const int *itype, const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *b,
             const int *ldb, float *w, float *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);
#endif
