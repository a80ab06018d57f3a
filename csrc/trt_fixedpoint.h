/*
 * trt_fixedpoint.h - integer arithmetic shared by the kernels (private).
 *
 * These reproduce gemmlowp's fixed-point primitives, which TensorFlow Lite's
 * reference kernels use, exactly.  Everything is static inline so that each
 * kernel file stays self-contained and the compiler can vectorise around it.
 * Signed overflow is avoided by computing in unsigned or 64-bit types where
 * TFLite relies on wrap-around.
 */
#ifndef TRT_FIXEDPOINT_H
#define TRT_FIXEDPOINT_H

#include <stdint.h>

#include "include/tinyrt.h"

#define TRT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TRT_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define TRT_INLINE static inline __attribute__((always_inline))
#define TRT_RESTRICT __restrict__
#else
#define TRT_INLINE static inline
#define TRT_RESTRICT
#endif

/* gemmlowp SaturatingRoundingDoublingHighMul: the high half of 2*a*b,
 * rounded.  gemmlowp's nudge-and-truncate formulation rounds halves toward
 * +infinity for both signs, which is floor((a*b + 2^30) / 2^31): one
 * multiply, one add, one arithmetic shift.  Only INT32_MIN * INT32_MIN
 * overflows.  (tests/c/test_fixedpoint.c checks this against the literal
 * formulation over 10^8 random pairs and all edge values.) */
TRT_INLINE int32_t trt_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + (1LL << 30)) >> 31);
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero,
 * exponent in [0, 31]. */
TRT_INLINE int32_t trt_rounding_divide_by_pot(int32_t x, int32_t exponent) {
    if (exponent == 0) {
        return x;
    }
    return (int32_t)(((int64_t)x + (1LL << (exponent - 1)) - (x < 0 ? 1 : 0)) >>
                     exponent);
}

/* x * 2^shift with int32 wrap-around, as TFLite's `x * (1 << shift)`. */
TRT_INLINE int32_t trt_shl_wrap(int32_t x, int32_t shift) {
    return (int32_t)((uint32_t)x << shift);
}

/* TFLite MultiplyByQuantizedMultiplier (double-rounding variant, the
 * default build of TFLite, TFLite Micro and CMSIS-NN). */
TRT_INLINE int32_t trt_requantize(int32_t x, int32_t multiplier,
                                  int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return trt_rounding_divide_by_pot(
        trt_srdhm(trt_shl_wrap(x, left), multiplier), right);
}

/* MultiplyByQuantizedMultiplierSmallerThanOneExp */
TRT_INLINE int32_t trt_requantize_lt1(int32_t x, int32_t multiplier,
                                      int32_t left_shift) {
    return trt_rounding_divide_by_pot(trt_srdhm(x, multiplier), -left_shift);
}

/* MultiplyByQuantizedMultiplierGreaterThanOne */
TRT_INLINE int32_t trt_requantize_gt1(int32_t x, int32_t multiplier,
                                      int32_t left_shift) {
    return trt_srdhm(trt_shl_wrap(x, left_shift), multiplier);
}

