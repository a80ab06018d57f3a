/*
 * MUL, int8, with numpy-style broadcasting over up to four dimensions.
 *
 * TFLite's reference MulElementwise: (x1 - zp1) * (x2 - zp2) rescaled by
 * one fixed-point multiplier (s1 * s2 / s_out, computed in float by TFLite).
 */
#include "trt_fixedpoint.h"

TRT_INLINE int8_t mul_one(const trt_binary_params *p, int32_t x, int32_t y) {
    const int32_t prod = (p->input1_offset + x) * (p->input2_offset + y);
    const int32_t raw = p->output_offset +
                        trt_requantize(prod, p->output_multiplier,
                                       p->output_shift);
    return (int8_t)trt_clamp(raw, p->act_min, p->act_max);
}

void trt_mul_s8(const trt_binary_params *p, const int8_t *input1,
                const int8_t *input2, int8_t *output) {
    const int32_t *s = p->out_shape;
    const int32_t *a = p->in1_strides;
    const int32_t *b = p->in2_strides;
    int64_t o = 0;
    for (int32_t i0 = 0; i0 < s[0]; ++i0) {
        for (int32_t i1 = 0; i1 < s[1]; ++i1) {
            for (int32_t i2 = 0; i2 < s[2]; ++i2) {
                const int8_t *x = input1 + (int64_t)i0 * a[0] +
                                  (int64_t)i1 * a[1] + (int64_t)i2 * a[2];
                const int8_t *y = input2 + (int64_t)i0 * b[0] +
                                  (int64_t)i1 * b[1] + (int64_t)i2 * b[2];
                for (int32_t i3 = 0; i3 < s[3]; ++i3) {
                    output[o++] = mul_one(p, x[i3 * a[3]], y[i3 * b[3]]);
                }
            }
        }
    }
}
