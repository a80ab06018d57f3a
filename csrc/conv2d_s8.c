/*
 * CONV_2D, int8 activations, int8 per-channel weights, int32 bias.
 *
 * Arithmetic (TFLite's reference ConvPerChannel): acc = sum over in-image
 * taps of w * (x - zp_in) + bias, per-channel fixed-point rescale, output
 * zero point, activation clamp.
 *
 * The zero-point term is folded at plan time: bias_folded = bias + (-zp_in)
 * * sum(w).  That is exact for every pixel if taps outside the image are
 * read as the input zero point (w * (zp - zp) = 0 there, as for a skipped
 * tap), so the inner loop is a plain int8 dot product.  Two strategies:
 *
 *  - im2col (p->im2col = 1): each output pixel's receptive field is gathered
 *    into a contiguous patch in the scratch buffer, zero-point filled, and
 *    dotted with each filter, two pixels by four filters at a time.
 *    Pointwise convolutions need no patch: a pixel's channels already are
 *    one.
 *  - direct (p->im2col = 0): no scratch; each filter row's in-image taps
 *    are dotted straight from the input, and the out-of-image taps add
 *    zp * (their weight sum).  The planner uses it where the patch buffer
 *    would raise the peak of the arena.
 *
 * Accumulators live on the stack in chunks of TRT_CONV_CHUNK channels.
 */
#include <string.h>

#include "trt_ukernels.h"

enum { TRT_CONV_CHUNK = 32 };

#if defined(__GNUC__)
#define TRT_NOINLINE __attribute__((noinline))
#else
#define TRT_NOINLINE
#endif

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

size_t trt_conv2d_s8_scratch_size(const trt_conv2d_params *p) {
    if (!p->im2col || is_pointwise(p)) {
        return 0;
    }
    /* one patch per row of the GEMM micro-kernel (two per group pass) */
    return (size_t)(groups_of(p) == 1 ? TRT_GEMM_MR : 2) * (size_t)patch_len(p);
}

/* n bytes, eight at a time: a fixed-size memcpy compiles to one load and
 * one store where the core allows unaligned access (aarch64, x86, ARMv7-M),
 * and byte by byte where it does not; a byte loop cost a Cortex-A72 ~600
 * instructions per 3x3x16 patch. */
static void copy_run(int8_t *dst, const int8_t *src, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(dst + i, src + i, 8);
    }
    if (i + 4 <= n) {
        memcpy(dst + i, src + i, 4);
        i += 4;
    }
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
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
    const int32_t run = p->filter.w * fc;
    if (contiguous && iy0 >= 0 && iy0 + (p->filter.h - 1) * p->dilation_h < in_h &&
        ix0 >= 0 && ix0 + p->filter.w <= in_w) {
        /* the whole window inside the image (most pixels): kernel rows are
         * runs of run bytes, row_step apart */
        const int64_t row_step = (int64_t)p->dilation_h * in_w * in_c;
        const int8_t *src = input_n + ((int64_t)iy0 * in_w + ix0) * in_c;
        for (int32_t ky = 0; ky < p->filter.h; ++ky, src += row_step, dst += run) {
            copy_run(dst, src, run);
        }
        return;
    }
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
            const int32_t kx_lo = TRT_MIN(ix0 < 0 ? -ix0 : 0, p->filter.w);
            const int32_t kx_hi = TRT_MAX(kx_lo, TRT_MIN(p->filter.w, in_w - ix0));
            const int32_t run = (kx_hi - kx_lo) * fc;
            const int8_t *src = row + (int64_t)(ix0 + kx_lo) * in_c;
            if (kx_lo == 0 && kx_hi == p->filter.w && run <= 64) {
                /* interior, short row (e.g. 3 taps of 3 channels): no
                 * library call */
                copy_run(dst, src, run);
            } else {
                memset(dst, pad, (size_t)(kx_lo * fc));
                memcpy(dst + kx_lo * fc, src, (size_t)run);
                memset(dst + kx_hi * fc, pad, (size_t)((p->filter.w - kx_hi) * fc));
            }
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

