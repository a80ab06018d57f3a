/*
 * ARM NEON micro-kernels: aarch64 (Raspberry Pi 3/4/5, Zero 2 on a 64-bit
 * OS) and 32-bit ARMv7-A and later with NEON (32-bit Raspberry Pi OS), plus
 * the ARMv8.2 dot-product extension (SDOT: Cortex-A55/A76, Raspberry Pi 5)
 * on aarch64.  ukernels_dispatch.c picks one at run time (Linux HWCAPs);
 * every entry gives the portable table's bits.
 *
 * Exactness:
 *  - Products of two int8 are exact in int16 (|x * w| <= 2^14), but a sum of
 *    two is not ((-128)^2 * 2 = 2^15), so products are widened before they
 *    are added: vmull_s8 then vpadalq_s16 (pairwise add into int32 lanes), or
 *    vaddw_s16.  SDOT sums four products straight into int32.  Integer sums
 *    are exact, so the summation order does not matter.
 *  - Requantisation is gemmlowp's: vqrdmulhq_s32 is exactly
 *    SaturatingRoundingDoublingHighMul (both round halves toward +infinity
 *    and saturate only INT32_MIN * INT32_MIN, which the planner's
 *    multipliers, >= 0, never reach); RoundingDivideByPOT rounds halves
 *    away from zero while vrshlq_s32 rounds them up, so negative values are
 *    first moved down by one (gemmlowp's own NEON fixup).
 *  - TFLite's double-precision FULLY_CONNECTED rescale uses float64x2 on
 *    aarch64: vrndaq_f64 is round half away from zero and fcvtzs/sqxtn
 *    saturate (NaN -> 0) exactly as trt_round_to_i32 does on ARM.  ARMv7
 *    NEON has no double lanes: the scalar code does it there.
 *
 * Weights are read in their plan layout [N][K] int8.  The int16 panels of
 * packed_weights (the AVX2 layout) are not used: a 4x4 block here costs 72
 * NEON instructions per 256 multiply-accumulates on aarch64 (8 loads, 32
 * SMULL/SMULL2, 32 SADALP per 16 k), the same as 4 rows x 16 channels over
 * the panels with SMLAL by lane (8 loads, 64 SMLAL); it reads half the
 * weight bytes and also serves exported plans, which drop the panels.  The
 * price is a horizontal sum per block at the end of k (12 ADDP).
 *
 * No kernel reads outside the bytes the portable one reads (tails are
 * scalar), so guard-page tests hold for these tables too.
 */
#include <string.h>

#include "trt_ukernels.h"

/* Keep these conditions in step with ukernels_dispatch.c. */
#if defined(__aarch64__) && defined(__ARM_NEON)
#define TRT_NEON_A64 1
#elif defined(__arm__) && defined(__ARM_FP) && \
    !(defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M') && \
    (defined(__ARM_NEON) ||                                           \
     (defined(__GNUC__) && !defined(__clang__) &&                     \
      (!defined(__thumb__) || defined(__thumb2__))))
/* 32-bit A-profile with a hard or softfp VFP.  When the baseline has no
 * NEON (Debian armhf: vfpv3-d16; Raspberry Pi OS: armv6 + vfp), GCC's
 * arm_neon.h enables it per function, so the table is still built and the
 * dispatcher uses it only when the CPU reports NEON. */
#define TRT_NEON_A32 1
#endif

#if defined(TRT_NEON_A64) && \
    (defined(__ARM_FEATURE_DOTPROD) || \
     (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10))
#define TRT_NEON_DOTPROD 1
#endif

#if defined(TRT_NEON_A64) || defined(TRT_NEON_A32)

#include <arm_neon.h>

#if defined(TRT_NEON_A32) && !defined(__ARM_NEON)
#pragma GCC push_options
#pragma GCC target("fpu=neon")
#define TRT_NEON_POP_OPTIONS 1
#endif

/* ------------------------------------------------ helpers on both ISAs --- */

/* 32-bit NEON has no "high half" forms: spell them with vget_high. */
TRT_INLINE int16x8_t mull_hi_s8(int8x16_t a, int8x16_t b) {
#ifdef TRT_NEON_A64
    return vmull_high_s8(a, b);
#else
    return vmull_s8(vget_high_s8(a), vget_high_s8(b));
#endif
}

TRT_INLINE int32x4_t addw_hi_s16(int32x4_t acc, int16x8_t v) {
#ifdef TRT_NEON_A64
    return vaddw_high_s16(acc, v);
#else
    return vaddw_s16(acc, vget_high_s16(v));
#endif
}

/* acc (4 int32 lanes) += the 16 products x * w, summed in pairs. */
TRT_INLINE int32x4_t mac16(int32x4_t acc, int8x16_t x, int8x16_t w) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(w)));
    return vpadalq_s16(acc, mull_hi_s8(x, w));
}

TRT_INLINE int32x4_t mac8(int32x4_t acc, int8x8_t x, int8x8_t w) {
    return vpadalq_s16(acc, vmull_s8(x, w));
}

/* The four horizontal sums of a, b, c, d as one vector. */
TRT_INLINE int32x4_t hsum4(int32x4_t a, int32x4_t b, int32x4_t c,
                           int32x4_t d) {
#ifdef TRT_NEON_A64
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
#else
    const int32x2_t ab = vpadd_s32(vadd_s32(vget_low_s32(a), vget_high_s32(a)),
                                   vadd_s32(vget_low_s32(b), vget_high_s32(b)));
    const int32x2_t cd = vpadd_s32(vadd_s32(vget_low_s32(c), vget_high_s32(c)),
                                   vadd_s32(vget_low_s32(d), vget_high_s32(d)));
    return vcombine_s32(ab, cd);
#endif
}

TRT_INLINE int32_t hsum(int32x4_t a) {
#ifdef TRT_NEON_A64
    return vaddvq_s32(a);
#else
    const int32x2_t s = vadd_s32(vget_low_s32(a), vget_high_s32(a));
    return vget_lane_s32(vpadd_s32(s, s), 0);
#endif
}

