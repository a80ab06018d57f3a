/*
 * A small POSIX-threads pool that runs a plan on several cores (host builds
 * only: Raspberry Pi 3/4/5, desktops; never firmware).
 *
 * Steps run in order.  A step whose `parts` is above 1 is cut into that many
 * shares of its output (trt_run_step_part); the calling thread takes share 0
 * and the workers the rest, and all meet at a barrier before the next step.
 * Small steps run on the calling thread alone: the planner only marks steps
 * large enough to pay for the wake-up (runtime/threads.py measures that).
 *
 * The pool allocates its threads once; running a plan allocates nothing.
 */
#include <pthread.h>
#include <stdlib.h>

#include "../trt_fixedpoint.h"

/* Waits spin this many rounds (a pause each, ~10-50 ns) before sleeping on
 * a condition variable: a futex wake-up costs tens of microseconds in a VM,
 * more than a whole small step, while the next split step usually comes
 * within microseconds.  Bounded, so idle workers go to sleep. */
enum { TRT_POOL_SPINS = 4000 };

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)
    __asm__ __volatile__("yield");
#endif
}

struct trt_pool {
    int32_t threads;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t start;
    pthread_cond_t done;
    /* the current job: written by the caller while no worker runs one, then
     * published by a release store of a new generation */
    const trt_step *step;
    uint8_t *arena;
    int32_t parts;
    int32_t status;      /* atomic: a failing share stores its status */
    uint64_t generation; /* atomic; changed under the mutex (sleepers) */
    int32_t pending;     /* atomic: workers still running the current job */
    int32_t stop;        /* atomic; set under the mutex */
};

typedef struct {
    trt_pool *pool;
    int32_t index; /* 1 .. threads - 1; the caller is share 0 */
} worker_arg;

/* The next generation after `seen` (spinning, then sleeping), or `seen`
 * itself when the pool stops. */
static uint64_t wait_for_job(trt_pool *pool, uint64_t seen) {
    for (int32_t spins = 0; spins < TRT_POOL_SPINS; ++spins) {
        const uint64_t g = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE);
        if (g != seen || __atomic_load_n(&pool->stop, __ATOMIC_ACQUIRE)) {
            return g;
        }
        cpu_relax();
    }
    pthread_mutex_lock(&pool->mutex);
    uint64_t g;
    while ((g = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE)) == seen &&
           !__atomic_load_n(&pool->stop, __ATOMIC_ACQUIRE)) {
        pthread_cond_wait(&pool->start, &pool->mutex);
    }
    pthread_mutex_unlock(&pool->mutex);
    return g;
}

static void *worker_main(void *opaque) {
    worker_arg *arg = (worker_arg *)opaque;
    trt_pool *pool = arg->pool;
    const int32_t index = arg->index;
    uint64_t seen = 0;
    free(arg);
    for (;;) {
        const uint64_t g = wait_for_job(pool, seen);
        if (__atomic_load_n(&pool->stop, __ATOMIC_ACQUIRE)) {
            break;
        }
        seen = g;
        const int32_t parts = pool->parts;
        if (index < parts) {
            const int32_t status = trt_run_step_part(pool->step, pool->arena, index, parts);
            if (status != TRT_OK) {
                __atomic_store_n(&pool->status, status, __ATOMIC_RELAXED);
            }
        }
        if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_ACQ_REL) == 0) {
            /* the caller may sleep on `done` (cheap when it does not) */
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
    return 0;
}

trt_pool *trt_pool_create(int32_t threads) {
    if (threads < 1) {
        return 0;
    }
    trt_pool *pool = (trt_pool *)calloc(1, sizeof *pool);
    if (!pool) {
        return 0;
    }
    pool->threads = threads;
    pthread_mutex_init(&pool->mutex, 0);
    pthread_cond_init(&pool->start, 0);
    pthread_cond_init(&pool->done, 0);
    if (threads > 1) {
        pool->workers = (pthread_t *)calloc((size_t)threads - 1, sizeof(pthread_t));
        if (!pool->workers) {
            trt_pool_destroy(pool);
            return 0;
        }
    }
    for (int32_t i = 1; i < threads; ++i) {
        worker_arg *arg = (worker_arg *)malloc(sizeof *arg);
        if (arg) {
            arg->pool = pool;
            arg->index = i;
        }
        if (!arg || pthread_create(&pool->workers[i - 1], 0, worker_main, arg) != 0) {
            free(arg);
            pool->threads = i; /* only these started: destroy joins them */
            trt_pool_destroy(pool);
            return 0;
        }
    }
    return pool;
}

void trt_pool_destroy(trt_pool *pool) {
    if (!pool) {
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    __atomic_store_n(&pool->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->mutex);
    for (int32_t i = 1; i < pool->threads; ++i) {
        pthread_join(pool->workers[i - 1], 0);
    }
    pthread_cond_destroy(&pool->start);
    pthread_cond_destroy(&pool->done);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}

int32_t trt_pool_run_plan(trt_pool *pool, const trt_plan *plan,
                          uint8_t *arena, int32_t *failed_step) {
    for (int32_t i = 0; i < plan->num_steps; ++i) {
        const trt_step *step = &plan->steps[i];
        const int32_t parts = TRT_MIN(step->parts, pool->threads);
        int32_t status;
        if (parts <= 1) {
            status = trt_run_step_part(step, arena, 0, 1);
        } else {
            pool->step = step;
            pool->arena = arena;
            pool->parts = parts;
            __atomic_store_n(&pool->status, TRT_OK, __ATOMIC_RELAXED);
            __atomic_store_n(&pool->pending, pool->threads - 1, __ATOMIC_RELAXED);
            /* under the mutex, so a worker going to sleep cannot miss it */
            pthread_mutex_lock(&pool->mutex);
            __atomic_add_fetch(&pool->generation, 1, __ATOMIC_RELEASE);
            pthread_cond_broadcast(&pool->start);
            pthread_mutex_unlock(&pool->mutex);
            status = trt_run_step_part(step, arena, 0, parts);
            int32_t spins = 0;
            while (__atomic_load_n(&pool->pending, __ATOMIC_ACQUIRE) > 0) {
                if (++spins < TRT_POOL_SPINS) {
                    cpu_relax();
                    continue;
                }
                pthread_mutex_lock(&pool->mutex);
                while (__atomic_load_n(&pool->pending, __ATOMIC_ACQUIRE) > 0) {
                    pthread_cond_wait(&pool->done, &pool->mutex);
                }
                pthread_mutex_unlock(&pool->mutex);
            }
            if (status == TRT_OK) {
                status = __atomic_load_n(&pool->status, __ATOMIC_RELAXED);
            }
        }
        if (status != TRT_OK) {
            if (failed_step) {
                *failed_step = i;
            }
            return status;
        }
    }
    return TRT_OK;
}
