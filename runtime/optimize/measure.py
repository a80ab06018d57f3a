"""Facts about an int8 .tflite measured with tinyrt itself (no TensorFlow):
weight sparsity and block structure, accuracy, host latency, agreement with
TFLite's reference kernels."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from ..graph import Graph, parse_model
from .data import Dataset

# Operators whose input 1 is a weight tensor that pruning zeroes.
WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


@dataclass(frozen=True)
class LayerSparsity:
    op_index: int
    opcode: str
    tensor: str
    shape: tuple[int, ...]
    elements: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.elements if self.elements else 0.0


def _graph(model: bytes | str | os.PathLike[str] | Graph) -> Graph:
    return model if isinstance(model, Graph) else parse_model(model)


def weight_tensors(model: bytes | str | os.PathLike[str] | Graph) -> list[LayerSparsity]:
    """The constant weight tensors of conv / depthwise / fully-connected operators, with
    how many of their stored values are exactly zero (int8 weights are symmetric, so a
    stored 0 is a real 0 and contributes nothing to the accumulator)."""
    g = _graph(model)
    seen: set[int] = set()
    out = []
    for op in g.operators:
        if op.opcode not in WEIGHT_OPS or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        w = g.tensors[op.inputs[1]]
        if w.data is None or w.index in seen:
            continue
        seen.add(w.index)
        zero = 0
        if w.quant is not None and w.quant.zero_point.size:
            zero = int(w.quant.zero_point.reshape(-1)[0])
        data = np.asarray(w.data)
        out.append(LayerSparsity(op.index, op.opcode, w.name, w.shape, int(data.size), int(np.count_nonzero(data == zero))))
    return out


def weight_sparsity(model: bytes | str | os.PathLike[str] | Graph) -> float:
    """Zero weights / all weights over every conv, depthwise and fully-connected weight tensor."""
    layers = weight_tensors(model)
    total = sum(layer.elements for layer in layers)
    return sum(layer.zeros for layer in layers) / total if total else 0.0


def weight_bytes(model: bytes | str | os.PathLike[str] | Graph) -> int:
    """Bytes of all constant tensors (weights, biases, tables) as stored, dense."""
    g = _graph(model)
    return sum(t.nbytes for t in g.tensors if t.data is not None)


def block_zero_fraction(weights: np.ndarray, block: tuple[int, int]) -> float:
    """For TFLite-layout weights [out, ..., in]: the fraction of (rows x cols) blocks --
    `rows` output channels by `cols` consecutive values of the innermost axis -- that
    are entirely zero.  Equal to the element sparsity exactly when the zeros come in
    whole blocks."""
    rows, cols = block
    w = np.asarray(weights)
    w2 = w.reshape(w.shape[0], -1)
    # Only whole blocks count; a ragged edge is what the sparse kernels run densely.
    r_full = (w2.shape[0] // rows) * rows
    c_full = (w2.shape[1] // cols) * cols
    if r_full == 0 or c_full == 0:
        return 0.0
    tiles = w2[:r_full, :c_full].reshape(r_full // rows, rows, c_full // cols, cols)
    return float(np.mean(np.all(tiles == 0, axis=(1, 3))))


def predict(model_bytes: bytes | str | os.PathLike[str], x: np.ndarray, backend: str = "c") -> np.ndarray:
    """Dequantized outputs of the first output for every sample, through tinyrt."""
    import runtime

    m = runtime.load(model_bytes, backend=backend)  # type: ignore[arg-type]
    info = m.inputs[0]
    want = tuple(info.shape[1:])
    if tuple(x.shape[1:]) != want and x[0].size == int(np.prod(want)):
        x = x.reshape((len(x), *want))
    return np.stack([m.run([s[np.newaxis]], dequantize=True)[0].reshape(-1) for s in x])


def accuracy(model_bytes: bytes | str | os.PathLike[str], data: Dataset, backend: str = "c") -> float:
    """Top-1 accuracy of an int8 classifier run by tinyrt (the float input is quantized
    with the input tensor's scale, as on the board)."""
    if len(data) == 0:
        raise ValueError("accuracy of an empty data set")
    probs = predict(model_bytes, data.x, backend)
    return float(np.mean(probs.argmax(axis=1) == data.y))


def host_latency_ms(model_bytes: bytes | str | os.PathLike[str], repeat: int = 200, backend: str = "c") -> float:
    """Median milliseconds per inference on this machine (one warm-up run first)."""
    import runtime

    m = runtime.load(model_bytes, backend=backend)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    x = [rng.integers(-128, 128, size=i.shape, dtype=i.dtype) if i.dtype.kind in "iu" else
         rng.standard_normal(i.shape).astype(i.dtype) for i in m.inputs]
    m.run(x)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        m.run(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def host_latencies_ms(models: dict[str, bytes], rounds: int = 30, per_round: int = 100,
                      backend: str = "c") -> dict[str, float]:
    """Median ms per inference of several models, measured in interleaved rounds so
    that load from other processes on a shared machine falls on all of them alike."""
    import runtime

    loaded = {name: runtime.load(content, backend=backend) for name, content in models.items()}  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    inputs = {name: [rng.integers(-128, 128, size=i.shape, dtype=i.dtype) if i.dtype.kind in "iu" else
                     rng.standard_normal(i.shape).astype(i.dtype) for i in m.inputs] for name, m in loaded.items()}
    samples: dict[str, list[float]] = {name: [] for name in loaded}
    for _ in range(rounds):
        for name, m in loaded.items():
            x = inputs[name]
            m.run(x)
            t0 = time.perf_counter()
            for _ in range(per_round):
                m.run(x)
            samples[name].append((time.perf_counter() - t0) / per_round)
    return {name: float(np.median(v) * 1e3) for name, v in samples.items()}


def max_abs_diff_vs_reference(model_bytes: bytes, x: np.ndarray) -> int:
    """Largest |tinyrt C - LiteRT BUILTIN_REF| over the samples' int8 outputs
    (0 means bit-exact).  Needs ai-edge-litert."""
    from ai_edge_litert import interpreter as litert

    import runtime

    ours = runtime.load(model_bytes, backend="c")
    ref = litert.Interpreter(model_content=bytes(model_bytes),
                             experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    (inp,) = ref.get_input_details()
    worst = 0
    for s in x:
        (q,) = ours.prepare_inputs([s.reshape(ours.inputs[0].shape)])
        a = ours.run([q])
        ref.set_tensor(inp["index"], q)
        ref.invoke()
        b = [ref.get_tensor(d["index"]) for d in ref.get_output_details()]
        for u, v in zip(a, b, strict=True):
            if u.shape != v.shape or u.dtype != v.dtype:
                raise AssertionError(f"output {u.shape}/{u.dtype} vs reference {v.shape}/{v.dtype}")
            worst = max(worst, int(np.max(np.abs(u.astype(np.int64) - v.astype(np.int64)))))
    return worst
