// A process-wide pool of compute threads that spin briefly between parallel regions.
//
// The parallel regions of a forward pass (a GEMM, the attention heads, a LayerNorm) last from
// tens of microseconds to a few milliseconds and follow each other closely. Waking a sleeping
// thread for each of them (what a general-purpose queue does) costs tens of microseconds, and
// the caller's own part finishes first and waits. These workers spin on the next job for a
// couple of milliseconds before they sleep, so back-to-back regions start on every core at once.
#ifndef DINO_THREAD_POOL_H
#define DINO_THREAD_POOL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What dino_pool_run did.
#define DINO_POOL_RAN 1
#define DINO_POOL_BUSY 0
#define DINO_POOL_NESTED (-1)

/// One part of a parallel job: `part` is in 0..<parts.
typedef void (*dino_parallel_body)(void *context, size_t part);

/// Runs `body(context, part)` for every part in 0..<parts, on the calling thread and up to
/// parts - 1 pool workers (at most one per other core, started on first use), and returns when
/// all parts are done. Parts are claimed dynamically: whoever is free takes the next one, so
/// the caller takes over parts that no worker has started.
///
/// Returns DINO_POOL_RAN when the job ran; DINO_POOL_BUSY when it did not run because the pool
/// is serving another thread's job (or parts > 65535): run it some other way; DINO_POOL_NESTED
/// when called from inside a part (a nested region): run it on this thread.
int dino_pool_run(size_t parts, dino_parallel_body body, void *context);

#ifdef __cplusplus
}
#endif

#endif
