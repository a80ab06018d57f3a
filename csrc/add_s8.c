/*
 * ADD, int8, with numpy-style broadcasting over up to four dimensions.
 *
 * TFLite's reference AddFunc (trt_add_one): both inputs are shifted left by
 * 20 bits, rescaled to a common scale (2 * the larger input scale), summed
 * and rescaled to the output.  Inputs are addressed through strides so that a
 * stride of zero broadcasts; the innermost loop is contiguous when neither
 * input broadcasts along the last axis.
 */
#include "trt_ukernels.h"

void trt_add_s8(const trt_binary_params *p, const int8_t *input1,
                const int8_t *input2, int8_t *output) {
    const int32_t *s = p->out_shape;
    const int32_t *a = p->in1_strides;
    const int32_t *b = p->in2_strides;
    const trt_ukernels *uk = trt_ukernels_active();
    /* Trailing axes that both inputs walk contiguously are one run for the
     * vectorised kernel (two same-shaped tensors: a single call; a call per
     * row of channels would cost more than the row). */
    int32_t n[3] = {s[0], s[1], s[2]};
    int32_t run = s[3];
    if (a[3] == 1 && b[3] == 1) {
        for (int32_t d = 2; d >= 0 && a[d] == run && b[d] == run; --d) {
            run *= n[d];
            n[d] = 1;
        }
    }
    int64_t o = 0;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                const int8_t *x = input1 + (int64_t)i0 * a[0] +
                                  (int64_t)i1 * a[1] + (int64_t)i2 * a[2];
                const int8_t *y = input2 + (int64_t)i0 * b[0] +
                                  (int64_t)i1 * b[1] + (int64_t)i2 * b[2];
                if (a[3] == 1 && b[3] == 1) {
                    /* contiguous rows: the vectorised element-wise kernel */
                    uk->add(p, x, y, run, output + o);
                    o += run;
                    continue;
                }
                for (int32_t i3 = 0; i3 < s[3]; ++i3) {
                    output[o++] = trt_add_one(p, x[i3 * a[3]], y[i3 * b[3]]);
                }
            }
        }
    }
}
