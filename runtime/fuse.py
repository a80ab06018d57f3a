"""Plan-time graph rewrites that remove operators without changing a bit.

PAD folded into the convolution after it.  Converters write a convolution
with explicit (often asymmetric) padding as PAD followed by a VALID
CONV_2D / DEPTHWISE_CONV_2D.  The PAD costs a copy of its whole output and
an arena buffer of the padded size.  The convolution kernels already treat
every tap outside the image as the input zero point (csrc/conv2d_s8.c,
depthwise_conv2d_s8.c, sparse_conv2d_s8.c: gather_patch / tap_pixel /
outside_taps), which is exactly what TFLite's PAD writes there when it pads
with that zero point.  So the convolution can read PAD's input directly
with pad_top / pad_left raised by PAD's top / left amounts; the bottom and
right padding follow from the output size, which stays the VALID size of
the padded tensor (the kernels compute every window that size implies, and
windows reaching past the image read zero points).

A PAD (or PADV2) is folded when all of these hold, and is left alone
otherwise:
- it pads only H and W of an NHWC int8 tensor, by constant non-negative
  amounts, and its output has exactly the padded shape;
- the padding value is the input zero point (PAD; PADV2 whose constant is
  that zero point), and input and output have the same per-tensor scale and
  zero point (the convolution then sees the same bytes and the same
  quantisation);
- exactly one operator reads its output, once, as input 0, and that is a
  CONV_2D or DEPTHWISE_CONV_2D with VALID padding later in the graph;
- its output is not a graph output;
- not a depthwise convolution (multiplier 1) of several images whose output
  image is larger than its input image: the memory planner may run those in
  place (runtime/memory.py dw_inplace_candidates), where image n's output
  would overwrite image n + 1's input.  (Unfolded, such an output is never
  larger: the padding is inside the input.)

The rewritten graph keeps every remaining operator's index (Operator.index),
so errors and per-step reports still name operators of the original file;
the convolution's options carry the folded amounts under FOLDED_PAD, which
runtime/ops/conv.py adds to its geometry.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from .graph import Graph, Operator, Tensor

# Options key of a convolution that absorbed PADs: (top, bottom, left, right).
FOLDED_PAD = "tinyrt_folded_pad"

PAD_OPS = ("PAD", "PADV2")
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
VALID = 1  # TFLite Padding.VALID
INT8 = np.dtype(np.int8)


@dataclasses.dataclass(frozen=True)
class FoldedPad:
    """One PAD removed from the plan."""

    pad_op: int  # the PAD / PADV2 operator's index in the model
    conv_op: int  # the convolution that now reads the PAD's input
    top: int
    bottom: int
    left: int
    right: int


def _same_quantization(a: Tensor, b: Tensor) -> bool:
    if a.quant is None or b.quant is None or a.quant.per_channel or b.quant.per_channel:
        return False
    return (
        np.float32(a.quant.scalar_scale) == np.float32(b.quant.scalar_scale)
        and a.quant.scalar_zero_point == b.quant.scalar_zero_point
    )


def spatial_zero_pads(graph: Graph, op: Operator) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) if `op` is a PAD / PADV2 of an NHWC int8
    tensor's H and W with its zero point and no change of quantisation;
    None for anything else (which then runs as it is)."""
    if op.opcode not in PAD_OPS or len(op.inputs) < 2 or len(op.outputs) != 1 or min(op.inputs[:2]) < 0:
        return None
    x, pads_t, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if x.dtype != INT8 or y.dtype != INT8 or len(x.shape) != 4 or y.is_constant or x.size == 0:
        return None
    if not _same_quantization(x, y):
        return None
    if pads_t.data is None or pads_t.dtype is None or pads_t.dtype.kind not in "iu" or pads_t.size != 8:
        return None
    pads = np.asarray(pads_t.data, dtype=np.int64).reshape(4, 2)
    if np.any(pads < 0) or np.any(pads[0] != 0) or np.any(pads[3] != 0):
        return None  # batch or channel padding (or a negative amount): not a convolution's padding
    if tuple(int(d + a + b) for d, (a, b) in zip(x.shape, pads, strict=True)) != tuple(y.shape):
        return None
    assert x.quant is not None
    if len(op.inputs) > 2 and op.inputs[2] >= 0:  # PADV2's constant
        c = graph.tensors[op.inputs[2]]
        if c.data is None or c.size != 1 or c.dtype != x.dtype:
            return None
        if int(c.data.reshape(-1)[0]) != x.quant.scalar_zero_point:
            return None
    (top, bottom), (left, right) = pads[1], pads[2]
    return int(top), int(bottom), int(left), int(right)


def _in_place_hazard(graph: Graph, conv: Operator, x: Tensor) -> bool:
    """Whether folding would give an in-place candidate whose output image
    outgrows its input image with more than one image (see the docstring)."""
    if conv.opcode != "DEPTHWISE_CONV_2D" or not conv.outputs or x.shape[0] <= 1:
        return False
    y = graph.tensors[conv.outputs[0]]
    return len(y.shape) == 4 and y.shape[3] == x.shape[3] and y.shape[1] * y.shape[2] > x.shape[1] * x.shape[2]


def fold_pads(graph: Graph) -> tuple[Graph, list[FoldedPad]]:
    """The graph with every foldable PAD removed (see the module docstring),
    and what was folded.  The input graph is not modified."""
    ops = list(graph.operators)
    producers: Counter[int] = Counter(t for op in ops for t in op.outputs)
    producer = {t: pos for pos, op in enumerate(ops) for t in op.outputs}
    readers: Counter[int] = Counter(t for op in ops for t in op.inputs if t >= 0)
    boundary = set(graph.outputs) | set(graph.inputs)
    removed: set[int] = set()
    folded: list[FoldedPad] = []
    for pos, conv in enumerate(ops):
        if conv.opcode not in CONV_OPS or int(conv.options.get("padding", 0)) != VALID:
            continue
        # A chain PAD -> PAD -> conv folds both: walk up while it applies.
        while conv.inputs and conv.inputs[0] >= 0:
            t = conv.inputs[0]
            p = producer.get(t)
            if p is None or p in removed or p >= pos or producers[t] != 1 or readers[t] != 1 or t in boundary:
                break
            pad_op = ops[p]
            amounts = spatial_zero_pads(graph, pad_op)
            if amounts is None or _in_place_hazard(graph, conv, graph.tensors[pad_op.inputs[0]]):
                break
            before = conv.options.get(FOLDED_PAD, (0, 0, 0, 0))
            total = tuple(a + b for a, b in zip(before, amounts, strict=True))
            conv = dataclasses.replace(
                conv, inputs=(pad_op.inputs[0], *conv.inputs[1:]), options={**conv.options, FOLDED_PAD: total}
            )
            readers[t] -= 1  # PAD's input keeps one reader: the convolution instead of the PAD
            removed.add(p)
            folded.append(FoldedPad(pad_op.index, conv.index, *amounts))
        ops[pos] = conv
    if not removed:
        return graph, []
    kept = [op for pos, op in enumerate(ops) if pos not in removed]
    return dataclasses.replace(graph, operators=kept), folded
