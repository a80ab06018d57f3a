"""Run an exported model on a board's instruction set under QEMU and measure it.

    from runtime.emulation import emulate
    r = emulate("tests/models/kws_ref_model.tflite", "nucleo-l4r5zi")
    r.bit_exact, r.instructions, r.flash_bytes, r.ram_bytes, r.stack_bytes

Cortex-M boards (qemu-system-arm): the export is linked with csrc/ and a
small firmware harness for the board's MPS2/MPS3 machine, using the
profile's core and FPU flags, and run with semihosting and -icount shift=0;
flash, static RAM, the stack high-water mark and the instruction count of
model_invoke are measured (runtime/emulation/cortex_m.py).  Raspberry Pi
boards (qemu-aarch64 / qemu-arm): a static Linux build of the same export
runs under qemu-user; sizes are measured, instructions are not.

Either way the outputs are compared bit for bit with the host C backend on
the same inputs.  A tool that is missing raises EmulationUnavailable naming
the Debian package to install.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .build import BuildError, Record
from .targets import DEBIAN_PACKAGES, EmulationUnavailable, NoEmulationTarget

__all__ = [
    "DEBIAN_PACKAGES",
    "BuildError",
    "EmulationResult",
    "EmulationUnavailable",
    "NoEmulationTarget",
    "emulate",
    "emulation_boards",
]


@dataclass
class StepCount:
    index: int  # step
    op: str
    instructions: int


@dataclass
class EmulationResult:
    """What one emulated run measured.  Sizes in bytes; None where the target cannot measure it."""

    board: str
    target: str
    bit_exact: bool
    inputs: int
    instructions: int | None  # model_invoke, the largest over the inputs
    flash_bytes: int
    ram_bytes: int  # static: .data + .bss (the arena included)
    stack_bytes: int | None  # high-water mark of model_invoke
    cycles_est: float | None  # instructions x the profile's cpi
    latency_ms_est: float | None
    emulation_seconds: float  # QEMU wall time for all inputs
    build_seconds: float
    steps: list[StepCount] = field(default_factory=list)  # per-step instructions, first input
    mismatch: str = ""  # where the first difference was, when not bit-exact

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "bit_exact": self.bit_exact,
            "instructions": self.instructions,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "stack_bytes": self.stack_bytes,
            "cycles_est": None if self.cycles_est is None else round(self.cycles_est),
            "latency_ms_est": self.latency_ms_est,
            "inputs": self.inputs,
            "emulation_seconds": round(self.emulation_seconds, 3),
            "steps": [s.__dict__ for s in self.steps],
            "mismatch": self.mismatch,
        }


def emulation_boards() -> list[str]:
    from ..boards import list_boards

    return [b.name for b in list_boards() if b.emulation.target != "none"]


def _board(board: Any) -> Any:
    from ..boards import Board, load_board

    b = board if isinstance(board, Board) else load_board(board)
    if b.emulation.target == "none":
        raise NoEmulationTarget(
            f"board {b.name} ({b.title}, {b.core}) has no emulation target ([emulation] target = \"none\" in "
            f"{b.path}); boards that have one: {', '.join(emulation_boards())}"
        )
    return b


def random_inputs(infos: list[Any], count: int, seed: int) -> list[list[np.ndarray]]:
    """Inputs over each tensor's whole range (8-bit) or N(0, 1) (float), reproducible by seed."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        arrays = []
        for t in infos:
            dt = np.dtype(t.dtype)
            if dt.kind in "iu":
                lim = np.iinfo(dt)
                arrays.append(rng.integers(lim.min, lim.max + 1, size=t.shape, dtype=dt))
            else:
                arrays.append(rng.standard_normal(t.shape).astype(dt))
        out.append(arrays)
    return out


