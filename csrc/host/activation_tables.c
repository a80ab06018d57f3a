/*
 * Point-wise int8 activations as scalar functions of one input byte.
 *
 * Host-only (csrc/host/): plan-time code that needs libm (expf, tanhf,
 * roundf).  It is compiled into the Python extension, never into firmware:
 * a microcontroller gets the finished 256-entry tables as const data.
 *
 * Nothing here runs per element at inference time: the planner calls these
 * for all 256 possible inputs and the TRT_OP_LUT step looks the answers up.
 * Each function therefore only has to be exact, not fast, and each follows
 * the arithmetic of TensorFlow Lite's BUILTIN_REF kernel for that operator:
 *
 *   LOGISTIC, TANH   TFLite fills a 256-entry table in single-precision
 *                    float at Prepare time (dequantize, expf / tanhf, scale
 *                    by the reciprocal of the output scale, roundf, add the
 *                    zero point, clamp) and Eval looks it up.  The fixed-point
 *                    gemmlowp path is only TFLite's "fixed point optimized"
 *                    kernel and TFLite Micro's, not the reference one.
 *   RELU family      ReluX: rescale (x - in_zp) by in_scale / out_scale with
 *                    a Q31 multiplier, add out_zp, clamp to the activation.
 *   LEAKY_RELU       two Q31 multipliers, one per sign of (x - in_zp).
 *   HARD_SWISH       TFLite's int16 fixed-point recipe.
 *
 * The float functions use the C library's expf / tanhf, the same functions
 * TFLite's table builder calls, so the tables agree bit for bit with TFLite
 * on the same C library.  None of the float expressions has the a * b + c
 * shape a compiler could fuse into one rounding (FMA), so every operation
 * rounds to float exactly as TFLite's do; keep it that way.
 */
#include <math.h>

#include "../trt_fixedpoint.h"

/* (int32_t)f for the table builder's rounded float.  The C cast is
 * undefined outside int32 range; LiteRT's compiled table builder saturates
 * there (measured: a tanh table with output scale 1e-30 holds -128 and 127,
 * not the x86 cast's INT32_MIN), so this saturates too.  NaN cannot arise
 * from finite scales; it maps to 0 like a saturating conversion. */
static int32_t table_cast_i32(float f) {
    if (f != f) {
        return 0;
    }
    if (f >= 2147483648.0f) {
        return INT32_MAX;
    }
    if (f < -2147483648.0f) {
        return INT32_MIN;
    }
    return (int32_t)f;
}

/* One entry of TFLite's LUTPopulate<int8_t>, with the transformed value
 * already computed from `dequantized`. */
static int8_t requantize_float_entry(const trt_float_lut_params *p,
                                     float transformed) {
    const float inverse_scale = 1.0f / p->output_scale;
    const float scaled = transformed * inverse_scale;
    const float rescaled = roundf(scaled);
    const float shifted = rescaled + (float)p->output_zero_point;
    const int32_t q = table_cast_i32(shifted);
    return (int8_t)trt_clamp(q, INT8_MIN, INT8_MAX);
}

static float dequantize_entry(const trt_float_lut_params *p, int8_t x) {
    /* int32 difference converted to float, then a float product. */
    const float centred = (float)((int32_t)x - p->input_zero_point);
    return p->input_scale * centred;
}

int8_t trt_logistic_s8_scalar(const trt_float_lut_params *p, int8_t x) {
    const float v = dequantize_entry(p, x);
    const float e = expf(-v);
    const float denominator = 1.0f + e;
    const float y = 1.0f / denominator;
    return requantize_float_entry(p, y);
}

int8_t trt_tanh_s8_scalar(const trt_float_lut_params *p, int8_t x) {
    const float v = dequantize_entry(p, x);
    return requantize_float_entry(p, tanhf(v));
}

int8_t trt_relu_s8_scalar(const trt_relu_params *p, int8_t x) {
    const int32_t centred = (int32_t)x - p->input_zero_point;
    const int32_t y = p->output_zero_point +
                      trt_requantize(centred, p->multiplier, p->shift);
    return (int8_t)trt_clamp(y, p->act_min, p->act_max);
}

