/*
 * x86-64 AVX2 sparse micro-kernels (selected with the dense AVX2 table).
 *
 * Products are exact: int8 values sign-extended to int16 and multiplied in
 * pairs by vpmaddwd, which sums two exact int16 products into int32 lanes.
 * A pair of blocks (strip counts are even) is one vpmaddwd operand: the
 * weights of one row for blocks j and j + 1 sit side by side in `values`.
 *
 *  - spmv, block 8 (4): the eight (four) rows of a strip are the lanes; the
 *    two inputs of a block pair are broadcast.  Block 1 has nothing to put
 *    in lanes without a gather, which costs more than the dense kernel
 *    saves on this class of core, so it stays scalar (the planner's cost
 *    model knows).
 *  - spmm_tile: lanes are the pixels of a tile.  Inputs a and b of a pair
 *    are two int16 rows of the transposed tile; unpacking them interleaves
 *    (a[t], b[t]), and one vpmaddwd with the broadcast weight pair adds both
 *    products for eight pixels.  Any pattern of zeros runs at vector speed.
 *  - the requantisation is gemmlowp's, as in ukernels_avx2.c, with the
 *    per-channel constants broadcast (one channel per row of the tile).
 *
 * Built with a per-function target attribute; nothing on other architectures.
 */
#include "sparse_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_AVX2 __attribute__((target("avx2")))

/* Inputs x[a] and x[b] as one broadcast int16 pair (a low, b high): two
 * byte loads into one vector, one widening, one broadcast. */
TRT_AVX2 static inline __m256i pair_of(const int8_t *x, int32_t a, int32_t b) {
    const __m128i v = _mm_insert_epi8(_mm_cvtsi32_si128(x[a]), x[b], 1);
    return _mm256_broadcastd_epi32(_mm_cvtepi8_epi16(v));
}

/* Two adjacent int8 weights as one broadcast int16 pair. */
TRT_AVX2 static inline __m256i weight_pair(const int8_t *w) {
    int16_t two;
    memcpy(&two, w, 2);
    return _mm256_broadcastd_epi32(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(two)));
}

TRT_AVX2 static void spmv_strip8(const trt_sparse_matrix *m, int32_t s,
                                 const int8_t *x, int32_t *a) {
    const uint16_t *idx = m->index;
    const int8_t *v = m->values;
    const int32_t j0 = m->strip_ptr[s], j1 = m->strip_ptr[s + 1];
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
    int32_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(v + (int64_t)j * 8)));
        const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(v + (int64_t)j * 8 + 16)));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(w0, pair_of(x, idx[j], idx[j + 1])));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(w1, pair_of(x, idx[j + 2], idx[j + 3])));
    }
    if (j < j1) {
        const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(v + (int64_t)j * 8)));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(w0, pair_of(x, idx[j], idx[j + 1])));
    }
    _mm256_storeu_si256((__m256i *)a, _mm256_add_epi32(acc0, acc1));
}

TRT_AVX2 static void spmv_strip4(const trt_sparse_matrix *m, int32_t s,
                                 const int8_t *x, int32_t *a) {
    const uint16_t *idx = m->index;
    const int8_t *v = m->values;
    const int32_t j0 = m->strip_ptr[s], j1 = m->strip_ptr[s + 1];
    /* Two pairs per vector: the low lane takes pair j, the high pair j + 2. */
    __m256i acc = _mm256_setzero_si256();
    int32_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(v + (int64_t)j * 4)));
        const __m256i xs = _mm256_blend_epi32(pair_of(x, idx[j], idx[j + 1]),
                                              pair_of(x, idx[j + 2], idx[j + 3]), 0xF0);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w, xs));
    }
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    if (j < j1) {
        const __m128i w = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(v + (int64_t)j * 4)));
        sum = _mm_add_epi32(sum, _mm_madd_epi16(w, _mm256_castsi256_si128(pair_of(x, idx[j], idx[j + 1]))));
    }
    _mm_storeu_si128((__m128i *)a, sum);
}

