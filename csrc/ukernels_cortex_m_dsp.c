/*
 * Micro-kernels for Arm cores with the DSP extension (Cortex-M4, M7, M33,
 * M35P, M55 with DSP; any little-endian core with the ARMv6 SIMD32 set),
 * selected at compile time on bare metal by ukernels_dispatch.c.
 *
 * Multiplies: SMLAD does two 16x16 multiply-accumulates per instruction.
 * Four int8 are read as one word; SXTB16 sign-extends bytes 0 and 2 into the
 * two int16 lanes, SXTB16 with ROR #8 bytes 1 and 3.  Both operands of a dot
 * product go through the same pair of instructions, so their lanes always
 * pair the same k (no reordered weight layout is needed), and SMLAD(even) +
 * SMLAD(odd) is the sum of all four products.  Depthwise needs one product
 * per channel: SMLABB / SMLATT take the bottom or top lanes.  Integer sums
 * are exact modulo 2^32 like the portable C, so any order gives the same
 * bits.
 *
 * The loops that carry nearly all MACs are small assembly routines: a 2x2
 * dot block (two rows of the GEMM, two output channels: every loaded word
 * feeds two SMLAD pairs), a 1x4 one (one row, four channels: fully
 * connected and direct convolution) and the depthwise pixel (four channels
 * per group, taps three per loop, requantised and stored in the same
 * routine).  Each needs the fourteen allocatable registers (accumulators,
 * extended input and weight lanes, pointers, a counter), which a C compiler
 * does not manage without spilling in the loop; as naked functions they are
 * also the same code at every optimisation level.  The weights stay the
 * int8 [out][k] / [tap][channel] arrays every table reads: no extra copy in
 * flash.
 *
 * Requantisation, exact (gemmlowp's double rounding, trt_requantize): for
 * a right shift e = -shift >= 1 and |x| < 2^30,
 *     t = SMMLAR(2x, m, x >> 31) >> (e - 1);   result = (t + 1) >> 1
 * SMMLAR(2x, m, c) = floor((2xm + 2^31) / 2^32) + c is the rounding doubling
 * high multiply plus c; c = -1 for negative x is RoundingDivideByPOT's
 * "round half away from zero" (for x < 0 with a zero product both choices
 * give 0), and floor(floor(a / 2^(e-1)) + 1) / 2) = floor((a + 2^(e-1)) / 2^e)
 * turns the last two steps into one rounding shift.  The output zero point
 * joins before the final halving (2 * zp + 1), and SSAT #8 with ASR #1 does
 * the halving and the int8 saturation in one instruction.  Left shifts and
 * |x| >= 2^30 (2x overflows: ADDS sets V) take trt_requantize itself.
 * Four results are packed into a word (BFI) and clamped to the activation
 * range with SSUB8 + SEL per bound, four bytes at a time.  TFLite's double
 * FULLY_CONNECTED rescale is done exactly in integers too (finish_f64): no
 * soft-float on these single-precision-FPU cores.
 *
 * Every entry gives the portable table's bytes (tests/emulation/
 * test_dsp_kernels.py runs both in the same Cortex-M4 firmware).
 */
#include "trt_ukernels.h"

/* Keep in step with ukernels_dispatch.c. */
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && \
    !defined(__ARM_BIG_ENDIAN) && defined(__GNUC__) &&           \
    !defined(TRT_NO_CORTEX_M_DSP)

#include <arm_acle.h>

/* Word access to int8 data at any address: LDR/STR allow unaligned
 * addresses on these cores (LDRD/LDM do not, which is why none are used). */
typedef int32_t trt_word_u __attribute__((aligned(1), may_alias));

TRT_INLINE int32_t load4(const int8_t *p) { return *(const trt_word_u *)p; }

TRT_INLINE void store4(int8_t *p, uint32_t v) {
    *(trt_word_u *)p = (int32_t)v;
}

/* Bytes 0 and 2 of v as two int16 lanes. */
TRT_INLINE int32_t ext_even(int32_t v) { return __sxtb16(v); }

/* Bytes 1 and 3: one instruction (gcc does not fold the rotate into the
 * SXTB16 builtin). */
