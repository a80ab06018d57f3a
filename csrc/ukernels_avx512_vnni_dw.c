/*
 * DEPTHWISE_CONV_2D on AVX-512 VNNI (the dw_k4 entry of the AVX-512 VNNI
 * table; depth multiplier 1, kernels up to 4 x 4).
 *
 * A depthwise output has only KH * KW products, none of them across
 * channels, so the GEMM's use of vpdpbusd does not apply.  Here a lane is
 * one channel and its four bytes are the four taps kx = 0..3 of one kernel
 * row: one vpdpbusd adds a whole kernel row of sixteen channels, and an
 * output pixel of a 3x3 layer is three of them.  The inputs come in that
 * layout from a "tap row": for input row iy and every output column ox, the
 * bytes x[iy][ox * stride_w - pad_left + kx * dilation_w][c] of each
 * channel c side by side, plus 128 (vpdpbusd's first operand is unsigned;
 * the planner folds -128 * sum(w) into bias_k4 as for the GEMM).  Building
 * one is a 4-way byte interleave of four 16-byte loads per output column and
 * channel block.  Tap rows live in a ring of KH slots on the stack keyed by
 * input row, so with dilation 1 each input row is interleaved once and
 * reused by the KH output rows that read it; rows and columns outside the
 * image read the input zero point (its tap contributes w * (zp - zp) = 0,
 * as the folded bias assumes).
 *
 * In place (input and output one buffer, dilation 1 down the rows): every
 * input row an output row reads is in the ring before that output row is
 * written, so the same code runs in place as long as the bytes written up
 * to output row oy end before the first input row the ring does not hold
 * yet, (oy * stride_h - pad_top + KH) * W_in * C, for every oy
 * (in_place_safe): stride 1 with pad_top < KH and equal shapes, and the
 * usual stride-2 layers, whose output rows are half as long.  Other layers
 * take the channel-block path.
 *
 * The requantisation is trt_avx512_rescale.h's rq16f (the bias is the
 * accumulator's start): bit-identical to the portable table.
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,bmi2")))
#define TRT_VNNI_INLINE TRT_VNNI static inline __attribute__((always_inline))
#include "trt_avx512_rescale.h"

enum {
    TRT_DW_K4_ROWS = 4,          /* most kernel rows (ring slots)             */
    TRT_DW_K4_RING = 48 * 1024,  /* bytes of tap rows on the stack            */
    TRT_DW_K4_LINE = 16 * 1024   /* bytes of one zero-point padded input row */
};

/* One tap row: input row `row` (NULL: outside the image) for every
 * `step`-th output column, `blocks` 16-channel blocks each, 64 bytes per
 * (column, block). */
TRT_VNNI static void tap_row(const trt_depthwise_conv2d_params *p, const int8_t *row,
                             int32_t blocks, int32_t step, int8_t *line, uint8_t *dst) {
    const int32_t c = p->input.c, out_w = p->output.w;
    const int32_t sx = p->stride_w, dx = p->dilation_w * c;
    const int8_t zp = (int8_t)(-p->input_offset);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    if (!row) {
        memset(dst, (uint8_t)(zp ^ 0x80), (size_t)out_w * (size_t)blocks * 64);
        return;
    }
    /* the input row with zero points from column x_lo = -pad_left on: the
     * taps never need a bounds test (16 bytes of slack past the end for the
     * last block's full-width loads) */
    const int32_t x_lo = -p->pad_left;
    const int32_t x_hi = (out_w - 1) * sx + x_lo + 3 * p->dilation_w;
    const int32_t in_lo = TRT_MAX(x_lo, 0), in_hi = TRT_MIN(x_hi, p->input.w - 1);
    const int32_t bytes = (x_hi - x_lo + 1) * c + 16;
    if (in_lo > in_hi) {
        memset(line, zp, (size_t)bytes);
    } else {
        /* zero points only where the window leaves the image (a whole-line
         * memset cost a seventh of a small layer's time) */
        const int64_t head = (int64_t)(in_lo - x_lo) * c, body = (int64_t)(in_hi - in_lo + 1) * c;
        memset(line, zp, (size_t)head);
        memcpy(line + head, row + (int64_t)in_lo * c, (size_t)body);
        memset(line + head + body, zp, (size_t)(bytes - head - body));
    }
    /* The four taps' 16 bytes side by side in one vector (lane kx = tap kx,
     * dword j of a lane = its channels 4j..4j+3); a dword permutation makes
     * lane j hold dword j of every tap (a 4x4 transpose across lanes), and a
     * byte shuffle inside each lane puts each channel's four taps together
     * (a 4x4 byte transpose): channels 0-3, 4-7, 8-11, 12-15 of the result
     * are four taps each. */
    const __m512i across = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const __m512i within = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    for (int32_t ox = 0; ox < out_w; ox += step) {
        const int8_t *src = line + (int64_t)ox * sx * c;
        uint8_t *out = dst + (int64_t)ox * blocks * 64;
        for (int32_t b = 0; b < blocks; ++b, src += 16, out += 64) {
            __m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)src));
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(src + dx)), 1);
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(src + 2 * dx)), 2);
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(src + 3 * dx)), 3);
            q = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(across, q), within);
            _mm512_store_si512(out, _mm512_xor_si512(q, flip));
        }
    }
}

