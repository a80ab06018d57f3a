/*
 * x86-64 SSE4.1 micro-kernels, for x86-64 CPUs without AVX2 (Core 2
 * Penryn through Westmere, Atom/Silvermont, older Opterons, many virtual
 * CPUs); chosen at run time when the CPU has SSE4.1 but not AVX2.
 *
 * The same arithmetic as the AVX2 table on four lanes:
 *  - int8 values are sign-extended to int16 (pmovsxbw) and multiplied
 *    pairwise with pmaddwd, which sums two exact int16 products into int32;
 *    depthwise / elementwise products use pmullw (|x * w| <= 2^14 is exact).
 *  - gemmlowp's requantisation: the 32x32->64 products with pmuldq on the
 *    even and odd lanes.  SSE has no per-lane shifts, so both shifts are
 *    multiplies too: the left one a wrapping pmulld by 2^left (the same low
 *    32 bits as a shift), the right one an unsigned pmuludq by 2^(31-right)
 *    of the value offset to unsigned, then the mask/threshold rounding,
 *    which never overflows.  2^e comes from a float's exponent field.
 *  - TFLite's double-precision FULLY_CONNECTED rescale: truncation with
 *    roundpd, the exact fraction, cvttpd2dq (INT32_MIN out of range, as the
 *    scalar x86 conversion).
 *  - The GEMM reads the int16 panels of runtime/ops/conv.py
 *    pack_gemm_weights: a panel's sixteen channels are four vectors.
 *
 * Built with a per-function target attribute so the rest of the library
 * stays baseline x86-64; compiled to nothing on other architectures.
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_SSE41 __attribute__((target("sse4.1")))

/* ---------------------------------------------------------------- loads */

/* 8 int8 -> 8 int16 (reads exactly 8 bytes) */
TRT_SSE41 static inline __m128i load8(const int8_t *p) {
    return _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p));
}

/* 4 int8 -> 4 int32 (reads exactly 4 bytes) */
TRT_SSE41 static inline __m128i load4_i32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm_cvtepi8_epi32(_mm_cvtsi32_si128(v));
}

/* Four int32 in [-128, 127] -> four bytes at out. */
TRT_SSE41 static inline void store4(__m128i v, int8_t *out) {
    const __m128i v16 = _mm_packs_epi32(v, v);
    const int32_t bytes = _mm_cvtsi128_si32(_mm_packs_epi16(v16, v16));
    memcpy(out, &bytes, sizeof bytes);
}

/* The first `count` of eight bytes (the low half of `bytes`) to out. */
TRT_SSE41 static inline void store8_first(__m128i bytes, int8_t *out,
                                          int32_t count) {
    if (count >= 8) {
        _mm_storel_epi64((__m128i *)out, bytes);
        return;
    }
    int8_t tmp[8];
    _mm_storel_epi64((__m128i *)tmp, bytes);
    memcpy(out, tmp, (size_t)count);
}

/* The first `count` (<= 16) of sixteen bytes to out. */
TRT_SSE41 static inline void store_first(__m128i bytes, int8_t *out,
                                         int32_t count) {
    if (count >= 16) {
        _mm_storeu_si128((__m128i *)out, bytes);
        return;
    }
    int8_t tmp[16];
    _mm_storeu_si128((__m128i *)tmp, bytes);
    memcpy(out, tmp, (size_t)count);
}

TRT_SSE41 static inline __m128i clamp4(__m128i v, __m128i offset, __m128i lo,
                                       __m128i hi) {
    return _mm_min_epi32(_mm_max_epi32(_mm_add_epi32(v, offset), lo), hi);
}

/* -------------------------------------------------------- requantisation */

/* 2^e per lane for e in [0, 31], exactly, through a float's exponent field;
 * 2^31 converts to the "integer indefinite" 0x80000000, the bits of 1 << 31. */
TRT_SSE41 static inline __m128i pow2_lanes(__m128i e) {
    const __m128i bits = _mm_slli_epi32(_mm_add_epi32(e, _mm_set1_epi32(127)), 23);
    return _mm_cvttps_epi32(_mm_castsi128_ps(bits));
}

/* gemmlowp SaturatingRoundingDoublingHighMul, (v * mult + 2^30) >> 31, on
 * four lanes (mult >= 0, so the INT32_MIN * INT32_MIN case cannot occur).
 * mult_odd holds lanes 1 and 3 of mult in the even positions.  Only the low
 * 32 bits of each shifted 64-bit product are kept, which a logical shift
 * gives as well as an arithmetic one; the odd products are shifted left by
 * one instead, which puts those same bits in the upper half of their lane. */
TRT_SSE41 static inline __m128i srdhm4(__m128i v, __m128i mult,
                                       __m128i mult_odd) {
    const __m128i round = _mm_set1_epi64x(1LL << 30);
    const __m128i even = _mm_srli_epi64(
        _mm_add_epi64(_mm_mul_epi32(v, mult), round), 31);
    const __m128i odd = _mm_slli_epi64(
        _mm_add_epi64(_mm_mul_epi32(_mm_srli_epi64(v, 32), mult_odd), round), 1);
    return _mm_blend_epi16(even, odd, 0xCC);
}

