/*
 * DEPTHWISE_CONV_2D, int8, per-channel weights, any depth multiplier.
 *
 * TFLite's reference DepthwiseConvPerChannel: acc = sum over in-image taps of
 * w * (x - zp_in) + bias, per-channel rescale, output zero point, clamp.
 *
 * Channels are processed in chunks of TRT_DW_CHUNK whose int32 accumulators
 * live on the stack: they start at the planner's folded bias (bias plus
 * -zp_in times the sum of the channel's weights) and take one vector
 * multiply-accumulate per tap.  Taps outside the image read a row of input
 * zero points, which contributes w * (zp - zp) = 0, so the folded term is
 * right for every pixel.  No arena scratch is needed.
 *
 * In place (TinyEngine): with depth multiplier 1, output channel c depends
 * on input channel c only, so the output can overwrite the input.  Blocks
 * of `channel_block` channels are computed for every pixel into the scratch
 * buffer, then written over the input's slots of those channels, which no
 * later block reads.  The planner picks this where it lowers peak memory.
 */
#include <string.h>

#include "trt_ukernels.h"

#if defined(__GNUC__)
/* The per-pixel helpers keep their tap arrays in their own frames, which
 * exist only while they run: inlined into run_pixels, their arrays would sit
 * on the stack beside the run kernel's (a Cortex-M0+ measured +340 B). */
#define TRT_DW_NOINLINE __attribute__((noinline))
#else
#define TRT_DW_NOINLINE
#endif

enum {
    TRT_DW_CHUNK = 32,      /* channels per accumulator chunk (generic path) */
    TRT_DW_MAX_TAPS = 64,   /* windows up to 8x8 take the one-call path      */
    TRT_DW_WIDE = 256       /* channels per call of the one-call path        */
};

size_t trt_depthwise_conv2d_s8_scratch_size(
    const trt_depthwise_conv2d_params *p) {
    if (!p->in_place) {
        return 0;
    }
    return (size_t)p->output.h * (size_t)p->output.w * (size_t)p->channel_block;
}

int32_t trt_depthwise_conv2d_s8_in_place_native(
    const trt_depthwise_conv2d_params *p) {
#ifdef TRT_HAVE_GEMM_K4
    const trt_ukernels *uk = trt_ukernels_active();
    return uk->dw_k4_in_place && uk->dw_k4_in_place(p);
#else
    (void)p;
    return 0;
#endif
}

/* Input pixel (iy, ix) of one image, or NULL outside the image. */
static const int8_t *tap_pixel(const trt_depthwise_conv2d_params *p,
                               const int8_t *input_n, int32_t iy, int32_t ix) {
    if (iy < 0 || iy >= p->input.h || ix < 0 || ix >= p->input.w) {
        return 0;
    }
    return input_n + ((int64_t)iy * p->input.w + ix) * p->input.c;
}

/* Output channels [c0, c0 + n) of one pixel, n <= TRT_DW_WIDE, through the
 * micro-kernel that keeps accumulators in registers across all taps
 * (depth multiplier 1, at most TRT_DW_MAX_TAPS taps). */
static TRT_DW_NOINLINE void pixel_wide(const trt_ukernels *uk,
                       const trt_depthwise_conv2d_params *p,
                       const int8_t *input_n, const int8_t *zp_wide,
                       int32_t iy0, int32_t ix0, int32_t c0, int32_t n,
                       int8_t *out) {
    const int8_t *taps[TRT_DW_MAX_TAPS];
    int32_t t = 0;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    if (iy0 >= 0 && ix0 >= 0 && iy0 + (kh - 1) * p->dilation_h < p->input.h &&
        ix0 + (kw - 1) * p->dilation_w < p->input.w) {
        /* the whole window is inside the image: no per-tap checks */
        const int64_t row_step = (int64_t)p->dilation_h * p->input.w * p->input.c;
        const int64_t col_step = (int64_t)p->dilation_w * p->input.c;
        const int8_t *row = input_n + ((int64_t)iy0 * p->input.w + ix0) * p->input.c + c0;
        for (int32_t ky = 0; ky < kh; ++ky, row += row_step) {
            for (int32_t kx = 0; kx < kw; ++kx) {
                taps[t++] = row + kx * col_step;
            }
        }
        uk->dw_pixel(taps, t, p->weights + c0, p->output.c, n, p->bias_folded + c0,
                     p->multiplier + c0, p->shift + c0, p->output_offset,
                     p->act_min, p->act_max, out);
        return;
    }
    for (int32_t ky = 0; ky < p->filter.h; ++ky) {
        for (int32_t kx = 0; kx < p->filter.w; ++kx) {
            const int8_t *x = tap_pixel(p, input_n, iy0 + ky * p->dilation_h,
                                        ix0 + kx * p->dilation_w);
            taps[t++] = x ? x + c0 : zp_wide;
        }
    }
    uk->dw_pixel(taps, t, p->weights + c0, p->output.c, n, p->bias_folded + c0,
                 p->multiplier + c0, p->shift + c0, p->output_offset,
                 p->act_min, p->act_max, out);
}