TRT_INLINE int32_t trt_clamp(int32_t x, int32_t lo, int32_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

/* round(), half away from zero, for |d| < 2^62 without libm: the fraction
 * d - trunc(d) is exact in binary floating point. */
TRT_INLINE int64_t trt_round_half_away(double d) {
    const int64_t t = (int64_t)d;
    const double frac = d - (double)t;
    if (frac >= 0.5) {
        return t + 1;
    }
    if (frac <= -0.5) {
        return t - 1;
    }
    return t;
}

/* What TFLite gets from (int32_t) of a value outside int32 range, or NaN.
 * The C cast is undefined there, so TFLite's answer is whatever the host's
 * conversion instruction returns: x86's cvttss2si / cvttsd2si give
 * INT32_MIN for every such value (the "integer indefinite"); ARM's fcvtzs
 * and vcvt saturate and turn NaN into 0.  Following the host keeps tinyrt
 * bit-exact with TFLite built for the same machine (on x86, a huge positive
 * float QUANTIZEd with zero point 0 is -128 in TFLite, not 127). */
TRT_INLINE int32_t trt_i32_out_of_range(double d) {
#if defined(__i386__) || defined(__x86_64__) || defined(_M_IX86) || \
    defined(_M_X64)
    (void)d;
    return INT32_MIN;
#else
    if (d != d) {
        return 0;
    }
    return d > 0.0 ? INT32_MAX : INT32_MIN;
#endif
}

/* (int32_t)round(d), as TFLite's reference kernels compute it: in range the
 * rounding is exact; out of range (and for NaN) see trt_i32_out_of_range. */
TRT_INLINE int32_t trt_round_to_i32(double d) {
    /* round(d) fits in int32 exactly when d lies strictly inside these. */
    if (d > -2147483648.5 && d < 2147483647.5) {
        return (int32_t)trt_round_half_away(d);
    }
    return trt_i32_out_of_range(d);
}

/* ---- gemmlowp fixed-point transcendental functions (exact ports) ------
 * A FixedPoint<int32, I> value is a raw int32 with 31 - I fractional bits.
 * Products of two such values are trt_srdhm of the raws (integer bits add).
 */

/* SaturatingRoundingMultiplyByPOT<exponent> on a raw int32. */
TRT_INLINE int32_t trt_sat_mul_pot(int32_t x, int32_t exponent) {
    if (exponent > 0) {
        const int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return trt_shl_wrap(x, exponent);
    }
    if (exponent < 0) {
        return trt_rounding_divide_by_pot(x, -exponent);
    }
    return x;
}

/* gemmlowp RoundingHalfSum for int32. */
TRT_INLINE int32_t trt_rounding_half_sum(int32_t a, int32_t b) {
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a in [-1/4, 0); Q0.31 in and out. */
TRT_INLINE int32_t trt_exp_on_interval_quarter(int32_t a) {
    const int32_t constant_term = 1895147668;  /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = a + (1 << 28);           /* a + 1/8 */
    const int32_t x2 = trt_srdhm(x, x);
    const int32_t x3 = trt_srdhm(x2, x);
    const int32_t x4 = trt_srdhm(x2, x2);
    const int32_t x4_over_4 = trt_sat_mul_pot(x4, -2);
    const int32_t poly = trt_sat_mul_pot(
        trt_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, -1);
    return constant_term + trt_srdhm(constant_term, x + poly);
}

/* exp(a) for a <= 0 given with `integer_bits` integer bits; Q0.31 out. */
TRT_INLINE int32_t trt_exp_on_negative_values(int32_t a, int32_t integer_bits) {
    static const int32_t multipliers[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1)   */
        290630308,  /* exp(-2)   */
        39332535,   /* exp(-4)   */
        720401,     /* exp(-8)   */
        242,        /* exp(-16)  */
    };
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    int32_t result = trt_exp_on_interval_quarter(
        trt_sat_mul_pot(a_mod_quarter_minus_one_quarter, integer_bits));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    for (int32_t e = -2; e <= 4; ++e) {
        if (integer_bits > e) {
            const int32_t shift_amount = fractional_bits + e;
            if (remainder & (int32_t)(1U << shift_amount)) {
                result = trt_srdhm(result, multipliers[e + 2]);
            }
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    if (a == 0) {
        result = INT32_MAX; /* One() in Q0.31 */
    }
    return result;
}

/* Newton-Raphson core shared by 1/(1+x) and (1-x)/(1+x), x in (0, 1):
 * returns the Q2.29 approximation of 1 / half_denominator. */
TRT_INLINE int32_t trt_newton_reciprocal_q2(int32_t half_denominator) {
    const int32_t constant_48_over_17 = 1515870810;
    const int32_t constant_neg_32_over_17 = -1010580540;
    int32_t x = constant_48_over_17 +
                trt_srdhm(half_denominator, constant_neg_32_over_17);
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = trt_srdhm(half_denominator, x);
        const int32_t one_minus = (1 << 29) - half_denominator_times_x;
        x = x + trt_sat_mul_pot(trt_srdhm(x, one_minus), 2);
    }
    return x;
}

/* 1 / (1 + a) for a in (0, 1); Q0.31 in and out. */
TRT_INLINE int32_t trt_one_over_one_plus_x(int32_t a) {
    const int32_t half_denominator = trt_rounding_half_sum(a, INT32_MAX);
    const int32_t x = trt_newton_reciprocal_q2(half_denominator);
    return trt_sat_mul_pot(x, 1); /* Q2.29 halved is Q1.30, then to Q0.31 */
}

/* (1 - a) / (1 + a) for a in (0, 1); Q0.31 in and out. */
TRT_INLINE int32_t trt_one_minus_x_over_one_plus_x(int32_t a) {
    const int32_t half_denominator = trt_rounding_half_sum(a, INT32_MAX);
    const int32_t x = trt_newton_reciprocal_q2(half_denominator);
    return trt_sat_mul_pot(x - (1 << 29), 2);
}

#endif /* TRT_FIXEDPOINT_H */
