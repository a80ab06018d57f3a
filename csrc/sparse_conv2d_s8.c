/*
 * CONV_2D (one group) with pruned weights (trt_sparse_matrix), int8.
 *
 * The arithmetic is conv2d_s8.c's: bias_folded carries the zero-point term
 * (bias + (-zp_in) * sum of the kept weights, which is the dense sum), and
 * taps outside the image read the input zero point, so that each output is
 * bias_folded plus a plain dot product of the kept weights with the
 * receptive field; the per-channel requantisation is the dense one.
 *
 *  - pixel by pixel (every ISA; the MCU path, no scratch): a pointwise
 *    convolution hands each pixel's channels to spmv; any other walks each
 *    row's kept blocks, which are sorted by input index and so visit the
 *    taps (ky, kx) in order, reading every tap in place -- the input zero
 *    point for a tap outside the image -- without gathering a patch.  Rows
 *    go in chunks of TRT_SPARSE_CONV_CHUNK channels of stack accumulators.
 *  - tiles (p->tile pixels, a table with spmm_tile): the tile's pixels
 *    are transposed into int16 rows, one per input, in scratch; spmm_tile
 *    writes every output channel of the tile (pixels side by side) into a
 *    staging area that transpose_out turns back into NHWC.
 */
#include <string.h>

#include "sparse_ukernels.h"

enum { TRT_SPARSE_CONV_CHUNK = 64 }; /* a multiple of every block size */

static int is_pointwise(const trt_sparse_conv2d_params *p) {
    return p->filter.h == 1 && p->filter.w == 1 && p->stride_h == 1 &&
           p->stride_w == 1 && p->pad_top == 0 && p->pad_left == 0 &&
           p->input.h == p->output.h && p->input.w == p->output.w;
}

static int32_t patch_len(const trt_sparse_conv2d_params *p) {
    return p->filter.h * p->filter.w * p->filter.c;
}

static int32_t padded_rows(const trt_sparse_conv2d_params *p) {
    const int32_t bs = p->weights.block;
    return (p->output.c + bs - 1) / bs * bs;
}

/* Tile scratch: the int16 transposed tile, the staging outputs and, unless
 * pointwise (whose pixels are read in place), TILE gathered patches. */
static size_t tile_bytes(const trt_sparse_conv2d_params *p) {
    const size_t k = (size_t)patch_len(p), tile = (size_t)p->tile;
    return 2 * tile * k + tile * (size_t)padded_rows(p) +
           (is_pointwise(p) ? 0 : tile * k);
}

size_t trt_sparse_conv2d_s8_scratch_size(const trt_sparse_conv2d_params *p) {
    return p->tile ? tile_bytes(p) : 0;
}

/* The receptive field of output pixel (oy, ox), taps outside the image
 * filled with the input zero point (they then add w * 0 after folding). */
static void gather_patch(const trt_sparse_conv2d_params *p,
                         const int8_t *input_n, int32_t oy, int32_t ox,
                         int8_t *dst) {
    const int32_t in_h = p->input.h, in_w = p->input.w, in_c = p->input.c;
    const int8_t pad = (int8_t)(-p->input_offset);
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    for (int32_t ky = 0; ky < p->filter.h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        if (iy < 0 || iy >= in_h) {
            memset(dst, pad, (size_t)(p->filter.w * in_c));
            dst += p->filter.w * in_c;
            continue;
        }
        const int8_t *row = input_n + (int64_t)iy * in_w * in_c;
        if (p->dilation_w == 1) {
            /* Taps [kx_lo, kx_hi) are inside the image and adjacent: one
             * copy (conv2d_s8.c does the same). */
            const int32_t kx_lo = TRT_MIN(ix0 < 0 ? -ix0 : 0, p->filter.w);
            const int32_t kx_hi = TRT_MAX(kx_lo, TRT_MIN(p->filter.w, in_w - ix0));
            memset(dst, pad, (size_t)(kx_lo * in_c));
            memcpy(dst + kx_lo * in_c, row + (int64_t)(ix0 + kx_lo) * in_c,
                   (size_t)((kx_hi - kx_lo) * in_c));
            memset(dst + kx_hi * in_c, pad,
                   (size_t)((p->filter.w - kx_hi) * in_c));
            dst += p->filter.w * in_c;
            continue;
        }
        for (int32_t kx = 0; kx < p->filter.w; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= in_w) {
                memset(dst, pad, (size_t)in_c);
            } else {
                memcpy(dst, row + (int64_t)ix * in_c, (size_t)in_c);
            }
            dst += in_c;
        }
    }
}

/* acc[(s - s0) * bs + r] for strips [s0, s1): rows times the receptive field
 * of the output pixel whose top-left tap is (iy0, ix0), read in place. */
