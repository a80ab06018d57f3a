"""runtime.load(): pick a backend for a .tflite model."""

from __future__ import annotations

import os
import sys
from typing import Literal

from .errors import ModelFormatError, UnsupportedModelError
from .graph import parse_model
from .model import Model

Backend = Literal["auto", "c", "tflite"]


def _read(path: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(path, (bytes, bytearray, memoryview)):
        return bytes(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ModelFormatError(f"cannot read model {os.fspath(path)!r}: {exc.strerror}") from exc


def load(
    path: str | os.PathLike[str] | bytes,
    backend: Backend = "auto",
    num_threads: int = 1,
    fc_rounding: Literal["tflite", "tflm"] = "tflite",
    sparse: Literal["auto", "off", "force"] = "auto",
) -> Model:
    """Load a .tflite model.

    backend: "c" runs tinyrt's kernels (raises UnsupportedModelError naming the
    first operator it cannot run); "tflite" uses ai-edge-litert or
    tflite-runtime; "auto" takes "c" when it supports every operator, else
    "tflite" with a one-line notice on stderr.
    fc_rounding: "tflite" (default) rescales FULLY_CONNECTED like TFLite's
    reference kernels; "tflm" like TFLite Micro and CMSIS-NN.
    sparse: how the C backend treats pruned (zero) weights of FULLY_CONNECTED
    and CONV_2D layers: "auto" (default) runs a layer with a sparse kernel
    where the cost model says that is faster, "off" always runs the dense
    kernels, "force" the sparse ones wherever they apply.  Results are the
    same bits in every mode.
    """
    if backend not in ("auto", "c", "tflite"):
        raise ValueError(f"backend must be 'auto', 'c' or 'tflite', got {backend!r}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be at least 1, got {num_threads}")
    if fc_rounding not in ("tflite", "tflm"):
        raise ValueError(f"fc_rounding must be 'tflite' or 'tflm', got {fc_rounding!r}")
    if sparse not in ("auto", "off", "force"):
        raise ValueError(f"sparse must be 'auto', 'off' or 'force', got {sparse!r}")
    content = _read(path)
    if backend == "tflite":
        from .backends.tflite import TFLiteModel

        parse_model(content)  # the same clear errors for corrupt files on both backends
        return TFLiteModel(content, num_threads=num_threads)
    graph = parse_model(content)
    from .backends.c import CModel
    from .plan import _check_graph

    try:
        # The graph checks first: CModel describes the I/O tensors before it
        # plans, and an input of a type it cannot run must fall back cleanly.
        _check_graph(graph)
        return CModel(graph, fc_fixed_point=fc_rounding == "tflm", sparse=sparse, num_threads=num_threads)
    except UnsupportedModelError as exc:
        if backend == "c":
            raise
        from .backends.tflite import TFLiteModel, available

        if not available():
            raise UnsupportedModelError(
                f"{exc} -- and no tflite backend is installed to fall back on", exc.op_index, exc.op_name
            ) from exc
        print(f"tinyrt: using the tflite backend: {exc}", file=sys.stderr)
        return TFLiteModel(content, num_threads=num_threads)
