/*
 * Run-time choice of the micro-kernel table.  The best table the CPU
 * supports is used unless trt_isa_select() asks for another (tests run every
 * model under each one to prove them identical).  Builds for a
 * microcontroller have only the portable table (or their own, chosen at
 * compile time) and no feature detection.
 */
#include "trt_ukernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRT_HAVE_X86_DISPATCH 1
extern const trt_ukernels trt_ukernels_avx2;
#endif

static const trt_ukernels *active = 0;

static const trt_ukernels *table_for(int32_t isa) {
#ifdef TRT_HAVE_X86_DISPATCH
    if (isa == TRT_ISA_AVX2 && __builtin_cpu_supports("avx2")) {
        return &trt_ukernels_avx2;
    }
#endif
    (void)isa;
    return &trt_ukernels_portable;
}

int32_t trt_isa_best(void) {
#ifdef TRT_HAVE_X86_DISPATCH
    if (__builtin_cpu_supports("avx2")) {
        return TRT_ISA_AVX2;
    }
#endif
    return TRT_ISA_PORTABLE;
}

int32_t trt_isa_select(int32_t isa) {
    active = table_for(isa);
    return active->isa;
}

int32_t trt_isa_active(void) {
    return trt_ukernels_active()->isa;
}

const trt_ukernels *trt_ukernels_active(void) {
    if (!active) {
        active = table_for(trt_isa_best());
    }
    return active;
}
