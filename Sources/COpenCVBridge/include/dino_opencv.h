// A small C API over OpenCV's image codecs and text drawing. Every entry point catches C++
// exceptions and reports them as an error code and message, so no exception crosses into Swift;
// OpenCV's log and the codec libraries' stderr output are kept out of the process's stderr
// (what libpng and libjpeg say ends up in the message instead).
// No OpenCV type appears here: images are 8-bit RGB, row-major, 3 bytes per pixel.
#ifndef DINO_OPENCV_H
#define DINO_OPENCV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Outcome of a bridge call.
typedef enum {
    DINO_CV_OK = 0,
    /// The bytes are not an image any codec recognises.
    DINO_CV_UNRECOGNISED = 1,
    /// A codec recognised the format but could not decode the data (corrupt or truncated).
    DINO_CV_CORRUPT = 2,
    /// The image is larger than the given pixel limit.
    DINO_CV_TOO_LARGE = 3,
    /// Encoding failed (unsupported extension or codec error).
    DINO_CV_ENCODE_FAILED = 4,
    /// Any other OpenCV exception; see the message.
    DINO_CV_INTERNAL = 5,
} dino_cv_status;

/// The largest image OpenCV's decoders accept by default, in pixels and per side (imgcodecs'
/// validateInputImageSize; the environment variable OPENCV_IO_MAX_IMAGE_PIXELS can lower the
/// first, which the decode functions then also report as DINO_CV_TOO_LARGE).
#define DINO_CV_MAX_PIXELS ((int64_t)1 << 30)
#define DINO_CV_MAX_SIDE ((int64_t)1 << 20)

/// A decoded image; `pixels` is malloc'd RGB8 `[height, width, 3]`, freed with `dino_cv_free`.
typedef struct {
    int32_t width;
    int32_t height;
    uint8_t *pixels;
} dino_cv_image;

/// Decodes `size` encoded bytes (JPEG, PNG, WebP, BMP, TIFF, ...) to 8-bit RGB. Applies the EXIF
/// orientation; grey, palette and alpha images become RGB (alpha dropped); 16-bit samples keep
/// their high byte. Images of more than `max_pixels` pixels (0: OpenCV's own limit) are refused
/// before their pixels are decoded. `message` receives a description on failure.
dino_cv_status dino_cv_decode(const uint8_t *data, size_t size, int64_t max_pixels, dino_cv_image *out,
                              char *message, size_t message_size);

/// Encodes RGB8 `[height, width, 3]` as `extension` (".png", ".jpg", ".jpeg"); `quality` is the
/// JPEG quality (1-100). The malloc'd bytes go to `*out` / `*out_size`, freed with `dino_cv_free`.
dino_cv_status dino_cv_encode(const uint8_t *rgb, int32_t width, int32_t height, const char *extension,
                              int32_t quality, uint8_t **out, size_t *out_size, char *message,
                              size_t message_size);

/// Decodes a single-channel image keeping its sample depth (8- or 16-bit grey PNG, TIFF...):
/// `*samples` is malloc'd `[height, width]` 16-bit values (8-bit images are widened), freed with
/// `dino_cv_free`; `*bit_depth` is 8 or 16. Colour images are refused (DINO_CV_CORRUPT).
dino_cv_status dino_cv_decode_grey(const uint8_t *data, size_t size, int64_t max_pixels, int32_t *width, int32_t *height,
                                   int32_t *bit_depth, uint16_t **samples, char *message, size_t message_size);

/// Encodes 16-bit grey samples `[height, width]` as a PNG; bytes as for `dino_cv_encode`.
dino_cv_status dino_cv_encode_grey16_png(const uint16_t *samples, int32_t width, int32_t height, uint8_t **out,
                                         size_t *out_size, char *message, size_t message_size);

/// Draws `text` in place on RGB8 `[height, width, 3]` at baseline (x, y) with a dark outline,
/// so it reads on any background. `scale` 1.0 is about 22 px high.
dino_cv_status dino_cv_put_text(uint8_t *rgb, int32_t width, int32_t height, const char *text, int32_t x,
                                int32_t y, double scale, uint8_t r, uint8_t g, uint8_t b);

/// Frees memory returned by the bridge.
void dino_cv_free(void *pointer);

/// The OpenCV version the bridge was built against, e.g. "4.6.0".
const char *dino_cv_version(void);

#ifdef __cplusplus
}
#endif

#endif
