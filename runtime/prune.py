"""python -m runtime.prune IN.tflite -o OUT.tflite --sparsity S: post-training magnitude pruning.

Zeroes the smallest weights of every CONV_2D and FULLY_CONNECTED layer of an
int8 or float32 .tflite, globally (one threshold across the layers) or per
layer, one by one or in blocks, and writes a model with the same flatbuffer
layout -- only the weight bytes change -- so that LiteRT runs it as well as
tinyrt, whose sparse kernels then skip the zeros (runtime.sparse).  It
prints each layer's sparsity and how well the pruned model agrees with the
original on sample inputs: top-1 agreement and SQNR in dB of the outputs.

Magnitude is the real value -- |w| * scale of the weight's channel for int8
weights, whose per-channel scales differ, |w| for float weights -- divided
by the root mean square of its layer, so that one global threshold serves
layers of different ranges: on raw real magnitudes a layer of small weights
(a first convolution of wide-range inputs) is emptied first, and the model
with it (kws at 50%: top-1 agreement 0% raw, 78% normalised).  A block "RxC"
is R output channels by C consecutive values of the innermost (input-
channel) axis, TFLite's layout; its magnitude is the mean over its weights,
and blocks are zeroed whole until they hold the asked fraction of weights.
Blocks tinyrt's block kernels read: 4x1 and 8x1; 1x1 (default) is unstructured.

Training-time pruning with fine-tuning is runtime.optimize's job; this
command is for a quick, data-free first cut.

Exit codes: 0 written, 2 bad input (sparsity outside [0, 1), an unknown
layer name, no prunable layer, an unreadable model or samples file) -- with
nothing written --, 1 internal error.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
PRUNABLE_OPS = ("CONV_2D", "FULLY_CONNECTED")


class PruneError(Exception):
    """Bad arguments or input: exit code 2, nothing written."""


@dataclass
class Layer:
    op_index: int
    opcode: str
    name: str  # the weight tensor's name
    output_name: str
    tensor: int
    shape: tuple[int, ...]
    dtype: str
    offset: int  # byte offset of the weight data in the file
    sparsity_before: float
    target: float | None = None  # None: not pruned (skipped)
    sparsity_after: float = 0.0
    note: str = ""


@dataclass
class PruneResult:
    model: bytes
    layers: list[Layer]
    block: tuple[int, int]

    @property
    def sparsity(self) -> float:
        """Zero weights / weights over the prunable layers."""
        total = sum(math.prod(layer.shape) for layer in self.layers)
        zeros = sum(layer.sparsity_after * math.prod(layer.shape) for layer in self.layers)
        return zeros / total if total else 0.0


def parse_block(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise PruneError(f"--block {text!r}: expected ROWSxCOLS such as 1x1, 4x1, 8x1 or 1x4")
    rows, cols = int(parts[0]), int(parts[1])
    if rows < 1 or cols < 1:
        raise PruneError(f"--block {text!r}: both sides must be at least 1")
    return rows, cols


def parse_per_layer(text: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if not text:
        return out
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.rpartition("=")
        if not sep or not name.strip():
            raise PruneError(f"--per-layer item {item!r}: expected NAME=SPARSITY")
        try:
            out[name.strip()] = check_sparsity(float(value), f"--per-layer {name.strip()}")
        except ValueError:
            raise PruneError(f"--per-layer item {item!r}: {value!r} is not a number") from None
    return out


def check_sparsity(value: float, what: str = "--sparsity") -> float:
    if not (0.0 <= value < 1.0):  # also refuses NaN
        raise PruneError(f"{what} must be in [0, 1), got {value}")
    return value


# ---------------------------------------------------------------------------- reading


def _buffer_offsets(data: bytes) -> dict[int, tuple[int, int]]:
    """Tensor index -> (file offset, byte length) of its constant data, for the
    main subgraph; tensors without data are absent."""
    import tflite

    model = tflite.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    out: dict[int, tuple[int, int]] = {}
    for i in range(sub.TensorsLength()):
        b = int(sub.Tensors(i).Buffer())
        if b == 0 or b >= model.BuffersLength():
            continue
        buf = model.Buffers(b)
        if buf.Offset() > 1:  # data after the flatbuffer (models above 2 GB)
            out[i] = (int(buf.Offset()), int(buf.Size()))
            continue
        o = buf._tab.Offset(4)
        if o == 0 or buf.DataLength() == 0:
            continue
        out[i] = (int(buf._tab.Vector(o)), int(buf.DataLength()))
    return out


def _buffer_users(data: bytes) -> dict[int, int]:
    import tflite

    model = tflite.Model.GetRootAs(data, 0)
    users: dict[int, int] = {}
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        for i in range(sub.TensorsLength()):
            b = int(sub.Tensors(i).Buffer())
            if b:
                users[b] = users.get(b, 0) + 1
    return users


def find_layers(data: bytes) -> tuple[Any, list[Layer]]:
    """The parsed graph and its prunable layers (constant int8 / float32 weights)."""
    import tflite

    from .graph import parse_model

    graph = parse_model(data)
    offsets = _buffer_offsets(data)
    users = _buffer_users(data)
    model = tflite.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    layers: list[Layer] = []
    seen: set[int] = set()
    for op in graph.operators:
        if op.opcode not in PRUNABLE_OPS or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        t = graph.tensors[op.inputs[1]]
        if t.data is None or t.dtype is None or t.dtype.name not in ("int8", "float32") or t.index not in offsets:
            continue
        if t.index in seen:
            continue
        seen.add(t.index)
        if t.dtype.name == "int8" and t.quant is not None and np.any(t.quant.zero_point != 0):
            continue  # asymmetric weights: a stored 0 is not a zero weight
        w = np.asarray(t.data)
        layer = Layer(
            op_index=op.index,
            opcode=op.opcode,
            name=t.name,
            output_name=graph.tensors[op.outputs[0]].name if op.outputs else "",
            tensor=t.index,
            shape=tuple(w.shape),
            dtype=t.dtype.name,
            offset=offsets[t.index][0],
            sparsity_before=float(np.mean(w == 0)) if w.size else 0.0,
        )
        if users.get(int(sub.Tensors(t.index).Buffer()), 0) > 1:
            layer.note = "weight buffer shared with another tensor: not pruned"
        layers.append(layer)
    return graph, layers


# ---------------------------------------------------------------------------- scoring


def _magnitude(graph: Any, layer: Layer) -> np.ndarray:
    """Real |w| per weight over the layer's RMS, [out][rest] float64."""
    t = graph.tensors[layer.tensor]
    w = np.asarray(t.data).astype(np.float64)
    w2 = np.abs(w.reshape(w.shape[0], -1))
    if layer.dtype == "int8" and t.quant is not None:
        scale = t.quant.scale.astype(np.float64)
        if scale.size == w.shape[0] and (t.quant.axis == 0 or scale.size == 1):
            w2 = w2 * scale.reshape(-1, 1)
        elif scale.size == 1:
            w2 = w2 * float(scale[0])
        # other axes cannot occur for CONV_2D / FULLY_CONNECTED weights the planners accept
    rms = float(np.sqrt(np.mean(w2**2))) if w2.size else 0.0
    return w2 / rms if rms > 0 else w2


