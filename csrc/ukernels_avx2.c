/*
 * x86-64 AVX2 micro-kernels (selected at run time when the CPU has AVX2).
 *
 * int8 values are sign-extended to int16 and multiplied pairwise with
 * vpmaddwd, which sums two exact int16 products into int32 - exact, so the
 * results equal the portable kernels'.  The requantisation is gemmlowp's
 * arithmetic on eight lanes: 32x32->64 multiplies on even and odd lanes, and
 * the rounding right shift by a per-lane amount with the mask/threshold
 * formulation, which never overflows.
 *
 * Built with a per-function target attribute so the rest of the library
 * stays baseline x86-64; compiled to nothing on other architectures.
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_AVX2 __attribute__((target("avx2")))
#include "trt_avx2_rescale.h"

TRT_AVX2 static inline __m256i load16(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

TRT_AVX2 static inline __m128i load8(const int8_t *p) {
    return _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p));
}

/* The four horizontal sums of a, b, c, d as one 128-bit vector. */
TRT_AVX2 static inline __m128i hsum4(__m256i a, __m256i b, __m256i c,
                                     __m256i d) {
    const __m256i ab = _mm256_hadd_epi32(a, b);
    const __m256i cd = _mm256_hadd_epi32(c, d);
    const __m256i abcd = _mm256_hadd_epi32(ab, cd);
    return _mm_add_epi32(_mm256_castsi256_si128(abcd),
                         _mm256_extracti128_si256(abcd, 1));
}

TRT_AVX2 static void dot_1x4(const int8_t *x, const int8_t *w,
                             int32_t w_stride, int32_t k, int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const __m256i xv = load16(x + i);
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(xv, load16(w0 + i)));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(xv, load16(w1 + i)));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(xv, load16(w2 + i)));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(xv, load16(w3 + i)));
    }
    __m128i s = hsum4(a0, a1, a2, a3);
    if (i + 8 <= k) {
        const __m128i xv = load8(x + i);
        const __m128i p0 = _mm_madd_epi16(xv, load8(w0 + i));
        const __m128i p1 = _mm_madd_epi16(xv, load8(w1 + i));
        const __m128i p2 = _mm_madd_epi16(xv, load8(w2 + i));
        const __m128i p3 = _mm_madd_epi16(xv, load8(w3 + i));
        s = _mm_add_epi32(s, _mm_hadd_epi32(_mm_hadd_epi32(p0, p1),
                                            _mm_hadd_epi32(p2, p3)));
        i += 8;
    }
    int32_t r[4];
    _mm_storeu_si128((__m128i *)r, s);
    for (; i < k; ++i) {
        const int32_t xv = x[i];
        r[0] += xv * w0[i];
        r[1] += xv * w1[i];
        r[2] += xv * w2[i];
        r[3] += xv * w3[i];
    }
    acc[0] = r[0];
    acc[1] = r[1];
    acc[2] = r[2];
    acc[3] = r[3];
}

TRT_AVX2 static void dot_2x4(const int8_t *x0, const int8_t *x1,
                             const int8_t *w, int32_t w_stride, int32_t k,
                             int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    __m256i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const __m256i u = load16(x0 + i);
        const __m256i v = load16(x1 + i);
        __m256i wv = load16(w0 + i);
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(u, wv));
        b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(v, wv));
        wv = load16(w1 + i);
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(u, wv));
        b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(v, wv));
        wv = load16(w2 + i);
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(u, wv));
        b2 = _mm256_add_epi32(b2, _mm256_madd_epi16(v, wv));
        wv = load16(w3 + i);
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(u, wv));
        b3 = _mm256_add_epi32(b3, _mm256_madd_epi16(v, wv));
    }
    __m128i sa = hsum4(a0, a1, a2, a3);
    __m128i sb = hsum4(b0, b1, b2, b3);
    if (i + 8 <= k) {
        const __m128i u = load8(x0 + i), v = load8(x1 + i);
        const __m128i q0 = load8(w0 + i), q1 = load8(w1 + i);
        const __m128i q2 = load8(w2 + i), q3 = load8(w3 + i);
        sa = _mm_add_epi32(
            sa, _mm_hadd_epi32(_mm_hadd_epi32(_mm_madd_epi16(u, q0), _mm_madd_epi16(u, q1)),
                               _mm_hadd_epi32(_mm_madd_epi16(u, q2), _mm_madd_epi16(u, q3))));
        sb = _mm_add_epi32(
            sb, _mm_hadd_epi32(_mm_hadd_epi32(_mm_madd_epi16(v, q0), _mm_madd_epi16(v, q1)),
                               _mm_hadd_epi32(_mm_madd_epi16(v, q2), _mm_madd_epi16(v, q3))));
        i += 8;
    }
    int32_t r[8];
    _mm_storeu_si128((__m128i *)r, sa);
    _mm_storeu_si128((__m128i *)(r + 4), sb);
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
    for (int32_t j = 0; j < 8; ++j) {
        acc[j] = r[j];
    }
}

