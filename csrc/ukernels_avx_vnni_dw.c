/*
 * DEPTHWISE_CONV_2D on AVX-VNNI (the dw_k4 entry of the AVX-VNNI table;
 * depth multiplier 1, kernels up to 4 x 4): the AVX-512 kernel's scheme
 * (trt_dw_k4.h: a lane per channel, its four bytes a kernel row's taps, tap
 * rows in a ring, in place where the ring allows) on 256-bit vectors, so a
 * 16-channel block of a tap row is two vectors, channels 0-7 then 8-15.
 *
 * A tap row's column: the four taps' 16 bytes as two vectors [kx 0 | kx 1]
 * and [kx 2 | kx 3]; a dword unpack, a dword permutation and an in-lane byte
 * shuffle give each channel's four taps together.
 *
 * The requantisation is trt_avx2_rescale.h's rq8f (the AVX2 table's rq8
 * where the plan has no rescale_k4 table), then the activation range in 8
 * bits: saturating at each narrowing step cannot change a result the int8
 * range clamps anyway (with rq8, whose zero point is added in 16 bits, the
 * same holds unless requantised value + zero point overflows int32, which
 * is undefined in the portable C and in TFLite's reference as well).
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_AVX2 __attribute__((target("avx2")))
#include "trt_avx2_rescale.h"
#include "trt_dw_k4.h"

#define TRT_AVXVNNI __attribute__((target("avx2,avxvnni")))
#define TRT_AVXVNNI_INLINE TRT_AVXVNNI static inline __attribute__((always_inline))

/* trt_dw_k4_interleave on AVX2. */
TRT_AVXVNNI static void tap_row(const trt_depthwise_conv2d_params *p, const int8_t *line,
                                int32_t blocks, int32_t step, uint8_t *dst) {
    const int32_t c = p->input.c, out_w = p->output.w;
    const int64_t dx = (int64_t)p->dilation_w * c, col = (int64_t)p->stride_w * c;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    /* after the unpack, dwords (t0 d0, t2 d0, t0 d1, t2 d1 | t1 d0, t3 d0,
     * t1 d1, t3 d1) for tap t, dword d = channels 4d..4d+3: into tap order */
    const __m256i across = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i within = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    for (int32_t ox = 0; ox < out_w; ox += step) {
        const int8_t *src = line + ox * col;
        uint8_t *out = dst + (int64_t)ox * blocks * 64;
        for (int32_t b = 0; b < blocks; ++b, src += 16, out += 64) {
            const __m256i t01 = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)src)),
                _mm_loadu_si128((const __m128i *)(src + dx)), 1);
            const __m256i t23 = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(src + 2 * dx))),
                _mm_loadu_si128((const __m128i *)(src + 3 * dx)), 1);
            const __m256i lo = _mm256_permutevar8x32_epi32(_mm256_unpacklo_epi32(t01, t23), across);
            const __m256i hi = _mm256_permutevar8x32_epi32(_mm256_unpackhi_epi32(t01, t23), across);
            _mm256_store_si256((__m256i *)out, _mm256_xor_si256(_mm256_shuffle_epi8(lo, within), flip));
            _mm256_store_si256((__m256i *)(out + 32), _mm256_xor_si256(_mm256_shuffle_epi8(hi, within), flip));
        }
    }
}

/* A half block's output terms: its bias (the accumulators' start), the
 * rescale (the one-floor rq8f from the plan's rescale_k4 table where there
 * is one, with the zero point in it; else the AVX2 table's), the zero point
 * and the activation range. */
typedef struct {
    __m256i bias;
    trt_rq8f f;
    trt_rq8 rq;
    __m128i offset, lo, hi;
    int fast;
} half_out;

TRT_AVXVNNI_INLINE half_out half_make(const trt_depthwise_conv2d_params *p, int32_t c0) {
    half_out h;
    h.bias = _mm256_loadu_si256((const __m256i *)(p->bias_k4 + c0));
    h.fast = p->rescale_k4 != 0;
    if (h.fast) {
        h.f = rq8f_load(p->rescale_k4, c0 / 16, (c0 / 8) & 1);
    } else {
        h.rq = rq8_make(_mm256_setzero_si256(), _mm256_loadu_si256((const __m256i *)(p->multiplier + c0)),
                        _mm256_loadu_si256((const __m256i *)(p->shift + c0)));
    }
    h.offset = _mm_set1_epi16((int16_t)p->output_offset);
    h.lo = _mm_set1_epi8((char)p->act_min);
    h.hi = _mm_set1_epi8((char)p->act_max);
    return h;
}

