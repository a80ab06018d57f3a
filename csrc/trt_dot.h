/*
 * trt_dot.h - int8 dot products shared by the convolution and fully
 * connected kernels (private).
 *
 * Written so that a C99 compiler vectorises them (one contiguous inner loop,
 * independent accumulators); the SIMD paths of later layers replace these,
 * and must agree with them bit for bit.
 */
#ifndef TRT_DOT_H
#define TRT_DOT_H

#include "trt_fixedpoint.h"

TRT_INLINE int32_t trt_dot_s8(const int8_t *TRT_RESTRICT x,
                              const int8_t *TRT_RESTRICT w, int32_t len) {
    int32_t acc = 0;
    for (int32_t i = 0; i < len; ++i) {
        acc += (int32_t)x[i] * (int32_t)w[i];
    }
    return acc;
}

/* Four rows of weights against the same input: the input is loaded once
 * per four multiply-accumulates. */
TRT_INLINE void trt_dot4_s8(const int8_t *TRT_RESTRICT x,
                            const int8_t *TRT_RESTRICT w0,
                            const int8_t *TRT_RESTRICT w1,
                            const int8_t *TRT_RESTRICT w2,
                            const int8_t *TRT_RESTRICT w3, int32_t len,
                            int32_t acc[4]) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int32_t i = 0; i < len; ++i) {
        const int32_t xv = x[i];
        a0 += xv * w0[i];
        a1 += xv * w1[i];
        a2 += xv * w2[i];
        a3 += xv * w3[i];
    }
    acc[0] += a0;
    acc[1] += a1;
    acc[2] += a2;
    acc[3] += a3;
}

#endif /* TRT_DOT_H */
