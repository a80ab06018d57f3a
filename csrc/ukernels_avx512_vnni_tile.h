/*
 * One gemm_k4 tile of ukernels_avx512_vnni.c, included once per shape with
 * TRT_K4_MR_ (rows), TRT_K4_NB (16-channel blocks) and TRT_K4_ROW defined:
 * constant array sizes are what lets the compiler keep the accumulators in
 * registers (a const int parameter would make them variable-length arrays
 * on the stack).  Defines tile_<MR>x<NB>(); undefines TRT_K4_MR_ and
 * TRT_K4_NB.
 *
 * TRT_K4_ROW 0: MR rows from row r0 (past m, row r0 again, not stored)
 * by NB blocks from block b, MR * NB <= 16 accumulators.
 * TRT_K4_ROW 1: one row (batch-1 FULLY_CONNECTED, a last pixel), the k
 * steps spread over four accumulators per block so that the multiply-adds
 * do not wait on each other.
 * A whole tile of a stride-1 3x3 convolution's consecutive pixels
 * (g->tap) takes the sliding loop of sliding3_madds.
 */
TRT_VNNI static void TRT_K4_NAME(TRT_K4_MR_, TRT_K4_NB)(const trt_gemm_k4 *g,
                                                     const uint8_t *const *x, int32_t m,
                                                     int32_t r0, int32_t b,
                                                     int8_t *const *out) {
    enum { MR = TRT_K4_MR_, NB = TRT_K4_NB, PH = TRT_K4_ROW ? 4 : 1 };
    const int32_t k4 = (g->k + 3) / 4;
    const int64_t bstride = (int64_t)k4 * 64;
    const int8_t *wb = g->w + b * bstride;
    /* a segment's k steps (one segment: the padded row) */
    const int32_t seg4 = g->segs == 1 ? k4 : g->k / g->segs / 4;
    const uint8_t *xr[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
        xr[r] = x[r0 + (r < m - r0 ? r : 0)];
    }
    /* acc[phase][row][block]; PH > 1 only with MR == 1.  The first phase
     * starts from the bias, so the epilogue does not add it. */
    __m512i acc[PH][MR][NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
        const __m512i bias = _mm512_loadu_si512(g->bias + (b + j) * 16);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
            acc[0][r][j] = bias;
        }
#pragma GCC unroll 4
        for (int p = 1; p < PH; ++p) {
            acc[p][0][j] = _mm512_setzero_si512();
        }
    }
    int64_t xs = 0;
    if (!TRT_K4_ROW && MR >= 4 && m - r0 >= MR && sliding3_fits(g, g->tap) && trt_rows_one_stride(xr, MR, &xs) &&
        xs == g->tap) {
        /* a stride-1 3x3 convolution's consecutive pixels */
        sliding3_madds(g, xr[0], xs, wb, bstride, &acc[0][0][0], MR, NB);
    } else {
        for (int32_t s = 0; s < g->segs; ++s, wb += (int64_t)seg4 * 64) {
            const int64_t at = (int64_t)s * g->seg_stride;
            int32_t i = 0;
            for (; i + PH <= seg4; i += PH) {
#pragma GCC unroll 4
                for (int p = 0; p < PH; ++p) {
                    __m512i wv[NB];
#pragma GCC unroll 4
                    for (int j = 0; j < NB; ++j) {
                        wv[j] = _mm512_loadu_si512(wb + j * bstride + (int64_t)(i + p) * 64);
                        if (TRT_K4_ROW) {
                            _mm_prefetch((const char *)(wb + j * bstride + (int64_t)(i + p) * 64 + TRT_K4_PF),
                                         _MM_HINT_T0);
                        }
                    }
#pragma GCC unroll 16
                    for (int r = 0; r < MR; ++r) {
                        const __m512i xv = _mm512_set1_epi32(load4(xr[r] + at + 4 * (i + p)));
#pragma GCC unroll 4
                        for (int j = 0; j < NB; ++j) {
                            acc[p][r][j] = _mm512_dpbusd_epi32(acc[p][r][j], xv, wv[j]);
                        }
                    }
                }
            }
            for (; i < seg4; ++i) { /* (PH > 1: the last seg4 % PH steps) */
#pragma GCC unroll 16
                for (int r = 0; r < MR; ++r) {
                    const __m512i xv = _mm512_set1_epi32(load4(xr[r] + at + 4 * i));
#pragma GCC unroll 4
                    for (int j = 0; j < NB; ++j) {
                        acc[0][r][j] = _mm512_dpbusd_epi32(
                            acc[0][r][j], xv, _mm512_loadu_si512(wb + j * bstride + (int64_t)i * 64));
                    }
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int p = 1; p < PH; ++p) {
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) {
            acc[0][0][j] = _mm512_add_epi32(acc[0][0][j], acc[p][0][j]);
        }
    }
    const int32_t rows = TRT_MIN(MR, m - r0);
    if (NB == 4 && !g->scale && g->n - b * 16 >= 64) {
        /* a row's four blocks are 64 adjacent outputs: one store each */
        const trt_rq16f c0 = k4_rescale(g, b), c1 = k4_rescale(g, b + 1);
        const trt_rq16f c2 = k4_rescale(g, b + 2), c3 = k4_rescale(g, b + 3);
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
            if (r < rows) {
                rq16f_store4(rq16f_apply(acc[0][r][0], &c0), rq16f_apply(acc[0][r][NB > 1 ? 1 : 0], &c1),
                             rq16f_apply(acc[0][r][NB > 2 ? 2 : 0], &c2), rq16f_apply(acc[0][r][NB > 3 ? 3 : 0], &c3),
                             &c0, out[r0 + r] + b * 16);
            }
        }
        return;
    }
    if (NB == 2 && MR % 2 == 0 && !g->scale && g->n - b * 16 >= 32 && rows == MR) {
        /* 32 channels: two rows' outputs are 64 adjacent bytes when the rows
         * are a layer's consecutive pixels (n == 32): one store a pair */
        int adjacent = 1;
        for (int r = 1; r < MR && adjacent; ++r) {
            adjacent = out[r0 + r] == out[r0 + r - 1] + 32;
        }
        if (adjacent) {
            const trt_rq16f c0 = k4_rescale(g, b), c1 = k4_rescale(g, b + 1);
#pragma GCC unroll 8
            for (int r = 0; r + 1 < MR; r += 2) {
                rq16f_store4(rq16f_apply(acc[0][r][0], &c0), rq16f_apply(acc[0][r][NB - 1], &c1),
                             rq16f_apply(acc[0][r + 1][0], &c0), rq16f_apply(acc[0][r + 1][NB - 1], &c1), &c0,
                             out[r0 + r] + b * 16);
            }
            return;
        }
    }
    const __m512i offset = _mm512_set1_epi32(g->out_offset);
    const __m512i lo = _mm512_set1_epi32(g->act_min);
    const __m512i hi = _mm512_set1_epi32(g->act_max);
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
        const int32_t oc = (b + j) * 16;
        const __mmask16 keep = (__mmask16)(g->n - oc >= 16 ? 0xFFFF : (1u << (g->n - oc)) - 1);
        if (g->scale) {
#pragma GCC unroll 16
            for (int r = 0; r < MR; ++r) {
                if (r < rows) {
                    const __m512i v = rescale_f64x16(acc[0][r][j], g->scale + oc);
                    store16(v, offset, lo, hi, out[r0 + r] + oc, keep);
                }
            }
        } else {
            const trt_rq16f c = k4_rescale(g, b + j);
#pragma GCC unroll 16
            for (int r = 0; r < MR; ++r) {
                if (r < rows) {
                    rq16f_store(rq16f_apply(acc[0][r][j], &c), &c, out[r0 + r] + oc, keep);
                }
            }
        }
    }
}

#undef TRT_K4_MR_
#undef TRT_K4_NB
