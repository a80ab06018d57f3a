"""python -m runtime.validate MODEL --board NAME: will this model fit this board?

The report comes from the plan the C backend really runs: its arena (offsets
from tensor lifetimes, in-place choices included), its constant data, and a
per-layer cycle estimate from the board profile's cycle model.  Budgets:
RAM and flash (each minus the board's reserve) and latency.

Exit codes: 0 every budget passes, 1 a budget fails, 2 bad input (unreadable
model, unknown board, broken profile, unsupported operator).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TinyRTError
from .graph import Graph, parse_model
from .plan import Plan, build_plan

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# Stack the kernels use on a microcontroller, above the arena: fixed-size
# accumulator chunks plus call frames.  Measured under emulation (python -m
# runtime.validate --emulate: stack painting around model_invoke, gcc 12.2
# -O2): at most 1,060 B on Cortex-M4/M7/M33 and 1,232 B on Cortex-M0+ over
# the shared models (resnet, kws, vww); 1.5 KB leaves headroom for kernel
# changes.  tests/emulation checks every model stays within it.
KERNEL_STACK_BYTES = 1536

# Flash taken by the kernels a model uses: .text of each csrc/ object built
# with arm-none-eabi-gcc 12.2 -Os -mcpu=cortex-m4 -mthumb -ffunction-sections
# (arm-none-eabi-size, re-measured after the micro-kernel tables landed).
# The exported firmware calls kernels directly, so only these are linked.
CODE_BYTES = {
    "CONV_2D": 2680,
    "DEPTHWISE_CONV_2D": 1542,
    "FULLY_CONNECTED": 418,
    "AVERAGE_POOL_2D": 722,  # both pooling kernels share one object
    "MAX_POOL_2D": 722,
    "ADD": 780,
    "MUL": 356,
    "SOFTMAX": 884,
    "PAD": 314,
    "CONCATENATION": 64,
    "MEAN": 380,
    "QUANTIZE": 526,
    "DEQUANTIZE": 108,
    "LUT": 28,  # the table itself is counted with the constants
}
# Always linked: the portable micro-kernel table (2,430) and its dispatch (70),
# memcpy/memset (~400).
EXECUTOR_CODE_BYTES = 2430 + 70 + 400
# Cores with the DSP extension also link the SMLAD table (ukernels_cortex_m_dsp.o).
DSP_TABLE_CODE_BYTES = 9878
# TFLite's reference FULLY_CONNECTED rescales in double: a core without a
# double-precision FPU links libgcc's soft-double routines (dmul, conversions);
# about 3.5 KB, the gap between the summed objects and the measured .text of
# the emulated kws firmware (23.4 KB).
SOFT_DOUBLE_CODE_BYTES = 3500

_KIND_BY_OPCODE = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "fully_connected",
}


@dataclass
class LayerReport:
    index: int
    op: str
    inputs: list[list[int]]
    output: list[int]
    macs: int
    weight_bytes: int
    live_bytes: int  # activation bytes in use while the layer runs (scratch included)
    cycles: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _constant_bytes(plan: Plan) -> tuple[int, int]:
    """(weight bytes, other constant bytes) the plan keeps: weights and biases
    vs multipliers, shifts, tables and parameter structs."""
    weights = sum(s.weight_bytes for s in plan.steps)
    persistent = 0
    for step in plan.steps:
        for obj in step.keep:
            if isinstance(obj, np.ndarray):
                persistent += obj.nbytes
        persistent += 128  # the parameter struct and its step entry
    # Weight arrays are counted in `weights`; do not count them twice.
    return weights, max(persistent - weights, 0)


def _layers(plan: Plan, board: Any) -> list[LayerReport]:
    graph = plan.graph
    out: list[LayerReport] = []
    for i, step in enumerate(plan.steps):
        op = graph.operators[plan.step_ops[i]]
        live = sum(b.size for b in plan.buffers if b.first <= i <= b.last)
        out_t = graph.tensors[step.output]
        kind = _KIND_BY_OPCODE.get(op.opcode, "elementwise")
        cycles = board.cycle_model.estimate_cycles(kind, step.macs, out_t.size)
        out.append(
            LayerReport(
                index=op.index,
                op=op.opcode,
                inputs=[list(graph.tensors[t].shape) for t in op.inputs if t >= 0 and not graph.tensors[t].is_constant],
                output=list(out_t.shape),
                macs=step.macs,
                weight_bytes=step.weight_bytes,
                live_bytes=live,
                cycles=float(cycles),
            )
        )
    return out


def _code_bytes(graph: Graph, plan: Plan, board: Any) -> int:
    used = {graph.operators[i].opcode for i in plan.step_ops}
    lut_ops = {"LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH", "RELU_0_TO_1"}
    kernels = {("LUT" if o in lut_ops else o) for o in used}
    if "MAX_POOL_2D" in kernels and "AVERAGE_POOL_2D" in kernels:
        kernels.discard("MAX_POOL_2D")  # one object holds both
    code = EXECUTOR_CODE_BYTES + sum(CODE_BYTES.get(k, 600) for k in kernels)
    features = set(getattr(board, "isa_features", ()) or ())
    if board.kind == "mcu":
        if "dsp" in features:
            code += DSP_TABLE_CODE_BYTES
        if "FULLY_CONNECTED" in kernels and "fpu-dp" not in features:
            code += SOFT_DOUBLE_CODE_BYTES
    return code


def report(model: str | Path | bytes, board: Any, latency_budget_ms: float | None = None) -> dict[str, Any]:
    """The fit report as a dict (the --json object).  board: a name, a path to
    a .toml profile, or a runtime.boards.Board."""
    from .boards import Board, load_board

    b = board if isinstance(board, Board) else load_board(board)
    graph = parse_model(model if isinstance(model, (bytes, bytearray)) else Path(model))
    # The plan is made on this machine: its SIMD weight layouts (AVX2 panels)
    # count only for an x86-64 board, as runtime.export leaves them out too.
    host = b.core == "x86-64"
    # The plan the board would run: its sparse choices use the kernels it has
    # (the portable sparse kernels off x86), as the export does.
    from .sparse import SparsePolicy

    sparse = SparsePolicy("auto") if host else SparsePolicy("auto", isa="portable")
    # In-place depthwise blocks: a microcontroller trades speed for RAM; a
    # SIMD board (Pi, host) does not take the blocks its kernels run slowly.
    dw_policy = "memory" if b.kind == "mcu" else "active" if host else "speed"
    plan = build_plan(graph, materialize=False, host_layouts=host, sparse=sparse, dw_policy=dw_policy)
    layers = _layers(plan, b)
    weights, persistent = _constant_bytes(plan)
    code = _code_bytes(graph, plan, b)
    arena = plan.arena_bytes
    if b.kind == "mcu":
        # Constants are `const`: weights, multipliers and tables stay in flash.
        ram = arena + KERNEL_STACK_BYTES
        flash = weights + persistent + code
    else:
        # On Linux the weights are read into memory (page cache) as well.
        ram = arena + weights + persistent
        flash = weights + persistent + code
    cycles = sum(layer.cycles for layer in layers)
    # Judged on the reported (rounded) figure so that report and verdict agree.
    latency_ms = round(cycles / b.clock_hz * 1e3, 4)
    budget_ms = float(latency_budget_ms) if latency_budget_ms is not None else float(b.latency_budget_ms)
    budgets = [
        {"name": "ram", "used": ram, "limit": b.ram_available, "ok": ram <= b.ram_available},
        {"name": "flash", "used": flash, "limit": b.flash_available, "ok": flash <= b.flash_available},
        {"name": "latency_ms", "used": latency_ms, "limit": budget_ms, "ok": latency_ms <= budget_ms},
    ]
    return {
        "model": str(model) if not isinstance(model, (bytes, bytearray)) else "<bytes>",
        "board": b.name,
        "board_title": b.title,
        "core": b.core,
        "clock_hz": b.clock_hz,
        "arena_bytes": arena,
        "persistent_bytes": persistent,
        "weight_bytes": weights,
        "code_bytes_estimate": code,
        "ram_bytes": ram,
        "flash_bytes": flash,
        "macs": plan.macs,
        "cycles": round(cycles),
        "latency_ms": latency_ms,
        "fits": all(x["ok"] for x in budgets),
        "budgets": budgets,
        "layers": [layer.as_dict() for layer in layers],
        "memory_choices": {
            "in_place_depthwise": sorted(plan.step_ops[i] for i in plan.memory.choices.dw_block),
            "direct_conv": sorted(plan.step_ops[i] for i in plan.memory.choices.direct_conv),
            "in_place_elementwise": sorted(plan.step_ops[i] for i in plan.memory.choices.inplace),
        },
        "_plan": plan,
    }


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB" if n >= 1024 else f"{int(n)} B"


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"model {r['model']} on {r['board_title']} ({r['board']}, {r['core']} at {r['clock_hz'] / 1e6:g} MHz)",
        "",
        f"{'#':>3} {'op':<20} {'output':<16} {'MACs':>11} {'weights':>9} {'live':>9} {'est. cycles':>12}",
    ]
    for layer in r["layers"]:
        lines.append(
            f"{layer['index']:>3} {layer['op']:<20} {str(layer['output']):<16} {layer['macs']:>11,} "
            f"{layer['weight_bytes']:>9,} {layer['live_bytes']:>9,} {layer['cycles']:>12,.0f}"
        )
    lines += [
        "",
        f"activation arena   {r['arena_bytes']:>12,} B",
        f"persistent         {r['persistent_bytes']:>12,} B  (multipliers, shifts, folded biases, tables)",
        f"weights            {r['weight_bytes']:>12,} B",
        f"code (estimate)    {r['code_bytes_estimate']:>12,} B",
        f"MACs               {r['macs']:>12,}",
        "",
    ]
    for b in r["budgets"]:
        verdict = "PASS" if b["ok"] else "FAIL"
        if b["name"] == "latency_ms":
            margin = b["limit"] - b["used"]
            lines.append(
                f"latency  {b['used']:>10.3f} ms of {b['limit']:.3f} ms budget   {verdict}  (margin {margin:+.3f} ms)"
            )
        else:
            margin = b["limit"] - b["used"]
            lines.append(
                f"{b['name']:<7}  {_kb(b['used']):>12} of {_kb(b['limit']):>10} available  {verdict}  "
                f"(margin {'+' if margin >= 0 else '-'}{_kb(abs(margin))})"
            )
    if "emulation" in r:  # --emulate: the measured figures and budgets (runtime.emulation.report)
        from .emulation.report import format_emulation

        lines.append(format_emulation(r))
    lines.append("")
    lines.append("FITS" if r["fits"] else "DOES NOT FIT")
    return "\n".join(lines)


def plot_memory(r: dict[str, Any], path: str) -> None:
    """Arena occupancy over the op sequence: one bar per live buffer."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise TinyRTError("--plot needs matplotlib: pip install matplotlib") from exc
    plan: Plan = r["_plan"]
    n = len(plan.steps)
    fig, ax = plt.subplots(figsize=(max(6.0, n * 0.35), 4.5))
    cmap = plt.get_cmap("tab20")
    for k, b in enumerate(plan.buffers):
        first, last = max(b.first, -0.5), min(b.last, n - 0.5)
        ax.add_patch(
            plt.Rectangle((first - 0.4, b.offset), last - first + 0.8, b.size, color=cmap(k % 20), alpha=0.8)
        )
    ax.set_xlim(-1, n)
    ax.set_ylim(0, plan.arena_bytes * 1.05)
    ax.axhline(plan.arena_bytes, color="k", linestyle="--", linewidth=0.8)
    ax.set_xlabel("step (operator in run order)")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"{Path(str(r['model'])).name}: arena {plan.arena_bytes:,} B on {r['board']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.validate", description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="path to a .tflite model")
    p.add_argument("--board", help="board profile name (see --list-boards) or a path to your own .toml")
    p.add_argument("--latency-budget-ms", type=float, help="override the board's default latency budget")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--plot", metavar="PNG", help="draw arena occupancy over the op sequence (needs matplotlib)")
    p.add_argument("--list-boards", action="store_true", help="list the shipped board profiles")
    p.add_argument(
        "--emulate",
        action="store_true",
        help="also build the model for the board and run it under QEMU: bit-exactness, measured flash/RAM/stack/instructions",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if args.list_boards:
            from .boards import list_boards_table

            print(list_boards_table())
            return EXIT_OK
        if not args.model or not args.board:
            parser.print_usage(sys.stderr)
            print("error: MODEL and --board are required (or --list-boards)", file=sys.stderr)
            return EXIT_USAGE
        if args.latency_budget_ms is not None and not args.latency_budget_ms > 0:
            raise ValueError("--latency-budget-ms must be positive")
        r = report(args.model, args.board, args.latency_budget_ms)
        if args.emulate:
            from .emulation.report import add_emulation

            add_emulation(r, args.model, args.board)
        if args.plot:
            plot_memory(r, args.plot)
        public = {k: v for k, v in r.items() if not k.startswith("_")}
        if args.json:
            print(json.dumps(public))
        else:
            print(format_report(public))
            if args.plot:
                print(f"memory plot written to {args.plot}")
        return EXIT_OK if r["fits"] else EXIT_FAIL
    except (TinyRTError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
