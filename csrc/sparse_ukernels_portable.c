/*
 * Portable C99 sparse micro-kernels: the reference every ISA table must
 * match, and the path microcontrollers run.  A kept weight costs one index
 * load, one input load and one multiply-add, against one multiply-add per
 * weight (and no index) for the dense kernels: on a scalar core that is
 * worth it from roughly half the weights pruned.
 *
 * Blocks come in pairs (strip counts are even), so the loops take two
 * blocks per step with no tail.
 */
#include "sparse_ukernels.h"

static void spmv(const trt_sparse_matrix *m, int32_t s0, int32_t s1,
                 const int8_t *x, int32_t *acc) {
    const int32_t bs = m->block;
    const uint16_t *idx = m->index;
    const int8_t *v = m->values;
    for (int32_t s = s0; s < s1; ++s) {
        int32_t *a = acc + (s - s0) * bs;
        const int32_t j0 = m->strip_ptr[s], j1 = m->strip_ptr[s + 1];
        if (bs == 1) {
            int32_t even = 0, odd = 0;
            for (int32_t j = j0; j < j1; j += 2) {
                even += (int32_t)x[idx[j]] * v[j];
                odd += (int32_t)x[idx[j + 1]] * v[j + 1];
            }
            a[0] = even + odd;
            continue;
        }
        for (int32_t r = 0; r < bs; ++r) {
            a[r] = 0;
        }
        for (int32_t j = j0; j < j1; j += 2) {
            const int32_t xa = x[idx[j]], xb = x[idx[j + 1]];
            const int8_t *w = v + (int64_t)j * bs;
            for (int32_t r = 0; r < bs; ++r) {
                a[r] += xa * w[2 * r] + xb * w[2 * r + 1];
            }
        }
    }
}

const trt_sparse_ukernels trt_sparse_ukernels_portable = {
    TRT_ISA_PORTABLE, spmv, 0, 0, 0,
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
extern const trt_sparse_ukernels trt_sparse_ukernels_avx2;
#endif

const trt_sparse_ukernels *trt_sparse_ukernels_active(void) {
    /* Every x86 table but the portable and the SSE4.1 one is the AVX2
     * table or built over it (the VNNI and AMX tables), and
     * trt_ukernels_active() only hands those out when the CPU has AVX2: so
     * they take the AVX2 sparse kernels, a table added later included. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const int32_t isa = trt_ukernels_active()->isa;
    if (isa != TRT_ISA_PORTABLE && isa != TRT_ISA_SSE41) {
        return &trt_sparse_ukernels_avx2;
    }
#endif
    return &trt_sparse_ukernels_portable;
}
