/*
 * sparse_ukernels.h - micro-kernels of the sparse FULLY_CONNECTED and
 * CONV_2D kernels, one table per instruction set (private).
 *
 * The table follows the dense trt_ukernels one: sparse_ukernels_portable.c
 * is the C99 reference (the MCU path), sparse_ukernels_avx2.c gives the
 * same bits faster, and the table in use follows trt_isa_select(), so the
 * tests that run every model under every ISA cover these too.
 *
 * Two ways to multiply a sparse matrix (trt_sparse_matrix, tinyrt.h):
 *
 *  - spmv: one input vector, one block row (strip) at a time.  FULLY
 *    CONNECTED, and convolutions pixel by pixel.
 *  - spmm_tile: a tile of 16 or 32 pixels at once, transposed so that one
 *    input of all tile pixels is a contiguous int16 row: every kept weight
 *    is then one vector multiply-add over the pixels whatever the pattern of
 *    zeros, which is how unstructured sparsity pays off on a SIMD machine
 *    (XNNPACK's float SpMM does the same over NCHW).  Tables without SIMD
 *    leave these NULL and the convolution runs pixel by pixel.
 */
#ifndef TRT_SPARSE_UKERNELS_H
#define TRT_SPARSE_UKERNELS_H

#include "trt_ukernels.h"

/* Pixels per tile: 16 or 32 (trt_sparse_conv2d_params.tile). */
enum { TRT_SPARSE_TILE_MAX = 32 };

typedef struct {
    int32_t isa; /* trt_isa */
    /* acc[(s - s0) * block + r] = row (s * block + r) of m times x, for the
     * strips s in [s0, s1); padding rows past m->rows come out 0. */
    void (*spmv)(const trt_sparse_matrix *m, int32_t s0, int32_t s1,
                 const int8_t *x, int32_t *acc);
    /* For each row r < m->rows: staging[r * tile + t] = the int8 output of
     * pixel t, i.e. requantize(bias[r] + row r . xt[.][t]) + out_offset,
     * clamped; xt is [m->cols][tile] int16. */
    void (*spmm_tile)(const trt_sparse_matrix *m, const int16_t *xt,
                      int32_t tile, const int32_t *bias, const int32_t *mult,
                      const int32_t *shift, int32_t out_offset,
                      int32_t act_min, int32_t act_max, int8_t *staging);
    /* xt[c * tile + t] = rows[t][c], t < tile, c < cols */
    void (*transpose_widen)(const int8_t *const *rows, int32_t tile,
                            int32_t cols, int16_t *xt);
    /* out[t * out_stride + r] = staging[r * tile + t], t < pixels, r < rows */
    void (*transpose_out)(const int8_t *staging, int32_t tile, int32_t rows,
                          int32_t pixels, int8_t *out, int32_t out_stride);
} trt_sparse_ukernels;

extern const trt_sparse_ukernels trt_sparse_ukernels_portable;

/* The table of the instruction set trt_isa_select() chose. */
const trt_sparse_ukernels *trt_sparse_ukernels_active(void);

/* Weight of block j, row r (the pair interleave of trt_sparse_matrix). */
TRT_INLINE int32_t trt_sparse_value(const trt_sparse_matrix *m, int32_t j,
                                    int32_t r) {
    return m->values[(int64_t)(j & ~1) * m->block + 2 * r + (j & 1)];
}

#endif /* TRT_SPARSE_UKERNELS_H */