TRT_INLINE int32_t ext_odd(int32_t v) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* floor((a * b + 2^31) / 2^32) + c */
TRT_INLINE int32_t smmlar(int32_t a, int32_t b, int32_t c) {
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

/* clamp(v >> 1, -128, 127) */
TRT_INLINE int32_t ssat8_half(int32_t v) {
    int32_t r;
    __asm__("ssat %0, #8, %1, asr #1" : "=r"(r) : "r"(v));
    return r;
}

/* The low bytes of a, b, c, d as one little-endian word. */
TRT_INLINE uint32_t pack4(int32_t a, int32_t b, int32_t c, int32_t d) {
    uint32_t r = (uint32_t)a;
    __asm__("bfi %0, %1, #8, #8\n\t"
            "bfi %0, %2, #16, #8\n\t"
            "bfi %0, %3, #24, #8"
            : "+r"(r)
            : "r"(b), "r"(c), "r"(d));
    return r;
}

/* ------------------------------------------------------ requantisation -- */

/* The per-call constants of the output stage. */
typedef struct {
    int32_t off;      /* output zero point                                  */
    int32_t off2p1;   /* 2 * off + 1: added before the final halving        */
    int32_t act_min;
    int32_t act_max;
    uint32_t lo4;     /* act_min in each byte                               */
    uint32_t hi4;     /* act_max in each byte                               */
    int32_t clamp;    /* the activation range is narrower than int8         */
} trt_dsp_out;

/* Activation ranges are within int8 for int8 outputs; one outside would
 * make the portable kernel's (int8_t) cast wrap, which the saturating path
 * here does not reproduce, so such a call takes the portable table. */
TRT_INLINE int act_in_int8(int32_t act_min, int32_t act_max) {
    return act_min >= -128 && act_max <= 127 && act_min <= act_max;
}

static trt_dsp_out out_stage(int32_t out_offset, int32_t act_min,
                             int32_t act_max) {
    trt_dsp_out o;
    o.off = out_offset;
    o.off2p1 = 2 * out_offset + 1;
    o.act_min = act_min;
    o.act_max = act_max;
    o.lo4 = (uint32_t)(uint8_t)act_min * 0x01010101u;
    o.hi4 = (uint32_t)(uint8_t)act_max * 0x01010101u;
    o.clamp = act_min > -128 || act_max < 127;
    return o;
}

/* The rare path of rq8 (left shifts, |x| >= 2^30), out of line: the
 * zero point wraps as the portable kernel's int32 add does.  Also called by
 * name from the depthwise assembly. */
int32_t trt_dsp_rq8_slow(int32_t x, int32_t m, int32_t shift, int32_t off);

__attribute__((used, noinline)) int32_t trt_dsp_rq8_slow(int32_t x, int32_t m,
                                                         int32_t shift,
                                                         int32_t off) {
    return __ssat((int32_t)((uint32_t)trt_requantize(x, m, shift) + (uint32_t)off), 8);
}

/* requantize(x, m, shift) + out_offset saturated to int8 (the activation
 * clamp comes after, on packed bytes).  See the top of the file. */
TRT_INLINE int32_t rq8(int32_t x, int32_t m, int32_t shift,
                       const trt_dsp_out *o) {
    int32_t x2;
    if (__builtin_expect(shift < 0 && !__builtin_add_overflow(x, x, &x2), 1)) {
        const int32_t t = smmlar(x2, m, x >> 31) >> (-shift - 1);
        return ssat8_half(t + o->off2p1);
    }
    return trt_dsp_rq8_slow(x, m, shift, o->off);
}

/* trt_requantize(x, m, -e) for any e >= 0 (no left shift), given the
 * per-call h = 2^e / 2 and em = e > 0 ? -1 : 0: the top-of-file formula as
 * floor((srdhm(x, m) + h - [x < 0]) / 2^e), which for e = 0 is srdhm alone
 * (ADD's larger-scale input has multiplier 1/2 exactly, shift 0). */
TRT_INLINE int32_t rq_nonneg(int32_t x, int32_t m, int32_t e, int32_t h,
                             int32_t em) {
    int32_t x2;
    if (__builtin_expect(!__builtin_add_overflow(x, x, &x2), 1)) {
        return smmlar(x2, m, h + ((x >> 31) & em)) >> e;
    }
    return trt_requantize(x, m, -e);
}

/* Activation clamp of four packed int8: per-byte max, then min. */
TRT_INLINE uint32_t clamp4(uint32_t v, const trt_dsp_out *o) {
    uint32_t t;
    __asm__("ssub8 %1, %0, %2\n\t"
            "sel %0, %0, %2\n\t"
            "ssub8 %1, %3, %0\n\t"
            "sel %0, %0, %3"
            : "+r"(v), "=&r"(t)
            : "r"(o->lo4), "r"(o->hi4));
    return v;
}

/* Four accumulators (bias included) of channels c..c+3 -> four bytes. */
TRT_INLINE uint32_t finish4(int32_t a0, int32_t a1, int32_t a2, int32_t a3,
                            const int32_t *mult, const int32_t *shift,
                            const trt_dsp_out *o) {
    const uint32_t v = pack4(rq8(a0, mult[0], shift[0], o),
                             rq8(a1, mult[1], shift[1], o),
                             rq8(a2, mult[2], shift[2], o),
                             rq8(a3, mult[3], shift[3], o));
    return o->clamp ? clamp4(v, o) : v;
}

TRT_INLINE int8_t finish1(int32_t acc, int32_t mult, int32_t shift,
                          const trt_dsp_out *o) {
    return (int8_t)trt_clamp(rq8(acc, mult, shift, o), o->act_min, o->act_max);
}

/* ------------------------------------------------ assembly dot products -- */

/* Arguments of the naked functions arrive in r0-r3 and on the stack (AAPCS)
 * and are read by the assembly only. */
#define TRT_ASM_ARG __attribute__((unused))

/* One 4-byte step of dot2x2: r0 row 0 (post-incremented), r0 + r2 row 1,
 * r1 weights of channel 0 (post-incremented), r1 + r2 channel 1;
 * accumulators r4 = x0.w0, r5 = x0.w1, r6 = x1.w0, r7 = x1.w1. */
#define TRT_DSP_STEP_2X2                                                     \
    "ldr    r8, [r0, r2]\n\t"                                                \
    "ldr    r9, [r0], #4\n\t"                                                \
    "sxtb16 r10, r9\n\t"                                                     \
    "sxtb16 r9, r9, ror #8\n\t"                                              \
    "sxtb16 r11, r8\n\t"                                                     \
    "sxtb16 r8, r8, ror #8\n\t"                                              \
    "ldr    r12, [r1, r2]\n\t"                                               \
    "sxtb16 lr, r12\n\t"                                                     \
    "sxtb16 r12, r12, ror #8\n\t"                                            \
    "smlad  r5, r10, lr, r5\n\t"                                             \
    "smlad  r5, r9, r12, r5\n\t"                                             \
    "smlad  r7, r11, lr, r7\n\t"                                             \
    "smlad  r7, r8, r12, r7\n\t"                                             \
    "ldr    r12, [r1], #4\n\t"                                               \
    "sxtb16 lr, r12\n\t"                                                     \
    "sxtb16 r12, r12, ror #8\n\t"                                            \
    "smlad  r4, r10, lr, r4\n\t"                                             \
    "smlad  r4, r9, r12, r4\n\t"                                             \
    "smlad  r6, r11, lr, r6\n\t"                                             \
    "smlad  r6, r8, r12, r6\n\t"

/* acc[0..3] = x0.w0, x0.w1, x1.w0, x1.w1 over 4 * words bytes (words >= 1),
 * where x1 = x0 + step and w1 = w0 + step: consecutive GEMM rows (patches
 * or pixels k bytes apart) against consecutive weight rows (k apart).
 * 20 instructions per 16 MACs; the loop runs two steps per iteration. */
__attribute__((naked, noinline)) static void
dot2x2(TRT_ASM_ARG const int8_t *x0, TRT_ASM_ARG const int8_t *w0,
       TRT_ASM_ARG int32_t step, TRT_ASM_ARG int32_t words,
       TRT_ASM_ARG int32_t *acc) {
    __asm__ volatile(
        ".syntax unified\n\t"
        "push   {r4-r11, lr}\n\t"
        "movs   r4, #0\n\t"
        "movs   r5, #0\n\t"
        "movs   r6, #0\n\t"
        "movs   r7, #0\n\t"
        "lsrs   r3, r3, #1\n\t" /* word pairs; C: an odd word first */
        "bcc    1f\n\t"
        TRT_DSP_STEP_2X2 /* sets no flags: Z still from LSRS */
        "1:\n\t"
        "beq    3f\n\t"
        "2:\n\t"
        TRT_DSP_STEP_2X2
        TRT_DSP_STEP_2X2
        "subs   r3, r3, #1\n\t"
        "bne    2b\n\t"
        "3:\n\t"
        "ldr    r8, [sp, #36]\n\t" /* acc: the fifth argument */
        "stm    r8, {r4-r7}\n\t"
        "pop    {r4-r11, pc}\n\t");
}

/* One 4-byte step of dot1x4: r0 the row (post-incremented), weights of
 * channel j at r1 + j * stride (r2 = stride, r10 = 2 stride, r11 = 3
 * stride; r1 post-incremented last); accumulators r4..r7. */
#define TRT_DSP_STEP_1X4(off, acc)                                           \
    "ldr    r12, [r1, " off "]\n\t"                                          \
    "sxtb16 lr, r12\n\t"                                                     \
    "sxtb16 r12, r12, ror #8\n\t"                                            \
    "smlad  " acc ", r9, lr, " acc "\n\t"                                    \
    "smlad  " acc ", r8, r12, " acc "\n\t"

#define TRT_DSP_STEP_1X4_ALL                                                 \
    "ldr    r8, [r0], #4\n\t"                                                \
    "sxtb16 r9, r8\n\t"                                                      \
    "sxtb16 r8, r8, ror #8\n\t"                                              \
    TRT_DSP_STEP_1X4("r11", "r7")                                            \
    TRT_DSP_STEP_1X4("r10", "r6")                                            \
    TRT_DSP_STEP_1X4("r2", "r5")                                             \
    "ldr    r12, [r1], #4\n\t"                                               \
    "sxtb16 lr, r12\n\t"                                                     \
    "sxtb16 r12, r12, ror #8\n\t"                                            \
    "smlad  r4, r9, lr, r4\n\t"                                              \
    "smlad  r4, r8, r12, r4\n\t"

/* acc[j] = x . w_j over 4 * words bytes (words >= 1), w_j = w0 + j * stride.
 * 23 instructions per 16 MACs: the row's word is extended once for four
 * channels. */
__attribute__((naked, noinline)) static void
dot1x4(TRT_ASM_ARG const int8_t *x, TRT_ASM_ARG const int8_t *w0,
       TRT_ASM_ARG int32_t stride, TRT_ASM_ARG int32_t words,
       TRT_ASM_ARG int32_t *acc) {
    __asm__ volatile(
        ".syntax unified\n\t"
        "push   {r4-r11, lr}\n\t"
        "add    r10, r2, r2\n\t"
        "add    r11, r10, r2\n\t"
        "movs   r4, #0\n\t"
        "movs   r5, #0\n\t"
        "movs   r6, #0\n\t"
        "movs   r7, #0\n\t"
        "lsrs   r3, r3, #1\n\t"
        "bcc    1f\n\t"
        TRT_DSP_STEP_1X4_ALL
        "1:\n\t"
        "beq    3f\n\t"
        "2:\n\t"
        TRT_DSP_STEP_1X4_ALL
        TRT_DSP_STEP_1X4_ALL
        "subs   r3, r3, #1\n\t"
        "bne    2b\n\t"
        "3:\n\t"
        "ldr    r8, [sp, #36]\n\t"
        "stm    r8, {r4-r7}\n\t"
        "pop    {r4-r11, pc}\n\t");
}

/* x . w over n bytes, for tails (C with SMLAD, four bytes at a time). */
static int32_t dot_c(const int8_t *x, const int8_t *w, int32_t n) {
    int32_t a = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = load4(x + i), wv = load4(w + i);
        a = __smlad(ext_even(xv), ext_even(wv), a);
        a = __smlad(ext_odd(xv), ext_odd(wv), a);
    }
    for (; i < n; ++i) {
        a += (int32_t)x[i] * (int32_t)w[i];
    }
    return a;
}

