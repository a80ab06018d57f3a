"""SOFTMAX on int8 (TFLite's reference fixed-point recipe)."""

from __future__ import annotations

import math

import numpy as np

from .._native import lib
from ..quant import quantize_multiplier_greater_than_one
from .common import INT8, OpContext, Step

SCALED_DIFF_INTEGER_BITS = 5


def softmax_constants(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius: (multiplier, left shift, diff_min)."""
    real = min(
        float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
        float((1 << 31) - 1),
    )
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    radius = math.floor(
        ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)) / float(1 << left_shift)
    )
    return multiplier, left_shift, -radius


def build_softmax(ctx: OpContext) -> Step:
    x, y = ctx.req_input(0), ctx.output()
    ctx.expect_dtype(x, INT8, what="input")
    ctx.expect_dtype(y, INT8, what="output")
    if x.shape != y.shape or not x.shape:
        raise ctx.unsupported(f"input {list(x.shape)} and output {list(y.shape)} shapes must match")
    in_s, _ = ctx.scale_zp(x, "input")
    out_s, out_zp = ctx.scale_zp(y, "output")
    if out_zp != -128 or abs(out_s - 1.0 / 256) > 0.001 / 256:
        raise ctx.unsupported(f"int8 softmax output must have scale 1/256 and zero point -128, got {out_s}, {out_zp}")
    beta = float(ctx.options.get("beta", 1.0))
    multiplier, left_shift, diff_min = softmax_constants(beta, in_s)
    p = ctx.new("trt_softmax_params *")
    p.depth = x.shape[-1]
    p.outer = x.size // x.shape[-1] if x.shape[-1] else 0
    p.input_multiplier, p.input_left_shift, p.diff_min = multiplier, left_shift, diff_min
    return ctx.finish(Step(kind=lib.TRT_OP_SOFTMAX, params=p, inputs=[x.index], output=y.index))
