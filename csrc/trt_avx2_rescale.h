/*
 * trt_avx2_rescale.h - the AVX2 requantisation, shared by the AVX2 table
 * and the AVX-VNNI table built over it (private; x86-64 only; include after
 * <immintrin.h> with TRT_AVX2 defined as the AVX2 target attribute).
 */
#ifndef TRT_AVX2_RESCALE_H
#define TRT_AVX2_RESCALE_H

/* gemmlowp MultiplyByQuantizedMultiplier on eight lanes, split in two: the
 * per-channel terms (computed once for the many pixels that share the
 * channels: a GEMM block's rows, a depthwise run's pixels) and their use. */
typedef struct {
    __m256i bias, mult, mult_odd, left, right, mask, half;
} trt_rq8;

TRT_AVX2 static inline trt_rq8 rq8_make(__m256i bias, __m256i mult, __m256i shift) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i one = _mm256_set1_epi32(1);
    trt_rq8 c;
    c.bias = bias;
    c.mult = mult;
    c.mult_odd = _mm256_srli_epi64(mult, 32);
    c.left = _mm256_max_epi32(shift, zero);
    c.right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    c.mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, c.right), one);
    c.half = _mm256_srai_epi32(c.mask, 1);
    return c;
}

TRT_AVX2 static inline trt_rq8 rq8_load(const int32_t *bias, const int32_t *mult,
                                        const int32_t *shift) {
    return rq8_make(_mm256_loadu_si256((const __m256i *)bias),
                    _mm256_loadu_si256((const __m256i *)mult),
                    _mm256_loadu_si256((const __m256i *)shift));
}

/* The wrapping left shift of v + bias; the high half of 2 * v * mult,
 * rounded: (v * mult + 2^30) >> 31 (the logical 64-bit shift leaves the
 * same low 32 bits as an arithmetic one); then the rounding divide by
 * 2^right, halves away from zero: gemmlowp adds one when rem > (mask >> 1)
 * + (high < 0), and moving the sign term to the left (rem - 1 for a
 * negative high, never below -1) keeps it exact. */
TRT_AVX2 static inline __m256i rq8_apply(__m256i v, const trt_rq8 *c) {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i round = _mm256_set1_epi64x(1LL << 30);
    v = _mm256_sllv_epi32(_mm256_add_epi32(v, c->bias), c->left);
    const __m256i even = _mm256_srli_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(v, c->mult), round), 31);
    const __m256i odd = _mm256_srli_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), c->mult_odd), round), 31);
    const __m256i high = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    const __m256i rem = _mm256_add_epi32(_mm256_and_si256(high, c->mask),
                                         _mm256_cmpgt_epi32(zero, high));
    return _mm256_sub_epi32(_mm256_srav_epi32(high, c->right),
                            _mm256_cmpgt_epi32(rem, c->half));
}

/* One-off use without a bias: the terms made and used at once. */
TRT_AVX2 static inline __m256i requantize8(__m256i v, __m256i mult, __m256i shift) {
    const trt_rq8 c = rq8_make(_mm256_setzero_si256(), mult, shift);
    return rq8_apply(v, &c);
}

/* The one-floor requantisation of the VNNI kernels (trt_avx512_rescale.h's
 * rq16f, which has the arithmetic) on eight lanes, from the plan-time
 * rescale_k4 table: for the usual right shifts, gemmlowp's rescale plus the
 * output zero point is (v * M + K - [v < 0] 2^31) >> S, K and S from the
 * table.  AVX2 has no 64-bit arithmetic shift, but S >= 32: the high dword
 * of the 64-bit sum is its floor by 2^32, and a 32-bit arithmetic shift by
 * S - 32 finishes it.  13 operations for 8 outputs, the zero point
 * included, against rq8_apply's 17 and the add. */
typedef struct {
    __m256i mult, mult_odd, k_even, kneg_even, k_odd, kneg_odd, sh;
} trt_rq8f;

/* Channels 8 h .. 8 h + 7 of 16-channel block `block` of a rescale_k4
 * table (tinyrt.h: per block six rows of eight int64). */
