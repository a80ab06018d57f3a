"""Hypothesis strategies for one-operator int8 graphs, with their spec results.

Each strategy draws an operator's geometry and quantization, builds a
`runtime.graph.Graph` in Python (no .tflite file), random inputs, and the
expected outputs from `spec_model` (never from tinyrt).  Shared by
test_kernels_hypothesis.py and test_arena_bounds.py.

Large arrays are not drawn element by element (slow, and shrinking them
teaches little): a drawn seed and a drawn value distribution feed numpy.  The
parameters that matter for failures - shapes, strides, padding, zero points,
scales - are drawn by hypothesis and shrink.

Determinism: `exact_settings()` derandomizes (the examples are a function of
the test's source), keeps no example database, and has no deadline, so CI
runs the same examples every time.  TINYRT_HYPOTHESIS_SCALE=10 runs ten
times the examples; TINYRT_HYPOTHESIS_RANDOM=1 draws fresh ones (fuzzing).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import spec_model as spec
from hypothesis import HealthCheck, reject, settings
from hypothesis import strategies as st

from runtime import isa
from runtime.backends.c import CModel
from runtime.graph import Graph, Operator, Quantization, Tensor
from runtime.memory import Choices
from runtime.sparse import SparsePolicy

TYPE_CODES: dict[np.dtype, int] = {
    np.dtype(np.float32): 0,
    np.dtype(np.int32): 2,
    np.dtype(np.uint8): 3,
    np.dtype(np.int8): 9,
}
ACTIVATIONS = [spec.ACT_NONE, spec.ACT_RELU, spec.ACT_RELU6, spec.ACT_RELU_N1_TO_1]
MAX_CHANNELS = 70


def exact_settings(max_examples: int) -> settings:
    scale = float(os.environ.get("TINYRT_HYPOTHESIS_SCALE", "1"))
    return settings(
        max_examples=max(1, int(max_examples * scale)),
        deadline=None,
        derandomize=not os.environ.get("TINYRT_HYPOTHESIS_RANDOM"),
        database=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ------------------------------------------------------------------ graphs --


class GraphBuilder:
    """Tensors and operators appended in order, then frozen into a Graph."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.operators: list[Operator] = []

    def tensor(
        self,
        shape: tuple[int, ...],
        dtype: Any,
        scale: float | np.ndarray | None = None,
        zero_point: int | np.ndarray = 0,
        data: np.ndarray | None = None,
        axis: int = 0,
    ) -> int:
        dt = np.dtype(dtype)
        quant = None
        if scale is not None:
            scales = np.asarray(scale, dtype=np.float32).reshape(-1)
            zps = np.broadcast_to(np.asarray(zero_point, dtype=np.int64).reshape(-1), scales.shape).copy()
            quant = Quantization(scale=scales, zero_point=zps, axis=axis if scales.size > 1 else 0)
        if data is not None:
            data = np.ascontiguousarray(data, dtype=dt).reshape(shape)
            data.setflags(write=False)  # as the loader's read-only buffer views
        index = len(self.tensors)
        self.tensors.append(
            Tensor(
                index=index,
                name=f"t{index}",
                shape=tuple(int(d) for d in shape),
                type_code=TYPE_CODES[dt],
                dtype=dt,
                quant=quant,
                data=data,
            )
        )
        return index

    def op(self, opcode: str, inputs: list[int], outputs: list[int], **options: Any) -> None:
        self.operators.append(
            Operator(
                index=len(self.operators),
                opcode=opcode,
                version=1,
                inputs=tuple(inputs),
                outputs=tuple(outputs),
                options=dict(options),
            )
        )

    def graph(self, inputs: list[int], outputs: list[int]) -> Graph:
        return Graph(tensors=self.tensors, operators=self.operators, inputs=tuple(inputs), outputs=tuple(outputs))


@dataclass
class OpCase:
    """One drawn operator: the graph, its inputs, the spec's outputs."""

    summary: str  # what hypothesis prints for a failing example
    graph: Graph
    inputs: list[np.ndarray]
    expected: list[np.ndarray]
    fc_fixed_point: bool = False
    plan_choices: Any = None  # runtime.plan's memory-choices hook; None: the planner's search
    sparse: Any = "auto"  # CModel's sparse-weights policy
    isa: str = "best"  # the kernels' instruction-set path (runtime.isa)
    tolerance: int = 0  # 0: bit exact; 1: float model, within one step
    extra: dict[str, Any] = field(default_factory=dict)

    def model(self) -> CModel:
        """The C backend's model of this graph, planned under this case's ISA
        (the sparse cost model reads the active one).  Leaves that ISA active:
        run it inside `with isa_selected(case.isa)`."""
        return CModel(
            self.graph, fc_fixed_point=self.fc_fixed_point, plan_choices=self.plan_choices, sparse=self.sparse
        )


@contextmanager
def isa_selected(name: str) -> Iterator[None]:
    """Run the kernels on one instruction-set path, then back to the best one."""
    isa.select(name)
    try:
        yield
    finally:
        isa.select("best")

    def __repr__(self) -> str:
        return f"OpCase({self.summary})"


