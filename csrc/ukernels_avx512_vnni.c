/*
 * x86-64 AVX-512 VNNI micro-kernels (selected at run time when the CPU has
 * AVX-512 F, BW, VL and VNNI).
 *
 * vpdpbusd adds four products of an unsigned byte and a signed byte into
 * each int32 lane: sixteen lanes, 64 multiply-adds per instruction, twice
 * what vpmaddwd does on the same register width and with no widening.  The
 * inputs are signed, so the rows are fed as x + 128 (an XOR of the top bit,
 * done once per row by rows_u8) and the planner folds -128 * sum(w) into
 * the bias (bias_k4): sum (x + 128) w - 128 sum w = sum x w exactly, in
 * int32 without overflow for any row this library accepts (K <= 4096).
 *
 * Weights are packed at plan time as [16-channel block][k / 4][16][4], so
 * one 64-byte load gives four k of sixteen output channels, and each row's
 * four input bytes are broadcast to all lanes: the accumulators come out in
 * the per-channel layout of the requantisation, with no horizontal sums.
 * Tiles keep sixteen accumulators in registers: 16 rows x 16 channels,
 * 8 x 32 or 4 x 64, whichever the layer's width allows.  A tile of a
 * stride-1 3x3 convolution's consecutive pixels loads each input pixel once
 * for the three taps that read it (sliding3_madds).
 *
 * The accumulators start from the bias.  The requantisation is gemmlowp's
 * two roundings folded into one 64-bit floor with the zero point
 * (trt_avx512_rescale.h, rq16f; its constants made at plan time, tinyrt.h
 * rescale_k4), and FULLY_CONNECTED's double rescale on eight doubles per
 * vector, so every result is bit-identical to the portable table.
 *
 * The table is the AVX2 one with the entries defined here over it
 * (trt_ukernels_avx512_vnni_over): the VNNI GEMM and its rows, the
 * element-wise ADD on sixteen lanes, and the depthwise convolution of
 * ukernels_avx512_vnni_dw.c.
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,bmi2")))
#define TRT_VNNI_INLINE TRT_VNNI static inline __attribute__((always_inline))
#include "trt_avx512_rescale.h"

/* The low n (0..64) bits set. */
TRT_VNNI_INLINE __mmask64 low_bits64(int32_t n) {
    return n >= 64 ? ~0ULL : (1ULL << n) - 1;
}

TRT_VNNI_INLINE void row_u8(uint8_t *dst, const int8_t *const *seg, int32_t segs,
                            int32_t len) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    int32_t o = 0;
    for (int32_t s = 0; s < segs; ++s, o += len) {
        const int8_t *src = seg[s];
        int32_t i = 0;
        for (; i + 64 <= len; i += 64) {
            _mm512_storeu_si512(dst + o + i,
                                _mm512_xor_si512(_mm512_loadu_si512(src + i), flip));
        }
        /* whole 32 / 16 bytes without masks (a masked byte store costs
         * several cycles), the rest masked */
        if (i + 32 <= len) {
            _mm256_storeu_si256((__m256i *)(dst + o + i),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)),
                                                 _mm512_castsi512_si256(flip)));
            i += 32;
        }
        if (i + 16 <= len) {
            _mm_storeu_si128((__m128i *)(dst + o + i),
                             _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)),
                                           _mm512_castsi512_si128(flip)));
            i += 16;
        }
        if (i < len) {
            /* masked: bytes past the segment are neither read nor written */
            const __mmask64 keep = low_bits64(len - i);
            _mm512_mask_storeu_epi8(dst + o + i, keep,
                                    _mm512_xor_si512(_mm512_maskz_loadu_epi8(keep, src + i), flip));
        }
    }
    for (; o & 3; ++o) {
        dst[o] = 0; /* the padding k of the packed weights are 0 too */
    }
}

TRT_VNNI static void rows_u8(uint8_t *dst, const int8_t *const *seg, int32_t segs,
                             int32_t len, int32_t rows) {
    for (int32_t r = 0; r < rows; ++r) {
        row_u8(dst + (int64_t)r * TRT_K4_STRIDE, seg + (int64_t)r * segs, segs, len);
    }
}

TRT_VNNI_INLINE int32_t load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The requantisation of the GEMM's 16-channel block b. */
TRT_VNNI_INLINE trt_rq16f k4_rescale(const trt_gemm_k4 *g, int32_t b) {
    return rq16f_block(g->rescale, g->mult, g->shift, b, g->out_offset, g->act_min, g->act_max);
}

