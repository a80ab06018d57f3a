/*
 * QUANTIZE: float -> int8/uint8, and int8/uint8 -> int8/uint8 (requantize).
 *
 * From float, TFLite's reference AffineQuantize divides in single precision
 * by the output scale, rounds half away from zero and adds the zero point.
 * Between 8-bit types it rescales with one fixed-point multiplier, with the
 * exact int8 <-> uint8 shift-by-128 as a special case.
 */
#include "trt_fixedpoint.h"

static int32_t quantize_one(const trt_quantize_params *p, float val) {
    const float scaled = val / p->scale;
    /* NaN and values beyond int32 go the way TFLite's unchecked cast goes
     * on this host (trt_round_to_i32); the zero point is then added with
     * the same int32 wrap-around. */
    int32_t q = trt_round_to_i32((double)scaled);
    q = (int32_t)((uint32_t)q + (uint32_t)p->zero_point);
    return trt_clamp(q, p->qmin, p->qmax);
}

void trt_quantize_f32_s8(const trt_quantize_params *p, const float *input,
                         int8_t *output) {
    for (int32_t i = 0; i < p->size; ++i) {
        output[i] = (int8_t)quantize_one(p, input[i]);
    }
}

void trt_quantize_f32_u8(const trt_quantize_params *p, const float *input,
                         uint8_t *output) {
    for (int32_t i = 0; i < p->size; ++i) {
        output[i] = (uint8_t)quantize_one(p, input[i]);
    }
}

void trt_requantize_8(const trt_quantize_params *p, const void *input,
                      int32_t in_signed, void *output, int32_t out_signed) {
    const int8_t *in_s = (const int8_t *)input;
    const uint8_t *in_u = (const uint8_t *)input;
    int8_t *out_s = (int8_t *)output;
    uint8_t *out_u = (uint8_t *)output;
    const int32_t lo = out_signed ? -128 : 0;
    const int32_t hi = out_signed ? 127 : 255;
    for (int32_t i = 0; i < p->size; ++i) {
        const int32_t x = in_signed ? (int32_t)in_s[i] : (int32_t)in_u[i];
        int32_t y = trt_requantize(x - p->input_zero_point, p->multiplier,
                                   p->shift) + p->zero_point;
        y = trt_clamp(y, lo, hi);
        if (out_signed) {
            out_s[i] = (int8_t)y;
        } else {
            out_u[i] = (uint8_t)y;
        }
    }
}
