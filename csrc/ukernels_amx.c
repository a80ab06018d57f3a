/*
 * x86-64 AMX-INT8 GEMM (Intel Sapphire Rapids and later Xeons): the AVX-512
 * VNNI table with its gemm_k4 entry run on the tile unit where the shape
 * pays (trt_ukernels_amx_over, selected at run time when the CPU has AMX and
 * Linux grants the process the tile state).
 *
 * TDPBUSD multiplies a tile of up to 16 rows x 64 unsigned bytes by a tile
 * of 16 rows of 16 x 4 signed bytes into 16 x 16 int32: 16,384
 * multiply-adds, where vpdpbusd does 64.  The operands are the VNNI table's
 * (ukernels_avx512_vnni.c): rows fed as x + 128, bias_k4 with -128 * sum(w)
 * folded in, and weights packed as [16-channel block][k / 4][16][4], which
 * is already the tile layout of the second operand: 16 consecutive k4 rows
 * of a block are one 1 KB tile.  So a call's rows (up to TRT_K4_MR = 16
 * pixels) are one A tile per 64 bytes of k, and up to four 16-channel blocks
 * accumulate in four C tiles that start from the bias (a tile load with
 * stride 0 repeats it down the rows).  The k left after whole 64-byte steps
 * goes through a second pair of tiles configured that short, so no byte past
 * a row or past a block's weights is read.
 *
 * The A tile needs its rows at one stride: rows made by rows_u8 (one
 * segment each) are; a convolution's rows read in place from an image (a
 * segment per kernel row) are gathered into a stack buffer first.  The
 * results go through a stack buffer to the AVX-512 table's requantisation
 * (rq16f, trt_avx512_rescale.h): bit-identical to the portable table.
 * Shapes where the tile unit does not pay -- few rows (batch-1
 * FULLY_CONNECTED), short rows, a single 16-channel block, small K * N, the
 * double rescale -- keep the AVX-512 VNNI tiles (amx_pays).
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1 /* syscall() under -std=c99 */
#endif
#include "trt_ukernels.h"

#ifdef TRT_HAVE_AMX

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TRT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,bmi2")))
#define TRT_VNNI_INLINE TRT_VNNI static inline __attribute__((always_inline))
#include "trt_avx512_rescale.h"

#define TRT_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512vnni,avx2,bmi2")))

enum {
    AMX_MIN_ROWS = 8, /* fewer rows: the VNNI tiles (measured: see amx_pays) */
    AMX_MIN_K = 64,   /* shorter rows: likewise                               */
    ARCH_REQ_XCOMP_PERM = 0x1023,
    XFEATURE_XTILEDATA = 18
};

/* Whether the CPU has AMX-TILE and AMX-INT8, the OS enables their state
 * (XCR0 bits 17 and 18) and Linux lets this process use it (the permission
 * is process-wide and asked once). */
int32_t trt_amx_usable(void) {
    static int32_t usable = -1;
    if (usable >= 0) {
        return usable;
    }
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    usable = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !((edx >> 24) & 1) ||
        !((edx >> 25) & 1) || !__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !((ecx >> 27) & 1)) {
        return usable; /* no AMX-TILE / AMX-INT8, or no OSXSAVE for xgetbv */
    }
    unsigned int xlo = 0, xhi = 0;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if (((xlo >> 17) & 3) != 3) {
        return usable;
    }
    usable = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    return usable;
}

/* LDTILECFG's 64-byte operand, palette 1. */
typedef struct {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed, aligned(64))) amx_config;

/* The AVX-512 VNNI table's gemm_k4: the shapes the tiles do not take. */
static void (*vnni_gemm_k4)(const trt_gemm_k4 *g, const uint8_t *const *x, int32_t m,
                            int8_t *const *out);

/* Whether the tile unit beats the VNNI tiles on this call (measured on
 * the MLPerf Tiny layers, a 2-vCPU Sapphire Rapids class Xeon): at least 8
 * rows of at least 64 bytes, more than one 16-channel block, and K * N of at
 * least 4096 for rows it reads in place (vww's 64 -> 64 pointwise: 4.5 ->
 * 4.0 us), 8192 for rows it must gather first (resnet's 3x3 16 -> 32
 * stride 2, K * N 4608: 6.2 -> 7.0 us, so no; its 3x3 32 -> 32, 9216: 9.3
 * -> 7.9 us).  FULLY_CONNECTED's double rescale stays on the VNNI tiles. */
static int amx_pays(const trt_gemm_k4 *g, int32_t m, int direct) {
    return m >= AMX_MIN_ROWS && g->k >= AMX_MIN_K && g->n > 16 && !g->scale &&
           (int64_t)g->k * g->n >= (direct ? 4096 : 8192);
}

/* Tiles: 0-3 C (one 16-channel block each), 4 A and 6 B for whole 64-byte
 * k steps, 5 A and 7 B for the rest.  The tile numbers are instruction
 * immediates, hence one macro per block. */
#define AMX_BLOCK_STEPS(T, J)                                                          \
    do {                                                                               \
        _tile_loadd(6, wb + (J) * bstride + (int64_t)c * 1024, 64);                     \
        _tile_dpbusd(T, 4, 6);                                                         \
    } while (0)
#define AMX_BLOCK_REST(T, J)                                                           \
    do {                                                                               \
        _tile_loadd(7, wb + (J) * bstride + (int64_t)whole * 1024, 64);                 \
        _tile_dpbusd(T, 5, 7);                                                         \
    } while (0)

/* nb (1-4) blocks from block b of rows a (stride bytes apart), m rows:
 * the 32-bit sums, bias included, to acc[row][16 * j + lane]. */
