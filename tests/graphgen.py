"""Random, valid int8 TFLite graphs for differential testing against LiteRT.

Every generator builds a runtime.graph.Graph (tests/tflite_writer.py turns
it into a .tflite file) with realistic quantization: activation scales of
1e-3..0.3 with zero points anywhere in the int8 range, symmetric int8
weights with per-tensor or per-channel scales, int32 biases on the
input*weight scale, and output scales chosen from the accumulator's expected
spread so that outputs use the int8 range instead of saturating.

    case = single_op_case("CONV_2D", seed=3)
    case.graph, case.features, case.input_ranges

`features` names what a case exercises ("CONV_2D", "CONV_2D:dilation",
"act:RELU6", ...) so a test can assert that every op and option was covered.
Options that matter are cycled by the `variant` number rather than drawn at
random, so a modest number of cases covers all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.graph import Graph, Operator, Quantization, Tensor

TYPE_CODES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "int8": 9}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
SAME, VALID = 0, 1

# Spread of (x - zero_point) for uniform int8 x, and of uniform int8 weights.
INPUT_STD = 74.0
WEIGHT_STD = 73.0


@dataclass
class Case:
    name: str
    graph: Graph
    features: set[str]
    # Graph input position -> (low, high) for float inputs; 8-bit inputs
    # are drawn over their whole range.
    input_ranges: dict[int, tuple[float, float]] = field(default_factory=dict)
    # Graph input position -> the scale a float input is quantized with:
    # a quarter of its values are put on exact half steps of that scale,
    # where QUANTIZE's rounding of ties shows.
    tie_scales: dict[int, float] = field(default_factory=dict)

    def random_inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        arrays = []
        for pos, t_idx in enumerate(self.graph.inputs):
            t = self.graph.tensors[t_idx]
            assert t.dtype is not None
            if t.dtype.kind in "iu":
                info = np.iinfo(t.dtype)
                arrays.append(rng.integers(info.min, info.max + 1, size=t.shape, dtype=t.dtype))
            else:
                lo, hi = self.input_ranges.get(pos, (-4.0, 4.0))
                x = rng.uniform(lo, hi, size=t.shape).astype(np.float32)
                if pos in self.tie_scales:
                    scale = np.float32(self.tie_scales[pos])
                    halves = rng.integers(-140, 140, size=t.shape).astype(np.float32) + np.float32(0.5)
                    x = np.where(rng.random(t.shape) < 0.25, halves * scale, x).astype(np.float32)
                arrays.append(x)
        return arrays


class GraphBuilder:
    """Collects tensors and operators; `tensor()` returns the new index."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.operators: list[Operator] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.features: set[str] = set()
        self.input_ranges: dict[int, tuple[float, float]] = {}
        self.tie_scales: dict[int, float] = {}

    def tensor(
        self,
        shape: tuple[int, ...] | list[int],
        dtype: str = "int8",
        scale: float | np.ndarray | None = None,
        zero_point: int | np.ndarray | None = None,
        data: np.ndarray | None = None,
        axis: int = 0,
        name: str | None = None,
    ) -> int:
        shape = tuple(int(d) for d in shape)
        quant = None
        if scale is not None:
            s = np.atleast_1d(np.asarray(scale, dtype=np.float32)).copy()
            zp_arr = np.zeros(s.size, dtype=np.int64) if zero_point is None else np.atleast_1d(zero_point)
            zp = np.broadcast_to(np.asarray(zp_arr, dtype=np.int64), s.shape).copy()
            quant = Quantization(scale=s, zero_point=zp, axis=axis if s.size > 1 else 0)
        np_dtype = np.dtype(dtype)
        if data is not None:
            data = np.ascontiguousarray(np.asarray(data, dtype=np_dtype).reshape(shape))
        index = len(self.tensors)
        self.tensors.append(
            Tensor(
                index=index,
                name=name or f"t{index}",
                shape=shape,
                type_code=TYPE_CODES[dtype],
                dtype=np_dtype,
                quant=quant,
                data=data,
            )
        )
        return index

    def like(self, t: int, shape: tuple[int, ...] | None = None) -> int:
        """A new activation tensor with t's type and quantization."""
        src = self.tensors[t]
        q = src.quant
        assert src.dtype is not None
        if q is None:
            return self.tensor(shape or src.shape, src.dtype.name)
        return self.tensor(shape or src.shape, src.dtype.name, q.scale, q.zero_point)

    def input(
        self, shape: tuple[int, ...], dtype: str = "int8", scale: float | None = None, zp: int | None = None
    ) -> int:
        t = self.tensor(shape, dtype, scale, zp)
        self.inputs.append(t)
        return t

    def op(self, opcode: str, inputs: list[int], outputs: list[int], **options: Any) -> None:
        self.operators.append(
            Operator(
                index=len(self.operators),
                opcode=opcode,
                version=1,
                inputs=tuple(inputs),
                outputs=tuple(outputs),
                options=options,
            )
        )
        self.features.add(opcode)

    def feature(self, *names: str) -> None:
        self.features.update(names)

    def shape(self, t: int) -> tuple[int, ...]:
        return self.tensors[t].shape

    def qparams(self, t: int) -> tuple[float, int]:
        q = self.tensors[t].quant
        assert q is not None
        return float(q.scale[0]), int(q.zero_point[0])

    def graph(self) -> Graph:
        return Graph(
            tensors=self.tensors,
            operators=self.operators,
            inputs=tuple(self.inputs),
            outputs=tuple(self.outputs),
        )


