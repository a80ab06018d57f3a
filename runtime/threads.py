"""How many threads share each step of a plan (num_threads > 1).

A split step wakes the pool's workers and meets them at a barrier; the pool
spins briefly before sleeping (csrc/host/thread_pool.c), so that costs about
a microsecond while steps follow each other, but a step still has to be
large enough for half of it to save more than that.  The thresholds come
from `python tools/calibrate_threads.py` (each splittable step of the four
MLPerf Tiny models timed alone, whole vs in two parts, interleaved) on this
project's shared 2-core x86 VM: convolutions and depthwise convolutions of
>= 20,736 MACs gained 1.15-1.8x from two threads (10,368: 1.11-1.15x);
FULLY_CONNECTED steps of 16,384 MACs lost (0.8-1.0x) and of 81,920 gained
only 1.2x at the step and nothing over the whole ad01 model.  With the
thresholds below, whole models, two threads vs one, interleaved: kws 1.74x,
vww 1.46x, resnet 1.66x, ad01 0.96x (no step splits: it stays on one thread).
Checked again on whole models on a 2-vCPU Intel Xeon (`python
tools/calibrate_threads.py --sweep 5000,10000,20000,40000`, two threads vs
one): 10,000 was the best or level with it on kws, vww and resnet (1.26x,
1.31x, 1.32x; 40,000 gave 1.08x, 1.18x, 1.29x).  A plan in which no step
splits (ad01) runs on the caller's thread, not through the pool.
Re-run the tool on an idle Pi 4/5 before trusting these there.
"""

from __future__ import annotations

from ._native import lib
from .ops import Step
from .plan import Plan

# Smallest share of a step worth a thread, by kind (see above).
MIN_MACS_PER_PART = {
    lib.TRT_OP_CONV2D: 10_000,
    lib.TRT_OP_DEPTHWISE_CONV2D: 10_000,
    lib.TRT_OP_FULLY_CONNECTED: 50_000,
}
SPLITTABLE = set(MIN_MACS_PER_PART)


def splittable(step: Step) -> bool:
    """Whether the C executor can share the step's output among threads (an
    in-place depthwise convolution sweeps the image per channel block: no)."""
    if step.kind not in SPLITTABLE:
        return False
    return not (step.kind == lib.TRT_OP_DEPTHWISE_CONV2D and step.params.in_place)


def parts_for(macs: int, kind: int, threads: int) -> int:
    if threads <= 1 or kind not in SPLITTABLE:
        return 1
    return max(1, min(threads, macs // MIN_MACS_PER_PART[kind]))


def assign_parts(plan: Plan, threads: int) -> list[int]:
    """Set trt_step.parts on the materialised plan; returns the parts per step."""
    parts = [parts_for(step.macs, step.kind, threads) if splittable(step) else 1 for step in plan.steps]
    c_steps = plan.c_plan.steps
    for i, n in enumerate(parts):
        c_steps[i].parts = n
    return parts
