"""The alternative backend: ai-edge-litert (LiteRT) if installed, else tflite-runtime."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, ModelFormatError
from ..model import Model, TensorInfo

RESOLVERS = ("default", "builtin", "reference")


def interpreter_module() -> Any:
    """The Interpreter-providing module, LiteRT first."""
    try:
        from ai_edge_litert import interpreter as mod  # type: ignore[import-not-found]

        return mod
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as mod  # type: ignore[import-not-found]

        return mod
    except ImportError:
        pass
    raise BackendUnavailableError(
        "the tflite backend needs ai-edge-litert (pip install 'tinyrt[tflite]') "
        "or tflite-runtime (with numpy<2)"
    )


def available() -> bool:
    try:
        interpreter_module()
    except BackendUnavailableError:
        return False
    return True


def _info(detail: dict[str, Any]) -> TensorInfo:
    scale, zp = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        name=detail["name"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zp),
    )


class TFLiteModel(Model):
    backend = "tflite"

    def __init__(self, model_content: bytes, num_threads: int = 1, resolver: str = "default"):
        mod = interpreter_module()
        kwargs: dict[str, Any] = {"model_content": model_content, "num_threads": num_threads}
        if resolver != "default":
            types = mod.OpResolverType
            kwargs["experimental_op_resolver_type"] = (
                types.BUILTIN_REF if resolver == "reference" else types.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        try:
            self.interpreter = mod.Interpreter(**kwargs)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelFormatError(f"the tflite backend cannot load this model: {exc}") from exc
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
        super().__init__([_info(d) for d in self._in], [_info(d) for d in self._out])
        self.resolver = resolver

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        for detail, arr in zip(self._in, arrays, strict=True):
            self.interpreter.set_tensor(detail["index"], arr)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(d["index"]).copy() for d in self._out]


def quiet_stderr() -> None:  # pragma: no cover - cosmetic
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
