"""Float -> int32 casts TFLite leaves unchecked: NaN and values beyond int32.

TFLite's reference QUANTIZE computes (int32_t)round(x / scale) + zero_point
and its LOGISTIC / TANH tables (int32_t)(round(y / out_scale) + zero_point)
without a range check.  The answer is then the host's: on x86 every NaN or
out-of-range value becomes INT32_MIN in QUANTIZE, e.g. a huge positive float
quantized with zero point 0 is -128, while LiteRT's compiled table builder
saturates.  tinyrt must agree with LiteRT in both.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_interpreter, run_reference
from graphgen import GraphBuilder
from tflite_writer import write_model

import runtime

SPECIAL = np.array(
    [1e7, -1e7, np.inf, -np.inf, np.nan, -np.nan, 3.0e9, -3.0e9, 1e30, 0.0, -0.0, 2.5e-3, -2.5e-3, 1.0, -1.0],
    dtype=np.float32,
)


@pytest.mark.parametrize(
    ("dtype", "zero_point"),
    [
        ("int8", 0),
        ("int8", 5),
        ("int8", -5),
        ("int8", -128),
        ("int8", 127),
        ("uint8", 0),
        ("uint8", 128),
        ("uint8", 255),
    ],
)
@pytest.mark.parametrize("scale", [1e-3, 1e-6, 0.5])
def test_quantize_nan_inf_and_huge_values(dtype: str, zero_point: int, scale: float) -> None:
    gb = GraphBuilder()
    x = gb.input(SPECIAL.shape, "float32")
    y = gb.tensor(SPECIAL.shape, dtype, scale, zero_point)
    gb.op("QUANTIZE", [x], [y])
    gb.outputs.append(y)
    data = write_model(gb.graph())
    got = runtime.load(data, backend="c").run([SPECIAL])[0]
    want = run_reference(reference_interpreter(data), [SPECIAL])[0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("out_scale", [1e-9, 1e-12, 1e-30])
@pytest.mark.parametrize("zero_point", [0, 7, -7])
def test_tanh_table_with_absurd_output_scale(out_scale: float, zero_point: int) -> None:
    # round(tanh(x) / out_scale) leaves int32 (and int64) range for most inputs.
    gb = GraphBuilder()
    x = gb.input((256,), "int8", 0.02, 0)
    y = gb.tensor((256,), "int8", out_scale, zero_point)
    gb.op("TANH", [x], [y])
    gb.outputs.append(y)
    data = write_model(gb.graph())
    inputs = [np.arange(-128, 128, dtype=np.int8)]
    got = runtime.load(data, backend="c").run(inputs)[0]
    np.testing.assert_array_equal(got, run_reference(reference_interpreter(data), inputs)[0])


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("zero_point", [0, 7, -7])
def test_fully_connected_rescale_beyond_int32(per_channel: bool, zero_point: int) -> None:
    # acc * in_scale * w_scale / out_scale = +-4e10: the reference kernel's
    # (int32_t)round(...) is out of range for the first two outputs.
    gb = GraphBuilder()
    x = gb.input((1, 4), "int8", 1.0, 0)
    weights = np.array([[1, 1, 1, 1], [-1, -1, -1, -1], [0, 0, 0, 0]], dtype=np.int8)
    w = gb.tensor((3, 4), "int8", [1.0, 1.0, 1.0] if per_channel else 1.0, 0, data=weights)
    y = gb.tensor((1, 3), "int8", 1e-8, zero_point)
    gb.op("FULLY_CONNECTED", [x, w, -1], [y], fused_activation_function=0, keep_num_dims=False)
    gb.outputs.append(y)
    data = write_model(gb.graph())
    inputs = [np.full((1, 4), 100, dtype=np.int8)]
    got = runtime.load(data, backend="c").run(inputs)[0]
    np.testing.assert_array_equal(got, run_reference(reference_interpreter(data), inputs)[0])
