/*
 * FULLY_CONNECTED, int8 activations, int8 weights [N][K], int32 bias.
 *
 * acc = sum_k w[n][k] * (x[k] - zp_in) + bias[n].  The zero-point term is
 * folded into `bias_folded` by the planner, so the inner loop is a plain
 * int8 dot product.  TFLite's reference kernel rescales in double precision
 * (round half away from zero of acc * in_scale * w_scale / out_scale); the
 * fixed-point rescale of TFLite Micro is kept for models that must match it.
 */
#include "trt_ukernels.h"

#ifdef TRT_HAVE_GEMM_K4
#if defined(__GNUC__)
#define TRT_NOINLINE __attribute__((noinline))
#else
#define TRT_NOINLINE
#endif

/* The VNNI GEMM on output features [begin, end) (begin a multiple of 16):
 * TRT_K4_MR batch rows at a time, made unsigned in a stack buffer.
 * Returns 0 when the table or the plan has no VNNI path for this layer. */
static TRT_NOINLINE int run_k4(const trt_fully_connected_params *p,
                               const int8_t *input, int8_t *output,
                               int32_t begin, int32_t end) {
    const trt_ukernels *uk = trt_ukernels_active();
    const int32_t k = p->in_features;
    if (!uk->gemm_k4 || !p->packed_k4 || k > TRT_GEMM_MAX_K) {
        return 0;
    }
    const trt_gemm_k4 g = {
        k, end - begin, p->packed_k4 + (int64_t)(begin / 16) * ((k + 3) / 4) * 64,
        p->bias_k4 + begin, p->scale ? 0 : p->multiplier + begin,
        p->scale ? 0 : p->shift + begin, p->scale ? p->scale + begin : 0,
        p->scale || !p->rescale_k4 ? 0 : p->rescale_k4 + (int64_t)(begin / 16) * 48,
        p->output_offset, p->act_min, p->act_max, 1, 0, 0};
    uint8_t rows[TRT_K4_MR * TRT_K4_STRIDE] __attribute__((aligned(64)));
    int8_t *outs[TRT_K4_MR];
    const int8_t *in_rows[TRT_K4_MR];
    const uint8_t *x[TRT_K4_MR];
    for (int32_t r = 0; r < TRT_K4_MR; ++r) {
        x[r] = rows + (int64_t)r * TRT_K4_STRIDE;
    }
    for (int32_t b = 0; b < p->batches; b += TRT_K4_MR) {
        const int32_t m = TRT_MIN(TRT_K4_MR, p->batches - b);
        for (int32_t r = 0; r < m; ++r) {
            in_rows[r] = input + (int64_t)(b + r) * k;
            outs[r] = output + (int64_t)(b + r) * p->out_features + begin;
        }
        uk->rows_u8(rows, in_rows, 1, k, m);
        uk->gemm_k4(&g, x, m, outs);
    }
    return 1;
}
#endif

void trt_fully_connected_s8(const trt_fully_connected_params *p,
                            const int8_t *input, int8_t *output) {
#ifdef TRT_HAVE_GEMM_K4
    if (run_k4(p, input, output, 0, p->out_features)) {
        return;
    }
#endif
    const trt_ukernels *uk = trt_ukernels_active();
    const int32_t k = p->in_features;
    const int32_t nout = p->out_features;
    /* Batches as rows of the GEMM micro-kernel, TRT_GEMM_MR at a time; each
     * table's GEMM finishes with the same rescale (the double one when
     * p->scale is set) and handles the output-feature tails itself. */
    const int8_t *rows[TRT_GEMM_MR];
    int8_t *outs[TRT_GEMM_MR];
    for (int32_t b = 0; b < p->batches; b += TRT_GEMM_MR) {
        const int32_t m = TRT_MIN(TRT_GEMM_MR, p->batches - b);
        for (int32_t r = 0; r < m; ++r) {
            rows[r] = input + (int64_t)(b + r) * k;
            outs[r] = output + (int64_t)(b + r) * nout;
        }
        uk->gemm(rows, m, k, p->weights, p->packed_weights, nout,
                 p->bias_folded, p->multiplier, p->shift, p->scale,
                 p->output_offset, p->act_min, p->act_max, outs);
    }
}

void trt_fully_connected_s8_features(const trt_fully_connected_params *p,
                                     const int8_t *input, int8_t *output,
                                     int32_t begin, int32_t end) {
    /* The same computation on a column slice: weights, panels and the
     * per-feature arrays start at `begin` (a multiple of 16, so the int16
     * panels split at a block boundary). */
#ifdef TRT_HAVE_GEMM_K4
    if (run_k4(p, input, output, begin, end)) {
        return;
    }
#endif
    trt_fully_connected_params q = *p;
    const int32_t k = p->in_features;
    q.out_features = end - begin;
    q.weights = p->weights + (int64_t)begin * k;
    q.bias_folded = p->bias_folded + begin;
    if (p->scale) {
        q.scale = p->scale + begin;
    } else {
        q.multiplier = p->multiplier + begin;
        q.shift = p->shift + begin;
    }
    if (p->packed_weights) {
        q.packed_weights = p->packed_weights + (int64_t)(begin / 16) * ((k + 1) / 2) * 32;
    }
    const trt_ukernels *uk = trt_ukernels_active();
    const int8_t *rows[TRT_GEMM_MR];
    int8_t *outs[TRT_GEMM_MR];
    for (int32_t b = 0; b < p->batches; b += TRT_GEMM_MR) {
        const int32_t m = TRT_MIN(TRT_GEMM_MR, p->batches - b);
        for (int32_t r = 0; r < m; ++r) {
            rows[r] = input + (int64_t)(b + r) * k;
            outs[r] = output + (int64_t)(b + r) * p->out_features + begin;
        }
        uk->gemm(rows, m, k, q.weights, q.packed_weights, q.out_features,
                 q.bias_folded, q.multiplier, q.shift, q.scale, q.output_offset,
                 q.act_min, q.act_max, outs);
    }
}
