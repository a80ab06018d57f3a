"""python -m runtime.run MODEL: run a .tflite model once (or N times) and print the result.

Exit codes: 0 ok, 2 bad arguments or input (including a corrupt model),
1 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or input: exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.run", description=__doc__.splitlines()[0])
    p.add_argument("model", help="path to a .tflite model")
    p.add_argument(
        "--input",
        help="input values: .npy (one input), .npz (by name or in order), .csv (one input, "
        "flattened) or '-' for JSON/CSV on stdin; without it a random input is used",
    )
    p.add_argument("--output", help="write outputs to FILE.npy (first output), .npz or .json")
    p.add_argument("--backend", choices=["auto", "c", "tflite"], default="auto")
    p.add_argument(
        "--sparse",
        choices=["auto", "off", "force"],
        default="auto",
        help="pruned weights: sparse kernels where faster (auto), never (off) or wherever they apply (force)",
    )
    p.add_argument(
        "--show-plan",
        action="store_true",
        help="print the C backend's plan per layer: kernel and format, sparsity, MACs kept, weight bytes before/after",
    )
    p.add_argument("--threads", type=int, default=1, help="threads (C backend: large steps split over a pool; tflite: its own)")
    p.add_argument("--repeat", type=int, default=1, help="run N times and print median and p90 latency")
    p.add_argument("--dequantize", action="store_true", help="print float outputs (scale * (q - zero_point))")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input")
    p.add_argument("--top", type=int, default=5, help="how many classes to print for a classifier output")
    try:  # the serial server adds its options when that module is present
        from .serial_server import add_serial_arguments  # type: ignore[attr-defined]

        add_serial_arguments(p)
    except ImportError:
        pass
    return p


def _parse_csv_text(text: str) -> np.ndarray:
    values = [v for line in text.splitlines() for v in line.replace(";", ",").split(",") if v.strip()]
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError as exc:
        raise UsageError(f"input is not numeric CSV: {exc}") from exc


def _fit(info: Any, arr: np.ndarray, source: str) -> np.ndarray:
    """Reshape flat values to the input's shape; keep integer data as the input's type."""
    if arr.size != int(np.prod(info.shape)):
        raise UsageError(
            f"{source}: input {info.name!r} needs {int(np.prod(info.shape))} values (shape {list(info.shape)}), "
            f"got {arr.size} (shape {list(arr.shape)})"
        )
    arr = arr.reshape(info.shape)
    if arr.dtype.kind == "f" and info.dtype.kind in "iu" and np.all(arr == np.round(arr)):
        lim = np.iinfo(info.dtype)
        # Whole numbers in the integer range are taken as raw quantized values
        # only for integer files (.npy of ints); text input is always real.
        if source.endswith(".npy") and arr.min() >= lim.min and arr.max() <= lim.max:
            return arr.astype(info.dtype)
    return arr


def load_inputs(model: Any, spec: str | None, seed: int) -> tuple[list[np.ndarray], str]:
    infos = model.inputs
    if spec is None:
        rng = np.random.default_rng(seed)
        arrays = []
        for info in infos:
            if info.dtype.kind in "iu":
                lim = np.iinfo(info.dtype)
                arrays.append(rng.integers(lim.min, lim.max + 1, size=info.shape, dtype=info.dtype))
            else:
                arrays.append(rng.standard_normal(info.shape).astype(info.dtype))
        return arrays, f"random input (seed {seed}); pass --input FILE to use your own"
    if spec == "-":
        text = sys.stdin.read()
        try:
            data = json.loads(text)
            arr = np.asarray(data, dtype=np.float64)
        except (json.JSONDecodeError, ValueError, TypeError):
            arr = _parse_csv_text(text)
        if len(infos) != 1:
            raise UsageError("stdin input works for one-input models only; use an .npz file")
        return [_fit(infos[0], arr, "stdin")], "input from stdin"
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"input file {spec!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
            if len(infos) != 1:
                raise UsageError("a .npy file holds one input; this model takes several: use .npz")
            arrays = [arr if arr.shape == infos[0].shape else _fit(infos[0], arr, spec)]
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.keys())
                if all(info.name in z for info in infos):
                    arrays = [z[info.name] for info in infos]
                elif len(names) == len(infos):
                    arrays = [z[n] for n in names]
                else:
                    raise UsageError(
                        f"{spec}: has arrays {names}; the model's inputs are {[i.name for i in infos]}"
                    )
        elif suffix in (".csv", ".txt"):
            if len(infos) != 1:
                raise UsageError("CSV input works for one-input models only; use an .npz file")
            arrays = [_fit(infos[0], _parse_csv_text(path.read_text()), spec)]
        else:
            raise UsageError(f"unknown input format {suffix!r}: use .npy, .npz, .csv or '-'")
    except (OSError, ValueError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"cannot read input {spec!r}: {exc}") from exc
    return arrays, f"input from {spec}"


def _is_classifier(info: Any, values: np.ndarray) -> bool:
    return values.ndim >= 1 and values.size == values.shape[-1] and 2 <= values.size <= 10000


def format_output(info: Any, raw: np.ndarray, top: int, dequantize: bool) -> str:
    real = info.dequantize(raw) if info.quantized else raw
    shown = real if dequantize else raw
    lines = [f"output {info.name!r} shape {list(raw.shape)} {raw.dtype}"]
    if _is_classifier(info, raw) and top > 0:
        flat = np.asarray(real, dtype=np.float64).reshape(-1)
        order = np.argsort(-flat, kind="stable")[:top]
        lines.append(f"  top-{len(order)}:")
        for rank, k in enumerate(order, 1):
            lines.append(f"    {rank}. class {int(k)}  score {flat[k]:.6f}  (raw {raw.reshape(-1)[k]})")
    else:
        with np.printoptions(threshold=64, edgeitems=8, precision=6, suppress=True):
            lines.append("  " + np.array2string(np.asarray(shown).reshape(-1), prefix="  "))
    return "\n".join(lines)


def write_outputs(path: str, model: Any, outputs: list[np.ndarray], dequantize: bool) -> None:
    p = Path(path)
    suffix = p.suffix.lower()
    values = [info.dequantize(o) if dequantize else o for info, o in zip(model.outputs, outputs, strict=True)]
    if suffix == ".npy":
        np.save(p, values[0])
    elif suffix == ".npz":
        np.savez(p, **{info.name: v for info, v in zip(model.outputs, values, strict=True)})
    elif suffix == ".json":
        doc = {
            "outputs": [
                {
                    "name": info.name,
                    "shape": list(v.shape),
                    "dtype": str(v.dtype),
                    "scale": info.scale,
                    "zero_point": info.zero_point,
                    "values": v.reshape(-1).tolist(),
                }
                for info, v in zip(model.outputs, values, strict=True)
            ]
        }
        p.write_text(json.dumps(doc))
    else:
        raise UsageError(f"unknown output format {suffix!r}: use .npy, .npz or .json")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    from . import load
    from .errors import BackendUnavailableError, ModelFormatError, UnsupportedModelError

    try:
        if args.repeat < 1:
            raise UsageError("--repeat must be at least 1")
        model = load(args.model, backend=args.backend, num_threads=args.threads, sparse=args.sparse)
        if args.show_plan:
            if getattr(model, "plan", None) is None:
                print(f"no plan to show: the model runs on the {model.backend} backend")
            else:
                from .sparse import format_plan

                print(format_plan(model.plan))
        if getattr(args, "serial", None):
            from .serial_server import serve_from_args  # type: ignore[attr-defined]

            return int(serve_from_args(model, args))
        inputs, where = load_inputs(model, args.input, args.seed)
        print(f"model {args.model} ({model.backend} backend), {where}")
        times = []
        outputs: list[np.ndarray] = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            outputs = model.run(inputs)
            times.append(time.perf_counter() - t0)
        for info, out in zip(model.outputs, outputs, strict=True):
            print(format_output(info, out, args.top, args.dequantize))
        if args.repeat > 1:
            ms = np.array(times) * 1e3
            print(f"latency over {args.repeat} runs: median {np.median(ms):.3f} ms, p90 {np.percentile(ms, 90):.3f} ms")
        if args.output:
            write_outputs(args.output, model, outputs, args.dequantize)
            print(f"outputs written to {args.output}")
        return EXIT_OK
    except (UsageError, ModelFormatError, ValueError, BackendUnavailableError, UnsupportedModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the documented exit code 1
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