TRT_AVX2 static void spmv(const trt_sparse_matrix *m, int32_t s0, int32_t s1,
                          const int8_t *x, int32_t *acc) {
    const int32_t bs = m->block;
    if (bs == 8 || bs == 4) {
        for (int32_t s = s0; s < s1; ++s) {
            if (bs == 8) {
                spmv_strip8(m, s, x, acc + (s - s0) * 8);
            } else {
                spmv_strip4(m, s, x, acc + (s - s0) * 4);
            }
        }
        return;
    }
    trt_sparse_ukernels_portable.spmv(m, s0, s1, x, acc);
}

/* ----------------------------------------------------------------- tiles */

/* gemmlowp MultiplyByQuantizedMultiplier on eight lanes of one channel:
 * ukernels_avx2.c's requantize8 with the per-channel values broadcast. */
typedef struct {
    __m256i left, right, mult, mult_odd, mask, half_mask, offset, lo, hi, bias;
} requant_consts;

TRT_AVX2 static inline requant_consts channel_consts(int32_t bias, int32_t mult,
                                                    int32_t shift,
                                                    int32_t out_offset,
                                                    int32_t act_min,
                                                    int32_t act_max) {
    requant_consts c;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t mask = (int32_t)((1u << right) - 1u);
    c.left = _mm256_set1_epi32(shift > 0 ? shift : 0);
    c.right = _mm256_set1_epi32(right);
    c.mult = _mm256_set1_epi32(mult);
    c.mult_odd = _mm256_set1_epi64x(mult);
    c.mask = _mm256_set1_epi32(mask);
    c.half_mask = _mm256_set1_epi32(mask >> 1);
    c.offset = _mm256_set1_epi32(out_offset);
    c.lo = _mm256_set1_epi32(act_min);
    c.hi = _mm256_set1_epi32(act_max);
    c.bias = _mm256_set1_epi32(bias);
    return c;
}

TRT_AVX2 static inline __m256i finish8(__m256i v, const requant_consts *c) {
    const __m256i zero = _mm256_setzero_si256();
    v = _mm256_sllv_epi32(_mm256_add_epi32(v, c->bias), c->left);
    const __m256i round = _mm256_set1_epi64x(1LL << 30);
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(v, c->mult), round), 31);
    const __m256i odd = _mm256_srli_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), c->mult_odd), round), 31);
    const __m256i high = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    const __m256i rem = _mm256_and_si256(high, c->mask);
    const __m256i threshold = _mm256_sub_epi32(c->half_mask, _mm256_cmpgt_epi32(zero, high));
    v = _mm256_sub_epi32(_mm256_srav_epi32(high, c->right), _mm256_cmpgt_epi32(rem, threshold));
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, c->offset), c->lo), c->hi);
}

/* acc_lo holds pixels 0-3 and 8-11, acc_hi 4-7 and 12-15 (the order the
 * 16-bit unpacks leave); the 32 -> 16 pack puts them back in order. */
TRT_AVX2 static inline void store16(__m256i acc_lo, __m256i acc_hi, const requant_consts *c,
                                    int8_t *dst) {
    const __m256i v16 = _mm256_packs_epi32(finish8(acc_lo, c), finish8(acc_hi, c));
    const __m256i v8 = _mm256_permute4x64_epi64(_mm256_packs_epi16(v16, v16), 0x08);
    _mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(v8));
}

TRT_AVX2 static inline requant_consts row_consts(int32_t r, const int32_t *bias, const int32_t *mult,
                                                const int32_t *shift, int32_t out_offset,
                                                int32_t act_min, int32_t act_max) {
    return channel_consts(bias[r], mult[r], shift[r], out_offset, act_min, act_max);
}

/* Rows r0 .. r0 + 3 of strip s (block bs = 4 or 8), 16 pixels: the tile
 * columns at xt (row stride `tile`), staging rows of stride `tile`. */