/* Whether rows xs bytes apart are consecutive output pixels of a stride-1
 * convolution with three taps a kernel row (trt_gemm_k4.tap), which
 * sliding3_madds computes. */
TRT_VNNI_INLINE int sliding3_fits(const trt_gemm_k4 *g, int64_t xs) {
    return g->tap && xs == g->tap && g->tap % 4 == 0 && g->k == g->segs * 3 * g->tap;
}

/* The multiply-adds of mr such rows (mr + 2 <= 20) into acc[r * nb + j],
 * blocks j < nb of weights from wb (bstride apart): input pixel t of a
 * kernel row is tap kx of row t - kx, so one broadcast of its four bytes
 * feeds up to three rows, against the three taps' weights held in
 * registers.  mr + 2 broadcasts and 3 nb weight loads per 3 mr nb
 * multiply-adds, where loading every row's every tap takes 3 mr (16 rows
 * of one block: 18 and 3 loads per 48 vpdpbusd, not 51).  With one
 * broadcast per multiply-add the loads, not vpdpbusd, bound the loop:
 * resnet's 16-channel 3x3 layers ran at ~55% of the vpdpbusd rate on Ice
 * Lake, ~76% with this.  mr and nb are constants in every caller. */
TRT_VNNI_INLINE void sliding3_madds(const trt_gemm_k4 *g, const uint8_t *x0, int64_t xs, const int8_t *wb,
                                    int64_t bstride, __m512i *acc, const int mr, const int nb) {
    const int32_t c4n = (int32_t)(xs / 4); /* k steps of one tap */
    const int64_t o1 = xs, o2 = 2 * xs, o3 = 3 * xs;
    for (int32_t s = 0; s < g->segs; ++s, wb += (int64_t)3 * c4n * 64) {
        const uint8_t *p = x0 + (int64_t)s * g->seg_stride;
        for (int32_t c = 0; c < c4n; ++c, p += 4) {
            __m512i w[3][4];
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; ++kx) {
#pragma GCC unroll 4
                for (int j = 0; j < nb; ++j) {
                    w[kx][j] = _mm512_loadu_si512(wb + j * bstride + (int64_t)(kx * c4n + c) * 64);
                }
            }
            const uint8_t *base[5] = {p, p + 4 * xs, p + 8 * xs, p + 12 * xs, p + 16 * xs};
#pragma GCC unroll 18
            for (int t = 0; t < mr + 2; ++t) {
                const uint8_t *at = base[t / 4] + (t % 4 == 0 ? 0 : t % 4 == 1 ? o1 : t % 4 == 2 ? o2 : o3);
                const __m512i v = _mm512_set1_epi32(load4(at));
#pragma GCC unroll 3
                for (int kx = 0; kx < 3; ++kx) {
                    if (t - kx >= 0 && t - kx < mr) {
#pragma GCC unroll 4
                        for (int j = 0; j < nb; ++j) {
                            acc[(t - kx) * nb + j] = _mm512_dpbusd_epi32(acc[(t - kx) * nb + j], v, w[kx][j]);
                        }
                    }
                }
            }
        }
    }
}

/* The tiles: one function per shape, from a template included once per
 * (MR rows, NB 16-channel blocks); TRT_K4_ROW 1 is the single-row kernel. */
#define TRT_K4_NAME_(mr, nb) tile_##mr##x##nb
#define TRT_K4_NAME(mr, nb) TRT_K4_NAME_(mr, nb)
/* The single-row tiles (batch-1 FULLY_CONNECTED) read each weight once,
 * from L2 when the layer is larger than L1 (ad01's 640 x 128): they
 * prefetch four k steps (256 bytes) ahead in each block's stream, which
 * the hardware prefetchers start too late in a 2-10 KB stream (measured on
 * Ice Lake: ad01's 640 -> 128 layer 1.1-1.2x faster, its 128 -> 640 one up
 * to 1.08x, the whole model 1.04x; 128 bytes about the same, 1024 only
 * helped the first). */
