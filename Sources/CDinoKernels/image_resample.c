// Antialiased bicubic resampling of 8-bit images, computed as Pillow computes
// Image.resize(..., BICUBIC): two separable passes in the order Pillow chooses (below) with the
// Keys cubic (a = -0.5) stretched by the scale when shrinking, weights normalised and rounded to
// 22-bit fixed point, an 8-bit intermediate image, and round-half-up with clamping. HF's image
// processors for DINOv2 resize with Pillow, so matching it gives their `pixel_values` exactly.
#include "dino_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

// For each output position: the first input index, the tap count, and `ksize` fixed-point
// weights. Returns the tap stride ksize, or 0 on allocation failure.
static int compute_coefficients(int in_size, int out_size, int **bounds_out, int32_t **kk_out) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *weights = malloc(sizeof(double) * ksize);
    int *bounds = malloc(sizeof(int) * 2 * out_size);
    int32_t *kk = malloc(sizeof(int32_t) * (size_t)out_size * ksize);
    if (!weights || !bounds || !kk) {
        free(weights);
        free(bounds);
        free(kk);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double total = 0.0;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = bicubic_filter((x + xmin - center + 0.5) * ss);
            weights[x] = w;
            total += w;
        }
        for (x = 0; x < ksize; x++) {
            double w = (x < xmax && total != 0.0) ? weights[x] / total : 0.0;
            // Round half away from zero, as Pillow's normalize_coeffs_8bpc.
            kk[(size_t)xx * ksize + x] = (int32_t)(w < 0 ? w * (1 << PRECISION_BITS) - 0.5 : w * (1 << PRECISION_BITS) + 0.5);
        }
        bounds[xx * 2] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    free(weights);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static inline uint8_t clip8(int64_t v) {
    v >>= PRECISION_BITS;
    return v < 0 ? 0 : (v > 255 ? 255 : (uint8_t)v);
}

// src: [sh, sw, 3] -> dst: [sh, dw, 3]
static int resample_horizontal(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw) {
    int *bounds;
    int32_t *kk;
    int ksize = compute_coefficients(sw, dw, &bounds, &kk);
    if (!ksize) return -1;
    for (int y = 0; y < sh; y++) {
        const uint8_t *row = src + (size_t)y * sw * 3;
        uint8_t *out = dst + (size_t)y * dw * 3;
        for (int xx = 0; xx < dw; xx++) {
            int xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
            const int32_t *k = kk + (size_t)xx * ksize;
            int64_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < xmax; x++) {
                const uint8_t *p = row + (size_t)(x + xmin) * 3;
                s0 += (int64_t)p[0] * k[x];
                s1 += (int64_t)p[1] * k[x];
                s2 += (int64_t)p[2] * k[x];
            }
            out[xx * 3] = clip8(s0);
            out[xx * 3 + 1] = clip8(s1);
            out[xx * 3 + 2] = clip8(s2);
        }
    }
    free(bounds);
    free(kk);
    return 0;
}

// src: [sh, w, 3] -> dst: [dh, w, 3]
static int resample_vertical(const uint8_t *src, int w, int sh, uint8_t *dst, int dh) {
    int *bounds;
    int32_t *kk;
    int ksize = compute_coefficients(sh, dh, &bounds, &kk);
    if (!ksize) return -1;
    for (int yy = 0; yy < dh; yy++) {
        int ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
        const int32_t *k = kk + (size_t)yy * ksize;
        uint8_t *out = dst + (size_t)yy * w * 3;
        for (int xc = 0; xc < w * 3; xc++) {
            int64_t s = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < ymax; y++) s += (int64_t)src[(size_t)(y + ymin) * w * 3 + xc] * k[y];
            out[xc] = clip8(s);
        }
    }
    free(bounds);
    free(kk);
    return 0;
}

int dino_resize_rgb8_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh) {
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0) return -1;
    int need_h = sw != dw, need_v = sh != dh;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)sw * sh * 3);
        return 0;
    }
    if (need_h && !need_v) return resample_horizontal(src, sw, sh, dst, dw);
    if (!need_h) return resample_vertical(src, sw, sh, dst, dh);
    // The intermediate image is rounded to 8 bits, so the order changes the result. Pillow 13
    // runs the vertical pass first when the height shrinks by more than twice as many pixels as
    // the width does.
    // ref: Pillow src/libImaging/Resample.c ImagingResampleInner (horizontal_first), python-pillow/Pillow#9549
    int vertical_first = sh - dh > 0 && sh - dh > 2 * (sw - dw);
    uint8_t *tmp = malloc(vertical_first ? (size_t)sw * dh * 3 : (size_t)dw * sh * 3);
    if (!tmp) return -1;
    int status;
    if (vertical_first) {
        status = resample_vertical(src, sw, sh, tmp, dh);
        if (status == 0) status = resample_horizontal(tmp, sw, dh, dst, dw);
    } else {
        status = resample_horizontal(src, sw, sh, tmp, dw);
        if (status == 0) status = resample_vertical(tmp, dw, sh, dst, dh);
    }
    free(tmp);
    return status;
}
