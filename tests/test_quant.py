"""Plan-time quantization arithmetic (runtime/quant.py)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.quant import activation_range, quantize_multiplier, quantize_multipliers, round_half_away


def test_round_half_away_from_zero():
    assert [round_half_away(v) for v in (0.5, 1.5, 2.5, -0.5, -1.5, 0.49999999999999994, -2.4)] == [1, 2, 3, -1, -2, 0, -2]


@given(st.floats(min_value=1e-12, max_value=1e3, allow_nan=False))
@settings(max_examples=300, derandomize=True)
def test_quantize_multiplier_represents_the_value(real):
    q, shift = quantize_multiplier(real)
    if shift == 0 and q == 0:  # flushed to zero below 2^-31
        assert real < 2.0**-31
        return
    assert 2**30 <= q < 2**31
    # q * 2^(shift-31) is within half a Q31 unit of real
    assert math.isclose(q * 2.0 ** (shift - 31), real, rel_tol=2.0**-30)


def test_quantize_multiplier_rounds_up_into_next_power_of_two():
    # 1 - 2^-40 has a mantissa that rounds to 2^31: TFLite halves it and bumps the shift.
    assert quantize_multiplier(1 - 2.0**-40) == (1 << 30, 1)


def test_vectorised_multipliers_equal_scalar():
    rng = np.random.default_rng(0)
    reals = rng.random(20000) * 10.0 ** rng.integers(-12, 3, 20000)
    reals = np.concatenate([reals, [0.0, 0.5, 1.0, 2.0**-32, 1 - 2.0**-40]])
    mult, shift = quantize_multipliers(reals)
    expected = [quantize_multiplier(float(r)) for r in reals]
    assert [(int(m), int(s)) for m, s in zip(mult, shift, strict=True)] == expected


def test_activation_ranges():
    # RELU6 at scale 6/255, zero point -128: 0 -> -128, 6 -> 127
    assert activation_range(3, 6 / 255, -128) == (-128, 127)
    assert activation_range(1, 0.1, 3) == (3, 127)
    assert activation_range(2, 0.01, 0) == (-100, 100)
    assert activation_range(0, 0.5, 7) == (-128, 127)
