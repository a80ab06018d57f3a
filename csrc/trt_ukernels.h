/*
 * trt_ukernels.h - the micro-kernels under the convolution kernels, one
 * table per instruction set (private).
 *
 * The operator kernels (conv2d_s8.c, depthwise_conv2d_s8.c) do the layout
 * work once and spend their time in these few loops.  ukernels_portable.c is
 * the C99 reference, always built and always the MCU path; ISA variants
 * (ukernels_avx2.c, ...) must give bit-identical results, which the tests
 * check by running every model under each table (trt_isa_select).
 *
 * Contract shared by all tables: multipliers are >= 0 (the planner's Q31
 * values), shifts in [-31, 30]; integer sums are exact, so any summation
 * order gives the same result.
 */
#ifndef TRT_UKERNELS_H
#define TRT_UKERNELS_H

#include "trt_fixedpoint.h"

/* The operands of a VNNI GEMM (gemm_k4): weights in the packed_k4 layout of
 * trt_conv2d_params, its bias_k4, and the rescale of the other GEMMs. */
typedef struct {
    int32_t k;                 /* row length                                 */
    int32_t n;                 /* output channels                            */
    const int8_t *w;           /* [ceil(n/16)][ceil(k/4)][16][4]             */
    const int32_t *bias;       /* bias_folded - 128 * sum(w), padded to 16   */
    const int32_t *mult;       /* Q31 rescale, or NULL when scale is set     */
    const int32_t *shift;
    const double *scale;       /* FULLY_CONNECTED's double rescale, or NULL  */
    const int64_t *rescale;    /* the params' rescale_k4 (may be NULL)       */
    int32_t out_offset;
    int32_t act_min;
    int32_t act_max;
    /* The rows: row r is segs segments of k / segs bytes, the first at x[r],
     * the next seg_stride bytes on (a convolution's kernel rows in an
     * image); segs > 1 needs k / segs a multiple of 4.  One segment may be
     * read up to the next multiple of 4 bytes (weights there are 0). */
    int32_t segs;
    int32_t seg_stride;
    /* A convolution's image rows: the bytes of one kernel tap (a pixel of
     * the unsigned image) within a segment, or 0.  With stride 1 the rows
     * are pixels this far apart, and a row's tap kx is row r + kx's tap 0:
     * a kernel may load each input once for all the taps that use it. */
    int32_t tap;
} trt_gemm_k4;

/* The AMX-INT8 table (ukernels_amx.c) is built where its intrinsics and
 * Linux's permission call exist. */
#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11) || \
     (defined(__clang__) && __clang_major__ >= 12))
#define TRT_HAVE_AMX 1
#endif