TRT_AVX2 static void mac_rows(int32_t *acc, const int8_t *x, const int8_t *w,
                              int32_t n) {
    int32_t c = 0;
    for (; c + 16 <= n; c += 16) {
        /* |x * w| <= 2^14: the int16 product is exact */
        const __m256i prod = _mm256_mullo_epi16(load16(x + c), load16(w + c));
        const __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(prod));
        const __m256i hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(prod, 1));
        __m256i *a = (__m256i *)(acc + c);
        _mm256_storeu_si256(a, _mm256_add_epi32(_mm256_loadu_si256(a), lo));
        _mm256_storeu_si256(a + 1, _mm256_add_epi32(_mm256_loadu_si256(a + 1), hi));
    }
    for (; c + 8 <= n; c += 8) {
        const __m128i prod = _mm_mullo_epi16(load8(x + c), load8(w + c));
        __m256i *a = (__m256i *)(acc + c);
        _mm256_storeu_si256(a, _mm256_add_epi32(_mm256_loadu_si256(a), _mm256_cvtepi16_epi32(prod)));
    }
    for (; c < n; ++c) {
        acc[c] += (int32_t)x[c] * (int32_t)w[c];
    }
}

TRT_AVX2 static void requantize(const int32_t *acc, const int32_t *bias,
                                const int32_t *mult, const int32_t *shift,
                                int32_t n, int32_t out_offset, int32_t act_min,
                                int32_t act_max, int8_t *out) {
    const __m256i offset = _mm256_set1_epi32(out_offset);
    const __m256i lo = _mm256_set1_epi32(act_min);
    const __m256i hi = _mm256_set1_epi32(act_max);
    int32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(acc + c));
        if (bias) {
            v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)(bias + c)));
        }
        v = requantize8(v, _mm256_loadu_si256((const __m256i *)(mult + c)),
                        _mm256_loadu_si256((const __m256i *)(shift + c)));
        v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, offset), lo), hi);
        /* eight int32 in [-128, 127] -> eight bytes */
        const __m128i v16 = _mm_packs_epi32(_mm256_castsi256_si128(v),
                                            _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(out + c), _mm_packs_epi16(v16, v16));
    }
    for (; c < n; ++c) {
        const int32_t a = acc[c] + (bias ? bias[c] : 0);
        out[c] = trt_requantize_one(a, mult[c], shift[c], out_offset, act_min,
                                    act_max);
    }
}

/* Eight int32 -> clamp(v + offset) -> eight bytes at out. */
TRT_AVX2 static inline void store8(__m256i v, __m256i offset, __m256i lo,
                                   __m256i hi, int8_t *out) {
    v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, offset), lo), hi);
    const __m128i v16 = _mm_packs_epi32(_mm256_castsi256_si128(v),
                                        _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i *)out, _mm_packs_epi16(v16, v16));
}

