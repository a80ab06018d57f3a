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
 * 8 x 32 or 4 x 64, whichever the layer's width allows.
 *
 * The requantisation is the same gemmlowp arithmetic as the AVX2 table on
 * sixteen lanes (mask registers for the compare-and-adjust steps), and
 * FULLY_CONNECTED's double rescale on eight doubles per vector, so every
 * result is bit-identical to the portable table.
 *
 * The table is the AVX2 one with the entries defined here over it
 * (trt_ukernels_avx512_vnni_over): the VNNI GEMM and its rows, and the
 * element-wise ADD on sixteen lanes.
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,bmi2")))
#define TRT_VNNI_INLINE TRT_VNNI static inline __attribute__((always_inline))

/* The low n (0..64) bits set. */
TRT_VNNI_INLINE __mmask64 low_bits64(int32_t n) {
    return n >= 64 ? ~0ULL : (1ULL << n) - 1;
}

TRT_VNNI static void rows_u8(uint8_t *dst, const int8_t *const *seg,
                             int32_t segs, int32_t len) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    int32_t o = 0;
    for (int32_t s = 0; s < segs; ++s, o += len) {
        const int8_t *src = seg[s];
        int32_t i = 0;
        for (; i + 64 <= len; i += 64) {
            _mm512_storeu_si512(dst + o + i,
                                _mm512_xor_si512(_mm512_loadu_si512(src + i), flip));
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

/* gemmlowp MultiplyByQuantizedMultiplier on sixteen lanes: the per-channel
 * terms (made once per tile and channel block) and their use on each row. */
typedef struct {
    __m512i bias, mult, mult_odd, left, right, mask, half;
} trt_rq16;

TRT_VNNI_INLINE trt_rq16 rq16_load(const int32_t *bias, const int32_t *mult,
                                   const int32_t *shift) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i sh = _mm512_loadu_si512(shift);
    trt_rq16 c;
    c.bias = _mm512_loadu_si512(bias);
    c.mult = _mm512_loadu_si512(mult);
    c.mult_odd = _mm512_srli_epi64(c.mult, 32);
    c.left = _mm512_max_epi32(sh, zero);
    c.right = _mm512_max_epi32(_mm512_sub_epi32(zero, sh), zero);
    c.mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, c.right), one);
    c.half = _mm512_srai_epi32(c.mask, 1);
    return c;
}

/* As the AVX2 table's rq8_apply: the wrapping left shift of v + bias; the
 * rounded high half of 2 v mult, (v mult + 2^30) >> 31, for even lanes
 * shifted down and for odd lanes shifted up by one (bits 31..62 of the
 * 64-bit sum land in the odd lane either way); the rounding divide by
 * 2^right, halves away from zero, with the sign moved into the remainder. */
TRT_VNNI_INLINE __m512i rq16_apply(__m512i v, const trt_rq16 *c) {
    const __m512i round = _mm512_set1_epi64(1LL << 30);
    const __m512i one = _mm512_set1_epi32(1);
    v = _mm512_sllv_epi32(_mm512_add_epi32(v, c->bias), c->left);
    const __m512i even = _mm512_srli_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(v, c->mult), round), 31);
    const __m512i odd = _mm512_slli_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(v, 32), c->mult_odd), round), 1);
    const __m512i high = _mm512_mask_blend_epi32(0xAAAA, even, odd);
    const __m512i low = _mm512_and_si512(high, c->mask);
    const __mmask16 negative = _mm512_cmplt_epi32_mask(high, _mm512_setzero_si512());
    const __m512i rem = _mm512_mask_sub_epi32(low, negative, low, one);
    const __m512i q = _mm512_srav_epi32(high, c->right);
    return _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, c->half), q, one);
}

/* TFLite's double-precision FULLY_CONNECTED rescale of acc + bias on
 * sixteen lanes: round half away from zero of acc * scale (trunc and the
 * exact fraction), x86's int32 conversion (INT32_MIN out of range), as the
 * scalar trt_finish_f64 and the AVX2 table. */
