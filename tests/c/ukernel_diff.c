/*
 * ukernel_diff: every entry of each SIMD micro-kernel table this build and
 * CPU have (NEON, NEON + dot product, AVX2, SSE4.1) against the portable
 * table, on random shapes and values (tails of every vector width,
 * INT8_MIN/MAX, multipliers up to 2^31 - 1, every shift the planner can
 * emit) plus a grid of requantisation edge values; the outputs must be
 * identical bytes.
 *
 * Every input ends flush against a PROT_NONE page and every output too, so
 * a kernel that reads or writes one byte past its operands faults.
 *
 * Built with the csrc sources by tests/test_neon.py (aarch64 / armv7 under
 * qemu-user, and the host).  Linux only.
 *
 *   usage: ukernel_diff [cases_per_kernel [seed]]
 *   output: "best <isa>", "select <isa> <got>" for every ISA code, then per
 *           table and kernel "table <isa> <kernel> cases <n> mismatches <m>",
 *           and "detail ..." lines for the first mismatches.
 */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS under -std=c99 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trt_ukernels.h"

/* ------------------------------------------------------------ randomness */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint32_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* uniform in [lo, hi] */
static int32_t rnd_in(int32_t lo, int32_t hi) {
    return (int32_t)((int64_t)lo + (int64_t)(rnd() % (uint32_t)((int64_t)hi - lo + 1)));
}

static int chance(int percent) { return (int32_t)(rnd() % 100) < percent; }

/* How int8 operands are drawn: the extremes matter (-128 * -128 twice
 * overflows int16). */
enum { VAL_UNIFORM, VAL_EXTREME, VAL_MIN, VAL_SMALL, VAL_MODES };

static void fill_i8(int8_t *p, int32_t n, int mode) {
    for (int32_t i = 0; i < n; ++i) {
        switch (mode) {
        case VAL_EXTREME:
            p[i] = (int8_t)(chance(50) ? -128 : 127);
            break;
        case VAL_MIN:
            p[i] = -128;
            break;
        case VAL_SMALL:
            p[i] = (int8_t)rnd_in(-3, 3);
            break;
        default:
            p[i] = (int8_t)rnd_in(-128, 127);
        }
    }
}

/* A length with every tail of 16 / 8 / 4 covered, mostly short. */
static int32_t rnd_len(int32_t max) {
    if (chance(60)) {
        return rnd_in(0, TRT_MIN(max, 40));
    }
    return rnd_in(0, max);
}

/* The planner's Q31 multipliers are in [0, 2^31 - 1]. */
static int32_t rnd_mult(void) {
    switch (rnd() % 8) {
    case 0:
        return INT32_MAX;
    case 1:
        return INT32_MAX - rnd_in(0, 1000);
    case 2:
        return (1 << 30) + rnd_in(-2, 2);
    case 3:
        return rnd_in(0, 3);
    default:
        return (int32_t)(rnd() >> 1);
    }
}

static int32_t rnd_shift(void) {
    switch (rnd() % 6) {
    case 0:
        return -31;
    case 1:
        return 30;
    case 2:
        return rnd_in(-12, 1);
    default:
        return rnd_in(-31, 30);
    }
}

static void rnd_act(int32_t *lo, int32_t *hi) {
    if (chance(50)) {
        *lo = -128;
        *hi = 127;
        return;
    }
    const int32_t a = rnd_in(-128, 127), b = rnd_in(-128, 127);
    *lo = TRT_MIN(a, b);
    *hi = TRT_MAX(a, b);
}

/* ------------------------------------------------------ guarded buffers */

enum { ARENA_BYTES = 1 << 18, ARENAS = 32 };
static uint8_t *arena_end[ARENAS];

static void arenas_init(void) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t size = (ARENA_BYTES + page - 1) / page * page;
    for (int i = 0; i < ARENAS; ++i) {
        uint8_t *p = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || mprotect(p + size, page, PROT_NONE) != 0) {
            perror("ukernel_diff: mmap");
            exit(2);
        }
        arena_end[i] = p + size;
    }
}

/* `bytes` at the end of arena `a`, right before its guard page. */
static void *at_end(int a, size_t bytes) {
    if (bytes > ARENA_BYTES) {
        fprintf(stderr, "ukernel_diff: %zu bytes do not fit an arena\n", bytes);
        exit(2);
    }
    return arena_end[a] - bytes;
}

/* ------------------------------------------------------------ reporting */

typedef struct {
    const char *name;
    long cases;
    long mismatches;
} tally;

static int details_left = 20;

static void mismatch(tally *t, const char *what) {
    t->mismatches++;
    if (details_left > 0) {
        --details_left;
        printf("detail %s: %s\n", t->name, what);
    }
}

/* ---------------------------------------------------------- the kernels */

