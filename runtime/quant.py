"""Plan-time quantization arithmetic, exactly as TensorFlow Lite computes it.

These functions decide the integer constants the C kernels use (Q31
multipliers, shifts, activation ranges).  Bit-exactness with TFLite depends
as much on them as on the kernels: TFLite mixes float32 and float64 steps,
and each function here states which precision each step uses.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import UnsupportedModelError

INT8_MIN, INT8_MAX = -128, 127


def f32(x: float) -> float:
    """Round a Python float (double) to float32 and back."""
    return float(np.float32(x))


def round_half_away(x: float) -> int:
    """C's round(): halves go away from zero, exactly (x - trunc(x) is exact)."""
    t = math.trunc(x)
    frac = x - t
    if frac >= 0.5:
        return t + 1
    if frac <= -0.5:
        return t - 1
    return t


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = q * 2**shift with q a Q31 in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real):  # from an absurd scale (a corrupt model)
        raise UnsupportedModelError(f"quantization multiplier {real!r} is not a finite number")
    mantissa, shift = math.frexp(real)
    q = round_half_away(mantissa * float(1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 31:
        # The kernels shift an int32 left by `shift`: more than 31 is undefined in C.
        raise UnsupportedModelError(f"quantization multiplier {real!r} is too large (at most 2**31)")
    if q > 0x7FFFFFFF or q < -0x80000000:
        raise UnsupportedModelError(f"quantization multiplier {real!r} does not fit in Q31")
    return q, shift


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier over an array of float64 values (same results, vectorised)."""
    reals = np.asarray(reals, dtype=np.float64)
    mantissa, shift = np.frexp(reals)
    scaled = mantissa * float(1 << 31)  # exact: a power-of-two scaling
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)
    carry = q == (1 << 31)
    q = np.where(carry, q // 2, q)
    shift = np.where(carry, shift + 1, shift).astype(np.int64)
    tiny = shift < -31
    q = np.where(tiny | (reals == 0.0), 0, q)
    shift = np.where(tiny | (reals == 0.0), 0, shift)
    if np.any(q > 0x7FFFFFFF) or np.any(q < -0x80000000):
        raise UnsupportedModelError("a quantization multiplier does not fit in Q31")
    return q.astype(np.int32), shift.astype(np.int32)


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierSmallerThanOneExp (returns a shift <= 0)."""
    if not 0.0 < real < 1.0:
        raise UnsupportedModelError(
            f"rescale factor {real!r} must lie strictly between 0 and 1 for this operator"
        )
    q, shift = quantize_multiplier(real)
    return q, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierGreaterThanOne (returns a shift >= 0)."""
    if not real > 1.0:
        raise UnsupportedModelError(f"rescale factor {real!r} must be greater than 1")
    return quantize_multiplier(real)


def quantize_scalar_f32(value: float, scale: float, zero_point: int) -> int:
    """TFLite's kernel_util Quantize: round(value / scale) in float32, plus zp."""
    with np.errstate(over="ignore"):
        tmp = np.float32(value) / np.float32(scale)
    # A tiny scale overflows to inf; every caller clamps to an 8/16-bit range,
    # so clamping to int32's range first changes no result.
    return zero_point + round_half_away(min(max(float(tmp), -2.0**31), 2.0**31))


ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


def activation_range(
    activation: int, scale: float, zero_point: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX
) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for a fused activation."""
    if activation == 0:
        return qmin, qmax
    if activation == 1:
        return max(qmin, quantize_scalar_f32(0.0, scale, zero_point)), qmax
    if activation == 3:
        return (
            max(qmin, quantize_scalar_f32(0.0, scale, zero_point)),
            min(qmax, quantize_scalar_f32(6.0, scale, zero_point)),
        )
    if activation == 2:
        return (
            max(qmin, quantize_scalar_f32(-1.0, scale, zero_point)),
            min(qmax, quantize_scalar_f32(1.0, scale, zero_point)),
        )
    raise UnsupportedModelError(
        f"fused activation {ACTIVATIONS.get(activation, activation)} is not supported on int8 outputs"
    )
