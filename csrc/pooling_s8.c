/*
 * AVERAGE_POOL_2D and MAX_POOL_2D, int8, NHWC.
 *
 * TFLite's reference: only in-image taps count; the average divides the
 * int32 sum by the number of counted taps rounding half away from zero;
 * the activation range clamps the result.  Channels are the inner loop.
 */
#include "trt_fixedpoint.h"

enum { TRT_POOL_CHUNK = 64 }; /* int32 sums kept on the stack per chunk */

static void window(const trt_pool_params *p, int32_t oy, int32_t ox,
                   int32_t *y0, int32_t *y1, int32_t *x0, int32_t *x1) {
    const int32_t iy = oy * p->stride_h - p->pad_top;
    const int32_t ix = ox * p->stride_w - p->pad_left;
    *y0 = TRT_MAX(0, iy);
    *y1 = TRT_MIN(p->input.h, iy + p->filter_h);
    *x0 = TRT_MAX(0, ix);
    *x1 = TRT_MIN(p->input.w, ix + p->filter_w);
}

void trt_avg_pool_s8(const trt_pool_params *p, const int8_t *input,
                     int8_t *output) {
    const int32_t ch = p->input.c;
    int32_t acc[TRT_POOL_CHUNK];
    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *in_n = input + (int64_t)n * p->input.h * p->input.w * ch;
        for (int32_t oy = 0; oy < p->output.h; ++oy) {
            for (int32_t ox = 0; ox < p->output.w; ++ox) {
                int32_t y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                const int32_t count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
                int8_t *out_px = output + (((int64_t)n * p->output.h + oy) *
                                               p->output.w + ox) * ch;
                for (int32_t c0 = 0; c0 < ch; c0 += TRT_POOL_CHUNK) {
                    const int32_t width = TRT_MIN(TRT_POOL_CHUNK, ch - c0);
                    for (int32_t c = 0; c < width; ++c) {
                        acc[c] = 0;
                    }
                    for (int32_t y = y0; y < y1; ++y) {
                        for (int32_t x = x0; x < x1; ++x) {
                            const int8_t *px =
                                in_n + ((int64_t)y * p->input.w + x) * ch + c0;
                            for (int32_t c = 0; c < width; ++c) {
                                acc[c] += px[c];
                            }
                        }
                    }
                    for (int32_t c = 0; c < width; ++c) {
                        int32_t a = acc[c];
                        /* An empty window cannot occur for shapes the planner
                         * accepts; guard the division anyway. */
                        if (count > 0) {
                            a = a > 0 ? (a + count / 2) / count
                                      : (a - count / 2) / count;
                        }
                        out_px[c0 + c] = (int8_t)trt_clamp(a, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

void trt_max_pool_s8(const trt_pool_params *p, const int8_t *input,
                     int8_t *output) {
    const int32_t ch = p->input.c;
    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *in_n = input + (int64_t)n * p->input.h * p->input.w * ch;
        for (int32_t oy = 0; oy < p->output.h; ++oy) {
            for (int32_t ox = 0; ox < p->output.w; ++ox) {
                int32_t y0, y1, x0, x1;
                window(p, oy, ox, &y0, &y1, &x0, &x1);
                int8_t *out_px = output + (((int64_t)n * p->output.h + oy) *
                                               p->output.w + ox) * ch;
                for (int32_t c = 0; c < ch; ++c) {
                    out_px[c] = INT8_MIN;
                }
                for (int32_t y = y0; y < y1; ++y) {
                    for (int32_t x = x0; x < x1; ++x) {
                        const int8_t *px =
                            in_n + ((int64_t)y * p->input.w + x) * ch;
                        for (int32_t c = 0; c < ch; ++c) {
                            out_px[c] = px[c] > out_px[c] ? px[c] : out_px[c];
                        }
                    }
                }
                for (int32_t c = 0; c < ch; ++c) {
                    out_px[c] = (int8_t)trt_clamp(out_px[c], p->act_min,
                                                  p->act_max);
                }
            }
        }
    }
}
