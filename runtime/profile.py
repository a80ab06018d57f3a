"""Per-layer timing of a C-backend model: each step of the plan run alone.

Used by `python tools/bench.py --per-layer`.  Steps are timed in interleaved
rounds (every step once per round, medians over rounds) so that a burst of
load from elsewhere spreads over all layers instead of landing on one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    peer_us: float | None = None  # the same operator alone on a peer (tools/bench.py: XNNPACK)

    @property
    def gmacs(self) -> float:
        return self.macs / (self.median_us * 1e3) if self.median_us > 0 and self.macs else 0.0


def step_runner(model: CModel, i: int, parts: int | None = None) -> Callable[[], object]:
    """A call that runs step i of the model's plan alone: whole on this
    thread, or through the model's thread pool in `parts` parts (default:
    the parts the planner gave it) when the model has one."""
    c_steps = model.plan.c_plan.steps
    arena = model._arena_ptr
    pool = model._pool
    if parts is None:
        parts = int(c_steps[i].parts) if pool is not None else 1
    if parts <= 1 or pool is None:
        step = c_steps + i
        run_part = lib.trt_run_step_part
        return lambda: run_part(step, arena, 0, 1)
    # a one-step plan over a copy of the step carrying the wanted parts
    step_copy = ffi.new("trt_step *")
    step_copy[0] = c_steps[i]
    step_copy.parts = parts
    one = ffi.new("trt_plan *")
    one.num_steps, one.steps = 1, step_copy
    keep = (step_copy, one)
    pool_run = lib.trt_pool_run_plan
    return lambda: pool_run(pool, keep[1], arena, ffi.NULL)


def time_calls(calls: list[Callable[[], object]], rounds: int = 15, min_us: float = 200.0) -> list[float]:
    """Median microseconds per call of each, timed in interleaved rounds
    (each repeated to well above the timer's resolution).  Each timed block
    follows an untimed one of the same call: an AVX-512 core that ran
    lighter code (a round's small last layers) runs the next heavy 512-bit
    loop slowly for a few hundred microseconds while its power state
    changes, every round (Ice Lake: resnet's first layer read 2.5x its
    time, on tinyrt and on XNNPACK)."""
    reps = []
    for call in calls:
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < min_us * 1e-6 or n < 3:
            call()
            n += 1
        reps.append(n)
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for i, (call, n) in enumerate(zip(calls, reps, strict=True)):
            for _ in range(n):  # untimed: see below
                call()
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            samples[i].append((time.perf_counter() - t0) / n * 1e6)
    return [float(np.median(s)) for s in samples]


def profile_layers(model: CModel, inputs: list[np.ndarray], rounds: int = 15, min_us: float = 200.0) -> list[LayerTime]:
    """Median microseconds of each step, run on the arena state of `inputs`
    (with the model's threads: split steps go through its pool)."""
    model.run(inputs)  # fills every intermediate tensor with real values
    plan = model.plan
    medians = time_calls([step_runner(model, i) for i in range(len(plan.steps))], rounds, min_us)
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
                median_us=medians[i],
            )
        )
    return out


def format_layers(name: str, layers: list[LayerTime], peer: str = "") -> str:
    """The per-layer table; with `peer`, two more columns: that peer's time
    for the same operator cut out of the model, and peer / tinyrt."""
    total = sum(layer.median_us for layer in layers) or 1.0
    head = f"{'#':>3} {'op':<20} {'output':<18} {'MACs':>11} {'us':>9} {'GMAC/s':>7} {'share':>6}"
    if peer:
        head += f" {peer + ' us':>11} {'ratio':>6}"
    lines = [f"{name}: per layer (each step run alone, median of interleaved rounds)", head]
    for layer in layers:
        line = (
            f"{layer.index:>3} {layer.op:<20} {str(list(layer.output)):<18} {layer.macs:>11,} "
            f"{layer.median_us:>9.2f} {layer.gmacs:>7.2f} {100 * layer.median_us / total:>5.1f}%"
        )
        if peer:
            p = layer.peer_us
            line += f" {p:>11.2f} {p / layer.median_us:>5.2f}x" if p and layer.median_us else f" {'n/a':>11} {'':>6}"
        lines.append(line)
    macs = sum(layer.macs for layer in layers)
    tail = f"    {'sum':<20} {'':<18} {macs:>11,} {total:>9.2f} {macs / (total * 1e3):>7.2f}"
    peers = [layer.peer_us for layer in layers]
    if peer and all(peers):
        peer_total = sum(p for p in peers if p)
        tail += f" {'':>6} {peer_total:>11.2f} {peer_total / total:>5.2f}x"
    lines.append(tail)
    return "\n".join(lines)
