/*
 * DEPTHWISE_CONV_2D on AVX-512 VNNI (the dw_k4 entry of the AVX-512 VNNI
 * table; depth multiplier 1, kernels up to 4 x 4).
 *
 * A depthwise output has only KH * KW products, none of them across
 * channels, so the GEMM's use of vpdpbusd does not apply: trt_dw_k4.h has
 * the scheme (a lane per channel, its four bytes a kernel row's taps; tap
 * rows in a ring; when the layer runs in place).  Here a vector is a whole
 * 16-channel block and a tap row's column is built with four 16-byte loads,
 * a cross-lane dword permutation and an in-lane byte shuffle.
 *
 * The requantisation is trt_avx512_rescale.h's rq16f (the bias is the
 * accumulator's start): bit-identical to the portable table.
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TRT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,bmi2")))
#define TRT_VNNI_INLINE TRT_VNNI static inline __attribute__((always_inline))
#include "trt_avx512_rescale.h"
#include "trt_dw_k4.h"

/* trt_dw_k4_interleave on AVX-512. */
TRT_VNNI static void tap_row(const trt_depthwise_conv2d_params *p, const int8_t *line,
                             int32_t blocks, int32_t step, uint8_t *dst) {
    const int32_t c = p->input.c, out_w = p->output.w;
    const int64_t dx = (int64_t)p->dilation_w * c, col = (int64_t)p->stride_w * c;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    /* The four taps' 16 bytes side by side in one vector (lane kx = tap kx,
     * dword j of a lane = its channels 4j..4j+3); a dword permutation makes
     * lane j hold dword j of every tap (a 4x4 transpose across lanes), and a
     * byte shuffle inside each lane puts each channel's four taps together
     * (a 4x4 byte transpose): channels 0-3, 4-7, 8-11, 12-15 of the result
     * are four taps each. */
    const __m512i across = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    const __m512i within = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    for (int32_t ox = 0; ox < out_w; ox += step) {
        const int8_t *src = line + ox * col;
        uint8_t *out = dst + (int64_t)ox * blocks * 64;
        for (int32_t b = 0; b < blocks; ++b, src += 16, out += 64) {
            __m512i q = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)src));
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(src + dx)), 1);
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(src + 2 * dx)), 2);
            q = _mm512_inserti32x4(q, _mm_loadu_si128((const __m128i *)(src + 3 * dx)), 3);
            q = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(across, q), within);
            _mm512_store_si512(out, _mm512_xor_si512(q, flip));
        }
    }
}

/* The table's dw_k4_in_place. */
int32_t trt_avx512_vnni_dw_k4_in_place(const trt_depthwise_conv2d_params *p) {
    return trt_dw_k4_takes(p, 1);
}

/* trt_dw_k4_row on AVX-512: a vector is a whole 16-channel block (with
 * `pair`, channels 0-7 of two pixels: the weights and rescale of channels
 * 0-7 copied to lanes 8-15). */
TRT_VNNI static void dw_row(const trt_depthwise_conv2d_params *p, const uint8_t *const *taps,
                            int32_t ox0, int32_t ox1, int8_t *out_row, int pair) {
    const int32_t c = p->input.c, kh = p->filter.h;
    const int32_t blocks = (c + 15) / 16;
    for (int32_t b = 0; b < blocks; ++b) {
        const int32_t c0 = 16 * b;
        const __mmask16 keep = (__mmask16)(c - c0 >= 16 ? 0xFFFF : (1u << (c - c0)) - 1);
        __m512i w[TRT_DW_K4_ROWS];
        for (int32_t ky = 0; ky < TRT_DW_K4_ROWS; ++ky) {
            w[ky] = ky < kh ? _mm512_loadu_si512(p->packed_k4 + ((int64_t)ky * blocks * 16 + c0) * 4)
                            : _mm512_setzero_si512();
        }
        trt_rq16f rq = rq16f_block(p->rescale_k4, p->multiplier, p->shift, b, p->output_offset,
                                   p->act_min, p->act_max);
        __m512i bias = _mm512_loadu_si512(p->bias_k4 + c0);
        const int64_t at = (int64_t)b * 64;
        if (pair) {
            for (int32_t ky = 0; ky < kh; ++ky) {
                w[ky] = low_twice(w[ky]);
            }
            bias = low_twice(bias);
            rq16f_low_twice(&rq);
            for (int32_t ox = ox0; ox < ox1; ox += 2) {
                const int64_t q = (int64_t)ox * 64;
                __m512i acc = bias;
                for (int32_t ky = 0; ky < kh; ++ky) {
                    acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(taps[ky] + q), w[ky]);
                }
                rq16f_store(rq16f_apply(acc, &rq), &rq, out_row + (int64_t)ox * 8,
                            ox + 1 < ox1 ? 0xFFFF : 0x00FF);
            }
            continue;
        }
        if (kh == 3) {
            /* (the common 3x3 case with the row loop unrolled) */
            for (int32_t ox = ox0; ox < ox1; ++ox) {
                const int64_t q = (int64_t)ox * blocks * 64 + at;
                __m512i acc = _mm512_dpbusd_epi32(bias, _mm512_load_si512(taps[0] + q), w[0]);
                acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(taps[1] + q), w[1]);
                acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(taps[2] + q), w[2]);
                rq16f_store(rq16f_apply(acc, &rq), &rq, out_row + (int64_t)ox * c + c0, keep);
            }
            continue;
        }
        for (int32_t ox = ox0; ox < ox1; ++ox) {
            const int64_t q = (int64_t)ox * blocks * 64 + at;
            __m512i acc = bias;
            for (int32_t ky = 0; ky < kh; ++ky) {
                acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(taps[ky] + q), w[ky]);
            }
            rq16f_store(rq16f_apply(acc, &rq), &rq, out_row + (int64_t)ox * c + c0, keep);
        }
    }
}

/* The table's dw_k4 (ukernels_avx512_vnni.c puts it there). */
TRT_VNNI int32_t trt_avx512_vnni_dw_k4(const trt_depthwise_conv2d_params *p, const int8_t *input,
                                       int8_t *output, int32_t begin, int32_t end) {
    return trt_dw_k4_run(p, input, output, begin, end, tap_row, dw_row);
}

#endif
