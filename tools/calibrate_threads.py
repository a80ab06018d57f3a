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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="kws,vww,resnet,ad01", help="comma-separated: " + ",".join(MODELS))
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--gain", type=float, default=1.1, help="speed-up a split must give (default 1.1)")
    args = p.parse_args(argv)
    rows = []
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"calibrate_threads.py: unknown model {name!r}: use {','.join(MODELS)}")
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
