// The compute threads' pool (see dino_thread_pool.h).
//
// One job at a time. Its parts are handed out through one 64-bit ticket, generation << 32 |
// parts << 16 | next part, so that a thread can only claim a part of the job it saw published:
// a compare-and-swap on a ticket of an older generation fails. After a successful claim the
// job's function and context are stable, because the caller does not return (and publish the
// next job) before every claimed part has finished.
#include "dino_thread_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

#define MAX_WORKERS 255
// How long an idle worker spins for the next job before it sleeps. The parallel regions of a
// forward pass follow each other within microseconds; a worker woken from sleep starts tens of
// microseconds late, which is a tenth of a small GEMM.
#define SPIN_NANOSECONDS 2000000

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static atomic_flag pool_busy = ATOMIC_FLAG_INIT;
static size_t worker_count; // touched only by the caller holding pool_busy
static _Atomic uint64_t ticket;
static _Atomic int sleepers;
static _Atomic size_t finished;
static dino_parallel_body job_body;
static void *job_context;
static _Thread_local int inside_region;

static inline uint32_t ticket_generation(uint64_t t) { return (uint32_t)(t >> 32); }
static inline size_t ticket_parts(uint64_t t) { return (size_t)((t >> 16) & 0xFFFF); }
static inline size_t ticket_next(uint64_t t) { return (size_t)(t & 0xFFFF); }

static uint64_t now_nanoseconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// Claims and runs parts of generation `generation` until none is left.
static void run_parts(uint32_t generation) {
    uint64_t t = atomic_load_explicit(&ticket, memory_order_acquire);
    while (ticket_generation(t) == generation && ticket_next(t) < ticket_parts(t)) {
        if (!atomic_compare_exchange_weak_explicit(&ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        job_body(job_context, ticket_next(t));
        atomic_fetch_add_explicit(&finished, 1, memory_order_release);
        t = atomic_load_explicit(&ticket, memory_order_acquire);
    }
}

static void *worker_main(void *argument) {
    uint32_t seen = (uint32_t)(uintptr_t)argument;
    inside_region = 1;
    for (;;) {
        uint64_t t = atomic_load_explicit(&ticket, memory_order_acquire);
        if (ticket_generation(t) == seen) {
            uint64_t start = now_nanoseconds();
            for (unsigned spins = 1;; spins++) {
                cpu_relax();
                t = atomic_load_explicit(&ticket, memory_order_acquire);
                if (ticket_generation(t) != seen) break;
                if (spins % 256 == 0 && now_nanoseconds() - start > SPIN_NANOSECONDS) break;
            }
        }
        if (ticket_generation(t) == seen) {
            // Sleep. sleepers and ticket are sequentially consistent on both sides: either the
            // publisher sees this sleeper and broadcasts under the lock, or this thread sees the
            // new ticket before waiting.
            pthread_mutex_lock(&pool_lock);
            atomic_fetch_add(&sleepers, 1);
            while (ticket_generation(t = atomic_load(&ticket)) == seen) pthread_cond_wait(&pool_wake, &pool_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&pool_lock);
        }
        seen = ticket_generation(t);
        run_parts(seen);
    }
    return NULL;
}

// Starts workers until there are `wanted` (at most MAX_WORKERS; fewer if the system refuses).
// Only the caller holding pool_busy gets here, so worker_count needs no lock of its own, and the
// parallel regions after the first pay one comparison.
static void ensure_workers(size_t wanted, uint32_t generation) {
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    while (worker_count < wanted) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, (void *)(uintptr_t)generation);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        worker_count++;
    }
}

int dino_pool_run(size_t parts, dino_parallel_body body, void *context) {
    if (parts == 0) return DINO_POOL_RAN;
    if (parts > 0xFFFF) return DINO_POOL_BUSY;
    if (inside_region) return DINO_POOL_NESTED;
    if (atomic_flag_test_and_set_explicit(&pool_busy, memory_order_acquire)) return DINO_POOL_BUSY;
    uint32_t previous = ticket_generation(atomic_load_explicit(&ticket, memory_order_relaxed));
    // At most one worker per other core: spinning threads beyond the cores would take turns
    // on them. Parts beyond the workers are claimed by whoever finishes first (the caller too,
    // which also covers a worker that could not be started). sysconf reads /sys on every call,
    // so it is asked once.
    static _Atomic long online_cores;
    long cores = atomic_load_explicit(&online_cores, memory_order_relaxed);
    if (cores == 0) {
        cores = sysconf(_SC_NPROCESSORS_ONLN);
        atomic_store_explicit(&online_cores, cores, memory_order_relaxed);
    }
    size_t helpers = parts - 1;
    if (cores >= 1 && helpers > (size_t)cores - 1) helpers = (size_t)cores - 1;
    if (helpers > 0) ensure_workers(helpers, previous);
    uint32_t generation = previous + 1;
    job_body = body;
    job_context = context;
    atomic_store_explicit(&finished, 0, memory_order_relaxed);
    atomic_store(&ticket, (uint64_t)generation << 32 | (uint64_t)parts << 16);
    if (parts > 1 && atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&pool_lock);
        pthread_cond_broadcast(&pool_wake);
        pthread_mutex_unlock(&pool_lock);
    }
    inside_region = 1;
    run_parts(generation);
    inside_region = 0;
    // Parts still running on workers finish within one part's time, unless a worker lost its
    // core: then let it have this one.
    for (unsigned spins = 1; atomic_load_explicit(&finished, memory_order_acquire) < parts; spins++) {
        cpu_relax();
        if (spins % 4096 == 0) sched_yield();
    }
    atomic_flag_clear_explicit(&pool_busy, memory_order_release);
    return DINO_POOL_RAN;
}
