/*
 * x86-64 AVX-VNNI micro-kernels: the VEX-encoded, 256-bit vpdpbusd of CPUs
 * that have it without AVX-512 (Intel's Alder Lake and later client cores;
 * AMD's Zen 5 has both).  Selected at run time over the AVX2 table.
 *
 * Same scheme as ukernels_avx512_vnni.c (its header comment has the
 * arithmetic): rows fed as x + 128, bias_k4 = bias_folded - 128 * sum(w),
 * weights in the packed_k4 layout, where a 16-channel block's 64 bytes per
 * k step are two vectors here (channels 0-7, then 8-15).  A tile is 6 rows
 * x 16 channels (12 rows x 8 for a last block of at most eight), its
 * requantisation terms made once per block.  The requantisation is the AVX2
 * table's (trt_avx2_rescale.h).
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_AVX2 __attribute__((target("avx2")))
#include "trt_avx2_rescale.h"

#define TRT_AVXVNNI __attribute__((target("avx2,avxvnni")))
#define TRT_AVXVNNI_INLINE TRT_AVXVNNI static inline __attribute__((always_inline))

TRT_AVXVNNI_INLINE void row_u8(uint8_t *dst, const int8_t *const *seg, int32_t segs,
                               int32_t len) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int32_t o = 0;
    for (int32_t s = 0; s < segs; ++s, o += len) {
        const int8_t *src = seg[s];
        int32_t i = 0;
        for (; i + 32 <= len; i += 32) {
            _mm256_storeu_si256((__m256i *)(dst + o + i),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), flip));
        }
        for (; i + 8 <= len; i += 8) {
            uint64_t v;
            memcpy(&v, src + i, 8);
            v ^= 0x8080808080808080ULL;
            memcpy(dst + o + i, &v, 8);
        }
        for (; i < len; ++i) {
            dst[o + i] = (uint8_t)(src[i] ^ 0x80);
        }
    }
    for (; o & 3; ++o) {
        dst[o] = 0; /* the padding k of the packed weights are 0 too */
    }
}

TRT_AVXVNNI static void rows_u8(uint8_t *dst, const int8_t *const *seg, int32_t segs,
                             int32_t len, int32_t rows) {
    for (int32_t r = 0; r < rows; ++r) {
        row_u8(dst + (int64_t)r * TRT_K4_STRIDE, seg + (int64_t)r * segs, segs, len);
    }
}

TRT_AVXVNNI_INLINE int32_t load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* A 16-channel block's output terms, made once for all the rows of a
 * block (per row they cost as much as a short k loop): the one-floor
 * rescale from the plan's rescale_k4 table where there is one, else the
 * AVX2 table's, or the double one.  The accumulators start from the bias. */
typedef struct {
    trt_rq8f f0, f1;
    trt_rq8 c0, c1;
    __m256i offset, lo, hi;
    int fast;
} block_out;

TRT_AVXVNNI_INLINE block_out block_terms(const trt_gemm_k4 *g, int32_t b) {
    const int32_t oc = b * 16;
    block_out o;
    o.offset = _mm256_set1_epi32(g->out_offset);
    o.lo = _mm256_set1_epi32(g->act_min);
    o.hi = _mm256_set1_epi32(g->act_max);
    o.fast = !g->scale && g->rescale;
    if (o.fast) {
        o.f0 = rq8f_load(g->rescale, b, 0);
        o.f1 = rq8f_load(g->rescale, b, 1);
    } else if (!g->scale) {
        const __m256i zero = _mm256_setzero_si256();
        o.c0 = rq8_make(zero, _mm256_loadu_si256((const __m256i *)(g->mult + oc)),
                        _mm256_loadu_si256((const __m256i *)(g->shift + oc)));
        o.c1 = rq8_make(zero, _mm256_loadu_si256((const __m256i *)(g->mult + oc + 8)),
                        _mm256_loadu_si256((const __m256i *)(g->shift + oc + 8)));
    }
    return o;
}

/* Sixteen accumulators (channels oc.. of one row, bias included),
 * rescaled, plus the zero point, clamped, the first `count` stored as bytes
 * (a1 unused when count <= 8). */
