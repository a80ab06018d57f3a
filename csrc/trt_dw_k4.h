/*
 * trt_dw_k4.h - what the VNNI depthwise kernels (the dw_k4 entries of the
 * AVX-512 VNNI and AVX-VNNI tables) share: which layers they take, when one
 * runs in place, and the ring of tap rows (private; x86-64 only).
 *
 * A lane is one channel and its four bytes are the four taps kx = 0..3 of
 * one kernel row, so one vpdpbusd adds a whole kernel row of a vector's
 * channels.  The inputs come in that layout from a "tap row": for input row
 * iy and every output column ox, the bytes x[iy][ox * stride_w - pad_left +
 * kx * dilation_w][c] of each channel side by side, plus 128 (vpdpbusd's
 * first operand is unsigned; the planner folds -128 * sum(w) into bias_k4 as
 * for the GEMM): 64 bytes per column and 16-channel block, channel j of the
 * block at bytes 4j..4j+3 (the packed_k4 order).  Tap rows live in a ring of
 * KH slots keyed by input row, so with dilation 1 each input row is
 * interleaved once and reused by the KH output rows that read it; rows and
 * columns outside the image read the input zero point (its tap contributes
 * w * (zp - zp) = 0, as the folded bias assumes).  Each table interleaves
 * with its own instructions (the trt_dw_k4_interleave it passes in).
 *
 * In place (input and output one buffer, dilation 1 down the rows): every
 * input row an output row reads is in the ring before that output row is
 * written, so the same code runs in place as long as the bytes written up
 * to output row oy end before the first input row the ring does not hold
 * yet, (oy * stride_h - pad_top + KH) * W_in * C, for every oy
 * (trt_dw_k4_in_place_safe): stride 1 with pad_top < KH and equal shapes,
 * and the usual stride-2 layers, whose output rows are half as long.  Other
 * layers take the channel-block path.
 */
#ifndef TRT_DW_K4_H
#define TRT_DW_K4_H

#include <string.h>

#include "trt_ukernels.h"

enum {
    TRT_DW_K4_ROWS = 4,          /* most kernel rows (ring slots)             */
    TRT_DW_K4_RING = 48 * 1024,  /* bytes of tap rows on the stack            */
    TRT_DW_K4_LINE = 16 * 1024   /* bytes of one zero-point padded input row */
};

/* Whether the ring lets this layer run in place (see the header comment). */
static inline int trt_dw_k4_in_place_safe(const trt_depthwise_conv2d_params *p) {
    if (p->dilation_h != 1) {
        return 0; /* rows would be read again after their slot is reused */
    }
    const int64_t out_row = (int64_t)p->output.w * p->output.c;
    const int64_t in_row = (int64_t)p->input.w * p->input.c;
    for (int32_t oy = 0; oy < p->output.h; ++oy) {
        const int64_t next_unread = (int64_t)oy * p->stride_h - p->pad_top + p->filter.h;
        if (next_unread < p->input.h && (oy + 1) * out_row > TRT_MAX(next_unread, 0) * in_row) {
            return 0;
        }
    }
    return 1;
}

/* Whether a dw_k4 kernel takes this layer (run in place if `in_place`). */
static inline int trt_dw_k4_takes(const trt_depthwise_conv2d_params *p, int in_place) {
    const int32_t c = p->input.c, out_w = p->output.w, kh = p->filter.h;
    const int64_t slot = (int64_t)out_w * ((c + 15) / 16) * 64;
    const int32_t x_span = (out_w - 1) * p->stride_w + 3 * p->dilation_w + 1;
    return p->packed_k4 && p->depth_multiplier == 1 && p->filter.w <= 4 && kh <= TRT_DW_K4_ROWS &&
           slot * kh <= TRT_DW_K4_RING && (int64_t)x_span * c + 16 <= TRT_DW_K4_LINE &&
           (!in_place || trt_dw_k4_in_place_safe(p));
}

/* Input row `row` into `line` with zero points around it, from column
 * -pad_left to the last column a tap reads, plus 16 bytes of slack: the
 * interleave never needs a bounds test.  Returns the line's first byte. */
static inline const int8_t *trt_dw_k4_line(const trt_depthwise_conv2d_params *p, const int8_t *row,
                                           int8_t *line) {
    const int32_t c = p->input.c;
    const int8_t zp = (int8_t)(-p->input_offset);
    const int32_t x_lo = -p->pad_left;
    const int32_t x_hi = (p->output.w - 1) * p->stride_w + x_lo + 3 * p->dilation_w;
    const int32_t in_lo = TRT_MAX(x_lo, 0), in_hi = TRT_MIN(x_hi, p->input.w - 1);
    const int32_t bytes = (x_hi - x_lo + 1) * c + 16;
    if (in_lo > in_hi) {
        memset(line, zp, (size_t)bytes);
        return line;
    }
    /* zero points only where the window leaves the image (a whole-line
     * memset cost a seventh of a small layer's time) */
    const int64_t head = (int64_t)(in_lo - x_lo) * c, body = (int64_t)(in_hi - in_lo + 1) * c;
    memset(line, zp, (size_t)head);
    memcpy(line + head, row + (int64_t)in_lo * c, (size_t)body);
    memset(line + head + body, zp, (size_t)(bytes - head - body));
    return line;
}