#define TRT_K4_PF 256
#define TRT_K4_ROW 0
#define TRT_K4_MR_ 2
#define TRT_K4_NB 1
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 4
#define TRT_K4_NB 1
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 8
#define TRT_K4_NB 1
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 16
#define TRT_K4_NB 1
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 2
#define TRT_K4_NB 2
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 4
#define TRT_K4_NB 2
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 8
#define TRT_K4_NB 2
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 2
#define TRT_K4_NB 4
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 4
#define TRT_K4_NB 4
#include "ukernels_avx512_vnni_tile.h"
#undef TRT_K4_ROW
#define TRT_K4_ROW 1
#define TRT_K4_MR_ 1
#define TRT_K4_NB 1
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 1
#define TRT_K4_NB 2
#include "ukernels_avx512_vnni_tile.h"
#define TRT_K4_MR_ 1
#define TRT_K4_NB 4
#include "ukernels_avx512_vnni_tile.h"
#undef TRT_K4_ROW

typedef void (*trt_k4_tile_fn)(const trt_gemm_k4 *, const uint8_t *const *, int32_t,
                               int32_t, int32_t, int8_t *const *);

/* The multiply-adds of sixteen rows at a constant distance xs (the pixels
 * of one output row in an unsigned image, pointwise pixels, FULLY_CONNECTED's
 * row buffer) into acc, one 16-channel block of weights from wb.  The
 * general tiles keep sixteen row pointers, which do not fit the general
 * registers beside the loop's own (the compiler parks them in vector
 * registers and moves them back every k step); here four bases and three
 * offsets address all sixteen rows.  pair (a constant): at most eight
 * channels, lanes 0-7 take row 2j and lanes 8-15 row 2j + 1 (a broadcast,
 * then a masked broadcast over the upper half) with the weights of
 * channels 0-7 in both halves: acc[0..7] only, half the multiply-adds. */
TRT_VNNI_INLINE void strided_madds(const trt_gemm_k4 *g, const uint8_t *x0, int64_t xs, const int8_t *wb,
                                   __m512i *acc, const int pair) {
    const int32_t k4 = (g->k + 3) / 4;
    const int32_t seg4 = g->segs == 1 ? k4 : g->k / g->segs / 4;
    const int64_t o1 = xs, o2 = 2 * xs, o3 = 3 * xs;
    for (int32_t s = 0; s < g->segs; ++s) {
        const uint8_t *p0 = x0 + (int64_t)s * g->seg_stride;
        const uint8_t *p1 = p0 + 4 * xs, *p2 = p0 + 8 * xs, *p3 = p0 + 12 * xs;
        for (int32_t i = 0; i < seg4; ++i, p0 += 4, p1 += 4, p2 += 4, p3 += 4, wb += 64) {
            const uint8_t *base[4] = {p0, p1, p2, p3};
            if (pair) {
                const __m512i w = low_twice(_mm512_loadu_si512(wb));
#pragma GCC unroll 4
                for (int q = 0; q < 4; ++q) { /* rows 4q, 4q + 1 and 4q + 2, 4q + 3 */
                    const __m512i v0 = _mm512_mask_set1_epi32(_mm512_set1_epi32(load4(base[q])), 0xFF00,
                                                              load4(base[q] + o1));
                    const __m512i v1 = _mm512_mask_set1_epi32(_mm512_set1_epi32(load4(base[q] + o2)), 0xFF00,
                                                              load4(base[q] + o3));
                    acc[2 * q] = _mm512_dpbusd_epi32(acc[2 * q], v0, w);
                    acc[2 * q + 1] = _mm512_dpbusd_epi32(acc[2 * q + 1], v1, w);
                }
            } else {
                const __m512i w = _mm512_loadu_si512(wb);
#pragma GCC unroll 4
                for (int q = 0; q < 4; ++q) {
                    acc[4 * q] = _mm512_dpbusd_epi32(acc[4 * q], _mm512_set1_epi32(load4(base[q])), w);
                    acc[4 * q + 1] =
                        _mm512_dpbusd_epi32(acc[4 * q + 1], _mm512_set1_epi32(load4(base[q] + o1)), w);
                    acc[4 * q + 2] =
                        _mm512_dpbusd_epi32(acc[4 * q + 2], _mm512_set1_epi32(load4(base[q] + o2)), w);
                    acc[4 * q + 3] =
                        _mm512_dpbusd_epi32(acc[4 * q + 3], _mm512_set1_epi32(load4(base[q] + o3)), w);
                }
            }
        }
    }
}

