"""python -m runtime.emulation MODEL... --board NAME [--board NAME...]: one
table row per (model, board), measured under QEMU (the table in the README
comes from here).

Exit codes: 0 every run bit-exact, 1 a run differed from the host backend,
2 bad input or a missing tool (the message names the Debian package).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import TinyRTError
from . import EmulationResult, emulate


def _row(model: Path, board: str, em: EmulationResult) -> list[str]:
    from ..boards import load_board

    b = load_board(board)
    size = model.stat().st_size
    instr = "n/a" if em.instructions is None else f"{em.instructions:,}"
    ms = "n/a" if em.latency_ms_est is None else f"{em.latency_ms_est:,.1f}"
    stack = "n/a" if em.stack_bytes is None else f"{em.stack_bytes:,}"
    return [
        model.stem,
        f"{b.name} ({b.core})",
        f"{em.flash_bytes:,}",
        f"{em.flash_bytes / size:.2f}",
        f"{em.ram_bytes:,}",
        stack,
        instr,
        ms,
        "yes" if em.bit_exact else "NO",
        f"{em.emulation_seconds:.2f}",
    ]


HEADER = [
    "model",
    "board (core)",
    "flash B",
    "flash / .tflite",
    "static RAM B",
    "stack B",
    "instructions",
    "ms at cpi",
    "bit-exact",
    "QEMU s",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.emulation", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help=".tflite files")
    p.add_argument("--board", action="append", required=True, help="board profile (repeatable)")
    p.add_argument("--inputs", type=int, default=3, help="random inputs per model (default 3)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    rows = []
    exact = True
    try:
        for board in args.board:
            for model in args.models:
                r = emulate(model, board, num_inputs=args.inputs)
                exact &= r.bit_exact
                rows.append(_row(Path(model), board, r))
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    except (TinyRTError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "|".join("---" if i < 2 else "---:" for i in range(len(HEADER))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