/* Per-lane requantisation constants (MultiplyByQuantizedMultiplier with a
 * multiplier and shift per channel), derived once and applied to every row
 * of a GEMM block. */
typedef struct {
    __m128i mult, mult_odd;
    __m128i scale_up;       /* 2^left: the wrapping left shift as pmulld    */
    __m128i down, down_odd; /* 2^(31 - right), as unsigned                  */
    __m128i mask;           /* 2^right - 1                                  */
    __m128i half;           /* mask >> 1, the rounding threshold for x >= 0 */
} rq4;

TRT_SSE41 static inline rq4 rq4_make(__m128i mult, __m128i shift) {
    const __m128i zero = _mm_setzero_si128();
    const __m128i left = _mm_max_epi32(shift, zero);
    const __m128i right = _mm_max_epi32(_mm_sub_epi32(zero, shift), zero);
    rq4 q;
    q.mult = mult;
    q.mult_odd = _mm_srli_epi64(mult, 32);
    q.scale_up = pow2_lanes(left);
    q.down = pow2_lanes(_mm_sub_epi32(_mm_set1_epi32(31), right));
    q.down_odd = _mm_srli_epi64(q.down, 32);
    q.mask = _mm_sub_epi32(pow2_lanes(right), _mm_set1_epi32(1));
    q.half = _mm_srai_epi32(q.mask, 1);
    return q;
}

/* floor(x / 2^right) per lane (an arithmetic shift), right in [0, 31],
 * without per-lane shift instructions: u = x + 2^31 is x as an unsigned
 * number, u * 2^(31 - right) < 2^63, and bits 31..62 of that product are
 * floor(u / 2^right) = floor(x / 2^right) + 2^(31 - right) (2^31 is a
 * multiple of 2^right), from which down = 2^(31 - right) is subtracted. */
TRT_SSE41 static inline __m128i sra_lanes(__m128i x, const rq4 *q) {
    const __m128i u = _mm_xor_si128(x, _mm_set1_epi32(INT32_MIN));
    const __m128i even = _mm_srli_epi64(_mm_mul_epu32(u, q->down), 31);
    const __m128i odd = _mm_slli_epi64(
        _mm_mul_epu32(_mm_srli_epi64(u, 32), q->down_odd), 1);
    return _mm_sub_epi32(_mm_blend_epi16(even, odd, 0xCC), q->down);
}

/* gemmlowp MultiplyByQuantizedMultiplier on four lanes: the wrapping left
 * shift, the doubling high multiply, then RoundingDivideByPOT (halves away
 * from zero) in the mask/threshold form.  right = 0 gives mask 0, so the
 * rounding term is 0 and x passes through, as in the scalar definition. */
TRT_SSE41 static inline __m128i rq4_apply(const rq4 *q, __m128i v) {
    const __m128i high = srdhm4(_mm_mullo_epi32(v, q->scale_up), q->mult,
                                q->mult_odd);
    const __m128i rem = _mm_and_si128(high, q->mask);
    const __m128i threshold = _mm_sub_epi32(
        q->half, _mm_cmpgt_epi32(_mm_setzero_si128(), high));
    return _mm_sub_epi32(sra_lanes(high, q), _mm_cmpgt_epi32(rem, threshold));
}

/* The same with one multiplier and shift for every lane (ADD's rescales):
 * the shifts take a count register instead of the per-lane shifter. */
typedef struct {
    __m128i mult, mask, half;
    __m128i left, right; /* shift counts (low 64 bits) */
} rq_uniform;

TRT_SSE41 static inline rq_uniform rq_uniform_make(int32_t mult, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32_t mask = (int32_t)((1ULL << right) - 1);
    rq_uniform q;
    q.mult = _mm_set1_epi32(mult);
    q.mask = _mm_set1_epi32(mask);
    q.half = _mm_set1_epi32(mask >> 1);
    q.left = _mm_cvtsi32_si128(left);
    q.right = _mm_cvtsi32_si128(right);
    return q;
}

TRT_SSE41 static inline __m128i rq_uniform_apply(const rq_uniform *q,
                                                 __m128i v) {
    /* the multiplier is the same in every lane: it serves the odd ones too */
    const __m128i high = srdhm4(_mm_sll_epi32(v, q->left), q->mult, q->mult);
    const __m128i rem = _mm_and_si128(high, q->mask);
    const __m128i threshold = _mm_sub_epi32(
        q->half, _mm_cmpgt_epi32(_mm_setzero_si128(), high));
    return _mm_sub_epi32(_mm_sra_epi32(high, q->right),
                         _mm_cmpgt_epi32(rem, threshold));
}

/* Two accumulators -> TFLite's reference FULLY_CONNECTED rescale:
 * round half away from zero of acc * scale (trunc, then the exact
 * fraction), then the x86 conversion (INT32_MIN out of range, as the
 * scalar cast); the result is in the low two lanes. */
