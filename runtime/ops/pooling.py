"""AVERAGE_POOL_2D and MAX_POOL_2D (int8, same quantization in and out)."""

from __future__ import annotations

from .._native import lib
from ..quant import activation_range
from .common import INT8, OpContext, Step, padding_same_or_valid, set_dims


def _build_pool(ctx: OpContext, kind: int) -> Step:
    x = ctx.req_input(0)
    y = ctx.output()
    ctx.expect_dtype(x, INT8, what="input")
    ctx.expect_dtype(y, INT8, what="output")
    ctx.expect_rank(x, 4, "input")
    ctx.expect_rank(y, 4, "output")
    in_s, in_zp = ctx.scale_zp(x, "input")
    out_s, out_zp = ctx.scale_zp(y, "output")
    # TFLite's int8 pooling kernels never rescale: they assume this.
    if in_zp != out_zp or abs(in_s - out_s) > 1e-6:
        raise ctx.unsupported("int8 pooling needs the same scale and zero point on input and output")
    o = ctx.options
    fh, fw = int(o.get("filter_height", 1)), int(o.get("filter_width", 1))
    sh, sw = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    padding = int(o.get("padding", 0))
    oh, pad_top = padding_same_or_valid(ctx, padding, x.shape[1], fh, sh, 1)
    ow, pad_left = padding_same_or_valid(ctx, padding, x.shape[2], fw, sw, 1)
    if tuple(y.shape) != (x.shape[0], oh, ow, x.shape[3]):
        raise ctx.unsupported(f"output shape {list(y.shape)} disagrees with the computed {[x.shape[0], oh, ow, x.shape[3]]}")
    # Every window must overlap the image, or TFLite's average is undefined.
    if pad_top >= fh or pad_left >= fw:
        raise ctx.unsupported("padding larger than the pooling window leaves empty windows")
    act_min, act_max = activation_range(int(o.get("fused_activation_function", 0)), out_s, out_zp)
    p = ctx.new("trt_pool_params *")
    set_dims(p.input, x.shape)
    set_dims(p.output, y.shape)
    p.filter_h, p.filter_w, p.stride_h, p.stride_w = fh, fw, sh, sw
    p.pad_top, p.pad_left = pad_top, pad_left
    p.act_min, p.act_max = act_min, act_max
    return ctx.finish(Step(kind=kind, params=p, inputs=[x.index], output=y.index))


def build_avg_pool(ctx: OpContext) -> Step:
    return _build_pool(ctx, lib.TRT_OP_AVG_POOL)


def build_max_pool(ctx: OpContext) -> Step:
    return _build_pool(ctx, lib.TRT_OP_MAX_POOL)
