"""python -m runtime.optimize: quantize, prune, distill and fit Keras models for a board.

Exit codes: 0 ok, 1 `fit` found no candidate within the budgets or an internal
error, 2 bad arguments, data or models (including a missing [optimize] extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL = 1  # shared with EXIT_FAIL, as in python -m runtime.run


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _common(p: argparse.ArgumentParser, output: bool = True) -> None:
    if output:
        p.add_argument("-o", "--output", required=True, help="where to write the int8 .tflite")
    p.add_argument("--eval", metavar="DATA", help="held-out data: print the int8 model's accuracy (tinyrt C backend)")
    p.add_argument("--num-calib", type=int, default=200, help="calibration samples for int8 conversion (default 200)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="seed for data order, initial weights and calibration")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.optimize", description=__doc__.splitlines()[0],
                                epilog="DATA: an .npz with arrays x and y, or a folder with x.npy and y.npy, "
                                       "or a folder with one <class>.npy per class.")
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("quantize", help="full-int8 post-training quantization (optionally QAT first)")
    q.add_argument("model", metavar="KERAS_MODEL")
    q.add_argument("--calib", required=True, metavar="DATA", help="representative data for calibration")
    q.add_argument("--qat", type=int, default=0, metavar="EPOCHS", help="quantization-aware training epochs first")
    q.add_argument("--data", metavar="DATA", help="training data for --qat")
    q.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor instead of per channel")
    _common(q)

    r = sub.add_parser("prune", help="magnitude pruning with fine-tuning, then full int8")
    r.add_argument("model", metavar="KERAS_MODEL")
    r.add_argument("--data", required=True, metavar="DATA", help="fine-tuning data (also used for calibration)")
    r.add_argument("--sparsity", type=float, default=0.8, help="fraction of zero weights per layer (default 0.8)")
    r.add_argument("--block", default="1x1",
                   help="zero blocks the runtime's sparse kernels read: 1x1 (unstructured, default), 4x1 or 8x1 "
                        "(4 or 8 consecutive output channels at one input)")
    r.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs (default 20)")
    r.add_argument("--save-keras", metavar="PATH", help="also save the pruned float Keras model")
    _common(r)

    d = sub.add_parser("distill", help="knowledge distillation into a smaller student, then full int8")
    d.add_argument("--teacher", required=True, action="append",
                   help="teacher: a Keras model file or a .tflite; repeat it for an ensemble whose logits are "
                        "averaged")
    d.add_argument("--student-arch", required=True, metavar="SPEC|KERAS_MODEL",
                   help="student: a spec such as mlp:16 or cnn:8,16/32, or a Keras model file")
    d.add_argument("--data", required=True, metavar="DATA")
    d.add_argument("--temperature", type=float, default=4.0)
    d.add_argument("--alpha", type=float, default=0.7, help="weight of the soft-target loss (default 0.7)")
    d.add_argument("--epochs", type=int, default=60)
    d.add_argument("--learning-rate", type=float, default=3e-3, help="Adam, cosine decay over the run (default 3e-3)")
    d.add_argument("--mixup", action="store_true",
                   help="train on fresh mixtures of training pairs labelled by the teacher every epoch "
                        "(function matching; needs many epochs, e.g. 1000)")
    d.add_argument("--shift", type=int, default=0, metavar="PIXELS",
                   help="also translate every training image by up to PIXELS whole pixels each epoch, labelled "
                        "by the teacher (images only; default 0)")
    d.add_argument("--compare", action="store_true",
                   help="also train the same student on labels alone (and, with --mixup or --shift, on labels with "
                        "the same augmentation) and print the accuracies (needs --eval)")
    d.add_argument("--save-keras", metavar="PATH", help="also save the float Keras student")
    _common(d)

    f = sub.add_parser("fit", help="the most accurate int8 model within a board's budgets")
    f.add_argument("model", metavar="MODEL", help="the Keras model to start from")
    f.add_argument("--board", required=True, help="board profile name or a .toml path (python -m runtime.validate "
                                                   "--list-boards)")
    f.add_argument("--data", required=True, metavar="DATA")
    f.add_argument("--sparsities", type=_floats, default=[0.5, 0.8, 0.9], help="pruning levels (default 0.5,0.8,0.9)")
    f.add_argument("--widths", type=_floats, default=[0.5, 0.25],
                   help="student widths as fractions of the model's layer widths (default 0.5,0.25)")
    f.add_argument("--student", action="append", default=[], metavar="SPEC",
                   help="student spec instead of --widths (repeatable)")
    f.add_argument("--block", default="1x1", help="pruning blocks: 1x1, 4x1 or 8x1 (see prune --help)")
    f.add_argument("--prune-epochs", type=int, default=20)
    f.add_argument("--distill-epochs", type=int, default=60)
    f.add_argument("--temperature", type=float, default=4.0)
    f.add_argument("--alpha", type=float, default=0.7)
    f.add_argument("--mixup", action="store_true", help="distil students with mixup function matching")
    f.add_argument("--latency-budget-ms", type=float, help="override the board's latency budget")
    f.add_argument("-o", "--output", help="write the winning .tflite here")
    f.add_argument("--json", action="store_true", help="print the candidates as JSON instead of the table")
    _common(f, output=False)
    return p


def _write(path: str, content: bytes) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(content)


def _summary(path: str, tflite: bytes, evaluation: Any) -> list[str]:
    from .measure import accuracy, weight_bytes, weight_sparsity

    lines = [f"wrote {path}: {len(tflite):,} bytes, constants {weight_bytes(tflite):,} B, "
             f"weight sparsity {weight_sparsity(tflite):.3f}"]
    if evaluation is not None:
        lines.append(f"int8 accuracy on {evaluation.source}: {accuracy(tflite, evaluation) * 100:.2f}% "
                     f"({len(evaluation)} samples, tinyrt C backend)")
    return lines


def run(args: argparse.Namespace) -> int:
    from .data import load_data

    progress = not args.quiet
    evaluation = load_data(args.eval) if getattr(args, "eval", None) else None
    if args.command == "quantize":
        from .quantization import quantize

        if args.qat and not args.data:
            raise ValueError("--qat needs training data: --data DATA")
        calib = load_data(args.calib)
        train = load_data(args.data) if args.data else None
        tflite = quantize(args.model, calib, qat_epochs=args.qat, train=train, num_calib=args.num_calib,
                          per_channel=not args.per_tensor, batch_size=args.batch_size, progress=progress,
                          seed=args.seed)
        _write(args.output, tflite)
        print("\n".join(_summary(args.output, tflite, evaluation)))
        return EXIT_OK
    if args.command == "prune":
        from .pruning import prune

        result = prune(args.model, load_data(args.data), sparsity=args.sparsity, block=args.block, epochs=args.epochs,
                       batch_size=args.batch_size, num_calib=args.num_calib, progress=progress, seed=args.seed)
        _write(args.output, result.tflite)
        if args.save_keras:
            result.keras_model.save(args.save_keras)
        print("\n".join(_summary(args.output, result.tflite, evaluation)))
        for layer in result.layers:
            print(f"  {layer.name:<16} kernel {list(layer.kernel_shape)}: {layer.pattern}")
        for name, frac in result.block_fractions().items():
            if result.block != (1, 1):
                print(f"  {name}: {frac:.3f} of {result.block[0]}x{result.block[1]} blocks all zero")
        return EXIT_OK
    if args.command == "distill":
        from .distillation import distill, teacher_logits
        from .quantization import convert_int8

        data = load_data(args.data)
        if args.compare and evaluation is None:
            raise ValueError("--compare needs --eval DATA to measure both students")
        teacher = args.teacher[0] if len(args.teacher) == 1 else args.teacher
        fresh = args.mixup or args.shift > 0
        logits = None if fresh else teacher_logits(teacher, data, progress=progress)
        kw = dict(temperature=args.temperature, epochs=args.epochs, batch_size=args.batch_size, progress=progress,
                  seed=args.seed, learning_rate=args.learning_rate, shift=args.shift)
        student = distill(teacher, args.student_arch, data, alpha=args.alpha, mixup=args.mixup, logits=logits,
                          **kw)
        tflite = convert_int8(student, data, num_calib=args.num_calib, progress=progress, seed=args.seed)
        _write(args.output, tflite)
        if args.save_keras:
            student.save(args.save_keras)
        print("\n".join(_summary(args.output, tflite, evaluation)))
        if args.compare:
            from .measure import accuracy

            for same_aug in ([False, True] if fresh else [False]):
                alone = distill(None, args.student_arch, data, alpha=0.0, **{
                    **kw, "mixup": args.mixup and same_aug, "shift": args.shift if same_aug else 0})
                alone_q = convert_int8(alone, data, num_calib=args.num_calib, progress=progress, seed=args.seed)
                aug = " and ".join((["mixup"] if args.mixup else []) + ([f"shift {args.shift}"] if args.shift else []))
                how = f"labels alone with the same {aug}" if same_aug else "labels alone"
                print(f"same student on {how}, int8: {accuracy(alone_q, evaluation) * 100:.2f}%")
        return EXIT_OK
    if args.command == "fit":
        from .fitting import fit

        result = fit(args.model, args.board, load_data(args.data), evaluation=evaluation, sparsities=args.sparsities,
                     widths=args.widths, students=args.student, block=args.block, prune_epochs=args.prune_epochs,
                     distill_epochs=args.distill_epochs, temperature=args.temperature, alpha=args.alpha,
                     mixup=args.mixup, latency_budget_ms=args.latency_budget_ms, progress=progress,
                     seed=args.seed)
        best = result.best
        if args.json:
            print(json.dumps({
                "board": result.board,
                "best": best.name if best else None,
                "candidates": [{"name": c.name, "technique": c.technique, "accuracy": c.accuracy,
                                "sparsity": c.sparsity, "fits": c.fits, "report": {k: v for k, v in c.report.items()
                                                                                  if k != "layers"}}
                               for c in result.candidates],
            }))
        else:
            print(result.table())
        if best is None:
            return EXIT_FAIL
        if args.output:
            _write(args.output, best.tflite)
            if not args.json:
                print(f"wrote {args.output} ({best.name})")
        return EXIT_OK
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from ..errors import TinyRTError
    from ._tf import MissingToolchainError
    from .data import DataError

    try:
        from . import _tf

        _tf.tf()  # a missing extra is one clear line, before any work
        return run(args)
    except MissingToolchainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DataError, TinyRTError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the documented exit code 1
        if os.environ.get("TINYRT_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL

