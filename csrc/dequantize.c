/*
 * DEQUANTIZE: int8/uint8 -> float, as TFLite's reference:
 * (float)(scale * (q - zero_point)) with the product in double precision.
 */
#include "trt_fixedpoint.h"

void trt_dequantize_s8_f32(const trt_dequantize_params *p, const int8_t *input,
                           float *output) {
    for (int32_t i = 0; i < p->size; ++i) {
        output[i] = (float)(p->scale * (double)((int32_t)input[i] - p->zero_point));
    }
}

void trt_dequantize_u8_f32(const trt_dequantize_params *p,
                           const uint8_t *input, float *output) {
    for (int32_t i = 0; i < p->size; ++i) {
        output[i] = (float)(p->scale * (double)((int32_t)input[i] - p->zero_point));
    }
}
