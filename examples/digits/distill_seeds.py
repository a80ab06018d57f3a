"""Distilled vs labels-alone students over many seeds (the README's seed table).

    python examples/digits/distill_seeds.py --seeds 0-7     # ~12 minutes on 2 shared cores

Trains run.py's teacher (seed 0), then for each student seed the same mlp:16
student three ways for the same 1000 epochs: on the labels alone, and
distilled with the classic loss at T=2/alpha=0.5 and T=4/alpha=0.7.  Prints
each int8 accuracy (tinyrt's C backend on the 539 test images), the means and
the paired difference to labels alone with its standard error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from run import STUDENT, STUDENT_BATCH, STUDENT_LR, TEACHER_EPOCHS, build_teacher  # noqa: E402

from runtime import optimize  # noqa: E402

# name -> (distilled?, temperature, alpha)
CONFIGS = {
    "labels alone": (False, 1.0, 0.0),
    "distilled T=2 alpha=0.5": (True, 2.0, 0.5),
    "distilled T=4 alpha=0.7": (True, 4.0, 0.7),
}


def seed_list(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-7", help="student seeds: 0-7 or 0,3,5")
    p.add_argument("--epochs", type=int, default=1000)
    args = p.parse_args(argv)
    train, test = optimize.load_digits(0.3, seed=0)
    optimize._tf.set_seed(0)
    teacher = optimize.train(build_teacher(train.sample_shape, 0), train, epochs=TEACHER_EPOCHS, progress=False, seed=0)
    acc: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for seed in seed_list(args.seeds):
        for name, (distilled, temperature, alpha) in CONFIGS.items():
            student = optimize.distill(
                teacher if distilled else None,
                STUDENT,
                train,
                temperature=temperature,
                alpha=alpha,
                epochs=args.epochs,
                batch_size=STUDENT_BATCH,
                learning_rate=STUDENT_LR,
                progress=False,
                seed=seed,
            )
            a = 100 * optimize.accuracy(optimize.convert_int8(student, train, progress=False, seed=seed), test)
            acc[name].append(a)
            print(f"seed {seed}  {name:24s} {a:6.2f}%", flush=True)
    base = np.array(acc["labels alone"])
    print()
    for name, values in acc.items():
        v = np.array(values)
        line = f"{name:24s} mean {v.mean():6.2f}%"
        if name != "labels alone" and len(v) > 1:
            d = v - base
            line += f"   vs labels alone {d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(len(d)):.2f} (paired, s.e.)"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
