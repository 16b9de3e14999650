// im2col of a square-kernel convolution, one image and a band of output rows at a time, so a
// convolution runs as one GEMM per band: out[O, rows * W'] = weight[O, I * K * K] · columns.
//
// Dimension letters: I input channels, H x W the image, K kernel side, W' output width.
#include "dino_kernels.h"

#include <stddef.h>
#include <string.h>

void dino_im2col_ref(const float *image, size_t I, size_t H, size_t W, size_t K, size_t stride, size_t pad,
                     size_t first_row, size_t rows, size_t out_width, float *columns) {
    size_t count = rows * out_width;
    for (size_t i = 0; i < I; i++) {
        for (size_t ky = 0; ky < K; ky++) {
            for (size_t kx = 0; kx < K; kx++) {
                float *row = columns + ((i * K + ky) * K + kx) * count;
                for (size_t r = 0; r < rows; r++) {
                    ptrdiff_t iy = (ptrdiff_t)((first_row + r) * stride + ky) - (ptrdiff_t)pad;
                    for (size_t ox = 0; ox < out_width; ox++) {
                        ptrdiff_t ix = (ptrdiff_t)(ox * stride + kx) - (ptrdiff_t)pad;
                        int inside = iy >= 0 && iy < (ptrdiff_t)H && ix >= 0 && ix < (ptrdiff_t)W;
                        row[r * out_width + ox] = inside ? image[(i * H + (size_t)iy) * W + (size_t)ix] : 0.0f;
                    }
                }
            }
        }
    }
}

// The same copy with the bounds worked out once per kernel tap: the output columns whose source
// lies inside the image form one range [lo, hi), copied with memcpy at stride 1, and the padding on
// either side is zeroed in one go.
void dino_im2col(const float *image, size_t I, size_t H, size_t W, size_t K, size_t stride, size_t pad,
                 size_t first_row, size_t rows, size_t out_width, float *columns) {
    size_t count = rows * out_width;
    for (size_t kx = 0; kx < K; kx++) {
        // ix = ox * stride + shift must satisfy 0 <= ix < W.
        ptrdiff_t shift = (ptrdiff_t)kx - (ptrdiff_t)pad;
        size_t lo = shift >= 0 ? 0 : ((size_t)(-shift) + stride - 1) / stride;
        size_t hi = (ptrdiff_t)W > shift ? ((size_t)((ptrdiff_t)W - shift) + stride - 1) / stride : 0;
        if (hi > out_width) hi = out_width;
        if (lo > hi) lo = hi;
        for (size_t i = 0; i < I; i++) {
            const float *plane = image + i * H * W;
            for (size_t ky = 0; ky < K; ky++) {
                float *row = columns + ((i * K + ky) * K + kx) * count;
                for (size_t r = 0; r < rows; r++) {
                    float *dst = row + r * out_width;
                    ptrdiff_t iy = (ptrdiff_t)((first_row + r) * stride + ky) - (ptrdiff_t)pad;
                    if (iy < 0 || iy >= (ptrdiff_t)H || lo == hi) {
                        memset(dst, 0, out_width * sizeof(float));
                        continue;
                    }
                    const float *src = plane + (size_t)iy * W;
                    memset(dst, 0, lo * sizeof(float));
                    if (stride == 1) {
                        memcpy(dst + lo, src + (ptrdiff_t)lo + shift, (hi - lo) * sizeof(float));
                    } else {
                        for (size_t ox = lo; ox < hi; ox++) dst[ox] = src[(ptrdiff_t)(ox * stride) + shift];
                    }
                    memset(dst + hi, 0, (out_width - hi) * sizeof(float));
                }
            }
        }
    }
}
