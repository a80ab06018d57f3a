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
#include <cpuid.h>
extern const trt_ukernels trt_ukernels_avx2;
/* x86-64 CPUs without AVX2 (SSE4.1 is not in the x86-64 baseline) */
extern const trt_ukernels trt_ukernels_sse41;
/* The VNNI tables are the AVX2 one with their own entries over it. */
void trt_ukernels_avx512_vnni_over(trt_ukernels *t);
void trt_ukernels_avx_vnni_over(trt_ukernels *t);
static trt_ukernels avx512_vnni_table, avx_vnni_table;
#ifdef TRT_HAVE_AMX
/* AMX: the AVX-512 VNNI table with the tile GEMM over it (ukernels_amx.c) */
int32_t trt_amx_usable(void);
void trt_ukernels_amx_over(trt_ukernels *t);
static trt_ukernels amx_table;
static void amx_over(trt_ukernels *t) {
    trt_ukernels_avx512_vnni_over(t);
    trt_ukernels_amx_over(t);
}
#endif

static int avx512_vnni_present(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

static int avx_vnni_present(void) {
    /* AVX-VNNI is CPUID leaf 7 subleaf 1, EAX bit 4, which GCC 12's
     * __builtin_cpu_supports does not name; AVX2 present means the OS saves
     * the YMM state it needs. */
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __builtin_cpu_supports("avx2") &&
           __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && ((eax >> 4) & 1);
}

static const trt_ukernels *vnni_table(trt_ukernels *t, void (*over)(trt_ukernels *)) {
    if (!t->gemm_k4) {
        trt_ukernels made = trt_ukernels_avx2;
        over(&made);
        *t = made;
    }
    return t;
}
#endif

/* ARM Linux: the NEON tables of ukernels_neon.c (keep these conditions in
 * step with it), chosen from the kernel's hardware capability bits.  Other
 * ARM systems (bare-metal Cortex-M/A, other OSes) make no OS calls and keep
 * the portable table. */
#if defined(__linux__) && defined(__aarch64__) && defined(__ARM_NEON)
#define TRT_HAVE_NEON_DISPATCH 1
#include <sys/auxv.h>
extern const trt_ukernels trt_ukernels_neon;
#if defined(__ARM_FEATURE_DOTPROD) || \
    (defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10)
#define TRT_HAVE_NEON_DOTPROD 1
extern const trt_ukernels trt_ukernels_neon_dotprod;
#endif
/* AdvSIMD is architectural on aarch64; SDOT is AT_HWCAP bit 20 (the uapi's
 * HWCAP_ASIMDDP, spelled out for old C libraries). */
static int neon_present(void) { return 1; }
static int dotprod_present(void) {
    return (getauxval(AT_HWCAP) & (1UL << 20)) != 0;
}
#elif defined(__linux__) && defined(__arm__) && defined(__ARM_FP) && \
    !(defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M') && \
    (defined(__ARM_NEON) ||                                          \
     (defined(__GNUC__) && !defined(__clang__) &&                    \
      (!defined(__thumb__) || defined(__thumb2__))))
#define TRT_HAVE_NEON_DISPATCH 1
#include <sys/auxv.h>
extern const trt_ukernels trt_ukernels_neon;
/* 32-bit: NEON is optional (AT_HWCAP bit 12, the uapi's HWCAP_NEON). */
static int neon_present(void) {
    return (getauxval(AT_HWCAP) & (1UL << 12)) != 0;
}
#endif

/* Cores with the DSP extension (Cortex-M4/M7/M33/M55...): the table of
 * ukernels_cortex_m_dsp.c (keep these conditions in step with it).  Bare
 * metal has no feature detection, so the compiler flags decide and it is
 * the best table there; -DTRT_NO_CORTEX_M_DSP leaves it out (its code then
 * takes no flash).  An ARM Linux build has it too, selectable but never the
 * best (NEON is), so the Linux tests can compare it as well. */
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && \
    !defined(__ARM_BIG_ENDIAN) && defined(__GNUC__) &&           \
    !defined(TRT_NO_CORTEX_M_DSP)
#define TRT_HAVE_CORTEX_M_DSP 1
extern const trt_ukernels trt_ukernels_cortex_m_dsp;
#endif

static const trt_ukernels *active = 0;

static const trt_ukernels *table_for(int32_t isa) {
#ifdef TRT_HAVE_X86_DISPATCH
#ifdef TRT_HAVE_AMX
    if (isa == TRT_ISA_AMX && avx512_vnni_present() && trt_amx_usable()) {
        return vnni_table(&amx_table, amx_over);
    }
#endif
    if (isa == TRT_ISA_AVX512_VNNI && avx512_vnni_present()) {
        return vnni_table(&avx512_vnni_table, trt_ukernels_avx512_vnni_over);
    }
    if (isa == TRT_ISA_AVX_VNNI && avx_vnni_present()) {
        return vnni_table(&avx_vnni_table, trt_ukernels_avx_vnni_over);
    }
    if (isa == TRT_ISA_AVX2 && __builtin_cpu_supports("avx2")) {
        return &trt_ukernels_avx2;
    }
    if (isa == TRT_ISA_SSE41 && __builtin_cpu_supports("sse4.1")) {
        return &trt_ukernels_sse41;
    }
#endif
#ifdef TRT_HAVE_NEON_DISPATCH
#ifdef TRT_HAVE_NEON_DOTPROD
    if (isa == TRT_ISA_NEON_DOTPROD && dotprod_present()) {
        return &trt_ukernels_neon_dotprod;
    }
#endif
    if (isa == TRT_ISA_NEON && neon_present()) {
        return &trt_ukernels_neon;
    }
#endif
#ifdef TRT_HAVE_CORTEX_M_DSP
    if (isa == TRT_ISA_CORTEX_M_DSP) {
        return &trt_ukernels_cortex_m_dsp;
    }
#endif
    (void)isa;
    return &trt_ukernels_portable;
}

int32_t trt_isa_best(void) {
#ifdef TRT_HAVE_X86_DISPATCH
#ifdef TRT_HAVE_AMX
    if (avx512_vnni_present() && trt_amx_usable()) {
        return TRT_ISA_AMX;
    }
#endif
    if (avx512_vnni_present()) {
        return TRT_ISA_AVX512_VNNI;
    }
    if (avx_vnni_present()) {
        return TRT_ISA_AVX_VNNI;
    }
    if (__builtin_cpu_supports("avx2")) {
        return TRT_ISA_AVX2;
    }
    if (__builtin_cpu_supports("sse4.1")) {
        return TRT_ISA_SSE41;
    }
#endif
#ifdef TRT_HAVE_NEON_DISPATCH
#ifdef TRT_HAVE_NEON_DOTPROD
    if (dotprod_present()) {
        return TRT_ISA_NEON_DOTPROD;
    }
#endif
    if (neon_present()) {
        return TRT_ISA_NEON;
    }
#endif
#if defined(TRT_HAVE_CORTEX_M_DSP) && !defined(__linux__)
    return TRT_ISA_CORTEX_M_DSP;
#else
    return TRT_ISA_PORTABLE;
#endif
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
