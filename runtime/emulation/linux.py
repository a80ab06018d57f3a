"""Raspberry Pi OS user-mode builds: exported models + csrc + the harness as
one static Linux binary, cross-compiled for aarch64 or armhf (NEON) and run
under qemu-aarch64 / qemu-arm.

qemu-user has no instruction counter (that needs TCG plugins, which Debian's
QEMU 7.2 does not ship), so these runs prove bit-exactness on the target
ISA and measure code and data sizes (from the link map: the model's and the
kernels' sections only, not the C library); runtime.emulation.a_class counts
a layer's instructions from qemu's single-step execution trace instead.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..export import Export
from .build import (
    INPUT_FILE,
    OUTPUT_FILE,
    REPORT_FILE,
    BuildError,
    Record,
    TargetObjects,
    compile_models,
    parse_report,
    read_outputs,
    run_tool,
    target_objects,
)
from .build import (
    write_records as _write_records,
)
from .cortex_m import EmulationRunError
from .targets import LINUX_TARGETS, OPT_FLAGS, need_linux_tools

HARNESS_SOURCES = ("harness_core.c", "harness_linux.c")


@dataclass
class Program:
    exe: Path
    work: Path
    exports: list[Export]
    flash_bytes: int  # code + constants of the models and the kernels (link map)
    ram_bytes: int  # their .data + .bss


@dataclass
class LinuxRun:
    model: int
    outputs: list[np.ndarray]
    isas: list[int]
    mismatches: int


@dataclass
class LinuxResult:
    runs: list[LinuxRun]
    seconds: float


class LinuxUser:
    """Build and run for one Linux target ("aarch64" or "armhf") and QEMU CPU."""

    def __init__(self, target: str, cpu: str | None = None, cache: Path | None = None):
        if target not in LINUX_TARGETS:
            raise ValueError(f"unknown Linux target {target!r}; expected one of {', '.join(LINUX_TARGETS)}")
        self.spec = LINUX_TARGETS[target]
        need_linux_tools(target)
        # qemu-arm (32-bit) has no cortex-a53/a72 model: "max" is an ARMv8 core running AArch32.
        self.cpu = "" if target == "host" else cpu or ("cortex-a72" if target == "aarch64" else "max")
        cpu_flag = [f"-mcpu={self.cpu}"] if target == "aarch64" and self.cpu.startswith("cortex-") else []
        # -mcpu implies the architecture: with -march=armv8-a GCC rejects an
        # ARMv8.2 core (cortex-a76, the Pi 5) as a conflict
        arch = [f for f in self.spec.cflags if not (cpu_flag and f.startswith("-march="))]
        self.flags = [*arch, *cpu_flag, *OPT_FLAGS, "-ffunction-sections", "-fdata-sections",
                      "-fno-strict-aliasing"]
        self.cache = cache
        self._objects: TargetObjects | None = None

    @property
    def target(self) -> str:
        build = f"{self.spec.gcc} {' '.join(self.flags[:-3])}"
        return f"{self.spec.qemu} -cpu {self.cpu} ({build})" if self.spec.qemu else f"native ({build})"

    def objects(self) -> TargetObjects:
        if self._objects is None:
            self._objects = target_objects(self.spec.gcc, self.flags, HARNESS_SOURCES, self.cache)
        return self._objects

    def build(self, exports: Sequence[Export], work: Path) -> Program:
        work.mkdir(parents=True, exist_ok=True)
        objs = self.objects()
        model_objs = compile_models(self.spec.gcc, self.flags, exports, work, hooks=False)
        exe = work / "driver"
        cmap = work / "driver.map"
        run_tool(
            [self.spec.gcc, *self.flags, "-static", "-Wl,--gc-sections", f"-Wl,-Map={cmap}",
             *map(str, objs.harness), *map(str, model_objs), str(objs.library), "-o", str(exe)],
            what="linking the driver",
        )
        names = {p.name for p in model_objs if p.name != "harness_models.o"}
        flash, ram = _map_sizes(cmap.read_text(errors="replace"), names, objs.library.name)
        return Program(exe, work, list(exports), flash, ram)

    def run(self, prog: Program, records: Sequence[Record], timeout: float = 900.0) -> LinuxResult:
        _write_records(prog.work / INPUT_FILE, prog.exports, records)
        for name in (OUTPUT_FILE, REPORT_FILE):
            (prog.work / name).unlink(missing_ok=True)
        cmd = [self.spec.qemu, "-cpu", self.cpu, str(prog.exe)] if self.spec.qemu else [str(prog.exe)]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=prog.work, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise EmulationRunError(f"QEMU did not finish within {timeout:.0f} s: {' '.join(cmd)}") from exc
        seconds = time.monotonic() - start
        rp = prog.work / REPORT_FILE
        report = parse_report(rp.read_text() if rp.exists() else "")
        if proc.returncode != 0 or report.done != len(records):
            raise EmulationRunError(
                f"the driver stopped (exit {proc.returncode}, {len(report.runs)} of {len(records)} records done): "
                f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
            )
        outputs = read_outputs(prog.work / OUTPUT_FILE, prog.exports, records)
        runs = [
            LinuxRun(line.model, outs, line.isas, line.mismatches)
            for line, outs in zip(report.runs, outputs, strict=True)
        ]
        return LinuxResult(runs, seconds)


_MAP_ENTRY = re.compile(r"^ (\.[\w.$]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")


def _map_sizes(text: str, objects: set[str], library: str) -> tuple[int, int]:
    """(code + constants + data, data + bss) of the input sections that came
    from the model objects and the kernel library, per GNU ld's link map."""
    if "Linker script and memory map" not in text:
        raise BuildError("the link map has no memory map section")
    body = text.split("Linker script and memory map", 1)[1]
    # A long section name sits on a line of its own; join it with the next.
    body = re.sub(r"\n (\.[\w.$]+)\n\s+0x", r"\n \1 0x", body)
    flash = ram = 0
    for line in body.splitlines():
        m = _MAP_ENTRY.match(line)
        if not m:
            continue
        section, size, origin = m.group(1), int(m.group(3), 16), m.group(4).strip()
        name = Path(origin.split("(")[0]).name
        ours = name in objects or name == library
        if not ours or size == 0:
            continue
        if section.startswith((".text", ".rodata", ".data", ".sdata")):
            flash += size
        if section.startswith((".data", ".bss", ".sbss", ".sdata")):
            ram += size
    return flash, ram
