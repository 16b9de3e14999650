// The OpenCV side of dino_opencv.h. Only opencv_core, opencv_imgproc and opencv_imgcodecs are
// used (linking all OpenCV libraries costs about 0.4 s of start-up).
#include "dino_opencv.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void write_message(char *message, size_t size, const std::string &text) {
    if (message == nullptr || size == 0) return;
    std::strncpy(message, text.c_str(), size - 1);
    message[size - 1] = '\0';
}

// Copies a BGR 8-bit Mat into a malloc'd RGB buffer.
uint8_t *to_rgb_buffer(const cv::Mat &bgr) {
    const size_t bytes = static_cast<size_t>(bgr.rows) * static_cast<size_t>(bgr.cols) * 3;
    auto *pixels = static_cast<uint8_t *>(std::malloc(bytes == 0 ? 1 : bytes));
    if (pixels == nullptr) return nullptr;
    cv::Mat rgb(bgr.rows, bgr.cols, CV_8UC3, pixels);
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    return pixels;
}

// Hands encoded bytes to the caller as a malloc'd buffer.
dino_cv_status give_bytes(const std::vector<uint8_t> &bytes, uint8_t **out, size_t *out_size, char *message,
                          size_t message_size) {
    auto *buffer = static_cast<uint8_t *>(std::malloc(bytes.empty() ? 1 : bytes.size()));
    if (buffer == nullptr) {
        write_message(message, message_size, "out of memory");
        return DINO_CV_INTERNAL;
    }
    std::memcpy(buffer, bytes.data(), bytes.size());
    *out = buffer;
    *out_size = bytes.size();
    return DINO_CV_OK;
}

// Runs a bridge call's body: an OpenCV exception becomes `opencv_failure`, any other exception
// `other_failure`, with its text in `message`; no exception reaches the C caller.
template <typename Body>
dino_cv_status guarded(dino_cv_status opencv_failure, dino_cv_status other_failure, char *message, size_t message_size,
                       Body body) noexcept {
    try {
        return body();
    } catch (const cv::Exception &e) {
        write_message(message, message_size, e.what());
        return opencv_failure;
    } catch (const std::exception &e) {
        write_message(message, message_size, e.what());
        return other_failure;
    } catch (...) {
        write_message(message, message_size, "unknown error");
        return DINO_CV_INTERNAL;
    }
}

} // namespace

extern "C" dino_cv_status dino_cv_decode(const uint8_t *data, size_t size, int64_t max_pixels, dino_cv_image *out,
                                         char *message, size_t message_size) {
    out->width = 0;
    out->height = 0;
    out->pixels = nullptr;
    return guarded(DINO_CV_CORRUPT, DINO_CV_INTERNAL, message, message_size, [&]() -> dino_cv_status {
        if (size == 0) {
            write_message(message, message_size, "the file is empty");
            return DINO_CV_UNRECOGNISED;
        }
        const cv::Mat encoded(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t *>(data));
        // IMREAD_COLOR: 8-bit BGR, EXIF orientation applied, alpha dropped, 16-bit reduced.
        cv::Mat bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
        if (bgr.empty()) {
            write_message(message, message_size, "no decoder could read the data (not an image, or corrupt)");
            return DINO_CV_CORRUPT;
        }
        if (max_pixels > 0 && static_cast<int64_t>(bgr.rows) * bgr.cols > max_pixels) {
            write_message(message, message_size, "image of " + std::to_string(bgr.cols) + "x" + std::to_string(bgr.rows) +
                                                     " pixels exceeds the limit of " + std::to_string(max_pixels));
            return DINO_CV_TOO_LARGE;
        }
        uint8_t *pixels = to_rgb_buffer(bgr);
        if (pixels == nullptr) {
            write_message(message, message_size, "out of memory");
            return DINO_CV_INTERNAL;
        }
        out->width = bgr.cols;
        out->height = bgr.rows;
        out->pixels = pixels;
        return DINO_CV_OK;
    });
}

