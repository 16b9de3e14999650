#ifndef DINO_CZLIB_SHIM_H
#define DINO_CZLIB_SHIM_H
// Debian's zlib1g-dev: raw DEFLATE (inflate) and CRC-32 for the zip members of `.pth` files.
#include <zlib.h>
#endif