TRT_SSE41 static inline __m128i rescale_f64x2(__m128i acc, const double *scale) {
    const __m128d half = _mm_set1_pd(0.5), mhalf = _mm_set1_pd(-0.5);
    const __m128d one = _mm_set1_pd(1.0);
    const __m128d d = _mm_mul_pd(_mm_cvtepi32_pd(acc), _mm_loadu_pd(scale));
    const __m128d t = _mm_round_pd(d, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m128d frac = _mm_sub_pd(d, t);
    __m128d r = _mm_add_pd(t, _mm_and_pd(_mm_cmpge_pd(frac, half), one));
    r = _mm_sub_pd(r, _mm_and_pd(_mm_cmple_pd(frac, mhalf), one));
    return _mm_cvttpd_epi32(r);
}

TRT_SSE41 static inline __m128i rescale_f64x4(__m128i acc, const double *scale) {
    return _mm_unpacklo_epi64(rescale_f64x2(acc, scale),
                              rescale_f64x2(_mm_srli_si128(acc, 8), scale + 2));
}

/* ----------------------------------------------------------- dot products */

TRT_SSE41 static inline __m128i hsum4(__m128i a, __m128i b, __m128i c,
                                      __m128i d) {
    return _mm_hadd_epi32(_mm_hadd_epi32(a, b), _mm_hadd_epi32(c, d));
}

TRT_SSE41 static void dot_1x4(const int8_t *x, const int8_t *w,
                              int32_t w_stride, int32_t k, int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m128i xv = load8(x + i);
        a0 = _mm_add_epi32(a0, _mm_madd_epi16(xv, load8(w0 + i)));
        a1 = _mm_add_epi32(a1, _mm_madd_epi16(xv, load8(w1 + i)));
        a2 = _mm_add_epi32(a2, _mm_madd_epi16(xv, load8(w2 + i)));
        a3 = _mm_add_epi32(a3, _mm_madd_epi16(xv, load8(w3 + i)));
    }
    int32_t r[4];
    _mm_storeu_si128((__m128i *)r, hsum4(a0, a1, a2, a3));
    for (; i < k; ++i) {
        const int32_t xv = x[i];
        r[0] += xv * w0[i];
        r[1] += xv * w1[i];
        r[2] += xv * w2[i];
        r[3] += xv * w3[i];
    }
    memcpy(acc, r, sizeof r);
}

TRT_SSE41 static void dot_2x4(const int8_t *x0, const int8_t *x1,
                              const int8_t *w, int32_t w_stride, int32_t k,
                              int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    __m128i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int32_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m128i u = load8(x0 + i), v = load8(x1 + i);
        __m128i wv = load8(w0 + i);
        a0 = _mm_add_epi32(a0, _mm_madd_epi16(u, wv));
        b0 = _mm_add_epi32(b0, _mm_madd_epi16(v, wv));
        wv = load8(w1 + i);
        a1 = _mm_add_epi32(a1, _mm_madd_epi16(u, wv));
        b1 = _mm_add_epi32(b1, _mm_madd_epi16(v, wv));
        wv = load8(w2 + i);
        a2 = _mm_add_epi32(a2, _mm_madd_epi16(u, wv));
        b2 = _mm_add_epi32(b2, _mm_madd_epi16(v, wv));
        wv = load8(w3 + i);
        a3 = _mm_add_epi32(a3, _mm_madd_epi16(u, wv));
        b3 = _mm_add_epi32(b3, _mm_madd_epi16(v, wv));
    }
    int32_t r[8];
    _mm_storeu_si128((__m128i *)r, hsum4(a0, a1, a2, a3));
    _mm_storeu_si128((__m128i *)(r + 4), hsum4(b0, b1, b2, b3));
    for (; i < k; ++i) {
        const int32_t u = x0[i], v = x1[i];
        r[0] += u * w0[i];
        r[1] += u * w1[i];
        r[2] += u * w2[i];
        r[3] += u * w3[i];
        r[4] += v * w0[i];
        r[5] += v * w1[i];
        r[6] += v * w2[i];
        r[7] += v * w3[i];
    }
    memcpy(acc, r, sizeof r);
}

TRT_SSE41 static void mac_rows(int32_t *acc, const int8_t *x, const int8_t *w,
                               int32_t n) {
    int32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        /* |x * w| <= 2^14: the int16 product is exact */
        const __m128i prod = _mm_mullo_epi16(load8(x + c), load8(w + c));
        __m128i *a = (__m128i *)(acc + c);
        _mm_storeu_si128(a, _mm_add_epi32(_mm_loadu_si128(a), _mm_cvtepi16_epi32(prod)));
        _mm_storeu_si128(a + 1, _mm_add_epi32(_mm_loadu_si128(a + 1),
                                              _mm_cvtepi16_epi32(_mm_srli_si128(prod, 8))));
    }
    if (c + 4 <= n) {
        __m128i *a = (__m128i *)(acc + c);
        _mm_storeu_si128(a, _mm_add_epi32(_mm_loadu_si128(a),
                                          _mm_mullo_epi32(load4_i32(x + c), load4_i32(w + c))));
        c += 4;
    }
    for (; c < n; ++c) {
        acc[c] += (int32_t)x[c] * (int32_t)w[c];
    }
}