typedef struct {
    int32_t isa; /* trt_isa */
    /* Non-zero on hosts with a deep stack (not microcontrollers): a
     * convolution planned without arena scratch may still gather its im2col
     * patches into a stack buffer of TRT_STACK_PATCH_BYTES. */
    int32_t stack_patches;
    /* acc[j] = x . w_j over k bytes, w_j = w + j * w_stride, j < 4 */
    void (*dot_1x4)(const int8_t *x, const int8_t *w, int32_t w_stride,
                    int32_t k, int32_t *acc);
    /* acc[4 * r + j] = x_r . w_j, r < 2, j < 4 */
    void (*dot_2x4)(const int8_t *x0, const int8_t *x1, const int8_t *w,
                    int32_t w_stride, int32_t k, int32_t *acc);
    /* acc[c] += x[c] * w[c], c < n */
    void (*mac_rows)(int32_t *acc, const int8_t *x, const int8_t *w,
                     int32_t n);
    /* out[c] = clamp(requantize(acc[c] + bias[c], mult[c], shift[c]) +
     * out_offset, act_min, act_max), c < n; bias may be NULL */
    void (*requantize)(const int32_t *acc, const int32_t *bias,
                       const int32_t *mult, const int32_t *shift, int32_t n,
                       int32_t out_offset, int32_t act_min, int32_t act_max,
                       int8_t *out);
    /* One depthwise output pixel, channels c < n:
     * out[c] = finish(bias[c] + sum_t x[t][c] * w[t * w_stride + c]) */
    void (*dw_pixel)(const int8_t *const *x, int32_t taps, const int8_t *w,
                     int32_t w_stride, int32_t n, const int32_t *bias,
                     const int32_t *mult, const int32_t *shift,
                     int32_t out_offset, int32_t act_min, int32_t act_max,
                     int8_t *out);
    /* GEMM with fused requantisation, rows r < m (m <= TRT_GEMM_MR):
     * out[r][oc] = finish(bias[oc] + sum_i x[r][i] * w[oc * k + i]), oc < n.
     * finish is the Q31 rescale (mult, shift), or, when scale is not NULL,
     * TFLite's reference FULLY_CONNECTED rescale in double (trt_finish_f64).
     * w_packed (may be NULL) is the same weights in the SIMD layout
     * described at trt_conv2d_params.packed_weights; the per-channel arrays
     * then hold a multiple of 16 entries. */
    void (*gemm)(const int8_t *const *x, int32_t m, int32_t k,
                 const int8_t *w, const int16_t *w_packed, int32_t n,
                 const int32_t *bias, const int32_t *mult,
                 const int32_t *shift, const double *scale,
                 int32_t out_offset, int32_t act_min, int32_t act_max,
                 int8_t *const *out);
    /* ADD of n same-shaped elements, TFLite's AddFunc on each */
    void (*add)(const trt_binary_params *p, const int8_t *x, const int8_t *y,
                int32_t n, int8_t *out);
    /* A run of `count` depthwise output pixels of one row whose windows lie
     * inside the image (depth multiplier 1): pixel j reads tap t at
     * x + j * x_step + tap_off[t] and writes its channels c < n at
     * out + j * out_step; otherwise as dw_pixel.  taps <= TRT_DW_RUN_TAPS,
     * n <= TRT_DW_RUN_CHANNELS.  May be NULL (the caller goes per pixel). */
    void (*dw_run)(const int8_t *x, int32_t count, int32_t x_step,
                   const int32_t *tap_off, int32_t taps, const int8_t *w,
                   int32_t w_stride, int32_t n, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift,
                   int32_t out_offset, int32_t act_min, int32_t act_max,
                   int8_t *out, int32_t out_step);
    /* gemm whose row r is the concatenation of x[r * segs + s], s < segs,
     * each k / segs bytes (a convolution's kernel rows read where they lie
     * in the image).  Needs w_packed and k <= TRT_GEMM_MAX_K.  May be NULL
     * (the caller gathers patches for gemm). */
    void (*gemm_seg)(const int8_t *const *x, int32_t segs, int32_t m,
                     int32_t k, const int8_t *w, const int16_t *w_packed,
                     int32_t n, const int32_t *bias, const int32_t *mult,
                     const int32_t *shift, const double *scale,
                     int32_t out_offset, int32_t act_min, int32_t act_max,
                     int8_t *const *out);
    /* The VNNI GEMM's rows (x86 tables with vpdpbusd; NULL elsewhere): row
     * r < rows of dst (TRT_K4_STRIDE bytes apart) = the segs segments
     * seg[r * segs + s] of len bytes each, one after the other, every byte
     * plus 128 as an unsigned byte, then zeros up to a multiple of four
     * bytes.  A segment may already lie where it is to go (in place: a
     * patch gathered into its row). */
    void (*rows_u8)(uint8_t *dst, const int8_t *const *seg, int32_t segs,
                    int32_t len, int32_t rows);
    /* out[r][oc] = finish(g->bias[oc] + sum_i row_r[i] * w[oc][i]) for
     * r < m <= TRT_K4_MR, oc < g->n, rows as trt_gemm_k4 describes, bytes
     * already x + 128 (rows_u8); finish as gemm's.  NULL where rows_u8 is. */
    void (*gemm_k4)(const trt_gemm_k4 *g, const uint8_t *const *x, int32_t m,
                    int8_t *const *out);
    /* DEPTHWISE_CONV_2D with p->packed_k4 (x86 VNNI tables; NULL
     * elsewhere): output pixels [begin, end) of one image (all of them when
     * p->in_place).  Returns 0, having written nothing, for a layer whose
     * shape it does not take; the caller then runs the other kernels. */
    int32_t (*dw_k4)(const trt_depthwise_conv2d_params *p, const int8_t *input,
                     int8_t *output, int32_t begin, int32_t end);
    /* Whether dw_k4 runs p in place itself (its channel_block unused).
     * NULL where dw_k4 is. */
    int32_t (*dw_k4_in_place)(const trt_depthwise_conv2d_params *p);
    /* n pixels of 3 signed channels -> n pixels of 4 unsigned bytes (x + 128,
     * the fourth byte arbitrary: its weights are 0), the VNNI image of an
     * RGB input.  May be NULL (the caller's scalar loop). */
    void (*widen3_u8)(uint8_t *dst, const int8_t *src, int32_t n);
} trt_ukernels;

enum {
    TRT_DW_RUN_TAPS = 16,
    TRT_DW_RUN_CHANNELS = 256,
    TRT_GEMM_MAX_K = 4096, /* longest row of the SIMD GEMMs (widened on the stack) */
    TRT_GEMM_SEG_MAX = 16  /* most segments per gemm_seg row */
};

enum { TRT_GEMM_MR = 4, TRT_STACK_PATCH_BYTES = 16384 };

/* Rows per gemm_k4 call, and the distance between them: the drivers keep
 * them in a stack buffer of TRT_K4_MR rows of up to TRT_GEMM_MAX_K bytes.  A
 * constant stride lets a kernel reach every row from one base register; one
 * cache line over 4 KiB keeps the rows out of each other's cache sets. */
enum { TRT_K4_MR = 16, TRT_K4_STRIDE = TRT_GEMM_MAX_K + 64 };

/* Only x86-64 tables have gemm_k4; elsewhere its drivers are left out of
 * the build (no flash for dead code on microcontrollers). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRT_HAVE_GEMM_K4 1
#endif

extern const trt_ukernels trt_ukernels_portable;

/* The table selected by trt_isa_select() (the best available by default). */
const trt_ukernels *trt_ukernels_active(void);