/* gemmlowp MultiplyByQuantizedMultiplier on four lanes (mult >= 0, shift in
 * [-31, 30]): a wrapping left shift, the rounded doubling high multiply,
 * then the rounding right shift with halves away from zero. */
TRT_INLINE int32x4_t requantize4(int32x4_t v, int32x4_t mult, int32x4_t shift) {
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t left = vmaxq_s32(shift, zero);
    const int32x4_t right = vminq_s32(shift, zero); /* minus the right shift */
    v = vqrdmulhq_s32(vshlq_s32(v, left), mult);
    /* -1 where v < 0 and there is a right shift: vrshlq rounds halves up,
     * so a negative tie must start one lower to round away from zero
     * (saturating: INT32_MIN still rounds to the same quotient). */
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(v, right), 31);
    return vrshlq_s32(vqaddq_s32(v, fixup), right);
}

/* Per-channel requantisation of four accumulators, plus the output offset,
 * clamped, narrowed with truncation (the scalar (int8_t) cast). */
TRT_INLINE int16x4_t finish4(int32x4_t acc, const int32_t *mult,
                             const int32_t *shift, int32x4_t offset,
                             int32x4_t lo, int32x4_t hi) {
    int32x4_t v = requantize4(acc, vld1q_s32(mult), vld1q_s32(shift));
    v = vminq_s32(vmaxq_s32(vaddq_s32(v, offset), lo), hi);
    return vmovn_s32(v);
}

TRT_INLINE int8x8_t narrow8(int16x4_t a, int16x4_t b) {
    return vmovn_s16(vcombine_s16(a, b));
}

/* The low four bytes of b at out (any alignment). */
TRT_INLINE void store4(int8_t *out, int8x8_t b) {
    const uint32_t v = vget_lane_u32(vreinterpret_u32_s8(b), 0);
    memcpy(out, &v, sizeof v);
}

/* --------------------------------------------------------- dot products --- */

static void dot_1x4(const int8_t *x, const int8_t *w, int32_t w_stride,
                    int32_t k, int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const int8x16_t xv = vld1q_s8(x + i);
        a0 = mac16(a0, xv, vld1q_s8(w0 + i));
        a1 = mac16(a1, xv, vld1q_s8(w1 + i));
        a2 = mac16(a2, xv, vld1q_s8(w2 + i));
        a3 = mac16(a3, xv, vld1q_s8(w3 + i));
    }
    if (i + 8 <= k) {
        const int8x8_t xv = vld1_s8(x + i);
        a0 = mac8(a0, xv, vld1_s8(w0 + i));
        a1 = mac8(a1, xv, vld1_s8(w1 + i));
        a2 = mac8(a2, xv, vld1_s8(w2 + i));
        a3 = mac8(a3, xv, vld1_s8(w3 + i));
        i += 8;
    }
    int32_t r[4];
    vst1q_s32(r, hsum4(a0, a1, a2, a3));
    for (; i < k; ++i) {
        const int32_t xv = x[i];
        r[0] += xv * w0[i];
        r[1] += xv * w1[i];
        r[2] += xv * w2[i];
        r[3] += xv * w3[i];
    }
    memcpy(acc, r, sizeof r);
}

static void dot_2x4(const int8_t *x0, const int8_t *x1, const int8_t *w,
                    int32_t w_stride, int32_t k, int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    int32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const int8x16_t u = vld1q_s8(x0 + i), v = vld1q_s8(x1 + i);
        int8x16_t wv = vld1q_s8(w0 + i);
        a0 = mac16(a0, u, wv);
        b0 = mac16(b0, v, wv);
        wv = vld1q_s8(w1 + i);
        a1 = mac16(a1, u, wv);
        b1 = mac16(b1, v, wv);
        wv = vld1q_s8(w2 + i);
        a2 = mac16(a2, u, wv);
        b2 = mac16(b2, v, wv);
        wv = vld1q_s8(w3 + i);
        a3 = mac16(a3, u, wv);
        b3 = mac16(b3, v, wv);
    }
    if (i + 8 <= k) {
        const int8x8_t u = vld1_s8(x0 + i), v = vld1_s8(x1 + i);
        int8x8_t wv = vld1_s8(w0 + i);
        a0 = mac8(a0, u, wv);
        b0 = mac8(b0, v, wv);
        wv = vld1_s8(w1 + i);
        a1 = mac8(a1, u, wv);
        b1 = mac8(b1, v, wv);
        wv = vld1_s8(w2 + i);
        a2 = mac8(a2, u, wv);
        b2 = mac8(b2, v, wv);
        wv = vld1_s8(w3 + i);
        a3 = mac8(a3, u, wv);
        b3 = mac8(b3, v, wv);
        i += 8;
    }
    int32_t r[8];
    vst1q_s32(r, hsum4(a0, a1, a2, a3));
    vst1q_s32(r + 4, hsum4(b0, b1, b2, b3));
    for (; i < k; ++i) {
        const int32_t u = x0[i], v = x1[i];
        r[0] += u * w0[i];
        r[1] += u * w1[i];
        r[2] += u * w2[i];
        r[3] += u * w3[i];
        r[4] += v * w0[i];
        r[5] += v * w1[i];
        r[6] += v * w2[i];
        r[7] += v * w3[i];
    }
    memcpy(acc, r, sizeof r);
}

#ifdef TRT_NEON_A64
/* Four rows by four weight rows: sixteen accumulators, which with the four
 * input vectors fit aarch64's 32 registers (32-bit NEON has 16: it runs
 * the GEMM two rows at a time).  Named, not an array, so that they stay in
 * registers (GCC keeps a [4][4] array on the stack). */
#define TRT_ACC16                                                        \
    int32x4_t a00 = vdupq_n_s32(0), a01 = a00, a02 = a00, a03 = a00;     \
    int32x4_t a10 = a00, a11 = a00, a12 = a00, a13 = a00;                \
    int32x4_t a20 = a00, a21 = a00, a22 = a00, a23 = a00;                \
    int32x4_t a30 = a00, a31 = a00, a32 = a00, a33 = a00