/* Sixteen strided rows (strided_madds), one 16-channel block. */
TRT_VNNI static void tile_s16x1(const trt_gemm_k4 *g, const uint8_t *x0, int64_t xs, int32_t b,
                                int8_t *const *out) {
    const __m512i bias = _mm512_loadu_si512(g->bias + b * 16);
    __m512i acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
        acc[r] = bias;
    }
    const int8_t *wb = g->w + (int64_t)b * ((g->k + 3) / 4) * 64;
    if (sliding3_fits(g, xs)) {
        sliding3_madds(g, x0, xs, wb, 0, acc, 16, 1);
    } else {
        strided_madds(g, x0, xs, wb, acc, 0);
    }
    const int32_t oc = b * 16;
    const __mmask16 keep = (__mmask16)(g->n - oc >= 16 ? 0xFFFF : (1u << (g->n - oc)) - 1);
    if (g->scale) {
        const __m512i offset = _mm512_set1_epi32(g->out_offset);
        const __m512i lo = _mm512_set1_epi32(g->act_min);
        const __m512i hi = _mm512_set1_epi32(g->act_max);
#pragma GCC unroll 16
        for (int r = 0; r < 16; ++r) {
            store16(rescale_f64x16(acc[r], g->scale + oc), offset, lo, hi, out[r] + oc, keep);
        }
        return;
    }
    const trt_rq16f c = k4_rescale(g, b);
    int adjacent = keep == 0xFFFF;
    for (int r = 1; r < 16 && adjacent; ++r) {
        adjacent = out[r] == out[r - 1] + 16;
    }
    if (adjacent) { /* (sixteen channels: a pointwise or 3x3 layer's pixels) */
#pragma GCC unroll 4
        for (int r = 0; r < 16; r += 4) {
            rq16f_store4(rq16f_apply(acc[r], &c), rq16f_apply(acc[r + 1], &c), rq16f_apply(acc[r + 2], &c),
                         rq16f_apply(acc[r + 3], &c), &c, out[r] + oc);
        }
        return;
    }
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
        rq16f_store(rq16f_apply(acc[r], &c), &c, out[r] + oc, keep);
    }
}

/* Sixteen strided rows of at most eight channels, two rows a vector
 * (strided_madds with pair): half the multiply-adds and half the
 * requantisations of tile_s16x1, whose upper eight lanes would be padding.
 * The bias and rescale of channels 0-7 are copied to the upper lanes. */
TRT_VNNI static void tile_sp16(const trt_gemm_k4 *g, const uint8_t *x0, int64_t xs, int8_t *const *out) {
    const __m512i bias = low_twice(_mm512_loadu_si512(g->bias));
    __m512i acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
        acc[j] = bias;
    }
    strided_madds(g, x0, xs, g->w, acc, 1);
    trt_rq16f c = k4_rescale(g, 0);
    rq16f_low_twice(&c);
    const int32_t n = g->n;
    int adjacent = n == 8;
    for (int r = 1; r < 16 && adjacent; ++r) {
        adjacent = out[r] == out[r - 1] + 8;
    }
    if (adjacent) { /* 16 pixels of 8 channels: 128 adjacent bytes */
        rq16f_store4(rq16f_apply(acc[0], &c), rq16f_apply(acc[1], &c), rq16f_apply(acc[2], &c),
                     rq16f_apply(acc[3], &c), &c, out[0]);
        rq16f_store4(rq16f_apply(acc[4], &c), rq16f_apply(acc[5], &c), rq16f_apply(acc[6], &c),
                     rq16f_apply(acc[7], &c), &c, out[8]);
        return;
    }
    const __mmask16 keep = (__mmask16)((1u << n) - 1);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
        const __m512i z = rq16f_apply(acc[j], &c);
        rq16f_store(z, &c, out[2 * j], keep);
        rq16f_store(_mm512_shuffle_i64x2(z, z, 0xEE), &c, out[2 * j + 1], keep);
    }
}

