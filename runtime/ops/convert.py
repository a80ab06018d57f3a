"""QUANTIZE (float -> 8-bit, and 8-bit requantization) and DEQUANTIZE."""

from __future__ import annotations

import numpy as np

from .._native import lib
from ..quant import f32, quantize_multiplier
from .common import FLOAT32, INT8, UINT8, OpContext, Step


def build_quantize(ctx: OpContext) -> Step:
    x, y = ctx.req_input(0), ctx.output()
    ctx.expect_dtype(y, INT8, UINT8, what="output")
    ctx.expect_dtype(x, FLOAT32, INT8, UINT8, what="input")
    if x.size != y.size:
        raise ctx.unsupported("input and output sizes differ")
    if y.quant is not None and y.quant.per_channel:
        raise ctx.unsupported("per-channel QUANTIZE is not supported")
    out_s, out_zp = ctx.scale_zp(y, "output")
    p = ctx.new("trt_quantize_params *")
    p.size = y.size
    p.zero_point = out_zp
    p.qmin, p.qmax = (-128, 127) if y.dtype == INT8 else (0, 255)
    if x.dtype == FLOAT32:
        # AffineQuantize divides by (float)(double)scale: the float32 scale.
        p.scale = f32(out_s)
        kind = lib.TRT_OP_QUANTIZE_F32_S8 if y.dtype == INT8 else lib.TRT_OP_QUANTIZE_F32_U8
        extra = 0
    else:
        in_s, in_zp = ctx.scale_zp(x, "input")
        p.input_zero_point = in_zp
        p.multiplier, p.shift = quantize_multiplier(f32(in_s) / f32(out_s))
        kind = lib.TRT_OP_REQUANTIZE
        extra = int(x.dtype == INT8) | (int(y.dtype == INT8) << 1)
    return ctx.finish(Step(kind=kind, params=p, inputs=[x.index], output=y.index, extra=extra))


def build_dequantize(ctx: OpContext) -> Step:
    x, y = ctx.req_input(0), ctx.output()
    ctx.expect_dtype(x, INT8, UINT8, what="input")
    ctx.expect_dtype(y, FLOAT32, what="output")
    if x.size != y.size:
        raise ctx.unsupported("input and output sizes differ")
    if x.quant is not None and x.quant.per_channel:
        raise ctx.unsupported("per-channel DEQUANTIZE is not supported")
    in_s, in_zp = ctx.scale_zp(x, "input")
    p = ctx.new("trt_dequantize_params *")
    p.size = x.size
    p.zero_point = in_zp
    p.scale = f32(in_s)  # DequantizationParams.scale is a double holding the float
    kind = lib.TRT_OP_DEQUANTIZE_S8 if x.dtype == INT8 else lib.TRT_OP_DEQUANTIZE_U8
    operand = x.data if x.is_constant else x.index
    return ctx.finish(Step(kind=kind, params=p, inputs=[operand], output=y.index))


__all__ = ["build_quantize", "build_dequantize", "np"]