/* Eight accumulators -> eight int16 with the zero point added. */
TRT_AVXVNNI_INLINE __m128i half_i16(__m256i acc, const half_out *h) {
    if (h->fast) {
        const __m256i v = rq8f_apply(acc, &h->f);
        return _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    }
    const __m256i v = rq8_apply(acc, &h->rq);
    return _mm_adds_epi16(_mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)),
                          h->offset);
}

/* Two int16 halves -> sixteen clamped bytes. */
TRT_AVXVNNI_INLINE __m128i bytes16(__m128i a, __m128i b, const half_out *h) {
    return _mm_min_epi8(_mm_max_epi8(_mm_packs_epi16(a, b), h->lo), h->hi);
}

/* Output columns [ox0, ox1) of one 16-channel block (q0: its byte offset in
 * a tap row's column, stride cols bytes a column; n of its channels exist).
 * kh is a constant where the caller's branch makes it one. */
TRT_AVXVNNI_INLINE void block_run(const uint8_t *const *taps, int32_t kh, const __m256i *wl,
                                  const __m256i *wh, const half_out *hl, const half_out *hh,
                                  int64_t q0, int64_t cols, int32_t ox0, int32_t ox1, int8_t *out,
                                  int32_t out_step, int32_t n) {
    for (int32_t ox = ox0; ox < ox1; ++ox) {
        const int64_t q = ox * cols + q0;
        __m256i al = hl->bias, ah = hh->bias;
        for (int32_t ky = 0; ky < kh; ++ky) {
            al = _mm256_dpbusd_avx_epi32(al, _mm256_load_si256((const __m256i *)(taps[ky] + q)), wl[ky]);
            if (n > 8) {
                ah = _mm256_dpbusd_avx_epi32(ah, _mm256_load_si256((const __m256i *)(taps[ky] + q + 32)),
                                             wh[ky]);
            }
        }
        const __m128i lo = half_i16(al, hl);
        const __m128i hi = n > 8 ? half_i16(ah, hh) : lo;
        store_first(bytes16(lo, hi, hl), out + (int64_t)ox * out_step, n);
    }
}

/* The table's dw_k4_in_place. */
int32_t trt_avx_vnni_dw_k4_in_place(const trt_depthwise_conv2d_params *p) {
    return trt_dw_k4_takes(p, 1);
}

/* trt_dw_k4_row on AVX2: a 16-channel block is two vectors, channels 0-7
 * then 8-15 (with `pair`, channels 0-7 of pixels ox and ox + 1, both with
 * the first vector's weights and rescale). */
TRT_AVXVNNI static void dw_row(const trt_depthwise_conv2d_params *p, const uint8_t *const *taps,
                               int32_t ox0, int32_t ox1, int8_t *out_row, int pair) {
    const int32_t c = p->input.c, kh = p->filter.h;
    const int32_t blocks = (c + 15) / 16;
    for (int32_t b = 0; b < blocks; ++b) {
        const int32_t c0 = 16 * b, n = TRT_MIN(16, c - c0);
        __m256i wl[TRT_DW_K4_ROWS], wh[TRT_DW_K4_ROWS];
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int8_t *wk = p->packed_k4 + ((int64_t)ky * blocks * 16 + c0) * 4;
            wl[ky] = _mm256_loadu_si256((const __m256i *)wk);
            wh[ky] = pair ? wl[ky] : _mm256_loadu_si256((const __m256i *)(wk + 32));
        }
        const half_out hl = half_make(p, c0);
        const half_out hh = pair ? hl : half_make(p, c0 + 8);
        if (pair) {
            /* columns ox, ox + 1 as one "16-channel" column every 2 */
            for (int32_t ox = ox0; ox < ox1; ox += 2) {
                block_run(taps, kh, wl, wh, &hl, &hh, (int64_t)ox * 64, 0, 0, 1,
                          out_row + (int64_t)ox * 8, 0, ox + 1 < ox1 ? 16 : 8);
            }
        } else if (kh == 3) {
            block_run(taps, 3, wl, wh, &hl, &hh, (int64_t)b * 64, (int64_t)blocks * 64, ox0, ox1,
                      out_row + c0, c, n);
        } else {
            block_run(taps, kh, wl, wh, &hl, &hh, (int64_t)b * 64, (int64_t)blocks * 64, ox0, ox1,
                      out_row + c0, c, n);
        }
    }
}

/* The table's dw_k4 (ukernels_avx_vnni.c puts it there). */
TRT_AVXVNNI int32_t trt_avx_vnni_dw_k4(const trt_depthwise_conv2d_params *p, const int8_t *input,
                                       int8_t *output, int32_t begin, int32_t end) {
    return trt_dw_k4_run(p, input, output, begin, end, tap_row, dw_row);
}

#endif