/* ----------------------------------------------------- requantize, dw_pixel */

TRT_SSE41 static void requantize(const int32_t *acc, const int32_t *bias,
                                 const int32_t *mult, const int32_t *shift,
                                 int32_t n, int32_t out_offset, int32_t act_min,
                                 int32_t act_max, int8_t *out) {
    const __m128i offset = _mm_set1_epi32(out_offset);
    const __m128i lo = _mm_set1_epi32(act_min);
    const __m128i hi = _mm_set1_epi32(act_max);
    int32_t c = 0;
    for (; c + 4 <= n; c += 4) {
        __m128i v = _mm_loadu_si128((const __m128i *)(acc + c));
        if (bias) {
            v = _mm_add_epi32(v, _mm_loadu_si128((const __m128i *)(bias + c)));
        }
        const rq4 q = rq4_make(_mm_loadu_si128((const __m128i *)(mult + c)),
                               _mm_loadu_si128((const __m128i *)(shift + c)));
        store4(clamp4(rq4_apply(&q, v), offset, lo, hi), out + c);
    }
    for (; c < n; ++c) {
        const int32_t a = acc[c] + (bias ? bias[c] : 0);
        out[c] = trt_requantize_one(a, mult[c], shift[c], out_offset, act_min,
                                    act_max);
    }
}

/* Four accumulators of channels c.. requantised, clamped, as int32. */
TRT_SSE41 static inline __m128i finish_q31(__m128i acc, const int32_t *mult,
                                           const int32_t *shift, __m128i offset,
                                           __m128i lo, __m128i hi) {
    const rq4 q = rq4_make(_mm_loadu_si128((const __m128i *)mult),
                           _mm_loadu_si128((const __m128i *)shift));
    return clamp4(rq4_apply(&q, acc), offset, lo, hi);
}

/* Eight channels, two taps: xi / wi hold the taps' bytes interleaved per
 * channel, (x0[c], x1[c]); sign-extended, pmaddwd adds the two exact
 * products of each channel (|sum| <= 2^15). */
TRT_SSE41 static inline void mac_2taps(__m128i xi, __m128i wi, __m128i *lo,
                                       __m128i *hi) {
    *lo = _mm_add_epi32(*lo, _mm_madd_epi16(_mm_cvtepi8_epi16(xi), _mm_cvtepi8_epi16(wi)));
    *hi = _mm_add_epi32(*hi, _mm_madd_epi16(_mm_cvtepi8_epi16(_mm_srli_si128(xi, 8)),
                                            _mm_cvtepi8_epi16(_mm_srli_si128(wi, 8))));
}

/* Eight channels, one tap (|x * w| <= 2^14: the int16 product is exact). */
TRT_SSE41 static inline void mac_1tap(const int8_t *x, const int8_t *w,
                                      __m128i *lo, __m128i *hi) {
    const __m128i prod = _mm_mullo_epi16(load8(x), load8(w));
    *lo = _mm_add_epi32(*lo, _mm_cvtepi16_epi32(prod));
    *hi = _mm_add_epi32(*hi, _mm_cvtepi16_epi32(_mm_srli_si128(prod, 8)));
}