# ------------------------------------------------------------------ helpers


def act_quant(rng: np.random.Generator) -> tuple[float, int]:
    """A realistic activation scale and zero point (now and then an extreme scale)."""
    scale = float(10.0 ** (rng.uniform(-3.0, -0.5) if rng.random() < 0.9 else rng.uniform(-5.0, 0.5)))
    zp = int(rng.choice([-128, 0, int(rng.integers(-128, 128))], p=[0.2, 0.1, 0.7]))
    return scale, zp


def spread_scale(rng: np.random.Generator, real_std: float) -> float:
    """An output scale that maps real_std to 15..60 quantized steps."""
    return float(real_std / rng.uniform(15.0, 60.0))


def int8_weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-127, 128, size=shape, dtype=np.int8)


def weight_scales(rng: np.random.Generator, channels: int, per_channel: bool) -> np.ndarray:
    n = channels if per_channel else 1
    return (10.0 ** rng.uniform(-3.0, -1.0, size=n)).astype(np.float32)


def bias_tensor(
    gb: GraphBuilder, rng: np.random.Generator, channels: int, in_scale: float, w_scales: np.ndarray, acc_std: float
) -> int:
    """int32 bias on the input * weight scale, as converters write it."""
    values = np.clip(rng.normal(0.0, acc_std / 2, size=channels), -(2**24), 2**24).astype(np.int32)
    scales = (np.float32(in_scale) * w_scales.astype(np.float32)).astype(np.float32)
    return gb.tensor((channels,), "int32", scales, np.zeros(scales.size, np.int64), data=values)


def conv_out_size(padding: int, size: int, k: int, stride: int, dilation: int) -> int:
    eff = (k - 1) * dilation + 1
    if padding == SAME:
        return (size + stride - 1) // stride
    return (size - eff + stride) // stride


def pick_activation(gb: GraphBuilder, variant: int, op: str) -> int:
    act = variant % 4
    gb.feature(f"act:{ACTIVATIONS[act]}", f"{op}:act:{ACTIVATIONS[act]}")
    return act


def random_shape(rng: np.random.Generator, rank: int, lo: int = 1, hi: int = 6) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(lo, hi + 1, size=rank))


# ------------------------------------------------------- one-op appenders
# Each takes the builder, a generator, the int8 input tensor and a variant
# number; it appends one operator (plus its constants) and returns the
# output tensor.