/* One tap row from a line (trt_dw_k4_line): for every step-th output
 * column ox and 16-channel block b, the block's bytes at line + ox *
 * stride_w * C + 16 b + kx * dilation_w * C for kx = 0..3 -> 64 bytes at
 * dst + (ox * blocks + b) * 64, each channel's four taps together, plus 128.
 * One call a row: the column loop stays inside the table's own code. */
typedef void (*trt_dw_k4_interleave)(const trt_depthwise_conv2d_params *p, const int8_t *line,
                                     int32_t blocks, int32_t step, uint8_t *dst);

/* The ring: KH slots of one tap row each, and which input row each holds. */
typedef struct {
    uint8_t *slots;
    int64_t slot_bytes;
    int32_t held[TRT_DW_K4_ROWS];
    int32_t blocks, step; /* 16-channel blocks; every step-th column */
    int8_t *line;
} trt_dw_k4_ring;

static inline void trt_dw_k4_ring_init(trt_dw_k4_ring *r, const trt_depthwise_conv2d_params *p,
                                       uint8_t *slots, int8_t *line, int32_t step) {
    r->slots = slots;
    r->line = line;
    r->blocks = (p->input.c + 15) / 16;
    r->slot_bytes = (int64_t)p->output.w * r->blocks * 64;
    r->step = step;
    for (int32_t s = 0; s < TRT_DW_K4_ROWS; ++s) {
        r->held[s] = INT32_MIN;
    }
}

/* taps[ky] = the tap row of output row oy's kernel row ky, interleaved
 * (with `mix`) into its slot unless the slot holds it already. */
static inline void trt_dw_k4_rows(trt_dw_k4_ring *r, const trt_depthwise_conv2d_params *p,
                                  const int8_t *input, int32_t oy, trt_dw_k4_interleave mix,
                                  const uint8_t **taps) {
    const int32_t kh = p->filter.h, c = p->input.c;
    /* Slots keyed by input row modulo KH are distinct within an output row
     * when the rows are consecutive (dilation 1); otherwise slot = ky. */
    const int keyed = p->dilation_h == 1;
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
        const int32_t s = keyed ? ((iy % kh) + kh) % kh : ky;
        uint8_t *dst = r->slots + s * r->slot_bytes;
        taps[ky] = dst;
        if (r->held[s] == iy) {
            continue;
        }
        r->held[s] = iy;
        if (iy < 0 || iy >= p->input.h) {
            const int8_t zp = (int8_t)(-p->input_offset);
            memset(dst, (uint8_t)(zp ^ 0x80), (size_t)r->slot_bytes);
            continue;
        }
        mix(p, trt_dw_k4_line(p, input + (int64_t)iy * p->input.w * c, r->line), r->blocks, r->step, dst);
    }
}

/* One output row: pixels [ox0, ox1) of every channel block from the tap
 * rows of its kernel rows, to out_row (the table's arithmetic).  With
 * `pair`, tap rows hold every second column and each column holds two
 * output pixels (see trt_dw_k4_run). */
typedef void (*trt_dw_k4_row)(const trt_depthwise_conv2d_params *p, const uint8_t *const *taps,
                              int32_t ox0, int32_t ox1, int8_t *out_row, int pair);

/* A table's dw_k4 entry: output pixels [begin, end) of one image through
 * the ring, a row at a time; 0 (nothing written) for a layer it does not
 * take.  Eight channels with stride and dilation 1 across: a tap row's
 * 16-byte load at column ox holds pixel ox + kx and, in its upper half,
 * pixel ox + 1 + kx, which is pixel ox + 1's tap, so the upper eight
 * channels' lanes compute the next output pixel with the lower eight's
 * weights: tap rows of every second column, two pixels a column (from a row
 * start only). */
static inline __attribute__((always_inline)) int32_t trt_dw_k4_run(
    const trt_depthwise_conv2d_params *p, const int8_t *input, int8_t *output, int32_t begin,
    int32_t end, trt_dw_k4_interleave mix, trt_dw_k4_row row) {
    if (!trt_dw_k4_takes(p, p->in_place)) {
        return 0;
    }
    const int32_t out_w = p->output.w;
    const int pair = p->input.c == 8 && p->stride_w == 1 && p->dilation_w == 1 && begin % out_w == 0;
    uint8_t slots[TRT_DW_K4_RING] __attribute__((aligned(64)));
    int8_t line[TRT_DW_K4_LINE];
    trt_dw_k4_ring ring;
    trt_dw_k4_ring_init(&ring, p, slots, line, pair ? 2 : 1);
    const int32_t first = begin / out_w, last = (end - 1) / out_w;
    for (int32_t oy = first; oy <= last; ++oy) {
        const uint8_t *taps[TRT_DW_K4_ROWS];
        trt_dw_k4_rows(&ring, p, input, oy, mix, taps);
        row(p, taps, oy == first ? begin - oy * out_w : 0, oy == last ? end - oy * out_w : out_w,
            output + (int64_t)oy * out_w * p->input.c, pair);
    }
    return 1;
}

#endif /* TRT_DW_K4_H */
