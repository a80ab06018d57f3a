/*
 * CONV_2D, int8 activations, int8 per-channel weights, int32 bias.
 *
 * Arithmetic: acc = sum over in-image taps of w * (x - zp_in) + bias, then
 * per-channel fixed-point rescale, output zero point, activation clamp -
 * TFLite's reference ConvPerChannel.  The zero-point term is folded: the
 * kernel sums w * x only and adds zp-times-weight-sums precomputed by the
 * planner (`bias_folded` for windows inside the image, `tap_sums` to rebuild
 * it for windows that overlap the border).  Integer addition is exact, so
 * the result is identical.
 */
#include "trt_dot.h"

/* First and one-past-last filter tap whose input coordinate
 * origin + dilation * k lies in [0, size). */
static void valid_taps(int32_t origin, int32_t dilation, int32_t taps,
                       int32_t size, int32_t *lo, int32_t *hi) {
    int32_t k_lo = 0;
    if (origin < 0) {
        k_lo = (-origin + dilation - 1) / dilation;
    }
    int32_t k_hi = taps;
    const int32_t room = size - origin; /* need dilation * k < room */
    if (room <= 0) {
        k_hi = 0;
    } else {
        const int32_t limit = (room + dilation - 1) / dilation;
        if (limit < k_hi) {
            k_hi = limit;
        }
    }
    if (k_hi < k_lo) {
        k_hi = k_lo;
    }
    *lo = k_lo;
    *hi = k_hi;
}

/* Sum of w * x over the valid window for output channels [oc, oc + count),
 * count <= 4, into acc[0..count). */
static void window_dot(const trt_conv2d_params *p, const int8_t *input_n,
                       int32_t iy0, int32_t ix0, int32_t ky_lo, int32_t ky_hi,
                       int32_t kx_lo, int32_t kx_hi, int32_t in_c0,
                       int32_t oc, int32_t count, int32_t acc[4]) {
    const int32_t in_w = p->input.w;
    const int32_t in_c = p->input.c;
    const int32_t kw = p->filter.w;
    const int32_t kh = p->filter.h;
    const int32_t fc = p->filter.c;
    const int32_t filter_stride = kh * kw * fc;
    const int8_t *w0 = p->weights + (int64_t)oc * filter_stride;
    const int8_t *w1 = count > 1 ? w0 + filter_stride : w0;
    const int8_t *w2 = count > 2 ? w0 + 2 * filter_stride : w0;
    const int8_t *w3 = count > 3 ? w0 + 3 * filter_stride : w0;
    /* With one group and no horizontal dilation the taps of one filter row
     * are contiguous in both the input and the weights. */
    const int contiguous_row = (fc == in_c) && (p->dilation_w == 1);
    int32_t tmp[4] = {0, 0, 0, 0};
    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
        const int32_t iy = iy0 + p->dilation_h * ky;
        const int8_t *in_row = input_n + (int64_t)iy * in_w * in_c;
        if (contiguous_row) {
            const int32_t woff = (ky * kw + kx_lo) * fc;
            const int8_t *x = in_row + (int64_t)(ix0 + kx_lo) * in_c;
            trt_dot4_s8(x, w0 + woff, w1 + woff, w2 + woff, w3 + woff,
                        (kx_hi - kx_lo) * fc, tmp);
        } else {
            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                const int32_t ix = ix0 + p->dilation_w * kx;
                const int32_t woff = (ky * kw + kx) * fc;
                const int8_t *x = in_row + (int64_t)ix * in_c + in_c0;
                trt_dot4_s8(x, w0 + woff, w1 + woff, w2 + woff, w3 + woff, fc,
                            tmp);
            }
        }
    }
    for (int32_t i = 0; i < count; ++i) {
        acc[i] = tmp[i];
    }
}

void trt_conv2d_s8(const trt_conv2d_params *p, const int8_t *input,
                   int8_t *output) {
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t out_h = p->output.h, out_w = p->output.w;
    const int32_t out_c = p->output.c;
    const int32_t kh = p->filter.h, kw = p->filter.w, fc = p->filter.c;
    const int32_t groups = in_c / fc;
    const int32_t per_group = out_c / groups;

    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *input_n = input + (int64_t)n * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky_lo, ky_hi;
            valid_taps(iy0, p->dilation_h, kh, in_h, &ky_lo, &ky_hi);
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx_lo, kx_hi;
                valid_taps(ix0, p->dilation_w, kw, in_w, &kx_lo, &kx_hi);
                const int full = ky_lo == 0 && ky_hi == kh && kx_lo == 0 &&
                                 kx_hi == kw;
                int8_t *out_px =
                    output + (((int64_t)n * out_h + oy) * out_w + ox) * out_c;
                for (int32_t oc = 0; oc < out_c; oc += 4) {
                    const int32_t count = TRT_MIN(4, out_c - oc);
                    int32_t acc[4];
                    /* A block of four never straddles two groups unless the
                     * group is narrower than four: then go one by one. */
                    if ((oc / per_group) == ((oc + count - 1) / per_group)) {
                        window_dot(p, input_n, iy0, ix0, ky_lo, ky_hi, kx_lo,
                                   kx_hi, (oc / per_group) * fc, oc, count,
                                   acc);
                    } else {
                        for (int32_t i = 0; i < count; ++i) {
                            int32_t one[4];
                            window_dot(p, input_n, iy0, ix0, ky_lo, ky_hi,
                                       kx_lo, kx_hi,
                                       ((oc + i) / per_group) * fc, oc + i, 1,
                                       one);
                            acc[i] = one[0];
                        }
                    }
                    for (int32_t i = 0; i < count; ++i) {
                        const int32_t c = oc + i;
                        int32_t a = acc[i];
                        if (full) {
                            a += p->bias_folded[c];
                        } else {
                            int32_t wsum = 0;
                            const int32_t *taps = p->tap_sums + (int64_t)c * kh * kw;
                            for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                                for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                                    wsum += taps[ky * kw + kx];
                                }
                            }
                            a += (p->bias ? p->bias[c] : 0) +
                                 p->input_offset * wsum;
                        }
                        a = trt_requantize(a, p->multiplier[c], p->shift[c]);
                        a += p->output_offset;
                        out_px[c] = (int8_t)trt_clamp(a, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
