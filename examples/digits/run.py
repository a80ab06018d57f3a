"""Digits, end to end and offline: a Keras CNN teacher -> int8, pruned int8,
distilled student -> board budgets -> tinyrt's C backend.

    python examples/digits/run.py [--out examples/digits/out] [--seed 0]

Steps (scikit-learn's bundled 8x8 digits, stratified 70/30 split, fixed seeds):
  1. train a small CNN teacher in Keras (this is "your model"; any Keras model works)
  2. quantize it: full-int8 post-training quantization, per-channel weights
  3. prune it to 80% sparsity with fine-tuning (tfmot), int8
  4. distill a 16-unit MLP student, int8: function matching on mixup inputs
     (T=1, alpha=1, 1000 epochs) from an ensemble of five such teachers (this one
     and four retrained with seeds 1-4); the same student on the labels alone
     with the same epochs for comparison (distill_seeds.py repeats it over seeds)
  5. for all four int8 models: accuracy on tinyrt's C backend, bit-exactness
     against LiteRT's BUILTIN_REF, host latency, and `runtime.validate` reports
     for two boards
Prints a markdown table and writes the models and results.json to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import runtime  # noqa: E402
from runtime import isa, optimize  # noqa: E402
from runtime.optimize import measure  # noqa: E402
from runtime.sparse import format_plan, plan_summary  # noqa: E402

# A shipped profile and a small board of this example's own (a user-written
# .toml, checked by the same schema): 32 KB of flash is where a 14 KB model
# plus firmware stops fitting.
BOARDS = ["pico", str(HERE / "nucleo-c031c6.toml")]
TEACHER_EPOCHS, PRUNE_EPOCHS = 40, 20
STUDENT = "mlp:16"
STUDENT_BATCH, STUDENT_LR = 128, 3e-3


# The distillation teacher: the user's model and four copies retrained with other
# seeds, logits averaged.  Chosen on a validation split carved from the training
# images (distill_seeds.py --on validation), where one teacher's soft targets did
# not beat the labels and the ensemble's did; on the test split it is level with
# labels alone over ten seeds (README: issue 7's distillation criterion is not met).
ENSEMBLE_SEEDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class StudentRun:
    teacher: str  # "none" (labels alone), "single" (the user's model) or "ensemble"
    temperature: float
    alpha: float
    mixup: bool
    epochs: int


# Every student is the same mlp:16 with the same batch and cosine learning-rate
# schedule; each distillation has a labels-alone run with the same epochs.
# Function matching (Beyer et al. 2022): the teacher's distribution (T=1, no
# labels) on fresh mixup inputs every epoch, for many epochs.
RECIPE = StudentRun("ensemble", 1.0, 1.0, True, 1000)
STUDENT_RUNS = {
    "distilled: ensemble teacher, function matching on mixup, 1000 epochs": RECIPE,
    "labels alone, 1000 epochs": StudentRun("none", 1.0, 0.0, False, 1000),
    "labels alone + the same mixup, 1000 epochs": StudentRun("none", 1.0, 0.0, True, 1000),
    "distilled: one teacher, function matching on mixup, 1000 epochs": StudentRun("single", 1.0, 1.0, True, 1000),
}
# The two students in the main table.
TABLE_STUDENTS = {"distilled: ensemble teacher, function matching on mixup, 1000 epochs": "distilled",
                  "labels alone, 1000 epochs": "labels alone"}


def train_teacher(train: optimize.Dataset, seed: int, progress: bool = False) -> Any:
    optimize._tf.set_seed(seed)
    return optimize.train(build_teacher(train.sample_shape, seed), train, epochs=TEACHER_EPOCHS,
                          progress=progress, seed=seed)


def train_student(run: StudentRun, teachers: dict[str, Any], train: optimize.Dataset, seed: int,
                  progress: bool = False) -> Any:
    return optimize.distill(teachers[run.teacher], STUDENT, train, temperature=run.temperature, alpha=run.alpha,
                            mixup=run.mixup, epochs=run.epochs, batch_size=STUDENT_BATCH,
                            learning_rate=STUDENT_LR, progress=progress, seed=seed)


def build_teacher(input_shape: tuple[int, ...], seed: int) -> Any:
    """The user's model: two 3x3 conv blocks and a dense layer, with dropout so it
    does not memorise the 1,258 training images (its soft targets then carry
    more than the labels do, which is what distillation feeds on)."""
    keras = optimize._tf.keras()
    layers = keras.layers
    init = keras.initializers.GlorotUniform
    inp = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=init(seed), name="conv0")(inp)
    x = layers.MaxPooling2D(2, name="pool0")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init(seed + 1), name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, seed=seed, name="drop0")(x)
    x = layers.Dense(64, activation="relu", kernel_initializer=init(seed + 2), name="dense0")(x)
    x = layers.Dropout(0.3, seed=seed, name="drop1")(x)
    x = layers.Dense(10, kernel_initializer=init(seed + 3), name="logits")(x)
    out = layers.Softmax(name="probs")(x)
    return keras.Model(inp, out, name="teacher")


def float_accuracy(model: Any, data: optimize.Dataset) -> float:
    d = data.conform(tuple(model.input_shape), model.output_shape[-1])
    return float(np.mean(model.predict(d.x, verbose=0).argmax(1) == d.y))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE / "out"), help="where to write models and results.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--student-seeds", default="0",
                   help="seeds for the distilled-vs-labels-alone comparison (mean over them; distill_seeds.py "
                        "does this over ten seeds with paired errors)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.quiet
    seed = args.seed
    t_start = time.perf_counter()

    train, test = optimize.load_digits(0.3, seed=seed)
    optimize.save_npz(out / "train.npz", train)
    optimize.save_npz(out / "test.npz", test)
    print(f"digits: {len(train)} training and {len(test)} test images, seed {seed}")

    # 1. teacher
    teacher = train_teacher(train, seed, progress=progress)
    teacher.save(out / "teacher.keras")
    models: dict[str, dict[str, Any]] = {}

    # 2. post-training quantization
    ptq = optimize.quantize(teacher, train, progress=progress, seed=seed)
    models["teacher int8 (PTQ)"] = {"tflite": ptq, "float": float_accuracy(teacher, test), "file": "teacher_int8"}

    # 3. pruning with fine-tuning
    pruned = optimize.prune(teacher, train, sparsity=0.8, epochs=PRUNE_EPOCHS, progress=progress, seed=seed)
    models["pruned 80% int8"] = {"tflite": pruned.tflite, "float": float_accuracy(pruned.keras_model, test),
                                 "file": "pruned80_int8"}

    # 4. distillation from an ensemble of the teacher and four retrained copies, and
    # the same student on the labels alone, at each student seed.
    members = [teacher]
    for k in ENSEMBLE_SEEDS[1:]:
        members.append(train_teacher(train, seed + k, progress=False))
        members[-1].save(out / f"teacher_{k}.keras")
    teachers = {"none": None, "single": teacher, "ensemble": members}
    comparison: dict[str, list[float]] = {k: [] for k in STUDENT_RUNS}
    student_seeds = [int(s) for s in args.student_seeds.split(",")]
    if seed not in student_seeds:
        student_seeds.insert(0, seed)
    for s in student_seeds:
        for kind, run in STUDENT_RUNS.items():
            student = train_student(run, teachers, train, s, progress=progress)
            tflite = optimize.convert_int8(student, train, progress=progress, seed=s)
            comparison[kind].append(optimize.accuracy(tflite, test))
            if s == seed and kind in TABLE_STUDENTS:
                short = TABLE_STUDENTS[kind]
                models[f"student {STUDENT} {short}"] = {
                    "tflite": tflite, "float": float_accuracy(student, test),
                    "file": "student_distilled_int8" if run.teacher != "none" else "student_labels_int8"}

    # 5. measure every int8 model
    from runtime import validate

    # Interleaved rounds: a shared machine's load falls on every model alike.
    latencies = measure.host_latencies_ms({name: m["tflite"] for name, m in models.items()})
    rows = []
    for name, m in models.items():
        tflite: bytes = m["tflite"]
        (out / f"{m['file']}.tflite").write_bytes(tflite)
        reports = {}
        for board in BOARDS:
            r = validate.report(tflite, board)
            reports[r["board"]] = {k: v for k, v in r.items() if k not in ("layers", "_plan")}
        first = next(iter(reports.values()))
        auto = runtime.load(tflite)  # backend="auto", sparse="auto": what a user gets

        rows.append({
            "model": name,
            "file": f"{m['file']}.tflite",
            "float_accuracy": m["float"],
            "int8_accuracy": optimize.accuracy(tflite, test),
            "weight_sparsity": optimize.weight_sparsity(tflite),
            "weight_bytes": first["weight_bytes"],
            "arena_bytes": first["arena_bytes"],
            "macs": first["macs"],
            "host_latency_ms": latencies[name],
            "max_lsb_vs_builtin_ref": measure.max_abs_diff_vs_reference(tflite, test.x),
            "auto_backend": auto.backend,
            "auto_sparse": plan_summary(auto.plan) if auto.backend == "c" else None,
            "boards": {b: {"fits": r["fits"], "failed": [x["name"] for x in r["budgets"] if not x["ok"]],
                           "ram_bytes": r["ram_bytes"], "flash_bytes": r["flash_bytes"],
                           "latency_ms": r["latency_ms"]} for b, r in reports.items()},
        })

    board_names = list(rows[0]["boards"])
    head = ("| model | float acc | int8 acc | weight sparsity | weight bytes | arena bytes | host latency | "
            + " | ".join(board_names) + " |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        fits = []
        for b in board_names:
            v = r["boards"][b]
            fits.append("fits" if v["fits"] else "no: " + ", ".join(v["failed"]))
        lines.append(
            f"| {r['model']} | {r['float_accuracy'] * 100:.2f}% | {r['int8_accuracy'] * 100:.2f}% | "
            f"{r['weight_sparsity']:.3f} | {r['weight_bytes']:,} | {r['arena_bytes']:,} | "
            f"{r['host_latency_ms'] * 1e3:.1f} us | " + " | ".join(fits) + " |"
        )
    table = "\n".join(lines)
    print()
    print(table)
    print()
    for b in board_names:
        print(f"{b}: " + "; ".join(
            f"{r['model']}: RAM {r['boards'][b]['ram_bytes']:,} B, flash {r['boards'][b]['flash_bytes']:,} B, "
            f"{r['boards'][b]['latency_ms']:.2f} ms" for r in rows))
    print()
    print("bit-exact vs LiteRT BUILTIN_REF on all test images: "
          + ", ".join(f"{r['model']}: max {r['max_lsb_vs_builtin_ref']} LSB" for r in rows))
    print("runtime.load() defaults (backend and sparse 'auto'): " + "; ".join(
        f"{r['model']}: {r['auto_backend']} backend, "
        f"{r['auto_sparse']['sparse_layers']}/{r['auto_sparse']['eligible_layers']} layers sparse, "
        f"MACs {r['auto_sparse']['macs']:,}" for r in rows))
    print(f"pruned model's plan on this machine ({isa.active()} kernels):")
    print(format_plan(runtime.load(models["pruned 80% int8"]["tflite"]).plan))
    print(f"{STUDENT} int8 accuracy over seeds {student_seeds}:")
    for kind, values in comparison.items():
        print(f"  {kind:<68} {'  '.join(f'{v * 100:.2f}' for v in values)}   mean {np.mean(values) * 100:.2f}%")
    print(f"total {time.perf_counter() - t_start:.0f} s")

    (out / "results.json").write_text(json.dumps({
        "seed": seed,
        "split": {"train": len(train), "test": len(test), "test_fraction": 0.3},
        "settings": {"teacher_epochs": TEACHER_EPOCHS, "prune_epochs": PRUNE_EPOCHS, "student": STUDENT,
                     "student_batch": STUDENT_BATCH, "student_lr": STUDENT_LR, "boards": BOARDS,
                     "ensemble_seeds": [seed + k for k in ENSEMBLE_SEEDS],
                     "student_runs": {k: asdict(v) for k, v in STUDENT_RUNS.items()}},
        "models": rows,
        "student_comparison": {"seeds": student_seeds, **comparison},
        "pruned_layers": [layer.__dict__ for layer in pruned.layers],
        "table": table,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
