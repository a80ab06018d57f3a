"""Property tests: every C kernel against the NumPy model of TFLite's int8 spec.

Each example is a one-operator Graph built in Python (see _hypothesis_cases),
run through the public C backend (`CModel`: builder, planner, arena, kernel),
and compared with `spec_model`:

- bit for bit for the operators TFLite defines by an integer recipe
  (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED in both rescale variants,
  AVERAGE_POOL_2D, MAX_POOL_2D, ADD, MUL, PAD/PADV2, CONCATENATION,
  QUANTIZE, DEQUANTIZE, RESHAPE);
- within one quantization step of the exact real-valued function for
  SOFTMAX, LOGISTIC, TANH and MEAN, whose int8 kernels are fixed-point
  approximations (see each test's docstring).

The spec model itself, and the C backend, are checked against TFLite's own
reference kernels (ai-edge-litert, BUILTIN_REF) and TFLite Micro at the end
of the file, the graphs serialised by tests/tflite_writer.py.

Examples are derandomized (see _hypothesis_cases.exact_settings), so CI runs
the same ones every time.
"""

from __future__ import annotations

import numpy as np
import pytest
import spec_model as spec
from _hypothesis_cases import (
    OpCase,
    binary_cases,
    concatenation_cases,
    conv2d_cases,
    depthwise_cases,
    dequantize_cases,
    exact_settings,
    fully_connected_cases,
    isa_selected,
    mean_cases,
    pad_cases,
    pointwise_float_cases,
    pool_cases,
    quantize_cases,
    reshape_cases,
    softmax_cases,
)
from conftest import reference_interpreter, run_reference
from hypothesis import example, given
from hypothesis import strategies as st
from tflite_writer import write_model

from runtime.ops import BUILDERS

INT32 = st.integers(spec.INT32_MIN, spec.INT32_MAX)
INT32_EDGES = st.one_of(INT32, st.sampled_from([spec.INT32_MIN, spec.INT32_MIN + 1, -1, 0, 1, spec.INT32_MAX]))


def run_c(case: OpCase) -> list[np.ndarray]:
    with isa_selected(case.isa):
        return case.model().run(case.inputs)


def assert_matches(case: OpCase, outputs: list[np.ndarray]) -> None:
    assert len(outputs) == len(case.expected)
    for got, want in zip(outputs, case.expected, strict=True):
        assert got.shape == want.shape, case.summary
        assert got.dtype == want.dtype, case.summary
        if case.tolerance == 0:
            np.testing.assert_array_equal(got, want, err_msg=case.summary)
        else:
            diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
            assert diff.max(initial=0) <= case.tolerance, f"{case.summary}: off by {diff.max()} at {np.argmax(diff)}"


# ------------------------------------------- the spec model's own primitives --
# spec_model writes gemmlowp's primitives in closed form; these check the
# closed forms against gemmlowp's literal recipes, in Python integers.


def _gemmlowp_srdhm(a: int, b: int) -> int:
    """The literal recipe: a sign-dependent nudge, then C's truncating division."""
    if a == b == spec.INT32_MIN:
        return spec.INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = abs(ab + nudge) // (1 << 31)
    return q if ab + nudge >= 0 else -q