/* acc[oc - oc0] (+)= x_r . w_oc for oc in [oc0, oc1), one or two rows of
 * length len, weight rows w_base + oc * w_stride. */
static void dot_rows(const trt_ukernels *uk, const int8_t *x0,
                     const int8_t *x1, const int8_t *w_base, int32_t w_stride,
                     int32_t len, int32_t oc0, int32_t oc1, int32_t *acc0,
                     int32_t *acc1, int accumulate) {
    int32_t oc = oc0;
    for (; oc + 4 <= oc1; oc += 4) {
        const int8_t *w = w_base + (int64_t)oc * w_stride;
        int32_t r[8];
        if (x1) {
            uk->dot_2x4(x0, x1, w, w_stride, len, r);
        } else {
            uk->dot_1x4(x0, w, w_stride, len, r);
        }
        for (int32_t j = 0; j < 4; ++j) {
            acc0[oc - oc0 + j] = (accumulate ? acc0[oc - oc0 + j] : 0) + r[j];
            if (x1) {
                acc1[oc - oc0 + j] = (accumulate ? acc1[oc - oc0 + j] : 0) + r[4 + j];
            }
        }
    }
    for (; oc < oc1; ++oc) {
        const int8_t *w = w_base + (int64_t)oc * w_stride;
        int32_t a = 0, b = 0;
        for (int32_t i = 0; i < len; ++i) {
            a += (int32_t)x0[i] * (int32_t)w[i];
            if (x1) {
                b += (int32_t)x1[i] * (int32_t)w[i];
            }
        }
        acc0[oc - oc0] = (accumulate ? acc0[oc - oc0] : 0) + a;
        if (x1) {
            acc1[oc - oc0] = (accumulate ? acc1[oc - oc0] : 0) + b;
        }
    }
}

/* Whether the table's segmented GEMM can read this convolution's patches
 * in place: one group, kernel rows contiguous in the input (all channels,
 * no horizontal dilation), packed weights. */
static int segmented(const trt_ukernels *uk, const trt_conv2d_params *p) {
    return uk->gemm_seg && p->packed_weights && groups_of(p) == 1 &&
           p->filter.c == p->input.c && p->dilation_w == 1 &&
           p->filter.h <= TRT_GEMM_SEG_MAX && patch_len(p) <= TRT_GEMM_MAX_K;
}

/* The segmented path: an output pixel whose window lies inside the image
 * gives the GEMM its kernel rows where they are; a border pixel's patch is
 * gathered (zero-point filled) into scratch and given as rows of it. */
/* (Not inlined: its segment table would sit in every caller's frame, on
 * microcontrollers too, where no table has gemm_seg.) */
static TRT_NOINLINE void run_gemm_seg_range(const trt_ukernels *uk,
                               const trt_conv2d_params *p,
                               const int8_t *input_n, int8_t *output_n,
                               int8_t *scratch, int32_t begin, int32_t end) {
    const int32_t out_w = p->output.w, out_c = p->output.c;
    const int32_t in_w = p->input.w, in_c = p->input.c;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    const int32_t k = patch_len(p), len = kw * in_c;
    const int64_t row_step = (int64_t)p->dilation_h * in_w * in_c;
    const int8_t *rows[TRT_GEMM_MR * TRT_GEMM_SEG_MAX];
    int8_t *outs[TRT_GEMM_MR];
    for (int32_t px = begin; px < end; px += TRT_GEMM_MR) {
        const int32_t m = TRT_MIN(TRT_GEMM_MR, end - px);
        for (int32_t r = 0; r < m; ++r) {
            const int32_t oy = (px + r) / out_w, ox = (px + r) % out_w;
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int8_t **seg = rows + r * kh;
            if (iy0 >= 0 && iy0 + (kh - 1) * p->dilation_h < p->input.h &&
                ix0 >= 0 && ix0 + kw <= in_w) {
                const int8_t *first = input_n + ((int64_t)iy0 * in_w + ix0) * in_c;
                for (int32_t ky = 0; ky < kh; ++ky) {
                    seg[ky] = first + ky * row_step;
                }
            } else {
                int8_t *patch = scratch + (int64_t)r * k;
                gather_patch(p, input_n, oy, ox, 0, patch);
                for (int32_t ky = 0; ky < kh; ++ky) {
                    seg[ky] = patch + ky * len;
                }
            }
            outs[r] = output_n + (int64_t)(px + r) * out_c;
        }
        uk->gemm_seg(rows, kh, m, k, p->weights, p->packed_weights, out_c,
                     p->bias_folded, p->multiplier, p->shift, 0,
                     p->output_offset, p->act_min, p->act_max, outs);
    }
}

