/*
 * PAD / PADV2 for 8-bit tensors of up to four dimensions: the padded region
 * takes pad_value (the output zero point, or PADV2's constant).
 */
#include "trt_fixedpoint.h"

void trt_pad_s8(const trt_pad_params *p, const int8_t *input, int8_t *output) {
    int32_t out_shape[4];
    for (int32_t d = 0; d < 4; ++d) {
        out_shape[d] = p->pad_before[d] + p->in_shape[d] + p->pad_after[d];
    }
    const int32_t inner = out_shape[3];
    int64_t o = 0;
    int64_t i = 0;
    for (int32_t a = 0; a < out_shape[0]; ++a) {
        const int in_a = a >= p->pad_before[0] &&
                         a < p->pad_before[0] + p->in_shape[0];
        for (int32_t b = 0; b < out_shape[1]; ++b) {
            const int in_b = in_a && b >= p->pad_before[1] &&
                             b < p->pad_before[1] + p->in_shape[1];
            for (int32_t c = 0; c < out_shape[2]; ++c) {
                const int in_c = in_b && c >= p->pad_before[2] &&
                                 c < p->pad_before[2] + p->in_shape[2];
                if (!in_c) {
                    for (int32_t d = 0; d < inner; ++d) {
                        output[o++] = p->pad_value;
                    }
                    continue;
                }
                for (int32_t d = 0; d < p->pad_before[3]; ++d) {
                    output[o++] = p->pad_value;
                }
                for (int32_t d = 0; d < p->in_shape[3]; ++d) {
                    output[o++] = input[i++];
                }
                for (int32_t d = 0; d < p->pad_after[3]; ++d) {
                    output[o++] = p->pad_value;
                }
            }
        }
    }
}
