/*
 * Checks the fast forms of gemmlowp's SaturatingRoundingDoublingHighMul and
 * RoundingDivideByPOT in csrc/trt_fixedpoint.h against their literal
 * definitions (nudge, truncating division; mask/threshold), over random
 * pairs and every edge value.  Built and run by tests/test_c_units.py.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "trt_fixedpoint.h"

static int32_t literal_srdhm(int32_t a, int32_t b) {
    const int overflow = a == b && a == INT32_MIN;
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    const int32_t high = (int32_t)((ab + nudge) / (1LL << 31));
    return overflow ? INT32_MAX : high;
}

static int32_t literal_rdbpot(int32_t x, int32_t exponent) {
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 20000000L;
    uint64_t s = 88172645463325252ULL;
    long bad = 0;
    for (long i = 0; i < iterations; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        int32_t a = (int32_t)s, b = (int32_t)(s >> 32);
        if (i % 3 == 0) {
            a >>= (s >> 59); /* small magnitudes too */
        }
        const int32_t e = (int32_t)((s >> 20) % 32);
        bad += trt_srdhm(a, b) != literal_srdhm(a, b);
        bad += trt_rounding_divide_by_pot(a, e) != literal_rdbpot(a, e);
    }
    const int32_t edge[] = {INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -2, -1, 0, 1,
                            2, (1 << 30), (1 << 30) + 1, INT32_MAX - 1, INT32_MAX};
    const int n = (int)(sizeof edge / sizeof edge[0]);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            bad += trt_srdhm(edge[i], edge[j]) != literal_srdhm(edge[i], edge[j]);
        }
        for (int32_t e = 0; e < 32; e++) {
            bad += trt_rounding_divide_by_pot(edge[i], e) != literal_rdbpot(edge[i], e);
        }
    }
    printf("mismatches: %ld\n", bad);
    return bad != 0;
}