#ifdef TRT_HAVE_GEMM_K4
enum { TRT_K4_IMAGE = 64 * 1024 }; /* bytes of unsigned input image on the stack */

/* Whether the table's VNNI GEMM runs this convolution: one group, the
 * planner's packed_k4 layout, rows that fit the stack buffer. */
static int k4_ready(const trt_ukernels *uk, const trt_conv2d_params *p) {
    if (!uk->gemm_k4 || !p->packed_k4 || groups_of(p) != 1 ||
        patch_len(p) > TRT_GEMM_MAX_K) {
        return 0;
    }
    if (p->k4_channels == p->input.c) {
        return 1;
    }
    /* channels widened to k4_channels: only the image path reads that
     * layout, so one output row's input must fit its buffer */
    const int64_t prow = (int64_t)((p->output.w - 1) * p->stride_w + p->filter.w) * p->k4_channels;
    return p->k4_channels > p->input.c && p->dilation_w == 1 &&
           (int64_t)p->filter.h * p->filter.w * p->k4_channels <= TRT_GEMM_MAX_K &&
           ((int64_t)(p->filter.h - 1) * p->dilation_h + 1) * prow <= TRT_K4_IMAGE - 64;
}

/* The VNNI path, general case: TRT_K4_MR output pixels at a time, each
 * pixel's receptive field one unsigned row of a stack buffer, all of a
 * tile's rows in one rows_u8 call: an interior window's kernel rows are read
 * where they lie, a border pixel's patch is gathered (zero-point filled)
 * into its row first and converted in place. */
static TRT_NOINLINE void run_k4_rows(const trt_ukernels *uk,
                                     const trt_conv2d_params *p,
                                     const int8_t *input_n, int8_t *output_n,
                                     int32_t begin, int32_t end) {
    const int32_t out_w = p->output.w, out_c = p->output.c;
    const int32_t in_w = p->input.w, in_c = p->input.c;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    const int32_t k = patch_len(p);
    const int pointwise = is_pointwise(p);
    /* kernel rows contiguous in the input: one segment per kernel row */
    const int in_rows = !pointwise && p->filter.c == in_c && p->dilation_w == 1 &&
                        kh <= TRT_GEMM_SEG_MAX;
    const int32_t segs = in_rows ? kh : 1, len = k / segs;
    const int64_t row_step = (int64_t)p->dilation_h * in_w * in_c;
    const trt_gemm_k4 g = {k, out_c, p->packed_k4, p->bias_k4, p->multiplier,
                           p->shift, 0, p->rescale_k4, p->output_offset,
                           p->act_min, p->act_max, 1, 0, 0};
    uint8_t rows[TRT_K4_MR * TRT_K4_STRIDE] __attribute__((aligned(64)));
    const uint8_t *x[TRT_K4_MR];
    int8_t *outs[TRT_K4_MR];
    const int8_t *seg[TRT_K4_MR * TRT_GEMM_SEG_MAX];
    for (int32_t r = 0; r < TRT_K4_MR; ++r) {
        x[r] = rows + (int64_t)r * TRT_K4_STRIDE;
    }
    int32_t oy = begin / out_w, ox = begin % out_w;
    for (int32_t px = begin; px < end; px += TRT_K4_MR) {
        const int32_t m = TRT_MIN(TRT_K4_MR, end - px);
        for (int32_t r = 0; r < m; ++r) {
            uint8_t *dst = rows + (int64_t)r * TRT_K4_STRIDE;
            const int8_t **sr = seg + r * segs;
            outs[r] = output_n + (int64_t)(px + r) * out_c;
            if (pointwise) {
                sr[0] = input_n + (int64_t)(px + r) * k;
            } else {
                const int32_t iy0 = oy * p->stride_h - p->pad_top;
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                if (in_rows && iy0 >= 0 && iy0 + (kh - 1) * p->dilation_h < p->input.h &&
                    ix0 >= 0 && ix0 + kw <= in_w) {
                    const int8_t *first = input_n + ((int64_t)iy0 * in_w + ix0) * in_c;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        sr[ky] = first + ky * row_step;
                    }
                } else {
                    gather_patch(p, input_n, oy, ox, 0, (int8_t *)dst);
                    for (int32_t s = 0; s < segs; ++s) {
                        sr[s] = (const int8_t *)dst + s * len;
                    }
                }
                if (++ox == out_w) {
                    ox = 0;
                    ++oy;
                }
            }
        }
        uk->rows_u8(rows, seg, segs, len, m);
        uk->gemm_k4(&g, x, m, outs);
    }
}