static void check_dots(const trt_ukernels *u, tally *t1, tally *t2) {
    const int32_t k = chance(10) ? rnd_in(0, 2000) : rnd_len(300);
    const int32_t ws = k + (chance(50) ? 0 : rnd_in(1, 20));
    const int mode = (int)(rnd() % VAL_MODES);
    /* Half the time the two rows are one buffer w_stride apart, as the
     * grouped im2col path passes them (the DSP table's 2x2 blocks then use
     * one offset for rows and weights); the second row ends at the guard. */
    const int adjacent = chance(50);
    int8_t *x0 = at_end(0, (size_t)(adjacent ? ws + k : k));
    int8_t *x1 = adjacent ? x0 + ws : at_end(1, (size_t)k);
    int8_t *w = at_end(2, (size_t)(3 * ws + k));
    fill_i8(x0, k, mode);
    fill_i8(x1, k, chance(50) ? mode : VAL_UNIFORM);
    fill_i8(w, 3 * ws + k, chance(70) ? mode : VAL_UNIFORM);
    int32_t a[8], b[8];
    char what[96];
    snprintf(what, sizeof what, "k=%d w_stride=%d mode=%d", (int)k, (int)ws, mode);
    u->dot_1x4(x0, w, ws, k, a);
    trt_ukernels_portable.dot_1x4(x0, w, ws, k, b);
    t1->cases++;
    if (memcmp(a, b, 4 * sizeof a[0]) != 0) {
        mismatch(t1, what);
    }
    u->dot_2x4(x0, x1, w, ws, k, a);
    trt_ukernels_portable.dot_2x4(x0, x1, w, ws, k, b);
    t2->cases++;
    if (memcmp(a, b, sizeof a) != 0) {
        mismatch(t2, what);
    }
}

static void check_mac_rows(const trt_ukernels *u, tally *t) {
    const int32_t n = rnd_len(300);
    const int mode = (int)(rnd() % VAL_MODES);
    int8_t *x = at_end(0, (size_t)n), *w = at_end(1, (size_t)n);
    int32_t *a = at_end(2, 4 * (size_t)n), *b = at_end(3, 4 * (size_t)n);
    fill_i8(x, n, mode);
    fill_i8(w, n, mode);
    for (int32_t c = 0; c < n; ++c) {
        a[c] = b[c] = rnd_in(-(1 << 28), 1 << 28);
    }
    u->mac_rows(a, x, w, n);
    trt_ukernels_portable.mac_rows(b, x, w, n);
    t->cases++;
    if (memcmp(a, b, 4 * (size_t)n) != 0) {
        char what[64];
        snprintf(what, sizeof what, "n=%d mode=%d", (int)n, mode);
        mismatch(t, what);
    }
}

static void fill_requant(int32_t *mult, int32_t *shift, int32_t n) {
    const int same = chance(20);
    const int32_t m0 = rnd_mult(), s0 = rnd_shift();
    for (int32_t c = 0; c < n; ++c) {
        mult[c] = same ? m0 : rnd_mult();
        shift[c] = same ? s0 : rnd_shift();
    }
}

static void check_requantize(const trt_ukernels *u, tally *t) {
    const int32_t n = rnd_len(100);
    const int with_bias = chance(70);
    int32_t *acc = at_end(0, 4 * (size_t)n), *bias = at_end(1, 4 * (size_t)n);
    int32_t *mult = at_end(2, 4 * (size_t)n), *shift = at_end(3, 4 * (size_t)n);
    int8_t *oa = at_end(4, (size_t)n), *ob = at_end(5, (size_t)n);
    for (int32_t c = 0; c < n; ++c) {
        /* acc + bias stays in int32, as the planner guarantees */
        acc[c] = with_bias ? rnd_in(-(1 << 30), 1 << 30) : (int32_t)rnd();
        bias[c] = rnd_in(-(1 << 30), 1 << 30);
        if (chance(5)) {
            acc[c] = chance(50) ? INT32_MIN / 2 : INT32_MAX / 2;
        }
    }
    fill_requant(mult, shift, n);
    int32_t lo, hi;
    rnd_act(&lo, &hi);
    const int32_t off = rnd_in(-128, 127);
    u->requantize(acc, with_bias ? bias : NULL, mult, shift, n, off, lo, hi, oa);
    trt_ukernels_portable.requantize(acc, with_bias ? bias : NULL, mult, shift,
                                     n, off, lo, hi, ob);
    t->cases++;
    if (memcmp(oa, ob, (size_t)n) != 0) {
        char what[64];
        snprintf(what, sizeof what, "n=%d bias=%d", (int)n, with_bias);
        mismatch(t, what);
    }
}

/* The rescale on a grid of edge values, each shift in [-31, 30]: the output
 * offset cancels the expected value so that the clamp hides nothing. */
