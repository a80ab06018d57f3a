/*
 * CONCATENATION of 8-bit tensors that share scale and zero point (TFLite
 * requires that for int8): interleaved block copies along the axis.
 */
#include <string.h>

#include "trt_fixedpoint.h"

void trt_concat_s8(const trt_concat_params *p, const int8_t *const *inputs,
                   int8_t *output) {
    int8_t *o = output;
    for (int32_t outer = 0; outer < p->outer; ++outer) {
        for (int32_t k = 0; k < p->num_inputs; ++k) {
            const int32_t bytes = p->axis_bytes[k];
            memcpy(o, inputs[k] + (int64_t)outer * bytes, (size_t)bytes);
            o += bytes;
        }
    }
}
