"""The x86-64 SSE4.1 micro-kernel table (csrc/ukernels_sse41.c), for CPUs
without AVX2, gives the portable table's bits; the AVX2 table is checked by
the same driver.

1. tests/c/ukernel_diff.c natively: every entry of the SSE4.1 and AVX2
   tables against portable on random shapes and values and a grid of
   requantisation edge values, every operand against a guard page.
2. The same driver under qemu-x86_64 on CPUs without AVX2 (Penryn: SSE4.1,
   Nehalem: SSE4.2) and without SSE4.1 (Core 2): the run-time dispatch
   picks SSE4.1 where it is the best table and portable where it is absent,
   and QEMU faults on any SSE4.2+ instruction that would not run there.
   The object code holds no VEX/AVX instruction (QEMU does not fault on
   those, so that is checked on the disassembly).
3. Through the Python runtime with the SSE4.1 table selected: random graphs
   against LiteRT's BUILTIN_REF and the hypothesis cases against the NumPy
   spec (the shipped models run under every table in tests/test_models.py,
   whose fixture takes them from runtime.isa.available()).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import graphgen
import pytest
from _hypothesis_cases import OpCase, binary_cases, conv2d_cases, depthwise_cases, exact_settings, fully_connected_cases
from hypothesis import given
from test_kernels_hypothesis import assert_matches, run_c
from test_neon import KERNELS, build_driver, parse_diff
from test_random_graphs import check_against_reference

from runtime import isa
from runtime._native import lib
from runtime.ops import conv

ROOT = Path(__file__).resolve().parents[1]
PORTABLE, AVX2, SSE41, AVX512_VNNI, AVX_VNNI, AMX = 0, 2, 6, 7, 8, 9
CASES = 20000  # random cases per kernel and table natively (~1 s)
QEMU_CASES = 800


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


X86 = lib.trt_isa_best() in (PORTABLE, AVX2, SSE41, AVX512_VNNI, AVX_VNNI, AMX) and "sse2" in cpu_flags()
HAS_SSE41 = "sse4_1" in cpu_flags()
HAS_AVX2 = "avx2" in cpu_flags()
HAS_AVX512_VNNI = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= cpu_flags()
HAS_AVX_VNNI = HAS_AVX2 and "avx_vnni" in cpu_flags()
# (Linux also has to grant the tile state: it does on the kernels this runs on)
HAS_AMX = HAS_AVX512_VNNI and {"amx_tile", "amx_int8"} <= cpu_flags()
# the tables this CPU runs natively, SSE4.1 and up
NATIVE_TABLES = (
    {SSE41}
    | ({AVX2} if HAS_AVX2 else set())
    | ({AVX512_VNNI} if HAS_AVX512_VNNI else set())
    | ({AVX_VNNI} if HAS_AVX_VNNI else set())
    | ({AMX} if HAS_AMX else set())
)
# the VNNI tables' own entries (ukernel_diff names), optional elsewhere
VNNI_KERNELS = {"gemm_k4", "gemm_k4_f64", "rows_u8"}
needs_sse41 = pytest.mark.skipif(not (X86 and HAS_SSE41), reason="needs an x86-64 CPU with SSE4.1")


def test_enum_codes_are_stable() -> None:
    # Appended to trt_isa: exported plans and the emulation harness print these numbers.
    assert (lib.TRT_ISA_PORTABLE, lib.TRT_ISA_AVX2, lib.TRT_ISA_SSE41) == (PORTABLE, AVX2, SSE41)
    assert (lib.TRT_ISA_AVX512_VNNI, lib.TRT_ISA_AVX_VNNI, lib.TRT_ISA_AMX) == (AVX512_VNNI, AVX_VNNI, AMX)
    assert isa.NAMES["sse41"] == SSE41


@needs_sse41
def test_dispatch_on_this_host() -> None:
    expect_best = (
        "amx"
        if HAS_AMX
        else "avx512-vnni"
        if HAS_AVX512_VNNI
        else "avx-vnni"
        if HAS_AVX_VNNI
        else "avx2"
        if HAS_AVX2
        else "sse41"
    )
    assert isa.best() == expect_best
    avail = isa.available()
    assert avail[0] == "portable"
    assert "sse41" in avail and ("avx2" in avail) == HAS_AVX2
    assert ("avx512-vnni" in avail) == HAS_AVX512_VNNI and ("avx-vnni" in avail) == HAS_AVX_VNNI
    assert ("amx" in avail) == HAS_AMX
    assert len(avail) == len(set(avail))
    try:
        assert isa.select("sse41") == "sse41"
        assert lib.trt_isa_active() == SSE41
        assert isa.available() == avail  # probing does not change the selection
        assert isa.active() == "sse41"
    finally:
        isa.select("best")
    assert isa.active() == expect_best


def test_host_simd_packs_gemm_panels_for_sse41_and_avx2(monkeypatch: pytest.MonkeyPatch) -> None:
    """An SSE4.1-best machine plans the int16 GEMM panels its table reads."""

    class Best:
        def __init__(self, code: int) -> None:
            self.code = code

        def __getattr__(self, name: str) -> object:
            return getattr(lib, name)

        def trt_isa_best(self) -> int:
            return self.code

    for code, packs, vnni in (
        (SSE41, True, False),
        (AVX2, True, False),
        (AVX512_VNNI, True, True),
        (AVX_VNNI, True, True),
        (AMX, True, True),
        (PORTABLE, False, False),
        (lib.TRT_ISA_NEON, False, False),
    ):
        monkeypatch.setattr(conv, "lib", Best(code))
        assert conv.host_simd() is packs
        assert conv.host_vnni() is vnni


# ------------------------------------------------------------- C driver


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not X86:
        pytest.skip("x86-64 only")
    return build_driver("gcc", ("-O2",), tmp_path_factory.mktemp("ukernel_diff"))


def check_run(stdout: str, returncode: int, expect_tables: set[int], cases: int) -> None:
    run = parse_diff(stdout)
    where = stdout[-3000:]
    assert returncode == 0, where
    assert set(run.tables) == expect_tables, where
    for table, got in run.tables.items():
        # dw_run and gemm_seg are optional (NULL: per-pixel depthwise,
        # gathered patches); AVX2 has both, SSE4.1 dw_run; the VNNI tables
        # are AVX2's with their own GEMM over it
        optional = {"dw_run", "gemm_seg", "widen3_u8"} | VNNI_KERNELS
        assert set(KERNELS) <= set(got) <= set(KERNELS) | optional, where
        assert table not in (AVX2, AVX512_VNNI, AVX_VNNI, AMX) or {"dw_run", "gemm_seg"} <= set(got), where
        assert (VNNI_KERNELS <= set(got)) == (table in (AVX512_VNNI, AVX_VNNI, AMX)), where
        assert table != SSE41 or "dw_run" in got, where
        assert ("widen3_u8" in got) == (table in (AVX512_VNNI, AVX_VNNI, AMX)), where
        for kernel, (n, mismatches) in got.items():
            assert n > 0, f"table {table} {kernel}: no cases\n{where}"
            assert mismatches == 0, f"table {table} {kernel}: {mismatches} of {n} differ\n" + "\n".join(run.details)
        # gemm and gemm_f64 split the random cases (about 60/40)
        assert min(got["gemm"][0], got["gemm_f64"][0]) > cases // 4, where
        assert run.stack_patches[table] == 1, where


@needs_sse41
@pytest.mark.parametrize("seed", [1, 2])
def test_x86_tables_equal_portable_natively(driver: Path, seed: int) -> None:
    proc = subprocess.run(
        [str(driver), str(CASES), str(seed)], capture_output=True, text=True, timeout=600, check=False
    )
    check_run(proc.stdout + proc.stderr, proc.returncode, NATIVE_TABLES, CASES)
    run = parse_diff(proc.stdout)
    assert run.best == lib.trt_isa_best()  # the driver's dispatch agrees with the extension's
    assert run.selected[SSE41] == SSE41


# (QEMU CPU model, the best table, the tables it must have)
QEMU_CPUS = [
    ("core2duo", PORTABLE, set()),  # SSSE3 only: the SSE4.1 table is refused
    ("Penryn", SSE41, {SSE41}),
    ("Nehalem", SSE41, {SSE41}),
    ("Haswell", AVX2, {SSE41, AVX2}),
]


@pytest.mark.parametrize(("cpu", "best", "tables"), QEMU_CPUS, ids=[c for c, _, _ in QEMU_CPUS])
def test_dispatch_and_tables_on_older_x86_cpus_under_qemu(driver: Path, cpu: str, best: int, tables: set[int]) -> None:
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("needs qemu-x86_64 (apt-get install qemu-user)")
    proc = subprocess.run(
        ["qemu-x86_64", "-cpu", cpu, str(driver), str(QEMU_CASES), "4"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    check_run(proc.stdout, proc.returncode, tables, QEMU_CASES)
    run = parse_diff(proc.stdout)
    assert run.best == best, proc.stdout[-2000:]
    assert run.selected[SSE41] == (SSE41 if SSE41 in tables else PORTABLE)
    assert run.selected[AVX2] == (AVX2 if AVX2 in tables else PORTABLE)


def test_sse41_object_code_has_no_avx(tmp_path: Path) -> None:
    """Only legacy-encoded SSE: a CPU without AVX must be able to run every
    instruction of the table (the rest of the library is baseline x86-64)."""
    if not X86 or shutil.which("objdump") is None:
        pytest.skip("x86-64 with binutils only")
    obj = tmp_path / "ukernels_sse41.o"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O3",
            "-c",
            f"-I{ROOT / 'csrc'}",
            f"-I{ROOT / 'csrc' / 'include'}",
            str(ROOT / "csrc" / "ukernels_sse41.c"),
            "-o",
            str(obj),
        ],
        check=True,
    )
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(obj)], capture_output=True, text=True, check=True)
    mnemonics = re.findall(r"^\s+[0-9a-f]+:\s+(\S+)", asm.stdout, flags=re.M)
    assert len(mnemonics) > 500  # the whole table was compiled
    assert not [m for m in mnemonics if m.startswith("v")], "VEX-encoded (AVX) instructions"
    assert "%ymm" not in asm.stdout and "%zmm" not in asm.stdout
    assert {"pmaddwd", "pmuldq", "pmulld", "roundpd", "cvttpd2dq"} <= set(mnemonics)


# ------------------------------------------------- through the runtime


@pytest.fixture
def sse41() -> Iterator[None]:
    if "sse41" not in isa.available():
        pytest.skip("the CPU has no SSE4.1")
    isa.select("sse41")
    try:
        yield
    finally:
        isa.select("best")


KERNEL_OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD"]
GRAPH_SEEDS = 12


@pytest.mark.parametrize("opcode", KERNEL_OPS)
def test_random_single_op_graphs_under_sse41(sse41: None, opcode: str) -> None:
    for seed in range(GRAPH_SEEDS):
        assert isa.active() == "sse41"
        check_against_reference(graphgen.single_op_case(opcode, seed), seed)


def test_random_multi_op_graphs_under_sse41(sse41: None) -> None:
    for seed in range(40):
        check_against_reference(graphgen.chain_case(seed), 10_000 + seed)


def _under_sse41(case: OpCase) -> OpCase:
    if "sse41" not in isa.available():
        pytest.skip("the CPU has no SSE4.1")
    return dataclasses.replace(case, isa="sse41")


@exact_settings(120)
@given(case=conv2d_cases())
def test_conv2d_exact_under_sse41(case: OpCase) -> None:
    case = _under_sse41(case)
    assert_matches(case, run_c(case))


@exact_settings(120)
@given(case=depthwise_cases())
def test_depthwise_conv2d_exact_under_sse41(case: OpCase) -> None:
    case = _under_sse41(case)
    assert_matches(case, run_c(case))


@exact_settings(100)
@given(case=fully_connected_cases())
def test_fully_connected_exact_under_sse41(case: OpCase) -> None:
    case = _under_sse41(case)
    assert_matches(case, run_c(case))


@exact_settings(80)
@given(case=binary_cases("ADD"))
def test_add_exact_under_sse41(case: OpCase) -> None:
    case = _under_sse41(case)
    assert_matches(case, run_c(case))