/* Output channels [c0, c0 + n) of the pixel whose window starts at
 * (iy0, ix0), n <= TRT_DW_CHUNK, written to out[0..n). */
static TRT_DW_NOINLINE void pixel_chunk(const trt_ukernels *uk,
                        const trt_depthwise_conv2d_params *p,
                        const int8_t *input_n, const int8_t *zp_chunk,
                        int32_t iy0, int32_t ix0, int32_t c0, int32_t n,
                        int8_t *out) {
    const int32_t out_c = p->output.c, kw = p->filter.w;
    const int32_t mult = p->depth_multiplier;
    int32_t acc[TRT_DW_CHUNK];
    memcpy(acc, p->bias_folded + c0, (size_t)n * sizeof(int32_t));
    for (int32_t ky = 0; ky < p->filter.h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int8_t *x = tap_pixel(p, input_n, iy, ix0 + kx * p->dilation_w);
            const int8_t *w = p->weights + (ky * kw + kx) * out_c + c0;
            if (mult == 1 || !x) {
                uk->mac_rows(acc, x ? x + c0 : zp_chunk, w, n);
            } else {
                /* output channel c reads input channel c / mult: spread the
                 * input to one byte per output channel, then one vector MAC */
                int8_t spread[TRT_DW_CHUNK];
                int32_t ic = c0 / mult, m = c0 % mult;
                for (int32_t j = 0; j < n; ++j) {
                    spread[j] = x[ic];
                    if (++m == mult) {
                        m = 0;
                        ++ic;
                    }
                }
                uk->mac_rows(acc, spread, w, n);
            }
        }
    }
    uk->requantize(acc, 0, p->multiplier + c0, p->shift + c0, n,
                   p->output_offset, p->act_min, p->act_max, out);
}

static int is_wide(const trt_depthwise_conv2d_params *p) {
    return p->depth_multiplier == 1 && p->filter.h * p->filter.w <= TRT_DW_MAX_TAPS;
}

/* Output pixels [px0, px1) of one image, channels [c0, c0 + width); pixel
 * px goes to out + px * out_step.  Where the table has a run kernel, the
 * pixels of a row whose windows lie inside the image go through it in one
 * call; border pixels (and tables without one) go pixel by pixel. */
static void run_pixels(const trt_ukernels *uk,
                       const trt_depthwise_conv2d_params *p,
                       const int8_t *input_n, const int8_t *zp_chunk,
                       const int8_t *zp_wide, int32_t px0, int32_t px1,
                       int32_t c0, int32_t width, int8_t *out, int32_t out_step) {
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t kh = p->filter.h, kw = p->filter.w, out_w = p->output.w;
    const int32_t sh = p->stride_h, sw = p->stride_w;
    const int32_t pt = p->pad_top, pl = p->pad_left;
    const int wide = is_wide(p);
    const int runs = wide && uk->dw_run && kh * kw <= TRT_DW_RUN_TAPS &&
                     width <= TRT_DW_RUN_CHANNELS;
    int32_t tap_off[TRT_DW_RUN_TAPS];
    int32_t ox_lo = 0, ox_hi = 0; /* columns whose windows are inside */
    if (runs) {
        int32_t t = 0;
        for (int32_t ky = 0; ky < kh; ++ky) {
            for (int32_t kx = 0; kx < kw; ++kx) {
                tap_off[t++] = (ky * p->dilation_h * in_w + kx * p->dilation_w) * in_c;
            }
        }
        const int32_t last = in_w - 1 - (kw - 1) * p->dilation_w + pl;
        ox_lo = pl <= 0 ? 0 : (pl + sw - 1) / sw;
        ox_hi = last < 0 ? 0 : TRT_MIN(last / sw + 1, out_w);
    }
    int32_t px = px0;
    while (px < px1) {
        const int32_t oy = px / out_w, ox = px % out_w;
        const int32_t iy0 = oy * sh - pt, ix0 = ox * sw - pl;
        int8_t *o = out + (int64_t)px * out_step;
        if (runs && ox >= ox_lo && ox < ox_hi && iy0 >= 0 &&
            iy0 + (kh - 1) * p->dilation_h < in_h) {
            const int32_t count = TRT_MIN(ox_hi - ox, px1 - px);
            uk->dw_run(input_n + ((int64_t)iy0 * in_w + ix0) * in_c + c0, count,
                       sw * in_c, tap_off, kh * kw, p->weights + c0,
                       p->output.c, width, p->bias_folded + c0,
                       p->multiplier + c0, p->shift + c0, p->output_offset,
                       p->act_min, p->act_max, o, out_step);
            px += count;
            continue;
        }
        if (wide) {
            for (int32_t c = c0; c < c0 + width; c += TRT_DW_WIDE) {
                pixel_wide(uk, p, input_n, zp_wide, iy0, ix0, c,
                           TRT_MIN(TRT_DW_WIDE, c0 + width - c), o + (c - c0));
            }
        } else {
            for (int32_t c = c0; c < c0 + width; c += TRT_DW_CHUNK) {
                pixel_chunk(uk, p, input_n, zp_chunk, iy0, ix0, c,
                            TRT_MIN(TRT_DW_CHUNK, c0 + width - c), o + (c - c0));
            }
        }
        ++px;
    }
}