int8_t trt_leaky_relu_s8_scalar(const trt_leaky_relu_params *p, int8_t x) {
    const int32_t centred = (int32_t)x - p->input_zero_point;
    int32_t y = p->output_zero_point;
    if (centred >= 0) {
        y += trt_requantize(centred, p->identity_multiplier,
                            p->identity_shift);
    } else {
        /* TFLite requantizes with |multiplier| and restores the sign after,
         * so that a negative alpha rounds like its mirror image. */
        const int32_t negative = p->alpha_multiplier < 0;
        /* Negated in unsigned arithmetic: INT32_MIN stays INT32_MIN, as the
         * two's-complement wrap TFLite relies on. */
        const int32_t magnitude =
            negative ? (int32_t)(0U - (uint32_t)p->alpha_multiplier)
                     : p->alpha_multiplier;
        const int32_t scaled =
            trt_requantize(centred, magnitude, p->alpha_shift);
        y += negative ? -scaled : scaled;
    }
    return (int8_t)trt_clamp(y, INT8_MIN, INT8_MAX);
}

/* ---- HARD_SWISH: gemmlowp's int16 primitives ---------------------------- */

static int16_t srdhm16(int16_t a, int16_t b) {
    if (a == INT16_MIN && b == INT16_MIN) {
        return INT16_MAX;
    }
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    /* C99 division truncates toward zero, as gemmlowp's does. */
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* The non-rounding doubling high multiply TFLite's hard swish uses last:
 * its truncation cancels the bias of the two rounding ones before it. */
static int16_t sdhm16(int16_t a, int16_t b) {
    if (a == INT16_MIN && b == INT16_MIN) {
        return INT16_MAX;
    }
    const int32_t ab = (int32_t)a * (int32_t)b;
    return (int16_t)(ab / (1 << 15));
}

/* gemmlowp RoundingDivideByPOT on int16 lanes: the mask is formed in 64
 * bits and then narrowed to int16, exactly as the template does. */
static int16_t rounding_divide_by_pot16(int16_t x, int32_t exponent) {
    const int16_t mask = (int16_t)((1LL << exponent) - 1);
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

static int16_t saturating_left_shift16(int16_t value, int32_t amount) {
    const int64_t shifted = (int64_t)value * ((int64_t)1 << amount);
    if (shifted > INT16_MAX) {
        return INT16_MAX;
    }
    if (shifted < INT16_MIN) {
        return INT16_MIN;
    }
    return (int16_t)shifted;
}

int8_t trt_hard_swish_s8_scalar(const trt_hard_swish_params *p, int8_t x) {
    const int16_t centred = (int16_t)((int32_t)x - p->input_zero_point);
    /* Seven bits of headroom: |centred| <= 255 so this cannot overflow. */
    const int16_t hires = (int16_t)(centred * (1 << 7));
    const int16_t preshift_output = srdhm16(hires, p->output_multiplier);

    /* x / 3 saturated to [-1, 1] in Q0.15, with a left shift that saturates
     * only in its last bit so saturation cannot be lost to the multiply. */
    int16_t reluish = hires;
    if (p->reluish_exponent > 0) {
        reluish = saturating_left_shift16(reluish, p->reluish_exponent - 1);
    }
    reluish = srdhm16(reluish, p->reluish_multiplier);
    if (p->reluish_exponent > 0) {
        reluish = saturating_left_shift16(reluish, 1);
    }
    if (p->reluish_exponent < 0) {
        reluish = rounding_divide_by_pot16(reluish, -p->reluish_exponent);
    }
    /* [-1, 1] -> [0, 1] */
    reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1);

    const int16_t preshift = sdhm16(reluish, preshift_output);
    int16_t out = rounding_divide_by_pot16(preshift, -p->output_exponent);
    out = (int16_t)(out + p->output_zero_point);
    return (int8_t)trt_clamp(out, INT8_MIN, INT8_MAX);
}