def _block_scores(mag: np.ndarray, shape: tuple[int, ...], block: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean magnitude and weight count per block, [ceil(out/R)][rest/inner][ceil(inner/C)]
    flattened; ragged edge blocks hold (and average) the weights they have."""
    rows_b, cols_b = block
    out_c = shape[0]
    inner = shape[-1] if len(shape) > 1 else 1
    outer = mag.shape[1] // inner  # KH*KW for convolutions, 1 for FULLY_CONNECTED
    m = mag.reshape(out_c, outer, inner)
    pr = (-out_c) % rows_b
    pc = (-inner) % cols_b
    padded = np.pad(m, ((0, pr), (0, 0), (0, pc)))
    ones = np.pad(np.ones_like(m), ((0, pr), (0, 0), (0, pc)))
    sr, sc = (out_c + pr) // rows_b, (inner + pc) // cols_b
    sums = padded.reshape(sr, rows_b, outer, sc, cols_b).sum(axis=(1, 4))
    counts = ones.reshape(sr, rows_b, outer, sc, cols_b).sum(axis=(1, 4))
    return (sums / counts).reshape(-1), counts.reshape(-1).astype(np.int64)


def _expand(mask_blocks: np.ndarray, shape: tuple[int, ...], block: tuple[int, int]) -> np.ndarray:
    """Block mask (True = zero it) -> element mask of the weight's shape."""
    rows_b, cols_b = block
    out_c = shape[0]
    inner = shape[-1] if len(shape) > 1 else 1
    total = math.prod(shape)
    outer = total // out_c // inner
    sr, sc = -(-out_c // rows_b), -(-inner // cols_b)
    m = mask_blocks.reshape(sr, outer, sc)
    full = np.repeat(np.repeat(m, rows_b, axis=0), cols_b, axis=2)[:out_c, :, :inner]
    return full.reshape(shape)


def _smallest(scores: np.ndarray, sizes: np.ndarray, weights: int) -> np.ndarray:
    """Boolean mask of the smallest-scored blocks that hold `weights` weights
    (blocks are taken whole, so up to one block more).  Ties are broken by
    position: the count is exact even where many int8 magnitudes are equal."""
    mask = np.zeros(scores.size, dtype=bool)
    if weights <= 0:
        return mask
    order = np.argsort(scores, kind="stable")
    held = np.cumsum(sizes[order])
    take = int(np.searchsorted(held, weights)) + 1  # the first prefix holding >= weights
    mask[order[:take]] = True
    return mask


# ---------------------------------------------------------------------------- pruning


def prune_model(
    data: bytes,
    sparsity: float,
    per_layer: dict[str, float] | None = None,
    block: tuple[int, int] = (1, 1),
    skip_first_last: bool = False,
) -> PruneResult:
    """The pruned model's bytes and per-layer figures.  Raises PruneError."""
    check_sparsity(sparsity)
    per_layer = dict(per_layer or {})
    from .errors import ModelFormatError

    try:
        graph, layers = find_layers(data)
    except ModelFormatError as exc:
        raise PruneError(str(exc)) from exc
    candidates = [layer for layer in layers if not layer.note]
    if not candidates:
        raise PruneError(
            "the model has no prunable layer: no CONV_2D or FULLY_CONNECTED with constant int8 or float32 weights"
        )
    by_name: dict[str, Layer] = {}
    for layer in candidates:
        for key in (layer.name, layer.output_name, str(layer.op_index), f"#{layer.op_index}"):
            by_name.setdefault(key, layer)
    unknown = [name for name in per_layer if name not in by_name]
    if unknown:
        names = ", ".join(repr(layer.name) for layer in candidates)
        raise PruneError(
            f"--per-layer names no prunable layer: {', '.join(map(repr, unknown))}; "
            f"layers are (weight tensor, output tensor or operator index): {names}"
        )
    skipped: set[int] = set()
    if skip_first_last:
        skipped = {candidates[0].tensor, candidates[-1].tensor}
        for layer in (candidates[0], candidates[-1]):
            layer.note = "first/last layer: skipped"
    explicit = {by_name[name].tensor: value for name, value in per_layer.items()}

    scores: dict[int, np.ndarray] = {}
    sizes: dict[int, np.ndarray] = {}
    for layer in candidates:
        scores[layer.tensor], sizes[layer.tensor] = _block_scores(_magnitude(graph, layer), layer.shape, block)
    zero_blocks: dict[int, np.ndarray] = {}
    for layer in candidates:
        if layer.tensor in explicit:
            layer.target = explicit[layer.tensor]
            n = math.prod(layer.shape)
            zero_blocks[layer.tensor] = _smallest(scores[layer.tensor], sizes[layer.tensor], round(layer.target * n))
    pooled = [layer for layer in candidates if layer.tensor not in explicit and layer.tensor not in skipped]
    if pooled:
        # One global threshold: the smallest blocks over all pooled layers
        # until they hold the asked fraction of the pooled weights.
        all_scores = np.concatenate([scores[layer.tensor] for layer in pooled])
        all_sizes = np.concatenate([sizes[layer.tensor] for layer in pooled])
        mask = _smallest(all_scores, all_sizes, round(sparsity * int(all_sizes.sum())))
        start = 0
        for layer in pooled:
            n = scores[layer.tensor].size
            zero_blocks[layer.tensor] = mask[start : start + n]
            start += n
            layer.target = sparsity

    out = bytearray(data)
    for layer in candidates:
        if layer.tensor not in zero_blocks:
            layer.sparsity_after = layer.sparsity_before
            continue
        t = graph.tensors[layer.tensor]
        w = np.array(t.data, copy=True)
        w[_expand(zero_blocks[layer.tensor], layer.shape, block)] = 0
        raw = w.astype(w.dtype.newbyteorder("<"), copy=False).tobytes()
        out[layer.offset : layer.offset + len(raw)] = raw
        layer.sparsity_after = float(np.mean(w == 0))
    for layer in layers:
        if layer.note and layer not in candidates:
            layer.sparsity_after = layer.sparsity_before
    return PruneResult(bytes(out), layers, block)


# ---------------------------------------------------------------------------- agreement


def _load(data: bytes) -> Any:
    """tinyrt's C backend where it runs the model (int8), else LiteRT (float)."""
    import runtime

    from .errors import UnsupportedModelError

    try:
        return runtime.load(data, backend="c")
    except UnsupportedModelError:
        return runtime.load(data, backend="tflite")


def sample_inputs(model: Any, samples: np.ndarray | None, count: int, seed: int) -> list[list[np.ndarray]]:
    infos = model.inputs
    if samples is not None:
        if len(infos) != 1:
            raise PruneError("--samples holds one input; this model takes several")
        want = tuple(infos[0].shape)
        per = int(np.prod(want))
        if samples.size % per:
            raise PruneError(f"--samples of shape {list(samples.shape)} does not split into inputs of shape {list(want)}")
        arr = samples.reshape((-1, *want))
        if arr.dtype.kind == "f" or arr.dtype == infos[0].dtype:
            return [[a] for a in arr]
        return [[a.astype(np.float32)] for a in arr]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        xs = []
        for info in infos:
            if info.dtype.kind in "iu":
                lim = np.iinfo(info.dtype)
                xs.append(rng.integers(lim.min, lim.max + 1, size=info.shape, dtype=info.dtype))
            else:
                xs.append(rng.standard_normal(info.shape).astype(info.dtype))
        out.append(xs)
    return out


def agreement(original: bytes, pruned: bytes, inputs_from: np.ndarray | None = None, count: int = 32,
              seed: int = 0) -> dict[str, Any]:
    """Top-1 agreement and SQNR (dB) of the first output, pruned vs original."""
    a, b = _load(original), _load(pruned)
    inputs = sample_inputs(a, inputs_from, count, seed)
    ref, got = [], []
    for xs in inputs:
        ref.append(np.asarray(a.run(xs, dequantize=True)[0], dtype=np.float64))
        got.append(np.asarray(b.run(xs, dequantize=True)[0], dtype=np.float64))
    r, g = np.stack(ref), np.stack(got)
    noise = float(np.sum((r - g) ** 2))
    signal = float(np.sum(r**2))
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    top1 = None
    if r.shape[-1] >= 2:
        top1 = float(np.mean(np.argmax(r.reshape(len(r), -1, r.shape[-1]), -1) ==
                             np.argmax(g.reshape(len(g), -1, g.shape[-1]), -1)))
    return {"samples": len(inputs), "top1_agreement": top1, "sqnr_db": sqnr,
            "backend": a.backend, "source": "samples" if inputs_from is not None else "random"}


# ---------------------------------------------------------------------------- CLI


def format_layers(result: PruneResult) -> str:
    rows = [f"{'#':>3} {'op':<16} {'weights':<40} {'shape':<18} {'before':>7} {'after':>7}"]
    for layer in result.layers:
        name = layer.name if len(layer.name) <= 40 else "..." + layer.name[-37:]
        rows.append(
            f"{layer.op_index:>3} {layer.opcode:<16} {name:<40} {str(list(layer.shape)):<18} "
            f"{layer.sparsity_before:>6.1%} {layer.sparsity_after:>6.1%}" + (f"  ({layer.note})" if layer.note else "")
        )
    rows.append(f"overall weight sparsity {result.sparsity:.1%} ({'x'.join(map(str, result.block))} blocks)")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.prune", description=__doc__.splitlines()[0])
    p.add_argument("model", help="input .tflite (int8 or float32 weights)")
    p.add_argument("-o", "--output", required=True, help="pruned .tflite to write")
    p.add_argument("--sparsity", type=float, required=True, help="fraction of weights to zero, in [0, 1)")
    p.add_argument("--per-layer", help="per-layer sparsity overriding the global one: 'NAME=0.9,NAME2=0.5' "
                                       "(NAME: weight tensor, output tensor or operator index)")
    p.add_argument("--block", default="1x1", help="block shape ROWSxCOLS: output channels x consecutive inputs "
                                                  "(1x1 unstructured; tinyrt's block kernels read 4x1 and 8x1)")
    p.add_argument("--skip-first-last", action="store_true", help="leave the first and last prunable layer dense")
    p.add_argument("--samples", help="inputs for the agreement check (.npy, [N, ...input shape]); default random")
    p.add_argument("--count", type=int, default=32, help="random inputs for the agreement check (default 32)")
    p.add_argument("--seed", type=int, default=0)
    return p


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        check_sparsity(args.sparsity)
        block = parse_block(args.block)
        per_layer = parse_per_layer(args.per_layer)
        if args.count < 1:
            raise PruneError("--count must be at least 1")
        try:
            data = Path(args.model).read_bytes()
        except OSError as exc:
            raise PruneError(f"cannot read model {args.model!r}: {exc.strerror}") from exc
        samples = None
        if args.samples:
            try:
                samples = np.load(args.samples, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise PruneError(f"cannot read samples {args.samples!r}: {exc}") from exc
        out_path = Path(args.output)
        if not out_path.parent.is_dir():
            raise PruneError(f"output directory {str(out_path.parent)!r} does not exist")
        result = prune_model(data, args.sparsity, per_layer, block, args.skip_first_last)
        print(f"model {args.model}: {sum(1 for layer in result.layers if layer.target is not None)} of "
              f"{len(result.layers)} prunable layers pruned")
        print(format_layers(result))
        agree = agreement(data, result.model, samples, args.count, args.seed)
        top1 = "n/a (not a classifier output)" if agree["top1_agreement"] is None else f"{agree['top1_agreement']:.1%}"
        print(f"agreement with the original on {agree['samples']} {agree['source']} inputs ({agree['backend']} backend): "
              f"top-1 {top1}, SQNR {agree['sqnr_db']:.1f} dB")
        _write_atomic(out_path, result.model)
        print(f"wrote {out_path} ({len(result.model):,} bytes)")
        return EXIT_OK
    except PruneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the documented exit code 1
        from .errors import TinyRTError

        if isinstance(exc, (TinyRTError, ValueError)):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
