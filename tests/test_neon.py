"""The ARM NEON micro-kernel tables (csrc/ukernels_neon.c) give the portable
table's bits, checked under qemu-user.

1. tests/c/ukernel_diff.c with csrc/*.c, cross-compiled and run on several
   QEMU CPUs: every entry of every SIMD table the CPU has, against the
   portable table, on random shapes (all vector tails, m = 1..4) and values
   (INT8_MIN/MAX, multipliers up to 2^31 - 1, shifts -31..30, double
   rescales on exact ties and out of int32 range) plus a grid of
   requantisation edge values, with every operand against a guard page.
   Builds: aarch64 baseline ARMv8-A (SDOT only through the run-time table),
   ARMv7-A + NEON, and Debian's armhf baseline (VFPv3-D16), where NEON comes
   only from the run-time dispatch and a CPU without it must keep the
   portable table.
2. Whole models: shipped models exported to C and run by the emulation
   harness under qemu-aarch64 -cpu max (which has SDOT); the harness re-runs
   each inference under every table and compares, and the outputs must equal
   the host C backend's.

Missing tools skip with the Debian package to install.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import runtime
from runtime._native import lib
from runtime.emulation.build import WARNINGS, Record, run_tool, target_objects
from runtime.emulation.targets import EmulationUnavailable, need
from runtime.export import generate
from runtime.graph import parse_model

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "c" / "ukernel_diff.c"
MODELS = ROOT / "tests" / "models"

PORTABLE, AVX2, NEON, DOTPROD = 0, 2, 3, 5
ARM_ISAS = (NEON, DOTPROD)
KERNELS = ("dot_1x4", "dot_2x4", "mac_rows", "requantize", "requantize_edges", "dw_pixel", "gemm", "gemm_f64", "add")
CASES = 1500  # random cases per kernel and table: ~1 s per run under QEMU


@dataclass(frozen=True)
class Build:
    gcc: str
    qemu: str
    flags: tuple[str, ...]


BUILDS = {
    "aarch64": Build("aarch64-linux-gnu-gcc", "qemu-aarch64", ("-O2",)),
    "armv7-neon": Build(
        "arm-linux-gnueabihf-gcc", "qemu-arm", ("-O2", "-march=armv7-a", "-mfpu=neon", "-mfloat-abi=hard")
    ),
    # Debian armhf's default: no NEON in the baseline; the NEON table is
    # compiled per function and chosen from AT_HWCAP.
    "armhf-vfp": Build(
        "arm-linux-gnueabihf-gcc", "qemu-arm", ("-O2", "-march=armv7-a", "-mfpu=vfpv3-d16", "-mfloat-abi=hard")
    ),
}

# (build, QEMU CPU, the SIMD tables that CPU must get)
RUNS = [
    ("aarch64", "cortex-a53", {NEON}),
    ("aarch64", "cortex-a72", {NEON}),
    ("aarch64", "cortex-a76", {NEON, DOTPROD}),
    ("armv7-neon", "cortex-a7", {NEON}),
    ("armv7-neon", "cortex-a15", {NEON}),
    ("armhf-vfp", "cortex-a9", {NEON}),
    ("armhf-vfp", "cortex-r5f", set()),  # VFP without NEON: portable, and no NEON instruction runs
]


@dataclass
class DiffRun:
    best: int
    selected: dict[int, int]
    tables: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)  # isa -> kernel -> (cases, mismatches)
    stack_patches: dict[int, int] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)


def parse_diff(text: str) -> DiffRun:
    run = DiffRun(best=-1, selected={})
    for line in text.splitlines():
        if m := re.fullmatch(r"best (\d+)", line):
            run.best = int(m[1])
        elif m := re.fullmatch(r"select (\d+) (\d+)", line):
            run.selected[int(m[1])] = int(m[2])
        elif m := re.fullmatch(r"table (\d+) (\w+) cases (\d+) mismatches (\d+)", line):
            run.tables.setdefault(int(m[1]), {})[m[2]] = (int(m[3]), int(m[4]))
        elif m := re.fullmatch(r"table (\d+) stack_patches (\d+)", line):
            run.stack_patches[int(m[1])] = int(m[2])
        elif line.startswith("detail "):
            run.details.append(line)
    return run


def _tool_or_skip(tool: str) -> None:
    try:
        need(tool)
    except EmulationUnavailable as exc:
        pytest.skip(str(exc))


def _sysroot(gcc: str) -> str:
    """Debian's cross libc lives in /usr/<triplet> (libc6-dev-*-cross, pulled in by the compiler)."""
    triplet = subprocess.run([gcc, "-dumpmachine"], capture_output=True, text=True, check=True).stdout.strip()
    return f"/usr/{triplet}"


def build_driver(gcc: str, flags: tuple[str, ...], work: Path) -> Path:
    objs = target_objects(gcc, list(flags), (), cache=work / "cache")
    exe = work / "ukernel_diff"
    run_tool(
        [
            gcc,
            *WARNINGS,
            *flags,
            f"-I{ROOT / 'csrc'}",
            f"-I{ROOT / 'csrc' / 'include'}",
            str(DRIVER),
            str(objs.library),
            "-lm",
            "-o",
            str(exe),
        ],
        what="building ukernel_diff",
    )
    return exe