/* ------------------------------------------------------- table entries -- */

static void dot_1x4(const int8_t *x, const int8_t *w, int32_t w_stride,
                    int32_t k, int32_t *acc) {
    const int32_t body = k & ~3;
    if (body) {
        dot1x4(x, w, w_stride, k >> 2, acc);
    } else {
        acc[0] = acc[1] = acc[2] = acc[3] = 0;
    }
    if (body != k) {
        for (int32_t j = 0; j < 4; ++j) {
            acc[j] += dot_c(x + body, w + (int64_t)j * w_stride + body, k - body);
        }
    }
}

static void dot_2x4(const int8_t *x0, const int8_t *x1, const int8_t *w,
                    int32_t w_stride, int32_t k, int32_t *acc) {
    const int32_t body = k & ~3;
    if (body && (uintptr_t)x1 == (uintptr_t)x0 + (uintptr_t)(intptr_t)w_stride) {
        /* rows as far apart as weight rows: two 2x2 blocks */
        int32_t a[8];
        dot2x2(x0, w, w_stride, k >> 2, a);
        dot2x2(x0, w + 2 * (int64_t)w_stride, w_stride, k >> 2, a + 4);
        acc[0] = a[0];
        acc[1] = a[1];
        acc[2] = a[4];
        acc[3] = a[5];
        acc[4] = a[2];
        acc[5] = a[3];
        acc[6] = a[6];
        acc[7] = a[7];
        for (int32_t j = 0; body != k && j < 4; ++j) {
            const int8_t *wj = w + (int64_t)j * w_stride + body;
            acc[j] += dot_c(x0 + body, wj, k - body);
            acc[4 + j] += dot_c(x1 + body, wj, k - body);
        }
        return;
    }
    dot_1x4(x0, w, w_stride, k, acc);
    dot_1x4(x1, w, w_stride, k, acc + 4);
}

