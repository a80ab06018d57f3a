/*
 * Point-wise int8 -> int8 functions through a 256-entry table.
 *
 * LOGISTIC, TANH, RELU, RELU6 and RELU_N1_TO_1 depend on one input byte
 * only, so the planner evaluates TFLite's reference arithmetic (the
 * *_scalar functions of this library) for all 256 inputs once, and the run
 * is a table look-up: exact by construction and one load per element.
 */
#include "trt_fixedpoint.h"

void trt_lut_s8(const trt_lut_params *p, const int8_t *input, int8_t *output) {
    const int8_t *table = p->table;
    for (int32_t i = 0; i < p->size; ++i) {
        output[i] = table[(uint8_t)((int32_t)input[i] + 128)];
    }
}
