"""Which instruction-set path the C kernels use (all give identical results).

The best path the CPU supports is chosen automatically; tests and benchmarks
select others to compare them.
"""

from __future__ import annotations

from ._native import lib

NAMES = {
    "portable": lib.TRT_ISA_PORTABLE,
    "sse41": lib.TRT_ISA_SSE41,
    "avx2": lib.TRT_ISA_AVX2,
    "neon": lib.TRT_ISA_NEON,
    "cortex-m-dsp": lib.TRT_ISA_CORTEX_M_DSP,
    "neon-dotprod": lib.TRT_ISA_NEON_DOTPROD,
    "avx512-vnni": lib.TRT_ISA_AVX512_VNNI,
    "avx-vnni": lib.TRT_ISA_AVX_VNNI,
    "amx": lib.TRT_ISA_AMX,
}
_BY_CODE = {code: name for name, code in NAMES.items()}


def best() -> str:
    return _BY_CODE[lib.trt_isa_best()]


def active() -> str:
    return _BY_CODE[lib.trt_isa_active()]


_AVAILABLE: list[str] = []


def available() -> list[str]:
    """Every path this CPU and build can run, portable first (an x86-64 with
    AVX2 runs the SSE4.1 table too, so tests compare all of them)."""
    if not _AVAILABLE:
        # trt_isa_select() refuses a table the CPU lacks (it returns another);
        # probe each once, then put the selection back.
        current = lib.trt_isa_active()
        try:
            found = [name for name, code in NAMES.items() if lib.trt_isa_select(code) == code]
        finally:
            lib.trt_isa_select(current)
        _AVAILABLE.extend(["portable"] + [n for n in found if n != "portable"])
    return list(_AVAILABLE)


def select(name: str) -> str:
    """Use the named path ("best" for the default); returns the one in use."""
    if name == "best":
        name = best()
    if name not in NAMES:
        raise ValueError(f"unknown instruction set {name!r}; choose from {sorted(NAMES)} or 'best'")
    return _BY_CODE[lib.trt_isa_select(NAMES[name])]
