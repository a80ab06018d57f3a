"""RESHAPE (an alias, no copy), PAD / PADV2 and CONCATENATION on 8-bit tensors."""

from __future__ import annotations

import numpy as np

from .._native import lib
from .common import INT8, UINT8, Alias, OpContext, Step


def build_reshape(ctx: OpContext) -> Alias:
    x, y = ctx.req_input(0), ctx.output()
    if x.size != y.size:
        raise ctx.unsupported(f"reshape from {list(x.shape)} to {list(y.shape)} changes the element count")
    if x.dtype != y.dtype:
        raise ctx.unsupported("reshape changes the data type")
    if x.quant is not None and y.quant is not None:
        if x.quant.scalar_zero_point != y.quant.scalar_zero_point or abs(x.quant.scalar_scale - y.quant.scalar_scale) > 1e-9:
            raise ctx.unsupported("reshape changes the quantization")
    return Alias(source=x.index, target=y.index)


def build_pad(ctx: OpContext) -> Step:
    x, pads_t, y = ctx.req_input(0), ctx.req_input(1), ctx.output()
    ctx.expect_dtype(x, INT8, UINT8, what="input")
    if y.dtype != x.dtype:
        raise ctx.unsupported("pad changes the data type")
    if pads_t.data is None:
        raise ctx.unsupported("paddings must be a constant tensor")
    rank = len(x.shape)
    pads = np.asarray(pads_t.data, dtype=np.int64).reshape(-1)
    if pads.size != 2 * rank or rank > 4:
        raise ctx.unsupported(f"paddings of shape {list(pads_t.shape)} do not fit an input of rank {rank} (at most 4)")
    pads = pads.reshape(rank, 2)
    if np.any(pads < 0):
        raise ctx.unsupported("negative paddings are not supported")
    expected = tuple(int(d + a + b) for d, (a, b) in zip(x.shape, pads, strict=True))
    if expected != tuple(y.shape):
        raise ctx.unsupported(f"output shape {list(y.shape)} disagrees with the padded {list(expected)}")
    pad_value = 0
    if x.quant is not None:
        pad_value = x.quant.scalar_zero_point
        if y.quant is not None and y.quant.scalar_zero_point != pad_value:
            raise ctx.unsupported("pad changes the zero point")
    const_t = ctx.input(2, optional=True)  # PADV2
    if const_t is not None:
        if const_t.data is None or const_t.size != 1 or const_t.dtype != x.dtype:
            raise ctx.unsupported("PADV2's constant value must be a scalar constant of the input type")
        pad_value = int(const_t.data.reshape(-1)[0])
    p = ctx.new("trt_pad_params *")
    lead = 4 - rank
    for d in range(4):
        src = d - lead
        p.in_shape[d] = int(x.shape[src]) if src >= 0 else 1
        p.pad_before[d] = int(pads[src][0]) if src >= 0 else 0
        p.pad_after[d] = int(pads[src][1]) if src >= 0 else 0
    # The C struct holds an int8; uint8 bytes are the same bits.
    p.pad_value = int(np.array(pad_value).astype(x.dtype).view(np.int8))
    return ctx.finish(Step(kind=lib.TRT_OP_PAD, params=p, inputs=[x.index], output=y.index))


def build_concatenation(ctx: OpContext) -> Step:
    y = ctx.output()
    ctx.expect_dtype(y, INT8, UINT8, what="output")
    if int(ctx.options.get("fused_activation_function", 0)) != 0:
        raise ctx.unsupported("a fused activation on concatenation is not supported")
    inputs = [ctx.req_input(k) for k in range(len(ctx.op.inputs))]
    if not inputs:
        raise ctx.unsupported("no inputs")
    rank = len(y.shape)
    axis = int(ctx.options.get("axis", 0))
    if axis < 0:
        axis += rank
    if not 0 <= axis < rank:
        raise ctx.unsupported(f"axis {ctx.options.get('axis')} is out of range for rank {rank}")
    for t in inputs:
        if t.dtype != y.dtype or len(t.shape) != rank:
            raise ctx.unsupported("inputs must share the output's type and rank")
        if any(t.shape[d] != y.shape[d] for d in range(rank) if d != axis):
            raise ctx.unsupported(f"input shape {list(t.shape)} does not match output {list(y.shape)} off the axis")
        if y.quant is not None and (
            t.quant is None
            or t.quant.scalar_zero_point != y.quant.scalar_zero_point
            or t.quant.scalar_scale != y.quant.scalar_scale
        ):
            raise ctx.unsupported("int8 concatenation needs the same scale and zero point on every input (as TFLite)")
    if sum(t.shape[axis] for t in inputs) != y.shape[axis]:
        raise ctx.unsupported("the inputs' lengths along the axis do not add up to the output's")
    if len(inputs) > 64:
        raise ctx.unsupported("more than 64 inputs")
    inner = int(np.prod(y.shape[axis + 1 :], dtype=np.int64))
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    axis_bytes = np.array([t.shape[axis] * inner for t in inputs], dtype=np.int32)
    p = ctx.new("trt_concat_params *")
    p.num_inputs = len(inputs)
    p.outer = outer
    p.axis_bytes = ctx.c_array(axis_bytes, "const int32_t *")
    operands = [t.data if t.is_constant else t.index for t in inputs]
    return ctx.finish(Step(kind=lib.TRT_OP_CONCAT, params=p, inputs=operands, output=y.index))