/* weight row j (vector wv) times the four input rows u0..u3 */
#define TRT_COL4(MAC, wv, j)          \
    do {                              \
        a0##j = MAC(a0##j, u0, wv);   \
        a1##j = MAC(a1##j, u1, wv);   \
        a2##j = MAC(a2##j, u2, wv);   \
        a3##j = MAC(a3##j, u3, wv);   \
    } while (0)
#define TRT_STORE16(HSUM, acc)                                   \
    do {                                                         \
        vst1q_s32((acc), HSUM(a00, a01, a02, a03));              \
        vst1q_s32((acc) + 4, HSUM(a10, a11, a12, a13));          \
        vst1q_s32((acc) + 8, HSUM(a20, a21, a22, a23));          \
        vst1q_s32((acc) + 12, HSUM(a30, a31, a32, a33));         \
    } while (0)

/* GCC's pre-allocation scheduler hoists the multiplies of this loop until
 * the accumulators no longer fit and adds a dozen register moves per
 * iteration (87 instructions instead of 75): schedule after allocation only.
 * No effect on results. */
#if defined(__GNUC__) && !defined(__clang__)
#define TRT_NO_SCHED1 __attribute__((optimize("no-schedule-insns")))
#else
#define TRT_NO_SCHED1
#endif

/* acc[4 r + j] += x[r][i] * w[j * w_stride + i] for i in [i0, k) */
static void tail_4x4(const int8_t *const *x, const int8_t *w, int32_t w_stride,
                     int32_t i0, int32_t k, int32_t *acc) {
    for (int32_t i = i0; i < k; ++i) {
        for (int32_t r = 0; r < 4; ++r) {
            const int32_t u = x[r][i];
            for (int32_t j = 0; j < 4; ++j) {
                acc[4 * r + j] += u * w[j * w_stride + i];
            }
        }
    }
}

TRT_NO_SCHED1 static void dot_4x4(const int8_t *const *x, const int8_t *w,
                                  int32_t w_stride, int32_t k, int32_t *acc) {
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    TRT_ACC16;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const int8x16_t u0 = vld1q_s8(x0 + i), u1 = vld1q_s8(x1 + i);
        const int8x16_t u2 = vld1q_s8(x2 + i), u3 = vld1q_s8(x3 + i);
        int8x16_t wv = vld1q_s8(w0 + i);
        TRT_COL4(mac16, wv, 0);
        wv = vld1q_s8(w1 + i);
        TRT_COL4(mac16, wv, 1);
        wv = vld1q_s8(w2 + i);
        TRT_COL4(mac16, wv, 2);
        wv = vld1q_s8(w3 + i);
        TRT_COL4(mac16, wv, 3);
    }
    if (i + 8 <= k) {
        const int8x8_t u0 = vld1_s8(x0 + i), u1 = vld1_s8(x1 + i);
        const int8x8_t u2 = vld1_s8(x2 + i), u3 = vld1_s8(x3 + i);
        int8x8_t wv = vld1_s8(w0 + i);
        TRT_COL4(mac8, wv, 0);
        wv = vld1_s8(w1 + i);
        TRT_COL4(mac8, wv, 1);
        wv = vld1_s8(w2 + i);
        TRT_COL4(mac8, wv, 2);
        wv = vld1_s8(w3 + i);
        TRT_COL4(mac8, wv, 3);
        i += 8;
    }
    TRT_STORE16(hsum4, acc);
    tail_4x4(x, w, w_stride, i, k, acc);
}
#endif

/* One weight row: x . w over k bytes. */
static int32_t dot_1x1(const int8_t *x, const int8_t *w, int32_t k) {
    int32x4_t a = vdupq_n_s32(0);
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        a = mac16(a, vld1q_s8(x + i), vld1q_s8(w + i));
    }
    if (i + 8 <= k) {
        a = mac8(a, vld1_s8(x + i), vld1_s8(w + i));
        i += 8;
    }
    int32_t s = hsum(a);
    for (; i < k; ++i) {
        s += (int32_t)x[i] * (int32_t)w[i];
    }
    return s;
}

/* ------------------------------------------------- element-wise kernels --- */

static void mac_rows(int32_t *acc, const int8_t *x, const int8_t *w,
                     int32_t n) {
    int32_t c = 0;
    for (; c + 16 <= n; c += 16) {
        const int8x16_t xv = vld1q_s8(x + c), wv = vld1q_s8(w + c);
        const int16x8_t p0 = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
        const int16x8_t p1 = mull_hi_s8(xv, wv);
        vst1q_s32(acc + c, vaddw_s16(vld1q_s32(acc + c), vget_low_s16(p0)));
        vst1q_s32(acc + c + 4, addw_hi_s16(vld1q_s32(acc + c + 4), p0));
        vst1q_s32(acc + c + 8, vaddw_s16(vld1q_s32(acc + c + 8), vget_low_s16(p1)));
        vst1q_s32(acc + c + 12, addw_hi_s16(vld1q_s32(acc + c + 12), p1));
    }
    if (c + 8 <= n) {
        const int16x8_t p = vmull_s8(vld1_s8(x + c), vld1_s8(w + c));
        vst1q_s32(acc + c, vaddw_s16(vld1q_s32(acc + c), vget_low_s16(p)));
        vst1q_s32(acc + c + 4, addw_hi_s16(vld1q_s32(acc + c + 4), p));
        c += 8;
    }
    for (; c < n; ++c) {
        acc[c] += (int32_t)x[c] * (int32_t)w[c];
    }
}

