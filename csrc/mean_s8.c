/*
 * MEAN of int8 over any set of axes, as TFLite's reference
 * QuantizedMeanOrSum: an int32 sum of the raw values over the reduced axes,
 * minus zero_point * count, then one fixed-point rescale whose multiplier
 * already holds both in_scale / out_scale and 1 / count (the planner folds
 * them exactly as TFLite does, including its precision clamp).
 *
 * The planner merges neighbouring axes that are all kept or all reduced, so
 * the kernel sees a few "kept" and "reduced" loops with element strides into
 * the input.  Output elements are in kept-axis order, which is the output's
 * memory order whether or not the reduced axes are kept as size-1 dims.  Each
 * output is summed on its own: no accumulator buffer is needed.
 */
#include "trt_fixedpoint.h"

/* Visit every index of a multi-dimensional loop nest, innermost last, and
 * return the input offset of each: `idx` is the odometer. */
static int32_t advance(int32_t *idx, const int32_t *shape,
                       const int32_t *stride, int32_t ndims, int32_t offset) {
    for (int32_t d = ndims - 1; d >= 0; --d) {
        offset += stride[d];
        if (++idx[d] < shape[d]) {
            return offset;
        }
        offset -= stride[d] * shape[d];
        idx[d] = 0;
    }
    return offset;
}

void trt_mean_s8(const trt_mean_params *p, const int8_t *input,
                 int8_t *output) {
    int32_t kept_idx[TRT_MEAN_MAX_DIMS] = {0};
    int32_t kept_offset = 0;
    const int32_t zero_term = p->input_zero_point * p->count;
    for (int32_t o = 0; o < p->outputs; ++o) {
        int32_t red_idx[TRT_MEAN_MAX_DIMS] = {0};
        int32_t red_offset = 0;
        /* TFLite accumulates in int32; the planner keeps count small
         * enough (255 * count < 2^31) that neither the sum nor the sum
         * minus the zero-point term can overflow. */
        int32_t sum = 0;
        for (int32_t r = 0; r < p->count; ++r) {
            sum += input[kept_offset + red_offset];
            red_offset = advance(red_idx, p->reduced_shape, p->reduced_stride,
                                 p->num_reduced, red_offset);
        }
        const int32_t y = trt_requantize(sum - zero_term, p->multiplier,
                                         p->shift) + p->output_zero_point;
        output[o] = (int8_t)trt_clamp(y, INT8_MIN, INT8_MAX);
        kept_offset = advance(kept_idx, p->kept_shape, p->kept_stride,
                              p->num_kept, kept_offset);
    }
}