void trt_depthwise_conv2d_s8(const trt_depthwise_conv2d_params *p,
                             const int8_t *input, int8_t *output,
                             void *scratch) {
    const trt_ukernels *uk = trt_ukernels_active();
    const int32_t in_plane = p->input.h * p->input.w * p->input.c;
    const int32_t out_c = p->output.c;
    const int32_t pixels = p->output.h * p->output.w;
    int8_t zp_chunk[TRT_DW_CHUNK];
    int8_t zp_wide[TRT_DW_WIDE];
    memset(zp_chunk, (int8_t)(-p->input_offset), sizeof zp_chunk);
    memset(zp_wide, (int8_t)(-p->input_offset), sizeof zp_wide);

    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *input_n = input + (int64_t)n * in_plane;
        int8_t *output_n = output + (int64_t)n * pixels * out_c;
#ifdef TRT_HAVE_GEMM_K4
        /* (in place too: it reads each input row before overwriting it) */
        if (uk->dw_k4 && uk->dw_k4(p, input_n, output_n, 0, pixels)) {
            continue;
        }
#endif
        if (!p->in_place) {
            run_pixels(uk, p, input_n, zp_chunk, zp_wide, 0, pixels, 0, out_c,
                       output_n, out_c);
            continue;
        }
        /* In place: input == output, depth multiplier 1. */
        int8_t *block = (int8_t *)scratch;
        const int32_t b = p->channel_block;
        for (int32_t c0 = 0; c0 < out_c; c0 += b) {
            const int32_t width = TRT_MIN(b, out_c - c0);
            run_pixels(uk, p, input_n, zp_chunk, zp_wide, 0, pixels, c0, width,
                       block, width);
            if (width == out_c) {
                /* one block of every channel: the same layout, one copy */
                memcpy(output_n, block, (size_t)pixels * (size_t)width);
                continue;
            }
            for (int32_t px = 0; px < pixels; ++px) {
                memcpy(output_n + (int64_t)px * out_c + c0,
                       block + (int64_t)px * width, (size_t)width);
            }
        }
    }
}

int32_t trt_depthwise_conv2d_s8_pixels(const trt_depthwise_conv2d_params *p,
                                       const int8_t *input, int8_t *output,
                                       int32_t begin, int32_t end) {
    if (p->in_place) {
        return 0; /* channel blocks sweep the whole image: not splittable */
    }
    const trt_ukernels *uk = trt_ukernels_active();
    const int32_t out_c = p->output.c;
    const int32_t pixels = p->output.h * p->output.w;
    const int32_t in_plane = p->input.h * p->input.w * p->input.c;
    int8_t zp_chunk[TRT_DW_CHUNK];
    int8_t zp_wide[TRT_DW_WIDE];
    memset(zp_chunk, (int8_t)(-p->input_offset), sizeof zp_chunk);
    memset(zp_wide, (int8_t)(-p->input_offset), sizeof zp_wide);
    /* [begin, end) counts pixels over batch and space: image by image */
    for (int32_t n = begin / pixels; n * pixels < end; ++n) {
        const int32_t b = TRT_MAX(begin - n * pixels, 0);
        const int32_t e = TRT_MIN(end - n * pixels, pixels);
#ifdef TRT_HAVE_GEMM_K4
        if (uk->dw_k4 && uk->dw_k4(p, input + (int64_t)n * in_plane,
                                   output + (int64_t)n * pixels * out_c, b, e)) {
            continue;
        }
#endif
        run_pixels(uk, p, input + (int64_t)n * in_plane, zp_chunk, zp_wide, b, e,
                   0, out_c, output + (int64_t)n * pixels * out_c, out_c);
    }
    return 1;
}
