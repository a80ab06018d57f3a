/*
 * The plan runner: one call executes every step of a model in the caller's
 * arena.  Steps carry arena offsets, so a plan does not depend on where the
 * arena lives; constants (weights, tables, constant operands) are pointers.
 * No allocation: the largest concatenation fan-in is bounded below.
 */
#include "trt_fixedpoint.h"

enum { TRT_MAX_CONCAT_INPUTS = 64 };

static const void *operand(const trt_operand *o, uint8_t *arena) {
    return o->data ? o->data : (const void *)(arena + o->offset);
}

static int32_t run_step(const trt_step *s, uint8_t *arena) {
    const void *in0 = s->num_inputs > 0 ? operand(&s->inputs[0], arena) : 0;
    const void *in1 = s->num_inputs > 1 ? operand(&s->inputs[1], arena) : 0;
    void *out = arena + s->output;
    void *scratch = s->scratch >= 0 ? (void *)(arena + s->scratch) : 0;
    switch (s->kind) {
    case TRT_OP_CONV2D:
        trt_conv2d_s8((const trt_conv2d_params *)s->params,
                      (const int8_t *)in0, (int8_t *)out, scratch);
        return TRT_OK;
    case TRT_OP_DEPTHWISE_CONV2D:
        trt_depthwise_conv2d_s8((const trt_depthwise_conv2d_params *)s->params,
                                (const int8_t *)in0, (int8_t *)out, scratch);
        return TRT_OK;
    case TRT_OP_FULLY_CONNECTED:
        trt_fully_connected_s8((const trt_fully_connected_params *)s->params,
                               (const int8_t *)in0, (int8_t *)out);
        return TRT_OK;
    case TRT_OP_SPARSE_FULLY_CONNECTED:
        trt_sparse_fully_connected_s8(
            (const trt_sparse_fully_connected_params *)s->params,
            (const int8_t *)in0, (int8_t *)out);
        return TRT_OK;
    case TRT_OP_SPARSE_CONV2D:
        trt_sparse_conv2d_s8((const trt_sparse_conv2d_params *)s->params,
                             (const int8_t *)in0, (int8_t *)out, scratch);
        return TRT_OK;
    case TRT_OP_AVG_POOL:
        trt_avg_pool_s8((const trt_pool_params *)s->params,
                        (const int8_t *)in0, (int8_t *)out);
        return TRT_OK;
    case TRT_OP_MAX_POOL:
        trt_max_pool_s8((const trt_pool_params *)s->params,
                        (const int8_t *)in0, (int8_t *)out);
        return TRT_OK;
    case TRT_OP_ADD:
        trt_add_s8((const trt_binary_params *)s->params, (const int8_t *)in0,
                   (const int8_t *)in1, (int8_t *)out);
        return TRT_OK;
    case TRT_OP_MUL:
        trt_mul_s8((const trt_binary_params *)s->params, (const int8_t *)in0,
                   (const int8_t *)in1, (int8_t *)out);
        return TRT_OK;
    case TRT_OP_SOFTMAX:
        trt_softmax_s8((const trt_softmax_params *)s->params,
                       (const int8_t *)in0, (int8_t *)out);
        return TRT_OK;
    case TRT_OP_LUT:
        trt_lut_s8((const trt_lut_params *)s->params, (const int8_t *)in0,
                   (int8_t *)out);
        return TRT_OK;
    case TRT_OP_MEAN:
        trt_mean_s8((const trt_mean_params *)s->params, (const int8_t *)in0,
                    (int8_t *)out);
        return TRT_OK;
    case TRT_OP_PAD:
        trt_pad_s8((const trt_pad_params *)s->params, (const int8_t *)in0,
                   (int8_t *)out);
        return TRT_OK;
    case TRT_OP_CONCAT: {
        const int8_t *inputs[TRT_MAX_CONCAT_INPUTS];
        if (s->num_inputs > TRT_MAX_CONCAT_INPUTS) {
            return TRT_ERR_BAD_OPERANDS;
        }
        for (int32_t i = 0; i < s->num_inputs; ++i) {
            inputs[i] = (const int8_t *)operand(&s->inputs[i], arena);
        }
        trt_concat_s8((const trt_concat_params *)s->params, inputs,
                      (int8_t *)out);
        return TRT_OK;
    }
    case TRT_OP_QUANTIZE_F32_S8:
        trt_quantize_f32_s8((const trt_quantize_params *)s->params,
                            (const float *)in0, (int8_t *)out);
        return TRT_OK;
    case TRT_OP_QUANTIZE_F32_U8:
        trt_quantize_f32_u8((const trt_quantize_params *)s->params,
                            (const float *)in0, (uint8_t *)out);
        return TRT_OK;
    case TRT_OP_REQUANTIZE:
        trt_requantize_8((const trt_quantize_params *)s->params, in0,
                         s->extra & 1, out, (s->extra >> 1) & 1);
        return TRT_OK;
    case TRT_OP_DEQUANTIZE_S8:
        trt_dequantize_s8_f32((const trt_dequantize_params *)s->params,
                              (const int8_t *)in0, (float *)out);
        return TRT_OK;
    case TRT_OP_DEQUANTIZE_U8:
        trt_dequantize_u8_f32((const trt_dequantize_params *)s->params,
                              (const uint8_t *)in0, (float *)out);
        return TRT_OK;
    case TRT_OP_COPY: {
        /* A byte copy, for a graph output that aliases a graph input. */
        const uint8_t *src = (const uint8_t *)in0;
        uint8_t *dst = (uint8_t *)out;
        for (int32_t i = 0; i < s->extra; ++i) {
            dst[i] = src[i];
        }
        return TRT_OK;
    }
    default:
        return TRT_ERR_UNKNOWN_OP;
    }
}