def _gemmlowp_rounding_divide_by_pot(x: int, exponent: int) -> int:
    """The literal recipe: arithmetic shift plus a remainder-vs-threshold correction."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


@exact_settings(400)
@given(a=INT32_EDGES, b=INT32_EDGES)
def test_spec_srdhm_is_gemmlowps(a: int, b: int) -> None:
    got = spec.saturating_rounding_doubling_high_mul(np.array([a]), np.array([b]))[0]
    assert int(got) == _gemmlowp_srdhm(a, b)


@exact_settings(200)
@given(odd=st.integers(-(2**19), 2**19), j=st.integers(0, 10))
def test_spec_srdhm_ties_round_toward_plus_infinity(odd: int, j: int) -> None:
    """Exact half-way products (a * b = odd * 2**30), where a rounding rule shows;
    random int32 pairs almost never hit one."""
    a, b = (2 * odd + 1) << j, 1 << (30 - j)
    got = spec.saturating_rounding_doubling_high_mul(np.array([a]), np.array([b]))[0]
    assert int(got) == _gemmlowp_srdhm(a, b) == odd + 1


@exact_settings(400)
@given(x=INT32_EDGES, exponent=st.integers(0, 31))
@example(x=-(1 << 20) - (1 << 19), exponent=20)  # exact negative tie
@example(x=(1 << 20) + (1 << 19), exponent=20)  # exact positive tie
def test_spec_rounding_divide_by_pot_is_gemmlowps(x: int, exponent: int) -> None:
    got = spec.rounding_divide_by_pot(np.array([x]), exponent)[0]
    assert int(got) == _gemmlowp_rounding_divide_by_pot(x, exponent)


@exact_settings(300)
@given(real=st.floats(2.0**-40, 2.0**20, allow_nan=False, allow_infinity=False))
def test_spec_quantize_multiplier_reconstructs_real(real: float) -> None:
    q, shift = spec.quantize_multiplier(real)
    if shift == 0 and q == 0:  # flushed: below 2**-31 after rounding
        assert real < 2.0**-31
        return
    assert 2**30 <= q < 2**31
    # q * 2**(shift - 31) is real rounded to 31 significant bits.
    assert abs(q * 2.0 ** (shift - 31) - real) <= 2.0 ** (shift - 32)


def test_spec_round_half_away_edges() -> None:
    x = np.array([0.5, -0.5, 1.5, -2.5, 0.49999999999999994, -0.49999999999999994, 2.0**52 + 1, 3.0])
    np.testing.assert_array_equal(spec.round_half_away(x), [1, -1, 2, -3, 0, 0, 2**52 + 1, 3])


def test_spec_conv_padding_matches_definition() -> None:
    # SAME keeps ceil(in / stride) outputs; the odd padding pixel goes after.
    assert spec.out_size_and_padding(spec.SAME, 5, 3, 2) == (3, 1)
    assert spec.out_size_and_padding(spec.SAME, 4, 4, 1) == (4, 1)  # total 3: one before, two after
    assert spec.out_size_and_padding(spec.VALID, 7, 3, 2, dilation=2) == (2, 0)  # effective filter 5


# ------------------------------------------------------ exact: the kernels --


@exact_settings(300)
@given(case=conv2d_cases())
def test_conv2d_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(300)
@given(case=depthwise_cases())
def test_depthwise_conv2d_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(200)
@given(case=fully_connected_cases(fixed_point=False))
def test_fully_connected_reference_double_rescale_exact(case: OpCase) -> None:
    """TFLite's reference kernel: the rescale in double precision."""
    assert_matches(case, run_c(case))


@exact_settings(100)
@given(case=fully_connected_cases(fixed_point=True))
def test_fully_connected_micro_fixed_point_exact(case: OpCase) -> None:
    """TFLite Micro's variant: a Q31 multiplier and shift."""
    assert_matches(case, run_c(case))


@exact_settings(100)
@given(case=pool_cases("AVERAGE_POOL_2D"))
def test_average_pool2d_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(80)
@given(case=pool_cases("MAX_POOL_2D"))
def test_max_pool2d_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(150)
@given(case=binary_cases("ADD"))
def test_add_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(150)
@given(case=binary_cases("MUL"))
def test_mul_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(80)
@given(case=pad_cases())
def test_pad_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(80)
@given(case=concatenation_cases())
def test_concatenation_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(100)
@given(case=quantize_cases())
def test_quantize_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(60)
@given(case=dequantize_cases())
def test_dequantize_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


@exact_settings(40)
@given(case=reshape_cases())
def test_reshape_exact(case: OpCase) -> None:
    assert_matches(case, run_c(case))


# ------------------------------------------- within one step: float models --


@exact_settings(100)
@given(case=softmax_cases())
def test_softmax_within_one_step_of_real_softmax(case: OpCase) -> None:
    """SOFTMAX: TFLite's int8 kernel approximates exp and 1/x in gemmlowp fixed
    point, so the output is compared with the exact softmax of the dequantized
    input, quantized to the output (1/256, -128), allowing 1 LSB."""
    assert_matches(case, run_c(case))


