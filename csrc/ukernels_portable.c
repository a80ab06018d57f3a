/*
 * Portable C99 micro-kernels: the reference every ISA table is tested
 * against, and the path microcontrollers run.  Loops are written over one
 * contiguous dimension with independent accumulators so that a compiler can
 * vectorise them where it is able to.
 */
#include "trt_ukernels.h"

static void dot_1x4(const int8_t *x, const int8_t *w, int32_t w_stride,
                    int32_t k, int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int32_t i = 0; i < k; ++i) {
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

static void dot_2x4(const int8_t *x0, const int8_t *x1, const int8_t *w,
                    int32_t w_stride, int32_t k, int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (int32_t i = 0; i < k; ++i) {
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

static void mac_rows(int32_t *acc, const int8_t *x, const int8_t *w,
                     int32_t n) {
    for (int32_t c = 0; c < n; ++c) {
        acc[c] += (int32_t)x[c] * (int32_t)w[c];
    }
}

static void requantize(const int32_t *acc, const int32_t *bias,
                       const int32_t *mult, const int32_t *shift, int32_t n,
                       int32_t out_offset, int32_t act_min, int32_t act_max,
                       int8_t *out) {
    for (int32_t c = 0; c < n; ++c) {
        const int32_t a = acc[c] + (bias ? bias[c] : 0);
        out[c] = trt_requantize_one(a, mult[c], shift[c], out_offset, act_min,
                                    act_max);
    }
}

static void dw_pixel(const int8_t *const *x, int32_t taps, const int8_t *w,
                     int32_t w_stride, int32_t n, const int32_t *bias,
                     const int32_t *mult, const int32_t *shift,
                     int32_t out_offset, int32_t act_min, int32_t act_max,
                     int8_t *out) {
    for (int32_t c = 0; c < n; ++c) {
        int32_t acc = bias[c];
        for (int32_t t = 0; t < taps; ++t) {
            acc += (int32_t)x[t][c] * (int32_t)w[t * w_stride + c];
        }
        out[c] = trt_requantize_one(acc, mult[c], shift[c], out_offset, act_min,
                                    act_max);
    }
}

static void dw_run(const int8_t *x, int32_t count, int32_t x_step,
                   const int32_t *tap_off, int32_t taps, const int8_t *w,
                   int32_t w_stride, int32_t n, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift,
                   int32_t out_offset, int32_t act_min, int32_t act_max,
                   int8_t *out, int32_t out_step) {
    const int8_t *px[TRT_DW_RUN_TAPS];
    for (int32_t j = 0; j < count; ++j) {
        for (int32_t t = 0; t < taps; ++t) {
            px[t] = x + (int64_t)j * x_step + tap_off[t];
        }
        dw_pixel(px, taps, w, w_stride, n, bias, mult, shift, out_offset,
                 act_min, act_max, out + (int64_t)j * out_step);
    }
}

static int8_t gemm_finish(int32_t acc, int32_t oc, const int32_t *mult,
                          const int32_t *shift, const double *scale,
                          int32_t out_offset, int32_t act_min, int32_t act_max) {
    if (scale) {
        return trt_finish_f64(acc, scale[oc], out_offset, act_min, act_max);
    }
    return trt_requantize_one(acc, mult[oc], shift[oc], out_offset, act_min,
                              act_max);
}

static void gemm(const int8_t *const *x, int32_t m, int32_t k,
                 const int8_t *w, const int16_t *w_packed, int32_t n,
                 const int32_t *bias, const int32_t *mult, const int32_t *shift,
                 const double *scale, int32_t out_offset, int32_t act_min,
                 int32_t act_max, int8_t *const *out) {
    (void)w_packed; /* a layout for SIMD tables */
    int32_t r = 0;
    for (; r + 2 <= m; r += 2) {
        int32_t oc = 0;
        for (; oc + 4 <= n; oc += 4) {
            int32_t acc[8];
            dot_2x4(x[r], x[r + 1], w + (int64_t)oc * k, k, k, acc);
            for (int32_t j = 0; j < 4; ++j) {
                out[r][oc + j] = gemm_finish(acc[j] + bias[oc + j], oc + j, mult, shift,
                                             scale, out_offset, act_min, act_max);
                out[r + 1][oc + j] = gemm_finish(acc[4 + j] + bias[oc + j], oc + j, mult,
                                                 shift, scale, out_offset, act_min, act_max);
            }
        }
        for (; oc < n; ++oc) {
            int32_t a = 0, b = 0;
            for (int32_t i = 0; i < k; ++i) {
                a += (int32_t)x[r][i] * (int32_t)w[(int64_t)oc * k + i];
                b += (int32_t)x[r + 1][i] * (int32_t)w[(int64_t)oc * k + i];
            }
            out[r][oc] = gemm_finish(a + bias[oc], oc, mult, shift, scale, out_offset,
                                     act_min, act_max);
            out[r + 1][oc] = gemm_finish(b + bias[oc], oc, mult, shift, scale,
                                         out_offset, act_min, act_max);
        }
    }
    for (; r < m; ++r) {
        int32_t oc = 0;
        for (; oc + 4 <= n; oc += 4) {
            int32_t acc[4];
            dot_1x4(x[r], w + (int64_t)oc * k, k, k, acc);
            for (int32_t j = 0; j < 4; ++j) {
                out[r][oc + j] = gemm_finish(acc[j] + bias[oc + j], oc + j, mult, shift,
                                             scale, out_offset, act_min, act_max);
            }
        }
        for (; oc < n; ++oc) {
            int32_t a = 0;
            for (int32_t i = 0; i < k; ++i) {
                a += (int32_t)x[r][i] * (int32_t)w[(int64_t)oc * k + i];
            }
            out[r][oc] = gemm_finish(a + bias[oc], oc, mult, shift, scale, out_offset,
                                     act_min, act_max);
        }
    }
}

static void add(const trt_binary_params *p, const int8_t *x, const int8_t *y,
                int32_t n, int8_t *out) {
    for (int32_t i = 0; i < n; ++i) {
        out[i] = trt_add_one(p, x[i], y[i]);
    }
}

const trt_ukernels trt_ukernels_portable = {
    TRT_ISA_PORTABLE, 0, dot_1x4, dot_2x4, mac_rows, requantize, dw_pixel, gemm, add,
    dw_run,
    0, /* gemm_seg: gathered patches */
    0, 0, 0, 0, 0, /* rows_u8, gemm_k4, dw_k4, dw_k4_in_place, widen3_u8: x86 VNNI only */
};