/* n pixels of c channels -> n pixels of c4 > c unsigned bytes (x + 128),
 * the extra channels arbitrary (their weights are 0): a 3-channel pixel is
 * one 4-byte word, the next pixel's first byte in its fourth. */
static void widen_u8(uint8_t *dst, const int8_t *src, int32_t n, int32_t c,
                     int32_t c4) {
    int32_t i = 0;
    if (c == 3 && c4 == 4) {
        for (; i + 1 < n; ++i) {
            uint32_t v;
            memcpy(&v, src + 3 * i, 4);
            v ^= 0x80808080u;
            memcpy(dst + 4 * i, &v, 4);
        }
    }
    for (; i < n; ++i) {
        for (int32_t j = 0; j < c4; ++j) {
            dst[(int64_t)i * c4 + j] = j < c ? (uint8_t)(src[(int64_t)i * c + j] ^ 0x80) : 0;
        }
    }
}

/* The VNNI path when the kernel rows are whole multiples of four bytes:
 * the input rows the pixels [begin, end) read are made unsigned once, into
 * a stack image with the padding as zero points (a pointwise convolution:
 * the pixels themselves), and the GEMM reads every pixel's kernel rows
 * there, border pixels alike: no per-pixel copies.  Output rows are taken in
 * chunks whose input fits TRT_K4_IMAGE; returns 0 when one row does not. */
