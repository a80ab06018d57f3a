"""A NumPy model of TensorFlow Lite's int8 quantization spec, for testing.

This module is written from the specification (the TFLite quantization spec
and the behaviour of its reference kernels), independently of tinyrt's own
planner and kernels: it never imports `runtime`.  Each function states the
rule it implements.  Where TFLite defines an operator by an integer recipe
(every convolution, pooling, ADD, MUL, requantization) the model is exact, so
tests compare with `==`.

Arithmetic is vectorised in int64, where every intermediate of the int32
recipes fits, so no step can wrap silently.  Where TFLite's own arithmetic
would leave int32 (an undefined result in C++: an accumulator that overflows,
a left shift that overflows, a float that does not fit the integer it is cast
to), the model raises `SpecUndefined` instead of guessing: a test treats that
example as outside the contract.

Conventions: tensors are NHWC; a quantized value q stands for
scale * (q - zero_point); scales are float32 (as a .tflite file stores them)
and every step below says whether TFLite computes it in float32 or float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
UINT8_MIN, UINT8_MAX = 0, 255
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# Fused activations (the TFLite schema's ActivationFunctionType).
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
# Padding modes (the schema's Padding).
SAME, VALID = 0, 1

I64 = np.int64


class SpecUndefined(ArithmeticError):
    """TFLite's result is undefined here (int32 overflow or an out-of-range cast)."""


def _check_int32(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=I64)
    if values.size and (values.min() < INT32_MIN or values.max() > INT32_MAX):
        raise SpecUndefined(f"{what} leaves int32")
    return values


def f32(x: float) -> float:
    """A value rounded to float32 (as a scale read from a .tflite file)."""
    return float(np.float32(x))


# --------------------------------------------------------------- rounding ---


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """C's round(): nearest integer, halves away from zero, as int64.

    Computed as trunc plus a correction from the exact fraction x - trunc(x)
    (exact in binary floating point), so that values just below a half such
    as 0.49999999999999994 are not pushed over by an inexact x + 0.5.
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.trunc(x)
    frac = x - t
    return (t + (frac >= 0.5) - (frac <= -0.5)).astype(I64)


def divide_round_half_away(num: np.ndarray, den: int | np.ndarray) -> np.ndarray:
    """num / den for integers (den > 0), rounded to nearest, halves away from zero."""
    num = np.asarray(num, dtype=I64)
    mag = (np.abs(num) + np.asarray(den, dtype=I64) // 2) // den
    return np.where(num < 0, -mag, mag)


# ---------------------------------------------------- fixed-point rescale ---


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: real == q * 2**(shift - 31), q a Q31 in [2**30, 2**31).

    The mantissa comes from frexp (in [0.5, 1)), scaled by 2**31 and rounded
    half away from zero; a mantissa that rounds up to 2**31 is halved and the
    exponent bumped.  Multipliers below 2**-31 (shift < -31) flush to zero.
    """
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = int(round_half_away(mantissa * 2.0**31))
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    assert q <= INT32_MAX
    return q, shift


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values.

    The high 32 bits of 2*a*b, rounded to nearest with ties toward +infinity:
    floor((a*b + 2**30) / 2**31).  (gemmlowp writes it with a sign-dependent
    nudge and a truncating division; the two agree on every input.)  The one
    product that does not fit, INT32_MIN * INT32_MIN, saturates to INT32_MAX.
    """
    ab = np.asarray(a, dtype=I64) * np.asarray(b, dtype=I64)  # |ab| <= 2**62
    return np.minimum((ab + (1 << 30)) >> 31, INT32_MAX)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent, halves away from zero."""
    exponent = np.asarray(exponent, dtype=I64)
    return divide_round_half_away(x, np.left_shift(I64(1), exponent))


