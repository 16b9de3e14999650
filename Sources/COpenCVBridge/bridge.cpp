#include "dino_opencv.h"
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
extern "C" int dino_cv_version_major(void) { return CV_VERSION_MAJOR; }