TRT_AVX2 static void tile_rows4(const trt_sparse_matrix *m, int32_t s, int32_t r0,
                                const int16_t *xt, int32_t tile, const int32_t *bias,
                                const int32_t *mult, const int32_t *shift,
                                int32_t out_offset, int32_t act_min,
                                int32_t act_max, int8_t *staging) {
    const int32_t bs = m->block;
    const uint16_t *idx = m->index;
    const int32_t j0 = m->strip_ptr[s], j1 = m->strip_ptr[s + 1];
    __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    __m256i lo2 = lo0, hi2 = lo0, lo3 = lo0, hi3 = lo0;
    for (int32_t j = j0; j < j1; j += 2) {
        const __m256i xa = _mm256_loadu_si256((const __m256i *)(xt + (int32_t)idx[j] * tile));
        const __m256i xb = _mm256_loadu_si256((const __m256i *)(xt + (int32_t)idx[j + 1] * tile));
        const __m256i ul = _mm256_unpacklo_epi16(xa, xb), uh = _mm256_unpackhi_epi16(xa, xb);
        const int8_t *w = m->values + (int64_t)j * bs + 2 * r0;
        __m256i wp = weight_pair(w);
        lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(ul, wp));
        hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(uh, wp));
        wp = weight_pair(w + 2);
        lo1 = _mm256_add_epi32(lo1, _mm256_madd_epi16(ul, wp));
        hi1 = _mm256_add_epi32(hi1, _mm256_madd_epi16(uh, wp));
        wp = weight_pair(w + 4);
        lo2 = _mm256_add_epi32(lo2, _mm256_madd_epi16(ul, wp));
        hi2 = _mm256_add_epi32(hi2, _mm256_madd_epi16(uh, wp));
        wp = weight_pair(w + 6);
        lo3 = _mm256_add_epi32(lo3, _mm256_madd_epi16(ul, wp));
        hi3 = _mm256_add_epi32(hi3, _mm256_madd_epi16(uh, wp));
    }
    const int32_t r = s * bs + r0;
    const __m256i los[4] = {lo0, lo1, lo2, lo3}, his[4] = {hi0, hi1, hi2, hi3};
    for (int32_t i = 0; i < 4 && r + i < m->rows; ++i) {
        const requant_consts c = row_consts(r + i, bias, mult, shift, out_offset, act_min, act_max);
        store16(los[i], his[i], &c, staging + (int64_t)(r + i) * tile);
    }
}

/* Unstructured rows, 16 pixels. */
TRT_AVX2 static void tile_rows1_16(const trt_sparse_matrix *m, const int16_t *xt,
                                   const int32_t *bias, const int32_t *mult,
                                   const int32_t *shift, int32_t out_offset,
                                   int32_t act_min, int32_t act_max, int8_t *staging) {
    const uint16_t *idx = m->index;
    const int8_t *v = m->values;
    for (int32_t r = 0; r < m->rows; ++r) {
        const int32_t j0 = m->strip_ptr[r], j1 = m->strip_ptr[r + 1];
        __m256i lo = _mm256_setzero_si256(), hi = lo, lo2 = lo, hi2 = lo;
        int32_t j = j0;
        for (; j + 4 <= j1; j += 4) {
            const __m256i xa = _mm256_loadu_si256((const __m256i *)(xt + (int32_t)idx[j] * 16));
            const __m256i xb = _mm256_loadu_si256((const __m256i *)(xt + (int32_t)idx[j + 1] * 16));
            const __m256i xc = _mm256_loadu_si256((const __m256i *)(xt + (int32_t)idx[j + 2] * 16));
            const __m256i xd = _mm256_loadu_si256((const __m256i *)(xt + (int32_t)idx[j + 3] * 16));
            const __m256i w0 = weight_pair(v + j), w1 = weight_pair(v + j + 2);
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), w0));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), w0));
            lo2 = _mm256_add_epi32(lo2, _mm256_madd_epi16(_mm256_unpacklo_epi16(xc, xd), w1));
            hi2 = _mm256_add_epi32(hi2, _mm256_madd_epi16(_mm256_unpackhi_epi16(xc, xd), w1));
        }
        if (j < j1) {
            const __m256i xa = _mm256_loadu_si256((const __m256i *)(xt + (int32_t)idx[j] * 16));
            const __m256i xb = _mm256_loadu_si256((const __m256i *)(xt + (int32_t)idx[j + 1] * 16));
            const __m256i w0 = weight_pair(v + j);
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), w0));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), w0));
        }
        const requant_consts c = row_consts(r, bias, mult, shift, out_offset, act_min, act_max);
        store16(_mm256_add_epi32(lo, lo2), _mm256_add_epi32(hi, hi2), &c, staging + (int64_t)r * 16);
    }
}