static void requantize(const int32_t *acc, const int32_t *bias,
                       const int32_t *mult, const int32_t *shift, int32_t n,
                       int32_t out_offset, int32_t act_min, int32_t act_max,
                       int8_t *out) {
    const int32x4_t offset = vdupq_n_s32(out_offset);
    const int32x4_t lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
    int32_t c = 0;
    for (; c + 8 <= n; c += 8) {
        int32x4_t v0 = vld1q_s32(acc + c), v1 = vld1q_s32(acc + c + 4);
        if (bias) {
            v0 = vaddq_s32(v0, vld1q_s32(bias + c));
            v1 = vaddq_s32(v1, vld1q_s32(bias + c + 4));
        }
        vst1_s8(out + c, narrow8(finish4(v0, mult + c, shift + c, offset, lo, hi),
                                 finish4(v1, mult + c + 4, shift + c + 4, offset, lo, hi)));
    }
    for (; c < n; ++c) {
        const int32_t a = acc[c] + (bias ? bias[c] : 0);
        out[c] = trt_requantize_one(a, mult[c], shift[c], out_offset, act_min,
                                    act_max);
    }
}

/* Two taps per int16 lane.  A product of int8s lies in [-16256, 16384], so
 * the sum of two, S, lies in [-32512, 32768]: one value too many for int16,
 * but S + 32512 is in [0, 65280], which uint16 holds.  So the lane starts at
 * 32512, takes both products with wrapping multiply-accumulates (vmlal_s8)
 * and is added to the int32 accumulator as unsigned (vaddw_u16); the
 * accumulator started 32512 lower per pair.  Exact, and two instructions
 * per eight channels and pair of taps fewer than widening each product. */
enum { TRT_DW_PAIR_BIAS = 32512 };

TRT_INLINE int16x8_t mlal_hi_s8(int16x8_t acc, int8x16_t a, int8x16_t b) {
#ifdef TRT_NEON_A64
    return vmlal_high_s8(acc, a, b);
#else
    return vmlal_s8(acc, vget_high_s8(a), vget_high_s8(b));
#endif
}

/* acc += the low / high four uint16 lanes of p, zero-extended */
TRT_INLINE int32x4_t uaddw_lo(int32x4_t acc, int16x8_t p) {
    return vreinterpretq_s32_u32(vaddw_u16(vreinterpretq_u32_s32(acc),
                                           vget_low_u16(vreinterpretq_u16_s16(p))));
}

TRT_INLINE int32x4_t uaddw_hi(int32x4_t acc, int16x8_t p) {
#ifdef TRT_NEON_A64
    return vreinterpretq_s32_u32(vaddw_high_u16(vreinterpretq_u32_s32(acc),
                                                vreinterpretq_u16_s16(p)));
#else
    return vreinterpretq_s32_u32(vaddw_u16(vreinterpretq_u32_s32(acc),
                                           vget_high_u16(vreinterpretq_u16_s16(p))));
#endif
}

TRT_INLINE void dw_pixel_body(const int8_t *const *x, int32_t taps, const int8_t *w,
                              int32_t w_stride, int32_t n, const int32_t *bias,
                              const int32_t *mult, const int32_t *shift,
                              int32_t out_offset, int32_t act_min, int32_t act_max,
                              int8_t *out) {
    const int32x4_t offset = vdupq_n_s32(out_offset);
    const int32x4_t lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
    const int16x8_t pair_bias = vdupq_n_s16(TRT_DW_PAIR_BIAS);
    /* minus the pair bias of every pair, in wrapping int32 arithmetic */
    const int32x4_t unbias =
        vdupq_n_s32((int32_t)(0U - (uint32_t)TRT_DW_PAIR_BIAS * (uint32_t)(taps / 2)));
    int32_t c = 0;
    /* sixteen channels at a time, accumulators in registers over all taps */
    for (; c + 16 <= n; c += 16) {
        int32x4_t a0 = vaddq_s32(vld1q_s32(bias + c), unbias);
        int32x4_t a1 = vaddq_s32(vld1q_s32(bias + c + 4), unbias);
        int32x4_t a2 = vaddq_s32(vld1q_s32(bias + c + 8), unbias);
        int32x4_t a3 = vaddq_s32(vld1q_s32(bias + c + 12), unbias);
        const int8_t *wt = w + c;
        int32_t t = 0;
        for (; t + 2 <= taps; t += 2, wt += 2 * w_stride) {
            const int8x16_t x0 = vld1q_s8(x[t] + c), w0 = vld1q_s8(wt);
            const int8x16_t x1 = vld1q_s8(x[t + 1] + c), w1 = vld1q_s8(wt + w_stride);
            int16x8_t p0 = vmlal_s8(pair_bias, vget_low_s8(x0), vget_low_s8(w0));
            int16x8_t p1 = mlal_hi_s8(pair_bias, x0, w0);
            p0 = vmlal_s8(p0, vget_low_s8(x1), vget_low_s8(w1));
            p1 = mlal_hi_s8(p1, x1, w1);
            a0 = uaddw_lo(a0, p0);
            a1 = uaddw_hi(a1, p0);
            a2 = uaddw_lo(a2, p1);
            a3 = uaddw_hi(a3, p1);
        }
        if (t < taps) {
            const int8x16_t xv = vld1q_s8(x[t] + c), wv = vld1q_s8(wt);
            const int16x8_t p0 = vmull_s8(vget_low_s8(xv), vget_low_s8(wv));
            const int16x8_t p1 = mull_hi_s8(xv, wv);
            a0 = vaddw_s16(a0, vget_low_s16(p0));
            a1 = addw_hi_s16(a1, p0);
            a2 = vaddw_s16(a2, vget_low_s16(p1));
            a3 = addw_hi_s16(a3, p1);
        }
        const int8x8_t b0 = narrow8(finish4(a0, mult + c, shift + c, offset, lo, hi),
                                    finish4(a1, mult + c + 4, shift + c + 4, offset, lo, hi));
        const int8x8_t b1 = narrow8(finish4(a2, mult + c + 8, shift + c + 8, offset, lo, hi),
                                    finish4(a3, mult + c + 12, shift + c + 12, offset, lo, hi));
        vst1q_s8(out + c, vcombine_s8(b0, b1));
    }
    if (c + 8 <= n) {
        int32x4_t a0 = vld1q_s32(bias + c), a1 = vld1q_s32(bias + c + 4);
        const int8_t *wt = w + c;
        for (int32_t t = 0; t < taps; ++t, wt += w_stride) {
            const int16x8_t p = vmull_s8(vld1_s8(x[t] + c), vld1_s8(wt));
            a0 = vaddw_s16(a0, vget_low_s16(p));
            a1 = addw_hi_s16(a1, p);
        }
        vst1_s8(out + c, narrow8(finish4(a0, mult + c, shift + c, offset, lo, hi),
                                 finish4(a1, mult + c + 4, shift + c + 4, offset, lo, hi)));
        c += 8;
    }
    for (; c < n; ++c) {
        int32_t a = bias[c];
        for (int32_t t = 0; t < taps; ++t) {
            a += (int32_t)x[t][c] * (int32_t)w[t * w_stride + c];
        }
        out[c] = trt_requantize_one(a, mult[c], shift[c], out_offset, act_min,
                                    act_max);
    }
}