static TRT_NOINLINE int run_k4_image(const trt_ukernels *uk,
                                     const trt_conv2d_params *p,
                                     const int8_t *input_n, int8_t *output_n,
                                     int32_t begin, int32_t end) {
    const int32_t out_w = p->output.w, out_c = p->output.c;
    const int32_t in_w = p->input.w, in_c = p->input.c, in_h = p->input.h;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    const int32_t sh = p->stride_h, sw = p->stride_w, dh = p->dilation_h;
    const int32_t c4 = p->k4_channels; /* channels per pixel in the image */
    const int32_t k = kh * kw * c4;
    const int pointwise = is_pointwise(p);
    uint8_t image[TRT_K4_IMAGE] __attribute__((aligned(64)));
    const uint8_t *x[TRT_K4_MR];
    int8_t *outs[TRT_K4_MR];
    trt_gemm_k4 g = {k, out_c, p->packed_k4, p->bias_k4, p->multiplier,
                     p->shift, 0, p->rescale_k4, p->output_offset, p->act_min,
                     p->act_max, 1, 0, 0};
    if (pointwise) {
        /* the pixels, a chunk at a time (3 bytes of slack: a last k step
         * may read past the row, where the weights are 0) */
        const int32_t chunk = (TRT_K4_IMAGE - 64) / k;
        for (int32_t c0 = begin; c0 < end; c0 += chunk) {
            const int32_t c1 = TRT_MIN(end, c0 + chunk);
            const int8_t *src = input_n + (int64_t)c0 * k;
            uk->rows_u8(image, &src, 1, (c1 - c0) * k, 1);
            for (int32_t px = c0; px < c1; px += TRT_K4_MR) {
                const int32_t m = TRT_MIN(TRT_K4_MR, c1 - px);
                for (int32_t r = 0; r < m; ++r) {
                    x[r] = image + (int64_t)(px + r - c0) * k;
                    outs[r] = output_n + (int64_t)(px + r) * out_c;
                }
                uk->gemm_k4(&g, x, m, outs);
            }
        }
        return 1;
    }
    if (p->filter.c != in_c || p->dilation_w != 1 || (kw * c4) % 4 != 0) {
        return 0;
    }
    /* padded columns -pad_left .. (out_w - 1) * sw - pad_left + kw - 1 */
    const int32_t wp = (out_w - 1) * sw + kw;
    const int64_t prow = (int64_t)wp * c4;
    const int32_t reach = (kh - 1) * dh + 1; /* input rows of one output row */
    const int64_t fit = (TRT_K4_IMAGE - 64) / prow - reach;
    if (fit < 0) {
        return 0;
    }
    const int32_t rows_per_chunk = (int32_t)TRT_MIN(fit / sh + 1, (int64_t)p->output.h);
    const uint8_t zp_u8 = (uint8_t)((-p->input_offset) ^ 0x80);
    /* input column ix is padded column pad_left + ix */
    const int32_t col0 = p->pad_left, cols = TRT_MAX(0, TRT_MIN(in_w, wp - col0));
    g.segs = kh;
    g.seg_stride = (int32_t)(dh * prow);
    g.tap = c4;
    for (int32_t oy_a = begin / out_w; oy_a * out_w < end; oy_a += rows_per_chunk) {
        const int32_t oy_b = TRT_MIN(oy_a + rows_per_chunk, p->output.h); /* exclusive */
        const int32_t iy_a = oy_a * sh - p->pad_top;
        const int32_t iy_n = (oy_b - 1 - oy_a) * sh + reach;
        for (int32_t j = 0; j < iy_n; ++j) {
            /* (a row between the strides of a strided 1xN kernel is read by
             * no output row: left as it is) */
            int used = 0;
            for (int32_t ky = 0; ky < kh && !used; ++ky) {
                used = j >= ky * dh && (j - ky * dh) % sh == 0;
            }
            if (!used) {
                continue;
            }
            uint8_t *dst = image + j * prow;
            const int32_t iy = iy_a + j;
            if (iy < 0 || iy >= in_h || cols == 0) {
                memset(dst, zp_u8, (size_t)prow);
                continue;
            }
            memset(dst, zp_u8, (size_t)col0 * (size_t)c4);
            const int8_t *src = input_n + (int64_t)iy * in_w * in_c;
            if (c4 == in_c) {
                uk->rows_u8(dst + (int64_t)col0 * in_c, &src, 1, cols * in_c, 1);
            } else if (in_c == 3 && c4 == 4 && uk->widen3_u8) {
                uk->widen3_u8(dst + (int64_t)col0 * c4, src, cols);
            } else {
                widen_u8(dst + (int64_t)col0 * c4, src, cols, in_c, c4);
            }
            /* (also over the zero bytes rows_u8 pads with) */
            memset(dst + (int64_t)(col0 + cols) * c4, zp_u8,
                   (size_t)(prow - (int64_t)(col0 + cols) * c4));
        }
        const int32_t px_a = TRT_MAX(begin, oy_a * out_w), px_b = TRT_MIN(end, oy_b * out_w);
        int32_t oy = px_a / out_w, ox = px_a % out_w;
        for (int32_t px = px_a; px < px_b; px += TRT_K4_MR) {
            const int32_t m = TRT_MIN(TRT_K4_MR, px_b - px);
            for (int32_t r = 0; r < m; ++r) {
                x[r] = image + (int64_t)(oy - oy_a) * sh * prow + (int64_t)ox * sw * c4;
                outs[r] = output_n + (int64_t)(px + r) * out_c;
                if (++ox == out_w) {
                    ox = 0;
                    ++oy;
                }
            }
            uk->gemm_k4(&g, x, m, outs);
        }
    }
    return 1;
}

static void run_k4_range(const trt_ukernels *uk, const trt_conv2d_params *p,
                         const int8_t *input_n, int8_t *output_n,
                         int32_t begin, int32_t end) {
    /* (widened channels: k4_ready checked that the image path takes it) */
    if (!run_k4_image(uk, p, input_n, output_n, begin, end)) {
        run_k4_rows(uk, p, input_n, output_n, begin, end);
    }
}
#endif