TRT_VNNI_INLINE __m512i rescale_f64x16(__m512i acc, const double *scale) {
    const __m512d half = _mm512_set1_pd(0.5), mhalf = _mm512_set1_pd(-0.5);
    const __m512d one = _mm512_set1_pd(1.0);
    __m256i parts[2];
    for (int h = 0; h < 2; ++h) {
        const __m256i a = h ? _mm512_extracti64x4_epi64(acc, 1) : _mm512_castsi512_si256(acc);
        const __m512d d = _mm512_mul_pd(_mm512_cvtepi32_pd(a), _mm512_loadu_pd(scale + 8 * h));
        const __m512d t = _mm512_roundscale_pd(d, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m512d frac = _mm512_sub_pd(d, t);
        __m512d r = _mm512_mask_add_pd(t, _mm512_cmp_pd_mask(frac, half, _CMP_GE_OQ), t, one);
        r = _mm512_mask_sub_pd(r, _mm512_cmp_pd_mask(frac, mhalf, _CMP_LE_OQ), r, one);
        parts[h] = _mm512_cvttpd_epi32(r);
    }
    return _mm512_inserti64x4(_mm512_castsi256_si512(parts[0]), parts[1], 1);
}

/* Sixteen rescaled values + zero point, clamped, stored as bytes (the
 * lanes of `keep`). */
TRT_VNNI_INLINE void store16(__m512i v, __m512i offset, __m512i lo, __m512i hi,
                             int8_t *out, __mmask16 keep) {
    v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, offset), lo), hi);
    _mm_mask_storeu_epi8(out, keep, _mm512_cvtepi32_epi8(v));
}

TRT_VNNI_INLINE int32_t load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The tiles: one function per shape, from a template included once per
 * (MR rows, NB 16-channel blocks); TRT_K4_ROW 1 is the single-row kernel. */
#define TRT_K4_NAME_(mr, nb) tile_##mr##x##nb
#define TRT_K4_NAME(mr, nb) TRT_K4_NAME_(mr, nb)
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

typedef void (*trt_k4_tile_fn)(const trt_gemm_k4 *, const uint8_t *, int32_t,
                               int32_t, int32_t, int8_t *const *);

TRT_VNNI static void gemm_k4(const trt_gemm_k4 *g, const uint8_t *x, int32_t m,
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
                fn = left <= 2 ? tile_2x1 : left <= 4 ? tile_4x1 : left <= 8 ? tile_8x1 : tile_16x1;
            }
            fn(g, x, m, r0, b, out);
        }
        b += nb;
    }
}

/* ADD on sixteen lanes: TFLite's AddFunc (trt_add_one) with the three
 * rescales' terms made once per call. */
TRT_VNNI static void add(const trt_binary_params *p, const int8_t *x,
                         const int8_t *y, int32_t n, int8_t *out) {
    const __m512i off1 = _mm512_set1_epi32(p->input1_offset);
    const __m512i off2 = _mm512_set1_epi32(p->input2_offset);
    const __m128i left = _mm_cvtsi32_si128(p->left_shift);
    int32_t b0[16] = {0}, m1[16], s1[16], m2[16], s2[16], mo[16], so[16];
    for (int j = 0; j < 16; ++j) {
        m1[j] = p->input1_multiplier;
        s1[j] = p->input1_shift;
        m2[j] = p->input2_multiplier;
        s2[j] = p->input2_shift;
        mo[j] = p->output_multiplier;
        so[j] = p->output_shift;
    }
    const trt_rq16 c1 = rq16_load(b0, m1, s1), c2 = rq16_load(b0, m2, s2);
    const trt_rq16 co = rq16_load(b0, mo, so);
    const __m512i offset = _mm512_set1_epi32(p->output_offset);
    const __m512i lo = _mm512_set1_epi32(p->act_min);
    const __m512i hi = _mm512_set1_epi32(p->act_max);
    for (int32_t i = 0; i < n; i += 16) {
        const __mmask16 keep = (__mmask16)(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1);
        __m512i a = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, x + i));
        __m512i b = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(keep, y + i));
        a = _mm512_sll_epi32(_mm512_add_epi32(a, off1), left);
        b = _mm512_sll_epi32(_mm512_add_epi32(b, off2), left);
        const __m512i sum = _mm512_add_epi32(rq16_apply(a, &c1), rq16_apply(b, &c2));
        store16(rq16_apply(sum, &co), offset, lo, hi, out + i, keep);
    }
}

void trt_ukernels_avx512_vnni_over(trt_ukernels *t) {
    t->isa = TRT_ISA_AVX512_VNNI;
    t->add = add;
    t->rows_u8 = rows_u8;
    t->gemm_k4 = gemm_k4;
}

#endif