static void dw_pixel(const int8_t *const *x, int32_t taps, const int8_t *w,
                     int32_t w_stride, int32_t n, const int32_t *bias,
                     const int32_t *mult, const int32_t *shift,
                     int32_t out_offset, int32_t act_min, int32_t act_max,
                     int8_t *out) {
    dw_pixel_body(x, taps, w, w_stride, n, bias, mult, shift, out_offset,
                  act_min, act_max, out);
}

/* dw_run for eight channels, weights, bias and rescale terms held in
 * registers for the whole run; inlined with a constant tap count (3x3) the
 * tap loop unrolls. */
TRT_INLINE void dw_run8(const int8_t *x, int32_t count, int32_t x_step,
                        const int32_t *tap_off, int32_t taps, const int8_t *w,
                        int32_t w_stride, const int32_t *bias,
                        const int32_t *mult, const int32_t *shift,
                        int32_t out_offset, int32_t act_min, int32_t act_max,
                        int8_t *out, int32_t out_step) {
    int8x8_t wv[TRT_DW_RUN_TAPS];
    _Pragma("GCC unroll 16")
    for (int32_t t = 0; t < TRT_DW_RUN_TAPS; ++t) {
        wv[t] = t < taps ? vld1_s8(w + (int64_t)t * w_stride) : vdup_n_s8(0);
    }
    const int32x4_t b0 = vld1q_s32(bias), b1 = vld1q_s32(bias + 4);
    const int32x4_t m0 = vld1q_s32(mult), m1 = vld1q_s32(mult + 4);
    const int32x4_t s0 = vld1q_s32(shift), s1 = vld1q_s32(shift + 4);
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t l0 = vmaxq_s32(s0, zero), r0 = vminq_s32(s0, zero);
    const int32x4_t l1 = vmaxq_s32(s1, zero), r1 = vminq_s32(s1, zero);
    const int32x4_t offset = vdupq_n_s32(out_offset);
    const int32x4_t lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
    for (int32_t j = 0; j < count; ++j) {
        const int8_t *xj = x + (int64_t)j * x_step;
        int32x4_t a0 = b0, a1 = b1;
        _Pragma("GCC unroll 16")
        for (int32_t t = 0; t < taps; ++t) {
            const int16x8_t p = vmull_s8(vld1_s8(xj + tap_off[t]), wv[t]);
            a0 = vaddw_s16(a0, vget_low_s16(p));
            a1 = addw_hi_s16(a1, p);
        }
        /* requantize4 with the terms hoisted */
        a0 = vqrdmulhq_s32(vshlq_s32(a0, l0), m0);
        a1 = vqrdmulhq_s32(vshlq_s32(a1, l1), m1);
        a0 = vrshlq_s32(vqaddq_s32(a0, vshrq_n_s32(vandq_s32(a0, r0), 31)), r0);
        a1 = vrshlq_s32(vqaddq_s32(a1, vshrq_n_s32(vandq_s32(a1, r1), 31)), r1);
        a0 = vminq_s32(vmaxq_s32(vaddq_s32(a0, offset), lo), hi);
        a1 = vminq_s32(vmaxq_s32(vaddq_s32(a1, offset), lo), hi);
        vst1_s8(out + (int64_t)j * out_step, narrow8(vmovn_s32(a0), vmovn_s32(a1)));
    }
}

/* A row's interior pixels in one call: the pixel kernel inlined, its tap
 * pointers one add each from the fixed offsets (the per-pixel driver work,
 * window checks and an indirect call, cost more than an 8-16 channel
 * pixel's arithmetic: ~260 instructions a pixel on a Cortex-A72). */
static void dw_run(const int8_t *x, int32_t count, int32_t x_step,
                   const int32_t *tap_off, int32_t taps, const int8_t *w,
                   int32_t w_stride, int32_t n, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift,
                   int32_t out_offset, int32_t act_min, int32_t act_max,
                   int8_t *out, int32_t out_step) {
    if (n % 8 == 0) {
        /* eight channels per pass along the row, a 3x3 window unrolled with
         * its weights in registers: fewer instructions per MAC than the
         * pixel kernel's 16-channel blocks, whose weights and rescale terms
         * are reloaded for every pixel */
        for (int32_t c = 0; c < n; c += 8) {
            if (taps == 9) {
                dw_run8(x + c, count, x_step, tap_off, 9, w + c, w_stride, bias + c,
                        mult + c, shift + c, out_offset, act_min, act_max, out + c,
                        out_step);
            } else {
                dw_run8(x + c, count, x_step, tap_off, taps, w + c, w_stride,
                        bias + c, mult + c, shift + c, out_offset, act_min,
                        act_max, out + c, out_step);
            }
        }
        return;
    }
    const int8_t *px[TRT_DW_RUN_TAPS];
    for (int32_t t = 0; t < taps; ++t) {
        px[t] = x + tap_off[t];
    }
    for (int32_t j = 0; j < count; ++j) {
        dw_pixel_body(px, taps, w, w_stride, n, bias, mult, shift, out_offset,
                      act_min, act_max, out + (int64_t)j * out_step);
        for (int32_t t = 0; t < taps; ++t) {
            px[t] += x_step;
        }
    }
}

