#ifndef DINO_SHA256_H
#define DINO_SHA256_H
#endif