TRT_AVX2 static inline trt_rq8f rq8f_load(const int64_t *table, int32_t block, int32_t h) {
    const int64_t *t = table + (int64_t)block * 48 + 4 * h;
    const __m256i two31 = _mm256_set1_epi64x(INT64_C(1) << 31);
    trt_rq8f r;
    r.mult = _mm256_loadu_si256((const __m256i *)t);
    r.mult_odd = _mm256_loadu_si256((const __m256i *)(t + 8));
    r.k_even = _mm256_loadu_si256((const __m256i *)(t + 16));
    r.k_odd = _mm256_loadu_si256((const __m256i *)(t + 24));
    r.kneg_even = _mm256_sub_epi64(r.k_even, two31);
    r.kneg_odd = _mm256_sub_epi64(r.k_odd, two31);
    const __m256i s = _mm256_blend_epi32(_mm256_loadu_si256((const __m256i *)(t + 32)),
                                         _mm256_slli_epi64(_mm256_loadu_si256((const __m256i *)(t + 40)), 32),
                                         0xAA);
    r.sh = _mm256_sub_epi32(s, _mm256_set1_epi32(32));
    return r;
}

/* Requantised v plus the zero point (no clamp; always within int32). */
TRT_AVX2 static inline __m256i rq8f_apply(__m256i v, const trt_rq8f *r) {
    const __m256i sign = _mm256_srai_epi32(v, 31);
    const __m256i even = _mm256_add_epi64(
        _mm256_mul_epi32(v, r->mult),
        _mm256_blendv_epi8(r->k_even, r->kneg_even, _mm256_shuffle_epi32(sign, 0xA0)));
    const __m256i odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64(v, 32), r->mult_odd),
        _mm256_blendv_epi8(r->k_odd, r->kneg_odd, _mm256_shuffle_epi32(sign, 0xF5)));
    return _mm256_srav_epi32(_mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA), r->sh);
}

/* Eight int32 accumulators -> TFLite's double-precision FULLY_CONNECTED
 * rescale: round half away from zero of acc * scale (via trunc and the exact
 * fraction), the x86 int32 conversion (INT32_MIN out of range, as the
 * scalar cast); the caller adds the zero point with wrap-around. */
TRT_AVX2 static inline __m256i rescale_f64x8(__m256i acc, const double *scale) {
    const __m256d half = _mm256_set1_pd(0.5), mhalf = _mm256_set1_pd(-0.5);
    const __m256d one = _mm256_set1_pd(1.0);
    __m128i parts[2];
    for (int h = 0; h < 2; ++h) {
        const __m128i a = h ? _mm256_extracti128_si256(acc, 1) : _mm256_castsi256_si128(acc);
        const __m256d d = _mm256_mul_pd(_mm256_cvtepi32_pd(a), _mm256_loadu_pd(scale + 4 * h));
        const __m256d t = _mm256_round_pd(d, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256d frac = _mm256_sub_pd(d, t);
        __m256d r = _mm256_add_pd(t, _mm256_and_pd(_mm256_cmp_pd(frac, half, _CMP_GE_OQ), one));
        r = _mm256_sub_pd(r, _mm256_and_pd(_mm256_cmp_pd(frac, mhalf, _CMP_LE_OQ), one));
        parts[h] = _mm256_cvttpd_epi32(r);
    }
    return _mm256_set_m128i(parts[1], parts[0]);
}

/* The first `count` (<= 16) of sixteen bytes to out. */
TRT_AVX2 static inline void store_first(__m128i bytes, int8_t *out, int32_t count) {
    if (count == 16) {
        _mm_storeu_si128((__m128i *)out, bytes);
        return;
    }
    if (count == 8) {
        _mm_storel_epi64((__m128i *)out, bytes);
        return;
    }
    int8_t tmp[16];
    _mm_storeu_si128((__m128i *)tmp, bytes);
    for (int32_t j = 0; j < count; ++j) {
        out[j] = tmp[j];
    }
}

#endif /* TRT_AVX2_RESCALE_H */
