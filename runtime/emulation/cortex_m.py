"""Cortex-M firmware: exported models + csrc + the harness, linked for an
MPS2/MPS3 machine and run under qemu-system-arm with semihosting and
-icount shift=0 (one instruction per virtual nanosecond).

Measured here:
- flash: .text + .rodata (+ ARM unwind tables) + the .data load image of the
  linked ELF (arm-none-eabi-size -A): model constants, kernels, libc/libgcc;
  the harness has its own sections and is not counted;
- static RAM: .data + .bss (the model's arena included);
- stack: high-water mark of model_invoke from stack painting;
- instructions: SysTick ticks around model_invoke times the measured
  instructions per tick, less the timing calls (also measured).  SysTick
  wraps (every 2^24 ticks, 671 M instructions on MPS2) are counted by its
  interrupt; a run that long would also see that exception frame in its
  stack figure (104 B at most), no shipped model comes near.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..export import Export
from .build import (
    FIRMWARE,
    INPUT_FILE,
    OUTPUT_FILE,
    REPORT_FILE,
    BuildError,
    Record,
    Report,
    TargetObjects,
    compile_models,
    parse_report,
    read_outputs,
    run_tool,
    target_objects,
    write_records,
)
from .targets import compile_flags, machine_memory, need_cortex_m_tools

HARNESS_SOURCES = ("harness_core.c", "harness_semihost.c", "harness_startup.c")
STACK_BYTES = 64 << 10  # painted and measured; far above what the kernels use
FLASH_SECTIONS = (".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".data")
RAM_SECTIONS = (".data", ".bss")
STACK_OVERFLOW = 0xFFFFFFFF


class EmulationRunError(BuildError):
    """QEMU failed, timed out, or the firmware reported an error."""


@dataclass
class Firmware:
    elf: Path
    work: Path
    exports: list[Export]
    sections: dict[str, int]  # name -> size

    @property
    def flash_bytes(self) -> int:
        return sum(self.sections.get(s, 0) for s in FLASH_SECTIONS)

    @property
    def ram_bytes(self) -> int:
        return sum(self.sections.get(s, 0) for s in RAM_SECTIONS)


@dataclass
class Calibration:
    instructions_per_tick: float
    hook_instructions: float  # one plat_ticks() call and a store (TRT_STEP_HOOK)

    @classmethod
    def from_report(cls, kv: dict[str, str]) -> Calibration:
        n1, n2 = int(kv["spin_n1"]), int(kv["spin_n2"])
        t1, t2 = int(kv["spin_t1"]), int(kv["spin_t2"])
        if t2 <= t1:
            raise EmulationRunError(
                "SysTick did not advance with the instruction count (is QEMU running with -icount shift=0?)"
            )
        # The spin loop runs 2 instructions per iteration; the difference of two
        # lengths cancels the call.  40.0 exactly on MPS2 (25 MHz SysTick).
        ipt = 2 * (n2 - n1) / (t2 - t1)
        hook = int(kv["hook_t"]) * ipt / int(kv["hook_calls"])
        return cls(ipt, hook)


@dataclass
class Run:
    """One record's results."""

    model: int
    outputs: list[np.ndarray]
    instructions: int
    step_instructions: list[int]
    stack_bytes: int
    isas: list[int]  # the micro-kernel tables it ran under (trt_isa), the timed one first
    mismatches: int  # outputs that differed between those tables


@dataclass
class RunResult:
    runs: list[Run]
    calibration: Calibration
    seconds: float
    report: Report = field(repr=False)


