/*
 * trt_avx512_rescale.h - the requantisation on sixteen AVX-512 lanes, shared
 * by the AVX-512 VNNI table's files (private; x86-64 only; include after
 * <immintrin.h> with TRT_VNNI_INLINE defined as an always-inline function
 * with the AVX-512 target attribute).
 */
#ifndef TRT_AVX512_RESCALE_H
#define TRT_AVX512_RESCALE_H

/* gemmlowp MultiplyByQuantizedMultiplier plus the zero point on sixteen
 * lanes, as every kernel of the table needs it: the bias is already in the
 * accumulator and the zero point is folded into a 64-bit constant.  With P = (acc << left) * mult (64-bit,
 * exact) and e = -shift > 0, gemmlowp's two roundings (the rounded doubling
 * high half, then the rounding divide by 2^e, halves away from zero) are one
 * floor:
 *
 *     acc' = (P + 2^30 + 2^(30+e) - [P < 0] 2^31) >> (31 + e)
 *
 * (the doubling high half is floor(P / 2^31 + 1/2); nesting the floors of
 * the divide gives the sum above, the [P < 0] term moving the tie of a
 * negative value away from zero; for shift >= 0 it is (P + 2^30) >> 31).
 * Then + zp = (P + K + zp 2^(31+e)) >> (31+e) while that sum fits in 64
 * bits (31 + e <= 54).  Sixteen lanes: vpmuldq on the even and the odd
 * channels, the constant, the sign correction (a compare into a mask, a
 * masked subtract), an arithmetic shift of each quadword, the two halves
 * merged: 12 operations, where gemmlowp's two roundings done one after the
 * other took 16 and the zero point one more.  The usual case (every e >= 1,
 * the zero point in the constant: all plan-time tables) shifts the high
 * doublewords instead, 11 operations, and 7 without the sign correction,
 * which a ReLU or ReLU6 clamp makes moot (rq16f_apply).  Checked bit for
 * bit against the portable table by tests/c/ukernel_diff.c. */
typedef struct {
    __m512i mult, mult_odd;       /* Q31 multipliers, even lanes / odd lanes */
    __m512i k_even, k_odd;        /* 2^30 [+ 2^(30+e)] [+ zp 2^(31+e)]      */
    __m512i corr_even, corr_odd;  /* 2^31 where e > 0, else 0               */
    __m512i s_even, s_odd;        /* 31 + e                                  */
    __m512i left;                 /* max(shift, 0), used when any_left       */
    __m512i zp;                   /* added after the shift when zp_late      */
    __m512i lo, hi;               /* the activation range, in every byte     */
    __m512i s32;                  /* 31 + e - 32 per channel, when high32     */
    int any_left, zp_late;
    /* high32: every e >= 1 and the zero point in the constant, so the
     * shift is of the high doublewords (S >= 32, see rq16f_apply).
     * corr: the sign correction is needed.  Without it a negative product
     * gives a value <= 0 in place of a value <= 0 that may be one lower
     * ((P + K) / 2^S < 1/2 + 2^(-1-e) < 1 for P < 0); when act_min >= zp
     * (ReLU, ReLU6) both are clamped to act_min, so it is left out. */
    int high32, corr;
} trt_rq16f;

/* The shifts S of the even and of the odd channels (quadwords) as S - 32
 * in each channel's doubleword. */
TRT_VNNI_INLINE __m512i rq16f_dwords(__m512i s_even, __m512i s_odd) {
    return _mm512_sub_epi32(_mm512_mask_shuffle_epi32(s_even, 0xAAAA, s_odd, _MM_PERM_CDAB),
                            _mm512_set1_epi32(32));
}