TRT_VNNI static void gemm_k4(const trt_gemm_k4 *g, const uint8_t *const *x, int32_t m,
                             int8_t *const *out) {
    const int32_t blocks = (g->n + 15) / 16;
    for (int32_t b = 0; b < blocks;) {
        /* the widest tile the remaining channels fill: 4, 2 or 1 blocks */
        const int32_t nb = blocks - b >= 4 ? 4 : blocks - b >= 2 ? 2 : 1;
        if (m == 1) {
            (nb == 4 ? tile_1x4 : nb == 2 ? tile_1x2 : tile_1x1)(g, x, m, 0, b, out);
            b += nb;
            continue;
        }
        /* rows per tile: 16 accumulators; a short last tile takes the
         * smallest shape that covers it */
        const int32_t mr = 16 / nb;
        for (int32_t r0 = 0; r0 < m; r0 += mr) {
            const int32_t left = m - r0;
            trt_k4_tile_fn fn;
            if (nb == 4) {
                fn = left <= 2 ? tile_2x4 : tile_4x4;
            } else if (nb == 2) {
                fn = left <= 2 ? tile_2x2 : left <= 4 ? tile_4x2 : tile_8x2;
            } else {
                int64_t xs;
                if (left >= 16 && trt_rows_one_stride(x + r0, 16, &xs)) {
                    if (g->n <= 8 && !g->scale) {
                        tile_sp16(g, x[r0], xs, out + r0);
                    } else {
                        tile_s16x1(g, x[r0], xs, b, out + r0);
                    }
                    continue;
                }
                fn = left <= 2 ? tile_2x1 : left <= 4 ? tile_4x1 : left <= 8 ? tile_8x1 : tile_16x1;
            }
            fn(g, x, m, r0, b, out);
        }
        b += nb;
    }
}

/* One input of ADD on sixteen lanes: trt_add_split (trt_ukernels.h) in
 * vectors. */
typedef struct {
    __m512i mh, ml, c0, neg_at, corr;
    __m128i d;
    int linear;
} trt_add_in;

TRT_VNNI static int add_in_make(int32_t offset, int32_t left, int32_t mult, int32_t shift,
                                trt_add_in *in, int32_t *sum_const) {
    trt_add_split a;
    if (!trt_add_split_make(offset, left, mult, shift, &a, sum_const)) {
        return 0;
    }
    in->mh = _mm512_set1_epi32(a.mh);
    in->ml = _mm512_set1_epi32(a.ml);
    in->c0 = _mm512_set1_epi32(a.c0);
    in->neg_at = _mm512_set1_epi32(a.neg_at);
    in->corr = _mm512_set1_epi32(a.corr);
    in->d = _mm_cvtsi32_si128(a.d);
    in->linear = a.linear;
    return 1;
}

/* The input's rescaled value minus what it put in the sum's constant. */
TRT_VNNI_INLINE __m512i add_in_apply(__m512i x, const trt_add_in *in, const int linear) {
    if (linear) {
        return _mm512_mullo_epi32(x, in->mh);
    }
    __m512i b = _mm512_add_epi32(_mm512_mullo_epi32(x, in->ml), in->c0);
    b = _mm512_mask_sub_epi32(b, _mm512_cmplt_epi32_mask(x, in->neg_at), b, in->corr);
    return _mm512_add_epi32(_mm512_mullo_epi32(x, in->mh), _mm512_sra_epi32(b, in->d));
}

/* n elements of the fast ADD; lin1 / lin2 constant in each caller. */
TRT_VNNI_INLINE void add_run(const trt_add_in *in1, const trt_add_in *in2, const int lin1,
                             const int lin2, __m512i konst, const trt_rq16f *co, const int8_t *x,
                             const int8_t *y, int32_t n, int8_t *out) {
    int32_t i = 0;
    __m512i z[4];
    for (; i + 64 <= n; i += 64) {
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
            const __m512i a =
                add_in_apply(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(x + i + 16 * q))), in1, lin1);
            const __m512i b =
                add_in_apply(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(y + i + 16 * q))), in2, lin2);
            z[q] = rq16f_apply(_mm512_add_epi32(_mm512_add_epi32(a, b), konst), co);
        }
        rq16f_store4(z[0], z[1], z[2], z[3], co, out + i);
    }
    for (; i + 16 <= n; i += 16) {
        const __m512i a = add_in_apply(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(x + i))), in1, lin1);
        const __m512i b = add_in_apply(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(y + i))), in2, lin2);
        rq16f_store(rq16f_apply(_mm512_add_epi32(_mm512_add_epi32(a, b), konst), co), co, out + i, 0xFFFF);
    }
    if (i < n) {
        const __mmask16 keep = (__mmask16)((1u << (n - i)) - 1);
        const __m512i a = add_in_apply(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, x + i)), in1, lin1);
        const __m512i b = add_in_apply(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, y + i)), in2, lin2);
        rq16f_store(rq16f_apply(_mm512_add_epi32(_mm512_add_epi32(a, b), konst), co), co, out + i, keep);
    }
}

/* ADD on sixteen lanes: TFLite's AddFunc (trt_add_one).  The usual int8
 * case takes add_in_apply for the inputs (one of them usually linear) and
 * rq16f for the output; other shifts the three full gemmlowp rescales. */