static void add(const trt_binary_params *p, const int8_t *x, const int8_t *y,
                int32_t n, int8_t *out) {
    const int32x4_t off1 = vdupq_n_s32(p->input1_offset);
    const int32x4_t off2 = vdupq_n_s32(p->input2_offset);
    const int32x4_t left = vdupq_n_s32(p->left_shift);
    const int32x4_t m1 = vdupq_n_s32(p->input1_multiplier);
    const int32x4_t s1 = vdupq_n_s32(p->input1_shift);
    const int32x4_t m2 = vdupq_n_s32(p->input2_multiplier);
    const int32x4_t s2 = vdupq_n_s32(p->input2_shift);
    const int32x4_t mo = vdupq_n_s32(p->output_multiplier);
    const int32x4_t so = vdupq_n_s32(p->output_shift);
    const int32x4_t offset = vdupq_n_s32(p->output_offset);
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const int16x8_t a16 = vmovl_s8(vld1_s8(x + i));
        const int16x8_t b16 = vmovl_s8(vld1_s8(y + i));
        int16x4_t half[2];
        for (int h = 0; h < 2; ++h) {
            const int16x4_t a4 = h ? vget_high_s16(a16) : vget_low_s16(a16);
            const int16x4_t b4 = h ? vget_high_s16(b16) : vget_low_s16(b16);
            /* x * 2^left_shift wraps in int32, as trt_shl_wrap */
            const int32x4_t a = vshlq_s32(vaddq_s32(vmovl_s16(a4), off1), left);
            const int32x4_t b = vshlq_s32(vaddq_s32(vmovl_s16(b4), off2), left);
            const int32x4_t sum = vaddq_s32(requantize4(a, m1, s1), requantize4(b, m2, s2));
            int32x4_t v = vaddq_s32(requantize4(sum, mo, so), offset);
            half[h] = vmovn_s32(vminq_s32(vmaxq_s32(v, lo), hi));
        }
        vst1_s8(out + i, narrow8(half[0], half[1]));
    }
    for (; i < n; ++i) {
        out[i] = trt_add_one(p, x[i], y[i]);
    }
}

/* ---------------------------------------------------------------- GEMM --- */

/* Four accumulators of one row (channels oc..oc+3) plus bias -> four bytes. */
TRT_INLINE void finish_row4(int32x4_t acc, int32_t oc, const int32_t *bias,
                            const int32_t *mult, const int32_t *shift,
                            const double *scale, int32_t out_offset,
                            int32_t act_min, int32_t act_max, int8_t *out) {
    acc = vaddq_s32(acc, vld1q_s32(bias + oc));
    const int32x4_t lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
    int32x4_t v;
    if (scale) {
#ifdef TRT_NEON_A64
        /* round half away of acc * scale in double; saturating conversions
         * as the scalar cast on ARM (trt_round_to_i32) */
        float64x2_t d0 = vcvtq_f64_s64(vmovl_s32(vget_low_s32(acc)));
        float64x2_t d1 = vcvtq_f64_s64(vmovl_high_s32(acc));
        d0 = vrndaq_f64(vmulq_f64(d0, vld1q_f64(scale + oc)));
        d1 = vrndaq_f64(vmulq_f64(d1, vld1q_f64(scale + oc + 2)));
        v = vcombine_s32(vqmovn_s64(vcvtq_s64_f64(d0)), vqmovn_s64(vcvtq_s64_f64(d1)));
        v = vaddq_s32(v, vdupq_n_s32(out_offset)); /* wraps, as the scalar */
        v = vminq_s32(vmaxq_s32(v, lo), hi);
#else
        int32_t a[4];
        vst1q_s32(a, acc);
        for (int32_t j = 0; j < 4; ++j) {
            out[j] = trt_finish_f64(a[j], scale[oc + j], out_offset, act_min, act_max);
        }
        return;
#endif
    } else {
        v = requantize4(acc, vld1q_s32(mult + oc), vld1q_s32(shift + oc));
        v = vminq_s32(vmaxq_s32(vaddq_s32(v, vdupq_n_s32(out_offset)), lo), hi);
    }
    const int16x4_t h = vmovn_s32(v);
    store4(out, narrow8(h, h));
}

TRT_INLINE int8_t finish_one(int32_t acc, int32_t oc, const int32_t *mult,
                             const int32_t *shift, const double *scale,
                             int32_t out_offset, int32_t act_min,
                             int32_t act_max) {
    if (scale) {
        return trt_finish_f64(acc, scale[oc], out_offset, act_min, act_max);
    }
    return trt_requantize_one(acc, mult[oc], shift[oc], out_offset, act_min,
                              act_max);
}

/* Rows [r0, r0 + rows) against every weight row, rows in {1, 2, 4}; dot
 * kernels passed in so that the dot-product table shares the driver. */
typedef void (*dot1x4_fn)(const int8_t *, const int8_t *, int32_t, int32_t,
                          int32_t *);
typedef void (*dot2x4_fn)(const int8_t *, const int8_t *, const int8_t *,
                          int32_t, int32_t, int32_t *);
typedef void (*dot4x4_fn)(const int8_t *const *, const int8_t *, int32_t,
                          int32_t, int32_t *);
typedef int32_t (*dot1x1_fn)(const int8_t *, const int8_t *, int32_t);

