// The OpenCV side of dino_opencv.h. Only opencv_core, opencv_imgproc and opencv_imgcodecs are
// used (linking all OpenCV libraries costs about 0.4 s of start-up).
#include "dino_opencv.h"

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <jpeglib.h>
#include <png.h>

#include <dlfcn.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

namespace {

// What libpng, libjpeg and OpenCV said during the current bridge call on this thread: kept for
// the error message instead of going to stderr.
struct CallState {
    bool active = false;
    std::string messages;
    std::string opencv_stream;
};
thread_local CallState call_state;

void note_codec_message(const char *library, const char *text) {
    if (!call_state.active || call_state.messages.size() > 1000) return;
    if (!call_state.messages.empty()) call_state.messages += "; ";
    call_state.messages += std::string(library) + ": " + text;
}

// OpenCV's imdecode writes "imdecode_(''): can't read header: ..." to std::cerr itself. This
// buffer, installed under std::cerr once, keeps what a thread writes during a bridge call and
// passes everything else on to the original buffer unchanged.
class CallErrorStream : public std::streambuf {
  public:
    explicit CallErrorStream(std::streambuf *original) : original(original) {}

  protected:
    int overflow(int c) override {
        if (c == traits_type::eof()) return traits_type::not_eof(c);
        if (!call_state.active) return original->sputc(static_cast<char>(c));
        if (call_state.opencv_stream.size() < 1000) call_state.opencv_stream += static_cast<char>(c);
        return c;
    }
    std::streamsize xsputn(const char *text, std::streamsize count) override {
        if (!call_state.active) return original->sputn(text, count);
        if (call_state.opencv_stream.size() < 1000) call_state.opencv_stream.append(text, static_cast<size_t>(count));
        return count;
    }
    int sync() override { return call_state.active ? 0 : original->pubsync(); }

  private:
    std::streambuf *original;
};

void png_warning_to_message(png_structp, png_const_charp text) { note_codec_message("libpng", text); }

// libpng's own default prints the text and then long-jumps; only the printing changes here.
void png_error_to_message(png_structp png, png_const_charp text) {
    note_codec_message("libpng", text);
    png_longjmp(png, 1);
}

void jpeg_message_to_message(j_common_ptr cinfo) {
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    note_codec_message("libjpeg", text);
}

// OpenCV logs decoder warnings to stderr (a broken TIFF's "TIFFReadRGBAStrip"); its errors
// reach the caller as exceptions, so its log is switched off, process-wide; std::cerr gets the
// buffer above. Both once.
void quiet_opencv() {
    static std::once_flag once;
    std::call_once(once, [] {
        cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
        static CallErrorStream stream(std::cerr.rdbuf());
        std::cerr.rdbuf(&stream);
    });
}

// The extent of one bridge call on this thread: what the codecs say is collected meanwhile.
struct CallScope {
    CallScope() {
        quiet_opencv();
        call_state.active = true;
        call_state.messages.clear();
        call_state.opencv_stream.clear();
    }
    ~CallScope() { call_state.active = false; }
};

// `text`, followed by what the codec libraries and OpenCV said, if anything.
std::string with_codec_messages(const std::string &text) {
    std::string said = call_state.messages;
    std::string stream = call_state.opencv_stream;
    while (!stream.empty() && std::isspace(static_cast<unsigned char>(stream.back()))) stream.pop_back();
    for (char &c : stream) if (c == '\n') c = ' ';
    if (!stream.empty()) said += (said.empty() ? "OpenCV: " : "; OpenCV: ") + stream;
    return said.empty() ? text : text + " (" + said + ")";
}

void write_message(char *message, size_t size, const std::string &text) {
    if (message == nullptr || size == 0) return;
    std::strncpy(message, text.c_str(), size - 1);
    message[size - 1] = '\0';
}

// OpenCV refuses images over its own size limits (CV_IO_MAX_IMAGE_PIXELS, _WIDTH, _HEIGHT) with
// a failed assertion in validateInputImageSize.
bool is_size_limit(const cv::Exception &e) {
    return e.code == cv::Error::StsAssert && e.func.find("validateInputImageSize") != std::string::npos;
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
        if (is_size_limit(e)) {
            write_message(message, message_size, "the image exceeds the decoder's limit of " + std::to_string(DINO_CV_MAX_PIXELS) +
                                                     " pixels (" + std::to_string(DINO_CV_MAX_SIDE) + " a side)");
            return DINO_CV_TOO_LARGE;
        }
        write_message(message, message_size, with_codec_messages(e.err.empty() ? e.what() : e.err));
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

// OpenCV's PNG decoder creates its libpng reader without error or warning functions, so libpng
// prints "libpng warning: ..." / "libpng error: ..." to stderr; and its JPEG decoder keeps
// libjpeg's default output_message, which prints "Corrupt JPEG data: ...". Neither lets a caller
// choose. These two definitions, which the dynamic linker finds before libpng's and libjpeg's
// (the package links both libraries directly, so the linker exports them), give those readers
// functions that keep the text for the bridge's error message. Readers created with their own
// functions keep them.
extern "C" png_structp png_create_read_struct(png_const_charp version, png_voidp error_pointer, png_error_ptr error_function,
                                              png_error_ptr warning_function) {
    return png_create_read_struct_2(version, error_pointer, error_function ? error_function : png_error_to_message,
                                    warning_function ? warning_function : png_warning_to_message, nullptr, nullptr, nullptr);
}

extern "C" struct jpeg_error_mgr *jpeg_std_error(struct jpeg_error_mgr *manager) {
    using StandardError = struct jpeg_error_mgr *(*)(struct jpeg_error_mgr *);
    static const auto library = reinterpret_cast<StandardError>(dlsym(RTLD_NEXT, "jpeg_std_error"));
    if (library == nullptr) std::abort();  // libjpeg is linked: its definition always follows this one
    struct jpeg_error_mgr *result = library(manager);
    result->output_message = jpeg_message_to_message;
    return result;
}

extern "C" dino_cv_status dino_cv_decode(const uint8_t *data, size_t size, int64_t max_pixels, dino_cv_image *out,
                                         char *message, size_t message_size) {
    out->width = 0;
    out->height = 0;
    out->pixels = nullptr;
    CallScope scope;
    return guarded(DINO_CV_CORRUPT, DINO_CV_INTERNAL, message, message_size, [&]() -> dino_cv_status {
        if (size == 0) {
            write_message(message, message_size, "the file is empty");
            return DINO_CV_UNRECOGNISED;
        }
        const cv::Mat encoded(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t *>(data));
        // IMREAD_COLOR: 8-bit BGR, EXIF orientation applied, alpha dropped, 16-bit reduced.
        cv::Mat bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
        if (bgr.empty()) {
            write_message(message, message_size, with_codec_messages("no decoder could read the data (not an image, or corrupt)"));
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
    CallScope scope;
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
    CallScope scope;
    return guarded(DINO_CV_CORRUPT, DINO_CV_CORRUPT, message, message_size, [&]() -> dino_cv_status {
        const cv::Mat encoded(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t *>(data));
        cv::Mat image = cv::imdecode(encoded, cv::IMREAD_UNCHANGED);
        if (image.empty()) {
            write_message(message, message_size, with_codec_messages("no decoder could read the data (not an image, or corrupt)"));
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
    CallScope scope;
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