extern "C" dino_cv_status dino_cv_encode(const uint8_t *rgb, int32_t width, int32_t height, const char *extension,
                                         int32_t quality, uint8_t **out, size_t *out_size, char *message,
                                         size_t message_size) {
    *out = nullptr;
    *out_size = 0;
    return guarded(DINO_CV_ENCODE_FAILED, DINO_CV_ENCODE_FAILED, message, message_size, [&]() -> dino_cv_status {
        const cv::Mat source(height, width, CV_8UC3, const_cast<uint8_t *>(rgb));
        cv::Mat bgr;
        cv::cvtColor(source, bgr, cv::COLOR_RGB2BGR);
        std::vector<int> parameters;
        const std::string ext(extension);
        if (ext == ".jpg" || ext == ".jpeg") parameters = {cv::IMWRITE_JPEG_QUALITY, quality};
        if (ext == ".png") parameters = {cv::IMWRITE_PNG_COMPRESSION, 3};
        std::vector<uint8_t> bytes;
        if (!cv::imencode(ext, bgr, bytes, parameters)) {
            write_message(message, message_size, "OpenCV could not encode " + ext);
            return DINO_CV_ENCODE_FAILED;
        }
        return give_bytes(bytes, out, out_size, message, message_size);
    });
}

extern "C" dino_cv_status dino_cv_decode_grey(const uint8_t *data, size_t size, int64_t max_pixels, int32_t *width,
                                             int32_t *height, int32_t *bit_depth, uint16_t **samples, char *message,
                                             size_t message_size) {
    *samples = nullptr;
    return guarded(DINO_CV_CORRUPT, DINO_CV_CORRUPT, message, message_size, [&]() -> dino_cv_status {
        const cv::Mat encoded(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t *>(data));
        cv::Mat image = cv::imdecode(encoded, cv::IMREAD_UNCHANGED);
        if (image.empty()) {
            write_message(message, message_size, "no decoder could read the data (not an image, or corrupt)");
            return DINO_CV_CORRUPT;
        }
        if (image.channels() != 1 || (image.depth() != CV_8U && image.depth() != CV_16U)) {
            write_message(message, message_size, "expected a single-channel 8- or 16-bit image, got " +
                                                     std::to_string(image.channels()) + " channels of depth code " +
                                                     std::to_string(image.depth()));
            return DINO_CV_CORRUPT;
        }
        if (max_pixels > 0 && static_cast<int64_t>(image.rows) * image.cols > max_pixels) {
            write_message(message, message_size, "image exceeds the pixel limit");
            return DINO_CV_TOO_LARGE;
        }
        cv::Mat wide;
        image.convertTo(wide, CV_16U);
        const size_t count = static_cast<size_t>(wide.rows) * static_cast<size_t>(wide.cols);
        auto *buffer = static_cast<uint16_t *>(std::malloc(count == 0 ? 2 : count * 2));
        if (buffer == nullptr) {
            write_message(message, message_size, "out of memory");
            return DINO_CV_INTERNAL;
        }
        for (int y = 0; y < wide.rows; y++) std::memcpy(buffer + static_cast<size_t>(y) * wide.cols, wide.ptr<uint16_t>(y), wide.cols * 2);
        *width = wide.cols;
        *height = wide.rows;
        *bit_depth = image.depth() == CV_16U ? 16 : 8;
        *samples = buffer;
        return DINO_CV_OK;
    });
}

extern "C" dino_cv_status dino_cv_encode_grey16_png(const uint16_t *samples, int32_t width, int32_t height, uint8_t **out,
                                                    size_t *out_size, char *message, size_t message_size) {
    *out = nullptr;
    *out_size = 0;
    return guarded(DINO_CV_ENCODE_FAILED, DINO_CV_ENCODE_FAILED, message, message_size, [&]() -> dino_cv_status {
        const cv::Mat image(height, width, CV_16UC1, const_cast<uint16_t *>(samples));
        std::vector<uint8_t> bytes;
        if (!cv::imencode(".png", image, bytes, {cv::IMWRITE_PNG_COMPRESSION, 3})) {
            write_message(message, message_size, "OpenCV could not encode the PNG");
            return DINO_CV_ENCODE_FAILED;
        }
        return give_bytes(bytes, out, out_size, message, message_size);
    });
}

extern "C" dino_cv_status dino_cv_put_text(uint8_t *rgb, int32_t width, int32_t height, const char *text, int32_t x,
                                           int32_t y, double scale, uint8_t r, uint8_t g, uint8_t b) {
    try {
        cv::Mat image(height, width, CV_8UC3, rgb);
        const int thickness = std::max(1, static_cast<int>(scale * 1.5 + 0.5));
        cv::putText(image, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, scale * 0.6, cv::Scalar(0, 0, 0),
                    thickness + 2, cv::LINE_AA);
        cv::putText(image, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, scale * 0.6, cv::Scalar(r, g, b), thickness,
                    cv::LINE_AA);
        return DINO_CV_OK;
    } catch (...) {
        return DINO_CV_INTERNAL;
    }
}

extern "C" void dino_cv_free(void *pointer) { std::free(pointer); }

extern "C" const char *dino_cv_version(void) { return CV_VERSION; }