static void mac_rows(int32_t *acc, const int8_t *x, const int8_t *w,
                     int32_t n) {
    int32_t c = 0;
    for (; c + 4 <= n; c += 4) {
        const int32_t xv = load4(x + c), wv = load4(w + c);
        const int32_t xe = ext_even(xv), xo = ext_odd(xv);
        const int32_t we = ext_even(wv), wo = ext_odd(wv);
        acc[c] = __smlabb(xe, we, acc[c]);
        acc[c + 1] = __smlabb(xo, wo, acc[c + 1]);
        acc[c + 2] = __smlatt(xe, we, acc[c + 2]);
        acc[c + 3] = __smlatt(xo, wo, acc[c + 3]);
    }
    for (; c < n; ++c) {
        acc[c] += (int32_t)x[c] * (int32_t)w[c];
    }
}

static void requantize(const int32_t *acc, const int32_t *bias,
                       const int32_t *mult, const int32_t *shift, int32_t n,
                       int32_t out_offset, int32_t act_min, int32_t act_max,
                       int8_t *out) {
    if (!act_in_int8(act_min, act_max)) {
        trt_ukernels_portable.requantize(acc, bias, mult, shift, n, out_offset,
                                         act_min, act_max, out);
        return;
    }
    const trt_dsp_out o = out_stage(out_offset, act_min, act_max);
    int32_t c = 0;
    for (; c + 4 <= n; c += 4) {
        int32_t a0 = acc[c], a1 = acc[c + 1], a2 = acc[c + 2], a3 = acc[c + 3];
        if (bias) {
            a0 += bias[c];
            a1 += bias[c + 1];
            a2 += bias[c + 2];
            a3 += bias[c + 3];
        }
        store4(out + c, finish4(a0, a1, a2, a3, mult + c, shift + c, &o));
    }
    for (; c < n; ++c) {
        out[c] = finish1(acc[c] + (bias ? bias[c] : 0), mult[c], shift[c], &o);
    }
}

/* One tap of four channels: r0 walks the tap pointers, r8 is the channel
 * offset, the weights are at `w`; r4..r7 += x[c + j] * w[j]. */
#define TRT_DSP_DW_TAP(w)                                                    \
    "ldr    r10, [r0], #4\n\t"                                               \
    "ldr    r10, [r10, r8]\n\t"                                              \
    "ldr    r12, " w "\n\t"                                                  \
    "sxtb16 r11, r10\n\t"                                                    \
    "sxtb16 r10, r10, ror #8\n\t"                                            \
    "sxtb16 lr, r12\n\t"                                                     \
    "sxtb16 r12, r12, ror #8\n\t"                                            \
    "smlabb r4, r11, lr, r4\n\t"                                             \
    "smlatt r6, r11, lr, r6\n\t"                                             \
    "smlabb r5, r10, r12, r5\n\t"                                            \
    "smlatt r7, r10, r12, r7\n\t"