/* An equal share of [0, total), rounded to multiples of `align`. */
static void share(int32_t total, int32_t align, int32_t part, int32_t parts,
                  int32_t *begin, int32_t *end) {
    const int32_t units = (total + align - 1) / align;
    *begin = TRT_MIN(total, (int32_t)((int64_t)units * part / parts) * align);
    *end = TRT_MIN(total, (int32_t)((int64_t)units * (part + 1) / parts) * align);
}

int32_t trt_run_step_part(const trt_step *s, uint8_t *arena, int32_t part,
                          int32_t parts) {
    if (parts > 1) {
        const void *in0 = operand(&s->inputs[0], arena);
        void *out = arena + s->output;
        int32_t b, e;
        if (s->kind == TRT_OP_CONV2D) {
            const trt_conv2d_params *p = (const trt_conv2d_params *)s->params;
            share(p->output.n * p->output.h * p->output.w, 4, part, parts, &b, &e);
            if (trt_conv2d_s8_pixels(p, (const int8_t *)in0, (int8_t *)out, b, e)) {
                return TRT_OK;
            }
        } else if (s->kind == TRT_OP_DEPTHWISE_CONV2D) {
            const trt_depthwise_conv2d_params *p =
                (const trt_depthwise_conv2d_params *)s->params;
            share(p->output.n * p->output.h * p->output.w, 1, part, parts, &b, &e);
            if (trt_depthwise_conv2d_s8_pixels(p, (const int8_t *)in0, (int8_t *)out,
                                               b, e)) {
                return TRT_OK;
            }
        } else if (s->kind == TRT_OP_FULLY_CONNECTED) {
            const trt_fully_connected_params *p =
                (const trt_fully_connected_params *)s->params;
            share(p->out_features, 16, part, parts, &b, &e);
            if (b < e) {
                trt_fully_connected_s8_features(p, (const int8_t *)in0, (int8_t *)out,
                                                b, e);
            }
            return TRT_OK;
        }
    }
    /* not splittable: the first part runs the whole step */
    return part == 0 ? run_step(s, arena) : TRT_OK;
}

int32_t trt_run_plan(const trt_plan *plan, uint8_t *arena,
                     int32_t *failed_step) {
    for (int32_t i = 0; i < plan->num_steps; ++i) {
        const int32_t status = run_step(&plan->steps[i], arena);
        if (status != TRT_OK) {
            if (failed_step) {
                *failed_step = i;
            }
            return status;
        }
    }
    return TRT_OK;
}