class CortexM:
    """Build and run firmware for one board (its core, flags and QEMU machine)."""

    def __init__(self, board: Any, cache: Path | None = None, harness_flags: Sequence[str] = ()):
        """harness_flags: compile-time options of the harness (tests set HARNESS_SYST_RELOAD)."""
        need_cortex_m_tools()
        self.board = board
        self.machine = board.emulation.machine
        self.memory = machine_memory(self.machine)
        self.flags = [*compile_flags(board), "-ffunction-sections", "-fdata-sections", "-fno-strict-aliasing"]
        self.cache = cache
        self.harness_flags = list(harness_flags)
        self._objects: TargetObjects | None = None

    @property
    def target(self) -> str:
        return f"qemu-system-arm -M {self.machine} -cpu {self.board.emulation.cpu} ({' '.join(compile_flags(self.board))})"

    def objects(self) -> TargetObjects:
        if self._objects is None:
            self._objects = target_objects(
                "arm-none-eabi-gcc", self.flags, HARNESS_SOURCES, self.cache, self.harness_flags
            )
        return self._objects

    def build(
        self,
        exports: Sequence[Export],
        work: Path,
        extra_flags: Sequence[str] = (),
        extra_objects: Sequence[Path] = (),
    ) -> Firmware:
        """Link the exports with csrc/ and the harness.  extra_flags / extra_objects:
        another kernel library the exports call (runtime.emulation.cmsis_nn)."""
        work.mkdir(parents=True, exist_ok=True)
        objs = self.objects()
        model_objs = compile_models("arm-none-eabi-gcc", self.flags, exports, work, hooks=True, extra_flags=extra_flags)
        mem = self.memory
        script = (FIRMWARE / "link.ld.in").read_text()
        for key, value in (
            ("FLASH_ORIGIN", mem.flash_origin),
            ("FLASH_LENGTH", mem.flash_length),
            ("RAM_ORIGIN", mem.ram_origin),
            ("RAM_LENGTH", mem.ram_length),
            ("STACK_SIZE", STACK_BYTES),
        ):
            script = script.replace(f"@{key}@", hex(value))
        (work / "link.ld").write_text(script)
        elf = work / "firmware.elf"
        cmd = [
            "arm-none-eabi-gcc",
            *self.flags,
            "-nostartfiles",
            "--specs=nano.specs",
            "-T",
            str(work / "link.ld"),
            "-Wl,--gc-sections",
            f"-Wl,-Map={work / 'firmware.map'}",
            *map(str, objs.harness),
            *map(str, model_objs),
            *map(str, extra_objects),
            str(objs.library),
            "-o",
            str(elf),
        ]
        try:
            run_tool(cmd, what="linking the firmware")
        except BuildError as exc:
            if "overflowed" in str(exc) or "will not fit" in str(exc):
                raise BuildError(
                    f"the firmware does not fit the {self.machine} memory map "
                    f"({mem.flash_length >> 10} KB code, {mem.ram_length >> 10} KB RAM): {exc}"
                ) from exc
            raise
        return Firmware(elf, work, list(exports), _section_sizes(elf))

    def run(self, fw: Firmware, records: Sequence[Record], timeout: float = 900.0) -> RunResult:
        write_records(fw.work / INPUT_FILE, fw.exports, records)
        for name in (OUTPUT_FILE, REPORT_FILE):
            (fw.work / name).unlink(missing_ok=True)
        cmd = [
            *self.board.emulation.command(),
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "null",
            "-semihosting-config",
            "enable=on,target=native",
            "-icount",
            "shift=0",
            "-kernel",
            str(fw.elf),
        ]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=fw.work, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise EmulationRunError(f"QEMU did not finish within {timeout:.0f} s: {' '.join(cmd)}") from exc
        seconds = time.monotonic() - start
        report_text = (fw.work / REPORT_FILE).read_text() if (fw.work / REPORT_FILE).exists() else ""
        report = parse_report(report_text)
        if proc.returncode != 0 or report.done != len(records):
            raise EmulationRunError(
                f"the firmware stopped (exit {proc.returncode}, {len(report.runs)} of {len(records)} records done): "
                f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
            )
        cal = Calibration.from_report(report.calibration)
        outputs = read_outputs(fw.work / OUTPUT_FILE, fw.exports, records)
        runs = []
        for line, outs in zip(report.runs, outputs, strict=True):
            exp = fw.exports[line.model]
            if line.stack == STACK_OVERFLOW:
                raise EmulationRunError(f"{exp.name} overflowed the {STACK_BYTES}-byte stack")
            ticks = line.t1 - line.t0
            # The timed span holds the model and num_steps + 2 timing calls.
            total = ticks * cal.instructions_per_tick - (exp.num_steps + 2) * cal.hook_instructions
            marks = line.marks
            steps = [
                max(0, round((marks[i + 1] - marks[i]) * cal.instructions_per_tick - cal.hook_instructions))
                for i in range(len(marks) - 1)
            ]
            runs.append(
                Run(line.model, outs, max(0, round(total)), steps, line.stack or 0, line.isas, line.mismatches)
            )
        return RunResult(runs, cal, seconds, report)


def _section_sizes(elf: Path) -> dict[str, int]:
    """arm-none-eabi-size -A: section name -> size."""
    out = run_tool(["arm-none-eabi-size", "-A", "-d", str(elf)], what="arm-none-eabi-size")
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes
