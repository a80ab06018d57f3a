"""Shared test helpers: the shipped models and TFLite reference interpreters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parent / "models"

INT8_MODELS = [
    "hello_world_int8",
    "micro_speech_quantized",
    "kws_ref_model",
    "vww_96_int8",
    "pretrainedResnet_quant",
    "ad01_int8",
]


def model_path(name: str) -> Path:
    return MODELS / f"{name}.tflite"


def reference_interpreter(path_or_bytes, resolver: str = "reference"):
    """An ai-edge-litert interpreter with TFLite's reference kernels (the contract)."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    types = litert.OpResolverType
    kind = {"reference": types.BUILTIN_REF, "builtin": types.BUILTIN_WITHOUT_DEFAULT_DELEGATES}[resolver]
    kwargs = {"model_content": bytes(path_or_bytes)} if isinstance(path_or_bytes, (bytes, bytearray)) else {
        "model_path": str(path_or_bytes)
    }
    it = litert.Interpreter(experimental_op_resolver_type=kind, **kwargs)
    it.allocate_tensors()
    return it


def run_reference(it, inputs: list[np.ndarray]) -> list[np.ndarray]:
    for detail, x in zip(it.get_input_details(), inputs, strict=True):
        it.set_tensor(detail["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def random_inputs(model, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for info in model.inputs:
        if info.dtype.kind in "iu":
            lim = np.iinfo(info.dtype)
            out.append(rng.integers(lim.min, lim.max + 1, size=info.shape, dtype=info.dtype))
        else:
            out.append(rng.standard_normal(info.shape).astype(info.dtype))
    return out