TRT_AVXVNNI_INLINE void finish16(__m256i a0, __m256i a1, const trt_gemm_k4 *g, const block_out *o,
                                 int32_t oc, int8_t *out, int32_t count) {
    if (o->fast) {
        a0 = rq8f_apply(a0, &o->f0);
        a1 = count <= 8 ? a0 : rq8f_apply(a1, &o->f1);
    } else {
        if (g->scale) {
            a0 = rescale_f64x8(a0, g->scale + oc);
            a1 = count <= 8 ? a0 : rescale_f64x8(a1, g->scale + oc + 8);
        } else {
            a0 = rq8_apply(a0, &o->c0);
            a1 = count <= 8 ? a0 : rq8_apply(a1, &o->c1);
        }
        a0 = _mm256_add_epi32(a0, o->offset);
        a1 = _mm256_add_epi32(a1, o->offset);
    }
    a0 = _mm256_min_epi32(_mm256_max_epi32(a0, o->lo), o->hi);
    a1 = _mm256_min_epi32(_mm256_max_epi32(a1, o->lo), o->hi);
    /* packs works within 128-bit lanes: fix the order with a permute */
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xD8);
    store_first(_mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)),
                out, count);
}

enum { TRT_TILE_MAX = 12 };

/* R rows from r0 (past m, the last row again, not stored) by one 16-channel
 * block b, or by its first eight channels only (both = 0: a layer's last
 * block with at most eight channels left).  R and both are constants at
 * each call: 6 rows x 2 halves or 12 rows x 1 are twelve accumulators, with
 * the weights and one broadcast fifteen of the sixteen registers. */
TRT_AVXVNNI_INLINE void tile(const trt_gemm_k4 *g, const uint8_t *const *x, int32_t m, int32_t r0,
                             int32_t b, int8_t *const *out, const block_out *o, const int R,
                             const int both) {
    const int32_t k4 = (g->k + 3) / 4;
    const int32_t seg4 = g->segs == 1 ? k4 : g->k / g->segs / 4;
    const int8_t *wb = g->w + (int64_t)b * k4 * 64;
    const int32_t rows = TRT_MIN(R, m - r0);
    const uint8_t *xr[TRT_TILE_MAX];
    __m256i lo[TRT_TILE_MAX], hi[TRT_TILE_MAX];
    const __m256i bias_lo = _mm256_loadu_si256((const __m256i *)(g->bias + b * 16));
    const __m256i bias_hi = _mm256_loadu_si256((const __m256i *)(g->bias + b * 16 + 8));
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
        xr[r] = x[r0 + TRT_MIN(r, rows - 1)];
        lo[r] = bias_lo;
        hi[r] = bias_hi;
    }
    for (int32_t s = 0; s < g->segs; ++s, wb += (int64_t)seg4 * 64) {
        const int64_t at = (int64_t)s * g->seg_stride;
        for (int32_t i = 0; i < seg4; ++i) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + (int64_t)i * 64));
            const __m256i w1 = both ? _mm256_loadu_si256((const __m256i *)(wb + (int64_t)i * 64 + 32)) : w0;
#pragma GCC unroll 12
            for (int r = 0; r < R; ++r) {
                const __m256i xv = _mm256_set1_epi32(load4(xr[r] + at + 4 * i));
                lo[r] = _mm256_dpbusd_avx_epi32(lo[r], xv, w0);
                if (both) {
                    hi[r] = _mm256_dpbusd_avx_epi32(hi[r], xv, w1);
                }
            }
        }
    }
    const int32_t oc = b * 16, count = TRT_MIN(16, g->n - oc);
    for (int r = 0; r < rows; ++r) {
        finish16(lo[r], hi[r], g, o, oc, out[r0 + r] + oc, count);
    }
}

/* One row, one block: the k steps over four pairs of accumulators so the
 * multiply-adds do not wait on each other. */