/* One output value, the scalar definition every table must match. */
TRT_INLINE int8_t trt_requantize_one(int32_t acc, int32_t mult, int32_t shift,
                                     int32_t out_offset, int32_t act_min,
                                     int32_t act_max) {
    const int32_t a = trt_requantize(acc, mult, shift) + out_offset;
    return (int8_t)trt_clamp(a, act_min, act_max);
}

/* TFLite's reference FULLY_CONNECTED rescale: round half away from zero of
 * acc * scale in double, the (host-defined) int32 cast, a wrapping add of
 * the zero point, the activation clamp. */
TRT_INLINE int8_t trt_finish_f64(int32_t acc, double scale, int32_t out_offset,
                                 int32_t act_min, int32_t act_max) {
    int32_t a = trt_round_to_i32((double)acc * scale);
    a = (int32_t)((uint32_t)a + (uint32_t)out_offset);
    return (int8_t)trt_clamp(a, act_min, act_max);
}

/* TFLite's reference AddFunc for one element: both inputs shifted left by
 * p->left_shift, rescaled to the common scale, summed, rescaled out. */
TRT_INLINE int8_t trt_add_one(const trt_binary_params *p, int32_t x,
                              int32_t y) {
    const int32_t a = trt_shl_wrap(p->input1_offset + x, p->left_shift);
    const int32_t b = trt_shl_wrap(p->input2_offset + y, p->left_shift);
    const int32_t sa = trt_requantize(a, p->input1_multiplier, p->input1_shift);
    const int32_t sb = trt_requantize(b, p->input2_multiplier, p->input2_shift);
    const int32_t raw = trt_requantize(sa + sb, p->output_multiplier,
                                       p->output_shift) +
                        p->output_offset;
    return (int8_t)trt_clamp(raw, p->act_min, p->act_max);
}

/* widen3_u8's pixels from `i` on, one at a time (the vector loops' tail). */
TRT_INLINE void trt_widen3_u8_tail(uint8_t *dst, const int8_t *src, int32_t i, int32_t n) {
    for (; i < n; ++i) {
        for (int32_t j = 0; j < 3; ++j) {
            dst[4 * i + j] = (uint8_t)(src[3 * i + j] ^ 0x80);
        }
        dst[4 * i + 3] = 0;
    }
}

/* Whether the m >= 2 rows x[0 .. m - 1] lie at one distance from each
 * other (*stride), as a GEMM's rows do when they are consecutive pixels. */
TRT_INLINE int trt_rows_one_stride(const uint8_t *const *x, int32_t m, int64_t *stride) {
    *stride = x[1] - x[0];
    for (int32_t r = 2; r < m; ++r) {
        if (x[r] - x[r - 1] != *stride) {
            return 0;
        }
    }
    return 1;
}

/* One input of ADD as the SIMD tables compute it.  TFLite rescales
 * v = x + offset (at most 255 in magnitude) shifted left by `left` (20 for
 * int8) with a multiplier m below one half, shift -e <= 0.  With
 * d = 31 - left + e, the floor form of gemmlowp's two roundings
 * (trt_avx512_rescale.h) divided by 2^left is
 *
 *     (v m + 2^(30-left) + [e > 0] (2^(30-left+e) - [v < 0] 2^(31-left))) >> d,
 *
 * and with m = mh 2^d + ml that is v mh + ((v ml + ...) >> d): two 32-bit
 * products instead of 64-bit ones, exact while 8 <= d <= 22 (v mh and
 * v ml + ... then fit in 31 bits), which TFLite's int8 ADD always is.  The
 * offset is folded into the constants: c0 here, offset * mh into the sum's
 * constant.  `linear`: ml = 0 and e = 0 (the larger-scale input's
 * multiplier of exactly one half), the value is x * mh plus a constant.
 * Returns 0 (the caller takes the full rescales) outside that range. */
typedef struct {
    int32_t mh, ml, c0, neg_at, corr, d, linear;
} trt_add_split;

TRT_INLINE int trt_add_split_make(int32_t offset, int32_t left, int32_t mult,
                                  int32_t shift, trt_add_split *s,
                                  int32_t *sum_const) {
    const int32_t e = -shift, d = 31 - left + e;
    if (shift > 0 || left < 0 || left > 23 || d < 8 || d > 22 ||
        offset < -255 || offset > 255) {
        return 0;
    }
    s->mh = mult >> d;
    s->ml = mult & ((1 << d) - 1);
    s->c0 = offset * s->ml + (1 << (30 - left)) + (e ? 1 << (30 - left + e) : 0);
    s->neg_at = -offset; /* x + offset < 0 */
    s->corr = e ? 1 << (31 - left) : 0;
    s->d = d;
    s->linear = s->ml == 0 && e == 0;
    *sum_const += offset * s->mh + (s->linear ? s->c0 >> d : 0);
    return 1;
}

#endif /* TRT_UKERNELS_H */
