"""Distilled vs labels-alone students over many seeds (the README's seed tables).

    python examples/digits/distill_seeds.py --on validation --seeds 0-9   # choosing the recipe
    python examples/digits/distill_seeds.py --on test --seeds 0-9         # confirming it
    python examples/digits/distill_seeds.py --on test --data-seeds 1-8 --seeds 0-2 \
        --only "ensemble, mixup FM (run.py)" --only "ensemble, T=4 a=0.7" --only "one teacher, T=4 a=0.7"
                                                      # the same on eight other data splits

--on validation: 25% of the 1,258 training images (stratified, seed 0) are held out;
    the teachers and students train on the other 943 and are scored on those 315.
    The test images are not used.  This is where the recipe was chosen.
--on test: everything trains on all 1,258 training images, scored on the 539 test
    images (run.py's split, --data-seeds 0; other seeds split the 1,797 images anew).

The teachers are run.py's CNN trained at seed 0 ("one teacher") and an ensemble of
it and four copies retrained at seeds 1-4 (logits averaged).  For each student
seed the same mlp:16 student is trained every way in CONFIGS with run.py's batch
and cosine learning-rate schedule.  Prints each accuracy (float Keras and int8 on
tinyrt's C backend), then per way the mean and the paired difference to labels
alone with the same epochs (and, for mixup, to labels with the same mixup):
mean +- standard error over seeds, and at how many seeds it was ahead/behind.
12-15 minutes for ten seeds on 2 shared cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

import run as digits_run  # noqa: E402
from run import ENSEMBLE_SEEDS, RECIPE, StudentRun, train_student, train_teacher  # noqa: E402

from runtime import optimize  # noqa: E402

LABELS, LABELS_MIXUP, LABELS_60 = "labels alone", "labels alone + mixup", "labels alone, 60 epochs"
# name -> (how the student is trained, the labels-alone runs it is paired with)
CONFIGS: dict[str, tuple[StudentRun, tuple[str, ...]]] = {
    LABELS: (StudentRun("none", 1.0, 0.0, False, 1000), ()),
    LABELS_MIXUP: (StudentRun("none", 1.0, 0.0, True, 1000), (LABELS,)),
    LABELS_60: (StudentRun("none", 1.0, 0.0, False, 60), ()),
    "one teacher, T=4 a=0.7, 60 epochs": (StudentRun("single", 4.0, 0.7, False, 60), (LABELS_60,)),
    "one teacher, T=4 a=0.7": (StudentRun("single", 4.0, 0.7, False, 1000), (LABELS,)),
    "one teacher, mixup FM": (StudentRun("single", 1.0, 1.0, True, 1000), (LABELS, LABELS_MIXUP)),
    "ensemble, T=4 a=0.7": (StudentRun("ensemble", 4.0, 0.7, False, 1000), (LABELS,)),
    "ensemble, mixup FM (run.py)": (RECIPE, (LABELS, LABELS_MIXUP)),
}


def seed_list(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def paired(a: list[float], b: list[float]) -> str:
    d = np.array(a) - np.array(b)
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return f"{d.mean():+.2f} +- {se:.2f} ({int((d > 0).sum())}/{int((d < 0).sum())})"


def run_split(data_seed: int, on: str, seeds: list[int], names: list[str]) -> dict[str, dict[str, list[float]]]:
    """Teachers and students on one data split: {"float"|"int8": {way: [accuracy per student seed]}}."""
    train, test = optimize.load_digits(0.3, seed=data_seed)
    if on == "validation":
        train, held = train.split(0.25, seed=data_seed)
    else:
        held = test
    print(f"digits split {data_seed}: training on {len(train)} images, scoring on {len(held)} {on} images",
          flush=True)
    members = [train_teacher(train, k) for k in ENSEMBLE_SEEDS]
    teachers = {"none": None, "single": members[0], "ensemble": members}
    for k, m in zip(ENSEMBLE_SEEDS, members, strict=True):
        d = held.conform(tuple(m.input_shape), 10)
        print(f"teacher seed {k}: {100 * np.mean(m.predict(d.x, verbose=0).argmax(1) == d.y):.2f}% float", flush=True)
    acc: dict[str, dict[str, list[float]]] = {"float": {n: [] for n in names}, "int8": {n: [] for n in names}}
    for seed in seeds:
        for name in names:
            student = train_student(CONFIGS[name][0], teachers, train, seed)
            d = held.conform(tuple(student.input_shape), 10)
            acc["float"][name].append(100 * float(np.mean(student.predict(d.x, verbose=0).argmax(1) == d.y)))
            tflite = optimize.convert_int8(student, train, progress=False, seed=seed)
            acc["int8"][name].append(100 * optimize.accuracy(tflite, held))
            print(f"split {data_seed} seed {seed}  {name:30s} float {acc['float'][name][-1]:6.2f}%  "
                  f"int8 {acc['int8'][name][-1]:6.2f}%", flush=True)
    return acc


def table(acc: dict[str, list[float]], names: list[str], columns: str) -> None:
    print(f"| student training | {columns} | mean | vs labels alone | vs labels + mixup |")
    print("|---|---|---|---|---|")
    for name in names:
        v = acc[name]
        bases = CONFIGS[name][1]
        vs_labels = next((paired(v, acc[b]) for b in bases if b != LABELS_MIXUP), "")
        vs_mixup = paired(v, acc[LABELS_MIXUP]) if LABELS_MIXUP in bases else ""
        print(f"| {name} | {' '.join(f'{a:.2f}' for a in v)} | {np.mean(v):.2f} | {vs_labels} | {vs_mixup} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--on", choices=["validation", "test"], default="test",
                   help="score on a validation split of the training images, or on the test images")
    p.add_argument("--seeds", default="0-9", help="student seeds: 0-9 or 0,3,5")
    p.add_argument("--data-seeds", default="0",
                   help="data splits (load_digits seeds; 0 is run.py's): with several, a last table compares "
                        "the per-split means, split by split")
    p.add_argument("--only", action="append", choices=list(CONFIGS), help="train only these ways (repeatable)")
    p.add_argument("--student", default=digits_run.STUDENT,
                   help=f"the student architecture of every way (default run.py's {digits_run.STUDENT})")
    args = p.parse_args(argv)
    digits_run.STUDENT = args.student  # train_student reads it at each call
    t0 = time.perf_counter()
    names = args.only or list(CONFIGS)
    for name in list(names):
        names += [b for b in CONFIGS[name][1] if b not in names]
    seeds, splits = seed_list(args.seeds), seed_list(args.data_seeds)
    runs = {d: run_split(d, args.on, seeds, names) for d in splits}
    held = "315 validation" if args.on == "validation" else "539 test"
    for d, acc in runs.items():
        for metric in ("int8", "float"):
            print(f"\n{metric} accuracy on split {d}'s {held} images, student seeds {args.seeds}; "
                  "paired difference: mean +- s.e. (seeds ahead/behind)")
            table(acc[metric], names, f"seeds {args.seeds}")
    if len(splits) > 1:
        for metric in ("int8", "float"):
            print(f"\n{metric} accuracy, mean over student seeds {args.seeds} per data split {args.data_seeds}; "
                  "paired difference of the split means: mean +- s.e. over splits (splits ahead/behind)")
            table({n: [float(np.mean(runs[d][metric][n])) for d in splits] for n in names}, names,
                  f"splits {args.data_seeds}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
