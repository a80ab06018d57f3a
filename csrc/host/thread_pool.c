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

struct trt_pool {
    int32_t threads;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t start;
    pthread_cond_t done;
    /* the current job, published under the mutex with a new generation */
    const trt_step *step;
    uint8_t *arena;
    int32_t parts;
    int32_t status;
    uint64_t generation; /* bumped for each job; workers wait for a new one */
    int32_t pending;     /* workers still running the current job */
    int32_t stop;
};

typedef struct {
    trt_pool *pool;
    int32_t index; /* 1 .. threads - 1; the caller is share 0 */
} worker_arg;

static void *worker_main(void *opaque) {
    worker_arg *arg = (worker_arg *)opaque;
    trt_pool *pool = arg->pool;
    const int32_t index = arg->index;
    uint64_t seen = 0;
    free(arg);
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (!pool->stop && pool->generation == seen) {
            pthread_cond_wait(&pool->start, &pool->mutex);
        }
        if (pool->stop) {
            break;
        }
        seen = pool->generation;
        const trt_step *step = pool->step;
        uint8_t *arena = pool->arena;
        const int32_t parts = pool->parts;
        pthread_mutex_unlock(&pool->mutex);
        int32_t status = TRT_OK;
        if (index < parts) {
            status = trt_run_step_part(step, arena, index, parts);
        }
        pthread_mutex_lock(&pool->mutex);
        if (status != TRT_OK) {
            pool->status = status;
        }
        if (--pool->pending == 0) {
            pthread_cond_signal(&pool->done);
        }
    }
    pthread_mutex_unlock(&pool->mutex);
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
    pool->stop = 1;
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
            pthread_mutex_lock(&pool->mutex);
            pool->step = step;
            pool->arena = arena;
            pool->parts = parts;
            pool->status = TRT_OK;
            pool->pending = pool->threads - 1;
            pool->generation++;
            pthread_cond_broadcast(&pool->start);
            pthread_mutex_unlock(&pool->mutex);
            status = trt_run_step_part(step, arena, 0, parts);
            pthread_mutex_lock(&pool->mutex);
            while (pool->pending > 0) {
                pthread_cond_wait(&pool->done, &pool->mutex);
            }
            if (status == TRT_OK) {
                status = pool->status;
            }
            pthread_mutex_unlock(&pool->mutex);
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
