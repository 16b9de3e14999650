/*
 * SHA-256 (FIPS 180-4), streaming and one-shot, for verifying downloaded files.
 *
 * Streaming use:
 *
 *     dino_sha256_context ctx;
 *     dino_sha256_init(&ctx);
 *     dino_sha256_update(&ctx, chunk, chunk_size);   // any number of times, any sizes
 *     uint8_t digest[DINO_SHA256_DIGEST_SIZE];
 *     dino_sha256_final(&ctx, digest);
 *
 * The context holds no pointers and no heap memory: it may be copied, and a zeroed context
 * is valid input to dino_sha256_init. It is not safe to share one context between threads.
 */
#ifndef DINO_SHA256_H
#define DINO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes in a SHA-256 digest. */
#define DINO_SHA256_DIGEST_SIZE 32
/** Bytes in one SHA-256 message block. */
#define DINO_SHA256_BLOCK_SIZE 64

/** The running state of one SHA-256 computation. */
typedef struct dino_sha256_context {
    /** Working hash H0..H7. */
    uint32_t state[8];
    /** Message bytes consumed so far (the standard limits messages to 2^64 - 1 bits). */
    uint64_t length;
    /** Bytes of a partial block waiting for more input. */
    uint8_t buffer[DINO_SHA256_BLOCK_SIZE];
    /** Number of valid bytes in buffer, always < DINO_SHA256_BLOCK_SIZE between calls. */
    uint32_t buffered;
} dino_sha256_context;

/** Starts a new computation (sets the FIPS 180-4 initial hash value). */
void dino_sha256_init(dino_sha256_context *ctx);

/** Feeds size bytes; data may be NULL when size is 0. */
void dino_sha256_update(dino_sha256_context *ctx, const void *data, size_t size);

/** Pads, writes the 32-byte digest, and leaves ctx needing dino_sha256_init before reuse. */
void dino_sha256_final(dino_sha256_context *ctx, uint8_t digest[DINO_SHA256_DIGEST_SIZE]);

/** Digest of one whole buffer: init, update and final in one call. */
void dino_sha256(const void *data, size_t size, uint8_t digest[DINO_SHA256_DIGEST_SIZE]);

#ifdef __cplusplus
}
#endif

#endif