TRT_SSE41 static inline __attribute__((always_inline)) void dw_pixel_body(
    const int8_t *const *x, int32_t taps, const int8_t *w, int32_t w_stride,
    int32_t n, const int32_t *bias, const int32_t *mult, const int32_t *shift,
    int32_t out_offset, int32_t act_min, int32_t act_max, int8_t *out) {
    const __m128i offset = _mm_set1_epi32(out_offset);
    const __m128i lo = _mm_set1_epi32(act_min);
    const __m128i hi = _mm_set1_epi32(act_max);
    int32_t c = 0;
    /* sixteen channels at a time, accumulators in registers over all taps,
     * taps two at a time */
    for (; c + 16 <= n; c += 16) {
        __m128i a0 = _mm_loadu_si128((const __m128i *)(bias + c));
        __m128i a1 = _mm_loadu_si128((const __m128i *)(bias + c + 4));
        __m128i a2 = _mm_loadu_si128((const __m128i *)(bias + c + 8));
        __m128i a3 = _mm_loadu_si128((const __m128i *)(bias + c + 12));
        int32_t t = 0;
        for (; t + 2 <= taps; t += 2) {
            const __m128i x0 = _mm_loadu_si128((const __m128i *)(x[t] + c));
            const __m128i x1 = _mm_loadu_si128((const __m128i *)(x[t + 1] + c));
            const __m128i w0 = _mm_loadu_si128((const __m128i *)(w + t * w_stride + c));
            const __m128i w1 = _mm_loadu_si128((const __m128i *)(w + (t + 1) * w_stride + c));
            mac_2taps(_mm_unpacklo_epi8(x0, x1), _mm_unpacklo_epi8(w0, w1), &a0, &a1);
            mac_2taps(_mm_unpackhi_epi8(x0, x1), _mm_unpackhi_epi8(w0, w1), &a2, &a3);
        }
        if (t < taps) {
            mac_1tap(x[t] + c, w + t * w_stride + c, &a0, &a1);
            mac_1tap(x[t] + c + 8, w + t * w_stride + c + 8, &a2, &a3);
        }
        a0 = finish_q31(a0, mult + c, shift + c, offset, lo, hi);
        a1 = finish_q31(a1, mult + c + 4, shift + c + 4, offset, lo, hi);
        a2 = finish_q31(a2, mult + c + 8, shift + c + 8, offset, lo, hi);
        a3 = finish_q31(a3, mult + c + 12, shift + c + 12, offset, lo, hi);
        _mm_storeu_si128((__m128i *)(out + c),
                         _mm_packs_epi16(_mm_packs_epi32(a0, a1), _mm_packs_epi32(a2, a3)));
    }
    if (c + 8 <= n) {
        __m128i a0 = _mm_loadu_si128((const __m128i *)(bias + c));
        __m128i a1 = _mm_loadu_si128((const __m128i *)(bias + c + 4));
        int32_t t = 0;
        for (; t + 2 <= taps; t += 2) {
            const __m128i x0 = _mm_loadl_epi64((const __m128i *)(x[t] + c));
            const __m128i x1 = _mm_loadl_epi64((const __m128i *)(x[t + 1] + c));
            const __m128i w0 = _mm_loadl_epi64((const __m128i *)(w + t * w_stride + c));
            const __m128i w1 = _mm_loadl_epi64((const __m128i *)(w + (t + 1) * w_stride + c));
            mac_2taps(_mm_unpacklo_epi8(x0, x1), _mm_unpacklo_epi8(w0, w1), &a0, &a1);
        }
        if (t < taps) {
            mac_1tap(x[t] + c, w + t * w_stride + c, &a0, &a1);
        }
        a0 = finish_q31(a0, mult + c, shift + c, offset, lo, hi);
        a1 = finish_q31(a1, mult + c + 4, shift + c + 4, offset, lo, hi);
        const __m128i v16 = _mm_packs_epi32(a0, a1);
        _mm_storel_epi64((__m128i *)(out + c), _mm_packs_epi16(v16, v16));
        c += 8;
    }
    for (; c + 4 <= n; c += 4) {
        __m128i a = _mm_loadu_si128((const __m128i *)(bias + c));
        for (int32_t t = 0; t < taps; ++t) {
            a = _mm_add_epi32(a, _mm_mullo_epi32(load4_i32(x[t] + c),
                                                 load4_i32(w + t * w_stride + c)));
        }
        store4(finish_q31(a, mult + c, shift + c, offset, lo, hi), out + c);
    }
    for (; c < n; ++c) {
        int32_t a = bias[c];
        for (int32_t t = 0; t < taps; ++t) {
            a += (int32_t)x[t][c] * (int32_t)w[t * w_stride + c];
        }
        out[c] = trt_requantize_one(a, mult[c], shift[c], out_offset, act_min,
                                    act_max);
    }
}

TRT_SSE41 static void dw_pixel(const int8_t *const *x, int32_t taps,
                               const int8_t *w, int32_t w_stride, int32_t n,
                               const int32_t *bias, const int32_t *mult,
                               const int32_t *shift, int32_t out_offset,
                               int32_t act_min, int32_t act_max, int8_t *out) {
    dw_pixel_body(x, taps, w, w_stride, n, bias, mult, shift, out_offset,
                  act_min, act_max, out);
}

/* A row's interior pixels in one call: the pixel kernel inlined, its tap
 * pointers one add each from the fixed offsets (no per-pixel window checks
 * or indirect call). */
TRT_SSE41 static void dw_run(const int8_t *x, int32_t count, int32_t x_step,
                             const int32_t *tap_off, int32_t taps,
                             const int8_t *w, int32_t w_stride, int32_t n,
                             const int32_t *bias, const int32_t *mult,
                             const int32_t *shift, int32_t out_offset,
                             int32_t act_min, int32_t act_max, int8_t *out,
                             int32_t out_step) {
    const int8_t *px[TRT_DW_RUN_TAPS];
    for (int32_t t = 0; t < taps; ++t) {
        px[t] = x + tap_off[t];
    }
    for (int32_t j = 0; j < count; ++j) {
        dw_pixel_body(px, taps, w, w_stride, n, bias, mult, shift, out_offset,
                      act_min, act_max, out + (int64_t)j * out_step);
        for (int32_t t = 0; t < taps; ++t) {
            px[t] += x_step;
        }
    }
}

/* -------------------------------------------------------------------- add */

