/*
 * FULLY_CONNECTED with pruned weights (trt_sparse_matrix), int8.
 *
 * acc[n] = sum over the kept weights of w[n][k] * x[k] + bias_folded[n]: a
 * pruned weight is 0 and adds nothing, and bias_folded holds the zero-point
 * term of the kept weights, whose sum is the dense sum, so the accumulator
 * equals the dense kernel's exactly.  The rescale is fully_connected_s8.c's,
 * operation for operation (TFLite's reference rescales in double precision;
 * the fixed-point path is TFLite Micro's), so outputs are bit-exact too.
 *
 * Accumulators live on the stack, TRT_SPARSE_FC_CHUNK rows at a time.
 */
#include "sparse_ukernels.h"

enum { TRT_SPARSE_FC_CHUNK = 64 }; /* a multiple of every block size */

/* fully_connected_s8.c's rescale(): the same calls in the same order. */
static int32_t rescale(const trt_sparse_fully_connected_params *p, int32_t n,
                       int32_t acc) {
    int32_t a;
    if (p->scale) {
        a = trt_round_to_i32((double)acc * p->scale[n]);
    } else {
        a = trt_requantize(acc, p->multiplier[n], p->shift[n]);
    }
    a = (int32_t)((uint32_t)a + (uint32_t)p->output_offset);
    return trt_clamp(a, p->act_min, p->act_max);
}

void trt_sparse_fully_connected_s8(const trt_sparse_fully_connected_params *p,
                                   const int8_t *input, int8_t *output) {
    const trt_sparse_ukernels *uk = trt_sparse_ukernels_active();
    const trt_sparse_matrix *m = &p->weights;
    const int32_t bs = m->block;
    const int32_t strips = (p->out_features + bs - 1) / bs;
    const int32_t per_chunk = TRT_SPARSE_FC_CHUNK / bs;
    int32_t acc[TRT_SPARSE_FC_CHUNK];
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *x = input + (int64_t)b * p->in_features;
        int8_t *y = output + (int64_t)b * p->out_features;
        for (int32_t s0 = 0; s0 < strips; s0 += per_chunk) {
            const int32_t s1 = TRT_MIN(strips, s0 + per_chunk);
            uk->spmv(m, s0, s1, x, acc);
            const int32_t n0 = s0 * bs;
            const int32_t n1 = TRT_MIN(p->out_features, s1 * bs);
            for (int32_t n = n0; n < n1; ++n) {
                y[n] = (int8_t)rescale(p, n, acc[n - n0] + p->bias_folded[n]);
            }
        }
    }
}
