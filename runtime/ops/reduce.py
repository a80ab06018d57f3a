"""MEAN on int8 over any constant set of axes (Keras GlobalAveragePooling is axes [1, 2]).

TFLite's reference kernel (reduce.cc EvalMean, kReference) sends every int8
MEAN through reference_ops::QuantizedMeanOrSum, whatever the axes and
whether or not the input and output quantization agree: an int32 sum, minus
zero_point * count, then one MultiplyByQuantizedMultiplier whose multiplier
has 1 / count folded in.  `mean_multiplier` reproduces that folding,
including the truncating division and the clamp of the extra shift.
"""

from __future__ import annotations

import math

import numpy as np

from .._native import lib
from ..quant import quantize_multiplier
from .common import INT8, INT32, OpContext, Step

MAX_DIMS = 8
# TFLite's int32 accumulator holds the raw sum (|sum| <= 128 * count) and
# then sum - zero_point * count (|.| <= 255 * count): both must fit.
MAX_COUNT = (1 << 31) // 256


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """PrepareMeanOrSum + the 1/count folding of QuantizedMeanOrSum: (multiplier, shift)."""
    # The ratio of the float32 scales is formed in double here (unlike ReluX).
    multiplier, shift = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    extra = count.bit_length() - 1  # 63 - CountLeadingZeros(count)
    extra = min(extra, 32, 31 + shift)
    if extra < 0:
        raise ValueError(f"scale ratio {input_scale / output_scale} is too small to rescale")
    # Nonnegative operands: Python's floor division is C's truncation here.
    multiplier = (multiplier << extra) // count
    return multiplier, shift - extra


def resolve_axes(axes: list[int], rank: int) -> list[int]:
    """TFLite ResolveAxis: negative axes count from the end, duplicates collapse."""
    resolved: list[int] = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"axis {a} is out of range for rank {rank}")
        a = a + rank if a < 0 else a
        if a not in resolved:
            resolved.append(a)
    return resolved


def loop_nests(shape: tuple[int, ...], reduced: set[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(kept, reduced) lists of (size, element stride), outermost first.

    Size-1 axes are dropped and neighbouring axes of the same kind merged:
    contiguous axes a, a+1 have stride[a] = stride[a+1] * size[a+1], so their
    product walks with the inner stride."""
    strides = [int(np.prod(shape[d + 1 :], dtype=np.int64)) for d in range(len(shape))]
    kept: list[tuple[int, int]] = []
    red: list[tuple[int, int]] = []
    last_kind: bool | None = None
    for d, size in enumerate(shape):
        if size == 1:
            continue
        is_reduced = d in reduced
        group = red if is_reduced else kept
        if last_kind is is_reduced and group:
            outer_size, _ = group[-1]
            group[-1] = (outer_size * size, strides[d])
        else:
            group.append((size, strides[d]))
        last_kind = is_reduced
    return kept, red


def build_mean(ctx: OpContext) -> Step:
    x, axes_t, y = ctx.req_input(0), ctx.req_input(1), ctx.output()
    ctx.expect_dtype(x, INT8, what="input")
    ctx.expect_dtype(y, INT8, what="output")
    ctx.expect_dtype(axes_t, INT32, what="axes")
    ctx.activation_variable(x, "input")
    if axes_t.data is None:
        raise ctx.unsupported("the axes must be a constant tensor")
    rank = len(x.shape)
    if rank > MAX_DIMS:
        raise ctx.unsupported(f"input rank {rank} is above {MAX_DIMS}")
    if x.size == 0:
        raise ctx.unsupported("empty input")
    try:
        axes = resolve_axes([int(a) for a in np.asarray(axes_t.data).reshape(-1)], rank)
    except ValueError as exc:
        raise ctx.unsupported(str(exc)) from exc
    keep_dims = bool(ctx.options.get("keep_dims", False))
    if keep_dims:
        expected = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
    else:
        expected = tuple(n for d, n in enumerate(x.shape) if d not in axes)
    if tuple(y.shape) != expected:
        raise ctx.unsupported(f"output shape {list(y.shape)} disagrees with the reduced shape {list(expected)}")

    count = int(math.prod(x.shape[d] for d in axes))
    if count > MAX_COUNT:
        raise ctx.unsupported(f"{count} elements per mean would overflow TFLite's int32 accumulator")
    in_s, in_zp = ctx.scale_zp(x, "input")
    out_s, out_zp = ctx.scale_zp(y, "output")
    if not (in_s > 0 and out_s > 0 and math.isfinite(in_s) and math.isfinite(out_s)):
        raise ctx.unsupported(f"scales {in_s}, {out_s} must be positive and finite")
    try:
        multiplier, shift = mean_multiplier(in_s, out_s, count)
    except ValueError as exc:
        raise ctx.unsupported(str(exc)) from exc
    if shift > 30:
        raise ctx.unsupported(f"scale ratio {in_s / out_s} is too large to rescale")

    kept, red = loop_nests(tuple(x.shape), set(axes))
    p = ctx.new("trt_mean_params *")
    p.outputs = y.size
    p.count = count
    p.num_kept = len(kept)
    for i, (size, stride) in enumerate(kept):
        p.kept_shape[i], p.kept_stride[i] = size, stride
    p.num_reduced = len(red)
    for i, (size, stride) in enumerate(red):
        p.reduced_shape[i], p.reduced_stride[i] = size, stride
    p.input_zero_point, p.output_zero_point = in_zp, out_zp
    p.multiplier, p.shift = multiplier, shift
    return ctx.finish(Step(kind=lib.TRT_OP_MEAN, params=p, inputs=[x.index], output=y.index, note="mean"))
