"""What every operator's plan-time builder shares.

A builder turns one TFLite operator into one `Step`: the C kernel to call,
its parameter struct (filled once, here) and the tensors it reads and
writes.  Builders check everything the C kernel assumes, so that a model the
planner accepts cannot make a kernel read or write out of bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._native import ffi
from ..errors import ModelFormatError, UnsupportedModelError
from ..graph import Graph, Operator, Tensor

INT8 = np.dtype(np.int8)
UINT8 = np.dtype(np.uint8)
INT32 = np.dtype(np.int32)
FLOAT32 = np.dtype(np.float32)


@dataclass
class Step:
    """One kernel call of the plan."""

    kind: int  # trt_op_kind
    params: Any  # cffi pointer to the parameter struct
    inputs: list[int | np.ndarray]  # tensor indices, or constant arrays
    output: int  # tensor index
    scratch_bytes: int = 0
    extra: int = 0
    keep: list[Any] = field(default_factory=list)  # buffers the params point into
    macs: int = 0
    weight_bytes: int = 0
    note: str = ""
    im2col_scratch: int = 0  # CONV_2D: scratch bytes of the im2col path


@dataclass
class Alias:
    """The output is the input's memory under another shape (RESHAPE)."""

    source: int
    target: int


BuildResult = Step | Alias


class OpContext:
    """The operator being planned, with checked access to its tensors."""

    NULL = ffi.NULL

    def __init__(self, graph: Graph, op: Operator, options: dict[str, Any], host_layouts: bool = True):
        self.graph = graph
        self.op = op
        self.options = options
        # Whether to add this machine's SIMD weight layouts to the plan.
        self.host_layouts = host_layouts
        self._keep: list[Any] = []

    # -- errors -----------------------------------------------------------
    def unsupported(self, message: str) -> UnsupportedModelError:
        types = ", ".join(
            self.graph.describe_tensor(i) if i >= 0 else "(none)" for i in self.op.inputs
        )
        outs = ", ".join(self.graph.describe_tensor(i) for i in self.op.outputs)
        return UnsupportedModelError(
            f"operator {self.op.index} ({self.op.opcode}): {message} [inputs: {types}; outputs: {outs}]",
            op_index=self.op.index,
            op_name=self.op.opcode,
        )

    # -- tensors ----------------------------------------------------------
    def input(self, k: int, optional: bool = False) -> Tensor | None:
        if k >= len(self.op.inputs) or self.op.inputs[k] < 0:
            if optional:
                return None
            raise self.unsupported(f"input {k} is missing")
        return self.graph.tensors[self.op.inputs[k]]

    def req_input(self, k: int) -> Tensor:
        t = self.input(k)
        assert t is not None
        return t

    def output(self, k: int = 0) -> Tensor:
        if k >= len(self.op.outputs):
            raise self.unsupported(f"output {k} is missing")
        return self.graph.tensors[self.op.outputs[k]]

    def expect_dtype(self, t: Tensor, *dtypes: np.dtype, what: str) -> None:
        if t.dtype not in dtypes:
            names = " or ".join(str(d) for d in dtypes)
            raise self.unsupported(f"{what} must be {names}, got {t.type_name}")

    def expect_rank(self, t: Tensor, rank: int, what: str) -> None:
        if len(t.shape) != rank:
            raise self.unsupported(f"{what} must have rank {rank}, got shape {list(t.shape)}")

    def scale_zp(self, t: Tensor, what: str) -> tuple[float, int]:
        if t.quant is None:
            raise self.unsupported(f"{what} has no quantization parameters")
        if not t.quant.scalar_scale > 0:  # the builders divide by it
            raise ModelFormatError(
                f"operator {self.op.index} ({self.op.opcode}): {what} {self.graph.describe_tensor(t.index)} "
                f"has quantization scale {t.quant.scalar_scale}; it must be positive"
            )
        return t.quant.scalar_scale, t.quant.scalar_zero_point

    def activation_variable(self, t: Tensor, what: str) -> None:
        if t.is_constant:
            raise self.unsupported(f"{what} is constant; only computed tensors are supported there")

    # -- C structures -----------------------------------------------------
    def new(self, ctype: str) -> Any:
        obj = ffi.new(ctype)
        self._keep.append(obj)
        return obj

    def c_array(self, values: np.ndarray, ctype: str) -> Any:
        """A C pointer to a contiguous copy/view of values, kept alive with the plan."""
        arr = np.ascontiguousarray(values)
        self._keep.append(arr)
        return ffi.cast(ctype, ffi.from_buffer(arr))

    def finish(self, step: Step) -> Step:
        step.keep.extend(self._keep)
        return step


def dims(shape: tuple[int, ...] | list[int]) -> dict[str, int]:
    """NHWC dict for a trt_dims initialiser."""
    n, h, w, c = shape
    return {"n": int(n), "h": int(h), "w": int(w), "c": int(c)}


def set_dims(struct_field: Any, shape: tuple[int, ...] | list[int]) -> None:
    d = dims(shape)
    struct_field.n, struct_field.h, struct_field.w, struct_field.c = d["n"], d["h"], d["w"], d["c"]


def padding_same_or_valid(
    ctx: OpContext, padding: int, in_size: int, filter_size: int, stride: int, dilation: int
) -> tuple[int, int]:
    """TFLite ComputeOutSize + ComputePaddingWithOffset: (out_size, pad_before)."""
    if stride <= 0 or dilation <= 0 or filter_size <= 0:
        raise ctx.unsupported(f"stride {stride}, dilation {dilation} and filter size {filter_size} must be positive")
    effective = (filter_size - 1) * dilation + 1
    if padding == 0:  # SAME
        out = (in_size + stride - 1) // stride
    elif padding == 1:  # VALID
        out = (in_size + stride - effective) // stride
    else:
        raise ctx.unsupported(f"unknown padding mode {padding}")
    if out <= 0:
        raise ctx.unsupported(f"filter {filter_size} (dilation {dilation}) does not fit input of size {in_size}")
    total = max((out - 1) * stride + effective - in_size, 0)
    return out, total // 2


Builder = Callable[[OpContext], BuildResult]
