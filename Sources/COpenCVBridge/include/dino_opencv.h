// Minimal C API over OpenCV's image codecs; placeholder.
#ifndef DINO_OPENCV_H
#define DINO_OPENCV_H
#ifdef __cplusplus
extern "C" {
#endif
int dino_cv_version_major(void);
#ifdef __cplusplus
}
#endif
#endif