def multiply_by_quantized_multiplier(
    x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int
) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (the default, double-rounding build).

    A positive shift multiplies x by 2**shift first (in int32: it must fit),
    then the Q31 high-multiply, then a negative shift divides by 2**-shift
    with rounding half away from zero.  multiplier and shift broadcast
    against x (per-channel rescale along the last axis).
    """
    x = np.asarray(x, dtype=I64)
    shift = np.asarray(shift, dtype=I64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = _check_int32(x * np.left_shift(I64(1), left), "x * 2**left_shift")
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_smaller_than_one(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplierSmallerThanOneExp: high-multiply, then divide (shift <= 0)."""
    assert shift <= 0
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(_check_int32(x, "x"), multiplier), -shift)


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: TFLite refuses reals outside (0, 1)."""
    if not 0.0 < real < 1.0:
        raise SpecUndefined(f"rescale factor {real} must lie in (0, 1)")
    return quantize_multiplier(real)


# ------------------------------------------------------------- activations --


def quantize_scalar(value: float, scale: float, zero_point: int) -> int:
    """kernel_util's Quantize: zero_point + round(value / scale), the division
    and the rounding in float32 (TfLiteRound on a float)."""
    quotient = np.float32(value) / np.float32(scale)
    return zero_point + int(round_half_away(float(quotient)))


def activation_range(
    activation: int, scale: float, zero_point: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX
) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: the fused activation's bounds,
    quantized with the output's parameters and intersected with the type range."""
    if activation == ACT_NONE:
        return qmin, qmax
    if activation == ACT_RELU:
        return max(qmin, quantize_scalar(0.0, scale, zero_point)), qmax
    if activation == ACT_RELU6:
        return max(qmin, quantize_scalar(0.0, scale, zero_point)), min(qmax, quantize_scalar(6.0, scale, zero_point))
    if activation == ACT_RELU_N1_TO_1:
        return max(qmin, quantize_scalar(-1.0, scale, zero_point)), min(qmax, quantize_scalar(1.0, scale, zero_point))
    raise ValueError(f"activation {activation} has no int8 range")


def _finish(acc_scaled: np.ndarray, out_zp: int, act: tuple[int, int], dtype=np.int8) -> np.ndarray:
    """Add the output zero point (int32 arithmetic), clamp to the activation range."""
    out = _check_int32(np.asarray(acc_scaled, dtype=I64) + out_zp, "rescaled value plus zero point")
    return np.clip(out, act[0], act[1]).astype(dtype)


# ---------------------------------------------------------------- geometry --


def out_size_and_padding(
    padding: int, in_size: int, filter_size: int, stride: int, dilation: int = 1
) -> tuple[int, int]:
    """ComputeOutSize and ComputePaddingWithOffset: (output size, padding before).

    SAME: out = ceil(in / stride); VALID: out = floor((in - effective) / stride) + 1
    with effective = (filter - 1) * dilation + 1.  The padding before is half
    the total padding, rounded down (the odd pixel goes after).
    """
    effective = (filter_size - 1) * dilation + 1
    if padding == SAME:
        out = (in_size + stride - 1) // stride
    elif padding == VALID:
        out = (in_size + stride - effective) // stride
    else:
        raise ValueError(f"padding {padding}")
    total = max((out - 1) * stride + effective - in_size, 0)
    return out, total // 2


def _window_taps(
    x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], dilation: tuple[int, int], padding: int, fill: int
) -> tuple[np.ndarray, np.ndarray]:
    """All filter taps of every output pixel: [KH, KW, N, OH, OW, C] values and
    a [KH, KW, OH, OW] mask of the taps that fall inside the image.

    Taps outside the image read `fill`; callers choose a fill that the mask or
    the arithmetic makes irrelevant (TFLite skips those taps)."""
    n, h, w, c = x.shape
    oh, pad_top = out_size_and_padding(padding, h, kh, stride[0], dilation[0])
    ow, pad_left = out_size_and_padding(padding, w, kw, stride[1], dilation[1])
    if oh <= 0 or ow <= 0:
        raise ValueError("the filter does not fit the input")
    # Enough room on every side for any tap of any output pixel.
    reach_h = (oh - 1) * stride[0] + (kh - 1) * dilation[0] + 1
    reach_w = (ow - 1) * stride[1] + (kw - 1) * dilation[1] + 1
    bottom = max(reach_h - pad_top - h, 0)
    right = max(reach_w - pad_left - w, 0)
    padded = np.pad(x, ((0, 0), (pad_top, bottom), (pad_left, right), (0, 0)), constant_values=fill)
    inside = np.pad(np.ones((h, w), dtype=bool), ((pad_top, bottom), (pad_left, right)))
    taps = np.empty((kh, kw, n, oh, ow, c), dtype=x.dtype)
    mask = np.empty((kh, kw, oh, ow), dtype=bool)
    for ky in range(kh):
        y0 = ky * dilation[0]
        ys = slice(y0, y0 + (oh - 1) * stride[0] + 1, stride[0])
        for kx in range(kw):
            x0 = kx * dilation[1]
            xs = slice(x0, x0 + (ow - 1) * stride[1] + 1, stride[1])
            taps[ky, kx] = padded[:, ys, xs, :]
            mask[ky, kx] = inside[ys, xs]
    return taps, mask


