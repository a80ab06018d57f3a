"""The backend-independent Model interface: I/O descriptions and input checks.

Every backend's model has `inputs`/`outputs` (TensorInfo) and `run()`.  The
checks and conversions of user inputs live here, once, so all backends
accept and reject exactly the same things.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import TinyRTError


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float  # 0.0 when the tensor is not quantized
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype.kind in "iu"

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Float -> this tensor's integer type, as TFLite's QUANTIZE does it:
        divide in float32, round halves away from zero, add the zero point."""
        info = np.iinfo(self.dtype)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            scaled = (np.asarray(values, dtype=np.float32) / np.float32(self.scale)).astype(np.float64)
            # In float64 the +-0.5 is exact for any float32, so trunc rounds right.
            rounded = np.trunc(scaled + np.copysign(0.5, scaled))
        rounded = np.nan_to_num(rounded, nan=0.0, posinf=info.max, neginf=info.min)
        q = np.clip(rounded + self.zero_point, info.min, info.max)
        return q.astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        if not self.quantized:
            return np.asarray(values, dtype=np.float32)
        return (self.scale * (np.asarray(values, dtype=np.float64) - self.zero_point)).astype(np.float32)


InputsArg = Sequence[np.ndarray] | Mapping[str, np.ndarray] | np.ndarray


class Model(abc.ABC):
    """A loaded model.  Not safe to run from two threads at once."""

    backend: str = "?"

    def __init__(self, inputs: list[TensorInfo], outputs: list[TensorInfo]):
        self.inputs = inputs
        self.outputs = outputs

    def __repr__(self) -> str:
        ins = ", ".join(f"{t.name}{list(t.shape)}:{t.dtype}" for t in self.inputs)
        outs = ", ".join(f"{t.name}{list(t.shape)}:{t.dtype}" for t in self.outputs)
        return f"<{type(self).__name__} backend={self.backend} inputs=({ins}) outputs=({outs})>"

    def run(self, inputs: InputsArg, dequantize: bool = False) -> list[np.ndarray]:
        """Run one inference.  inputs: a list in input order, a dict by name,
        or a single array for a one-input model.  Float arrays given to an
        integer input are quantized with its scale and zero point."""
        arrays = self.prepare_inputs(inputs)
        try:
            outputs = self._run(arrays)
        except (NotImplementedError, RecursionError):
            raise
        except RuntimeError as exc:  # LiteRT finds some inconsistent models only in invoke()
            raise TinyRTError(f"the {self.backend} backend could not run the model: {exc}") from exc
        if dequantize:
            outputs = [info.dequantize(o) for info, o in zip(self.outputs, outputs, strict=True)]
        return outputs

    @abc.abstractmethod
    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run on checked arrays (exact dtype and shape)."""

    def prepare_inputs(self, inputs: InputsArg) -> list[np.ndarray]:
        # (run() is on the hot path: this costs ~0.4 us for the common call,
        # one array for a one-input model; zip(strict=True) alone costs ~1 us)
        if type(inputs) is np.ndarray and len(self.inputs) == 1:
            return [self._check_one(self.inputs[0], inputs)]
        if isinstance(inputs, np.ndarray):
            given: list[object] = [inputs]
        elif isinstance(inputs, Mapping):
            names = [t.name for t in self.inputs]
            unknown = sorted(set(inputs) - set(names))
            missing = [n for n in names if n not in inputs]
            if unknown or missing:
                raise ValueError(
                    f"inputs by name: expected {names}, got {sorted(inputs)}"
                    + (f" (unknown {unknown})" if unknown else "")
                    + (f" (missing {missing})" if missing else "")
                )
            given = [inputs[n] for n in names]
        elif isinstance(inputs, (list, tuple)):
            given = list(inputs)
        else:
            raise ValueError(f"inputs must be an array, a list of arrays or a dict, got {type(inputs).__name__}")
        if len(given) != len(self.inputs):
            raise ValueError(f"the model takes {len(self.inputs)} input(s), got {len(given)}")
        return [self._check_one(self.inputs[i], given[i]) for i in range(len(given))]

    @staticmethod
    def _check_one(info: TensorInfo, value: object) -> np.ndarray:
        if (
            type(value) is np.ndarray
            and value.dtype == info.dtype
            and value.shape == info.shape
            and value.flags.c_contiguous
        ):
            return value  # the common case, checked in well under a microsecond
        arr = np.asarray(value)
        if arr.dtype != info.dtype:
            if arr.dtype.kind == "f" and info.quantized:
                arr = info.quantize(arr)
            elif arr.dtype.kind == "f" and info.dtype.kind == "f":
                arr = arr.astype(info.dtype)
            else:
                raise ValueError(
                    f"input {info.name!r}: expected dtype {info.dtype} (or float to be quantized), got {arr.dtype}"
                )
        if arr.shape != info.shape:
            # Accept the shape without a leading batch dimension of 1.
            if info.shape[:1] == (1,) and arr.shape == info.shape[1:]:
                arr = arr.reshape(info.shape)
            else:
                raise ValueError(f"input {info.name!r}: expected shape {list(info.shape)}, got {list(arr.shape)}")
        return np.ascontiguousarray(arr)