/* Unstructured rows, 32 pixels: twice the work per index and weight load,
 * and per row of requantisation constants. */
TRT_AVX2 static void tile_rows1_32(const trt_sparse_matrix *m, const int16_t *xt,
                                   const int32_t *bias, const int32_t *mult,
                                   const int32_t *shift, int32_t out_offset,
                                   int32_t act_min, int32_t act_max, int8_t *staging) {
    const uint16_t *idx = m->index;
    const int8_t *v = m->values;
    for (int32_t r = 0; r < m->rows; ++r) {
        const int32_t j0 = m->strip_ptr[r], j1 = m->strip_ptr[r + 1];
        __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
        for (int32_t j = j0; j < j1; j += 2) {
            const int16_t *pa = xt + (int32_t)idx[j] * 32, *pb = xt + (int32_t)idx[j + 1] * 32;
            const __m256i w = weight_pair(v + j);
            const __m256i xa0 = _mm256_loadu_si256((const __m256i *)pa);
            const __m256i xb0 = _mm256_loadu_si256((const __m256i *)pb);
            const __m256i xa1 = _mm256_loadu_si256((const __m256i *)(pa + 16));
            const __m256i xb1 = _mm256_loadu_si256((const __m256i *)(pb + 16));
            lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa0, xb0), w));
            hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa0, xb0), w));
            lo1 = _mm256_add_epi32(lo1, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa1, xb1), w));
            hi1 = _mm256_add_epi32(hi1, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa1, xb1), w));
        }
        const requant_consts c = row_consts(r, bias, mult, shift, out_offset, act_min, act_max);
        int8_t *dst = staging + (int64_t)r * 32;
        store16(lo0, hi0, &c, dst);
        store16(lo1, hi1, &c, dst + 16);
    }
}

TRT_AVX2 static void spmm_tile(const trt_sparse_matrix *m, const int16_t *xt, int32_t tile,
                               const int32_t *bias, const int32_t *mult,
                               const int32_t *shift, int32_t out_offset,
                               int32_t act_min, int32_t act_max,
                               int8_t *staging) {
    const int32_t bs = m->block;
    if (bs == 1) {
        if (tile == 32) {
            tile_rows1_32(m, xt, bias, mult, shift, out_offset, act_min, act_max, staging);
        } else {
            tile_rows1_16(m, xt, bias, mult, shift, out_offset, act_min, act_max, staging);
        }
        return;
    }
    const int32_t strips = (m->rows + bs - 1) / bs;
    for (int32_t s = 0; s < strips; ++s) {
        for (int32_t r0 = 0; r0 < bs && s * bs + r0 < m->rows; r0 += 4) {
            for (int32_t h = 0; h < tile; h += 16) {
                tile_rows4(m, s, r0, xt + h, tile, bias, mult, shift, out_offset, act_min, act_max,
                           staging + h);
            }
        }
    }
}

