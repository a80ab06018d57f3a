"""`python -m runtime.validate MODEL --board NAME --emulate`: the measured
figures next to the estimates, and budgets judged on the measurements too."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def add_emulation(r: dict[str, Any], model: str | Path, board: Any, num_inputs: int = 3) -> None:
    """Run the emulation for a validate report `r` and add r["emulation"].

    The verdict r["fits"] then comes from the measurements where there are
    some (flash, RAM + stack, and latency = instructions x cpi on Cortex-M)
    and from the estimates for the rest (latency on qemu-user targets); it is
    False whenever the emulated outputs differ from the host's."""
    from ..boards import Board, load_board
    from . import emulate

    b = board if isinstance(board, Board) else load_board(board)
    res = emulate(model, b, num_inputs=num_inputs)
    em = res.as_json()
    mcu = b.kind == "mcu"
    ram_used = res.ram_bytes + (res.stack_bytes or 0)
    budgets = [
        {"name": "ram", "used": ram_used, "limit": b.ram_available, "ok": ram_used <= b.ram_available},
        {"name": "flash", "used": res.flash_bytes, "limit": b.flash_available, "ok": res.flash_bytes <= b.flash_available},
    ]
    latency_limit = next(x["limit"] for x in r["budgets"] if x["name"] == "latency_ms")
    if res.latency_ms_est is not None:
        budgets.append(
            {"name": "latency_ms", "used": res.latency_ms_est, "limit": latency_limit,
             "ok": res.latency_ms_est <= latency_limit}
        )
    em["budgets"] = budgets
    em["fits"] = res.bit_exact and all(x["ok"] for x in budgets)
    em["estimates"] = {
        "flash_bytes": r["flash_bytes"],
        "ram_bytes": r["ram_bytes"],
        "stack_bytes": _kernel_stack_estimate() if mcu else None,
        "cycles": r["cycles"],
        "latency_ms": r["latency_ms"],
    }
    em["model_file_bytes"] = Path(model).stat().st_size
    em["cpi"] = b.cycle_model.cpi
    r["emulation"] = em
    measured = {x["name"] for x in budgets}
    estimated_ok = all(x["ok"] for x in r["budgets"] if x["name"] not in measured)
    r["fits"] = bool(em["fits"] and estimated_ok)


def _kernel_stack_estimate() -> int:
    from ..validate import KERNEL_STACK_BYTES

    return KERNEL_STACK_BYTES


def _n(v: float | int | None, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:,.0f}{unit}"


def format_emulation(r: dict[str, Any]) -> str:
    em = r["emulation"]
    est = em["estimates"]
    exact = "bit-exact with" if em["bit_exact"] else "DIFFERENT from"
    lines = [
        "",
        f"emulated on {em['target']}",
        f"  outputs      {exact} the host C backend on {em['inputs']} random inputs"
        + (f" ({em['mismatch']})" if em["mismatch"] else ""),
        f"  flash        {em['flash_bytes']:>12,} B measured  (estimate {est['flash_bytes']:,} B; "
        f"model file {em['model_file_bytes']:,} B)",
        f"  static RAM   {em['ram_bytes']:>12,} B measured  (.data + .bss, the {r['arena_bytes']:,} B arena included)",
    ]
    if em["stack_bytes"] is not None:
        lines.append(
            f"  stack        {em['stack_bytes']:>12,} B measured  (estimate {_n(est['stack_bytes'])} B; RAM estimate "
            f"{est['ram_bytes']:,} B, measured {em['ram_bytes'] + em['stack_bytes']:,} B)"
        )
    if em["instructions"] is not None:
        lines.append(
            f"  instructions {em['instructions']:>12,}    x cpi {em['cpi']:g} = {em['cycles_est']:,} cycles = "
            f"{em['latency_ms_est']:.3f} ms  (estimate {est['latency_ms']:.3f} ms)"
        )
    else:
        lines.append("  instructions          n/a    (qemu-user: see python -m runtime.emulation.a_class)")
    if em["steps"]:
        lines += ["", f"  {'step':>4} {'op':<20} {'instructions':>13} {'instr/MAC':>10}"]
        layers = r["layers"]
        for s in em["steps"]:
            macs = layers[s["index"]]["macs"] if s["index"] < len(layers) else 0
            per_mac = f"{s['instructions'] / macs:>10.2f}" if macs else f"{'':>10}"
            lines.append(f"  {s['index']:>4} {s['op']:<20} {s['instructions']:>13,} {per_mac}")
    lines.append("")
    for b in em["budgets"]:
        verdict = "PASS" if b["ok"] else "FAIL"
        if b["name"] == "latency_ms":
            lines.append(f"latency  {b['used']:>10.3f} ms of {b['limit']:.3f} ms budget   {verdict}  (measured)")
        else:
            lines.append(f"{b['name']:<7}  {b['used']:>10,} B of {b['limit']:,} B available  {verdict}  (measured)")
    lines += ["", "verdict from the measured figures (the estimates above where nothing was measured)"]
    return "\n".join(lines)