TRT_INLINE void gemm_rows(const int8_t *const *x, int32_t rows, int32_t k,
                          const int8_t *w, int32_t n, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift,
                          const double *scale, int32_t out_offset,
                          int32_t act_min, int32_t act_max, int8_t *const *out,
                          dot1x4_fn d1, dot2x4_fn d2, dot4x4_fn d4,
                          dot1x1_fn d11) {
    int32_t oc = 0;
    for (; oc + 4 <= n; oc += 4) {
        const int8_t *wb = w + (int64_t)oc * k;
        int32_t acc[16];
        if (rows == 4) {
            d4(x, wb, k, k, acc);
        } else if (rows == 2) {
            d2(x[0], x[1], wb, k, k, acc);
        } else {
            d1(x[0], wb, k, k, acc);
        }
        if (!scale) {
            /* the block's rescale terms once for its rows: int8 stores may
             * alias anything, so the compiler reloads them per row */
            const int32x4_t b = vld1q_s32(bias + oc), m = vld1q_s32(mult + oc);
            const int32x4_t sh = vld1q_s32(shift + oc), zero = vdupq_n_s32(0);
            const int32x4_t left = vmaxq_s32(sh, zero), right = vminq_s32(sh, zero);
            const int32x4_t offset = vdupq_n_s32(out_offset);
            const int32x4_t lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
            for (int32_t r = 0; r < rows; ++r) {
                int32x4_t v = vqrdmulhq_s32(vshlq_s32(vaddq_s32(vld1q_s32(acc + 4 * r), b), left), m);
                const int32x4_t fixup = vshrq_n_s32(vandq_s32(v, right), 31);
                v = vrshlq_s32(vqaddq_s32(v, fixup), right);
                v = vminq_s32(vmaxq_s32(vaddq_s32(v, offset), lo), hi);
                const int16x4_t h = vmovn_s32(v);
                store4(out[r] + oc, narrow8(h, h));
            }
            continue;
        }
        for (int32_t r = 0; r < rows; ++r) {
            finish_row4(vld1q_s32(acc + 4 * r), oc, bias, mult, shift, scale,
                        out_offset, act_min, act_max, out[r] + oc);
        }
    }
    for (; oc < n; ++oc) {
        const int8_t *wb = w + (int64_t)oc * k;
        for (int32_t r = 0; r < rows; ++r) {
            out[r][oc] = finish_one(d11(x[r], wb, k) + bias[oc], oc, mult, shift,
                                    scale, out_offset, act_min, act_max);
        }
    }
}

#ifndef TRT_NEON_A64
/* 32-bit NEON: four rows as two pairs (see dot_4x4). */
static void dot_4x4(const int8_t *const *x, const int8_t *w, int32_t w_stride,
                    int32_t k, int32_t *acc) {
    dot_2x4(x[0], x[1], w, w_stride, k, acc);
    dot_2x4(x[2], x[3], w, w_stride, k, acc + 8);
}
#endif

static void gemm(const int8_t *const *x, int32_t m, int32_t k,
                 const int8_t *w, const int16_t *w_packed, int32_t n,
                 const int32_t *bias, const int32_t *mult, const int32_t *shift,
                 const double *scale, int32_t out_offset, int32_t act_min,
                 int32_t act_max, int8_t *const *out) {
    (void)w_packed; /* see the top of this file */
    int32_t r = 0;
    for (; r < m;) {
        const int32_t rows = m - r >= 4 ? 4 : (m - r >= 2 ? 2 : 1);
        gemm_rows(x + r, rows, k, w, n, bias, mult, shift, scale, out_offset,
                  act_min, act_max, out + r, dot_1x4, dot_2x4, dot_4x4, dot_1x1);
        r += rows;
    }
}

const trt_ukernels trt_ukernels_neon = {
    TRT_ISA_NEON, 1, dot_1x4, dot_2x4, mac_rows, requantize, dw_pixel, gemm, add,
    dw_run,
    0, /* gemm_seg: gathered patches */
    0, 0, 0, 0, 0, /* rows_u8, gemm_k4, dw_k4, dw_k4_in_place, widen3_u8: x86 VNNI only */
};

/* ------------------------------------------- ARMv8.2 dot product (SDOT) --- */

#ifdef TRT_NEON_DOTPROD

/* Only the dot-product functions use SDOT, so the library stays baseline
 * ARMv8-A.  GCC's arm_neon.h declares vdotq_s32 for "arch=armv8.2-a+dotprod",
 * which the callers' target must include.  Nothing else is inlined into
 * them (only NEON intrinsics and the two helpers below, which carry the same
 * target), so this works whatever -march/-mcpu the file is built with; the
 * GEMM driver calls them (a call per 4x4 block). */
#ifdef __ARM_FEATURE_DOTPROD
#define TRT_DOTPROD
#else
#define TRT_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif
#define TRT_DOTPROD_INLINE static inline __attribute__((always_inline)) TRT_DOTPROD

/* The low eight bytes, the high eight zero: lets the 8-byte step use the
 * same 16-byte SDOT and accumulators. */
TRT_DOTPROD_INLINE int8x16_t load8z(const int8_t *p) {
    return vcombine_s8(vld1_s8(p), vdup_n_s8(0));
}

TRT_DOTPROD_INLINE int32x4_t hsum4_dp(int32x4_t a, int32x4_t b, int32x4_t c,
                                      int32x4_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

TRT_DOTPROD static void dot_1x4_dp(const int8_t *x, const int8_t *w,
                                   int32_t w_stride, int32_t k, int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const int8x16_t xv = vld1q_s8(x + i);
        a0 = vdotq_s32(a0, xv, vld1q_s8(w0 + i));
        a1 = vdotq_s32(a1, xv, vld1q_s8(w1 + i));
        a2 = vdotq_s32(a2, xv, vld1q_s8(w2 + i));
        a3 = vdotq_s32(a3, xv, vld1q_s8(w3 + i));
    }
    if (i + 8 <= k) {
        const int8x16_t xv = load8z(x + i);
        a0 = vdotq_s32(a0, xv, load8z(w0 + i));
        a1 = vdotq_s32(a1, xv, load8z(w1 + i));
        a2 = vdotq_s32(a2, xv, load8z(w2 + i));
        a3 = vdotq_s32(a3, xv, load8z(w3 + i));
        i += 8;
    }
    int32_t r[4];
    vst1q_s32(r, hsum4_dp(a0, a1, a2, a3));
    for (; i < k; ++i) {
        const int32_t xv = x[i];
        r[0] += xv * w0[i];
        r[1] += xv * w1[i];
        r[2] += xv * w2[i];
        r[3] += xv * w3[i];
    }
    memcpy(acc, r, sizeof r);
}