/* In place: r[i] becomes column i of the 16 x 16 byte matrix r. */
TRT_AVX2 static inline void transpose16x16(__m128i r[16]) {
    __m128i a[16], b[16];
    for (int i = 0; i < 8; ++i) {
        /* 16-bit elements k: (row 2i, row 2i+1) of column k */
        a[i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);     /* k = 0..7  */
        a[i + 8] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]); /* k = 8..15 */
    }
    for (int h = 0; h < 2; ++h) {
        for (int i = 0; i < 4; ++i) {
            /* 32-bit elements: rows 4i..4i+3 of column k */
            b[8 * h + i] = _mm_unpacklo_epi16(a[8 * h + 2 * i], a[8 * h + 2 * i + 1]);     /* k = 8h + 0..3 */
            b[8 * h + i + 4] = _mm_unpackhi_epi16(a[8 * h + 2 * i], a[8 * h + 2 * i + 1]); /* k = 8h + 4..7 */
        }
    }
    for (int q = 0; q < 4; ++q) {
        /* b[4q + i]: rows 4i..4i+3, columns 4q..4q+3 (one per 32-bit lane) */
        const __m128i r01lo = _mm_unpacklo_epi32(b[4 * q], b[4 * q + 1]);     /* rows 0-7, k = 4q, 4q+1 */
        const __m128i r01hi = _mm_unpackhi_epi32(b[4 * q], b[4 * q + 1]);     /* rows 0-7, k = 4q+2, 4q+3 */
        const __m128i r23lo = _mm_unpacklo_epi32(b[4 * q + 2], b[4 * q + 3]); /* rows 8-15, k = 4q, 4q+1 */
        const __m128i r23hi = _mm_unpackhi_epi32(b[4 * q + 2], b[4 * q + 3]); /* rows 8-15, k = 4q+2, 4q+3 */
        r[4 * q] = _mm_unpacklo_epi64(r01lo, r23lo);
        r[4 * q + 1] = _mm_unpackhi_epi64(r01lo, r23lo);
        r[4 * q + 2] = _mm_unpacklo_epi64(r01hi, r23hi);
        r[4 * q + 3] = _mm_unpackhi_epi64(r01hi, r23hi);
    }
}

TRT_AVX2 static void transpose_widen(const int8_t *const *rows, int32_t tile,
                                     int32_t cols, int16_t *xt) {
    for (int32_t h = 0; h < tile; h += 16) {
        int32_t c0 = 0;
        for (; c0 + 16 <= cols; c0 += 16) {
            __m128i r[16];
            for (int t = 0; t < 16; ++t) {
                r[t] = _mm_loadu_si128((const __m128i *)(rows[h + t] + c0));
            }
            transpose16x16(r);
            for (int i = 0; i < 16; ++i) {
                _mm256_storeu_si256((__m256i *)(xt + (int64_t)(c0 + i) * tile + h), _mm256_cvtepi8_epi16(r[i]));
            }
        }
        for (; c0 < cols; ++c0) {
            for (int32_t t = 0; t < 16; ++t) {
                xt[(int64_t)c0 * tile + h + t] = rows[h + t][c0];
            }
        }
    }
}

TRT_AVX2 static void transpose_out(const int8_t *staging, int32_t tile, int32_t rows,
                                   int32_t pixels, int8_t *out, int32_t out_stride) {
    for (int32_t h = 0; h < pixels; h += 16) {
        const int32_t n = TRT_MIN(16, pixels - h);
        int32_t r0 = 0;
        for (; r0 + 16 <= rows; r0 += 16) {
            __m128i r[16];
            for (int i = 0; i < 16; ++i) {
                r[i] = _mm_loadu_si128((const __m128i *)(staging + (int64_t)(r0 + i) * tile + h));
            }
            transpose16x16(r);
            for (int32_t t = 0; t < n; ++t) {
                _mm_storeu_si128((__m128i *)(out + (int64_t)(h + t) * out_stride + r0), r[t]);
            }
        }
        for (int32_t t = 0; t < n; ++t) {
            for (int32_t r = r0; r < rows; ++r) {
                out[(int64_t)(h + t) * out_stride + r] = staging[(int64_t)r * tile + h + t];
            }
        }
    }
}

const trt_sparse_ukernels trt_sparse_ukernels_avx2 = {
    TRT_ISA_AVX2, spmv, spmm_tile, transpose_widen, transpose_out,
};

#endif