/* Requantise accumulator `a` in place (see rq8): r0 / r1 walk the
 * multipliers / shifts, r2 = 2 * out_offset + 1; the slow path is out of
 * line. */
#define TRT_DSP_DW_RQ(a, slow, back)                                         \
    "ldr    r3, [r1], #4\n\t"                                                \
    "ldr    r12, [r0], #4\n\t"                                               \
    "mvns   r3, r3\n\t" /* -shift - 1; negative (N) for a left shift */      \
    "bmi    " slow "f\n\t"                                                   \
    "adds   r9, " a ", " a "\n\t"                                            \
    "bvs    " slow "f\n\t"                                                   \
    "asr    r10, " a ", #31\n\t"                                             \
    "smmlar r9, r9, r12, r10\n\t"                                            \
    "asr    r9, r9, r3\n\t"                                                  \
    "add    r9, r9, r2\n\t"                                                  \
    "ssat   " a ", #8, r9, asr #1\n\t"                                       \
    back ":\n\t"

/* trt_dsp_rq8_slow(a, multiplier, shift, out_offset), registers kept. */
#define TRT_DSP_DW_SLOW(a, slow, back)                                       \
    slow ":\n\t"                                                             \
    "push   {r0-r2, lr}\n\t"                                                 \
    "mvn    r2, r3\n\t"                                                      \
    "mov    r0, " a "\n\t"                                                   \
    "mov    r1, r12\n\t"                                                     \
    "ldr    r3, [sp, #104]\n\t" /* out_offset, 16 bytes further now */      \
    "bl     trt_dsp_rq8_slow\n\t"                                            \
    "mov    " a ", r0\n\t"                                                   \
    "pop    {r0-r2, lr}\n\t"                                                 \
    "b      " back "b\n\t"

static void dw_pixel_any(const int8_t *const *x, int32_t taps, const int8_t *w,
                         int32_t w_stride, int32_t n, const int32_t *bias,
                         const int32_t *mult, const int32_t *shift,
                         int32_t out_offset, int32_t act_min, int32_t act_max,
                         int8_t *out);

/* The table's dw_pixel.  For n a multiple of 4 and an activation range
 * inside int8 (every MLPerf layer) it does the whole pixel: each group of
 * four channels runs its taps (three per iteration) with the accumulators
 * in r4..r7 from the bias on, then the requantisation, the activation clamp
 * and one word stored.  11 instructions per tap of 4 MACs; about 11 per
 * output channel after.  Other calls go on to dw_pixel_any (a tail call:
 * the arguments are untouched).
 *
 * Frame: 36 bytes pushed, 36 of locals ([sp] x, taps, w, w_stride,
 * [sp+16] 2 * out_offset + 1, [sp+20] act_min / [sp+24] act_max in each
 * byte, [sp+28] non-zero when the activation range is narrower than int8),
 * so the stack arguments start at sp+72: n, bias, mult, shift, out_offset,
 * act_min, act_max, out. */