static void check_requantize_edges(const trt_ukernels *u, tally *t) {
    static const int32_t mults[] = {0, 1, 2, 3, (1 << 30) - 1, 1 << 30,
                                    (1 << 30) + 1, INT32_MAX - 1, INT32_MAX,
                                    1518500250, 1073741823 + 536870912};
    int32_t bases[100];
    int32_t nb = 0;
    bases[nb++] = INT32_MIN;
    bases[nb++] = INT32_MAX - 8;
    bases[nb++] = -4;
    for (int32_t e = 1; e < 31; ++e) {
        bases[nb++] = (int32_t)(1U << e) - 4;
        bases[nb++] = -(int32_t)(1U << e) - 4;
        bases[nb++] = (int32_t)(rnd() >> (e % 31));
    }
    const int32_t n = 9; /* eight vector lanes and a scalar tail */
    int32_t *acc = at_end(0, 4 * (size_t)n);
    int32_t *mult = at_end(2, 4 * (size_t)n), *shift = at_end(3, 4 * (size_t)n);
    int8_t *oa = at_end(4, (size_t)n), *ob = at_end(5, (size_t)n);
    for (int32_t i = 0; i < nb; ++i) {
        for (size_t j = 0; j < sizeof mults / sizeof mults[0]; ++j) {
            for (int32_t s = -31; s <= 30; ++s) {
                for (int32_t c = 0; c < n; ++c) {
                    acc[c] = (int32_t)((uint32_t)bases[i] + (uint32_t)c);
                    mult[c] = mults[j];
                    shift[c] = s;
                }
                const int32_t expect = trt_requantize(acc[0], mults[j], s);
                const int32_t off = (int32_t)(0U - (uint32_t)expect);
                u->requantize(acc, NULL, mult, shift, n, off, -128, 127, oa);
                trt_ukernels_portable.requantize(acc, NULL, mult, shift, n, off,
                                                 -128, 127, ob);
                t->cases++;
                if (memcmp(oa, ob, (size_t)n) != 0) {
                    char what[96];
                    snprintf(what, sizeof what, "acc=%ld mult=%ld shift=%d",
                             (long)acc[0], (long)mults[j], (int)s);
                    mismatch(t, what);
                }
            }
        }
    }
}

static void check_dw_pixel(const trt_ukernels *u, tally *t) {
    const int32_t taps = chance(50) ? (chance(50) ? 9 : 25) : rnd_in(1, 64);
    const int32_t n = rnd_len(300);
    const int32_t ws = n + (chance(50) ? 0 : rnd_in(1, 16));
    const int mode = (int)(rnd() % VAL_MODES);
    int8_t *xb = at_end(0, (size_t)taps * (size_t)n);
    int8_t *zp = at_end(1, (size_t)n);
    int8_t *w = at_end(2, (size_t)((taps - 1) * ws + n));
    int32_t *bias = at_end(3, 4 * (size_t)n);
    int32_t *mult = at_end(4, 4 * (size_t)n), *shift = at_end(5, 4 * (size_t)n);
    int8_t *oa = at_end(6, (size_t)n), *ob = at_end(7, (size_t)n);
    const int8_t *x[64];
    fill_i8(xb, taps * n, mode);
    memset(zp, (int8_t)rnd_in(-128, 127), (size_t)n);
    fill_i8(w, (taps - 1) * ws + n, chance(70) ? mode : VAL_UNIFORM);
    for (int32_t i = 0; i < taps; ++i) {
        /* some taps outside the image read the zero-point row */
        x[i] = chance(15) ? zp : xb + (int64_t)i * n;
    }
    for (int32_t c = 0; c < n; ++c) {
        bias[c] = rnd_in(-(1 << 24), 1 << 24);
    }
    fill_requant(mult, shift, n);
    int32_t lo, hi;
    rnd_act(&lo, &hi);
    const int32_t off = rnd_in(-128, 127);
    u->dw_pixel(x, taps, w, ws, n, bias, mult, shift, off, lo, hi, oa);
    trt_ukernels_portable.dw_pixel(x, taps, w, ws, n, bias, mult, shift, off, lo,
                                   hi, ob);
    t->cases++;
    if (memcmp(oa, ob, (size_t)n) != 0) {
        char what[96];
        snprintf(what, sizeof what, "taps=%d n=%d w_stride=%d mode=%d", (int)taps,
                 (int)n, (int)ws, mode);
        mismatch(t, what);
    }
}

/* A run of pixels along a row: random tap offsets inside one input buffer
 * (overlapping windows, strides, odd and even tap counts), channel counts
 * with and without a tail of eight. */
static void check_dw_run(const trt_ukernels *u, tally *t) {
    const int32_t taps = chance(50) ? 9 : rnd_in(1, TRT_DW_RUN_TAPS);
    const int32_t n = chance(50) ? 8 * rnd_in(1, 8) : rnd_len(TRT_DW_RUN_CHANNELS);
    const int32_t count = rnd_in(1, 12);
    const int32_t in_c = n + (chance(50) ? 0 : rnd_in(1, 16));
    const int32_t x_step = in_c * rnd_in(1, 2);
    const int32_t ws = n + (chance(50) ? 0 : rnd_in(1, 16));
    const int32_t out_step = n + (chance(50) ? 0 : rnd_in(1, 8));
    const int32_t span = (count - 1) * x_step + 4 * in_c * (TRT_DW_RUN_TAPS - 1) + in_c;
    const int mode = (int)(rnd() % VAL_MODES);
    int8_t *xb = at_end(0, (size_t)span);
    int8_t *w = at_end(2, (size_t)((taps - 1) * ws + n));
    int32_t *bias = at_end(3, 4 * (size_t)n);
    int32_t *mult = at_end(4, 4 * (size_t)n), *shift = at_end(5, 4 * (size_t)n);
    const size_t out_len = (size_t)((count - 1) * out_step + n);
    int8_t *oa = at_end(6, out_len), *ob = at_end(7, out_len);
    int32_t off[TRT_DW_RUN_TAPS];
    fill_i8(xb, span, mode);
    fill_i8(w, (taps - 1) * ws + n, chance(70) ? mode : VAL_UNIFORM);
    for (int32_t i = 0; i < taps; ++i) {
        off[i] = in_c * rnd_in(0, 4 * (TRT_DW_RUN_TAPS - 1));
    }
    for (int32_t c = 0; c < n; ++c) {
        bias[c] = rnd_in(-(1 << 24), 1 << 24);
    }
    fill_requant(mult, shift, n);
    int32_t lo, hi;
    rnd_act(&lo, &hi);
    const int32_t zo = rnd_in(-128, 127);
    memset(oa, 0x5A, out_len);
    memset(ob, 0x5A, out_len);
    u->dw_run(xb, count, x_step, off, taps, w, ws, n, bias, mult, shift, zo, lo,
              hi, oa, out_step);
    trt_ukernels_portable.dw_run(xb, count, x_step, off, taps, w, ws, n, bias,
                                 mult, shift, zo, lo, hi, ob, out_step);
    t->cases++;
    if (memcmp(oa, ob, out_len) != 0) {
        char what[128];
        snprintf(what, sizeof what, "taps=%d n=%d count=%d x_step=%d out_step=%d mode=%d",
                 (int)taps, (int)n, (int)count, (int)x_step, (int)out_step, mode);
        mismatch(t, what);
    }
}

