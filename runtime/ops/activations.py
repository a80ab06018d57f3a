"""Point-wise int8 activations: LOGISTIC, TANH, the RELU family, LEAKY_RELU, HARD_SWISH.

Each output byte depends on one input byte only, so the planner evaluates
TFLite's reference arithmetic -- the C library's `trt_*_s8_scalar` functions
-- for all 256 inputs and the run is one TRT_OP_LUT table look-up per
element.  The constants below are derived exactly as the Prepare functions
of TFLite's activations.cc derive them, in the same float32/float64 mix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._native import ffi, lib
from ..quant import quantize_multiplier, round_half_away
from .common import INT8, OpContext, Step

INT8_MIN, INT8_MAX = -128, 127


def _f32(x: float) -> np.float32:
    return np.float32(x)


def _io(ctx: OpContext) -> tuple[Any, Any, float, int, float, int]:
    x, y = ctx.req_input(0), ctx.output()
    ctx.expect_dtype(x, INT8, what="input")
    ctx.expect_dtype(y, INT8, what="output")
    if tuple(x.shape) != tuple(y.shape):
        raise ctx.unsupported(f"input {list(x.shape)} and output {list(y.shape)} shapes must match")
    ctx.activation_variable(x, "input")
    in_s, in_zp = ctx.scale_zp(x, "input")
    out_s, out_zp = ctx.scale_zp(y, "output")
    for s, what in ((in_s, "input"), (out_s, "output")):
        if not (math.isfinite(s) and s > 0):
            raise ctx.unsupported(f"{what} scale {s} must be positive and finite")
    for zp, what in ((in_zp, "input"), (out_zp, "output")):
        if not INT8_MIN <= zp <= INT8_MAX:
            raise ctx.unsupported(f"{what} zero point {zp} is outside the int8 range")
    return x, y, in_s, in_zp, out_s, out_zp


def build_table(scalar: Callable[[Any, int], int], params: Any) -> np.ndarray:
    """table[(uint8)(x + 128)] = scalar(params, x) for every int8 x."""
    return np.array([scalar(params, x) for x in range(INT8_MIN, INT8_MAX + 1)], dtype=np.int8)


def _lut_step(ctx: OpContext, x: Any, y: Any, table: np.ndarray, note: str) -> Step:
    p = ctx.new("trt_lut_params *")
    p.size = x.size
    p.table = ctx.c_array(table, "const int8_t *")
    return ctx.finish(Step(kind=lib.TRT_OP_LUT, params=p, inputs=[x.index], output=y.index, note=note))


# ---------------------------------------------------------------- LOGISTIC / TANH


def float_lut_params(in_s: float, in_zp: int, out_s: float, out_zp: int) -> Any:
    """LUTPopulate's inputs: the tensors' float32 scales and zero points."""
    p = ffi.new("trt_float_lut_params *")
    p.input_scale, p.input_zero_point = float(_f32(in_s)), in_zp
    p.output_scale, p.output_zero_point = float(_f32(out_s)), out_zp
    return p


def logistic_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    return build_table(lib.trt_logistic_s8_scalar, float_lut_params(in_s, in_zp, out_s, out_zp))


def tanh_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    return build_table(lib.trt_tanh_s8_scalar, float_lut_params(in_s, in_zp, out_s, out_zp))


def build_logistic(ctx: OpContext) -> Step:
    x, y, in_s, in_zp, out_s, out_zp = _io(ctx)
    # SigmoidPrepare insists on this output scale (compared as float == 1/256).
    if _f32(out_s) != _f32(1.0 / 256):
        raise ctx.unsupported(f"int8 LOGISTIC output scale must be 1/256, got {out_s}")
    return _lut_step(ctx, x, y, logistic_table(in_s, in_zp, out_s, out_zp), "logistic")


def build_tanh(ctx: OpContext) -> Step:
    x, y, in_s, in_zp, out_s, out_zp = _io(ctx)
    return _lut_step(ctx, x, y, tanh_table(in_s, in_zp, out_s, out_zp), "tanh")


# ------------------------------------------------------------------ RELU family

# (lower, upper) bound of each ReluX in real units; None: unbounded above.
RELU_BOUNDS: dict[str, tuple[float, float | None]] = {
    "RELU": (0.0, None),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
    "RELU_0_TO_1": (0.0, 1.0),
}


def _relu_bound(bound: float, out_s: float, out_zp: int) -> int:
    """out_zp + (int32)roundf(bound / out_scale), the division in float32."""
    q = _f32(bound) / _f32(out_s)
    if not math.isfinite(float(q)) or abs(float(q)) >= 2.0**31:
        raise ValueError(f"activation bound {bound} is out of range for output scale {out_s}")
    return out_zp + round_half_away(float(q))


def relu_params(opcode: str, in_s: float, in_zp: int, out_s: float, out_zp: int) -> Any:
    """ReluPrepare + QuantizedReluX: in/out ratio in float32, bounds rounded with roundf."""
    lower, upper = RELU_BOUNDS[opcode]
    p = ffi.new("trt_relu_params *")
    p.input_zero_point, p.output_zero_point = in_zp, out_zp
    p.multiplier, p.shift = quantize_multiplier(float(_f32(in_s) / _f32(out_s)))
    p.act_min = max(INT8_MIN, _relu_bound(lower, out_s, out_zp))
    p.act_max = INT8_MAX if upper is None else min(INT8_MAX, _relu_bound(upper, out_s, out_zp))
    return p


def relu_table(opcode: str, in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    return build_table(lib.trt_relu_s8_scalar, relu_params(opcode, in_s, in_zp, out_s, out_zp))


def build_relu(ctx: OpContext) -> Step:
    x, y, in_s, in_zp, out_s, out_zp = _io(ctx)
    try:
        p = relu_params(ctx.op.opcode, in_s, in_zp, out_s, out_zp)
    except ValueError as exc:
        raise ctx.unsupported(str(exc)) from exc
    # TFLite's MultiplyByQuantizedMultiplier is defined for shifts in [-31, 30].
    if not -31 <= p.shift <= 30:
        raise ctx.unsupported(f"input/output scale ratio {in_s / out_s} is outside TFLite's rescale range")
    return _lut_step(ctx, x, y, build_table(lib.trt_relu_s8_scalar, p), ctx.op.opcode.lower())


# -------------------------------------------------------------------- LEAKY_RELU


def leaky_relu_params(alpha: float, in_s: float, in_zp: int, out_s: float, out_zp: int) -> Any:
    """LeakyReluPrepare: both ratios formed in float32, then QuantizeMultiplier."""
    p = ffi.new("trt_leaky_relu_params *")
    p.input_zero_point, p.output_zero_point = in_zp, out_zp
    alpha_ratio = _f32(in_s) * _f32(alpha) / _f32(out_s)
    p.alpha_multiplier, p.alpha_shift = quantize_multiplier(float(alpha_ratio))
    p.identity_multiplier, p.identity_shift = quantize_multiplier(float(_f32(in_s) / _f32(out_s)))
    return p


def leaky_relu_table(alpha: float, in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    return build_table(lib.trt_leaky_relu_s8_scalar, leaky_relu_params(alpha, in_s, in_zp, out_s, out_zp))


def build_leaky_relu(ctx: OpContext) -> Step:
    x, y, in_s, in_zp, out_s, out_zp = _io(ctx)
    alpha = float(ctx.options.get("alpha", 0.0))
    if not math.isfinite(alpha):
        raise ctx.unsupported(f"alpha {alpha} is not finite")
    p = leaky_relu_params(alpha, in_s, in_zp, out_s, out_zp)
    for shift in (p.alpha_shift, p.identity_shift):
        if not -31 <= shift <= 30:
            raise ctx.unsupported("scale ratios are outside what TFLite's rescale supports")
    return _lut_step(ctx, x, y, build_table(lib.trt_leaky_relu_s8_scalar, p), "leaky_relu")


# -------------------------------------------------------------------- HARD_SWISH


def _downscale_to_q15(multiplier: int) -> int:
    """TFLite DownScaleInt32ToInt16Multiplier: round a Q31 multiplier to Q15."""
    rounding = 1 << 15
    if multiplier >= 0x7FFFFFFF - rounding:
        return 0x7FFF
    return (multiplier + rounding) >> 16


def hard_swish_params(in_s: float, in_zp: int, out_s: float, out_zp: int) -> Any:
    """HardSwishPrepare: every ratio in float32, multipliers narrowed to Q15."""
    hires_input_scale = _f32(1.0 / 128.0) * _f32(in_s)
    reluish_scale = _f32(3.0) / _f32(32768.0)
    out_mult, out_exp = quantize_multiplier(float(hires_input_scale / _f32(out_s)))
    relu_mult, relu_exp = quantize_multiplier(float(hires_input_scale / reluish_scale))
    p = ffi.new("trt_hard_swish_params *")
    p.input_zero_point, p.output_zero_point = in_zp, out_zp
    p.output_multiplier, p.output_exponent = _downscale_to_q15(out_mult), out_exp
    p.reluish_multiplier, p.reluish_exponent = _downscale_to_q15(relu_mult), relu_exp
    return p


def hard_swish_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    return build_table(lib.trt_hard_swish_s8_scalar, hard_swish_params(in_s, in_zp, out_s, out_zp))


def build_hard_swish(ctx: OpContext) -> Step:
    x, y, in_s, in_zp, out_s, out_zp = _io(ctx)
    p = hard_swish_params(in_s, in_zp, out_s, out_zp)
    # HardSwishPrepare rejects a left-shifting output multiplier; TFLite's
    # shifts are only defined up to 31 places (its left shift computes 1 << n
    # in int, hence at most 30 there).
    if not -31 <= p.output_exponent <= 0:
        raise ctx.unsupported(f"output rescale exponent {p.output_exponent} is outside [-31, 0]")
    if not -31 <= p.reluish_exponent <= 30:
        raise ctx.unsupported(f"input rescale exponent {p.reluish_exponent} is outside [-31, 30]")
    return _lut_step(ctx, x, y, build_table(lib.trt_hard_swish_s8_scalar, p), "hard_swish")