TRT_VNNI_INLINE trt_rq16f rq16f_load(const int32_t *mult, const int32_t *shift,
                                     int32_t zp, int32_t act_min, int32_t act_max) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i one64 = _mm512_set1_epi64(1);
    const __m512i sh = _mm512_loadu_si512(shift);
    trt_rq16f c;
    c.mult = _mm512_loadu_si512(mult);
    c.mult_odd = _mm512_srli_epi64(c.mult, 32);
    c.left = _mm512_max_epi32(sh, zero);
    c.any_left = _mm512_test_epi32_mask(c.left, c.left) != 0;
    const __m512i e = _mm512_max_epi32(_mm512_sub_epi32(zero, sh), zero);
    /* e of the even and of the odd channels as quadwords */
    const __m512i e_even = _mm512_and_si512(e, _mm512_set1_epi64(0xFFFFFFFFLL));
    const __m512i e_odd = _mm512_srli_epi64(e, 32);
    const __m512i s31 = _mm512_set1_epi64(31);
    c.s_even = _mm512_add_epi64(e_even, s31);
    c.s_odd = _mm512_add_epi64(e_odd, s31);
    const __mmask8 pos_even = _mm512_test_epi64_mask(e_even, e_even);
    const __mmask8 pos_odd = _mm512_test_epi64_mask(e_odd, e_odd);
    const __m512i half = _mm512_set1_epi64(1LL << 30), top = _mm512_set1_epi64(1LL << 31);
    c.corr_even = _mm512_maskz_mov_epi64(pos_even, top);
    c.corr_odd = _mm512_maskz_mov_epi64(pos_odd, top);
    /* 2^30 + 2^(30+e) where e > 0 */
    c.k_even = _mm512_mask_add_epi64(half, pos_even, half,
                                     _mm512_sllv_epi64(one64, _mm512_add_epi64(e_even, _mm512_set1_epi64(30))));
    c.k_odd = _mm512_mask_add_epi64(half, pos_odd, half,
                                    _mm512_sllv_epi64(one64, _mm512_add_epi64(e_odd, _mm512_set1_epi64(30))));
    /* the zero point in the constant while 31 + e <= 54 (no 64-bit overflow) */
    const __mmask8 wide = _mm512_cmpgt_epi64_mask(c.s_even, _mm512_set1_epi64(54)) |
                          _mm512_cmpgt_epi64_mask(c.s_odd, _mm512_set1_epi64(54));
    c.zp_late = wide != 0;
    c.zp = _mm512_set1_epi32(zp);
    if (!c.zp_late) {
        const __m512i zp64 = _mm512_set1_epi64(zp);
        c.k_even = _mm512_add_epi64(c.k_even, _mm512_sllv_epi64(zp64, c.s_even));
        c.k_odd = _mm512_add_epi64(c.k_odd, _mm512_sllv_epi64(zp64, c.s_odd));
    }
    c.lo = _mm512_set1_epi8((char)act_min);
    c.hi = _mm512_set1_epi8((char)act_max);
    c.high32 = !c.any_left && !c.zp_late && (pos_even & pos_odd) == 0xFF;
    c.s32 = rq16f_dwords(c.s_even, c.s_odd);
    c.corr = act_min < zp;
    return c;
}

/* The same constants from a plan-time table (rescale_k4: one block of 48
 * int64 for these sixteen channels; every shift in [-23, -1]). */
TRT_VNNI_INLINE trt_rq16f rq16f_table(const int64_t *t, int32_t zp, int32_t act_min, int32_t act_max) {
    trt_rq16f c;
    c.mult = _mm512_loadu_si512(t);
    c.mult_odd = _mm512_loadu_si512(t + 8);
    c.k_even = _mm512_loadu_si512(t + 16);
    c.k_odd = _mm512_loadu_si512(t + 24);
    c.s_even = _mm512_loadu_si512(t + 32);
    c.s_odd = _mm512_loadu_si512(t + 40);
    c.corr_even = c.corr_odd = _mm512_set1_epi64(1LL << 31);
    c.left = c.zp = _mm512_setzero_si512();
    c.any_left = c.zp_late = 0;
    c.lo = _mm512_set1_epi8((char)act_min);
    c.hi = _mm512_set1_epi8((char)act_max);
    c.high32 = 1;
    c.s32 = rq16f_dwords(c.s_even, c.s_odd);
    c.corr = act_min < zp;
    return c;
}

/* The constants of 16-channel block `block`: from the plan-time table when
 * the plan made one (rescale_k4; NULL otherwise), else from the per-channel
 * multipliers and shifts. */
TRT_VNNI_INLINE trt_rq16f rq16f_block(const int64_t *table, const int32_t *mult, const int32_t *shift,
                                      int64_t block, int32_t zp, int32_t act_min, int32_t act_max) {
    return table ? rq16f_table(table + block * 48, zp, act_min, act_max)
                 : rq16f_load(mult + block * 16, shift + block * 16, zp, act_min, act_max);
}

/* The 64-bit sums P + K [- 2^31 where P < 0, with corr] of the even and
 * of the odd channels (P = acc * mult). */
TRT_VNNI_INLINE void rq16f_sums(__m512i acc, const trt_rq16f *c, const int corr, __m512i *t_even,
                                __m512i *t_odd) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i p_even = _mm512_mul_epi32(acc, c->mult);
    const __m512i p_odd = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), c->mult_odd);
    *t_even = _mm512_add_epi64(p_even, c->k_even);
    *t_odd = _mm512_add_epi64(p_odd, c->k_odd);
    if (corr) {
        *t_even = _mm512_mask_sub_epi64(*t_even, _mm512_cmplt_epi64_mask(p_even, zero), *t_even, c->corr_even);
        *t_odd = _mm512_mask_sub_epi64(*t_odd, _mm512_cmplt_epi64_mask(p_odd, zero), *t_odd, c->corr_odd);
    }
}

