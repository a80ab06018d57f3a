"""The x86 roofline the MLPerf models meet on this machine.

    python tools/roofline.py [--models kws,vww,resnet,ad01]

Compiles two probes with gcc and runs them: the throughput of the int8
multiply-add instruction the VNNI kernels are built on (zmm vpdpbusd, 64
multiply-adds each, sixteen independent accumulators: the core's peak), and
the read bandwidth of data that lives in L2 (the weights of a model larger
than L1 between two inferences).  Then, per model, the time those two bound
it by: MACs / peak and weight bytes / L2 bandwidth.  A runtime cannot beat
the larger of the two at one thread, whatever it does around them, which is
what tools/bench.py's ratios are measured against.

Needs gcc and a CPU with AVX-512 VNNI (it says so and exits 2 otherwise).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = {"kws": "kws_ref_model", "vww": "vww_96_int8", "resnet": "pretrainedResnet_quant", "ad01": "ad01_int8"}

PROBE = r"""
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(void) {
    __m512i a[16], w = _mm512_set1_epi32(0x01020304), x = _mm512_set1_epi32(0x05060708);
    for (int i = 0; i < 16; ++i) a[i] = _mm512_set1_epi32(i);
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
        const long n = 2000000;
        double t0 = now();
        for (long k = 0; k < n; ++k) {
#pragma GCC unroll 16
            for (int i = 0; i < 16; ++i) a[i] = _mm512_dpbusd_epi32(a[i], x, w);
            __asm__ volatile("" : "+v"(w));
        }
        double rate = n * 16 / (now() - t0);
        if (rate > best) best = rate;
    }
    __m512i s = a[0];
    for (int i = 1; i < 16; ++i) s = _mm512_add_epi32(s, a[i]);
    /* 256 KiB: larger than L1, inside L2 on the cores this targets */
    const size_t bytes = 256 * 1024, n64 = bytes / 64;
    __m512i *buf = aligned_alloc(64, bytes);
    for (size_t i = 0; i < n64; ++i) buf[i] = _mm512_set1_epi32((int)i);
    __m512i b0 = _mm512_setzero_si512(), b1 = b0, b2 = b0, b3 = b0;
    double bw = 0;
    for (int rep = 0; rep < 5; ++rep) {
        const long passes = 2000;
        double t0 = now();
        for (long r = 0; r < passes; ++r)
            for (size_t i = 0; i < n64; i += 4) {
                b0 = _mm512_add_epi32(b0, buf[i]); b1 = _mm512_add_epi32(b1, buf[i + 1]);
                b2 = _mm512_add_epi32(b2, buf[i + 2]); b3 = _mm512_add_epi32(b3, buf[i + 3]);
            }
        double rate = passes * (double)bytes / (now() - t0);
        if (rate > bw) bw = rate;
    }
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(b0, b1), _mm512_add_epi32(b2, b3)));
    printf("%.6e %.6e %d\n", best, bw, _mm512_reduce_add_epi32(s) & 1);
    free(buf);
    return 0;
}
"""


def probe() -> tuple[float, float]:
    """(vpdpbusd per second, L2 read bytes per second)."""
    with tempfile.TemporaryDirectory(prefix="tinyrt-roofline-") as tmp:
        src, exe = Path(tmp) / "probe.c", Path(tmp) / "probe"
        src.write_text(PROBE)
        flags = ["-O2", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni"]
        subprocess.run(["gcc", *flags, str(src), "-o", str(exe)], check=True, capture_output=True, text=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="kws,vww,resnet,ad01", help="comma-separated: kws, vww, resnet, ad01")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from runtime._native import lib

    if lib.trt_isa_best() not in (lib.TRT_ISA_AVX512_VNNI, lib.TRT_ISA_AMX):
        print("roofline.py: this CPU has no AVX-512 VNNI (the probe is its vpdpbusd)", file=sys.stderr)
        return 2
    from runtime.backends.c import CModel
    from runtime.graph import parse_model

    dpbusd, l2 = probe()
    peak = dpbusd * 64
    print(f"zmm vpdpbusd: {dpbusd / 1e9:.2f} G/s = {peak / 1e9:.0f} GMAC/s peak on one core")
    print(f"L2-resident reads: {l2 / 1e9:.0f} GB/s")
    print()
    print(f"{'model':<8} {'MACs':>12} {'weight B':>10} {'MAC floor us':>13} {'L2 floor us':>12}")
    for name in args.models.split(","):
        model = CModel(parse_model(REPO / "tests" / "models" / f"{MODELS.get(name, name)}.tflite"))
        plan = model.plan
        weights = sum(s.weight_bytes for s in plan.steps)
        print(f"{name:<8} {plan.macs:>12,} {weights:>10,} {plan.macs / peak * 1e6:>13.2f} {weights / l2 * 1e6:>12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