/* runtime/ops/conv.py pack_gemm_weights: [ceil(N/16)][ceil(K/2)][16][2]. */
static void pack_panels(const int8_t *w, int32_t n, int32_t k, int16_t *out) {
    const int32_t nb = (n + 15) / 16, kp = (k + 1) / 2;
    for (int32_t b = 0; b < nb; ++b) {
        for (int32_t i = 0; i < kp; ++i) {
            for (int32_t l = 0; l < 16; ++l) {
                for (int32_t j = 0; j < 2; ++j) {
                    const int32_t oc = 16 * b + l, kk = 2 * i + j;
                    out[((b * kp + i) * 16 + l) * 2 + j] =
                        (int16_t)(oc < n && kk < k ? w[(int64_t)oc * k + kk] : 0);
                }
            }
        }
    }
}

static tally *seg_tally; /* gemm_seg cases, counted inside check_gemm */

static void check_gemm(const trt_ukernels *u, tally *t, tally *tf) {
    const int32_t m = rnd_in(1, TRT_GEMM_MR);
    const int32_t k = chance(10) ? rnd_in(1, 1500) : TRT_MAX(1, rnd_len(300));
    const int32_t n = chance(70) ? rnd_in(1, 40) : rnd_in(1, 80);
    const int32_t np = (n + 15) / 16 * 16; /* per-channel arrays, padded */
    const int mode = (int)(rnd() % VAL_MODES);
    const int use_scale = chance(40), packed = chance(50);
    if ((int64_t)n * k > ARENA_BYTES / 2) {
        return;
    }
    int8_t *w = at_end(0, (size_t)n * (size_t)k);
    int16_t *wp = packed ? at_end(1, 2 * (size_t)np * (size_t)((k + 1) / 2 * 2)) : NULL;
    int32_t *bias = at_end(2, 4 * (size_t)np);
    int32_t *mult = at_end(3, 4 * (size_t)np), *shift = at_end(4, 4 * (size_t)np);
    double *scale = use_scale ? at_end(5, 8 * (size_t)np) : NULL;
    const int8_t *x[TRT_GEMM_MR];
    int8_t *oa[TRT_GEMM_MR], *ob[TRT_GEMM_MR];
    /* Rows k bytes apart in one buffer (pointwise pixels, im2col patches:
     * the DSP table's 2x2 path) or in separate ones. */
    const int contiguous = chance(50);
    int8_t *block = contiguous ? at_end(6, (size_t)m * (size_t)k) : NULL;
    for (int32_t r = 0; r < m; ++r) {
        int8_t *row = contiguous ? block + (int64_t)r * k : at_end(6 + r, (size_t)k);
        fill_i8(row, k, chance(80) ? mode : VAL_UNIFORM);
        x[r] = row;
        oa[r] = at_end(12 + r, (size_t)n);
        ob[r] = at_end(18 + r, (size_t)n);
    }
    fill_i8(w, n * k, chance(70) ? mode : VAL_UNIFORM);
    if (wp) {
        pack_panels(w, n, k, wp);
    }
    for (int32_t c = 0; c < np; ++c) {
        bias[c] = rnd_in(-(1 << 24), 1 << 24);
    }
    fill_requant(mult, shift, np);
    const int scale_mode = (int)(rnd() % 4);
    if (scale) {
        for (int32_t c = 0; c < np; ++c) {
            int32_t acc = bias[c];
            if (c < n) {
                for (int32_t i = 0; i < k; ++i) {
                    acc += (int32_t)x[0][i] * (int32_t)w[(int64_t)c * k + i];
                }
            }
            switch (scale_mode) {
            case 0: /* typical: in_scale * w_scale / out_scale */
                scale[c] = (double)(rnd() % 100000 + 1) * 1e-9;
                break;
            case 1: /* half-way products for row 0: round half away from zero */
                scale[c] = acc ? ((double)rnd_in(-200, 200) + 0.5) / (double)acc : 0.5;
                break;
            case 2: /* out of int32 range: saturation (ARM) */
                scale[c] = (chance(50) ? 1.0 : -1.0) * (double)(rnd() % 1000 + 1) * 1e6;
                break;
            default:
                scale[c] = (double)(int32_t)rnd() * 1e-12;
            }
        }
    }
    int32_t lo, hi;
    rnd_act(&lo, &hi);
    const int32_t off = rnd_in(-128, 127);
    u->gemm(x, m, k, w, wp, n, bias, mult, shift, scale, off, lo, hi, oa);
    trt_ukernels_portable.gemm(x, m, k, w, wp, n, bias, mult, shift, scale, off,
                               lo, hi, ob);
    tally *tt = scale ? tf : t;
    tt->cases++;
    for (int32_t r = 0; r < m; ++r) {
        if (memcmp(oa[r], ob[r], (size_t)n) != 0) {
            char what[128];
            snprintf(what, sizeof what, "m=%d k=%d n=%d row=%d packed=%d mode=%d scale_mode=%d",
                     (int)m, (int)k, (int)n, (int)r, packed, mode, scale ? scale_mode : -1);
            mismatch(tt, what);
            break;
        }
    }
    /* The same rows cut into segments (a convolution's kernel rows), each
     * row's copy ending at a guard page: against the portable whole rows. */
    if (!u->gemm_seg || !wp || k > TRT_GEMM_MAX_K) {
        return;
    }
    int32_t segs = rnd_in(1, TRT_GEMM_SEG_MAX);
    while (k % segs) {
        --segs;
    }
    const int32_t len = k / segs;
    const int8_t *seg[TRT_GEMM_MR * TRT_GEMM_SEG_MAX];
    for (int32_t r = 0; r < m; ++r) {
        int8_t *copy = at_end(24 + r, (size_t)k);
        memcpy(copy, x[r], (size_t)k);
        for (int32_t q = 0; q < segs; ++q) {
            seg[r * segs + q] = copy + (int64_t)q * len;
        }
        memset(oa[r], 0x5A, (size_t)n);
    }
    u->gemm_seg(seg, segs, m, k, w, wp, n, bias, mult, shift, scale, off, lo,
                hi, oa);
    seg_tally->cases++;
    for (int32_t r = 0; r < m; ++r) {
        if (memcmp(oa[r], ob[r], (size_t)n) != 0) {
            char what[128];
            snprintf(what, sizeof what, "m=%d k=%d segs=%d n=%d row=%d scale=%d",
                     (int)m, (int)k, (int)segs, (int)n, (int)r, scale != NULL);
            mismatch(seg_tally, what);
            break;
        }
    }
}

