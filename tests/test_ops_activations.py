"""The point-wise int8 activations, all 256 inputs at once, against LiteRT's BUILTIN_REF.

A [256] input holding every int8 value makes LiteRT evaluate its whole
table, so each graph checks a complete tinyrt table for one quantization.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import reference_interpreter, run_reference
from graphgen import GraphBuilder
from tflite_writer import write_model

import runtime
from runtime.errors import UnsupportedModelError

ALL_INT8 = np.arange(-128, 128, dtype=np.int8)
RELU_OPS = ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1")


def one_op_model(opcode: str, in_q: tuple[float, int], out_q: tuple[float, int], shape=(256,), **options: Any) -> bytes:
    gb = GraphBuilder()
    x = gb.input(shape, "int8", *in_q)
    y = gb.tensor(shape, "int8", *out_q)
    gb.op(opcode, [x], [y], **options)
    gb.outputs.append(y)
    return write_model(gb.graph())


def assert_table_matches(data: bytes) -> None:
    ours = runtime.load(data, backend="c")
    ref = reference_interpreter(data)
    got = ours.run([ALL_INT8])[0]
    want = run_reference(ref, [ALL_INT8])[0]
    np.testing.assert_array_equal(got, want)


def random_quant(rng: np.random.Generator, lo: float = -3.0, hi: float = -0.5) -> tuple[float, int]:
    return float(10.0 ** rng.uniform(lo, hi)), int(rng.integers(-128, 128))


@pytest.mark.parametrize("seed", range(40))
def test_logistic_table(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Narrow to very wide input ranges: the table's middle and both tails.
    in_q = random_quant(rng, -3.0, 0.0)
    assert_table_matches(one_op_model("LOGISTIC", in_q, (1.0 / 256, -128)))


@pytest.mark.parametrize("seed", range(40))
def test_tanh_table(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    in_q = random_quant(rng, -3.0, 0.0)
    # The converter's output quantization, and arbitrary ones (BUILTIN_REF accepts any).
    out_q = (1.0 / 128, 0) if seed % 2 else random_quant(rng, -2.5, -1.5)
    assert_table_matches(one_op_model("TANH", in_q, out_q))


@pytest.mark.parametrize("opcode", RELU_OPS)
@pytest.mark.parametrize("seed", range(20))
def test_relu_family_table(opcode: str, seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    in_q = random_quant(rng)
    if seed % 4 == 0:
        out_q = in_q  # the common case: the converter keeps the quantization
    elif seed % 4 == 1:
        out_q = (in_q[0] * float(rng.uniform(0.05, 0.5)), int(rng.integers(-128, 128)))  # upscale: left shift
    else:
        out_q = (in_q[0] * float(rng.uniform(0.5, 8.0)), int(rng.integers(-128, 128)))
    assert_table_matches(one_op_model(opcode, in_q, out_q))


@pytest.mark.parametrize("opcode", RELU_OPS)
def test_relu_bounds_on_exact_halves(opcode: str) -> None:
    # Output scales where bound / scale lands on k + 0.5: roundf's tie goes
    # away from zero, and the clamp must move with it.
    for k in (3, 10, 41, 100):
        out_s = float(np.float32(6.0) / np.float32(k + 0.5)) if opcode == "RELU6" else 1.0 / (k + 0.5)
        assert_table_matches(one_op_model(opcode, (0.05, 3), (out_s, -20)))


@pytest.mark.parametrize("alpha", [0.2, 0.01, 0.3333, 0.9, 1.0, 2.5, -0.25, 0.0])
def test_leaky_relu_table(alpha: float) -> None:
    rng = np.random.default_rng(int(abs(alpha) * 1000))
    for _ in range(5):
        in_q = random_quant(rng)
        out_q = (in_q[0] * float(rng.uniform(0.3, 2.0)), int(rng.integers(-128, 128)))
        assert_table_matches(one_op_model("LEAKY_RELU", in_q, out_q, alpha=alpha))


@pytest.mark.parametrize("seed", range(40))
def test_hard_swish_table(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    # Input ranges from well inside [-3, 3] to far beyond it: the reluish
    # rescale shifts right for the first and saturates left for the last.
    in_q = random_quant(rng, -3.5, 0.0)
    out_q = (in_q[0] * float(rng.uniform(0.2, 2.0)), int(rng.integers(-128, 128)))
    assert_table_matches(one_op_model("HARD_SWISH", in_q, out_q))


@pytest.mark.parametrize(
    "in_q, out_q",
    [
        ((1e-8, 3), (2e-8, -5)),  # reluish rescale shifts right by 20: int16 mask narrowing
        ((1e-4, 0), (0.1, 7)),  # output rescale shifts right by 17
        ((5.0, -10), (4.0, 0)),  # reluish rescale shifts left and saturates
        ((300.0, 1), (200.0, 2)),
    ],
)
def test_hard_swish_extreme_rescales(in_q: tuple[float, int], out_q: tuple[float, int]) -> None:
    assert_table_matches(one_op_model("HARD_SWISH", in_q, out_q))


def test_activation_on_4d_tensor_keeps_shape() -> None:
    data = one_op_model("TANH", (0.03, -5), (1.0 / 128, 0), shape=(2, 3, 4, 5))
    ours = runtime.load(data, backend="c")
    ref = reference_interpreter(data)
    x = np.random.default_rng(0).integers(-128, 128, size=(2, 3, 4, 5), dtype=np.int8)
    got = ours.run([x])[0]
    assert got.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(got, run_reference(ref, [x])[0])


def test_logistic_needs_output_scale_1_over_256() -> None:
    # LiteRT refuses this model too; tinyrt says why instead of guessing.
    data = one_op_model("LOGISTIC", (0.05, 0), (1.0 / 128, 0))
    with pytest.raises(UnsupportedModelError, match="1/256"):
        runtime.load(data, backend="c")


def test_uint8_activation_is_rejected_clearly() -> None:
    gb = GraphBuilder()
    x = gb.input((8,), "uint8", 0.1, 128)
    y = gb.tensor((8,), "uint8", 0.1, 128)
    gb.op("RELU", [x], [y])
    gb.outputs.append(y)
    with pytest.raises(UnsupportedModelError, match="RELU"):
        runtime.load(write_model(gb.graph()), backend="c")
