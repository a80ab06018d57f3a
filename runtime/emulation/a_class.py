"""Instructions per MAC of single layers on Raspberry Pi cores (aarch64),
counted under qemu-user.

    python -m runtime.emulation.a_class [--board rpi-4b|rpi-5] [--layers N,...]

Debian's QEMU 7.2 has no TCG plugins, but qemu-user can log every executed
translation block (-d exec,nochain), and with -singlestep every block is one
guest instruction: the log is the instruction trace.  Each line names the
function the instruction is in, so the instructions of one model_invoke are
the lines between the harness's two plat_ticks() calls around it (the
harness runs each record under the best table there first; the other tables
run after and are not counted).

The layers are runtime.emulation.layers' MLPerf Tiny shapes, cut out of the
shipped models, exported for the board and linked with csrc/ and the
harness into one static binary (runtime.emulation.linux).  The board's QEMU
CPU picks the table: cortex-a72 (Pi 4) runs NEON, cortex-a76 (Pi 5) the
dot-product (SDOT) kernels.  Every output is checked against the host C
backend.  Counts are instructions, not cycles: an A72 retires up to three
per cycle.

Exit codes: 0 all bit-exact, 1 a difference, 2 a missing tool or bad input.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TinyRTError
from .build import INPUT_FILE, OUTPUT_FILE, Record, read_outputs, write_records
from .layers import LAYERS, LayerSpec, layers

TICKS = "plat_ticks"


@dataclass
class ALayer:
    name: str
    macs: int
    instructions: int
    bit_exact: bool

    @property
    def per_mac(self) -> float:
        return self.instructions / self.macs if self.macs else 0.0


def invoke_counts(lines: Iterable[str]) -> list[int]:
    """Instructions between each pair of plat_ticks() calls in a qemu
    -singlestep -d exec trace: one count per timed invoke."""
    counts: list[int] = []
    inside = False  # in plat_ticks
    calls = 0  # plat_ticks calls seen
    n = 0
    for line in lines:
        if not line.startswith("Trace"):
            continue
        here = line.rstrip().endswith(" " + TICKS)
        if here and not inside:
            calls += 1
            if calls % 2 == 0:
                counts.append(n)
        elif not here and inside and calls % 2 == 1:
            n = 0  # left the first call: the invoke starts
        if not here and calls % 2 == 1:
            n += 1
        inside = here
    return counts


def count_run(qemu: str, cpu: str, exe: Path, work: Path, timeout: float = 1800.0) -> list[int]:
    """Run the driver with the instruction trace streamed through a FIFO."""
    fifo = work / "trace.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    result: list[int] = []
    failure: list[BaseException] = []

    def reader() -> None:
        try:
            with open(fifo, errors="replace") as f:
                result.extend(invoke_counts(f))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            failure.append(exc)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    cmd = [qemu, "-cpu", cpu, "-singlestep", "-d", "exec,nochain", "-D", str(fifo), str(exe)]
    try:
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TinyRTError(f"the traced run did not finish within {timeout:.0f} s") from exc
    finally:
        t.join(timeout=60)
        fifo.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise TinyRTError(f"the traced driver failed (exit {proc.returncode}): {proc.stderr.strip()}")
    if failure:
        raise TinyRTError(f"reading the trace failed: {failure[0]}")
    return result


def measure(board: str = "rpi-4b", specs: tuple[LayerSpec, ...] = LAYERS, seed: int = 0) -> tuple[str, list[ALayer]]:
    """(target description, per-layer counts) for the board's aarch64 CPU."""
    from ..backends.c import CModel
    from ..boards import load_board
    from ..export import generate
    from . import random_inputs
    from .linux import LinuxUser

    b = load_board(board)
    if b.emulation.target != "qemu-aarch64":
        raise TinyRTError(f"board {b.name} is not an aarch64 Linux board (its emulation target: {b.emulation.target})")
    runner = LinuxUser("aarch64", b.emulation.cpu or None)
    cut = layers(specs)
    exports, inputs, host = [], [], []
    for i, layer in enumerate(cut):
        exp = generate(
            layer.graph,
            name=f"layer{i}",
            board=b,
            fc_fixed_point=layer.spec.fc_fixed_point,
            sparse="off",
            choices=lambda g, s, v, c=layer.choices: c.copy(),
            source=layer.spec.name,
        )
        exports.append(exp)
        x = random_inputs(exp.inputs, 1, seed + i)[0]
        inputs.append(x)
        host.append(CModel(layer.graph, fc_fixed_point=layer.spec.fc_fixed_point, sparse="off").run(x))
    records = [Record(i, x) for i, x in enumerate(inputs)]
    with tempfile.TemporaryDirectory(prefix="tinyrt-a-class-") as tmp:
        work = Path(tmp)
        prog = runner.build(exports, work)
        write_records(work / INPUT_FILE, exports, records)
        counts = count_run(runner.spec.qemu, runner.cpu, prog.exe, work)
        outputs = read_outputs(work / OUTPUT_FILE, exports, records)
    if len(counts) != len(records):
        raise TinyRTError(f"the trace has {len(counts)} timed invokes for {len(records)} records")
    out = []
    for layer, n, got, want in zip(cut, counts, outputs, host, strict=True):
        exact = all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
        out.append(ALayer(layer.spec.name, layer.spec.macs, n, exact))
    return runner.target, out


def format_table(target: str, rows: list[ALayer]) -> str:
    lines = [f"instructions per MAC, one model_invoke of each layer ({target})", ""]
    lines.append(f"{'layer':44s} {'MACs':>10s} {'instructions':>13s} {'per MAC':>8s}  exact")
    for r in rows:
        lines.append(
            f"{r.name:44s} {r.macs:10,d} {r.instructions:13,d} {r.per_mac:8.3f}  {'yes' if r.bit_exact else 'NO'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.emulation.a_class", description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="rpi-4b", help="an aarch64 board profile (rpi-4b: NEON, rpi-5: SDOT)")
    p.add_argument("--layers", help="comma-separated indices into the layer list (default: all)")
    args = p.parse_args(argv)
    specs = LAYERS
    try:
        if args.layers:
            specs = tuple(LAYERS[int(i)] for i in args.layers.split(","))
        target, rows = measure(args.board, specs)
    except (TinyRTError, ValueError, IndexError) as exc:
        print(f"a_class: {exc}", file=sys.stderr)
        return 2
    print(format_table(target, rows))
    return 0 if all(r.bit_exact for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