TRT_AVX2 static void dw_pixel(const int8_t *const *x, int32_t taps,
                              const int8_t *w, int32_t w_stride, int32_t n,
                              const int32_t *bias, const int32_t *mult,
                              const int32_t *shift, int32_t out_offset,
                              int32_t act_min, int32_t act_max, int8_t *out) {
    const __m256i offset = _mm256_set1_epi32(out_offset);
    const __m256i lo = _mm256_set1_epi32(act_min);
    const __m256i hi = _mm256_set1_epi32(act_max);
    int32_t c = 0;
    /* sixteen channels at a time, accumulators in registers over all taps */
    for (; c + 16 <= n; c += 16) {
        __m256i acc0 = _mm256_loadu_si256((const __m256i *)(bias + c));
        __m256i acc1 = _mm256_loadu_si256((const __m256i *)(bias + c + 8));
        for (int32_t t = 0; t < taps; ++t) {
            /* |x * w| <= 2^14: the int16 product is exact */
            const __m256i prod = _mm256_mullo_epi16(load16(x[t] + c),
                                                    load16(w + t * w_stride + c));
            acc0 = _mm256_add_epi32(acc0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(prod)));
            acc1 = _mm256_add_epi32(acc1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(prod, 1)));
        }
        acc0 = requantize8(acc0, _mm256_loadu_si256((const __m256i *)(mult + c)),
                           _mm256_loadu_si256((const __m256i *)(shift + c)));
        acc1 = requantize8(acc1, _mm256_loadu_si256((const __m256i *)(mult + c + 8)),
                           _mm256_loadu_si256((const __m256i *)(shift + c + 8)));
        store8(acc0, offset, lo, hi, out + c);
        store8(acc1, offset, lo, hi, out + c + 8);
    }
    for (; c + 8 <= n; c += 8) {
        __m256i acc = _mm256_loadu_si256((const __m256i *)(bias + c));
        for (int32_t t = 0; t < taps; ++t) {
            /* exact int16 products (|x * w| <= 2^14), widened once */
            const __m128i prod = _mm_mullo_epi16(load8(x[t] + c), load8(w + t * w_stride + c));
            acc = _mm256_add_epi32(acc, _mm256_cvtepi16_epi32(prod));
        }
        acc = requantize8(acc, _mm256_loadu_si256((const __m256i *)(mult + c)),
                          _mm256_loadu_si256((const __m256i *)(shift + c)));
        store8(acc, offset, lo, hi, out + c);
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

/* One input of ADD on eight lanes: trt_add_split (trt_ukernels.h). */
typedef struct {
    __m256i mh, ml, c0, neg_at, corr;
    __m128i d;
    int linear;
} trt_add_in8;

TRT_AVX2 static int add_in8_make(int32_t offset, int32_t left, int32_t mult, int32_t shift,
                                 trt_add_in8 *in, int32_t *sum_const) {
    trt_add_split a;
    if (!trt_add_split_make(offset, left, mult, shift, &a, sum_const)) {
        return 0;
    }
    in->mh = _mm256_set1_epi32(a.mh);
    in->ml = _mm256_set1_epi32(a.ml);
    in->c0 = _mm256_set1_epi32(a.c0);
    in->neg_at = _mm256_set1_epi32(a.neg_at);
    in->corr = _mm256_set1_epi32(a.corr);
    in->d = _mm_cvtsi32_si128(a.d);
    in->linear = a.linear;
    return 1;
}

TRT_AVX2 static inline __m256i add_in8_apply(__m256i x, const trt_add_in8 *in) {
    if (in->linear) {
        return _mm256_mullo_epi32(x, in->mh);
    }
    __m256i b = _mm256_add_epi32(_mm256_mullo_epi32(x, in->ml), in->c0);
    b = _mm256_sub_epi32(b, _mm256_and_si256(_mm256_cmpgt_epi32(in->neg_at, x), in->corr));
    return _mm256_add_epi32(_mm256_mullo_epi32(x, in->mh), _mm256_sra_epi32(b, in->d));
}

/* ADD: TFLite's AddFunc (trt_add_one) on eight lanes.  The usual int8 case
 * rescales the inputs with trt_add_split's two 32-bit products and the sum
 * with the output's terms made once; other shifts take the three full
 * gemmlowp rescales. */
TRT_AVX2 static void add(const trt_binary_params *p, const int8_t *x,
                         const int8_t *y, int32_t n, int8_t *out) {
    const __m256i offset = _mm256_set1_epi32(p->output_offset);
    const __m256i lo = _mm256_set1_epi32(p->act_min);
    const __m256i hi = _mm256_set1_epi32(p->act_max);
    trt_add_in8 in1, in2;
    int32_t k = 0;
    if (add_in8_make(p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift, &in1, &k) &&
        add_in8_make(p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift, &in2, &k)) {
        const trt_rq8 co = rq8_make(_mm256_set1_epi32(k), _mm256_set1_epi32(p->output_multiplier),
                                    _mm256_set1_epi32(p->output_shift));
        int32_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256i a = add_in8_apply(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x + i))), &in1);
            const __m256i b = add_in8_apply(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(y + i))), &in2);
            store8(rq8_apply(_mm256_add_epi32(a, b), &co), offset, lo, hi, out + i);
        }
        for (; i < n; ++i) {
            out[i] = trt_add_one(p, x[i], y[i]);
        }
        return;
    }
    const __m256i off1 = _mm256_set1_epi32(p->input1_offset);
    const __m256i off2 = _mm256_set1_epi32(p->input2_offset);
    const __m128i left = _mm_cvtsi32_si128(p->left_shift);
    const __m256i m1 = _mm256_set1_epi32(p->input1_multiplier);
    const __m256i s1 = _mm256_set1_epi32(p->input1_shift);
    const __m256i m2 = _mm256_set1_epi32(p->input2_multiplier);
    const __m256i s2 = _mm256_set1_epi32(p->input2_shift);
    const __m256i mo = _mm256_set1_epi32(p->output_multiplier);
    const __m256i so = _mm256_set1_epi32(p->output_shift);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i a = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x + i)));
        __m256i b = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(y + i)));
        a = _mm256_sll_epi32(_mm256_add_epi32(a, off1), left);
        b = _mm256_sll_epi32(_mm256_add_epi32(b, off2), left);
        const __m256i sum = _mm256_add_epi32(requantize8(a, m1, s1), requantize8(b, m2, s2));
        store8(requantize8(sum, mo, so), offset, lo, hi, out + i);
    }
    for (; i < n; ++i) {
        out[i] = trt_add_one(p, x[i], y[i]);
    }
}