# ----------------------------------------------------------- convolutions --


def conv_multipliers(
    input_scale: float, filter_scales: np.ndarray, output_scale: float, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: per output channel,
    QuantizeMultiplier(double(in) * double(w[c]) / double(out)); one filter
    scale is broadcast to every channel."""
    scales = np.broadcast_to(np.asarray(filter_scales, dtype=np.float32).reshape(-1), (channels,))
    pairs = [quantize_multiplier(f32(input_scale) * float(s) / f32(output_scale)) for s in scales]
    return np.array([m for m, _ in pairs], dtype=I64), np.array([s for _, s in pairs], dtype=I64)


def conv2d(
    x: np.ndarray,
    input_scale: float,
    input_zp: int,
    weights: np.ndarray,
    filter_scales: np.ndarray,
    bias: np.ndarray | None,
    output_scale: float,
    output_zp: int,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: int = SAME,
    activation: int = ACT_NONE,
) -> np.ndarray:
    """CONV_2D int8 (reference ConvPerChannel), with groups.

    weights: [OC, KH, KW, C_in / groups]; output channel oc belongs to group
    oc // (OC / groups) and sees that group's slice of input channels.
    acc[oc] = sum over in-image taps of w * (x - zp_in) + bias[oc]; taps
    outside the image contribute nothing, which is the same as padding the
    input with its zero point.  Then the per-channel rescale, + zp_out, clamp.
    """
    oc, kh, kw, fc = weights.shape
    groups = x.shape[3] // fc
    per_group = oc // groups
    centred = x.astype(I64) - input_zp
    taps, _ = _window_taps(centred, kh, kw, stride, dilation, padding, fill=0)
    n, oh, ow = taps.shape[2:5]
    taps = taps.reshape(kh, kw, n, oh, ow, groups, fc)
    w = weights.astype(I64).reshape(groups, per_group, kh, kw, fc)
    acc = np.einsum("yxnhwgc,gpyxc->nhwgp", taps, w).reshape(n, oh, ow, oc)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=I64).reshape(oc)
    acc = _check_int32(acc, "conv accumulator")
    mult, shift = conv_multipliers(input_scale, filter_scales, output_scale, oc)
    act = activation_range(activation, output_scale, output_zp)
    return _finish(multiply_by_quantized_multiplier(acc, mult, shift), output_zp, act)


def depthwise_conv2d(
    x: np.ndarray,
    input_scale: float,
    input_zp: int,
    weights: np.ndarray,
    filter_scales: np.ndarray,
    bias: np.ndarray | None,
    output_scale: float,
    output_zp: int,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: int = SAME,
    activation: int = ACT_NONE,
) -> np.ndarray:
    """DEPTHWISE_CONV_2D int8 (reference DepthwiseConvPerChannel).

    weights: [1, KH, KW, C_in * depth_multiplier]; output channel
    ic * depth_multiplier + m filters input channel ic alone.
    """
    _, kh, kw, oc = weights.shape
    in_c = x.shape[3]
    multiplier = oc // in_c
    centred = x.astype(I64) - input_zp
    taps, _ = _window_taps(centred, kh, kw, stride, dilation, padding, fill=0)
    # Output channel ic * multiplier + m reads input channel ic.
    taps = np.repeat(taps, multiplier, axis=5)
    acc = np.einsum("yxnhwc,yxc->nhwc", taps, weights.astype(I64)[0])
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=I64).reshape(oc)
    acc = _check_int32(acc, "depthwise accumulator")
    mult, shift = conv_multipliers(input_scale, filter_scales, output_scale, oc)
    act = activation_range(activation, output_scale, output_zp)
    return _finish(multiply_by_quantized_multiplier(acc, mult, shift), output_zp, act)


def fully_connected(
    x: np.ndarray,
    input_scale: float,
    input_zp: int,
    weights: np.ndarray,
    filter_scales: np.ndarray,
    bias: np.ndarray | None,
    output_scale: float,
    output_zp: int,
    activation: int = ACT_NONE,
    fixed_point: bool = False,
) -> np.ndarray:
    """FULLY_CONNECTED int8.  weights [N, K]; the input is read as rows of K.

    acc[b, n] = sum_k w[n, k] * (x[b, k] - zp_in) + bias[n].  Two rescales:

    - fixed_point=False, TFLite's reference kernel (BUILTIN_REF): in double,
      acc_scaled = round(double(acc) * (double(in) * double(w[n]) / double(out))),
      C's round (half away from zero), then cast to int32.
    - fixed_point=True, TFLite Micro: MultiplyByQuantizedMultiplier with
      QuantizeMultiplier of the same real multiplier, except that one
      per-tensor filter scale is multiplied by the input scale in float32
      first (GetQuantizedConvolutionMultipler).

    Returns [rows, N]; callers reshape to the output tensor's shape.
    """
    n_out, k = weights.shape
    rows = x.astype(I64).reshape(-1, k) - input_zp
    acc = rows @ weights.astype(I64).T
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=I64).reshape(n_out)
    acc = _check_int32(acc, "fully connected accumulator")
    scales = np.broadcast_to(np.asarray(filter_scales, dtype=np.float32).reshape(-1), (n_out,))
    in_s, out_s = f32(input_scale), f32(output_scale)
    act = activation_range(activation, output_scale, output_zp)
    if not fixed_point:
        effective = np.array([in_s * float(s) / out_s for s in scales], dtype=np.float64)
        scaled = acc.astype(np.float64) * effective  # exact int32 -> double, one IEEE product
        rounded = round_half_away(np.clip(scaled, -(2.0**62), 2.0**62))
        return _finish(_check_int32(rounded, "rescaled accumulator"), output_zp, act)
    per_tensor = np.asarray(filter_scales).size == 1
    reals = [
        float(np.float32(input_scale) * np.float32(s)) / out_s if per_tensor else in_s * float(s) / out_s
        for s in scales
    ]
    pairs = [quantize_multiplier(r) for r in reals]
    mult = np.array([m for m, _ in pairs], dtype=I64)
    shift = np.array([s for _, s in pairs], dtype=I64)
    return _finish(multiply_by_quantized_multiplier(acc, mult, shift), output_zp, act)


# ---------------------------------------------------------------- pooling --


def average_pool2d(
    x: np.ndarray, filter_hw: tuple[int, int], stride: tuple[int, int], padding: int, act: tuple[int, int]
) -> np.ndarray:
    """AVERAGE_POOL_2D int8: the mean of the in-image taps only (padding does
    not count), as an integer division rounded half away from zero; clamp.
    Input and output share scale and zero point, so no rescale."""
    taps, mask = _window_taps(x.astype(I64), filter_hw[0], filter_hw[1], stride, (1, 1), padding, fill=0)
    total = taps.sum(axis=(0, 1))  # fill 0 adds nothing
    count = mask.sum(axis=(0, 1))[None, :, :, None].astype(I64)
    if np.any(count == 0):
        raise SpecUndefined("a pooling window lies entirely in the padding")
    return np.clip(divide_round_half_away(total, count), act[0], act[1]).astype(np.int8)


def max_pool2d(
    x: np.ndarray, filter_hw: tuple[int, int], stride: tuple[int, int], padding: int, act: tuple[int, int]
) -> np.ndarray:
    """MAX_POOL_2D int8: the largest in-image tap (padding never wins), clamped."""
    taps, _ = _window_taps(x.astype(I64), filter_hw[0], filter_hw[1], stride, (1, 1), padding, fill=INT8_MIN)
    return np.clip(taps.max(axis=(0, 1)), act[0], act[1]).astype(np.int8)


# ------------------------------------------------------------ elementwise --


def add(
    a: np.ndarray,
    a_scale: float,
    a_zp: int,
    b: np.ndarray,
    b_scale: float,
    b_zp: int,
    output_scale: float,
    output_zp: int,
    activation: int = ACT_NONE,
) -> np.ndarray:
    """ADD int8 with broadcasting: the 8-bit recipe of add.cc / AddFunc.

    Both inputs (minus their zero points) are shifted left by 20 bits and
    rescaled to a common scale, twice the larger input scale; the sum is
    rescaled to the output.  Constants, in TFLite's precisions:
      twice_max = 2 * max(s1, s2)                      (float32, exact)
      real_i    = double(s_i) / twice_max              (float64)
      real_out  = twice_max / double(float32(2**20) * s_out)
    each through QuantizeMultiplierSmallerThanOneExp.
    """
    left_shift = 20
    s1, s2, so = np.float32(a_scale), np.float32(b_scale), np.float32(output_scale)
    twice_max = float(np.float32(2) * max(s1, s2))
    m1, sh1 = quantize_multiplier_smaller_than_one(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one(float(s2) / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one(twice_max / float(np.float32(1 << left_shift) * so))
    x1 = (a.astype(I64) - a_zp) << left_shift
    x2 = (b.astype(I64) - b_zp) << left_shift
    scaled1 = multiply_by_quantized_multiplier_smaller_than_one(x1, m1, sh1)
    scaled2 = multiply_by_quantized_multiplier_smaller_than_one(x2, m2, sh2)
    total = scaled1 + scaled2  # numpy broadcasting = TFLite's broadcast rules
    out = multiply_by_quantized_multiplier_smaller_than_one(total, mo, sho)
    return _finish(out, output_zp, activation_range(activation, output_scale, output_zp))


def mul(
    a: np.ndarray,
    a_scale: float,
    a_zp: int,
    b: np.ndarray,
    b_scale: float,
    b_zp: int,
    output_scale: float,
    output_zp: int,
    activation: int = ACT_NONE,
) -> np.ndarray:
    """MUL int8 with broadcasting: (a - zp_a) * (b - zp_b) rescaled by
    QuantizeMultiplier(s_a * s_b / s_out), that ratio formed in float32."""
    real = float(np.float32(a_scale) * np.float32(b_scale) / np.float32(output_scale))
    m, sh = quantize_multiplier(real)
    prod = (a.astype(I64) - a_zp) * (b.astype(I64) - b_zp)
    out = multiply_by_quantized_multiplier(prod, m, sh)
    return _finish(out, output_zp, activation_range(activation, output_scale, output_zp))


# ------------------------------------------------------------ data movement --


def pad(x: np.ndarray, paddings: Sequence[tuple[int, int]], value: int) -> np.ndarray:
    """PAD / PADV2: the input surrounded by `value` (PAD: the zero point)."""
    return np.pad(x, [tuple(p) for p in paddings], constant_values=value).astype(x.dtype)


def concatenation(inputs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """CONCATENATION of inputs that share scale and zero point: a plain join."""
    return np.concatenate(list(inputs), axis=axis)


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """RESHAPE: the same values in row-major order under a new shape."""
    return x.reshape(tuple(shape))


# ---------------------------------------------------- quantize / dequantize --


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """QUANTIZE float32 -> int8/uint8 (AffineQuantize): round(x / scale) with
    the division in float32 and C's round, cast to int32, + zp, clamp."""
    info = np.iinfo(dtype)
    quotient = np.asarray(x, dtype=np.float32) / np.float32(scale)
    if not np.all(np.isfinite(quotient)) or np.any(np.abs(quotient) >= 2.0**31):
        raise SpecUndefined("value / scale does not fit int32")
    q = round_half_away(quotient.astype(np.float64))
    return np.clip(_check_int32(q + zero_point, "quantized value"), info.min, info.max).astype(dtype)


def requantize(
    x: np.ndarray, input_scale: float, input_zp: int, output_scale: float, output_zp: int, dtype=np.int8
) -> np.ndarray:
    """QUANTIZE between 8-bit types (Requantize): (x - zp_in) rescaled by
    QuantizeMultiplier(double(s_in) / double(s_out)), + zp_out, clamp."""
    info = np.iinfo(dtype)
    m, sh = quantize_multiplier(f32(input_scale) / f32(output_scale))
    out = multiply_by_quantized_multiplier(x.astype(I64) - input_zp, m, sh) + output_zp
    return np.clip(out, info.min, info.max).astype(dtype)


def dequantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """DEQUANTIZE: float32(double(scale) * (q - zp)) - the product in double."""
    return (np.float64(f32(scale)) * (x.astype(np.float64) - zero_point)).astype(np.float32)


# ------------------------------------------ float models (tolerance tests) --
# TFLite's int8 SOFTMAX, LOGISTIC and TANH are fixed-point approximations of
# transcendental functions; the tests compare with these exact real-valued
# results and accept 1 LSB, rather than re-deriving gemmlowp's polynomials.


def float_softmax(x: np.ndarray, scale: float, zero_point: int, beta: float) -> np.ndarray:
    """Softmax over the last axis of the dequantized input, as probabilities."""
    real = (x.astype(np.float64) - zero_point) * f32(scale) * f32(beta)
    e = np.exp(real - real.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def quantize_real(values: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """Exact real values to the nearest quantized level (round half away), clamped."""
    info = np.iinfo(dtype)
    return np.clip(round_half_away(np.asarray(values, dtype=np.float64) / scale) + zero_point, info.min, info.max)