/* packed_k4 (tinyrt.h): [ceil(n/16)][ceil(k/4)][16][4], zero padded */
static void pack_k4(const int8_t *w, int32_t n, int32_t k, int8_t *wk) {
    const int32_t k4 = (k + 3) / 4, nb = (n + 15) / 16;
    for (int32_t b = 0; b < nb; ++b) {
        for (int32_t i = 0; i < k4; ++i) {
            for (int32_t l = 0; l < 16; ++l) {
                for (int32_t j = 0; j < 4; ++j) {
                    const int32_t oc = 16 * b + l, kk = 4 * i + j;
                    wk[(((int64_t)b * k4 + i) * 16 + l) * 4 + j] =
                        oc < n && kk < k ? w[(int64_t)oc * k + kk] : 0;
                }
            }
        }
    }
}

/* tinyrt.h rescale_k4 for n (a multiple of 16) channels, every shift in
 * [-23, -1], as runtime/ops/conv.py makes it (arena 6). */
static const int64_t *rescale_table(const int32_t *mult, const int32_t *shift, int32_t n,
                                    int32_t zp) {
    int64_t *t = at_end(6, 8 * (size_t)n * 3);
    for (int32_t b = 0; b < n / 16; ++b) {
        int64_t *v = t + (int64_t)b * 48;
        for (int32_t j = 0; j < 16; ++j) {
            const int32_t c = 16 * b + j;
            const int64_t e = -shift[c], sh = 31 + e;
            const int64_t kc = (1LL << 30) + (1LL << (30 + e)) + (int64_t)zp * (1LL << sh);
            memcpy((int32_t *)v + j, &mult[c], 4);
            if (j % 2) {
                v[8 + j / 2] = mult[c];
            }
            v[16 + 8 * (j % 2) + j / 2] = kc;
            v[32 + 8 * (j % 2) + j / 2] = sh;
        }
    }
    return t;
}

/* The VNNI GEMM: rows made by rows_u8 from segments (each ending at a guard
 * page), the rows of the buffer past m full of garbage, outputs ending at
 * guard pages; against the portable gemm on the signed rows and the
 * unshifted bias.  rows_u8 itself against x + 128 and its zero padding. */
