"""How many threads share each step of a plan (num_threads > 1).

Waking the pool's workers and meeting at the barrier costs microseconds per
step, so only steps with enough multiply-accumulates are split, and never
into parts smaller than MIN_MACS_PER_PART.  The value is an estimate, not yet
a measurement: this project's only machine is a shared 2-core x86 host where
other jobs keep both cores busy, and there two threads were slower than one
(kws 0.47 -> 0.80 ms, vww 2.5 -> 3.1 ms, resnet 1.1 -> 1.6 ms in one
interleaved run at load average 8).  Calibrate it on an idle Pi 4/5.
"""

from __future__ import annotations

from ._native import lib
from .plan import Plan

MIN_MACS_PER_PART = 150_000
SPLITTABLE = {lib.TRT_OP_CONV2D, lib.TRT_OP_DEPTHWISE_CONV2D, lib.TRT_OP_FULLY_CONNECTED}


def parts_for(macs: int, kind: int, threads: int) -> int:
    if threads <= 1 or kind not in SPLITTABLE:
        return 1
    return max(1, min(threads, macs // MIN_MACS_PER_PART))


def assign_parts(plan: Plan, threads: int) -> list[int]:
    """Set trt_step.parts on the materialised plan; returns the parts per step."""
    parts = [parts_for(step.macs, step.kind, threads) for step in plan.steps]
    c_steps = plan.c_plan.steps
    for i, n in enumerate(parts):
        c_steps[i].parts = n
    return parts
