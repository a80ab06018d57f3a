/*
 * DEPTHWISE_CONV_2D, int8, per-channel weights, any depth multiplier.
 *
 * TFLite's reference DepthwiseConvPerChannel: acc = sum over in-image taps of
 * w * (x - zp_in) + bias, per-channel rescale.  One output pixel at a time,
 * all channels at once: the channel loop is contiguous in input, weights and
 * the int32 accumulator row (the scratch buffer), so it vectorises.
 */
#include "trt_fixedpoint.h"

size_t trt_depthwise_conv2d_s8_scratch_size(
    const trt_depthwise_conv2d_params *p) {
    return (size_t)p->output.c * sizeof(int32_t);
}

static void valid_range(int32_t origin, int32_t dilation, int32_t taps,
                        int32_t size, int32_t *lo, int32_t *hi) {
    int32_t k_lo = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    int32_t k_hi = taps;
    const int32_t room = size - origin;
    const int32_t limit = room <= 0 ? 0 : (room + dilation - 1) / dilation;
    if (limit < k_hi) {
        k_hi = limit;
    }
    *lo = k_lo;
    *hi = k_hi < k_lo ? k_lo : k_hi;
}

static void accumulate_tap_m1(int32_t *TRT_RESTRICT acc,
                              const int8_t *TRT_RESTRICT x,
                              const int8_t *TRT_RESTRICT w, int32_t channels,
                              int32_t input_offset) {
    for (int32_t c = 0; c < channels; ++c) {
        acc[c] += ((int32_t)x[c] + input_offset) * (int32_t)w[c];
    }
}

static void accumulate_tap_mult(int32_t *TRT_RESTRICT acc,
                                const int8_t *TRT_RESTRICT x,
                                const int8_t *TRT_RESTRICT w,
                                int32_t in_channels, int32_t multiplier,
                                int32_t input_offset) {
    for (int32_t ic = 0; ic < in_channels; ++ic) {
        const int32_t xv = (int32_t)x[ic] + input_offset;
        for (int32_t m = 0; m < multiplier; ++m) {
            acc[ic * multiplier + m] += xv * (int32_t)w[ic * multiplier + m];
        }
    }
}

void trt_depthwise_conv2d_s8(const trt_depthwise_conv2d_params *p,
                             const int8_t *input, int8_t *output,
                             void *scratch) {
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t out_h = p->output.h, out_w = p->output.w;
    const int32_t out_c = p->output.c;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    const int32_t mult = p->depth_multiplier;
    int32_t *acc = (int32_t *)scratch;

    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *input_n = input + (int64_t)n * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky_lo, ky_hi;
            valid_range(iy0, p->dilation_h, kh, in_h, &ky_lo, &ky_hi);
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx_lo, kx_hi;
                valid_range(ix0, p->dilation_w, kw, in_w, &kx_lo, &kx_hi);
                for (int32_t c = 0; c < out_c; ++c) {
                    acc[c] = p->bias ? p->bias[c] : 0;
                }
                for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                    const int32_t iy = iy0 + p->dilation_h * ky;
                    for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                        const int32_t ix = ix0 + p->dilation_w * kx;
                        const int8_t *x =
                            input_n + ((int64_t)iy * in_w + ix) * in_c;
                        const int8_t *w = p->weights + (ky * kw + kx) * out_c;
                        if (mult == 1) {
                            accumulate_tap_m1(acc, x, w, out_c,
                                              p->input_offset);
                        } else {
                            accumulate_tap_mult(acc, x, w, in_c, mult,
                                                p->input_offset);
                        }
                    }
                }
                int8_t *out_px =
                    output + (((int64_t)n * out_h + oy) * out_w + ox) * out_c;
                for (int32_t c = 0; c < out_c; ++c) {
                    int32_t a = trt_requantize(acc[c], p->multiplier[c],
                                               p->shift[c]);
                    a += p->output_offset;
                    out_px[c] = (int8_t)trt_clamp(a, p->act_min, p->act_max);
                }
            }
        }
    }
}