static void check_gemm_k4(const trt_ukernels *u, tally *t, tally *tf, tally *tr) {
    static uint8_t rows[TRT_K4_MR * TRT_K4_STRIDE];
    /* (16 rows: the whole-tile kernels) */
    const int32_t m = chance(20) ? 1 : chance(25) ? TRT_K4_MR : rnd_in(1, TRT_K4_MR);
    /* sliding: the rows are consecutive pixels of a stride-1 convolution
     * with three taps of `tap` bytes a kernel row (trt_gemm_k4.tap) */
    const int sliding = chance(20);
    const int32_t tap = 4 * rnd_in(1, 12), sliding_segs = rnd_in(2, 5);
    const int32_t k = sliding ? sliding_segs * 3 * tap
                      : chance(10) ? rnd_in(1, TRT_GEMM_MAX_K) : TRT_MAX(1, rnd_len(300));
    const int32_t n = chance(30) ? 8 << rnd_in(0, 3) : chance(70) ? rnd_in(1, 40) : rnd_in(1, 130);
    const int32_t np = (n + 15) / 16 * 16, k4 = (k + 3) / 4;
    /* outputs of all rows in one block, row r at r * n (a layer's pixels:
     * with n = 8, 16 or 32 the kernels may store several rows at once) */
    const int adjacent_out = chance(40);
    /* ties: small values, multiplier one half, small right shifts, so that
     * many results are exact halves, where the rounding's sign handling
     * decides (large random ones saturate the output) */
    const int ties = chance(30);
    const int mode = ties ? VAL_SMALL : (int)(rnd() % VAL_MODES);
    const int use_scale = !ties && chance(40);
    if ((int64_t)np * k4 * 4 > ARENA_BYTES) {
        return;
    }
    int8_t *w = at_end(0, (size_t)n * (size_t)k);
    int8_t *wk = at_end(1, (size_t)np * (size_t)k4 * 4);
    int32_t *bias = at_end(2, 4 * (size_t)np), *bias_k4 = at_end(7, 4 * (size_t)np);
    int32_t *mult = at_end(3, 4 * (size_t)np), *shift = at_end(4, 4 * (size_t)np);
    double *scale = use_scale ? at_end(5, 8 * (size_t)np) : NULL;
    fill_i8(w, n * k, ties || chance(70) ? mode : VAL_UNIFORM);
    pack_k4(w, n, k, wk);
    for (int32_t c = 0; c < np; ++c) {
        bias[c] = ties ? rnd_in(-64, 64) : rnd_in(-(1 << 24), 1 << 24);
        int32_t sum = 0;
        for (int32_t i = 0; c < n && i < k; ++i) {
            sum += w[(int64_t)c * k + i];
        }
        bias_k4[c] = bias[c] - 128 * sum;
    }
    fill_requant(mult, shift, np);
    if (ties) {
        for (int32_t c = 0; c < np; ++c) {
            mult[c] = 1 << 30;
            shift[c] = rnd_in(-4, 0);
        }
    }
    for (int32_t c = 0; scale && c < np; ++c) {
        scale[c] = chance(20) ? (double)(int32_t)rnd() * 1e-12 : (double)(rnd() % 100000 + 1) * 1e-9;
    }
    for (size_t i = 0; i < sizeof rows; ++i) {
        rows[i] = (uint8_t)rnd();
    }
    int32_t segs = sliding ? sliding_segs : rnd_in(1, TRT_GEMM_SEG_MAX);
    while (k % segs) {
        --segs;
    }
    const int32_t len = k / segs;
    const int8_t *x[TRT_K4_MR];
    int8_t *oa[TRT_K4_MR], *ob[TRT_K4_MR];
    /* arenas: signed rows 8; segments 16..31 (segment q of every row in
     * arena 16 + q, the last row's against the guard page); outputs of
     * rows 0-3 at the ends of 10..13, the others in 14, portable ones 15 */
    int8_t *signed_rows = at_end(8, (size_t)m * (size_t)k);
    const int8_t *seg[TRT_K4_MR * TRT_GEMM_SEG_MAX];
    for (int32_t r = 0; r < m; ++r) {
        int8_t *row = signed_rows + (int64_t)r * k;
        fill_i8(row, k, ties || chance(80) ? mode : VAL_UNIFORM);
        x[r] = row;
        uint8_t *dst = rows + (int64_t)r * TRT_K4_STRIDE;
        /* every second row in place, like a gathered border patch */
        const int in_place = r % 2;
        if (in_place) {
            memcpy(dst, row, (size_t)k);
        }
        for (int32_t q = 0; q < segs; ++q) {
            int8_t *piece = (int8_t *)at_end(16 + q, (size_t)m * (size_t)len) + (int64_t)r * len;
            memcpy(piece, row + (int64_t)q * len, (size_t)len);
            seg[r * segs + q] = in_place ? (const int8_t *)dst + (int64_t)q * len : piece;
        }
        oa[r] = adjacent_out ? (int8_t *)at_end(10, (size_t)m * (size_t)n) + (int64_t)r * n
                : r < 4     ? at_end(10 + r, (size_t)n)
                            : (int8_t *)at_end(14, (size_t)n) - (r - 4) * 4096;
        ob[r] = (int8_t *)at_end(15, (size_t)n) - r * 4096;
    }
    /* all rows in one call, as the drivers do */
    u->rows_u8(rows, seg, segs, len, m);
    for (int32_t r = 0; r < m; ++r) {
        const uint8_t *dst = rows + (int64_t)r * TRT_K4_STRIDE;
        tr->cases++;
        int bad = 0;
        for (int32_t i = 0; i < k4 * 4; ++i) {
            bad |= dst[i] != (i < k ? (uint8_t)(x[r][i] + 128) : 0);
        }
        if (bad) {
            char what[96];
            snprintf(what, sizeof what, "k=%d segs=%d row=%d", (int)k, (int)segs, (int)r);
            mismatch(tr, what);
        }
    }
    int32_t lo, hi;
    rnd_act(&lo, &hi);
    const int32_t off = rnd_in(-128, 127);
    /* half the fixed-point cases with the plan-time rescale table, whose
     * shifts are in [-23, -1] (tinyrt.h rescale_k4) */
    const int64_t *table = NULL;
    if (!scale && chance(50)) {
        for (int32_t c = 0; c < np; ++c) {
            shift[c] = ties ? rnd_in(-4, -1) : rnd_in(-23, -1);
        }
        table = rescale_table(mult, shift, np, off);
    }
    trt_gemm_k4 g = {k, n, wk, bias_k4, scale ? NULL : mult, scale ? NULL : shift,
                     scale, table, off, lo, hi, 1, 0, 0};
    const uint8_t *xr[TRT_K4_MR];
    for (int32_t r = 0; r < m; ++r) {
        xr[r] = rows + (int64_t)r * TRT_K4_STRIDE;
    }
    if (sliding) {
        /* an unsigned image of segs rows of m + 2 pixels (tap bytes each):
         * row r is pixel r of every image row, so the rows overlap (row r's
         * tap kx is row r + kx's tap 0); the signed rows of the reference
         * are read back from it; the image's last byte against a guard page */
        const int32_t width = (m + 2) * tap;
        const int32_t stride = width + 4 * rnd_in(0, 8);
        uint8_t *img = at_end(9, (size_t)stride * (size_t)(segs - 1) + (size_t)width);
        for (int32_t q = 0; q < segs; ++q) {
            fill_i8((int8_t *)img + (int64_t)q * stride, width, mode);
        }
        for (int32_t r = 0; r < m; ++r) {
            int8_t *row = signed_rows + (int64_t)r * k;
            for (int32_t q = 0; q < segs; ++q) {
                for (int32_t i = 0; i < len; ++i) {
                    row[(int64_t)q * len + i] = (int8_t)(img[(int64_t)q * stride + (int64_t)r * tap + i] ^ 0x80);
                }
            }
            xr[r] = img + (int64_t)r * tap;
        }
        g.segs = segs;
        g.seg_stride = stride;
        g.tap = tap;
    } else if (len % 4 == 0 && segs > 1 && chance(50)) {
        /* segmented rows, as in an unsigned image: row r's segment q at
         * xr[r] + q * seg_stride, the rows interleaved, the last byte of the
         * region against a guard page */
        const int32_t stride = len * m + 4 * rnd_in(0, 8);
        uint8_t *img = at_end(9, (size_t)stride * (size_t)(segs - 1) + (size_t)len * (size_t)m);
        for (int32_t r = 0; r < m; ++r) {
            uint8_t *at = img + (int64_t)(m - 1 - r) * len; /* row r, reversed */
            xr[r] = at;
            for (int32_t q = 0; q < segs; ++q) {
                for (int32_t i = 0; i < len; ++i) {
                    at[(int64_t)q * stride + i] = (uint8_t)(x[r][q * len + i] + 128);
                }
            }
        }
        g.segs = segs;
        g.seg_stride = stride;
    }
    u->gemm_k4(&g, xr, m, oa);
    for (int32_t r0 = 0; r0 < m; r0 += TRT_GEMM_MR) {
        trt_ukernels_portable.gemm(x + r0, TRT_MIN(TRT_GEMM_MR, m - r0), k, w, NULL, n, bias,
                                   mult, shift, scale, off, lo, hi, ob + r0);
    }
    tally *tt = scale ? tf : t;
    tt->cases++;
    for (int32_t r = 0; r < m; ++r) {
        if (memcmp(oa[r], ob[r], (size_t)n) != 0) {
            char what[128];
            snprintf(what, sizeof what, "m=%d k=%d n=%d row=%d mode=%d segs=%d", (int)m, (int)k,
                     (int)n, (int)r, mode, (int)g.segs);
            mismatch(tt, what);
            break;
        }
    }
}