TRT_DOTPROD static void dot_2x4_dp(const int8_t *x0, const int8_t *x1,
                                   const int8_t *w, int32_t w_stride, int32_t k,
                                   int32_t *acc) {
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    int32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const int8x16_t u = vld1q_s8(x0 + i), v = vld1q_s8(x1 + i);
        int8x16_t wv = vld1q_s8(w0 + i);
        a0 = vdotq_s32(a0, u, wv);
        b0 = vdotq_s32(b0, v, wv);
        wv = vld1q_s8(w1 + i);
        a1 = vdotq_s32(a1, u, wv);
        b1 = vdotq_s32(b1, v, wv);
        wv = vld1q_s8(w2 + i);
        a2 = vdotq_s32(a2, u, wv);
        b2 = vdotq_s32(b2, v, wv);
        wv = vld1q_s8(w3 + i);
        a3 = vdotq_s32(a3, u, wv);
        b3 = vdotq_s32(b3, v, wv);
    }
    if (i + 8 <= k) {
        const int8x16_t u = load8z(x0 + i), v = load8z(x1 + i);
        int8x16_t wv = load8z(w0 + i);
        a0 = vdotq_s32(a0, u, wv);
        b0 = vdotq_s32(b0, v, wv);
        wv = load8z(w1 + i);
        a1 = vdotq_s32(a1, u, wv);
        b1 = vdotq_s32(b1, v, wv);
        wv = load8z(w2 + i);
        a2 = vdotq_s32(a2, u, wv);
        b2 = vdotq_s32(b2, v, wv);
        wv = load8z(w3 + i);
        a3 = vdotq_s32(a3, u, wv);
        b3 = vdotq_s32(b3, v, wv);
        i += 8;
    }
    int32_t r[8];
    vst1q_s32(r, hsum4_dp(a0, a1, a2, a3));
    vst1q_s32(r + 4, hsum4_dp(b0, b1, b2, b3));
    for (; i < k; ++i) {
        const int32_t u = x0[i], v = x1[i];
        r[0] += u * w0[i];
        r[1] += u * w1[i];
        r[2] += u * w2[i];
        r[3] += u * w3[i];
        r[4] += v * w0[i];
        r[5] += v * w1[i];
        r[6] += v * w2[i];
        r[7] += v * w3[i];
    }
    memcpy(acc, r, sizeof r);
}

TRT_DOTPROD static void dot_4x4_dp(const int8_t *const *x, const int8_t *w,
                                   int32_t w_stride, int32_t k, int32_t *acc) {
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    const int8_t *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride,
                 *w3 = w + 3 * w_stride;
    TRT_ACC16;
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        const int8x16_t u0 = vld1q_s8(x0 + i), u1 = vld1q_s8(x1 + i);
        const int8x16_t u2 = vld1q_s8(x2 + i), u3 = vld1q_s8(x3 + i);
        int8x16_t wv = vld1q_s8(w0 + i);
        TRT_COL4(vdotq_s32, wv, 0);
        wv = vld1q_s8(w1 + i);
        TRT_COL4(vdotq_s32, wv, 1);
        wv = vld1q_s8(w2 + i);
        TRT_COL4(vdotq_s32, wv, 2);
        wv = vld1q_s8(w3 + i);
        TRT_COL4(vdotq_s32, wv, 3);
    }
    if (i + 8 <= k) {
        const int8x16_t u0 = load8z(x0 + i), u1 = load8z(x1 + i);
        const int8x16_t u2 = load8z(x2 + i), u3 = load8z(x3 + i);
        int8x16_t wv = load8z(w0 + i);
        TRT_COL4(vdotq_s32, wv, 0);
        wv = load8z(w1 + i);
        TRT_COL4(vdotq_s32, wv, 1);
        wv = load8z(w2 + i);
        TRT_COL4(vdotq_s32, wv, 2);
        wv = load8z(w3 + i);
        TRT_COL4(vdotq_s32, wv, 3);
        i += 8;
    }
    TRT_STORE16(hsum4_dp, acc);
    tail_4x4(x, w, w_stride, i, k, acc);
}

TRT_DOTPROD static int32_t dot_1x1_dp(const int8_t *x, const int8_t *w,
                                      int32_t k) {
    int32x4_t a = vdupq_n_s32(0);
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) {
        a = vdotq_s32(a, vld1q_s8(x + i), vld1q_s8(w + i));
    }
    if (i + 8 <= k) {
        a = vdotq_s32(a, load8z(x + i), load8z(w + i));
        i += 8;
    }
    int32_t s = vaddvq_s32(a);
    for (; i < k; ++i) {
        s += (int32_t)x[i] * (int32_t)w[i];
    }
    return s;
}

static void gemm_dp(const int8_t *const *x, int32_t m, int32_t k,
                    const int8_t *w, const int16_t *w_packed, int32_t n,
                    const int32_t *bias, const int32_t *mult,
                    const int32_t *shift, const double *scale,
                    int32_t out_offset, int32_t act_min, int32_t act_max,
                    int8_t *const *out) {
    (void)w_packed;
    int32_t r = 0;
    for (; r < m;) {
        const int32_t rows = m - r >= 4 ? 4 : (m - r >= 2 ? 2 : 1);
        gemm_rows(x + r, rows, k, w, n, bias, mult, shift, scale, out_offset,
                  act_min, act_max, out + r, dot_1x4_dp, dot_2x4_dp, dot_4x4_dp,
                  dot_1x1_dp);
        r += rows;
    }
}

/* Depthwise, element-wise and requantisation kernels have no dot products
 * to fuse: the NEON ones. */
const trt_ukernels trt_ukernels_neon_dotprod = {
    TRT_ISA_NEON_DOTPROD, 1, dot_1x4_dp, dot_2x4_dp, mac_rows, requantize,
    dw_pixel, gemm_dp, add,
    dw_run,
    0, /* gemm_seg: gathered patches */
    0, 0, 0, 0, 0, /* rows_u8, gemm_k4, dw_k4, dw_k4_in_place, widen3_u8: x86 VNNI only */
};

#endif /* TRT_NEON_DOTPROD */

#ifdef TRT_NEON_POP_OPTIONS
#pragma GCC pop_options
#endif

#endif /* TRT_NEON_A64 || TRT_NEON_A32 */