def add_conv2d(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    n, h, w, cin = gb.shape(x)
    in_s, _ = gb.qparams(x)
    groups = 1
    if kw.get("groups", variant % 5 == 4):
        for g in (3, 2):
            if cin % g == 0 and cin > 1:
                groups = g
                break
    if kw.get("cout"):
        cout = int(kw["cout"])
    elif groups > 1:
        cout = groups * int(rng.integers(1, 4))  # whole filters per group
    else:
        cout = int(rng.integers(1, 9))
    kh, kw_ = kw.get("kernel", (int(rng.integers(1, 5)), int(rng.integers(1, 5))))
    stride = kw.get("stride", (int(rng.integers(1, 4)), int(rng.integers(1, 4))))
    dilation = (1, 1)
    if kw.get("dilation", variant % 3 == 2):
        dilation = (int(rng.integers(1, 4)), int(rng.integers(2, 4)))
    padding = kw.get("padding", (variant // 4) % 2)
    if padding == VALID and ((kh - 1) * dilation[0] + 1 > h or (kw_ - 1) * dilation[1] + 1 > w):
        padding = SAME
    per_channel = kw.get("per_channel", variant % 7 != 3)
    oh = conv_out_size(padding, h, kh, stride[0], dilation[0])
    ow = conv_out_size(padding, w, kw_, stride[1], dilation[1])
    weights = int8_weights(rng, (cout, kh, kw_, cin // groups))
    w_s = weight_scales(rng, cout, per_channel)
    k = kh * kw_ * (cin // groups)
    _, in_zp = gb.qparams(x)
    acc_std = math.sqrt(k) * WEIGHT_STD * math.hypot(INPUT_STD, in_zp)
    out_s = spread_scale(rng, acc_std * in_s * float(np.mean(w_s)))
    _, out_zp = act_quant(rng)
    wt = gb.tensor(weights.shape, "int8", w_s, 0, data=weights, axis=0)
    bias = bias_tensor(gb, rng, cout, in_s, w_s, acc_std)
    y = gb.tensor((n, oh, ow, cout), "int8", out_s, out_zp)
    act = pick_activation(gb, variant, "CONV_2D")
    gb.op(
        "CONV_2D",
        [x, wt, bias],
        [y],
        padding=padding,
        stride_w=stride[1],
        stride_h=stride[0],
        fused_activation_function=act,
        dilation_w_factor=dilation[1],
        dilation_h_factor=dilation[0],
    )
    gb.feature(
        f"CONV_2D:{'SAME' if padding == SAME else 'VALID'}",
        "CONV_2D:per_channel" if per_channel else "CONV_2D:per_tensor",
    )
    if max(stride) > 1:
        gb.feature("CONV_2D:stride")
    if max(dilation) > 1:
        gb.feature("CONV_2D:dilation")
    if groups > 1:
        gb.feature("CONV_2D:groups")
    if n > 1:
        gb.feature("CONV_2D:batch")
    return y


def add_depthwise(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    n, h, w, cin = gb.shape(x)
    in_s, in_zp = gb.qparams(x)
    dm = kw.get("depth_multiplier", 1 if variant % 3 == 0 else int(rng.integers(1, 4)))
    cout = cin * dm
    kh, kw_ = kw.get("kernel", (int(rng.integers(1, 5)), int(rng.integers(1, 5))))
    stride = kw.get("stride", (int(rng.integers(1, 4)), int(rng.integers(1, 4))))
    dilation = (1, 1)
    if kw.get("dilation", variant % 4 == 1):
        dilation = (int(rng.integers(2, 4)), int(rng.integers(1, 4)))
    padding = kw.get("padding", variant % 2)
    if padding == VALID and ((kh - 1) * dilation[0] + 1 > h or (kw_ - 1) * dilation[1] + 1 > w):
        padding = SAME
    per_channel = variant % 5 != 2
    has_bias = variant % 6 != 5
    oh = conv_out_size(padding, h, kh, stride[0], dilation[0])
    ow = conv_out_size(padding, w, kw_, stride[1], dilation[1])
    weights = int8_weights(rng, (1, kh, kw_, cout))
    w_s = weight_scales(rng, cout, per_channel)
    acc_std = math.sqrt(kh * kw_) * WEIGHT_STD * math.hypot(INPUT_STD, in_zp)
    out_s = spread_scale(rng, acc_std * in_s * float(np.mean(w_s)))
    _, out_zp = act_quant(rng)
    wt = gb.tensor(weights.shape, "int8", w_s, 0, data=weights, axis=3)
    inputs = [x, wt]
    if has_bias:
        inputs.append(bias_tensor(gb, rng, cout, in_s, w_s, acc_std))
    y = gb.tensor((n, oh, ow, cout), "int8", out_s, out_zp)
    act = pick_activation(gb, variant // 2, "DEPTHWISE_CONV_2D")
    gb.op(
        "DEPTHWISE_CONV_2D",
        inputs,
        [y],
        padding=padding,
        stride_w=stride[1],
        stride_h=stride[0],
        depth_multiplier=dm,
        fused_activation_function=act,
        dilation_w_factor=dilation[1],
        dilation_h_factor=dilation[0],
    )
    f = "DEPTHWISE_CONV_2D"
    gb.feature(
        f"{f}:{'SAME' if padding == SAME else 'VALID'}", f"{f}:per_channel" if per_channel else f"{f}:per_tensor"
    )
    if dm > 1:
        gb.feature(f"{f}:depth_multiplier")
    if max(dilation) > 1:
        gb.feature(f"{f}:dilation")
    if max(stride) > 1:
        gb.feature(f"{f}:stride")
    if not has_bias:
        gb.feature(f"{f}:no_bias")
    return y


def add_fully_connected(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    shape = gb.shape(x)
    in_s, in_zp = gb.qparams(x)
    k = shape[-1]
    keep_num_dims = kw.get("keep_num_dims", variant % 4 == 1 and len(shape) > 2)
    n_out = kw.get("units") or int(rng.integers(1, 17))
    per_channel = kw.get("per_channel", variant % 3 == 2)
    has_bias = kw.get("bias", variant % 5 != 4)
    weights = int8_weights(rng, (n_out, k))
    w_s = weight_scales(rng, n_out, per_channel)
    acc_std = math.sqrt(k) * WEIGHT_STD * math.hypot(INPUT_STD, in_zp)
    out_s = spread_scale(rng, acc_std * in_s * float(np.mean(w_s)))
    _, out_zp = act_quant(rng)
    wt = gb.tensor(weights.shape, "int8", w_s, 0, data=weights, axis=0)
    bias = bias_tensor(gb, rng, n_out, in_s, w_s, acc_std) if has_bias else -1
    rows = int(np.prod(shape)) // k
    out_shape = tuple(shape[:-1]) + (n_out,) if keep_num_dims else (rows, n_out)
    y = gb.tensor(out_shape, "int8", out_s, out_zp)
    act = pick_activation(gb, variant + variant // 4, "FULLY_CONNECTED")
    gb.op(
        "FULLY_CONNECTED",
        [x, wt, bias],
        [y],
        fused_activation_function=act,
        weights_format=0,
        keep_num_dims=bool(keep_num_dims),
        asymmetric_quantize_inputs=False,
    )
    f = "FULLY_CONNECTED"
    gb.feature(f"{f}:per_channel" if per_channel else f"{f}:per_tensor", f"{f}:bias" if has_bias else f"{f}:no_bias")
    if keep_num_dims:
        gb.feature(f"{f}:keep_num_dims")
    if rows > 1:
        gb.feature(f"{f}:batch")
    return y


def add_pool(
    gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, opcode: str = "AVERAGE_POOL_2D", **kw: Any
) -> int:
    n, h, w, c = gb.shape(x)
    max_f = 9 if min(h, w) >= 8 else 4
    fh, fw = kw.get("filter", (int(rng.integers(1, max_f + 1)), int(rng.integers(1, max_f + 1))))
    stride = kw.get("stride", (int(rng.integers(1, 4)), int(rng.integers(1, 4))))
    padding = kw.get("padding", variant % 2)
    if padding == VALID and (fh > h or fw > w):
        padding = SAME
    oh = conv_out_size(padding, h, fh, stride[0], 1)
    ow = conv_out_size(padding, w, fw, stride[1], 1)
    y = gb.like(x, (n, oh, ow, c))
    act = pick_activation(gb, variant // 2, opcode)
    gb.op(
        opcode,
        [x],
        [y],
        padding=padding,
        stride_w=stride[1],
        stride_h=stride[0],
        filter_width=fw,
        filter_height=fh,
        fused_activation_function=act,
    )
    gb.feature(f"{opcode}:{'SAME' if padding == SAME else 'VALID'}")
    if max(stride) > 1:
        gb.feature(f"{opcode}:stride")
    return y


def broadcast_operand_shape(rng: np.random.Generator, out_shape: tuple[int, ...], mode: int) -> tuple[int, ...]:
    """A shape that broadcasts to out_shape: mode 0 same, 1 some dims 1, 2 lower rank, 3 scalar-like."""
    if mode == 0:
        return out_shape
    if mode == 3:
        return (1,)
    shape = [d if rng.random() < 0.5 else 1 for d in out_shape]
    if mode == 2 and len(shape) > 1:
        shape = shape[int(rng.integers(1, len(shape))) :]
    return tuple(shape)


def add_binary(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, opcode: str = "ADD", **kw: Any) -> int:
    """x OP other, where other is a new graph input or a constant, with broadcasting."""
    x_shape = gb.shape(x)
    s1, z1 = gb.qparams(x)
    other = kw.get("other")
    mode = variant % 4
    if other is None:
        s2, z2 = act_quant(rng)
        o_shape = broadcast_operand_shape(rng, x_shape, mode)
        if variant % 3 == 1:
            data = rng.integers(-128, 128, size=o_shape, dtype=np.int8)
            other = gb.tensor(o_shape, "int8", s2, z2, data=data)
            gb.feature(f"{opcode}:constant")
        else:
            other = gb.input(o_shape, "int8", s2, z2)
    s2, z2 = gb.qparams(other)
    out_shape = tuple(np.broadcast_shapes(x_shape, gb.shape(other)))
    if out_shape != x_shape or gb.shape(other) != x_shape:
        gb.feature(f"{opcode}:broadcast")
    if opcode == "ADD":
        out_s = float(max(s1, s2) * rng.uniform(0.7, 3.0))
    else:
        out_s = spread_scale(rng, s1 * s2 * math.hypot(INPUT_STD, z1) * math.hypot(INPUT_STD, z2))
    _, out_zp = act_quant(rng)
    y = gb.tensor(out_shape, "int8", out_s, out_zp)
    swap = variant % 5 == 3
    act = pick_activation(gb, variant // 3, opcode)
    gb.op(opcode, [other, x] if swap else [x, other], [y], fused_activation_function=act)
    return y


def add_softmax(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    beta = float(kw.get("beta", [1.0, 1.0, 0.5, float(rng.uniform(0.1, 3.0))][variant % 4]))
    y = gb.tensor(gb.shape(x), "int8", 1.0 / 256, -128)
    gb.op("SOFTMAX", [x], [y], beta=beta)
    if beta != 1.0:
        gb.feature("SOFTMAX:beta")
    return y


def add_unary(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, opcode: str = "RELU", **kw: Any) -> int:
    """LOGISTIC, TANH, the RELU family, LEAKY_RELU, HARD_SWISH."""
    in_s, in_zp = gb.qparams(x)
    options: dict[str, Any] = {}
    if opcode == "LOGISTIC":
        out_s, out_zp = 1.0 / 256, -128
    elif opcode == "TANH":
        out_s, out_zp = (1.0 / 128, 0) if variant % 3 else act_quant(rng)
    elif opcode == "HARD_SWISH":
        out_s, out_zp = in_s * float(rng.uniform(0.3, 1.5)), int(rng.integers(-128, 128))
    elif variant % 3 == 0:  # same quantization in and out
        out_s, out_zp = in_s, in_zp
        gb.feature(f"{opcode}:same_quant")
    else:
        out_s, out_zp = in_s * float(rng.uniform(0.25, 2.0)), int(rng.integers(-128, 128))
    if opcode == "LEAKY_RELU":
        options["alpha"] = float([0.2, 0.01, rng.uniform(0.05, 0.9), -0.5, 1.7][variant % 5])
        if options["alpha"] < 0:
            gb.feature("LEAKY_RELU:negative_alpha")
    y = gb.tensor(gb.shape(x), "int8", out_s, out_zp)
    gb.op(opcode, [x], [y], **options)
    return y


def add_pad(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, opcode: str = "PAD", **kw: Any) -> int:
    shape = gb.shape(x)
    pads = rng.integers(0, 4, size=(len(shape), 2)).astype(np.int32)
    if variant % 3 == 0:  # spatial-only, as a converter writes them
        pads[:] = 0
        if len(shape) == 4:
            pads[1:3] = rng.integers(0, 3, size=(2, 2))
    pads_t = gb.tensor(pads.shape, "int32", data=pads)
    out_shape = tuple(int(d + a + b) for d, (a, b) in zip(shape, pads, strict=True))
    y = gb.like(x, out_shape)
    inputs = [x, pads_t]
    if opcode == "PADV2":
        s, zp = gb.qparams(x)
        value = np.array([rng.integers(-128, 128)], dtype=np.int8)
        inputs.append(gb.tensor((1,), "int8", s, zp, data=value))
    gb.op(opcode, inputs, [y])
    gb.feature(f"{opcode}:rank{len(shape)}")
    return y


def add_concat(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    shape = gb.shape(x)
    rank = len(shape)
    axis = int(kw.get("axis", rng.integers(-rank, rank)))
    ax = axis % rank
    n_inputs = kw.get("n_inputs", 2 + variant % 3)
    s, zp = gb.qparams(x)
    inputs = [x]
    for i in range(n_inputs - 1):
        o_shape = list(shape)
        o_shape[ax] = int(rng.integers(1, 4))
        if i == 0 and variant % 4 == 3:
            data = rng.integers(-128, 128, size=o_shape, dtype=np.int8)
            inputs.append(gb.tensor(tuple(o_shape), "int8", s, zp, data=data))
            gb.feature("CONCATENATION:constant")
        else:
            inputs.append(gb.input(tuple(o_shape), "int8", s, zp))
    if variant % 2:
        rng.shuffle(inputs)
    out_shape = list(shape)
    out_shape[ax] = sum(gb.shape(t)[ax] for t in inputs)
    y = gb.like(x, tuple(out_shape))
    gb.op("CONCATENATION", inputs, [y], axis=axis, fused_activation_function=0)
    gb.feature(f"CONCATENATION:inputs{len(inputs)}", f"CONCATENATION:rank{rank}")
    if axis < 0:
        gb.feature("CONCATENATION:negative_axis")
    if ax == rank - 1:
        gb.feature("CONCATENATION:last_axis")
    elif ax == 0:
        gb.feature("CONCATENATION:first_axis")
    else:
        gb.feature("CONCATENATION:middle_axis")
    return y


def add_mean(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    shape = gb.shape(x)
    rank = len(shape)
    keep_dims = kw.get("keep_dims", variant % 2 == 0)
    if "axes" in kw:
        axes = list(kw["axes"])
    elif rank == 4 and variant % 3 != 2:
        axes = [1, 2] if variant % 4 else [2, 1]
        gb.feature("MEAN:spatial")
    else:
        k = int(rng.integers(1, rank + 1))
        axes = sorted(int(a) for a in rng.choice(rank, size=k, replace=False))
        axes = [a - rank if rng.random() < 0.3 else a for a in axes]
        gb.feature("MEAN:other_axes")
        if any(a < 0 for a in axes):
            gb.feature("MEAN:negative_axis")
    resolved = {a % rank for a in axes}
    s, zp = gb.qparams(x)
    if variant % 5 == 1:
        out_s, out_zp = s, zp
        gb.feature("MEAN:same_quant")
    else:
        out_s, out_zp = s * float(rng.uniform(0.2, 1.5)), int(rng.integers(-128, 128))
    if keep_dims:
        out_shape = tuple(1 if d in resolved else n for d, n in enumerate(shape))
    else:
        out_shape = tuple(n for d, n in enumerate(shape) if d not in resolved)
    axes_t = gb.tensor((len(axes),), "int32", data=np.array(axes, dtype=np.int32))
    y = gb.tensor(out_shape, "int8", out_s, out_zp)
    gb.op("MEAN", [x, axes_t], [y], keep_dims=bool(keep_dims))
    gb.feature("MEAN:keep_dims" if keep_dims else "MEAN:drop_dims")
    return y


def add_reshape(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    size = int(np.prod(gb.shape(x)))
    new_shape = kw.get("shape")
    if new_shape is None:
        dims: list[int] = []
        rest = size
        for _ in range(int(rng.integers(0, 3))):
            divisors = [d for d in range(1, rest + 1) if rest % d == 0]
            d = int(rng.choice(divisors))
            dims.append(d)
            rest //= d
        dims.append(rest)
        rng.shuffle(dims)
        new_shape = tuple(dims)
    shape_t = gb.tensor((len(new_shape),), "int32", data=np.array(new_shape, dtype=np.int32))
    y = gb.like(x, tuple(new_shape))
    gb.op("RESHAPE", [x, shape_t], [y], new_shape=list(new_shape))
    return y


def add_quantize(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    src = gb.tensors[x]
    assert src.dtype is not None
    out_dtype = kw.get("out_dtype", "int8")
    if out_dtype == "int8":
        out_s, out_zp = act_quant(rng)
    else:
        out_s, out_zp = float(10.0 ** rng.uniform(-3.0, -0.5)), int(rng.integers(0, 256))
    if src.dtype.name != "float32" and variant % 4 == 0:
        # The pure int8 <-> uint8 shift converters emit.
        in_s, in_zp = gb.qparams(x)
        out_s = in_s
        out_zp = in_zp + (128 if out_dtype == "uint8" else -128) if src.dtype.name != out_dtype else in_zp
        out_zp = int(np.clip(out_zp, -128 if out_dtype == "int8" else 0, 127 if out_dtype == "int8" else 255))
        gb.feature("QUANTIZE:same_scale")
    y = gb.tensor(gb.shape(x), out_dtype, out_s, out_zp)
    gb.op("QUANTIZE", [x], [y])
    gb.feature(f"QUANTIZE:{src.dtype.name}->{out_dtype}")
    return y


def add_dequantize(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int, **kw: Any) -> int:
    y = gb.tensor(gb.shape(x), "float32")
    gb.op("DEQUANTIZE", [x], [y])
    src = gb.tensors[x].dtype
    assert src is not None
    gb.feature(f"DEQUANTIZE:{src.name}")
    return y


# ------------------------------------------------------------- single ops


def _nhwc(rng: np.random.Generator, max_hw: int = 9, max_c: int = 8) -> tuple[int, ...]:
    return (
        int(rng.choice([1, 1, 1, 2])),
        int(rng.integers(1, max_hw + 1)),
        int(rng.integers(1, max_hw + 1)),
        int(rng.integers(1, max_c + 1)),
    )


# Every tenth case of an op is large: long reductions and wide rows reach
# rounding paths that small tensors do not.
LARGE = 9


def _any_rank(rng: np.random.Generator, variant: int) -> tuple[int, ...]:
    if variant % 10 == LARGE:
        return random_shape(rng, 1 + variant % 4, 4, 40 if variant % 4 == 0 else 12)
    return random_shape(rng, 1 + variant % 4, 1, 6)


def _nhwc_for(rng: np.random.Generator, variant: int, max_c: int = 8) -> tuple[int, ...]:
    if variant % 10 == LARGE:
        return (1, int(rng.integers(8, 25)), int(rng.integers(8, 25)), int(rng.integers(8, 33)))
    return _nhwc(rng, 9, max_c)


def _fc_input(rng: np.random.Generator, variant: int) -> tuple[int, ...]:
    kind = variant % 4
    k = int(rng.integers(1, 33)) if variant % 10 != LARGE else int(rng.integers(200, 1200))
    if kind == 0:
        return (1, k)
    if kind == 1:
        return (int(rng.integers(2, 4)), int(rng.integers(2, 4)), k)
    if kind == 2:
        return (int(rng.integers(2, 5)), k)
    return (1, int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 5)))


def _conv_input(rng: np.random.Generator, variant: int) -> tuple[int, ...]:
    shape = list(_nhwc_for(rng, variant))
    if variant % 5 == 4:  # grouped: channels divisible by 2 or 3
        shape[3] = int(rng.choice([2, 3])) * int(rng.integers(1, 4))
    return tuple(shape)


# opcode -> (input shape maker, appender, extra keyword arguments)
SINGLE_OPS: dict[
    str, tuple[Callable[[np.random.Generator, int], tuple[int, ...]], Callable[..., int], dict[str, Any]]
] = {
    "CONV_2D": (_conv_input, add_conv2d, {}),
    "DEPTHWISE_CONV_2D": (lambda rng, v: _nhwc_for(rng, v, 6), add_depthwise, {}),
    "FULLY_CONNECTED": (_fc_input, add_fully_connected, {}),
    "AVERAGE_POOL_2D": (_nhwc_for, add_pool, {"opcode": "AVERAGE_POOL_2D"}),
    "MAX_POOL_2D": (_nhwc_for, add_pool, {"opcode": "MAX_POOL_2D"}),
    "ADD": (_any_rank, add_binary, {"opcode": "ADD"}),
    "MUL": (_any_rank, add_binary, {"opcode": "MUL"}),
    "SOFTMAX": (_any_rank, add_softmax, {}),
    "LOGISTIC": (_any_rank, add_unary, {"opcode": "LOGISTIC"}),
    "TANH": (_any_rank, add_unary, {"opcode": "TANH"}),
    "RELU": (_any_rank, add_unary, {"opcode": "RELU"}),
    "RELU6": (_any_rank, add_unary, {"opcode": "RELU6"}),
    "RELU_N1_TO_1": (_any_rank, add_unary, {"opcode": "RELU_N1_TO_1"}),
    "LEAKY_RELU": (_any_rank, add_unary, {"opcode": "LEAKY_RELU"}),
    "HARD_SWISH": (_any_rank, add_unary, {"opcode": "HARD_SWISH"}),
    "PAD": (_any_rank, add_pad, {"opcode": "PAD"}),
    "PADV2": (_any_rank, add_pad, {"opcode": "PADV2"}),
    "CONCATENATION": (_any_rank, add_concat, {}),
    "MEAN": (lambda rng, v: _nhwc_for(rng, v) if v % 3 != 2 else _any_rank(rng, v), add_mean, {}),
    "RESHAPE": (_any_rank, add_reshape, {}),
    "QUANTIZE": (_any_rank, add_quantize, {}),
    "DEQUANTIZE": (_any_rank, add_dequantize, {}),
}

# QUANTIZE's (input, output) types, cycled by variant.
QUANTIZE_TYPES = [("float32", "int8"), ("int8", "int8"), ("uint8", "int8"), ("int8", "uint8"), ("float32", "uint8")]


def single_op_case(opcode: str, seed: int) -> Case:
    """One operator between graph inputs and one graph output."""
    rng = np.random.default_rng([sorted(SINGLE_OPS).index(opcode), seed])
    variant = seed
    make_shape, append, extra = SINGLE_OPS[opcode]
    gb = GraphBuilder()
    shape = make_shape(rng, variant)
    kwargs = dict(extra)
    if opcode == "QUANTIZE":
        in_dtype, out_dtype = QUANTIZE_TYPES[variant % len(QUANTIZE_TYPES)]
        kwargs["out_dtype"] = out_dtype
    elif opcode == "DEQUANTIZE":
        in_dtype = "uint8" if variant % 3 == 2 else "int8"
    else:
        in_dtype = "int8"
    if in_dtype == "float32":
        x = gb.input(shape, "float32")
    else:
        s, zp = act_quant(rng)
        if in_dtype == "uint8":
            zp = int(rng.integers(0, 256))
        if opcode in ("LOGISTIC", "TANH"):
            # Mostly the input ranges converters give these (a few units);
            # every fourth reaches well into both saturated tails.
            s = float(rng.uniform(0.05, 0.2)) if variant % 4 == 3 else float(10.0 ** rng.uniform(-2.2, -1.2))
        x = gb.input(shape, in_dtype, s, zp)
    y = append(gb, rng, x, variant, **kwargs)
    gb.outputs.append(y)
    if in_dtype == "float32":
        q = gb.tensors[y].quant
        assert q is not None
        qs, qz = float(q.scale[0]), int(q.zero_point[0])
        lo, hi = (-128, 127) if gb.tensors[y].dtype == np.int8 else (0, 255)
        # A little beyond the representable range, to reach the clamps.
        gb.input_ranges[0] = (qs * (lo - qz - 8), qs * (hi - qz + 8))
        gb.tie_scales[0] = qs
    return Case(f"{opcode}#{seed}", gb.graph(), gb.features, gb.input_ranges, gb.tie_scales)


# --------------------------------------------------------------- op chains

UNARY_STAGES = ["RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "LEAKY_RELU", "HARD_SWISH"]


def _stage_rank4(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int) -> int:
    """One random op that keeps an NHWC tensor NHWC."""
    kind = int(rng.integers(0, 11))
    if kind == 9:
        return se_block(gb, rng, x, variant)
    if kind == 10:
        return same_tensor_twice(gb, rng, x, variant)
    if kind == 0:
        return add_conv2d(gb, rng, x, variant, groups=False, stride=(1, int(rng.integers(1, 3))))
    if kind == 1:
        return add_depthwise(gb, rng, x, variant)
    if kind == 2:
        return add_pool(
            gb,
            rng,
            x,
            variant,
            opcode=str(rng.choice(["AVERAGE_POOL_2D", "MAX_POOL_2D"])),
            filter=(2, 2),
            stride=(1, 1),
        )
    if kind == 3:
        return add_pad(gb, rng, x, 0, opcode=str(rng.choice(["PAD", "PADV2"])))
    if kind == 4:
        return add_unary(gb, rng, x, variant, opcode=str(rng.choice(UNARY_STAGES)))
    if kind == 5:
        return residual_block(gb, rng, x, variant)
    if kind == 6:
        # Concatenate the tensor with a convolution of itself along channels.
        s, zp = gb.qparams(x)
        branch = add_conv2d(gb, rng, x, variant, groups=False, stride=(1, 1), dilation=False, padding=SAME)
        branch = requantize_to(gb, rng, branch, s, zp)
        y = gb.like(x, gb.shape(x)[:3] + (gb.shape(x)[3] + gb.shape(branch)[3],))
        gb.op("CONCATENATION", [x, branch], [y], axis=3, fused_activation_function=0)
        gb.feature("chain:concat_branch")
        return y
    if kind == 7:
        return add_binary(gb, rng, x, variant, opcode=str(rng.choice(["ADD", "MUL"])))
    return add_mean(gb, rng, x, 0, axes=[1, 2], keep_dims=True)


def requantize_to(gb: GraphBuilder, rng: np.random.Generator, x: int, scale: float, zp: int) -> int:
    y = gb.tensor(gb.shape(x), "int8", scale, zp)
    gb.op("QUANTIZE", [x], [y])
    gb.feature("QUANTIZE:int8->int8")
    return y


def se_block(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int) -> int:
    """Squeeze-and-excite: x * logistic(conv(relu(conv(mean(x))))), a broadcast MUL of an intermediate."""
    c = gb.shape(x)[3]
    m = add_mean(gb, rng, x, 0, axes=[1, 2], keep_dims=True)
    pointwise = {"groups": False, "kernel": (1, 1), "stride": (1, 1), "padding": SAME, "dilation": False}
    h = add_conv2d(gb, rng, m, 0, cout=max(1, c // 2), **pointwise)
    h = add_unary(gb, rng, h, 1, opcode="RELU")
    h = add_conv2d(gb, rng, h, 0, cout=c, **pointwise)
    gate = add_unary(gb, rng, h, 0, opcode="LOGISTIC")
    y = add_binary(gb, rng, x, variant, opcode="MUL", other=gate)
    gb.feature("chain:squeeze_excite")
    return y


def same_tensor_twice(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int) -> int:
    """One operator reading the same tensor as both inputs: x + x, x * x, concat(x, x)."""
    opcode = ["ADD", "MUL", "CONCATENATION"][variant % 3]
    if opcode == "CONCATENATION":
        y = gb.like(x, gb.shape(x)[:3] + (2 * gb.shape(x)[3],))
        gb.op("CONCATENATION", [x, x], [y], axis=3, fused_activation_function=0)
    else:
        y = add_binary(gb, rng, x, variant, opcode=opcode, other=x)
    gb.feature("chain:same_tensor_twice")
    return y


def residual_block(gb: GraphBuilder, rng: np.random.Generator, x: int, variant: int) -> int:
    """y = x + conv(x): x is read by two operators (a diamond)."""
    c = gb.shape(x)[3]
    branch = add_conv2d(gb, rng, x, variant, groups=False, cout=c, stride=(1, 1), padding=SAME, dilation=False)
    y = add_binary(gb, rng, x, variant, opcode="ADD", other=branch)
    gb.feature("chain:residual")
    return y


def chain_case(seed: int) -> Case:
    """A small model: optional QUANTIZE in, 2-5 ops, optional DEQUANTIZE out."""
    rng = np.random.default_rng([1000, seed])
    gb = GraphBuilder()
    template = seed % 4
    if template == 0:
        # The classic classifier: quantize -> conv -> pool -> reshape -> fc -> softmax -> dequantize.
        x = gb.input(_nhwc(rng, 8, 4), "float32")
        s, zp = act_quant(rng)
        q = gb.tensor(gb.shape(x), "int8", s, zp)
        gb.op("QUANTIZE", [x], [q])
        gb.input_ranges[0] = (-s * 150, s * 150)
        gb.tie_scales[0] = s
        h = add_conv2d(gb, rng, q, seed, groups=False)
        h = add_pool(gb, rng, h, seed, opcode=str(rng.choice(["AVERAGE_POOL_2D", "MAX_POOL_2D"])))
        h = add_reshape(gb, rng, h, 0, shape=(1, int(np.prod(gb.shape(h)))))
        h = add_fully_connected(gb, rng, h, seed, keep_num_dims=False)
        h = add_softmax(gb, rng, h, seed)
        out = add_dequantize(gb, rng, h, 0)
        gb.feature("chain:classifier")
    elif template == 1:
        # Feature extractor: 2-4 NHWC stages then global average pooling.
        s, zp = act_quant(rng)
        h = gb.input(_nhwc(rng, 7, 6), "int8", s, zp)
        for i in range(int(rng.integers(2, 4))):
            h = _stage_rank4(gb, rng, h, seed + i)
        h = add_mean(gb, rng, h, 0, axes=[1, 2], keep_dims=bool(seed % 2))
        out = h
        gb.feature("chain:gap")
    elif template == 2:
        # Residual blocks then an FC head.
        s, zp = act_quant(rng)
        h = gb.input(_nhwc(rng, 6, 5), "int8", s, zp)
        h = residual_block(gb, rng, h, seed)
        if rng.random() < 0.5:
            h = add_unary(gb, rng, h, seed, opcode="RELU")
        h = add_fully_connected(gb, rng, h, seed, keep_num_dims=False)
        out = h
    else:
        # 2-5 random NHWC stages; sometimes through uint8 at the boundary.
        s, zp = act_quant(rng)
        if seed % 8 == 3:
            h0 = gb.input(_nhwc(rng, 6, 5), "uint8", s, int(rng.integers(0, 256)))
            h = add_quantize(gb, rng, h0, 1, out_dtype="int8")
        else:
            h = gb.input(_nhwc(rng, 6, 5), "int8", s, zp)
        for i in range(int(rng.integers(2, 6))):
            h = _stage_rank4(gb, rng, h, seed * 7 + i)
        out = add_dequantize(gb, rng, h, 0) if seed % 3 == 0 else h
        gb.feature("chain:random")
    gb.outputs.append(out)
    # Now and then the model also exports an intermediate tensor (which later
    # operators must not overwrite), or hands an input straight back.
    produced = [t for op in gb.operators for t in op.outputs if t != out and gb.tensors[t].dtype == np.int8]
    if produced and rng.random() < 0.35:
        extra = int(rng.choice(produced))
        gb.outputs.insert(int(rng.integers(0, 2)), extra)
        gb.feature("chain:extra_output")
    if rng.random() < 0.08:
        gb.outputs.append(gb.inputs[0])
        gb.feature("chain:input_is_output")
    return Case(f"chain#{seed}", gb.graph(), gb.features, gb.input_ranges, gb.tie_scales)