# ------------------------------------------------------- kernel variants --
# The planner picks a kernel variant by the arena size it leads to (im2col or
# direct convolution, in-place depthwise with a channel block, element-wise
# ops over their input).  A one-op graph would only ever see the variant the
# search prefers, so the strategies also force each one.


def _forced(choices: Choices) -> Callable[[Graph, list[Any], dict[int, int]], Choices]:
    def make(graph: Graph, steps: list[Any], views: dict[int, int]) -> Choices:
        return choices.copy()

    return make


def conv_variant(draw: Any) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["search", "im2col", "direct"]))
    if kind == "search":
        return kind, None
    return kind, _forced(Choices(direct_conv={0} if kind == "direct" else set()))


def depthwise_variant(draw: Any, input_tensor: int, channels: int, multiplier: int) -> tuple[str, Any]:
    kinds = ["search", "separate"] + (["in_place"] if multiplier == 1 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "search":
        return kind, None
    if kind == "separate":
        return kind, _forced(Choices())
    block = draw(st.integers(1, channels))
    return f"in_place block={block}", _forced(Choices(inplace={0: input_tensor}, dw_block={0: block}))


def elementwise_variant(draw: Any) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["search", "separate"]))
    return kind, None if kind == "search" else _forced(Choices())


def isa_variant(draw: Any) -> str:
    """Each instruction-set path this machine runs (portable C, AVX2, ...) must give the same bits."""
    return draw(st.sampled_from(isa.available()))


def sparse_variant(draw: Any) -> tuple[str, Any]:
    """CModel's default ("auto": sparse kernels where the cost model says they
    are faster), "off", or sparse kernels forced, with a forced block size or not."""
    kind = draw(st.sampled_from(["auto", "auto", "off", "force"]))
    if kind != "force":
        return kind, kind
    block = draw(st.sampled_from([None, 1, 4, 8]))
    return f"force block={block}", SparsePolicy(mode="force", block=block)