TRT_SSE41 static void add(const trt_binary_params *p, const int8_t *x,
                          const int8_t *y, int32_t n, int8_t *out) {
    const __m128i off1 = _mm_set1_epi32(p->input1_offset);
    const __m128i off2 = _mm_set1_epi32(p->input2_offset);
    const __m128i left = _mm_cvtsi32_si128(p->left_shift);
    const rq_uniform q1 = rq_uniform_make(p->input1_multiplier, p->input1_shift);
    const rq_uniform q2 = rq_uniform_make(p->input2_multiplier, p->input2_shift);
    const rq_uniform qo = rq_uniform_make(p->output_multiplier, p->output_shift);
    const __m128i offset = _mm_set1_epi32(p->output_offset);
    const __m128i lo = _mm_set1_epi32(p->act_min);
    const __m128i hi = _mm_set1_epi32(p->act_max);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        /* (offset + x) << left wraps as TFLite's int32 multiply does */
        const __m128i a = _mm_sll_epi32(_mm_add_epi32(load4_i32(x + i), off1), left);
        const __m128i b = _mm_sll_epi32(_mm_add_epi32(load4_i32(y + i), off2), left);
        const __m128i sum = _mm_add_epi32(rq_uniform_apply(&q1, a), rq_uniform_apply(&q2, b));
        store4(clamp4(rq_uniform_apply(&qo, sum), offset, lo, hi), out + i);
    }
    for (; i < n; ++i) {
        out[i] = trt_add_one(p, x[i], y[i]);
    }
}

/* ------------------------------------------------------------------- gemm */

/* Rows longer than this take the portable kernel (the converted rows live
 * on the stack), as in the AVX2 table. */

/* Row pair i (two int16) in every lane. */
TRT_SSE41 static inline __m128i pair_at(const int16_t *row, int32_t i) {
    int32_t v;
    memcpy(&v, row + 2 * i, sizeof v);
    return _mm_set1_epi32(v);
}

#define TRT_MADD(acc, b, w) acc = _mm_add_epi32(acc, _mm_madd_epi16(b, w))

/* Four rows times eight channels of one panel (half = 0: lanes 0-7, 1:
 * lanes 8-15): eight accumulators, two weight vectors, and the rows' pairs
 * broadcast four at a time from one load each (pshufd), which keeps all of
 * it in the sixteen registers. */
TRT_SSE41 static inline void panel_4x8(const int16_t *const *xb, const int16_t *wp,
                                       int32_t kp, int32_t half, __m128i acc[4][2]) {
    const int16_t *wq = wp + 16 * half;
    __m128i a00 = _mm_setzero_si128(), a01 = a00, a10 = a00, a11 = a00;
    __m128i a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    int32_t i = 0;
#define TRT_STEP_4x8(j, x0, x1, x2, x3)                                        \
    do {                                                                       \
        const __m128i w0 = _mm_loadu_si128((const __m128i *)(wq + (i + j) * 32)); \
        const __m128i w1 = _mm_loadu_si128((const __m128i *)(wq + (i + j) * 32 + 8)); \
        __m128i b = _mm_shuffle_epi32(x0, (j) * 0x55);                         \
        TRT_MADD(a00, b, w0);                                                  \
        TRT_MADD(a01, b, w1);                                                  \
        b = _mm_shuffle_epi32(x1, (j) * 0x55);                                 \
        TRT_MADD(a10, b, w0);                                                  \
        TRT_MADD(a11, b, w1);                                                  \
        b = _mm_shuffle_epi32(x2, (j) * 0x55);                                 \
        TRT_MADD(a20, b, w0);                                                  \
        TRT_MADD(a21, b, w1);                                                  \
        b = _mm_shuffle_epi32(x3, (j) * 0x55);                                 \
        TRT_MADD(a30, b, w0);                                                  \
        TRT_MADD(a31, b, w1);                                                  \
    } while (0)
    for (; i + 4 <= kp; i += 4) {
        /* four pairs of each row: the rows are 16-byte aligned, i * 4 bytes in */
        const __m128i x0 = _mm_load_si128((const __m128i *)(xb[0] + 2 * i));
        const __m128i x1 = _mm_load_si128((const __m128i *)(xb[1] + 2 * i));
        const __m128i x2 = _mm_load_si128((const __m128i *)(xb[2] + 2 * i));
        const __m128i x3 = _mm_load_si128((const __m128i *)(xb[3] + 2 * i));
        TRT_STEP_4x8(0, x0, x1, x2, x3);
        TRT_STEP_4x8(1, x0, x1, x2, x3);
        TRT_STEP_4x8(2, x0, x1, x2, x3);
        TRT_STEP_4x8(3, x0, x1, x2, x3);
    }
    for (; i < kp; ++i) {
        const __m128i x0 = pair_at(xb[0], i), x1 = pair_at(xb[1], i);
        const __m128i x2 = pair_at(xb[2], i), x3 = pair_at(xb[3], i);
        TRT_STEP_4x8(0, x0, x1, x2, x3);
    }
#undef TRT_STEP_4x8
    acc[0][0] = a00;
    acc[0][1] = a01;
    acc[1][0] = a10;
    acc[1][1] = a11;
    acc[2][0] = a20;
    acc[2][1] = a21;
    acc[3][0] = a30;
    acc[3][1] = a31;
}