/* acc (bias included) -> requantised value + zero point, sixteen lanes. */
TRT_VNNI_INLINE __m512i rq16f_apply(__m512i acc, const trt_rq16f *c) {
    __m512i t_even, t_odd;
    if (c->high32) {
        /* S >= 32: the high doubleword of each 64-bit sum is its floor by
         * 2^32 (it fits: |sum| < 2^63), and a 32-bit arithmetic shift by
         * S - 32 finishes the floor.  One in-lane shuffle gathers the
         * sixteen high doublewords (even channels' moved down, odd
         * channels' in place), one shift does all sixteen: 11 operations,
         * 7 with no sign correction, instead of 12. */
        rq16f_sums(acc, c, c->corr, &t_even, &t_odd);
        return _mm512_srav_epi32(_mm512_mask_shuffle_epi32(t_odd, 0x5555, t_even, _MM_PERM_CDAB), c->s32);
    }
    if (c->any_left) {
        acc = _mm512_sllv_epi32(acc, c->left);
    }
    rq16f_sums(acc, c, 1, &t_even, &t_odd);
    const __m512i z_even = _mm512_srav_epi64(t_even, c->s_even);
    const __m512i z_odd = _mm512_srav_epi64(t_odd, c->s_odd);
    /* the low doublewords: even channels from z_even, odd from z_odd */
    const __m512i pick = _mm512_set_epi32(30, 14, 28, 12, 26, 10, 24, 8, 22, 6, 20, 4, 18, 2, 16, 0);
    __m512i z = _mm512_permutex2var_epi32(z_even, pick, z_odd);
    if (c->zp_late) {
        z = _mm512_add_epi32(z, c->zp);
    }
    return z;
}

/* rq16f_apply's values clamped to the activation range, stored as bytes
 * (the lanes of `keep`): a saturating narrow, then the range in bytes. */
TRT_VNNI_INLINE void rq16f_store(__m512i z, const trt_rq16f *c, int8_t *out, __mmask16 keep) {
    __m128i b = _mm512_cvtsepi32_epi8(z);
    b = _mm_min_epi8(_mm_max_epi8(b, _mm512_castsi512_si128(c->lo)), _mm512_castsi512_si128(c->hi));
    if (keep == 0xFFFF) {
        _mm_storeu_si128((__m128i *)out, b);
    } else {
        _mm_mask_storeu_epi8(out, keep, b);
    }
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

/* The low 256 bits in both halves. */
TRT_VNNI_INLINE __m512i low_twice(__m512i v) {
    return _mm512_shuffle_i64x2(v, v, 0x44);
}

/* rq16f constants of channels 0-7 for lanes 8-15 too (every vector of the
 * struct keeps channels 0-7, or their even / odd quadwords, in its low
 * half): two output pixels of eight channels a vector. */
TRT_VNNI_INLINE void rq16f_low_twice(trt_rq16f *c) {
    c->mult = low_twice(c->mult);
    c->mult_odd = low_twice(c->mult_odd);
    c->k_even = low_twice(c->k_even);
    c->k_odd = low_twice(c->k_odd);
    c->corr_even = low_twice(c->corr_even);
    c->corr_odd = low_twice(c->corr_odd);
    c->s_even = low_twice(c->s_even);
    c->s_odd = low_twice(c->s_odd);
    c->left = low_twice(c->left);
    c->s32 = low_twice(c->s32);
}

/* Four rq16f_apply results as 64 consecutive bytes (z0's sixteen, then
 * z1's, ...): two saturating packs to 16 bits and one to 8 leave each
 * 128-bit lane holding four bytes of every input, one dword permutation
 * puts them in order, and the activation range is two byte operations on
 * all 64.  Where four rows' (or four blocks') outputs are adjacent this
 * replaces four narrows, eight clamps and four stores. */
TRT_VNNI_INLINE void rq16f_store4(__m512i z0, __m512i z1, __m512i z2, __m512i z3, const trt_rq16f *c,
                                  int8_t *out) {
    const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    __m512i v = _mm512_packs_epi16(_mm512_packs_epi32(z0, z1), _mm512_packs_epi32(z2, z3));
    v = _mm512_permutexvar_epi32(order, v);
    v = _mm512_min_epi8(_mm512_max_epi8(v, c->lo), c->hi);
    _mm512_storeu_si512(out, v);
}

#endif /* TRT_AVX512_RESCALE_H */