TRT_AMX static void amx_blocks(const trt_gemm_k4 *g, const uint8_t *a, int64_t stride, int32_t b,
                               int32_t nb, int32_t whole, int32_t rest, int32_t acc[][64]) {
    const int32_t k4 = (g->k + 3) / 4;
    const int64_t bstride = (int64_t)k4 * 64;
    const int8_t *wb = g->w + (int64_t)b * bstride;
    const int32_t *bias = g->bias + (int64_t)b * 16;
    _tile_loadd(0, bias, 0);
    if (nb > 1) _tile_loadd(1, bias + 16, 0);
    if (nb > 2) _tile_loadd(2, bias + 32, 0);
    if (nb > 3) _tile_loadd(3, bias + 48, 0);
    for (int32_t c = 0; c < whole; ++c) {
        _tile_loadd(4, a + (int64_t)c * 64, stride);
        AMX_BLOCK_STEPS(0, 0);
        if (nb > 1) AMX_BLOCK_STEPS(1, 1);
        if (nb > 2) AMX_BLOCK_STEPS(2, 2);
        if (nb > 3) AMX_BLOCK_STEPS(3, 3);
    }
    if (rest) {
        _tile_loadd(5, a + (int64_t)whole * 64, stride);
        AMX_BLOCK_REST(0, 0);
        if (nb > 1) AMX_BLOCK_REST(1, 1);
        if (nb > 2) AMX_BLOCK_REST(2, 2);
        if (nb > 3) AMX_BLOCK_REST(3, 3);
    }
    _tile_stored(0, &acc[0][0], 256);
    if (nb > 1) _tile_stored(1, &acc[0][16], 256);
    if (nb > 2) _tile_stored(2, &acc[0][32], 256);
    if (nb > 3) _tile_stored(3, &acc[0][48], 256);
}

TRT_AMX static void gemm_amx(const trt_gemm_k4 *g, const uint8_t *const *x, int32_t m,
                             int8_t *const *out) {
    /* the rows: in place when they share a stride and are one segment each
     * (4 * k4 bytes readable, rows_u8's zero padding), else gathered */
    int64_t stride = 0;
    const int direct = m > 1 && g->segs == 1 && trt_rows_one_stride(x, m, &stride);
    if (!amx_pays(g, m, direct)) {
        vnni_gemm_k4(g, x, m, out);
        return;
    }
    const int32_t k4 = (g->k + 3) / 4;
    const int32_t whole = k4 / 16, rest = k4 % 16; /* 64-byte k steps, then k4 rows left */
    uint8_t gathered[TRT_K4_MR * (TRT_GEMM_MAX_K + 64)] __attribute__((aligned(64)));
    const uint8_t *a = x[0];
    if (!direct) {
        const int32_t len = g->k / g->segs; /* segs > 1: whole 4-byte groups */
        stride = ((int64_t)k4 * 4 + 63) / 64 * 64;
        /* (inline 64-byte copies: a libc call per segment cost as much as
         * the tile arithmetic of a 3x3 layer) */
        const int32_t full = len / 64;
        const __mmask64 tail = len % 64 ? (((__mmask64)1 << (len % 64)) - 1) : 0;
        for (int32_t r = 0; r < m; ++r) {
            uint8_t *dst = gathered + r * stride;
            for (int32_t s = 0; s < g->segs; ++s, dst += len) {
                const uint8_t *src = x[r] + (int64_t)s * g->seg_stride;
                for (int32_t i = 0; i < full; ++i) {
                    _mm512_storeu_si512(dst + 64 * i, _mm512_loadu_si512(src + 64 * i));
                }
                if (tail) {
                    _mm512_mask_storeu_epi8(dst + 64 * full, tail, _mm512_maskz_loadu_epi8(tail, src + 64 * full));
                }
            }
            /* (segs == 1 here only for rows of differing strides; k4 * 4 - k
             * bytes past the row, up to three: rows_u8's padding is 0) */
            for (int32_t i = g->segs * len; i < k4 * 4; ++i) {
                dst[i - g->segs * len] = 0;
            }
        }
        a = gathered;
    }
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 4; ++t) {
        cfg.rows[t] = (uint8_t)m;
        cfg.colsb[t] = 64;
    }
    cfg.rows[4] = (uint8_t)m;
    cfg.colsb[4] = 64;
    cfg.rows[6] = 16;
    cfg.colsb[6] = 64;
    if (rest) {
        cfg.rows[5] = (uint8_t)m;
        cfg.colsb[5] = (uint16_t)(rest * 4);
        cfg.rows[7] = (uint8_t)rest;
        cfg.colsb[7] = 64;
    }
    _tile_loadconfig(&cfg);
    int32_t acc[TRT_K4_MR][64] __attribute__((aligned(64)));
    const int32_t blocks = (g->n + 15) / 16;
    for (int32_t b = 0; b < blocks; b += 4) {
        const int32_t nb = TRT_MIN(4, blocks - b);
        amx_blocks(g, a, stride, b, nb, whole, rest, acc);
        for (int32_t j = 0; j < nb; ++j) {
            const int32_t oc = (b + j) * 16;
            const __mmask16 keep = (__mmask16)(g->n - oc >= 16 ? 0xFFFF : (1u << (g->n - oc)) - 1);
            const trt_rq16f c = rq16f_block(g->rescale, g->mult, g->shift, b + j, g->out_offset,
                                            g->act_min, g->act_max);
            for (int32_t r = 0; r < m; ++r) {
                rq16f_store(rq16f_apply(_mm512_load_si512(&acc[r][16 * j]), &c), &c, out[r] + oc, keep);
            }
        }
    }
    _tile_release();
}

void trt_ukernels_amx_over(trt_ukernels *t) {
    t->isa = TRT_ISA_AMX;
    vnni_gemm_k4 = t->gemm_k4;
    t->gemm_k4 = gemm_amx;
}

#endif