/* One row times the panel's sixteen channels. */
TRT_SSE41 static inline void panel_1x16(const int16_t *xr, const int16_t *wp,
                                        int32_t kp, __m128i acc[4]) {
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
#define TRT_STEP_1x16(j, xv)                                                   \
    do {                                                                       \
        const int16_t *wi = wp + (i + j) * 32;                                 \
        const __m128i b = _mm_shuffle_epi32(xv, (j) * 0x55);                   \
        TRT_MADD(a0, b, _mm_loadu_si128((const __m128i *)wi));                 \
        TRT_MADD(a1, b, _mm_loadu_si128((const __m128i *)(wi + 8)));           \
        TRT_MADD(a2, b, _mm_loadu_si128((const __m128i *)(wi + 16)));          \
        TRT_MADD(a3, b, _mm_loadu_si128((const __m128i *)(wi + 24)));          \
    } while (0)
    for (; i + 4 <= kp; i += 4) {
        const __m128i xv = _mm_load_si128((const __m128i *)(xr + 2 * i));
        TRT_STEP_1x16(0, xv);
        TRT_STEP_1x16(1, xv);
        TRT_STEP_1x16(2, xv);
        TRT_STEP_1x16(3, xv);
    }
    for (; i < kp; ++i) {
        const __m128i xv = pair_at(xr, i);
        TRT_STEP_1x16(0, xv);
    }
#undef TRT_STEP_1x16
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Two rows times sixteen channels: each weight vector serves both rows. */
TRT_SSE41 static inline void panel_2x16(const int16_t *xr0, const int16_t *xr1,
                                        const int16_t *wp, int32_t kp,
                                        __m128i acc[2][4]) {
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    __m128i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int32_t i = 0;
#define TRT_STEP_2x16(j, xv, yv)                                               \
    do {                                                                       \
        const int16_t *wi = wp + (i + j) * 32;                                 \
        const __m128i u = _mm_shuffle_epi32(xv, (j) * 0x55);                   \
        const __m128i v = _mm_shuffle_epi32(yv, (j) * 0x55);                   \
        __m128i wv = _mm_loadu_si128((const __m128i *)wi);                     \
        TRT_MADD(a0, u, wv);                                                   \
        TRT_MADD(b0, v, wv);                                                   \
        wv = _mm_loadu_si128((const __m128i *)(wi + 8));                       \
        TRT_MADD(a1, u, wv);                                                   \
        TRT_MADD(b1, v, wv);                                                   \
        wv = _mm_loadu_si128((const __m128i *)(wi + 16));                      \
        TRT_MADD(a2, u, wv);                                                   \
        TRT_MADD(b2, v, wv);                                                   \
        wv = _mm_loadu_si128((const __m128i *)(wi + 24));                      \
        TRT_MADD(a3, u, wv);                                                   \
        TRT_MADD(b3, v, wv);                                                   \
    } while (0)
    for (; i + 4 <= kp; i += 4) {
        const __m128i xv = _mm_load_si128((const __m128i *)(xr0 + 2 * i));
        const __m128i yv = _mm_load_si128((const __m128i *)(xr1 + 2 * i));
        TRT_STEP_2x16(0, xv, yv);
        TRT_STEP_2x16(1, xv, yv);
        TRT_STEP_2x16(2, xv, yv);
        TRT_STEP_2x16(3, xv, yv);
    }
    for (; i < kp; ++i) {
        const __m128i xv = pair_at(xr0, i), yv = pair_at(xr1, i);
        TRT_STEP_2x16(0, xv, yv);
    }
#undef TRT_STEP_2x16
    acc[0][0] = a0;
    acc[0][1] = a1;
    acc[0][2] = a2;
    acc[0][3] = a3;
    acc[1][0] = b0;
    acc[1][1] = b1;
    acc[1][2] = b2;
    acc[1][3] = b3;
}

#undef TRT_MADD

/* Per-channel constants of one GEMM block (mult/shift are NULL under the FC
 * reference rescale, scale otherwise; no arithmetic on the NULL ones). */
typedef struct {
    const int32_t *bias, *mult, *shift;
    const double *scale;
    __m128i offset, lo, hi;
} gemm_epilogue;

/* Lane group g (channels 4g..4g+3 of the block) of `rows` rows: bias,
 * rescale, zero point, clamp; the Q31 constants are derived once for all
 * rows. */
TRT_SSE41 static inline void finish_group(const gemm_epilogue *e, int32_t g,
                                          int32_t rows, __m128i *acc,
                                          int32_t acc_stride) {
    const __m128i bias = _mm_loadu_si128((const __m128i *)(e->bias + 4 * g));
    if (e->scale) {
        for (int32_t r = 0; r < rows; ++r) {
            __m128i *a = acc + r * acc_stride;
            *a = clamp4(rescale_f64x4(_mm_add_epi32(*a, bias), e->scale + 4 * g),
                        e->offset, e->lo, e->hi);
        }
        return;
    }
    const rq4 q = rq4_make(_mm_loadu_si128((const __m128i *)(e->mult + 4 * g)),
                           _mm_loadu_si128((const __m128i *)(e->shift + 4 * g)));
    for (int32_t r = 0; r < rows; ++r) {
        __m128i *a = acc + r * acc_stride;
        *a = clamp4(rq4_apply(&q, _mm_add_epi32(*a, bias)), e->offset, e->lo, e->hi);
    }
}

/* Output-channel-vectorised GEMM over the int16 panels (as the AVX2 one):
 * each weight vector (four channels times two k) feeds every row, each
 * row's pair of inputs is broadcast, and pmaddwd sums the two exact
 * products - no horizontal sums, and the accumulators are already in the
 * per-channel layout requantisation needs. */
TRT_SSE41 static void gemm(const int8_t *const *x, int32_t m, int32_t k,
                           const int8_t *w, const int16_t *w_packed, int32_t n,
                           const int32_t *bias, const int32_t *mult,
                           const int32_t *shift, const double *scale,
                           int32_t out_offset, int32_t act_min, int32_t act_max,
                           int8_t *const *out) {
    if (!w_packed || k > TRT_GEMM_MAX_K) {
        trt_ukernels_portable.gemm(x, m, k, w, w_packed, n, bias, mult, shift,
                                   scale, out_offset, act_min, act_max, out);
        return;
    }
    const int32_t kp = (k + 1) / 2;
    int16_t xb[TRT_GEMM_MR][TRT_GEMM_MAX_K + 16] __attribute__((aligned(16)));
    const int16_t *rows[TRT_GEMM_MR];
    for (int32_t r = 0; r < m; ++r) {
        int32_t i = 0;
        for (; i + 8 <= k; i += 8) {
            _mm_store_si128((__m128i *)(xb[r] + i), load8(x[r] + i));
        }
        for (; i < k; ++i) {
            xb[r][i] = x[r][i];
        }
        xb[r][k] = 0; /* the odd k's partner: its packed weight is 0 too */
        rows[r] = xb[r];
    }
    gemm_epilogue e;
    e.offset = _mm_set1_epi32(out_offset);
    e.lo = _mm_set1_epi32(act_min);
    e.hi = _mm_set1_epi32(act_max);
    for (int32_t oc = 0; oc < n; oc += 16) {
        const int16_t *wp = w_packed + (int64_t)(oc / 16) * kp * 32;
        const int32_t count = TRT_MIN(16, n - oc);
        e.bias = bias + oc;
        e.mult = mult ? mult + oc : 0;
        e.shift = shift ? shift + oc : 0;
        e.scale = scale ? scale + oc : 0;
        if (m == 4) {
            /* two passes of eight channels; a narrow layer (count <= 8:
             * the upper lanes are zero padding) needs only the first */
            for (int32_t half = 0; half < 2 && 8 * half < count; ++half) {
                __m128i acc[4][2];
                panel_4x8(rows, wp, kp, half, acc);
                finish_group(&e, 2 * half, 4, &acc[0][0], 2);
                finish_group(&e, 2 * half + 1, 4, &acc[0][1], 2);
                for (int32_t r = 0; r < 4; ++r) {
                    const __m128i v16 = _mm_packs_epi32(acc[r][0], acc[r][1]);
                    store8_first(_mm_packs_epi16(v16, v16), out[r] + oc + 8 * half,
                                 count - 8 * half);
                }
            }
            continue;
        }
        /* one, two or three rows (tails): sixteen channels per pass */
        for (int32_t r0 = 0; r0 < m;) {
            const int32_t rows_now = m - r0 >= 2 ? 2 : 1;
            __m128i acc[2][4];
            if (rows_now == 2) {
                panel_2x16(rows[r0], rows[r0 + 1], wp, kp, acc);
            } else {
                panel_1x16(rows[r0], wp, kp, acc[0]);
            }
            for (int32_t g = 0; g < 4 && 4 * g < count; ++g) {
                finish_group(&e, g, rows_now, &acc[0][g], 4);
            }
            for (int32_t r = 0; r < rows_now; ++r) {
                store_first(_mm_packs_epi16(_mm_packs_epi32(acc[r][0], acc[r][1]),
                                            _mm_packs_epi32(acc[r][2], acc[r][3])),
                            out[r0 + r] + oc, count);
            }
            r0 += rows_now;
        }
    }
}

const trt_ukernels trt_ukernels_sse41 = {
    TRT_ISA_SSE41, 1, dot_1x4, dot_2x4, mac_rows, requantize, dw_pixel, gemm, add,
    dw_run,
    0, /* gemm_seg: gathered patches */
    0, 0, 0, 0, 0, /* rows_u8, gemm_k4, dw_k4, dw_k4_in_place, widen3_u8: x86 VNNI only */
};

#endif
