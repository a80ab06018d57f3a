/*
 * DEPTHWISE_CONV_2D, int8, per-channel weights, any depth multiplier.
 *
 * TFLite's reference DepthwiseConvPerChannel: acc = sum over in-image taps of
 * w * (x - zp_in) + bias, per-channel rescale, output zero point, clamp.
 *
 * Depth multiplier 1 (the common case): for each output pixel, channels are
 * processed in blocks of 16 whose accumulators stay in registers across all
 * taps.  Taps outside the image read a row of input zero points (the first
 * bytes of the scratch buffer), which contributes w * (zp - zp) = 0, so the
 * zero-point term is the planner's folded bias for every pixel and the
 * inner loop is a plain int8 multiply-accumulate.  Other multipliers take a
 * straightforward path.
 */
#include <string.h>

#include "trt_fixedpoint.h"

enum { BLOCK = 16 };

/* Scratch layout: [int32 accumulators, C_out, only when M > 1]
 *                 [zero-point row, C_in bytes]                          */
static size_t acc_bytes(const trt_depthwise_conv2d_params *p) {
    return p->depth_multiplier == 1 ? 0 : (size_t)p->output.c * sizeof(int32_t);
}

size_t trt_depthwise_conv2d_s8_scratch_size(
    const trt_depthwise_conv2d_params *p) {
    return acc_bytes(p) + (size_t)p->input.c;
}

static int8_t finish(const trt_depthwise_conv2d_params *p, int32_t c,
                     int32_t acc) {
    int32_t a = trt_requantize(acc, p->multiplier[c], p->shift[c]);
    a += p->output_offset;
    return (int8_t)trt_clamp(a, p->act_min, p->act_max);
}

/* Input pixel (iy, ix) of one image, or the zero-point row when outside. */
static const int8_t *tap_pixel(const trt_depthwise_conv2d_params *p,
                               const int8_t *input_n, const int8_t *zp_row,
                               int32_t iy, int32_t ix) {
    if (iy < 0 || iy >= p->input.h || ix < 0 || ix >= p->input.w) {
        return zp_row;
    }
    return input_n + ((int64_t)iy * p->input.w + ix) * p->input.c;
}

static void pixel_m1(const trt_depthwise_conv2d_params *p,
                     const int8_t *input_n, const int8_t *zp_row, int32_t iy0,
                     int32_t ix0, int8_t *out_px) {
    const int32_t channels = p->output.c;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    int32_t c = 0;
    for (; c + BLOCK <= channels; c += BLOCK) {
        int32_t acc[BLOCK];
        for (int32_t j = 0; j < BLOCK; ++j) {
            acc[j] = p->bias_folded[c + j];
        }
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = iy0 + ky * p->dilation_h;
            for (int32_t kx = 0; kx < kw; ++kx) {
                const int8_t *x =
                    tap_pixel(p, input_n, zp_row, iy, ix0 + kx * p->dilation_w) + c;
                const int8_t *w = p->weights + (ky * kw + kx) * channels + c;
                for (int32_t j = 0; j < BLOCK; ++j) {
                    acc[j] += (int32_t)x[j] * (int32_t)w[j];
                }
            }
        }
        for (int32_t j = 0; j < BLOCK; ++j) {
            out_px[c + j] = finish(p, c + j, acc[j]);
        }
    }
    for (; c < channels; ++c) {
        int32_t acc = p->bias_folded[c];
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = iy0 + ky * p->dilation_h;
            for (int32_t kx = 0; kx < kw; ++kx) {
                const int8_t *x =
                    tap_pixel(p, input_n, zp_row, iy, ix0 + kx * p->dilation_w);
                acc += (int32_t)x[c] * (int32_t)p->weights[(ky * kw + kx) * channels + c];
            }
        }
        out_px[c] = finish(p, c, acc);
    }
}

static void pixel_multiplier(const trt_depthwise_conv2d_params *p,
                             const int8_t *input_n, const int8_t *zp_row,
                             int32_t iy0, int32_t ix0, int32_t *acc,
                             int8_t *out_px) {
    const int32_t channels = p->output.c, in_c = p->input.c;
    const int32_t mult = p->depth_multiplier;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    for (int32_t c = 0; c < channels; ++c) {
        acc[c] = p->bias_folded[c];
    }
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int8_t *x =
                tap_pixel(p, input_n, zp_row, iy, ix0 + kx * p->dilation_w);
            const int8_t *w = p->weights + (ky * kw + kx) * channels;
            for (int32_t ic = 0; ic < in_c; ++ic) {
                for (int32_t m = 0; m < mult; ++m) {
                    acc[ic * mult + m] += (int32_t)x[ic] * (int32_t)w[ic * mult + m];
                }
            }
        }
    }
    for (int32_t c = 0; c < channels; ++c) {
        out_px[c] = finish(p, c, acc[c]);
    }
}

void trt_depthwise_conv2d_s8(const trt_depthwise_conv2d_params *p,
                             const int8_t *input, int8_t *output,
                             void *scratch) {
    const int32_t in_plane = p->input.h * p->input.w * p->input.c;
    const int32_t out_h = p->output.h, out_w = p->output.w;
    const int32_t out_c = p->output.c;
    int32_t *acc = (int32_t *)scratch;
    int8_t *zp_row = (int8_t *)scratch + acc_bytes(p);
    memset(zp_row, (int8_t)(-p->input_offset), (size_t)p->input.c);
    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *input_n = input + (int64_t)n * in_plane;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int8_t *out_px =
                    output + (((int64_t)n * out_h + oy) * out_w + ox) * out_c;
                if (p->depth_multiplier == 1) {
                    pixel_m1(p, input_n, zp_row, iy0, ix0, out_px);
                } else {
                    pixel_multiplier(p, input_n, zp_row, iy0, ix0, acc, out_px);
                }
            }
        }
    }
}
