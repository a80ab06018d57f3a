"""ADD and MUL on int8 with numpy broadcasting (up to four dimensions)."""

from __future__ import annotations

import numpy as np

from .._native import lib
from ..quant import activation_range, f32, quantize_multiplier, quantize_multiplier_smaller_than_one
from .common import INT8, OpContext, Step


def broadcast_strides(ctx: OpContext, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Element strides of in_shape viewed in the 4-D out_shape (0 where broadcast)."""
    if len(in_shape) > 4 or len(out_shape) > 4:
        raise ctx.unsupported("broadcasting beyond four dimensions is not supported")
    shape = (1,) * (4 - len(in_shape)) + tuple(in_shape)
    out = (1,) * (4 - len(out_shape)) + tuple(out_shape)
    strides = [0, 0, 0, 0]
    step = 1
    for d in range(3, -1, -1):
        if shape[d] == out[d]:
            strides[d] = step if shape[d] > 1 else 0
        elif shape[d] == 1:
            strides[d] = 0
        else:
            raise ctx.unsupported(f"shapes {list(in_shape)} and {list(out_shape)} do not broadcast")
        step *= shape[d]
    return strides


def _prepare(ctx: OpContext) -> tuple:
    a, b, y = ctx.req_input(0), ctx.req_input(1), ctx.output()
    for t, what in ((a, "input 1"), (b, "input 2"), (y, "output")):
        ctx.expect_dtype(t, INT8, what=what)
    try:
        out_shape = tuple(np.broadcast_shapes(a.shape, b.shape)) if a.shape != b.shape else a.shape
    except ValueError:  # numpy's message names neither the operator nor the model
        raise ctx.unsupported(f"input shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    if tuple(y.shape) != tuple(out_shape):
        raise ctx.unsupported(f"output shape {list(y.shape)} is not the broadcast shape {list(out_shape)}")
    p = ctx.new("trt_binary_params *")
    padded = (1,) * (4 - len(out_shape)) + tuple(out_shape) if len(out_shape) <= 4 else out_shape
    if len(padded) > 4:
        raise ctx.unsupported("more than four dimensions are not supported")
    for d in range(4):
        p.out_shape[d] = int(padded[d])
    for d, s in enumerate(broadcast_strides(ctx, a.shape, out_shape)):
        p.in1_strides[d] = s
    for d, s in enumerate(broadcast_strides(ctx, b.shape, out_shape)):
        p.in2_strides[d] = s
    return a, b, y, p


def _operands(a, b) -> list:
    return [a.data if a.is_constant else a.index, b.data if b.is_constant else b.index]


def build_add(ctx: OpContext) -> Step:
    a, b, y, p = _prepare(ctx)
    s1, z1 = ctx.scale_zp(a, "input 1")
    s2, z2 = ctx.scale_zp(b, "input 2")
    so, zo = ctx.scale_zp(y, "output")
    # add.cc Prepare, 8-bit path: left shift 20, common scale 2 * max input.
    left_shift = 20
    twice_max = 2.0 * max(f32(s1), f32(s2))
    m1, sh1 = quantize_multiplier_smaller_than_one(f32(s1) / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one(f32(s2) / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one(twice_max / f32((1 << left_shift) * np.float32(so)))
    p.input1_offset, p.input2_offset, p.output_offset = -z1, -z2, zo
    p.left_shift = left_shift
    p.input1_multiplier, p.input1_shift = m1, sh1
    p.input2_multiplier, p.input2_shift = m2, sh2
    p.output_multiplier, p.output_shift = mo, sho
    p.act_min, p.act_max = activation_range(int(ctx.options.get("fused_activation_function", 0)), so, zo)
    return ctx.finish(Step(kind=lib.TRT_OP_ADD, params=p, inputs=_operands(a, b), output=y.index))


def build_mul(ctx: OpContext) -> Step:
    a, b, y, p = _prepare(ctx)
    s1, z1 = ctx.scale_zp(a, "input 1")
    s2, z2 = ctx.scale_zp(b, "input 2")
    so, zo = ctx.scale_zp(y, "output")
    # mul.cc Prepare: the product of scales is formed in float32.
    real = float(np.float32(s1) * np.float32(s2) / np.float32(so))
    mo, sho = quantize_multiplier(real)
    p.input1_offset, p.input2_offset, p.output_offset = -z1, -z2, zo
    p.output_multiplier, p.output_shift = mo, sho
    p.act_min, p.act_max = activation_range(int(ctx.options.get("fused_activation_function", 0)), so, zo)
    return ctx.finish(Step(kind=lib.TRT_OP_MUL, params=p, inputs=_operands(a, b), output=y.index))
