"""Measure where splitting a step over two threads starts to pay.

    python tools/calibrate_threads.py [--models kws,vww,resnet,ad01] [--rounds 15]

Every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED step of the models is
timed alone in interleaved rounds, whole on one thread and in two parts
through the thread pool (the same one-step plan `num_threads=2` runs), and
the table lists the speed-up by the step's multiply-accumulates.  The
threshold printed is the smallest MAC count from which every larger step
gains at least --gain; runtime/threads.py splits a step into parts of at
least MIN_MACS_PER_PART (by kind), i.e. half of that threshold for two
threads.
Run it on the board in question, idle: on a shared machine the pool's
workers compete with other jobs for the cores.

A step timed alone understates what splitting gains inside a model (between
isolated calls the workers fall asleep and each call pays their wake-up), so
the thresholds are then checked on whole models:

    python tools/calibrate_threads.py --sweep 5000,10000,20000 [--sweep-fc 20000,50000]

times each model on one thread and on two with each candidate
MIN_MACS_PER_PART for CONV_2D and DEPTHWISE_CONV_2D (--sweep) or for
FULLY_CONNECTED (--sweep-fc), the other kinds at runtime/threads.py's values,
all in interleaved rounds, and prints the speed-ups.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from runtime import threads  # noqa: E402
from runtime._native import lib  # noqa: E402
from runtime.backends.c import CModel  # noqa: E402
from runtime.graph import parse_model  # noqa: E402
from runtime.profile import step_runner, time_calls  # noqa: E402
from runtime.threads import splittable  # noqa: E402

MODELS = {
    "kws": "kws_ref_model.tflite",
    "vww": "vww_96_int8.tflite",
    "resnet": "pretrainedResnet_quant.tflite",
    "ad01": "ad01_int8.tflite",
}


def measure(name: str, path: Path, rounds: int) -> list[tuple[str, int, int, float, float]]:
    """(model, step, MACs, one-thread us, two-thread us) of each splittable step."""
    model = CModel(parse_model(path), num_threads=2)
    rng = np.random.default_rng(0)
    model.run([rng.integers(-128, 128, size=i.shape, dtype=i.dtype) for i in model.inputs])
    steps = [i for i, s in enumerate(model.plan.steps) if splittable(s) and s.macs > 0]
    calls = []
    for i in steps:
        calls += [step_runner(model, i, parts=1), step_runner(model, i, parts=2)]
    times = time_calls(calls, rounds=rounds)
    return [(name, i, model.plan.steps[i].macs, times[2 * j], times[2 * j + 1]) for j, i in enumerate(steps)]


def threshold(rows: list[tuple[str, int, int, float, float]], gain: float) -> int | None:
    """Smallest MACs from which every step (at or above it) gains `gain`."""
    ordered = sorted(rows, key=lambda r: r[2])
    for k, row in enumerate(ordered):
        if all(r[3] / r[4] >= gain for r in ordered[k:]):
            return row[2]
    return None


def sweep(names: list[str], candidates: list[int], kinds: tuple[int, ...], rounds: int) -> str:
    """Whole models, two threads with each candidate threshold for `kinds` vs one thread."""
    saved = dict(threads.MIN_MACS_PER_PART)
    lines = [f"{'model':7s} {'1 thread us':>12s} " + " ".join(f"{c:>9,d}" for c in candidates)]
    try:
        for name in names:
            path = ROOT / "tests" / "models" / MODELS[name]
            graph = parse_model(path)
            models = [CModel(graph, num_threads=1)]
            for c in candidates:
                threads.MIN_MACS_PER_PART.update({k: c for k in kinds})
                models.append(CModel(graph, num_threads=2))
                threads.MIN_MACS_PER_PART.update(saved)
            rng = np.random.default_rng(0)
            inputs = [rng.integers(-128, 128, size=i.shape, dtype=i.dtype) for i in models[0].inputs]
            # about 5 ms of runs per model and round: each model has its own
            # pool, whose workers spin a while after its last run, taking a
            # core from the next model's first runs
            calls = [lambda m=m, x=inputs: m.run(x) for m in models]
            med = time_calls(calls, rounds=rounds, min_us=5000.0)
            lines.append(f"{name:7s} {med[0]:12.2f} " + " ".join(f"{med[0] / t:8.2f}x" for t in med[1:]))
    finally:
        threads.MIN_MACS_PER_PART.update(saved)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="kws,vww,resnet,ad01", help="comma-separated: " + ",".join(MODELS))
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--gain", type=float, default=1.1, help="speed-up a split must give (default 1.1)")
    p.add_argument("--sweep", help="whole models: candidate MIN_MACS_PER_PART for CONV_2D and DEPTHWISE_CONV_2D")
    p.add_argument("--sweep-fc", help="whole models: candidate MIN_MACS_PER_PART for FULLY_CONNECTED")
    args = p.parse_args(argv)
    names = args.models.split(",")
    for name in names:
        if name not in MODELS:
            raise SystemExit(f"calibrate_threads.py: unknown model {name!r}: use {','.join(MODELS)}")
    if args.sweep or args.sweep_fc:
        spec, kinds = (
            (args.sweep, (lib.TRT_OP_CONV2D, lib.TRT_OP_DEPTHWISE_CONV2D))
            if args.sweep
            else (args.sweep_fc, (lib.TRT_OP_FULLY_CONNECTED,))
        )
        try:
            candidates = [int(c) for c in spec.split(",")]
        except ValueError:
            raise SystemExit(f"calibrate_threads.py: --sweep takes whole numbers, got {spec!r}") from None
        what = "CONV_2D and DEPTHWISE_CONV_2D" if args.sweep else "FULLY_CONNECTED"
        print(f"whole models, two threads vs one, by MIN_MACS_PER_PART of {what} (now {threads.MIN_MACS_PER_PART[kinds[0]]:,})")
        print(sweep(names, candidates, kinds, args.rounds))
        return 0
    rows = []
    for name in names:
        rows += measure(name, ROOT / "tests" / "models" / MODELS[name], args.rounds)
    print(f"{'model':7s} {'step':>4s} {'MACs':>11s} {'1 thread us':>12s} {'2 threads us':>13s} {'speed-up':>9s}")
    for name, i, macs, t1, t2 in sorted(rows, key=lambda r: r[2]):
        print(f"{name:7s} {i:4d} {macs:11,d} {t1:12.2f} {t2:13.2f} {t1 / t2:8.2f}x")
    found = threshold(rows, args.gain)
    if found is None:
        print(f"\nno step size gains {args.gain}x from two threads here")
    else:
        print(f"\nsteps of >= {found:,} MACs gain >= {args.gain}x from two threads: MIN_MACS_PER_PART ~ {found // 2:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
