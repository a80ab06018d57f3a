/*
 * CONV_2D, int8 activations, int8 per-channel weights, int32 bias.
 *
 * Arithmetic (TFLite's reference ConvPerChannel): acc = sum over in-image
 * taps of w * (x - zp_in) + bias, per-channel fixed-point rescale, output
 * zero point, activation clamp.
 *
 * Implementation: each output pixel's receptive field is gathered into a
 * contiguous patch (im2col, one or two pixels at a time, in the scratch
 * buffer), with taps outside the image filled with the input zero point.
 * A filled tap contributes w * (zp - zp) = 0, exactly like a skipped one,
 * so every pixel can use the same folded bias, bias + (-zp) * sum(w),
 * precomputed by the planner; the inner loop is then a plain int8 dot
 * product of the patch with each filter.  Pointwise convolutions need no
 * patch: a pixel's channels are already contiguous.
 */
#include <string.h>

#include "trt_ukernels.h"

static int32_t groups_of(const trt_conv2d_params *p) {
    return p->input.c / p->filter.c;
}

static int is_pointwise(const trt_conv2d_params *p) {
    return p->filter.h == 1 && p->filter.w == 1 && p->stride_h == 1 &&
           p->stride_w == 1 && p->pad_top == 0 && p->pad_left == 0 &&
           groups_of(p) == 1 && p->input.h == p->output.h &&
           p->input.w == p->output.w;
}

static int32_t patch_len(const trt_conv2d_params *p) {
    return p->filter.h * p->filter.w * p->filter.c;
}

/* Scratch layout: [patch 0][patch 1] (K bytes each, none for pointwise),
 * rounded up to 16 bytes, then [accumulators 0][accumulators 1] (C_out
 * int32 each). */
static size_t patch_bytes(const trt_conv2d_params *p) {
    if (is_pointwise(p)) {
        return 0;
    }
    return ((size_t)2 * (size_t)patch_len(p) + 15u) & ~(size_t)15u;
}

size_t trt_conv2d_s8_scratch_size(const trt_conv2d_params *p) {
    return patch_bytes(p) + (size_t)2 * (size_t)p->output.c * sizeof(int32_t);
}

/* The receptive field of output pixel (oy, ox) for channel group g. */
static void gather_patch(const trt_conv2d_params *p, const int8_t *input_n,
                         int32_t oy, int32_t ox, int32_t g, int8_t *dst) {
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t fc = p->filter.c;
    const int8_t pad = (int8_t)(-p->input_offset);
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int contiguous = fc == in_c && p->dilation_w == 1;
    for (int32_t ky = 0; ky < p->filter.h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        if (iy < 0 || iy >= in_h) {
            memset(dst, pad, (size_t)(p->filter.w * fc));
            dst += p->filter.w * fc;
            continue;
        }
        const int8_t *row = input_n + (int64_t)iy * in_w * in_c;
        if (contiguous) {
            /* Taps [kx_lo, kx_hi) are inside the image and adjacent. */
            const int32_t kx_lo = ix0 < 0 ? -ix0 : 0;
            int32_t kx_hi = in_w - ix0;
            if (kx_hi > p->filter.w) {
                kx_hi = p->filter.w;
            }
            if (kx_hi < kx_lo) {
                kx_hi = kx_lo;
            }
            memset(dst, pad, (size_t)(kx_lo * fc));
            memcpy(dst + kx_lo * fc, row + (int64_t)(ix0 + kx_lo) * in_c,
                   (size_t)((kx_hi - kx_lo) * fc));
            memset(dst + kx_hi * fc, pad, (size_t)((p->filter.w - kx_hi) * fc));
            dst += p->filter.w * fc;
            continue;
        }
        for (int32_t kx = 0; kx < p->filter.w; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= in_w) {
                memset(dst, pad, (size_t)fc);
            } else {
                memcpy(dst, row + (int64_t)ix * in_c + (int64_t)g * fc,
                       (size_t)fc);
            }
            dst += fc;
        }
    }
}