__attribute__((naked, noinline)) static void
dw_pixel(TRT_ASM_ARG const int8_t *const *x, TRT_ASM_ARG int32_t taps,
          TRT_ASM_ARG const int8_t *w, TRT_ASM_ARG int32_t w_stride,
          TRT_ASM_ARG int32_t n, TRT_ASM_ARG const int32_t *bias,
          TRT_ASM_ARG const int32_t *mult, TRT_ASM_ARG const int32_t *shift,
          TRT_ASM_ARG int32_t out_offset, TRT_ASM_ARG int32_t act_min,
          TRT_ASM_ARG int32_t act_max, TRT_ASM_ARG int8_t *out) {
    __asm__ volatile(
        ".syntax unified\n\t"
        "push   {r4-r11, lr}\n\t"
        "ldr    r4, [sp, #36]\n\t" /* n */
        "ldrd   r6, r7, [sp, #56]\n\t" /* act_min, act_max */
        "tst    r4, #3\n\t"
        "bne    18f\n\t"
        "cmn    r6, #128\n\t"
        "blt    18f\n\t"
        "cmp    r7, #127\n\t"
        "bgt    18f\n\t"
        "cmp    r6, r7\n\t"
        "bgt    18f\n\t"
        "sub    sp, sp, #36\n\t"
        "stm    sp, {r0-r3}\n\t"
        "ldr    r4, [sp, #88]\n\t" /* out_offset */
        "add    r4, r4, r4\n\t"
        "add    r4, r4, #1\n\t"
        "str    r4, [sp, #16]\n\t"
        "ldrd   r4, r5, [sp, #92]\n\t" /* act_min, act_max */
        "movs   r6, #0\n\t"
        "cmn    r4, #128\n\t"
        "bne    7f\n\t"
        "cmp    r5, #127\n\t"
        "beq    8f\n\t"
        "7:\n\t" /* a narrower range: the bounds in every byte */
        "movs   r6, #1\n\t"
        "uxtb   r4, r4\n\t"
        "orr    r4, r4, r4, lsl #8\n\t"
        "orr    r4, r4, r4, lsl #16\n\t"
        "uxtb   r5, r5\n\t"
        "orr    r5, r5, r5, lsl #8\n\t"
        "orr    r5, r5, r5, lsl #16\n\t"
        "strd   r4, r5, [sp, #20]\n\t"
        "8:\n\t"
        "str    r6, [sp, #28]\n\t"
        "movs   r8, #0\n\t" /* the channel offset of the group */
        "ldr    r3, [sp, #72]\n\t"
        "cmp    r3, #0\n\t"
        "ble    9f\n\t"
        "1:\n\t"
        "ldr    r9, [sp, #76]\n\t"
        "add    r9, r9, r8, lsl #2\n\t"
        "ldm    r9, {r4-r7}\n\t" /* the accumulators start at the bias */
        "ldm    sp, {r0-r3}\n\t" /* x, taps, w, w_stride */
        "add    r2, r2, r8\n\t"
        "add    r9, r3, r3\n\t"
        "subs   r1, r1, #3\n\t"
        "blt    3f\n\t"
        "2:\n\t"
        TRT_DSP_DW_TAP("[r2]")
        TRT_DSP_DW_TAP("[r2, r3]")
        TRT_DSP_DW_TAP("[r2, r9]")
        "add    r2, r2, r9\n\t"
        "add    r2, r2, r3\n\t"
        "subs   r1, r1, #3\n\t"
        "bge    2b\n\t"
        "3:\n\t"
        "adds   r1, r1, #3\n\t"
        "beq    5f\n\t"
        "4:\n\t"
        TRT_DSP_DW_TAP("[r2]")
        "add    r2, r2, r3\n\t"
        "subs   r1, r1, #1\n\t"
        "bne    4b\n\t"
        "5:\n\t"
        "ldrd   r0, r1, [sp, #80]\n\t" /* mult, shift */
        "add    r0, r0, r8, lsl #2\n\t"
        "add    r1, r1, r8, lsl #2\n\t"
        "ldr    r2, [sp, #16]\n\t"
        TRT_DSP_DW_RQ("r4", "10", "11")
        TRT_DSP_DW_RQ("r5", "12", "13")
        TRT_DSP_DW_RQ("r6", "14", "15")
        TRT_DSP_DW_RQ("r7", "16", "17")
        "bfi    r4, r5, #8, #8\n\t"
        "bfi    r4, r6, #16, #8\n\t"
        "bfi    r4, r7, #24, #8\n\t"
        "ldr    r3, [sp, #28]\n\t"
        "cmp    r3, #0\n\t"
        "beq    6f\n\t"
        "ldrd   r10, r11, [sp, #20]\n\t"
        "ssub8  r9, r4, r10\n\t"
        "sel    r4, r4, r10\n\t"
        "ssub8  r9, r11, r4\n\t"
        "sel    r4, r4, r11\n\t"
        "6:\n\t"
        "ldr    r3, [sp, #100]\n\t" /* out */
        "str    r4, [r3, r8]\n\t"
        "add    r8, r8, #4\n\t"
        "ldr    r3, [sp, #72]\n\t"
        "cmp    r8, r3\n\t"
        "blt    1b\n\t"
        "9:\n\t"
        "add    sp, sp, #36\n\t"
        "pop    {r4-r11, pc}\n\t"
        "18:\n\t"
        "pop    {r4-r11, lr}\n\t"
        "b      dw_pixel_any\n\t"
        TRT_DSP_DW_SLOW("r4", "10", "11")
        TRT_DSP_DW_SLOW("r5", "12", "13")
        TRT_DSP_DW_SLOW("r6", "14", "15")
        TRT_DSP_DW_SLOW("r7", "16", "17"));
}

/* Any n or activation range: dw_pixel for the groups of four, C for the
 * rest.  Branched to by name from dw_pixel. */
__attribute__((used, noinline)) static void
dw_pixel_any(const int8_t *const *x, int32_t taps, const int8_t *w,
             int32_t w_stride, int32_t n, const int32_t *bias,
             const int32_t *mult, const int32_t *shift, int32_t out_offset,
             int32_t act_min, int32_t act_max, int8_t *out) {
    if (!act_in_int8(act_min, act_max)) {
        trt_ukernels_portable.dw_pixel(x, taps, w, w_stride, n, bias, mult,
                                       shift, out_offset, act_min, act_max, out);
        return;
    }
    const int32_t body = n & ~3;
    dw_pixel(x, taps, w, w_stride, body, bias, mult, shift, out_offset,
             act_min, act_max, out);
    const trt_dsp_out o = out_stage(out_offset, act_min, act_max);
    for (int32_t c = body; c < n; ++c) {
        int32_t a = bias[c];
        for (int32_t t = 0; t < taps; ++t) {
            a += (int32_t)x[t][c] * (int32_t)w[t * w_stride + c];
        }
        out[c] = finish1(a, mult[c], shift[c], &o);
    }
}

/* trt_finish_f64 in integer arithmetic: these cores have no double
 * precision FPU, and the soft-float calls cost some 600 instructions per
 * output.  Exact: with scale = m * 2^e (m the 53-bit significand) the
 * product a * m (a = |acc|) is at most 85 bits, held as hi * 2^32 + lo;
 * rounding it to 53 significant bits, nearest-even, is what the double
 * multiply does, and the half-away-from-zero rounding of that value to an
 * integer (saturating like ARM's conversion: this file is ARM only) is what
 * trt_round_to_i32 does; negative products mirror positive ones.  Zero,
 * negative or non-normal scales (never planned) take trt_finish_f64. */
