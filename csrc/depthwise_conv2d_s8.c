/*
 * DEPTHWISE_CONV_2D, int8, per-channel weights, any depth multiplier.
 *
 * TFLite's reference DepthwiseConvPerChannel: acc = sum over in-image taps of
 * w * (x - zp_in) + bias, per-channel rescale, output zero point, clamp.
 *
 * For each output pixel, a row of int32 accumulators (in the scratch
 * buffer) starts at the planner's folded bias and takes one vector
 * multiply-accumulate per tap over all channels.  Taps outside the image
 * read a row of input zero points, which contributes w * (zp - zp) = 0, so
 * the folded zero-point term is right for every pixel and the inner loop is
 * a plain int8 multiply-accumulate.
 */
#include <string.h>

#include "trt_ukernels.h"

/* Scratch layout: [int32 accumulators, C_out] [zero-point row, C_in bytes] */
size_t trt_depthwise_conv2d_s8_scratch_size(
    const trt_depthwise_conv2d_params *p) {
    return (size_t)p->output.c * sizeof(int32_t) + (size_t)p->input.c;
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

static void accumulate_multiplier(int32_t *acc, const int8_t *x,
                                  const int8_t *w, int32_t in_c,
                                  int32_t mult) {
    for (int32_t ic = 0; ic < in_c; ++ic) {
        const int32_t xv = x[ic];
        for (int32_t m = 0; m < mult; ++m) {
            acc[ic * mult + m] += xv * (int32_t)w[ic * mult + m];
        }
    }
}

void trt_depthwise_conv2d_s8(const trt_depthwise_conv2d_params *p,
                             const int8_t *input, int8_t *output,
                             void *scratch) {
    const trt_ukernels *uk = trt_ukernels_active();
    const int32_t in_plane = p->input.h * p->input.w * p->input.c;
    const int32_t out_h = p->output.h, out_w = p->output.w;
    const int32_t out_c = p->output.c, in_c = p->input.c;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    int32_t *acc = (int32_t *)scratch;
    int8_t *zp_row = (int8_t *)scratch + (size_t)out_c * sizeof(int32_t);
    memset(zp_row, (int8_t)(-p->input_offset), (size_t)in_c);

    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *input_n = input + (int64_t)n * in_plane;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                memcpy(acc, p->bias_folded, (size_t)out_c * sizeof(int32_t));
                for (int32_t ky = 0; ky < kh; ++ky) {
                    const int32_t iy = iy0 + ky * p->dilation_h;
                    for (int32_t kx = 0; kx < kw; ++kx) {
                        const int8_t *x = tap_pixel(p, input_n, zp_row, iy,
                                                    ix0 + kx * p->dilation_w);
                        const int8_t *w = p->weights + (ky * kw + kx) * out_c;
                        if (p->depth_multiplier == 1) {
                            uk->mac_rows(acc, x, w, out_c);
                        } else {
                            accumulate_multiplier(acc, x, w, in_c,
                                                  p->depth_multiplier);
                        }
                    }
                }
                int8_t *out_px =
                    output + (((int64_t)n * out_h + oy) * out_w + ox) * out_c;
                uk->requantize(acc, 0, p->multiplier, p->shift, out_c,
                               p->output_offset, p->act_min, p->act_max,
                               out_px);
            }
        }
    }
}