@pytest.fixture(scope="module")
def drivers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Built on first use, one per build configuration."""

    class Lazy(dict[str, Path]):
        def __missing__(self, name: str) -> Path:
            b = BUILDS[name]
            _tool_or_skip(b.gcc)
            self[name] = build_driver(b.gcc, b.flags, tmp_path_factory.mktemp(name))
            return self[name]

    return Lazy()


@pytest.mark.parametrize(("build", "cpu", "tables"), RUNS, ids=[f"{b}-{c}" for b, c, _ in RUNS])
def test_tables_equal_portable_under_qemu(drivers, build: str, cpu: str, tables: set[int]) -> None:
    b = BUILDS[build]
    _tool_or_skip(b.qemu)
    exe = drivers[build]
    cmd = [b.qemu, "-cpu", cpu, "-L", _sysroot(b.gcc), str(exe), str(CASES), "7"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    run = parse_diff(proc.stdout)
    where = f"{' '.join(cmd)}\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
    assert proc.returncode == 0, where
    expect_best = DOTPROD if DOTPROD in tables else NEON if NEON in tables else PORTABLE
    assert run.best == expect_best, where
    for isa in ARM_ISAS:
        # a table the CPU lacks is refused: trt_isa_select falls back to portable
        assert run.selected[isa] == (isa if isa in tables else PORTABLE), where
    # The NEON tables this CPU has, and no other; a 32-bit build also has
    # the Cortex-M DSP table (ARMv6 SIMD32), which the driver compares too.
    assert {isa for isa in run.tables if isa in ARM_ISAS} == tables, where
    for isa, got in run.tables.items():
        # dw_run (NULL: per-pixel depthwise) is optional; the NEON tables have it
        assert set(KERNELS) <= set(got) <= {*KERNELS, "dw_run"}, where
        assert isa not in ARM_ISAS or "dw_run" in got, where
        for kernel, (cases, mismatches) in got.items():
            assert cases > 0, f"{kernel}: no cases\n{where}"
            assert mismatches == 0, f"table {isa} {kernel}: {mismatches} of {cases} differ\n" + "\n".join(run.details)
        # gemm and gemm_f64 split the random cases (about 60/40)
        assert min(got["gemm"][0], got["gemm_f64"][0]) > CASES // 4
    for isa in tables:
        assert run.stack_patches[isa] == 1  # Linux tables may gather patches on the stack


def test_host_tables_equal_portable(tmp_path: Path) -> None:
    """The same driver natively (AVX2 on an x86-64 with it; on an ARM host, its NEON tables)."""
    exe = build_driver("gcc", ("-O2",), tmp_path)
    proc = subprocess.run([str(exe), "500", "3"], capture_output=True, text=True, timeout=300, check=False)
    run = parse_diff(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert run.best == lib.trt_isa_best()  # the extension's dispatch agrees
    for isa, kernels in run.tables.items():
        assert all(mm == 0 for _, mm in kernels.values()), (isa, kernels, run.details)


# ---------------------------------------------------------------- models

WHOLE_MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8"]
INPUTS_PER_MODEL = 2


def test_models_under_every_aarch64_table(tmp_path: Path) -> None:
    """Exported shipped models on qemu-aarch64 -cpu max (baseline ARMv8-A build):
    the harness runs each input under the SDOT table (best), portable and NEON
    and counts differing outputs; the kept outputs equal the host C backend."""
    from runtime.emulation.linux import LinuxUser

    try:
        runner = LinuxUser("aarch64", "max", cache=tmp_path / "cache")
    except EmulationUnavailable as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(8)
    exports, records, expected = [], [], []
    for i, name in enumerate(WHOLE_MODELS):
        data = (MODELS / f"{name}.tflite").read_bytes()
        host = runtime.load(data, backend="c")
        exports.append(generate(parse_model(data), name=f"m{i}", source=name))
        for _ in range(INPUTS_PER_MODEL):
            xs = []
            for info in host.inputs:
                lim = np.iinfo(info.dtype)
                xs.append(rng.integers(lim.min, lim.max + 1, size=info.shape, dtype=info.dtype))
            records.append(Record(i, xs))
            expected.append((name, host.run(xs)))
    prog = runner.build(exports, tmp_path / "build")
    res = runner.run(prog, records)
    for run, (name, want) in zip(res.runs, expected, strict=True):
        assert run.isas == [DOTPROD, PORTABLE, NEON], f"{name}: tables run {run.isas}"
        assert run.mismatches == 0, f"{name}: {run.mismatches} outputs differ between the tables"
        assert len(run.outputs) == len(want)
        for got, ref in zip(run.outputs, want, strict=True):
            assert got.dtype == ref.dtype and got.shape == ref.shape
            assert got.tobytes() == ref.tobytes(), f"{name}: differs from the host C backend"