def weight_values(draw: Any, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """int8 weights, [out channels, ...]: dense with one of FILLS, or pruned -
    most weights zero, the zeros shared by groups of 1, 4 or 8 consecutive
    output channels (the block shapes of the sparse kernels)."""
    if draw(st.integers(0, 2)) != 0:
        return int_array(rng, shape, draw(st.sampled_from(FILLS)))
    zero_fraction = draw(st.sampled_from([0.5, 0.9, 0.98, 1.0]))
    rows = draw(st.sampled_from([1, 4, 8]))
    out_c, inner = shape[0], math.prod(shape[1:])
    keep = rng.random(((out_c + rows - 1) // rows, inner)) >= zero_fraction
    keep = np.repeat(keep, rows, axis=0)[:out_c]
    dense = int_array(rng, (out_c, inner), draw(st.sampled_from(FILLS)))
    return np.where(keep, dense, 0).astype(np.int8).reshape(shape)


def spec_or_reject(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The spec's result, or reject the example where TFLite's is undefined."""
    try:
        return fn(*args, **kwargs)
    except spec.SpecUndefined:
        reject()


# ----------------------------------------------------------------- values --

FILLS = ["uniform", "uniform", "extremes", "narrow", "constant"]


def int_array(rng: np.random.Generator, shape: tuple[int, ...], fill: str, dtype: Any = np.int8) -> np.ndarray:
    """Values of an 8-bit type: uniform, only the two extremes (saturation),
    a narrow band around a random centre, or one constant."""
    info = np.iinfo(dtype)
    if fill == "extremes":
        return rng.choice(np.array([info.min, info.max], dtype=dtype), size=shape)
    if fill == "narrow":
        centre = int(rng.integers(info.min, info.max + 1))
        lo, hi = max(info.min, centre - 4), min(info.max, centre + 4)
        return rng.integers(lo, hi + 1, size=shape, dtype=dtype)
    if fill == "constant":
        return np.full(shape, rng.integers(info.min, info.max + 1), dtype=dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)


def snap(value: float, pow2: bool) -> float:
    """value, or the nearest power of two when pow2: scales that are all powers
    of two make every rescale an exact power of two, so products land exactly
    half-way between integers and each rounding rule (half away from zero,
    half up, truncation) is exercised rather than almost never hit."""
    return spec.f32(2.0 ** round(math.log2(value)) if pow2 else value)


def log_uniform(draw: Any, lo_exp: float, hi_exp: float, pow2: bool = False) -> float:
    """A float32 scale 10**e with e drawn uniformly in [lo_exp, hi_exp] (snapped if pow2)."""
    e = draw(st.floats(lo_exp, hi_exp, allow_nan=False, allow_infinity=False))
    return snap(10.0**e, pow2)


def pow2_mode(draw: Any) -> bool:
    """One example in four quantizes everything with powers of two (see snap)."""
    return draw(st.integers(0, 3)) == 0


def channel_scales(draw: Any, rng: np.random.Generator, channels: int, pow2: bool = False) -> np.ndarray:
    """Weight scales: one per tensor, or one per channel spread over up to
    `spread` decades around a base (orders of magnitude apart)."""
    base = log_uniform(draw, -4, -1, pow2)
    if not draw(st.booleans()):
        return np.array([base], dtype=np.float32)
    spread = draw(st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    scales = base * 10.0 ** rng.uniform(-spread, spread, size=channels)
    if pow2:
        scales = 2.0 ** np.round(np.log2(scales))
    return scales.astype(np.float32)


def bias_values(
    draw: Any, rng: np.random.Generator, channels: int, typical: float, required: bool = False
) -> np.ndarray | None:
    """None, or int32 biases: small, of the accumulator's size, or large."""
    kinds = ["small", "typical", "typical", "large"]
    kind = draw(st.sampled_from(kinds if required else ["none", *kinds]))
    if kind == "none":
        return None
    bound = {"small": 64.0, "typical": max(typical, 1.0), "large": float(1 << 24)}[kind]
    return rng.integers(-int(bound), int(bound) + 1, size=channels).astype(np.int32)


def output_scale_for(draw: Any, acc_spread: float, pow2: bool = False) -> float:
    """An output scale that maps an accumulator spread (in real units) onto
    roughly the int8 range, times 2**[-3, 3]: some examples saturate, some
    use a few levels only, most use the range."""
    return snap(acc_spread / 128.0 * 2.0 ** draw(st.floats(-3, 3)), pow2)


def tie_scale(draw: Any, scale: float, activation: int) -> float:
    """Sometimes move an output scale so that the fused activation's bound
    (6 for RELU6, +-1 for RELU_N1_TO_1) falls exactly half-way between two
    levels: the rounding of the activation range then decides the clamp."""
    bound = {spec.ACT_RELU6: 6.0, spec.ACT_RELU_N1_TO_1: 1.0}.get(activation)
    if bound is None or not draw(st.booleans()):
        return scale
    k = max(0, round(bound / scale - 0.5))
    return spec.f32(bound / (k + 0.5))


def acc_spread(in_s: float, w_scales: np.ndarray, taps: int) -> float:
    """Three standard deviations of a sum of `taps` products of uniform int8
    values (std ~74 each), in real units."""
    return in_s * float(np.median(w_scales)) * 74.0 * 74.0 * 3.0 * math.sqrt(taps)


def _seed(draw: Any) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _geometry(draw: Any, kernel: tuple[int, int], budget: int) -> dict[str, Any]:
    """Stride, dilation, padding and an input size that the filter fits."""
    padding = draw(st.sampled_from([spec.SAME, spec.VALID]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.sampled_from([1, 1, 1, 2, 3])), draw(st.sampled_from([1, 1, 1, 2, 3])))
    sizes = []
    for k, d in zip(kernel, dilation, strict=True):
        effective = (k - 1) * d + 1
        lo = effective if padding == spec.VALID else 1  # SAME takes even 1x1 inputs
        hi = max(lo, min(lo + 9, budget))
        sizes.append(draw(st.integers(lo, hi)))
    return {"padding": padding, "stride": stride, "dilation": dilation, "hw": tuple(sizes)}


# ----------------------------------------------------------- convolutions --


@st.composite
def conv2d_cases(draw: Any, bias_required: bool = False) -> OpCase:
    """bias_required: TFLite's CONV_2D refuses a missing bias; tinyrt accepts it."""
    rng = _seed(draw)
    pow2 = pow2_mode(draw)
    batch = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    fc = draw(st.integers(1, MAX_CHANNELS // groups))
    per_group = draw(st.integers(1, MAX_CHANNELS // groups))
    in_c, out_c = fc * groups, per_group * groups
    # Keep one example near a million multiply-adds so that the file stays fast.
    macs_per_pixel = kernel[0] * kernel[1] * fc * out_c * batch
    budget = max(1, int(math.sqrt(2_000_000 / macs_per_pixel)))
    geo = _geometry(draw, kernel, budget)
    h, w = geo["hw"]
    in_s, in_zp = log_uniform(draw, -3, 1, pow2), draw(st.integers(-128, 127))
    w_scales = channel_scales(draw, rng, out_c, pow2)
    taps = kernel[0] * kernel[1] * fc
    spread = acc_spread(in_s, w_scales, taps)
    bias = bias_values(draw, rng, out_c, spread / (in_s * float(np.median(w_scales))), bias_required)
    out_s, out_zp = output_scale_for(draw, spread, pow2), draw(st.integers(-128, 127))
    act = draw(st.sampled_from(ACTIVATIONS))
    out_s = tie_scale(draw, out_s, act)
    x = int_array(rng, (batch, h, w, in_c), draw(st.sampled_from(FILLS)))
    weights = weight_values(draw, rng, (out_c, kernel[0], kernel[1], fc))
    expected = spec_or_reject(
        spec.conv2d, x, in_s, in_zp, weights, w_scales, bias, out_s, out_zp,
        stride=geo["stride"], dilation=geo["dilation"], padding=geo["padding"], activation=act,
    )  # fmt: skip
    g = GraphBuilder()
    t_x = g.tensor(x.shape, np.int8, in_s, in_zp)
    t_w = g.tensor(weights.shape, np.int8, w_scales, 0, data=weights, axis=0)
    ins = [t_x, t_w]
    if bias is not None:
        ins.append(g.tensor((out_c,), np.int32, (in_s * w_scales).astype(np.float32), 0, data=bias))
    t_y = g.tensor(expected.shape, np.int8, out_s, out_zp)
    variant, choices = conv_variant(draw)
    sparse_label, sparse = sparse_variant(draw)
    kernel_isa = isa_variant(draw)
    g.op(
        "CONV_2D", ins, [t_y],
        padding=geo["padding"], stride_h=geo["stride"][0], stride_w=geo["stride"][1],
        dilation_h_factor=geo["dilation"][0], dilation_w_factor=geo["dilation"][1],
        fused_activation_function=act,
    )  # fmt: skip
    summary = (
        f"CONV_2D x{list(x.shape)} w{list(weights.shape)} groups={groups} {geo} "
        f"in=({in_s:.3g},{in_zp}) w_scales={w_scales.size} out=({out_s:.3g},{out_zp}) act={act} "
        f"bias={'none' if bias is None else int(np.abs(bias).max())} variant={variant} "
        f"zero weights={float(np.mean(weights == 0)):.2f} sparse={sparse_label} isa={kernel_isa}"
    )
    return OpCase(summary, g.graph([t_x], [t_y]), [x], [expected], plan_choices=choices, sparse=sparse, isa=kernel_isa)


@st.composite
def depthwise_cases(draw: Any) -> OpCase:
    rng = _seed(draw)
    pow2 = pow2_mode(draw)
    batch = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    multiplier = draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    in_c = draw(st.integers(1, MAX_CHANNELS // multiplier))
    out_c = in_c * multiplier
    budget = max(1, int(math.sqrt(2_000_000 / (kernel[0] * kernel[1] * out_c * batch))))
    geo = _geometry(draw, kernel, min(budget, 16))
    h, w = geo["hw"]
    in_s, in_zp = log_uniform(draw, -3, 1, pow2), draw(st.integers(-128, 127))
    w_scales = channel_scales(draw, rng, out_c, pow2)
    taps = kernel[0] * kernel[1]
    spread = acc_spread(in_s, w_scales, taps)
    bias = bias_values(draw, rng, out_c, spread / (in_s * float(np.median(w_scales))))
    out_s, out_zp = output_scale_for(draw, spread, pow2), draw(st.integers(-128, 127))
    act = draw(st.sampled_from(ACTIVATIONS))
    out_s = tie_scale(draw, out_s, act)
    x = int_array(rng, (batch, h, w, in_c), draw(st.sampled_from(FILLS)))
    weights = int_array(rng, (1, kernel[0], kernel[1], out_c), draw(st.sampled_from(FILLS)))
    expected = spec_or_reject(
        spec.depthwise_conv2d, x, in_s, in_zp, weights, w_scales, bias, out_s, out_zp,
        stride=geo["stride"], dilation=geo["dilation"], padding=geo["padding"], activation=act,
    )  # fmt: skip
    g = GraphBuilder()
    t_x = g.tensor(x.shape, np.int8, in_s, in_zp)
    t_w = g.tensor(weights.shape, np.int8, w_scales, 0, data=weights, axis=3)
    ins = [t_x, t_w]
    if bias is not None:
        ins.append(g.tensor((out_c,), np.int32, (in_s * w_scales).astype(np.float32), 0, data=bias))
    t_y = g.tensor(expected.shape, np.int8, out_s, out_zp)
    variant, choices = depthwise_variant(draw, t_x, out_c, multiplier)
    kernel_isa = isa_variant(draw)
    g.op(
        "DEPTHWISE_CONV_2D", ins, [t_y],
        padding=geo["padding"], stride_h=geo["stride"][0], stride_w=geo["stride"][1],
        dilation_h_factor=geo["dilation"][0], dilation_w_factor=geo["dilation"][1],
        depth_multiplier=multiplier, fused_activation_function=act,
    )  # fmt: skip
    summary = (
        f"DEPTHWISE_CONV_2D x{list(x.shape)} w{list(weights.shape)} mult={multiplier} {geo} "
        f"in=({in_s:.3g},{in_zp}) w_scales={w_scales.size} out=({out_s:.3g},{out_zp}) act={act} "
        f"bias={'none' if bias is None else int(np.abs(bias).max())} variant={variant} isa={kernel_isa}"
    )
    return OpCase(summary, g.graph([t_x], [t_y]), [x], [expected], plan_choices=choices, isa=kernel_isa)


@st.composite
def fully_connected_cases(draw: Any, fixed_point: bool | None = None) -> OpCase:
    rng = _seed(draw)
    pow2 = pow2_mode(draw)
    if fixed_point is None:
        fixed_point = draw(st.booleans())
    batch = draw(st.integers(1, 2))
    n_out = draw(st.integers(1, MAX_CHANNELS))
    layout = draw(st.sampled_from(["2d", "4d", "keep_num_dims", "flatten"]))
    if layout == "flatten":  # e.g. [1, H, W, C] read as one row of H*W*C
        hwc = (draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 12)))
        in_shape: tuple[int, ...] = (1, *hwc)
        k = math.prod(hwc)
        out_shape: tuple[int, ...] = (1, n_out)
    else:
        k = draw(st.integers(1, 300))
        in_shape = (batch, k) if layout == "2d" else (batch, 1, 1, k)
        # keep_num_dims: the output keeps the input's leading dimensions.
        out_shape = (batch, 1, 1, n_out) if layout == "keep_num_dims" else (batch, n_out)
    in_s, in_zp = log_uniform(draw, -3, 1, pow2), draw(st.integers(-128, 127))
    w_scales = channel_scales(draw, rng, n_out, pow2)
    spread = acc_spread(in_s, w_scales, k)
    bias = bias_values(draw, rng, n_out, spread / (in_s * float(np.median(w_scales))))
    out_s, out_zp = output_scale_for(draw, spread, pow2), draw(st.integers(-128, 127))
    act = draw(st.sampled_from(ACTIVATIONS))
    out_s = tie_scale(draw, out_s, act)
    x = int_array(rng, in_shape, draw(st.sampled_from(FILLS)))
    weights = weight_values(draw, rng, (n_out, k))
    expected = spec_or_reject(
        spec.fully_connected, x, in_s, in_zp, weights, w_scales, bias, out_s, out_zp,
        activation=act, fixed_point=fixed_point,
    ).reshape(out_shape)  # fmt: skip
    g = GraphBuilder()
    t_x = g.tensor(in_shape, np.int8, in_s, in_zp)
    t_w = g.tensor(weights.shape, np.int8, w_scales, 0, data=weights, axis=0)
    ins = [t_x, t_w]
    if bias is not None:
        ins.append(g.tensor((n_out,), np.int32, (in_s * w_scales).astype(np.float32), 0, data=bias))
    t_y = g.tensor(out_shape, np.int8, out_s, out_zp)
    g.op(
        "FULLY_CONNECTED", ins, [t_y],
        fused_activation_function=act, weights_format=0, keep_num_dims=layout == "keep_num_dims",
    )  # fmt: skip
    sparse_label, sparse = sparse_variant(draw)
    kernel_isa = isa_variant(draw)
    summary = (
        f"FULLY_CONNECTED x{list(in_shape)} w{list(weights.shape)} fixed_point={fixed_point} "
        f"in=({in_s:.3g},{in_zp}) w_scales={w_scales.size} out=({out_s:.3g},{out_zp}) act={act} "
        f"bias={'none' if bias is None else int(np.abs(bias).max())} "
        f"zero weights={float(np.mean(weights == 0)):.2f} sparse={sparse_label} isa={kernel_isa}"
    )
    return OpCase(
        summary, g.graph([t_x], [t_y]), [x], [expected], fc_fixed_point=fixed_point, sparse=sparse, isa=kernel_isa
    )


# ---------------------------------------------------------------- pooling --


@st.composite
def pool_cases(draw: Any, opcode: str) -> OpCase:
    rng = _seed(draw)
    batch = draw(st.integers(1, 2))
    channels = draw(st.integers(1, MAX_CHANNELS))
    filt = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from([spec.SAME, spec.VALID]))
    hw = tuple(draw(st.integers(f if padding == spec.VALID else 1, f + 9)) for f in filt)
    scale, zp = log_uniform(draw, -3, 1), draw(st.integers(-128, 127))
    act_fn = draw(st.sampled_from(ACTIVATIONS))
    scale = tie_scale(draw, scale, act_fn)
    act = spec.activation_range(act_fn, scale, zp)
    x = int_array(rng, (batch, *hw, channels), draw(st.sampled_from(FILLS)))
    model = spec.average_pool2d if opcode == "AVERAGE_POOL_2D" else spec.max_pool2d
    expected = spec_or_reject(model, x, filt, stride, padding, act)
    g = GraphBuilder()
    t_x = g.tensor(x.shape, np.int8, scale, zp)
    t_y = g.tensor(expected.shape, np.int8, scale, zp)
    g.op(
        opcode, [t_x], [t_y], padding=padding, stride_h=stride[0], stride_w=stride[1],
        filter_height=filt[0], filter_width=filt[1], fused_activation_function=act_fn,
    )  # fmt: skip
    summary = (
        f"{opcode} x{list(x.shape)} filter={filt} stride={stride} padding={padding} q=({scale:.3g},{zp}) act={act_fn}"
    )
    return OpCase(summary, g.graph([t_x], [t_y]), [x], [expected])


# ------------------------------------------------------------ elementwise --


@st.composite
def broadcast_shapes(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(a, b, out): numpy-broadcastable shapes of rank <= 4 (a dim of 1, or a
    missing leading dim, repeats)."""
    rank = draw(st.integers(1, 4))
    out = tuple(draw(st.integers(1, 7)) for _ in range(rank))

    def operand() -> tuple[int, ...]:
        r = draw(st.integers(0 if rank > 1 else 1, rank))
        dims = out[rank - r :]
        return tuple(d if draw(st.booleans()) else 1 for d in dims) if r else (1,)

    a, b = operand(), operand()
    return a, b, tuple(np.broadcast_shapes(a, b))


@st.composite
def binary_cases(draw: Any, opcode: str) -> OpCase:
    rng = _seed(draw)
    pow2 = pow2_mode(draw)
    a_shape, b_shape, out_shape = draw(broadcast_shapes())
    s1 = log_uniform(draw, -3, 1, pow2)
    s2 = snap(s1 * 10.0 ** draw(st.floats(-2, 2)), pow2)
    z1, z2 = draw(st.integers(-128, 127)), draw(st.integers(-128, 127))
    if opcode == "ADD":
        out_s = snap(max(s1, s2) * 2.0 ** draw(st.floats(-3, 4)), pow2)
    else:
        out_s = snap(s1 * s2 * 128 * 2.0 ** draw(st.floats(-4, 4)), pow2)
    out_zp = draw(st.integers(-128, 127))
    act = draw(st.sampled_from(ACTIVATIONS))
    out_s = tie_scale(draw, out_s, act)
    a = int_array(rng, a_shape, draw(st.sampled_from(FILLS)))
    b = int_array(rng, b_shape, draw(st.sampled_from(FILLS)))
    model = spec.add if opcode == "ADD" else spec.mul
    expected = spec_or_reject(model, a, s1, z1, b, s2, z2, out_s, out_zp, activation=act)
    constant = draw(st.sampled_from([None, None, 0, 1]))  # which operand is a constant tensor
    g = GraphBuilder()
    t_a = g.tensor(a_shape, np.int8, s1, z1, data=a if constant == 0 else None)
    t_b = g.tensor(b_shape, np.int8, s2, z2, data=b if constant == 1 else None)
    t_y = g.tensor(out_shape, np.int8, out_s, out_zp)
    g.op(opcode, [t_a, t_b], [t_y], fused_activation_function=act)
    variant, choices = elementwise_variant(draw)
    kernel_isa = isa_variant(draw)
    graph_inputs = [t for t, k in ((t_a, 0), (t_b, 1)) if constant != k]
    inputs = [arr for arr, k in ((a, 0), (b, 1)) if constant != k]
    summary = (
        f"{opcode} a{list(a_shape)}({s1:.3g},{z1}) b{list(b_shape)}({s2:.3g},{z2}) -> {list(out_shape)}"
        f"({out_s:.3g},{out_zp}) act={act} constant={constant} variant={variant} isa={kernel_isa}"
    )
    return OpCase(summary, g.graph(graph_inputs, [t_y]), inputs, [expected], plan_choices=choices, isa=kernel_isa)


# ------------------------------------------------------------ data movement --


@st.composite
def pad_cases(draw: Any) -> OpCase:
    rng = _seed(draw)
    dtype = draw(st.sampled_from([np.int8, np.uint8]))
    info = np.iinfo(dtype)
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(rank))
    pads = [(draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(rank)]
    scale, zp = log_uniform(draw, -3, 1), draw(st.integers(int(info.min), int(info.max)))
    v2 = draw(st.booleans())
    value = draw(st.integers(int(info.min), int(info.max))) if v2 else zp
    x = int_array(rng, shape, draw(st.sampled_from(FILLS)), dtype)
    expected = spec.pad(x, pads, value)
    g = GraphBuilder()
    t_x = g.tensor(shape, dtype, scale, zp)
    t_p = g.tensor((rank, 2), np.int32, data=np.array(pads, dtype=np.int32))
    ins = [t_x, t_p]
    if v2:
        ins.append(g.tensor((), dtype, scale, zp, data=np.array(value, dtype=dtype)))
    t_y = g.tensor(expected.shape, dtype, scale, zp)
    g.op("PADV2" if v2 else "PAD", ins, [t_y])
    summary = f"{'PADV2' if v2 else 'PAD'} {np.dtype(dtype).name}{list(shape)} pads={pads} zp={zp} value={value}"
    return OpCase(summary, g.graph([t_x], [t_y]), [x], [expected])


@st.composite
def concatenation_cases(draw: Any) -> OpCase:
    rng = _seed(draw)
    dtype = draw(st.sampled_from([np.int8, np.int8, np.uint8]))
    info = np.iinfo(dtype)
    rank = draw(st.integers(1, 4))
    base = [draw(st.integers(1, 6)) for _ in range(rank)]
    axis = draw(st.integers(-rank, rank - 1))
    count = draw(st.integers(1, 5))
    shapes = []
    for _ in range(count):
        s = list(base)
        s[axis] = draw(st.integers(1, 6))
        shapes.append(tuple(s))
    scale, zp = log_uniform(draw, -3, 1), draw(st.integers(int(info.min), int(info.max)))
    arrays = [int_array(rng, s, draw(st.sampled_from(FILLS)), dtype) for s in shapes]
    constants = [draw(st.integers(0, 4)) == 0 for _ in shapes]  # some inputs are constant tensors
    if all(constants):
        constants[0] = False
    expected = spec.concatenation(arrays, axis)
    g = GraphBuilder()
    ts = [
        g.tensor(s, dtype, scale, zp, data=arr if c else None)
        for s, arr, c in zip(shapes, arrays, constants, strict=True)
    ]
    t_y = g.tensor(expected.shape, dtype, scale, zp)
    g.op("CONCATENATION", ts, [t_y], axis=axis, fused_activation_function=0)
    inputs = [arr for arr, c in zip(arrays, constants, strict=True) if not c]
    graph_inputs = [t for t, c in zip(ts, constants, strict=True) if not c]
    summary = f"CONCATENATION {np.dtype(dtype).name} {[list(s) for s in shapes]} axis={axis} constants={constants}"
    return OpCase(summary, g.graph(graph_inputs, [t_y]), inputs, [expected])


@st.composite
def reshape_cases(draw: Any) -> OpCase:
    rng = _seed(draw)
    dims = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(1, 4)))]
    size = math.prod(dims)
    # A new shape with the same element count: a random factorisation.
    new_shape: list[int] = []
    rest = size
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        new_shape.append(d)
        rest //= d
    new_shape.append(rest)
    scale, zp = log_uniform(draw, -3, 1), draw(st.integers(-128, 127))
    x = int_array(rng, tuple(dims), draw(st.sampled_from(FILLS)))
    expected = spec.reshape(x, new_shape)
    g = GraphBuilder()
    t_x = g.tensor(tuple(dims), np.int8, scale, zp)
    t_s = g.tensor((len(new_shape),), np.int32, data=np.array(new_shape, dtype=np.int32))
    t_y = g.tensor(tuple(new_shape), np.int8, scale, zp)
    g.op("RESHAPE", [t_x, t_s], [t_y], new_shape=list(new_shape))
    return OpCase(f"RESHAPE {dims} -> {new_shape}", g.graph([t_x], [t_y]), [x], [expected])


# ---------------------------------------------------- quantize / dequantize --


@st.composite
def quantize_cases(draw: Any) -> OpCase:
    rng = _seed(draw)
    pow2 = pow2_mode(draw)
    shape = tuple(draw(st.integers(1, 8)) for _ in range(draw(st.integers(1, 4))))
    out_dtype = draw(st.sampled_from([np.int8, np.uint8]))
    out_info = np.iinfo(out_dtype)
    out_s = log_uniform(draw, -3, 1, pow2)
    out_zp = draw(st.integers(int(out_info.min), int(out_info.max)))
    source = draw(st.sampled_from(["float32", "float32", "int8", "uint8"]))
    g = GraphBuilder()
    if source == "float32":
        # Reals spanning past the representable range, with exact half-steps
        # (ties) mixed in, where the rounding rule shows.
        steps = rng.integers(-400, 400, size=shape) + rng.choice([0.0, 0.5, 0.25], size=shape)
        x = (steps * out_s + rng.normal(0, out_s * 1e-3, size=shape) * rng.integers(0, 2, size=shape)).astype(
            np.float32
        )
        expected = spec_or_reject(spec.quantize, x, out_s, out_zp, out_dtype)
        t_x = g.tensor(shape, np.float32)
        summary = f"QUANTIZE float32{list(shape)} -> {np.dtype(out_dtype).name}({out_s:.3g},{out_zp})"
    else:
        in_dtype = np.int8 if source == "int8" else np.uint8
        in_info = np.iinfo(in_dtype)
        in_s = snap(out_s * 10.0 ** draw(st.floats(-2, 2)), pow2)
        in_zp = draw(st.integers(int(in_info.min), int(in_info.max)))
        if draw(st.integers(0, 3)) == 0:  # the same scale: TFLite's exact shift-by-128 case
            in_s = out_s
        x = int_array(rng, shape, draw(st.sampled_from(FILLS)), in_dtype)
        expected = spec_or_reject(spec.requantize, x, in_s, in_zp, out_s, out_zp, out_dtype)
        t_x = g.tensor(shape, in_dtype, in_s, in_zp)
        summary = (
            f"QUANTIZE {source}{list(shape)}({in_s:.3g},{in_zp}) -> {np.dtype(out_dtype).name}({out_s:.3g},{out_zp})"
        )
    t_y = g.tensor(shape, out_dtype, out_s, out_zp)
    g.op("QUANTIZE", [t_x], [t_y])
    return OpCase(summary, g.graph([t_x], [t_y]), [x], [expected])


@st.composite
def dequantize_cases(draw: Any) -> OpCase:
    rng = _seed(draw)
    shape = tuple(draw(st.integers(1, 8)) for _ in range(draw(st.integers(1, 4))))
    dtype = draw(st.sampled_from([np.int8, np.uint8]))
    info = np.iinfo(dtype)
    scale = log_uniform(draw, -6, 3)
    zp = draw(st.integers(int(info.min), int(info.max)))
    x = int_array(rng, shape, draw(st.sampled_from(FILLS)), dtype)
    expected = spec.dequantize(x, scale, zp)
    g = GraphBuilder()
    t_x = g.tensor(shape, dtype, scale, zp)
    t_y = g.tensor(shape, np.float32)
    g.op("DEQUANTIZE", [t_x], [t_y])
    summary = f"DEQUANTIZE {np.dtype(dtype).name}{list(shape)} ({scale:.3g},{zp})"
    return OpCase(summary, g.graph([t_x], [t_y]), [x], [expected])


# ------------------------------------------------- float-model comparisons --


@st.composite
def softmax_cases(draw: Any) -> OpCase:
    rng = _seed(draw)
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(rank - 1)) + (draw(st.integers(1, MAX_CHANNELS)),)
    in_s, in_zp = log_uniform(draw, -2.5, 0), draw(st.integers(-128, 127))
    beta = draw(st.sampled_from([1.0, 1.0, 0.5, 2.0]))
    out_s, out_zp = spec.f32(1.0 / 256), -128
    x = int_array(rng, shape, draw(st.sampled_from(FILLS)))
    probs = spec.float_softmax(x, in_s, in_zp, beta)
    expected = spec.quantize_real(probs, out_s, out_zp)
    g = GraphBuilder()
    t_x = g.tensor(shape, np.int8, in_s, in_zp)
    t_y = g.tensor(shape, np.int8, out_s, out_zp)
    g.op("SOFTMAX", [t_x], [t_y], beta=beta)
    summary = f"SOFTMAX x{list(shape)} in=({in_s:.3g},{in_zp}) beta={beta}"
    return OpCase(summary, g.graph([t_x], [t_y]), [x], [expected.astype(np.int8)], tolerance=1)


@st.composite
def pointwise_float_cases(draw: Any, opcode: str) -> OpCase:
    """LOGISTIC / TANH: TFLite fixes the int8 output quantization
    (1/256, -128 and 1/128, 0)."""
    rng = _seed(draw)
    shape = tuple(draw(st.integers(1, 8)) for _ in range(draw(st.integers(1, 4))))
    in_s, in_zp = log_uniform(draw, -2.5, 0), draw(st.integers(-128, 127))
    x = int_array(rng, shape, draw(st.sampled_from(FILLS)))
    real = (x.astype(np.float64) - in_zp) * in_s
    if opcode == "LOGISTIC":
        out_s, out_zp = spec.f32(1.0 / 256), -128
        values = 1.0 / (1.0 + np.exp(-real))
    else:
        out_s, out_zp = spec.f32(1.0 / 128), 0
        values = np.tanh(real)
    expected = spec.quantize_real(values, out_s, out_zp).astype(np.int8)
    g = GraphBuilder()
    t_x = g.tensor(shape, np.int8, in_s, in_zp)
    t_y = g.tensor(shape, np.int8, out_s, out_zp)
    g.op(opcode, [t_x], [t_y])
    return OpCase(
        f"{opcode} x{list(shape)} in=({in_s:.3g},{in_zp})", g.graph([t_x], [t_y]), [x], [expected], tolerance=1
    )


@st.composite
def mean_cases(draw: Any) -> OpCase:
    """MEAN over spatial axes of NHWC (the common int8 use), same or new
    output quantization; compared with the real mean within one step."""
    rng = _seed(draw)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 40)))
    axes = draw(st.sampled_from([(1, 2), (1,), (2,)]))
    keep_dims = draw(st.booleans())
    in_s, in_zp = log_uniform(draw, -3, 1), draw(st.integers(-128, 127))
    if draw(st.booleans()):
        out_s, out_zp = in_s, in_zp
    else:
        out_s, out_zp = spec.f32(in_s * 2.0 ** draw(st.floats(-2, 2))), draw(st.integers(-128, 127))
    x = int_array(rng, shape, draw(st.sampled_from(FILLS)))
    real = ((x.astype(np.float64) - in_zp) * in_s).mean(axis=axes, keepdims=keep_dims)
    expected = spec.quantize_real(real, out_s, out_zp).astype(np.int8)
    g = GraphBuilder()
    t_x = g.tensor(shape, np.int8, in_s, in_zp)
    t_a = g.tensor((len(axes),), np.int32, data=np.array(axes, dtype=np.int32))
    t_y = g.tensor(expected.shape, np.int8, out_s, out_zp)
    g.op("MEAN", [t_x, t_a], [t_y], keep_dims=keep_dims)
    summary = (
        f"MEAN x{list(shape)} axes={axes} keep_dims={keep_dims} in=({in_s:.3g},{in_zp}) out=({out_s:.3g},{out_zp})"
    )
    return OpCase(summary, g.graph([t_x], [t_y]), [x], [expected], tolerance=1)
