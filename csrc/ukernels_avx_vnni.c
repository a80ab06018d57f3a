/*
 * x86-64 AVX-VNNI micro-kernels: the VEX-encoded, 256-bit vpdpbusd of CPUs
 * that have it without AVX-512 (Intel's Alder Lake and later client cores;
 * AMD's Zen 5 has both).  Selected at run time over the AVX2 table.
 *
 * Same scheme as ukernels_avx512_vnni.c (its header comment has the
 * arithmetic): rows fed as x + 128, bias_k4 = bias_folded - 128 * sum(w),
 * weights in the packed_k4 layout, where a 16-channel block's 64 bytes per
 * k step are two vectors here (channels 0-7, then 8-15).  Sixteen vector
 * registers hold 4 rows x 16 channels of accumulators with their operands.  The requantisation is the AVX2 table's (trt_avx2_rescale.h).
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

/* Sixteen accumulators (channels oc.. of one row) + bias, rescaled, plus
 * the zero point, clamped, the first `count` stored as bytes. */
TRT_AVXVNNI_INLINE void finish16(__m256i a0, __m256i a1, const trt_gemm_k4 *g,
                                 int32_t oc, int8_t *out, int32_t count) {
    const __m256i offset = _mm256_set1_epi32(g->out_offset);
    const __m256i lo = _mm256_set1_epi32(g->act_min);
    const __m256i hi = _mm256_set1_epi32(g->act_max);
    if (g->scale) {
        a0 = rescale_f64x8(_mm256_add_epi32(a0, _mm256_loadu_si256((const __m256i *)(g->bias + oc))),
                           g->scale + oc);
        a1 = rescale_f64x8(_mm256_add_epi32(a1, _mm256_loadu_si256((const __m256i *)(g->bias + oc + 8))),
                           g->scale + oc + 8);
    } else {
        const trt_rq8 c0 = rq8_load(g->bias + oc, g->mult + oc, g->shift + oc);
        const trt_rq8 c1 = rq8_load(g->bias + oc + 8, g->mult + oc + 8, g->shift + oc + 8);
        a0 = rq8_apply(a0, &c0);
        a1 = rq8_apply(a1, &c1);
    }
    a0 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(a0, offset), lo), hi);
    a1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(a1, offset), lo), hi);
    /* packs works within 128-bit lanes: fix the order with a permute */
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xD8);
    store_first(_mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)),
                out, count);
}

/* Four rows from r0 (past m, row r0 again, not stored) by one 16-channel
 * block b: eight accumulators, two weight vectors, one broadcast. */
TRT_AVXVNNI static void tile_4(const trt_gemm_k4 *g, const uint8_t *const *x, int32_t m,
                               int32_t r0, int32_t b, int8_t *const *out) {
    const int32_t k4 = (g->k + 3) / 4;
    const int32_t seg4 = g->segs == 1 ? k4 : g->k / g->segs / 4;
    const int8_t *wb = g->w + (int64_t)b * k4 * 64;
    const int32_t rows = m - r0;
    const uint8_t *x0 = x[r0], *x1 = x[r0 + (rows > 1)], *x2 = x[r0 + 2 * (rows > 2)];
    const uint8_t *x3 = x[r0 + 3 * (rows > 3)];
    __m256i l0 = _mm256_setzero_si256(), h0 = l0, l1 = l0, h1 = l0;
    __m256i l2 = l0, h2 = l0, l3 = l0, h3 = l0;
    for (int32_t s = 0; s < g->segs; ++s, wb += (int64_t)seg4 * 64) {
        const int64_t at = (int64_t)s * g->seg_stride;
        for (int32_t i = 0; i < seg4; ++i) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + (int64_t)i * 64));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + (int64_t)i * 64 + 32));
            __m256i xv = _mm256_set1_epi32(load4(x0 + at + 4 * i));
            l0 = _mm256_dpbusd_avx_epi32(l0, xv, w0);
            h0 = _mm256_dpbusd_avx_epi32(h0, xv, w1);
            xv = _mm256_set1_epi32(load4(x1 + at + 4 * i));
            l1 = _mm256_dpbusd_avx_epi32(l1, xv, w0);
            h1 = _mm256_dpbusd_avx_epi32(h1, xv, w1);
            xv = _mm256_set1_epi32(load4(x2 + at + 4 * i));
            l2 = _mm256_dpbusd_avx_epi32(l2, xv, w0);
            h2 = _mm256_dpbusd_avx_epi32(h2, xv, w1);
            xv = _mm256_set1_epi32(load4(x3 + at + 4 * i));
            l3 = _mm256_dpbusd_avx_epi32(l3, xv, w0);
            h3 = _mm256_dpbusd_avx_epi32(h3, xv, w1);
        }
    }
    const int32_t oc = b * 16, count = TRT_MIN(16, g->n - oc);
    finish16(l0, h0, g, oc, out[r0] + oc, count);
    if (rows > 1) {
        finish16(l1, h1, g, oc, out[r0 + 1] + oc, count);
    }
    if (rows > 2) {
        finish16(l2, h2, g, oc, out[r0 + 2] + oc, count);
    }
    if (rows > 3) {
        finish16(l3, h3, g, oc, out[r0 + 3] + oc, count);
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
    finish16(a0, a1, g, b * 16, out + b * 16, TRT_MIN(16, g->n - b * 16));
}

TRT_AVXVNNI static void gemm_k4(const trt_gemm_k4 *g, const uint8_t *const *x, int32_t m,
                                int8_t *const *out) {
    const int32_t blocks = (g->n + 15) / 16;
    for (int32_t b = 0; b < blocks; ++b) {
        if (m == 1) {
            row_1(g, x[0], b, out[0]);
            continue;
        }
        for (int32_t r0 = 0; r0 < m; r0 += 4) {
            tile_4(g, x, m, r0, b, out);
        }
    }
}

void trt_ukernels_avx_vnni_over(trt_ukernels *t) {
    t->isa = TRT_ISA_AVX_VNNI;
    t->rows_u8 = rows_u8;
    t->gemm_k4 = gemm_k4;
}

#endif