TRT_AVXVNNI static void row_1(const trt_gemm_k4 *g, const uint8_t *x, int32_t b,
                              int8_t *out) {
    const int32_t k4 = (g->k + 3) / 4;
    const int32_t seg4 = g->segs == 1 ? k4 : g->k / g->segs / 4;
    const int8_t *wb = g->w + (int64_t)b * k4 * 64;
    __m256i lo[4], hi[4];
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
        lo[p] = _mm256_setzero_si256();
        hi[p] = lo[p];
    }
    lo[0] = _mm256_loadu_si256((const __m256i *)(g->bias + b * 16));
    hi[0] = _mm256_loadu_si256((const __m256i *)(g->bias + b * 16 + 8));
    for (int32_t s = 0; s < g->segs; ++s, wb += (int64_t)seg4 * 64) {
        const uint8_t *xs = x + (int64_t)s * g->seg_stride;
        int32_t i = 0;
        for (; i + 4 <= seg4; i += 4) {
#pragma GCC unroll 4
            for (int p = 0; p < 4; ++p) {
                const __m256i xv = _mm256_set1_epi32(load4(xs + 4 * (i + p)));
                const int8_t *wi = wb + (int64_t)(i + p) * 64;
                lo[p] = _mm256_dpbusd_avx_epi32(lo[p], xv, _mm256_loadu_si256((const __m256i *)wi));
                hi[p] = _mm256_dpbusd_avx_epi32(hi[p], xv, _mm256_loadu_si256((const __m256i *)(wi + 32)));
            }
        }
        for (; i < seg4; ++i) {
            const __m256i xv = _mm256_set1_epi32(load4(xs + 4 * i));
            const int8_t *wi = wb + (int64_t)i * 64;
            lo[0] = _mm256_dpbusd_avx_epi32(lo[0], xv, _mm256_loadu_si256((const __m256i *)wi));
            hi[0] = _mm256_dpbusd_avx_epi32(hi[0], xv, _mm256_loadu_si256((const __m256i *)(wi + 32)));
        }
    }
    const __m256i a0 = _mm256_add_epi32(_mm256_add_epi32(lo[0], lo[1]), _mm256_add_epi32(lo[2], lo[3]));
    const __m256i a1 = _mm256_add_epi32(_mm256_add_epi32(hi[0], hi[1]), _mm256_add_epi32(hi[2], hi[3]));
    const block_out o = block_terms(g, b);
    finish16(a0, a1, g, &o, b * 16, out + b * 16, TRT_MIN(16, g->n - b * 16));
}

TRT_AVXVNNI static void gemm_k4(const trt_gemm_k4 *g, const uint8_t *const *x, int32_t m,
                                int8_t *const *out) {
    const int32_t blocks = (g->n + 15) / 16;
    for (int32_t b = 0; b < blocks; ++b) {
        if (m == 1) {
            row_1(g, x[0], b, out[0]);
            continue;
        }
        const block_out o = block_terms(g, b);
        /* (a call has up to TRT_K4_MR = 16 rows: 6 + 6 + 4 or 12 + 4, no
         * row computed twice) */
        const int both = g->n - b * 16 > 8;
        for (int32_t r0 = 0; r0 < m;) {
            const int32_t rem = m - r0;
            if (both && rem > 4) {
                tile(g, x, m, r0, b, out, &o, 6, 1);
                r0 += 6;
            } else if (both) {
                tile(g, x, m, r0, b, out, &o, 4, 1);
                r0 += 4;
            } else if (rem > 8) {
                tile(g, x, m, r0, b, out, &o, 12, 0);
                r0 += 12;
            } else if (rem > 4) {
                tile(g, x, m, r0, b, out, &o, 8, 0);
                r0 += 8;
            } else {
                tile(g, x, m, r0, b, out, &o, 4, 0);
                r0 += 4;
            }
        }
    }
}

/* widen3_u8: eight pixels at a time.  Their 24 bytes are six dwords (a
 * masked load: nothing read past them); a dword permutation gives each
 * 128-bit lane the three dwords of its four pixels, a byte shuffle within
 * the lane spreads them to four bytes each (the fourth a copy, never read
 * with a non-zero weight), and the XOR makes them unsigned. */
TRT_AVXVNNI static void widen3_u8(uint8_t *dst, const int8_t *src, int32_t n) {
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 2, 3, 4, 5, 5);
    const __m256i spread = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11));
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i raw = _mm256_maskload_epi32((const int *)(src + 3 * i), six);
        const __m256i v = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(raw, lanes), spread);
        _mm256_storeu_si256((__m256i *)(dst + 4 * i), _mm256_xor_si256(v, flip));
    }
    trt_widen3_u8_tail(dst, src, i, n);
}

int32_t trt_avx_vnni_dw_k4(const trt_depthwise_conv2d_params *p, const int8_t *input,
                           int8_t *output, int32_t begin, int32_t end);
int32_t trt_avx_vnni_dw_k4_in_place(const trt_depthwise_conv2d_params *p);

void trt_ukernels_avx_vnni_over(trt_ukernels *t) {
    t->isa = TRT_ISA_AVX_VNNI;
    t->dw_k4 = trt_avx_vnni_dw_k4; /* ukernels_avx_vnni_dw.c */
    t->dw_k4_in_place = trt_avx_vnni_dw_k4_in_place;
    t->rows_u8 = rows_u8;
    t->gemm_k4 = gemm_k4;
    t->widen3_u8 = widen3_u8;
}

#endif