/* widen3_u8 against the scalar definition: bytes 0-2 of each output pixel
 * are the input's x + 128 (byte 3 is free); input and output end at guard
 * pages. */
static void check_widen3(const trt_ukernels *u, tally *t) {
    const int32_t n = rnd_in(0, 200);
    const int8_t *src = at_end(0, 3 * (size_t)n);
    uint8_t *dst = at_end(1, 4 * (size_t)n);
    fill_i8((int8_t *)src, 3 * n, (int)(rnd() % VAL_MODES));
    u->widen3_u8(dst, src, n);
    t->cases++;
    for (int32_t i = 0; i < 3 * n; ++i) {
        if (dst[(i / 3) * 4 + i % 3] != (uint8_t)(src[i] + 128)) {
            char what[64];
            snprintf(what, sizeof what, "n=%d byte=%d", (int)n, (int)i);
            mismatch(t, what);
            return;
        }
    }
}

static void check_add(const trt_ukernels *u, tally *t) {
    const int32_t n = rnd_len(300); /* (the AVX-512 kernel stores 64 at a time) */
    const int mode = (int)(rnd() % VAL_MODES);
    int8_t *x = at_end(0, (size_t)n), *y = at_end(1, (size_t)n);
    int8_t *oa = at_end(2, (size_t)n), *ob = at_end(3, (size_t)n);
    fill_i8(x, n, mode);
    fill_i8(y, n, chance(50) ? mode : VAL_UNIFORM);
    trt_binary_params p;
    memset(&p, 0, sizeof p);
    /* TFLite's int8 ADD: left shift 20, input rescales below one */
    p.left_shift = chance(80) ? 20 : rnd_in(0, 20);
    p.input1_offset = rnd_in(-127, 128);
    p.input2_offset = rnd_in(-127, 128);
    p.output_offset = rnd_in(-128, 127);
    p.input1_multiplier = rnd_mult();
    p.input1_shift = rnd_in(-31, 0);
    p.input2_multiplier = rnd_mult();
    p.input2_shift = rnd_in(-31, 0);
    if (chance(40)) {
        /* as TFLite makes them: the input of the larger scale has a
         * multiplier of exactly one half (2^30, shift 0), the other less */
        int32_t *m_big = chance(50) ? &p.input1_multiplier : &p.input2_multiplier;
        int32_t *s_big = m_big == &p.input1_multiplier ? &p.input1_shift : &p.input2_shift;
        *m_big = 1 << 30;
        *s_big = 0;
        if (chance(20)) { /* equal scales: both */
            p.input1_multiplier = p.input2_multiplier = 1 << 30;
            p.input1_shift = p.input2_shift = 0;
        }
    }
    p.output_multiplier = rnd_mult();
    p.output_shift = rnd_in(-31, 10);
    rnd_act(&p.act_min, &p.act_max);
    u->add(&p, x, y, n, oa);
    trt_ukernels_portable.add(&p, x, y, n, ob);
    t->cases++;
    if (memcmp(oa, ob, (size_t)n) != 0) {
        char what[96];
        snprintf(what, sizeof what, "n=%d mode=%d left=%d", (int)n, mode, (int)p.left_shift);
        mismatch(t, what);
    }
}