/* Eight accumulators + bias, rescaled (Q31 multiplier/shift, or double
 * scale when given), plus the zero point, clamped: eight int32 in [lo, hi]. */
TRT_AVX2 static inline __m256i finish_lanes(__m256i acc, const int32_t *bias,
                                            const int32_t *mult, const int32_t *shift,
                                            const double *scale, __m256i offset,
                                            __m256i lo, __m256i hi) {
    acc = _mm256_add_epi32(acc, _mm256_loadu_si256((const __m256i *)bias));
    if (scale) {
        acc = rescale_f64x8(acc, scale);
    } else {
        acc = requantize8(acc, _mm256_loadu_si256((const __m256i *)mult),
                          _mm256_loadu_si256((const __m256i *)shift));
    }
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(acc, offset), lo), hi);
}

/* Sixteen accumulators (two vectors) of output channels oc.. -> bytes. */
TRT_AVX2 static inline void finish16(__m256i a0, __m256i a1, const int32_t *bias,
                                     const int32_t *mult, const int32_t *shift,
                                     const double *scale, __m256i offset,
                                     __m256i lo, __m256i hi, int8_t *out,
                                     int32_t count) {
    a0 = finish_lanes(a0, bias, mult, shift, scale, offset, lo, hi);
    /* (the FC reference rescale has no multipliers: no arithmetic on NULL) */
    a1 = finish_lanes(a1, bias + 8, mult ? mult + 8 : 0, shift ? shift + 8 : 0,
                      scale ? scale + 8 : 0, offset, lo, hi);
    /* packs works within 128-bit lanes: fix the order with a permute */
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xD8);
    store_first(_mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)),
                out, count);
}

/* finish16 with the per-channel terms precomputed (Q31 rescale only). */
TRT_AVX2 static inline void finish16_rq(__m256i a0, __m256i a1, const trt_rq8 *c0,
                                        const trt_rq8 *c1, __m256i offset,
                                        __m256i lo, __m256i hi, int8_t *out,
                                        int32_t count) {
    a0 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(rq8_apply(a0, c0), offset), lo), hi);
    a1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(rq8_apply(a1, c1), offset), lo), hi);
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xD8);
    store_first(_mm_packs_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)),
                out, count);
}

/* Eight accumulators -> up to eight bytes (narrow layers). */
TRT_AVX2 static inline void finish8(__m256i a0, const int32_t *bias, const int32_t *mult,
                                    const int32_t *shift, const double *scale,
                                    __m256i offset, __m256i lo, __m256i hi,
                                    int8_t *out, int32_t count) {
    a0 = finish_lanes(a0, bias, mult, shift, scale, offset, lo, hi);
    const __m128i v16 = _mm_packs_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1));
    store_first(_mm_packs_epi16(v16, v16), out, count);
}

/* finish8 with the per-channel terms precomputed (Q31 rescale only). */
TRT_AVX2 static inline void finish8_rq(__m256i a0, const trt_rq8 *c, __m256i offset,
                                       __m256i lo, __m256i hi, int8_t *out,
                                       int32_t count) {
    a0 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(rq8_apply(a0, c), offset), lo), hi);
    const __m128i v16 = _mm_packs_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1));
    store_first(_mm_packs_epi16(v16, v16), out, count);
}

/* Depthwise runs: taps in pairs.  Two taps' bytes interleaved per channel
 * (unpack), widened to int16, and one vpmaddwd against the pair's weights
 * (interleaved once per call on the stack) adds both taps of eight channels
 * into int32 lanes: no int16 product widening, no per-pixel tap pointers.
 * An odd last tap pairs with itself under a zero weight. */
