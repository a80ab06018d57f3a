"""Per-layer timing of a C-backend model: each step of the plan run alone.

Used by `python tools/bench.py --per-layer`.  Steps are timed in interleaved
rounds (every step once per round, medians over rounds) so that a burst of
load from elsewhere spreads over all layers instead of landing on one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._native import ffi, lib
from .backends.c import CModel


@dataclass
class LayerTime:
    index: int  # operator index in the model
    op: str
    output: tuple[int, ...]
    macs: int
    median_us: float

    @property
    def gmacs(self) -> float:
        return self.macs / (self.median_us * 1e3) if self.median_us > 0 and self.macs else 0.0


def profile_layers(model: CModel, inputs: list[np.ndarray], rounds: int = 15, min_us: float = 200.0) -> list[LayerTime]:
    """Median microseconds of each step, run on the arena state of `inputs`."""
    model.run(inputs)  # fills every intermediate tensor with real values
    plan = model.plan
    arena = model._arena_ptr
    c_steps = plan.c_plan.steps
    run_part = lib.trt_run_step_part
    # repeat each step enough times per round to be well above timer resolution
    reps = []
    for i in range(len(plan.steps)):
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < min_us * 1e-6 or n < 3:
            run_part(c_steps + i, arena, 0, 1)
            n += 1
        reps.append(n)
    samples: list[list[float]] = [[] for _ in plan.steps]
    for _ in range(rounds):
        for i, n in enumerate(reps):
            step = c_steps + i
            t0 = time.perf_counter()
            for _ in range(n):
                run_part(step, arena, 0, 1)
            samples[i].append((time.perf_counter() - t0) / n * 1e6)
    graph = plan.graph
    out = []
    for i, step in enumerate(plan.steps):
        op = graph.operators[plan.step_ops[i]]
        out.append(
            LayerTime(
                index=op.index,
                op=op.opcode,
                output=graph.tensors[step.output].shape,
                macs=step.macs,
                median_us=float(np.median(samples[i])),
            )
        )
    _ = ffi  # the steps are cffi pointers
    return out


def format_layers(name: str, layers: list[LayerTime]) -> str:
    total = sum(layer.median_us for layer in layers) or 1.0
    lines = [
        f"{name}: per layer (each step run alone, median of interleaved rounds)",
        f"{'#':>3} {'op':<20} {'output':<18} {'MACs':>11} {'us':>9} {'GMAC/s':>7} {'share':>6}",
    ]
    for layer in layers:
        lines.append(
            f"{layer.index:>3} {layer.op:<20} {str(list(layer.output)):<18} {layer.macs:>11,} "
            f"{layer.median_us:>9.2f} {layer.gmacs:>7.2f} {100 * layer.median_us / total:>5.1f}%"
        )
    macs = sum(layer.macs for layer in layers)
    lines.append(f"    {'sum':<20} {'':<18} {macs:>11,} {total:>9.2f} {macs / (total * 1e3):>7.2f}")
    return "\n".join(lines)