TRT_VNNI static void add(const trt_binary_params *p, const int8_t *x,
                         const int8_t *y, int32_t n, int8_t *out) {
    trt_add_in in1, in2;
    int32_t k = 0;
    if (add_in_make(p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift, &in1, &k) &&
        add_in_make(p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift, &in2, &k)) {
        int32_t mo[16], so[16];
        for (int j = 0; j < 16; ++j) {
            mo[j] = p->output_multiplier;
            so[j] = p->output_shift;
        }
        const trt_rq16f co = rq16f_load(mo, so, p->output_offset, p->act_min, p->act_max);
        const __m512i konst = _mm512_set1_epi32(k);
        if (in1.linear) {
            if (in2.linear) {
                add_run(&in1, &in2, 1, 1, konst, &co, x, y, n, out);
            } else {
                add_run(&in1, &in2, 1, 0, konst, &co, x, y, n, out);
            }
        } else if (in2.linear) {
            add_run(&in1, &in2, 0, 1, konst, &co, x, y, n, out);
        } else {
            add_run(&in1, &in2, 0, 0, konst, &co, x, y, n, out);
        }
        return;
    }
    /* other shifts: the three rescales in full (rq16f with a zero point of
     * 0 for the inputs) */
    const __m512i off1 = _mm512_set1_epi32(p->input1_offset);
    const __m512i off2 = _mm512_set1_epi32(p->input2_offset);
    const __m128i left = _mm_cvtsi32_si128(p->left_shift);
    int32_t m1[16], s1[16], m2[16], s2[16], mo[16], so[16];
    for (int j = 0; j < 16; ++j) {
        m1[j] = p->input1_multiplier;
        s1[j] = p->input1_shift;
        m2[j] = p->input2_multiplier;
        s2[j] = p->input2_shift;
        mo[j] = p->output_multiplier;
        so[j] = p->output_shift;
    }
    const trt_rq16f c1 = rq16f_load(m1, s1, 0, -128, 127), c2 = rq16f_load(m2, s2, 0, -128, 127);
    const trt_rq16f co = rq16f_load(mo, so, p->output_offset, p->act_min, p->act_max);
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 keep = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        __m512i a = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, x + i));
        __m512i b = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, y + i));
        a = _mm512_sll_epi32(_mm512_add_epi32(a, off1), left);
        b = _mm512_sll_epi32(_mm512_add_epi32(b, off2), left);
        const __m512i sum = _mm512_add_epi32(rq16f_apply(a, &c1), rq16f_apply(b, &c2));
        rq16f_store(rq16f_apply(sum, &co), &co, out + i, keep);
    }
}

/* widen3_u8: sixteen pixels at a time.  Their 48 bytes are twelve dwords;
 * a dword permutation gives each 128-bit lane the three dwords of its four
 * pixels, a byte shuffle within the lane spreads them to four bytes each
 * (the fourth a copy, never read with a non-zero weight), and the XOR makes
 * them unsigned. */
TRT_VNNI static void widen3_u8(uint8_t *dst, const int8_t *src, int32_t n) {
    const __m512i lanes = _mm512_set_epi32(11, 11, 10, 9, 8, 8, 7, 6, 5, 5, 4, 3, 2, 2, 1, 0);
    const __m512i spread = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11));
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i raw = _mm512_maskz_loadu_epi32(0x0FFF, src + 3 * i);
        const __m512i v = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(lanes, raw), spread);
        _mm512_storeu_si512(dst + 4 * i, _mm512_xor_si512(v, flip));
    }
    trt_widen3_u8_tail(dst, src, i, n);
}

/* ukernels_avx512_vnni_dw.c */
int32_t trt_avx512_vnni_dw_k4(const trt_depthwise_conv2d_params *p, const int8_t *input,
                              int8_t *output, int32_t begin, int32_t end);
int32_t trt_avx512_vnni_dw_k4_in_place(const trt_depthwise_conv2d_params *p);

void trt_ukernels_avx512_vnni_over(trt_ukernels *t) {
    t->isa = TRT_ISA_AVX512_VNNI;
    t->dw_k4 = trt_avx512_vnni_dw_k4;
    t->dw_k4_in_place = trt_avx512_vnni_dw_k4_in_place;
    t->add = add;
    t->rows_u8 = rows_u8;
    t->gemm_k4 = gemm_k4;
    t->widen3_u8 = widen3_u8;
}

#endif