/* One group: TRT_GEMM_MR output pixels at a time through the GEMM
 * micro-kernel, patches (or, pointwise, the input pixels) as its rows. */
static void run_gemm_range(const trt_ukernels *uk, const trt_conv2d_params *p,
                           const int8_t *input_n, int8_t *output_n,
                           int8_t *scratch, int32_t begin, int32_t end) {
    const int32_t out_w = p->output.w, out_c = p->output.c;
    const int32_t k = patch_len(p);
    const int pointwise = is_pointwise(p);
#ifdef TRT_HAVE_GEMM_K4
    if (k4_ready(uk, p)) {
        run_k4_range(uk, p, input_n, output_n, begin, end);
        return;
    }
#endif
    if (!pointwise && segmented(uk, p)) {
        run_gemm_seg_range(uk, p, input_n, output_n, scratch, begin, end);
        return;
    }
    const int8_t *rows[TRT_GEMM_MR];
    int8_t *outs[TRT_GEMM_MR];
    for (int32_t px = begin; px < end; px += TRT_GEMM_MR) {
        const int32_t m = TRT_MIN(TRT_GEMM_MR, end - px);
        for (int32_t r = 0; r < m; ++r) {
            if (pointwise) {
                rows[r] = input_n + (int64_t)(px + r) * k;
            } else {
                gather_patch(p, input_n, (px + r) / out_w, (px + r) % out_w, 0,
                             scratch + (int64_t)r * k);
                rows[r] = scratch + (int64_t)r * k;
            }
            outs[r] = output_n + (int64_t)(px + r) * out_c;
        }
        uk->gemm(rows, m, k, p->weights, p->packed_weights, out_c,
                 p->bias_folded, p->multiplier, p->shift, 0, p->output_offset,
                 p->act_min, p->act_max, outs);
    }
}

static void run_gemm(const trt_ukernels *uk, const trt_conv2d_params *p,
                     const int8_t *input_n, int8_t *output_n, int8_t *scratch) {
    run_gemm_range(uk, p, input_n, output_n, scratch, 0, p->output.h * p->output.w);
}

static void run_im2col(const trt_ukernels *uk, const trt_conv2d_params *p,
                       const int8_t *input_n, int8_t *output_n,
                       int8_t *scratch) {
    if (groups_of(p) == 1) {
        run_gemm(uk, p, input_n, output_n, scratch);
        return;
    }
    const int32_t out_w = p->output.w, out_c = p->output.c;
    const int32_t pixels = p->output.h * out_w;
    const int32_t per_group = out_c / groups_of(p);
    const int32_t k = patch_len(p);
    const int pointwise = is_pointwise(p);
    int32_t acc0[TRT_CONV_CHUNK], acc1[TRT_CONV_CHUNK];
    for (int32_t px = 0; px < pixels; px += 2) {
        const int two = px + 1 < pixels;
        int8_t *out0 = output_n + (int64_t)px * out_c;
        for (int32_t g = 0; g < groups_of(p); ++g) {
            const int8_t *x0, *x1 = 0;
            if (pointwise) {
                x0 = input_n + (int64_t)px * k;
                x1 = two ? x0 + k : 0;
            } else {
                gather_patch(p, input_n, px / out_w, px % out_w, g, scratch);
                x0 = scratch;
                if (two) {
                    gather_patch(p, input_n, (px + 1) / out_w, (px + 1) % out_w,
                                 g, scratch + k);
                    x1 = scratch + k;
                }
            }
            for (int32_t oc = g * per_group; oc < (g + 1) * per_group;
                 oc += TRT_CONV_CHUNK) {
                const int32_t n = TRT_MIN(TRT_CONV_CHUNK, (g + 1) * per_group - oc);
                dot_rows(uk, x0, x1, p->weights, k, k, oc, oc + n, acc0, acc1, 0);
                uk->requantize(acc0, p->bias_folded + oc, p->multiplier + oc,
                               p->shift + oc, n, p->output_offset, p->act_min,
                               p->act_max, out0 + oc);
                if (two) {
                    uk->requantize(acc1, p->bias_folded + oc, p->multiplier + oc,
                                   p->shift + oc, n, p->output_offset,
                                   p->act_min, p->act_max, out0 + out_c + oc);
                }
            }
        }
    }
}