/* ----------------------------------------------------------------- main */

static const int32_t ISAS[] = {TRT_ISA_PORTABLE, TRT_ISA_AVX2, TRT_ISA_NEON,
                               TRT_ISA_CORTEX_M_DSP, TRT_ISA_NEON_DOTPROD,
                               TRT_ISA_SSE41, TRT_ISA_AVX512_VNNI,
                               TRT_ISA_AVX_VNNI, TRT_ISA_AMX};

int main(int argc, char **argv) {
    const long cases = argc > 1 ? atol(argv[1]) : 1000;
    if (argc > 2) {
        rng_state ^= (uint64_t)strtoull(argv[2], NULL, 10) * 0xD1B54A32D192ED03ULL;
    }
    arenas_init();
    printf("best %d\n", (int)trt_isa_best());
    for (size_t i = 0; i < sizeof ISAS / sizeof ISAS[0]; ++i) {
        printf("select %d %d\n", (int)ISAS[i], (int)trt_isa_select(ISAS[i]));
    }
    long total_mismatches = 0;
    for (size_t i = 0; i < sizeof ISAS / sizeof ISAS[0]; ++i) {
        if (ISAS[i] == TRT_ISA_PORTABLE || trt_isa_select(ISAS[i]) != ISAS[i]) {
            continue;
        }
        const trt_ukernels *u = trt_ukernels_active();
        tally t[15] = {{"dot_1x4", 0, 0},  {"dot_2x4", 0, 0},
                       {"mac_rows", 0, 0}, {"requantize", 0, 0},
                       {"requantize_edges", 0, 0}, {"dw_pixel", 0, 0},
                       {"gemm", 0, 0},     {"gemm_f64", 0, 0},
                       {"add", 0, 0},      {"dw_run", 0, 0},
                       {"gemm_seg", 0, 0}, {"gemm_k4", 0, 0},
                       {"gemm_k4_f64", 0, 0}, {"rows_u8", 0, 0},
                       {"widen3_u8", 0, 0}};
        seg_tally = &t[10];
        check_requantize_edges(u, &t[4]);
        for (long c = 0; c < cases; ++c) {
            check_dots(u, &t[0], &t[1]);
            check_mac_rows(u, &t[2]);
            check_requantize(u, &t[3]);
            check_dw_pixel(u, &t[5]);
            check_gemm(u, &t[6], &t[7]);
            check_add(u, &t[8]);
            if (u->dw_run) {
                check_dw_run(u, &t[9]);
            }
            if (u->gemm_k4) {
                check_gemm_k4(u, &t[11], &t[12], &t[13]);
            }
            if (u->widen3_u8) {
                check_widen3(u, &t[14]);
            }
        }
        for (int j = 0; j < 15; ++j) {
            if ((j == 9 && !u->dw_run) || (j == 10 && !u->gemm_seg) ||
                (j >= 11 && j <= 13 && !u->gemm_k4) || (j == 14 && !u->widen3_u8)) {
                continue; /* optional entries this table leaves NULL */
            }
            printf("table %d %s cases %ld mismatches %ld\n", (int)u->isa, t[j].name,
                   t[j].cases, t[j].mismatches);
            total_mismatches += t[j].mismatches;
        }
        printf("table %d stack_patches %d\n", (int)u->isa, (int)u->stack_patches);
    }
    (void)trt_isa_select(trt_isa_best());
    return total_mismatches ? 1 : 0;
}
