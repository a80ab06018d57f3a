/*
 * trt_avx512_rescale.h - the requantisation on sixteen AVX-512 lanes, shared
 * by the AVX-512 VNNI table's files (private; x86-64 only; include after
 * <immintrin.h> with TRT_VNNI_INLINE defined as an always-inline function
 * with the AVX-512 target attribute).
 */
#ifndef TRT_AVX512_RESCALE_H
#define TRT_AVX512_RESCALE_H

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

#endif /* TRT_AVX512_RESCALE_H */