/* zp * (sum of filter oc's weights over taps (ky, kx) for kx in [kx0, kx1)) */
static int32_t outside_taps(const trt_conv2d_params *p, int32_t oc, int32_t ky,
                            int32_t kx0, int32_t kx1) {
    const int32_t fc = p->filter.c;
    const int8_t *w = p->weights +
                      (((int64_t)oc * p->filter.h + ky) * p->filter.w + kx0) * fc;
    int32_t sum = 0;
    for (int32_t i = 0; i < (kx1 - kx0) * fc; ++i) {
        sum += w[i];
    }
    return -p->input_offset * sum;
}

static void run_direct(const trt_ukernels *uk, const trt_conv2d_params *p,
                       const int8_t *input_n, int8_t *output_n) {
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int32_t kh = p->filter.h, kw = p->filter.w, fc = p->filter.c;
    const int32_t out_w = p->output.w, out_c = p->output.c;
    const int32_t per_group = out_c / groups_of(p);
    const int32_t k = patch_len(p);
    const int contiguous = fc == in_c && p->dilation_w == 1;
    int32_t acc[TRT_CONV_CHUNK];
    for (int32_t oy = 0; oy < p->output.h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx_lo = TRT_MIN(ix0 < 0 ? -ix0 : 0, kw);
            const int32_t kx_hi = TRT_MAX(kx_lo, TRT_MIN(kw, in_w - ix0));
            int8_t *out = output_n + ((int64_t)oy * out_w + ox) * out_c;
            /* Chunks stay inside one group, so a chunk can be shorter than
             * TRT_CONV_CHUNK: the next one starts where this one ended. */
            for (int32_t oc0 = 0, oc1 = 0; oc0 < out_c; oc0 = oc1) {
                const int32_t g = oc0 / per_group;
                oc1 = TRT_MIN(TRT_MIN(oc0 + TRT_CONV_CHUNK, out_c),
                              (g + 1) * per_group);
                const int32_t n = oc1 - oc0;
                for (int32_t j = 0; j < n; ++j) {
                    acc[j] = 0;
                }
                for (int32_t ky = 0; ky < kh; ++ky) {
                    const int32_t iy = iy0 + ky * p->dilation_h;
                    if (iy < 0 || iy >= in_h) {
                        for (int32_t j = 0; j < n; ++j) {
                            acc[j] += outside_taps(p, oc0 + j, ky, 0, kw);
                        }
                        continue;
                    }
                    const int8_t *row = input_n + (int64_t)iy * in_w * in_c;
                    if (contiguous) {
                        if (kx_hi > kx_lo) {
                            dot_rows(uk, row + (int64_t)(ix0 + kx_lo) * in_c, 0,
                                     p->weights + (ky * kw + kx_lo) * fc, k,
                                     (kx_hi - kx_lo) * fc, oc0, oc1, acc, 0, 1);
                        }
                        /* (a row inside the image has no outside taps) */
                        for (int32_t j = 0; (kx_lo > 0 || kx_hi < kw) && j < n; ++j) {
                            acc[j] += outside_taps(p, oc0 + j, ky, 0, kx_lo) +
                                      outside_taps(p, oc0 + j, ky, kx_hi, kw);
                        }
                        continue;
                    }
                    for (int32_t kx = 0; kx < kw; ++kx) {
                        const int32_t ix = ix0 + kx * p->dilation_w;
                        if (ix < 0 || ix >= in_w) {
                            for (int32_t j = 0; j < n; ++j) {
                                acc[j] += outside_taps(p, oc0 + j, ky, kx, kx + 1);
                            }
                        } else {
                            dot_rows(uk, row + (int64_t)ix * in_c + (int64_t)g * fc,
                                     0, p->weights + (ky * kw + kx) * fc, k, fc,
                                     oc0, oc1, acc, 0, 1);
                        }
                    }
                }
                uk->requantize(acc, p->bias_folded + oc0, p->multiplier + oc0,
                               p->shift + oc0, n, p->output_offset, p->act_min,
                               p->act_max, out + oc0);
            }
        }
    }
}