def _first_difference(got: list[np.ndarray], want: list[np.ndarray], record: int) -> str:
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        if g.tobytes() != w.tobytes():
            flat_g, flat_w = g.reshape(-1), w.reshape(-1)
            idx = int(np.flatnonzero(flat_g.view(np.uint8) != flat_w.view(np.uint8))[0]) if g.dtype.itemsize == 1 else 0
            return f"input {record}, output {k}, element {idx}: emulated {flat_g[idx]!r}, host {flat_w[idx]!r}"
    return ""


def emulate(
    model: str | Path,
    board: Any,
    inputs: list[list[np.ndarray]] | None = None,
    num_inputs: int = 3,
    seed: int = 0,
    work_dir: str | Path | None = None,
    cache: str | Path | None = None,
    timeout: float = 900.0,
    fc_fixed_point: bool = False,
) -> EmulationResult:
    """Export `model`, build it for `board`'s emulation target, run `inputs`
    (default: `num_inputs` random ones) under QEMU and compare with the host
    C backend.  work_dir keeps the build (default: a temporary directory,
    removed afterwards); cache holds csrc/ objects per target (default:
    $TINYRT_EMULATION_CACHE or ~/.cache/tinyrt/emulation)."""
    from ..api import load
    from ..export import generate

    b = _board(board)
    path = Path(model)
    exp = generate(path, name="model", board=b, fc_fixed_point=fc_fixed_point, source=path.name)
    host = load(path, backend="c", fc_rounding="tflm" if fc_fixed_point else "tflite")
    if inputs is None:
        inputs = random_inputs(exp.inputs, num_inputs, seed)
    if not inputs:
        raise ValueError("emulate() needs at least one input")
    records = [Record(0, list(x)) for x in inputs]
    cache_dir = Path(cache) if cache is not None else None
    tmp = None
    if work_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="tinyrt-emulate-"))
        work = tmp
    else:
        work = Path(work_dir)
    try:
        start = time.monotonic()
        if b.emulation.target == "qemu-system-arm":
            from .cortex_m import CortexM

            runner: Any = CortexM(b, cache_dir)
            built = runner.build([exp], work)
            build_seconds = time.monotonic() - start
            result = runner.run(built, records, timeout=timeout)
            emulated = [r.outputs for r in result.runs]
            instructions: int | None = max(r.instructions for r in result.runs)
            stack: int | None = max(r.stack_bytes for r in result.runs)
            first = result.runs[0]
            steps = [StepCount(i, exp.step_ops[i], n) for i, n in enumerate(first.step_instructions[: exp.num_steps])]
            isa_mismatches = sum(r.mismatches for r in result.runs)
        else:
            from .linux import LinuxUser

            target = "aarch64" if b.emulation.target == "qemu-aarch64" else "armhf"
            runner = LinuxUser(target, b.emulation.cpu or None, cache_dir)
            built = runner.build([exp], work)
            build_seconds = time.monotonic() - start
            result = runner.run(built, records, timeout=timeout)
            emulated = [r.outputs for r in result.runs]
            instructions, stack, steps = None, None, []
            isa_mismatches = sum(r.mismatches for r in result.runs)
        mismatch = ""
        for k, (got, x) in enumerate(zip(emulated, inputs, strict=True)):
            mismatch = _first_difference(got, host.run(list(x)), k)
            if mismatch:
                break
        if not mismatch and isa_mismatches:
            mismatch = f"{isa_mismatches} outputs differ between the build's micro-kernel tables (ISAs)"
        cycles = b.cycle_model.instructions_to_cycles(instructions) if instructions is not None else None
        return EmulationResult(
            board=b.name,
            target=runner.target,
            bit_exact=not mismatch,
            inputs=len(records),
            instructions=instructions,
            flash_bytes=built.flash_bytes,
            ram_bytes=built.ram_bytes,
            stack_bytes=stack,
            cycles_est=cycles,
            latency_ms_est=None if cycles is None else round(b.cycles_to_ms(cycles), 4),
            emulation_seconds=result.seconds,
            build_seconds=build_seconds,
            steps=steps,
            mismatch=mismatch,
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