TRT_AVX2 static void dw_run(const int8_t *x, int32_t count, int32_t x_step,
                            const int32_t *tap_off, int32_t taps, const int8_t *w,
                            int32_t w_stride, int32_t n, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift,
                            int32_t out_offset, int32_t act_min, int32_t act_max,
                            int8_t *out, int32_t out_step) {
    enum { PAIRS = TRT_DW_RUN_TAPS / 2 };
    int16_t wp[PAIRS][2 * TRT_DW_RUN_CHANNELS] __attribute__((aligned(32)));
    int32_t off[TRT_DW_RUN_TAPS + 1];
    const int32_t pairs = (taps + 1) / 2;
    const int32_t n8 = n & ~7;
    for (int32_t q = 0; q < pairs; ++q) {
        const int8_t *w0 = w + (int64_t)(2 * q) * w_stride;
        const int8_t *w1 = 2 * q + 1 < taps ? w0 + w_stride : 0;
        for (int32_t c = 0; c < n8; ++c) {
            wp[q][2 * c] = w0[c];
            wp[q][2 * c + 1] = w1 ? w1[c] : 0;
        }
    }
    for (int32_t t = 0; t < taps; ++t) {
        off[t] = tap_off[t];
    }
    off[taps] = tap_off[taps - 1];
    const __m256i offset = _mm256_set1_epi32(out_offset);
    const __m256i lo = _mm256_set1_epi32(act_min);
    const __m256i hi = _mm256_set1_epi32(act_max);
    if (n8 == n && (n == 8 || n == 16)) {
        /* narrow layers (MobileNet's first blocks): the channels' rescale
         * terms once for the whole run, one or two blocks of eight */
        const trt_rq8 c0 = rq8_load(bias, mult, shift);
        const trt_rq8 c1 = n == 16 ? rq8_load(bias + 8, mult + 8, shift + 8) : c0;
        for (int32_t j = 0; j < count; ++j) {
            const int8_t *xj = x + (int64_t)j * x_step;
            int8_t *o = out + (int64_t)j * out_step;
            __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
            for (int32_t q = 0; q < pairs; ++q) {
                const int8_t *pa = xj + off[2 * q], *pb = xj + off[2 * q + 1];
                if (n == 16) {
                    const __m128i a = _mm_loadu_si128((const __m128i *)pa);
                    const __m128i b = _mm_loadu_si128((const __m128i *)pb);
                    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)),
                                                                    _mm256_load_si256((const __m256i *)wp[q])));
                    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b)),
                                                                    _mm256_load_si256((const __m256i *)(wp[q] + 16))));
                } else {
                    const __m128i a = _mm_loadl_epi64((const __m128i *)pa);
                    const __m128i b = _mm_loadl_epi64((const __m128i *)pb);
                    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)),
                                                                    _mm256_load_si256((const __m256i *)wp[q])));
                }
            }
            if (n == 16) {
                finish16_rq(acc0, acc1, &c0, &c1, offset, lo, hi, o, 16);
            } else {
                finish8_rq(acc0, &c0, offset, lo, hi, o, 8);
            }
        }
        return;
    }
    for (int32_t j = 0; j < count; ++j) {
        const int8_t *xj = x + (int64_t)j * x_step;
        int8_t *o = out + (int64_t)j * out_step;
        int32_t c = 0;
        for (; c + 16 <= n8; c += 16) {
            __m256i acc0 = _mm256_loadu_si256((const __m256i *)(bias + c));
            __m256i acc1 = _mm256_loadu_si256((const __m256i *)(bias + c + 8));
            for (int32_t q = 0; q < pairs; ++q) {
                const __m128i a = _mm_loadu_si128((const __m128i *)(xj + off[2 * q] + c));
                const __m128i b = _mm_loadu_si128((const __m128i *)(xj + off[2 * q + 1] + c));
                const __m256i w0 = _mm256_load_si256((const __m256i *)(wp[q] + 2 * c));
                const __m256i w1 = _mm256_load_si256((const __m256i *)(wp[q] + 2 * c + 16));
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)), w0));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b)), w1));
            }
            acc0 = requantize8(acc0, _mm256_loadu_si256((const __m256i *)(mult + c)),
                               _mm256_loadu_si256((const __m256i *)(shift + c)));
            acc1 = requantize8(acc1, _mm256_loadu_si256((const __m256i *)(mult + c + 8)),
                               _mm256_loadu_si256((const __m256i *)(shift + c + 8)));
            store8(acc0, offset, lo, hi, o + c);
            store8(acc1, offset, lo, hi, o + c + 8);
        }
        for (; c < n8; c += 8) {
            __m256i acc = _mm256_loadu_si256((const __m256i *)(bias + c));
            for (int32_t q = 0; q < pairs; ++q) {
                const __m128i a = _mm_loadl_epi64((const __m128i *)(xj + off[2 * q] + c));
                const __m128i b = _mm_loadl_epi64((const __m128i *)(xj + off[2 * q + 1] + c));
                const __m256i wv = _mm256_load_si256((const __m256i *)(wp[q] + 2 * c));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)), wv));
            }
            acc = requantize8(acc, _mm256_loadu_si256((const __m256i *)(mult + c)),
                              _mm256_loadu_si256((const __m256i *)(shift + c)));
            store8(acc, offset, lo, hi, o + c);
        }
        if (n8 < n) {
            const int8_t *px[TRT_DW_RUN_TAPS];
            for (int32_t t = 0; t < taps; ++t) {
                px[t] = xj + off[t] + n8;
            }
            dw_pixel(px, taps, w + n8, w_stride, n - n8, bias + n8, mult + n8,
                     shift + n8, out_offset, act_min, act_max, o + n8);
        }
    }
}