/* Whether the ring lets this layer run in place (see the header comment). */
static int in_place_safe(const trt_depthwise_conv2d_params *p) {
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

/* Whether dw_k4 takes this layer (run in place if `in_place`). */
static int takes(const trt_depthwise_conv2d_params *p, int in_place) {
    const int32_t c = p->input.c, out_w = p->output.w, kh = p->filter.h;
    const int64_t slot = (int64_t)out_w * ((c + 15) / 16) * 64;
    const int32_t x_span = (out_w - 1) * p->stride_w + 3 * p->dilation_w + 1;
    return p->packed_k4 && p->depth_multiplier == 1 && p->filter.w <= 4 && kh <= TRT_DW_K4_ROWS &&
           slot * kh <= TRT_DW_K4_RING && (int64_t)x_span * c + 16 <= TRT_DW_K4_LINE &&
           (!in_place || in_place_safe(p));
}

/* The table's dw_k4_in_place. */
int32_t trt_avx512_vnni_dw_k4_in_place(const trt_depthwise_conv2d_params *p) {
    return takes(p, 1);
}

/* The table's dw_k4 (ukernels_avx512_vnni.c puts it there). */
TRT_VNNI int32_t trt_avx512_vnni_dw_k4(const trt_depthwise_conv2d_params *p, const int8_t *input,
                                       int8_t *output, int32_t begin, int32_t end) {
    const int32_t c = p->input.c, out_w = p->output.w, kh = p->filter.h;
    const int32_t blocks = (c + 15) / 16;
    const int64_t slot = (int64_t)out_w * blocks * 64;
    if (!takes(p, p->in_place)) {
        return 0;
    }
    /* Eight channels, stride and dilation 1 across: a tap row's 16-byte
     * load at column ox holds pixel ox + kx and, in its upper half, pixel
     * ox + 1 + kx, which is pixel ox + 1's tap.  So lanes 8-15 compute the
     * next output pixel: every second column only, with the weights and
     * rescale of channels 0-7 copied to lanes 8-15, sixteen outputs a vector
     * instead of eight.  (From a row start only: tap rows hold every second
     * column.) */
    const int pair = c == 8 && p->stride_w == 1 && p->dilation_w == 1 && begin % out_w == 0;
    const int32_t step = pair ? 2 : 1;
    uint8_t ring[TRT_DW_K4_RING] __attribute__((aligned(64)));
    int8_t line[TRT_DW_K4_LINE];
    int32_t held[TRT_DW_K4_ROWS]; /* the input row in each slot */
    for (int32_t s = 0; s < kh; ++s) {
        held[s] = INT32_MIN;
    }
    /* Slots keyed by input row modulo KH are distinct within an output row
     * when the rows are consecutive (dilation 1); otherwise slot = ky. */
    const int keyed = p->dilation_h == 1;
    const int32_t first = begin / out_w, last = (end - 1) / out_w;
    for (int32_t oy = first; oy <= last; ++oy) {
        const uint8_t *taps[TRT_DW_K4_ROWS];
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
            const int32_t s = keyed ? ((iy % kh) + kh) % kh : ky;
            if (held[s] != iy) {
                const int8_t *row = iy >= 0 && iy < p->input.h
                                        ? input + (int64_t)iy * p->input.w * c
                                        : 0;
                tap_row(p, row, blocks, step, line, ring + s * slot);
                held[s] = iy;
            }
            taps[ky] = ring + s * slot;
        }
        const int32_t ox0 = oy == first ? begin - oy * out_w : 0;
        const int32_t ox1 = oy == last ? end - oy * out_w : out_w;
        int8_t *out_row = output + (int64_t)oy * out_w * c;
        for (int32_t b = 0; b < blocks; ++b) {
            const int32_t c0 = 16 * b;
            const __mmask16 keep = (__mmask16)(c - c0 >= 16 ? 0xFFFF : (1u << (c - c0)) - 1);
            __m512i w[TRT_DW_K4_ROWS];
            for (int32_t ky = 0; ky < TRT_DW_K4_ROWS; ++ky) {
                w[ky] = ky < kh ? _mm512_loadu_si512(p->packed_k4 + ((int64_t)ky * blocks * 16 + c0) * 4)
                                : _mm512_setzero_si512();
            }
            trt_rq16f rq = rq16f_block(p->rescale_k4, p->multiplier, p->shift, b, p->output_offset,
                                       p->act_min, p->act_max);
            __m512i bias = _mm512_loadu_si512(p->bias_k4 + c0);
            const int64_t at = (int64_t)b * 64;
            if (pair) {
                for (int32_t ky = 0; ky < kh; ++ky) {
                    w[ky] = low_twice(w[ky]);
                }
                bias = low_twice(bias);
                rq16f_low_twice(&rq);
                for (int32_t ox = ox0; ox < ox1; ox += 2) {
                    const int64_t q = (int64_t)ox * 64;
                    __m512i acc = bias;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(taps[ky] + q), w[ky]);
                    }
                    rq16f_store(rq16f_apply(acc, &rq), &rq, out_row + (int64_t)ox * 8,
                                ox + 1 < ox1 ? 0xFFFF : 0x00FF);
                }
                continue;
            }
            if (kh == 3) {
                /* (the common 3x3 case with the row loop unrolled) */
                for (int32_t ox = ox0; ox < ox1; ++ox) {
                    const int64_t q = (int64_t)ox * blocks * 64 + at;
                    __m512i acc = _mm512_dpbusd_epi32(bias, _mm512_load_si512(taps[0] + q), w[0]);
                    acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(taps[1] + q), w[1]);
                    acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(taps[2] + q), w[2]);
                    rq16f_store(rq16f_apply(acc, &rq), &rq, out_row + (int64_t)ox * c + c0, keep);
                }
                continue;
            }
            for (int32_t ox = ox0; ox < ox1; ++ox) {
                const int64_t q = (int64_t)ox * blocks * 64 + at;
                __m512i acc = bias;
                for (int32_t ky = 0; ky < kh; ++ky) {
                    acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(taps[ky] + q), w[ky]);
                }
                rq16f_store(rq16f_apply(acc, &rq), &rq, out_row + (int64_t)ox * c + c0, keep);
            }
        }
    }
    return 1;
}

#endif
