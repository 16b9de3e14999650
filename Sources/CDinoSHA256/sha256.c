/*
 * SHA-256 from FIPS 180-4 (sections 4.1.2, 4.2.2, 5.1.1, 5.3.3 and 6.2), written for clarity
 * and portability: no intrinsics, no alignment or endianness assumptions (bytes are
 * assembled big-endian by hand), so the same code is correct on every target.
 */
#include "dino_sha256.h"

#include <string.h>

/* Section 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first
 * 64 primes. */
static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

/* Section 4.1.2 functions. The rotate is written so that compilers emit a single rotate
 * instruction; n is always in 1..31 here, so neither shift is undefined. */
#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))

static uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Section 6.2.2: one 64-byte block into the working hash. */
static void compress(uint32_t state[8], const uint8_t block[DINO_SHA256_BLOCK_SIZE]) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 64; t++) w[t] = SSIG1(w[t - 2]) + w[t - 7] + SSIG0(w[t - 15]) + w[t - 16];

    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + BSIG1(e) + CH(e, f, g) + K[t] + w[t];
        uint32_t t2 = BSIG0(a) + MAJ(a, b, c);
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

void dino_sha256_init(dino_sha256_context *ctx) {
    /* Section 5.3.3: the first 32 bits of the fractional parts of the square roots of the
     * first 8 primes. */
    static const uint32_t initial[8] = {
        0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au, 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
    };
    memcpy(ctx->state, initial, sizeof initial);
    ctx->length = 0;
    ctx->buffered = 0;
    memset(ctx->buffer, 0, sizeof ctx->buffer);
}

void dino_sha256_update(dino_sha256_context *ctx, const void *data, size_t size) {
    const uint8_t *bytes = (const uint8_t *)data;
    ctx->length += (uint64_t)size;

    /* Top up a partial block first, so whole blocks below can be hashed in place. */
    if (ctx->buffered > 0) {
        size_t take = DINO_SHA256_BLOCK_SIZE - ctx->buffered;
        if (take > size) take = size;
        memcpy(ctx->buffer + ctx->buffered, bytes, take);
        ctx->buffered += (uint32_t)take;
        bytes += take;
        size -= take;
        if (ctx->buffered < DINO_SHA256_BLOCK_SIZE) return;
        compress(ctx->state, ctx->buffer);
        ctx->buffered = 0;
    }
    while (size >= DINO_SHA256_BLOCK_SIZE) {
        compress(ctx->state, bytes);
        bytes += DINO_SHA256_BLOCK_SIZE;
        size -= DINO_SHA256_BLOCK_SIZE;
    }
    if (size > 0) {
        memcpy(ctx->buffer, bytes, size);
        ctx->buffered = (uint32_t)size;
    }
}

void dino_sha256_final(dino_sha256_context *ctx, uint8_t digest[DINO_SHA256_DIGEST_SIZE]) {
    /* Section 5.1.1: append 0x80, zeros up to 56 mod 64, then the bit length big-endian. */
    uint64_t bit_length = ctx->length * 8u;
    uint32_t used = ctx->buffered;
    ctx->buffer[used++] = 0x80u;
    if (used > DINO_SHA256_BLOCK_SIZE - 8) {
        memset(ctx->buffer + used, 0, DINO_SHA256_BLOCK_SIZE - used);
        compress(ctx->state, ctx->buffer);
        used = 0;
    }
    memset(ctx->buffer + used, 0, DINO_SHA256_BLOCK_SIZE - 8 - used);
    store_be32(ctx->buffer + 56, (uint32_t)(bit_length >> 32));
    store_be32(ctx->buffer + 60, (uint32_t)bit_length);
    compress(ctx->state, ctx->buffer);

    for (int i = 0; i < 8; i++) store_be32(digest + 4 * i, ctx->state[i]);
    /* Nothing of the message should linger in memory once the digest is out. */
    memset(ctx, 0, sizeof *ctx);
}

void dino_sha256(const void *data, size_t size, uint8_t digest[DINO_SHA256_DIGEST_SIZE]) {
    dino_sha256_context ctx;
    dino_sha256_init(&ctx);
    dino_sha256_update(&ctx, data, size);
    dino_sha256_final(&ctx, digest);
}