static int8_t finish_f64(int32_t acc, double scale, int32_t out_offset,
                         int32_t act_min, int32_t act_max) {
    union {
        double d;
        uint64_t u;
    } v;
    v.d = scale;
    const uint32_t bexp = (uint32_t)(v.u >> 52) & 0x7ffu;
    if ((v.u >> 63) || bexp == 0 || bexp == 0x7ffu || acc == 0) {
        return trt_finish_f64(acc, scale, out_offset, act_min, act_max);
    }
    const uint64_t m = (v.u & ((1ULL << 52) - 1)) | (1ULL << 52);
    const int32_t e = (int32_t)bexp - 1075;
    const uint32_t a = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;
    const uint64_t lo = (uint64_t)a * (uint32_t)m;
    const uint64_t hi = (uint64_t)a * (uint32_t)(m >> 32) + (lo >> 32);
    const uint32_t lo32 = (uint32_t)lo;
    /* bits below the 53 kept: the product has 96 - clz(hi) bits, hi >= 2^20 */
    const int32_t s = 43 - __builtin_clzll(hi);
    uint64_t q;
    if (s == 0) {
        q = (hi << 32) | lo32;
    } else {
        uint32_t rem, half;
        if (s == 32) {
            q = hi;
            rem = lo32;
            half = 1u << 31;
        } else {
            q = (hi << (32 - s)) | (lo32 >> s);
            rem = lo32 & ((1u << s) - 1u);
            half = 1u << (s - 1);
        }
        if (rem > half || (rem == half && (q & 1u))) {
            ++q;
        }
    }
    /* |acc * scale| as a double is q * 2^f, q < 2^54 */
    const int32_t f = s + e;
    uint64_t r;
    if (f >= 0) {
        r = UINT64_MAX; /* at least 2^52: out of int32 range */
    } else if (f < -54) {
        r = 0;
    } else {
        r = (q + (1ULL << (-f - 1))) >> -f;
    }
    int32_t x;
    if (acc > 0) {
        x = r > (uint64_t)INT32_MAX ? INT32_MAX : (int32_t)r;
    } else {
        x = r >= (1ULL << 31) ? INT32_MIN : -(int32_t)r;
    }
    x = (int32_t)((uint32_t)x + (uint32_t)out_offset);
    return (int8_t)trt_clamp(x, act_min, act_max);
}

/* The output stage of the GEMM: the Q31 rescale, or TFLite's reference
 * FULLY_CONNECTED rescale in double when scale is set. */
typedef struct {
    const int32_t *bias;
    const int32_t *mult;
    const int32_t *shift;
    const double *scale;
    trt_dsp_out o;
} trt_dsp_gemm_out;

static uint32_t gemm_finish4(const trt_dsp_gemm_out *g, int32_t oc,
                             int32_t a0, int32_t a1, int32_t a2, int32_t a3) {
    const int32_t *b = g->bias + oc;
    if (!g->scale) {
        return finish4(a0 + b[0], a1 + b[1], a2 + b[2], a3 + b[3],
                       g->mult + oc, g->shift + oc, &g->o);
    }
    const trt_dsp_out *o = &g->o;
    const double *s = g->scale + oc;
    return pack4(finish_f64(a0 + b[0], s[0], o->off, o->act_min, o->act_max),
                 finish_f64(a1 + b[1], s[1], o->off, o->act_min, o->act_max),
                 finish_f64(a2 + b[2], s[2], o->off, o->act_min, o->act_max),
                 finish_f64(a3 + b[3], s[3], o->off, o->act_min, o->act_max));
}

static int8_t gemm_finish1(const trt_dsp_gemm_out *g, int32_t oc, int32_t a) {
    a += g->bias[oc];
    if (g->scale) {
        return finish_f64(a, g->scale[oc], g->o.off, g->o.act_min,
                          g->o.act_max);
    }
    return finish1(a, g->mult[oc], g->shift[oc], &g->o);
}

/* Two GEMM rows k bytes apart (x0, x0 + k): 2x2 blocks, four channels per
 * output word. */
static void gemm_rows2(const int8_t *x0, int32_t k, const int8_t *w, int32_t n,
                       const trt_dsp_gemm_out *g, int8_t *o0, int8_t *o1) {
    const int32_t words = k >> 2, body = k & ~3;
    const int8_t *x1 = x0 + k;
    int32_t oc = 0;
    for (; oc + 4 <= n; oc += 4) {
        const int8_t *wo = w + (int64_t)oc * k;
        int32_t a[8]; /* x0.w0 x0.w1 x1.w0 x1.w1 x0.w2 x0.w3 x1.w2 x1.w3 */
        dot2x2(x0, wo, k, words, a);
        dot2x2(x0, wo + 2 * k, k, words, a + 4);
        if (body != k) {
            for (int32_t j = 0; j < 4; ++j) {
                const int8_t *wj = wo + (int64_t)j * k + body;
                a[(j & 1) + 4 * (j >> 1)] += dot_c(x0 + body, wj, k - body);
                a[(j & 1) + 4 * (j >> 1) + 2] += dot_c(x1 + body, wj, k - body);
            }
        }
        store4(o0 + oc, gemm_finish4(g, oc, a[0], a[1], a[4], a[5]));
        store4(o1 + oc, gemm_finish4(g, oc, a[2], a[3], a[6], a[7]));
    }
    for (; oc < n; ++oc) {
        const int8_t *wo = w + (int64_t)oc * k;
        o0[oc] = gemm_finish1(g, oc, dot_c(x0, wo, k));
        o1[oc] = gemm_finish1(g, oc, dot_c(x1, wo, k));
    }
}

