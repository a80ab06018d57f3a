/*
 * SOFTMAX, int8 in, int8 out (scale 1/256, zero point -128).
 *
 * TFLite's reference quantized softmax: per row, differences to the row
 * maximum are scaled by beta * input_scale into Q5.26, exponentiated with
 * gemmlowp's fixed-point exp, summed in Q12.19, inverted with a Newton
 * reciprocal, and each exp is scaled by that reciprocal into the output.
 */
#include "trt_fixedpoint.h"

enum { SCALED_DIFF_INTEGER_BITS = 5, ACCUMULATION_INTEGER_BITS = 12 };

static int32_t count_leading_zeros(uint32_t x) {
    if (x == 0) {
        return 32;
    }
    int32_t n = 0;
    while (!(x & 0x80000000U)) {
        x <<= 1;
        ++n;
    }
    return n;
}

static int32_t scaled_exp(const trt_softmax_params *p, int32_t diff) {
    const int32_t rescaled = trt_requantize_gt1(diff, p->input_multiplier,
                                                p->input_left_shift);
    return trt_exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS);
}

void trt_softmax_s8(const trt_softmax_params *p, const int8_t *input,
                    int8_t *output) {
    const int32_t depth = p->depth;
    for (int32_t row = 0; row < p->outer; ++row) {
        const int8_t *x = input + (int64_t)row * depth;
        int8_t *y = output + (int64_t)row * depth;
        int32_t max_in_row = INT8_MIN;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = TRT_MAX(max_in_row, (int32_t)x[c]);
        }
        int32_t sum_of_exps = 0; /* Q12.19 */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                sum_of_exps += trt_sat_mul_pot(scaled_exp(p, diff),
                                               -ACCUMULATION_INTEGER_BITS);
            }
        }
        /* GetReciprocal(sum_of_exps, 12, &num_bits_over_unit) */
        const int32_t headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        const int32_t num_bits_over_unit =
            ACCUMULATION_INTEGER_BITS - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) -
                      ((uint32_t)1 << 31));
        const int32_t shifted_scale = trt_one_over_one_plus_x(shifted_sum_minus_one);
        const int32_t exponent = num_bits_over_unit + 31 - 8;

        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t e = scaled_exp(p, diff);
                const int32_t unsat = trt_rounding_divide_by_pot(
                    trt_srdhm(shifted_scale, e), exponent);
                y[c] = (int8_t)trt_clamp(unsat - 128, -128, 127);
            } else {
                y[c] = INT8_MIN;
            }
        }
    }
}