static void walk_taps(const trt_sparse_conv2d_params *p, const int8_t *input_n,
                      int32_t iy0, int32_t ix0, int32_t s0, int32_t s1,
                      int32_t *acc) {
    const trt_sparse_matrix *m = &p->weights;
    const int32_t bs = m->block, in_c = p->input.c;
    const int32_t zp = -p->input_offset;
    for (int32_t s = s0; s < s1; ++s) {
        int32_t *a = acc + (s - s0) * bs;
        for (int32_t r = 0; r < bs; ++r) {
            a[r] = 0;
        }
        /* The current tap: inputs [lo, lo + in_c) of the row, at `base`
         * (indexed by input number) when inside the image, else NULL. */
        int32_t lo = -in_c, ky = 0, kx = -1;
        const int8_t *base = 0;
        for (int32_t j = m->strip_ptr[s]; j < m->strip_ptr[s + 1]; ++j) {
            const int32_t k = m->index[j];
            if (k >= lo + in_c) {
                do {
                    lo += in_c;
                    if (++kx == p->filter.w) {
                        kx = 0;
                        ++ky;
                    }
                } while (k >= lo + in_c);
                const int32_t iy = iy0 + ky * p->dilation_h;
                const int32_t ix = ix0 + kx * p->dilation_w;
                base = iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w
                           ? input_n + ((int64_t)iy * p->input.w + ix) * in_c - lo
                           : 0;
            }
            const int32_t xv = base ? base[k] : zp;
            for (int32_t r = 0; r < bs; ++r) {
                a[r] += xv * trt_sparse_value(m, j, r);
            }
        }
    }
}

static void run_pixels(const trt_ukernels *uk, const trt_sparse_ukernels *sk,
                       const trt_sparse_conv2d_params *p,
                       const int8_t *input_n, int8_t *output_n) {
    const trt_sparse_matrix *m = &p->weights;
    const int32_t bs = m->block;
    const int32_t out_c = p->output.c, out_w = p->output.w;
    const int32_t strips = (out_c + bs - 1) / bs;
    const int32_t per_chunk = TRT_SPARSE_CONV_CHUNK / bs;
    const int32_t pixels = p->output.h * out_w;
    const int pointwise = is_pointwise(p);
    int32_t acc[TRT_SPARSE_CONV_CHUNK];
    for (int32_t px = 0; px < pixels; ++px) {
        const int32_t iy0 = (px / out_w) * p->stride_h - p->pad_top;
        const int32_t ix0 = (px % out_w) * p->stride_w - p->pad_left;
        int8_t *out = output_n + (int64_t)px * out_c;
        for (int32_t s0 = 0; s0 < strips; s0 += per_chunk) {
            const int32_t s1 = TRT_MIN(strips, s0 + per_chunk);
            const int32_t c0 = s0 * bs;
            const int32_t n = TRT_MIN(out_c, s1 * bs) - c0;
            if (pointwise) {
                sk->spmv(m, s0, s1, input_n + (int64_t)px * p->input.c, acc);
            } else {
                walk_taps(p, input_n, iy0, ix0, s0, s1, acc);
            }
            uk->requantize(acc, p->bias_folded + c0, p->multiplier + c0,
                           p->shift + c0, n, p->output_offset, p->act_min,
                           p->act_max, out + c0);
        }
    }
}

static void run_tiles(const trt_sparse_ukernels *sk,
                      const trt_sparse_conv2d_params *p,
                      const int8_t *input_n, int8_t *output_n,
                      uint8_t *scratch) {
    const int32_t k = patch_len(p);
    const int32_t out_c = p->output.c, out_w = p->output.w;
    const int32_t pixels = p->output.h * out_w;
    const int pointwise = is_pointwise(p);
    int16_t *xt = (int16_t *)(void *)scratch;
    const int32_t tile = p->tile;
    int8_t *staging = (int8_t *)(scratch + 2 * (size_t)tile * (size_t)k);
    int8_t *patches = staging + (size_t)tile * (size_t)padded_rows(p);
    const int8_t *rows[TRT_SPARSE_TILE_MAX];
    for (int32_t px0 = 0; px0 < pixels; px0 += tile) {
        const int32_t n = TRT_MIN(tile, pixels - px0);
        for (int32_t t = 0; t < tile; ++t) {
            /* Pixels past the end repeat the last one; their outputs are
             * dropped by transpose_out. */
            const int32_t px = px0 + TRT_MIN(t, n - 1);
            if (pointwise) {
                rows[t] = input_n + (int64_t)px * k;
            } else {
                int8_t *dst = patches + (int64_t)t * k;
                if (t < n) {
                    gather_patch(p, input_n, px / out_w, px % out_w, dst);
                }
                rows[t] = t < n ? dst : patches + (int64_t)(n - 1) * k;
            }
        }
        sk->transpose_widen(rows, tile, k, xt);
        sk->spmm_tile(&p->weights, xt, tile, p->bias_folded, p->multiplier,
                      p->shift, p->output_offset, p->act_min, p->act_max,
                      staging);
        sk->transpose_out(staging, tile, out_c, n,
                          output_n + (int64_t)px0 * out_c, out_c);
    }
}

void trt_sparse_conv2d_s8(const trt_sparse_conv2d_params *p,
                          const int8_t *input, int8_t *output, void *scratch) {
    const trt_ukernels *uk = trt_ukernels_active();
    const trt_sparse_ukernels *sk = trt_sparse_ukernels_active();
    const int32_t in_plane = p->input.h * p->input.w * p->input.c;
    const int32_t out_plane = p->output.h * p->output.w * p->output.c;
    for (int32_t b = 0; b < p->input.n; ++b) {
        const int8_t *input_n = input + (int64_t)b * in_plane;
        int8_t *output_n = output + (int64_t)b * out_plane;
        if ((p->tile == 16 || p->tile == 32) && sk->spmm_tile) {
            run_tiles(sk, p, input_n, output_n, (uint8_t *)scratch);
        } else {
            run_pixels(uk, sk, p, input_n, output_n);
        }
    }
}