/* One GEMM row: 1x4 blocks. */
static void gemm_row1(const int8_t *x, int32_t k, const int8_t *w, int32_t n,
                      const trt_dsp_gemm_out *g, int8_t *o) {
    int32_t oc = 0;
    for (; oc + 4 <= n; oc += 4) {
        int32_t a[4];
        dot_1x4(x, w + (int64_t)oc * k, k, k, a);
        store4(o + oc, gemm_finish4(g, oc, a[0], a[1], a[2], a[3]));
    }
    for (; oc < n; ++oc) {
        o[oc] = gemm_finish1(g, oc, dot_c(x, w + (int64_t)oc * k, k));
    }
}

static void gemm(const int8_t *const *x, int32_t m, int32_t k,
                 const int8_t *w, const int16_t *w_packed, int32_t n,
                 const int32_t *bias, const int32_t *mult, const int32_t *shift,
                 const double *scale, int32_t out_offset, int32_t act_min,
                 int32_t act_max, int8_t *const *out) {
    /* w_packed (a host SIMD layout) holds the same weights: unused here */
    if (!act_in_int8(act_min, act_max)) {
        trt_ukernels_portable.gemm(x, m, k, w, w_packed, n, bias, mult, shift,
                                   scale, out_offset, act_min, act_max, out);
        return;
    }
    trt_dsp_gemm_out g;
    g.bias = bias;
    g.mult = mult;
    g.shift = shift;
    g.scale = scale;
    g.o = out_stage(out_offset, act_min, act_max);
    int32_t r = 0;
    for (; r + 2 <= m; r += 2) {
        if (k >= 4 && (uintptr_t)x[r + 1] == (uintptr_t)x[r] + (uintptr_t)k) {
            gemm_rows2(x[r], k, w, n, &g, out[r], out[r + 1]);
        } else {
            gemm_row1(x[r], k, w, n, &g, out[r]);
            gemm_row1(x[r + 1], k, w, n, &g, out[r + 1]);
        }
    }
    for (; r < m; ++r) {
        gemm_row1(x[r], k, w, n, &g, out[r]);
    }
}

/* The per-call constants of ADD's input rescales (shifts <= 0). */
typedef struct {
    int32_t m1, e1, h1, em1;
    int32_t m2, e2, h2, em2;
    int32_t left;
} trt_dsp_add;

TRT_INLINE int32_t add_one(int32_t a, int32_t b, const trt_dsp_add *k,
                           const trt_binary_params *p, const trt_dsp_out *o) {
    const int32_t sa = rq_nonneg((int32_t)((uint32_t)a << k->left), k->m1,
                                 k->e1, k->h1, k->em1);
    const int32_t sb = rq_nonneg((int32_t)((uint32_t)b << k->left), k->m2,
                                 k->e2, k->h2, k->em2);
    return rq8(sa + sb, p->output_multiplier, p->output_shift, o);
}

static void add(const trt_binary_params *p, const int8_t *x, const int8_t *y,
                int32_t n, int8_t *out) {
    if (p->input1_shift > 0 || p->input2_shift > 0 ||
        !act_in_int8(p->act_min, p->act_max)) {
        trt_ukernels_portable.add(p, x, y, n, out);
        return;
    }
    const trt_dsp_out o = out_stage(p->output_offset, p->act_min, p->act_max);
    trt_dsp_add k;
    k.m1 = p->input1_multiplier;
    k.e1 = -p->input1_shift;
    k.h1 = (int32_t)((1u << k.e1) >> 1);
    k.em1 = k.e1 > 0 ? -1 : 0;
    k.m2 = p->input2_multiplier;
    k.e2 = -p->input2_shift;
    k.h2 = (int32_t)((1u << k.e2) >> 1);
    k.em2 = k.e2 > 0 ? -1 : 0;
    k.left = p->left_shift;
    const int32_t off1 = p->input1_offset, off2 = p->input2_offset;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = load4(x + i), yv = load4(y + i);
        uint32_t v = pack4(
            add_one(off1 + (int8_t)xv, off2 + (int8_t)yv, &k, p, &o),
            add_one(off1 + (int8_t)(xv >> 8), off2 + (int8_t)(yv >> 8), &k, p, &o),
            add_one(off1 + (int8_t)(xv >> 16), off2 + (int8_t)(yv >> 16), &k, p, &o),
            add_one(off1 + (int8_t)(xv >> 24), off2 + (int8_t)(yv >> 24), &k, p, &o));
        store4(out + i, o.clamp ? clamp4(v, &o) : v);
    }
    for (; i < n; ++i) {
        out[i] = (int8_t)trt_clamp(add_one(off1 + x[i], off2 + y[i], &k, p, &o),
                                   o.act_min, o.act_max);
    }
}

const trt_ukernels trt_ukernels_cortex_m_dsp = {
    TRT_ISA_CORTEX_M_DSP, 0, dot_1x4, dot_2x4, mac_rows, requantize, dw_pixel,
    gemm, add,
    0, /* dw_run: per pixel */
    0, /* gemm_seg: gathered patches */
    0, 0, 0, 0, 0, /* rows_u8, gemm_k4, dw_k4, dw_k4_in_place, widen3_u8: x86 VNNI only */
};

#endif