/* Accumulators of output channels [oc_begin, oc_end) for one or two pixels
 * whose patches are x0 and x1 (x1 NULL for one pixel). */
static void pixels_times_filters(const trt_ukernels *uk,
                                 const trt_conv2d_params *p, const int8_t *x0,
                                 const int8_t *x1, int32_t oc_begin,
                                 int32_t oc_end, int32_t *acc0,
                                 int32_t *acc1) {
    const int32_t k = patch_len(p);
    int32_t oc = oc_begin;
    for (; oc + 4 <= oc_end; oc += 4) {
        const int8_t *w = p->weights + (int64_t)oc * k;
        int32_t acc[8];
        if (x1) {
            uk->dot_2x4(x0, x1, w, k, k, acc);
            for (int32_t j = 0; j < 4; ++j) {
                acc0[oc + j] = acc[j];
                acc1[oc + j] = acc[4 + j];
            }
        } else {
            uk->dot_1x4(x0, w, k, k, acc);
            for (int32_t j = 0; j < 4; ++j) {
                acc0[oc + j] = acc[j];
            }
        }
    }
    for (; oc < oc_end; ++oc) {
        const int8_t *w = p->weights + (int64_t)oc * k;
        int32_t a = 0, b = 0;
        for (int32_t i = 0; i < k; ++i) {
            a += (int32_t)x0[i] * (int32_t)w[i];
            if (x1) {
                b += (int32_t)x1[i] * (int32_t)w[i];
            }
        }
        acc0[oc] = a;
        if (x1) {
            acc1[oc] = b;
        }
    }
}

void trt_conv2d_s8(const trt_conv2d_params *p, const int8_t *input,
                   int8_t *output, void *scratch) {
    const trt_ukernels *uk = trt_ukernels_active();
    const int32_t in_plane = p->input.h * p->input.w * p->input.c;
    const int32_t out_w = p->output.w, out_c = p->output.c;
    const int32_t pixels = p->output.h * out_w;
    const int32_t groups = groups_of(p);
    const int32_t per_group = out_c / groups;
    const int32_t k = patch_len(p);
    const int pointwise = is_pointwise(p);
    int8_t *patch0 = (int8_t *)scratch;
    int8_t *patch1 = patch0 + k;
    int32_t *acc0 = (int32_t *)((uint8_t *)scratch + patch_bytes(p));
    int32_t *acc1 = acc0 + out_c;

    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *input_n = input + (int64_t)n * in_plane;
        int8_t *output_n = output + (int64_t)n * pixels * out_c;
        for (int32_t px = 0; px < pixels; px += 2) {
            const int two = px + 1 < pixels;
            for (int32_t g = 0; g < groups; ++g) {
                const int8_t *x0, *x1 = 0;
                if (pointwise) {
                    x0 = input_n + (int64_t)px * k;
                    if (two) {
                        x1 = x0 + k;
                    }
                } else {
                    gather_patch(p, input_n, px / out_w, px % out_w, g, patch0);
                    x0 = patch0;
                    if (two) {
                        gather_patch(p, input_n, (px + 1) / out_w,
                                     (px + 1) % out_w, g, patch1);
                        x1 = patch1;
                    }
                }
                pixels_times_filters(uk, p, x0, x1, g * per_group,
                                     (g + 1) * per_group, acc0, acc1);
            }
            int8_t *out0 = output_n + (int64_t)px * out_c;
            uk->requantize(acc0, p->bias_folded, p->multiplier, p->shift, out_c,
                           p->output_offset, p->act_min, p->act_max, out0);
            if (two) {
                uk->requantize(acc1, p->bias_folded, p->multiplier, p->shift,
                               out_c, p->output_offset, p->act_min, p->act_max,
                               out0 + out_c);
            }
        }
    }
}
