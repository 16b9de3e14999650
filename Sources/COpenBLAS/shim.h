#ifndef DINO_COPENBLAS_SHIM_H
#define DINO_COPENBLAS_SHIM_H
// Debian's libopenblas-dev keeps cblas.h in the openblas-pthread include folder,
// which pkg-config "openblas" puts on the search path. cblas.h also declares
// openblas_set_num_threads / openblas_get_num_threads.
#include <cblas.h>
#endif