TRT_AVX2 static inline __m256i pair_at(const int16_t *row, int32_t i) {
    int32_t v;
    memcpy(&v, row + 2 * i, sizeof v); /* two int16, broadcast to all lanes */
    return _mm256_set1_epi32(v);
}

/* Eight vectors of partial sums -> one vector of the eight totals (lane j =
 * all of a[j]'s lanes). */
TRT_AVX2 static inline __m256i reduce8(const __m256i *a) {
    const __m256i s0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]),
                                            _mm256_hadd_epi32(a[2], a[3]));
    const __m256i s4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]),
                                            _mm256_hadd_epi32(a[6], a[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(s0123, s4567, 0x20),
                            _mm256_permute2x128_si256(s0123, s4567, 0x31));
}

/* One row (a batch-1 FULLY_CONNECTED, the last pixel of a convolution):
 * eight weight rows at a time dotted with the row straight from the int8
 * matrix, sign-extended in registers.  A single row uses each weight once,
 * so the layer streams its weights: the int8 matrix is half the bytes of the
 * int16 panels.  The per-channel arrays are padded to sixteen (w_packed is
 * set), so a last block of fewer than eight channels repeats the last row
 * and drops the extra lanes. */
TRT_AVX2 static void gemv(const int16_t *xb, int32_t k, const int8_t *w, int32_t n,
                          const int32_t *bias, const int32_t *mult,
                          const int32_t *shift, const double *scale,
                          int32_t out_offset, int32_t act_min, int32_t act_max,
                          int8_t *out) {
    /* xb: the row widened to int16, 32-byte aligned */
    const int32_t k16 = k & ~15, k8 = k & ~7;
    const __m256i offset = _mm256_set1_epi32(out_offset);
    const __m256i lo = _mm256_set1_epi32(act_min);
    const __m256i hi = _mm256_set1_epi32(act_max);
    for (int32_t oc = 0; oc < n; oc += 8) {
        const int32_t count = TRT_MIN(8, n - oc);
        const int8_t *row[8];
        for (int32_t j = 0; j < 8; ++j) {
            row[j] = w + (int64_t)(oc + TRT_MIN(j, count - 1)) * k;
        }
        /* named accumulators: an array here is spilled by GCC */
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        __m256i a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int32_t i = 0; i < k16; i += 16) {
            const __m256i xv = _mm256_load_si256((const __m256i *)(xb + i));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(load16(row[0] + i), xv));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(load16(row[1] + i), xv));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(load16(row[2] + i), xv));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(load16(row[3] + i), xv));
            a4 = _mm256_add_epi32(a4, _mm256_madd_epi16(load16(row[4] + i), xv));
            a5 = _mm256_add_epi32(a5, _mm256_madd_epi16(load16(row[5] + i), xv));
            a6 = _mm256_add_epi32(a6, _mm256_madd_epi16(load16(row[6] + i), xv));
            a7 = _mm256_add_epi32(a7, _mm256_madd_epi16(load16(row[7] + i), xv));
        }
        __m256i a[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        if (k8 > k16) {
            const __m128i xv = _mm_load_si128((const __m128i *)(xb + k16));
            for (int32_t j = 0; j < 8; ++j) {
                const __m128i p = _mm_madd_epi16(load8(row[j] + k16), xv);
                a[j] = _mm256_add_epi32(a[j], _mm256_inserti128_si256(_mm256_setzero_si256(), p, 0));
            }
        }
        __m256i sum = reduce8(a);
        if (k > k8) {
            int32_t tail[8];
            for (int32_t j = 0; j < 8; ++j) {
                tail[j] = 0;
                for (int32_t i = k8; i < k; ++i) {
                    tail[j] += (int32_t)xb[i] * (int32_t)row[j][i];
                }
            }
            sum = _mm256_add_epi32(sum, _mm256_loadu_si256((const __m256i *)tail));
        }
        finish8(sum, bias + oc, mult ? mult + oc : 0, shift ? shift + oc : 0,
                scale ? scale + oc : 0, offset, lo, hi, out + oc, count);
    }
}