def _needs_builder(opcode: str) -> None:
    if opcode not in BUILDERS:
        pytest.skip(f"{opcode} is not implemented by the C backend yet")


@exact_settings(60)
@given(case=pointwise_float_cases("LOGISTIC"))
def test_logistic_within_one_step_of_real_sigmoid(case: OpCase) -> None:
    """LOGISTIC: a fixed-point approximation in TFLite; compared with the exact
    sigmoid of the dequantized input, quantized to (1/256, -128), within 1 LSB."""
    _needs_builder("LOGISTIC")
    assert_matches(case, run_c(case))


@exact_settings(60)
@given(case=pointwise_float_cases("TANH"))
def test_tanh_within_one_step_of_real_tanh(case: OpCase) -> None:
    """TANH: a fixed-point approximation in TFLite; compared with the exact tanh
    of the dequantized input, quantized to (1/128, 0), within 1 LSB."""
    _needs_builder("TANH")
    assert_matches(case, run_c(case))


@exact_settings(60)
@given(case=mean_cases())
def test_mean_within_one_step_of_real_mean(case: OpCase) -> None:
    """MEAN: TFLite rescales the int32 sum with a fixed-point multiplier; compared
    with the exact mean of the dequantized input, quantized, within 1 LSB."""
    _needs_builder("MEAN")
    assert_matches(case, run_c(case))


# ------------------------------- the spec model against TFLite's reference --

LITERT_STRATEGIES = {
    "CONV_2D": conv2d_cases(bias_required=True),
    "DEPTHWISE_CONV_2D": depthwise_cases(),
    "FULLY_CONNECTED": fully_connected_cases(fixed_point=False),
    "AVERAGE_POOL_2D": pool_cases("AVERAGE_POOL_2D"),
    "MAX_POOL_2D": pool_cases("MAX_POOL_2D"),
    "ADD": binary_cases("ADD"),
    "MUL": binary_cases("MUL"),
    "PAD": pad_cases(),
    "CONCATENATION": concatenation_cases(),
    "QUANTIZE": quantize_cases(),
    "DEQUANTIZE": dequantize_cases(),
    "RESHAPE": reshape_cases(),
    "SOFTMAX": softmax_cases(),
    "LOGISTIC": pointwise_float_cases("LOGISTIC"),
    "TANH": pointwise_float_cases("TANH"),
    "MEAN": mean_cases(),
}


@pytest.mark.parametrize("opcode", sorted(LITERT_STRATEGIES))
def test_spec_model_and_c_backend_agree_with_tflite_reference(opcode: str) -> None:
    """Examples per operator through ai-edge-litert's BUILTIN_REF kernels, the
    contract: the spec model must agree with them (bit for bit, or within the
    step its docstring allows), and the C backend bit for bit - which also
    pins down the float-model operators exactly."""

    @exact_settings(25)
    @given(case=LITERT_STRATEGIES[opcode])
    def check(case: OpCase) -> None:
        reference = run_reference(reference_interpreter(write_model(case.graph)), case.inputs)
        assert_matches(case, reference)
        if opcode in BUILDERS:
            for ours, theirs in zip(run_c(case), reference, strict=True):
                np.testing.assert_array_equal(ours, theirs, err_msg=f"C backend vs BUILTIN_REF: {case.summary}")

    check()


def test_spec_fixed_point_fully_connected_agrees_with_tflite_micro() -> None:
    """The fixed-point FULLY_CONNECTED variant is TFLite Micro's: checked
    against the tflite-micro interpreter, with the C backend in that mode."""
    tflm = pytest.importorskip("tflite_micro")

    @exact_settings(25)
    @given(case=fully_connected_cases(fixed_point=True))
    def check(case: OpCase) -> None:
        interp = tflm.runtime.Interpreter.from_bytes(write_model(case.graph))
        interp.set_input(case.inputs[0], 0)
        interp.invoke()
        reference = interp.get_output(0)
        assert_matches(case, [reference])
        np.testing.assert_array_equal(run_c(case)[0], reference, err_msg=f"C backend vs TFLite Micro: {case.summary}")

    check()