/* The im2col path with its patches on the stack: only for tables that
 * declare a deep stack (hosts), so a plan that saved the arena its patches
 * keeps the fast path.  Not inlined, so the buffer exists only while used. */
static TRT_NOINLINE void run_gemm_stack(const trt_ukernels *uk,
                                        const trt_conv2d_params *p,
                                        const int8_t *input_n,
                                        int8_t *output_n) {
    int8_t patches[TRT_STACK_PATCH_BYTES];
    run_gemm(uk, p, input_n, output_n, patches);
}

void trt_conv2d_s8(const trt_conv2d_params *p, const int8_t *input,
                   int8_t *output, void *scratch) {
    const trt_ukernels *uk = trt_ukernels_active();
    const int32_t in_plane = p->input.h * p->input.w * p->input.c;
    const int32_t out_plane = p->output.h * p->output.w * p->output.c;
    for (int32_t n = 0; n < p->input.n; ++n) {
        const int8_t *input_n = input + (int64_t)n * in_plane;
        int8_t *output_n = output + (int64_t)n * out_plane;
#ifdef TRT_HAVE_GEMM_K4
        if (k4_ready(uk, p)) {
            /* (its rows are on the stack: any plan's choice runs it) */
            run_k4_range(uk, p, input_n, output_n, 0, p->output.h * p->output.w);
            continue;
        }
#endif
        if (p->im2col || is_pointwise(p)) {
            run_im2col(uk, p, input_n, output_n, (int8_t *)scratch);
        } else if (uk->stack_patches && groups_of(p) == 1 &&
                   (int64_t)TRT_GEMM_MR * patch_len(p) <= TRT_STACK_PATCH_BYTES) {
            run_gemm_stack(uk, p, input_n, output_n);
        } else {
            run_direct(uk, p, input_n, output_n);
        }
    }
}

/* A thread's share: output pixels [begin, end) counted over batch and space,
 * through the GEMM path with patches on this thread's stack. */
static TRT_NOINLINE void pixels_stack(const trt_ukernels *uk,
                                      const trt_conv2d_params *p,
                                      const int8_t *input, int8_t *output,
                                      int32_t begin, int32_t end) {
    int8_t patches[TRT_STACK_PATCH_BYTES];
    const int32_t pixels = p->output.h * p->output.w;
    const int32_t in_plane = p->input.h * p->input.w * p->input.c;
    for (int32_t n = begin / pixels; n * pixels < end; ++n) {
        const int32_t b = TRT_MAX(begin - n * pixels, 0);
        const int32_t e = TRT_MIN(end - n * pixels, pixels);
        run_gemm_range(uk, p, input + (int64_t)n * in_plane,
                       output + (int64_t)n * pixels * p->output.c, patches, b, e);
    }
}

int32_t trt_conv2d_s8_pixels(const trt_conv2d_params *p, const int8_t *input,
                             int8_t *output, int32_t begin, int32_t end) {
    const trt_ukernels *uk = trt_ukernels_active();
#ifdef TRT_HAVE_GEMM_K4
    if (k4_ready(uk, p)) {
        const int32_t pixels = p->output.h * p->output.w;
        const int32_t in_plane = p->input.h * p->input.w * p->input.c;
        for (int32_t n = begin / pixels; n * pixels < end; ++n) {
            run_k4_range(uk, p, input + (int64_t)n * in_plane,
                         output + (int64_t)n * pixels * p->output.c,
                         TRT_MAX(begin - n * pixels, 0),
                         TRT_MIN(end - n * pixels, pixels));
        }
        return 1;
    }
#endif
    if (!uk->stack_patches || groups_of(p) != 1 ||
        (int64_t)TRT_GEMM_MR * patch_len(p) > TRT_STACK_PATCH_BYTES) {
        return 0;
    }
    pixels_stack(uk, p, input, output, begin, end);
    return 1;
}