/* Output-channel-vectorised GEMM: each weight load (sixteen channels times
 * two k) feeds every row, each row's pair of inputs is broadcast, and
 * vpmaddwd sums the two exact products - no horizontal reductions, and the
 * accumulators are already in the per-channel layout requantisation needs. */
/* len int8 -> int16 at dst (any alignment). */
TRT_AVX2 static inline void widen_into(const int8_t *x, int32_t len, int16_t *dst) {
    int32_t i = 0;
    for (; i + 16 <= len; i += 16) {
        _mm256_storeu_si256((__m256i *)(dst + i), load16(x + i));
    }
    for (; i + 8 <= len; i += 8) {
        _mm_storeu_si128((__m128i *)(dst + i), load8(x + i));
    }
    for (; i < len; ++i) {
        dst[i] = x[i];
    }
}

typedef int16_t trt_gemm_rows[TRT_GEMM_MR][TRT_GEMM_MAX_K + 16];

/* The GEMM on rows already widened (xb[r][k] = 0 for an odd k). */
TRT_AVX2 static void gemm_core(trt_gemm_rows xb, int32_t m, int32_t k,
                               const int8_t *w, const int16_t *w_packed,
                               int32_t n, const int32_t *bias,
                               const int32_t *mult, const int32_t *shift,
                               const double *scale, int32_t out_offset,
                               int32_t act_min, int32_t act_max,
                               int8_t *const *out) {
    if (m == 1) {
        gemv(xb[0], k, w, n, bias, mult, shift, scale, out_offset, act_min,
             act_max, out[0]);
        return;
    }
    const int32_t kp = (k + 1) / 2;
    const __m256i offset = _mm256_set1_epi32(out_offset);
    const __m256i lo = _mm256_set1_epi32(act_min);
    const __m256i hi = _mm256_set1_epi32(act_max);
    for (int32_t oc = 0; oc < n; oc += 16) {
        const int16_t *wp = w_packed + (int64_t)(oc / 16) * kp * 32;
        const int32_t count = TRT_MIN(16, n - oc);
        /* this block's per-channel constants (mult/shift are NULL under the
         * FC reference rescale, scale otherwise) */
        const int32_t *bo = bias + oc;
        const int32_t *mo = mult ? mult + oc : 0;
        const int32_t *so = shift ? shift + oc : 0;
        const double *sc = scale ? scale + oc : 0;
        if (m == 4 && count <= 8) {
            /* a narrow layer (e.g. a first convolution with 8 filters): the
             * upper eight lanes of the panel are zero padding, skip them */
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
            _Pragma("GCC unroll 4")
            for (int32_t i = 0; i < kp; ++i) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wp + i * 32));
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(pair_at(xb[0], i), w0));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(pair_at(xb[1], i), w0));
                a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(pair_at(xb[2], i), w0));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(pair_at(xb[3], i), w0));
            }
            if (!sc) {
                const trt_rq8 c0 = rq8_load(bo, mo, so);
                finish8_rq(a0, &c0, offset, lo, hi, out[0] + oc, count);
                finish8_rq(a1, &c0, offset, lo, hi, out[1] + oc, count);
                finish8_rq(a2, &c0, offset, lo, hi, out[2] + oc, count);
                finish8_rq(a3, &c0, offset, lo, hi, out[3] + oc, count);
                continue;
            }
            finish8(a0, bo, mo, so, sc, offset, lo, hi, out[0] + oc, count);
            finish8(a1, bo, mo, so, sc, offset, lo, hi, out[1] + oc, count);
            finish8(a2, bo, mo, so, sc, offset, lo, hi, out[2] + oc, count);
            finish8(a3, bo, mo, so, sc, offset, lo, hi, out[3] + oc, count);
            continue;
        }
        if (m == 4) {
            __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00;
            __m256i a20 = a00, a21 = a00, a30 = a00, a31 = a00;
            _Pragma("GCC unroll 4")
            for (int32_t i = 0; i < kp; ++i) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wp + i * 32));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wp + i * 32 + 16));
                __m256i b = pair_at(xb[0], i);
                a00 = _mm256_add_epi32(a00, _mm256_madd_epi16(b, w0));
                a01 = _mm256_add_epi32(a01, _mm256_madd_epi16(b, w1));
                b = pair_at(xb[1], i);
                a10 = _mm256_add_epi32(a10, _mm256_madd_epi16(b, w0));
                a11 = _mm256_add_epi32(a11, _mm256_madd_epi16(b, w1));
                b = pair_at(xb[2], i);
                a20 = _mm256_add_epi32(a20, _mm256_madd_epi16(b, w0));
                a21 = _mm256_add_epi32(a21, _mm256_madd_epi16(b, w1));
                b = pair_at(xb[3], i);
                a30 = _mm256_add_epi32(a30, _mm256_madd_epi16(b, w0));
                a31 = _mm256_add_epi32(a31, _mm256_madd_epi16(b, w1));
            }
            if (!sc) {
                const trt_rq8 c0 = rq8_load(bo, mo, so), c1 = rq8_load(bo + 8, mo + 8, so + 8);
                finish16_rq(a00, a01, &c0, &c1, offset, lo, hi, out[0] + oc, count);
                finish16_rq(a10, a11, &c0, &c1, offset, lo, hi, out[1] + oc, count);
                finish16_rq(a20, a21, &c0, &c1, offset, lo, hi, out[2] + oc, count);
                finish16_rq(a30, a31, &c0, &c1, offset, lo, hi, out[3] + oc, count);
                continue;
            }
            finish16(a00, a01, bo, mo, so, sc, offset, lo, hi, out[0] + oc, count);
            finish16(a10, a11, bo, mo, so, sc, offset, lo, hi, out[1] + oc, count);
            finish16(a20, a21, bo, mo, so, sc, offset, lo, hi, out[2] + oc, count);
            finish16(a30, a31, bo, mo, so, sc, offset, lo, hi, out[3] + oc, count);
            continue;
        }
        for (int32_t r = 0; r < m; ++r) {
            __m256i a0 = _mm256_setzero_si256(), a1 = a0;
            for (int32_t i = 0; i < kp; ++i) {
                const __m256i b = pair_at(xb[r], i);
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(b, _mm256_loadu_si256((const __m256i *)(wp + i * 32))));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(b, _mm256_loadu_si256((const __m256i *)(wp + i * 32 + 16))));
            }
            finish16(a0, a1, bo, mo, so, sc, offset, lo, hi, out[r] + oc, count);
        }
    }
}

TRT_AVX2 static void gemm(const int8_t *const *x, int32_t m, int32_t k,
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
    trt_gemm_rows xb __attribute__((aligned(32)));
    for (int32_t r = 0; r < m; ++r) {
        widen_into(x[r], k, xb[r]);
        xb[r][k] = 0; /* the odd k's partner: its packed weight is 0 too */
    }
    gemm_core(xb, m, k, w, w_packed, n, bias, mult, shift, scale, out_offset,
              act_min, act_max, out);
}

/* Rows in segments (a convolution's kernel rows read in place): widening
 * them is the gather, so interior pixels need no im2col copy. */
TRT_AVX2 static void gemm_seg(const int8_t *const *x, int32_t segs, int32_t m,
                              int32_t k, const int8_t *w,
                              const int16_t *w_packed, int32_t n,
                              const int32_t *bias, const int32_t *mult,
                              const int32_t *shift, const double *scale,
                              int32_t out_offset, int32_t act_min,
                              int32_t act_max, int8_t *const *out) {
    trt_gemm_rows xb __attribute__((aligned(32)));
    const int32_t len = k / segs;
    for (int32_t r = 0; r < m; ++r) {
        for (int32_t s = 0; s < segs; ++s) {
            widen_into(x[r * segs + s], len, xb[r] + s * len);
        }
        xb[r][k] = 0;
    }
    gemm_core(xb, m, k, w, w_packed, n, bias, mult, shift, scale, out_offset,
              act_min, act_max, out);
}

const trt_ukernels trt_ukernels_avx2 = {
    TRT_ISA_AVX2, 1, dot_1x4, dot_2x4, mac_rows, requantize, dw_pixel, gemm, add,
    dw_run, gemm_seg,
    0, 0, 0, 0, 0, /* rows_u8, gemm_k4, dw_k4, dw_k4_in_place, widen3_u8: the VNNI tables set them */
};

#endif
