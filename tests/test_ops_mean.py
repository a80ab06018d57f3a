"""MEAN on int8 against LiteRT's BUILTIN_REF: spatial (GlobalAveragePooling) and other axes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import reference_interpreter, run_reference
from graphgen import GraphBuilder
from tflite_writer import write_model

import runtime
from runtime.errors import UnsupportedModelError
from runtime.ops.reduce import loop_nests, mean_multiplier


def mean_model(
    shape: tuple[int, ...],
    axes: list[int],
    keep_dims: bool,
    in_q: tuple[float, int] = (0.05, -3),
    out_q: tuple[float, int] | None = None,
) -> bytes:
    gb = GraphBuilder()
    x = gb.input(shape, "int8", *in_q)
    rank = len(shape)
    reduced = {a % rank for a in axes}
    if keep_dims:
        out_shape = tuple(1 if d in reduced else n for d, n in enumerate(shape))
    else:
        out_shape = tuple(n for d, n in enumerate(shape) if d not in reduced)
    axes_t = gb.tensor((len(axes),), "int32", data=np.array(axes, dtype=np.int32))
    y = gb.tensor(out_shape, "int8", *(out_q or in_q))
    gb.op("MEAN", [x, axes_t], [y], keep_dims=keep_dims)
    gb.outputs.append(y)
    return write_model(gb.graph())


def assert_matches(data: bytes, runs: int = 4, seed: int = 0) -> np.ndarray:
    ours = runtime.load(data, backend="c")
    ref = reference_interpreter(data)
    rng = np.random.default_rng(seed)
    got = np.zeros(0)
    for _ in range(runs):
        x = rng.integers(-128, 128, size=ours.inputs[0].shape, dtype=np.int8)
        got = ours.run([x])[0]
        want = run_reference(ref, [x])[0]
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    return got


@pytest.mark.parametrize("keep_dims", [True, False])
@pytest.mark.parametrize("shape", [(1, 7, 7, 32), (1, 1, 1, 5), (2, 5, 3, 4), (1, 32, 32, 3), (1, 13, 1, 64)])
def test_global_average_pooling(shape: tuple[int, ...], keep_dims: bool) -> None:
    assert_matches(mean_model(shape, [1, 2], keep_dims))


@pytest.mark.parametrize(
    "in_q, out_q",
    [
        ((0.02, -128), (0.02, -128)),  # same quantization, as after a ReLU
        ((0.02, 10), (0.005, -7)),  # output finer than input: left shift
        ((0.5, 0), (0.004, 100)),  # much finer output: saturates often
        ((1e-4, 5), (0.3, -2)),  # tiny ratio: TFLite clamps its 1/count shift
        ((0.1, 127), (0.1, -128)),
    ],
)
def test_spatial_mean_rescale(in_q: tuple[float, int], out_q: tuple[float, int]) -> None:
    assert_matches(mean_model((1, 9, 11, 6), [1, 2], True, in_q, out_q))


@pytest.mark.parametrize(
    "shape, axes",
    [
        ((4, 5, 6, 7), [0]),
        ((4, 5, 6, 7), [3]),
        ((4, 5, 6, 7), [1, 3]),
        ((4, 5, 6, 7), [0, 2]),
        ((4, 5, 6, 7), [0, 1, 2, 3]),
        ((4, 5, 6, 7), [-1, -3]),
        ((4, 5, 6, 7), [2, 1, 2]),  # duplicates collapse, as in TFLite
        ((9,), [0]),
        ((3, 17), [1]),
        ((3, 17), [0]),
        ((2, 3, 1, 4, 5), [1, 3]),
        ((2, 1, 3, 1, 2, 3), [0, 2, 5]),
    ],
)
@pytest.mark.parametrize("keep_dims", [True, False])
def test_mean_over_other_axes(shape: tuple[int, ...], axes: list[int], keep_dims: bool) -> None:
    assert_matches(mean_model(shape, axes, keep_dims, (0.03, 17), (0.02, -9)))


def test_mean_large_reduction_matches_and_is_not_saturated() -> None:
    got = assert_matches(mean_model((1, 64, 64, 4), [1, 2], False, (0.01, 0), (0.0005, 0)))
    # Averages of uniform noise sit near zero with a spread of a few steps.
    assert np.all(np.abs(got) < 100)


def test_mean_multiplier_folds_count_like_tflite() -> None:
    # A power-of-two count folds exactly: the multiplier is unchanged and
    # the shift drops by log2(count).
    m1, s1 = mean_multiplier(0.5, 0.5, 1)
    m64, s64 = mean_multiplier(0.5, 0.5, 64)
    assert (m64, s64) == (m1, s1 - 6)
    # 49 = 7x7: the multiplier is truncated, never rounded up.
    m49, s49 = mean_multiplier(0.5, 0.5, 49)
    assert s49 == s1 - 5 and m49 == (m1 << 5) // 49


def test_loop_nests_merge_neighbouring_axes() -> None:
    kept, reduced = loop_nests((2, 5, 3, 4), {1, 2})
    assert kept == [(2, 60), (4, 1)]
    assert reduced == [(15, 4)]
    kept, reduced = loop_nests((1, 6, 1, 2), {0, 1})
    assert kept == [(2, 1)] and reduced == [(6, 2)]


def test_mean_with_non_constant_axes_is_unsupported() -> None:
    gb = GraphBuilder()
    x = gb.input((1, 4, 4, 2), "int8", 0.1, 0)
    axes = gb.input((2,), "int32")
    y = gb.tensor((1, 1, 1, 2), "int8", 0.1, 0)
    gb.op("MEAN", [x, axes], [y], keep_dims=True)
    gb.outputs.append(y)
    # (An int32 graph input is refused before MEAN's own check is reached.)
    with pytest.raises(UnsupportedModelError):
        runtime.load(write_model(gb.graph()), backend="c")


def test_float_mean_is_unsupported() -> None:
    gb = GraphBuilder()
    x = gb.input((1, 4, 4, 2), "float32")
    axes = gb.tensor((2,), "int32", data=np.array([1, 2], dtype=np.int32))
    y = gb.tensor((1, 1, 1, 2), "float32")
    gb.op("MEAN", [x, axes], [y], keep_dims=True)
    gb.outputs.append(y)
    with pytest.raises(UnsupportedModelError, match="MEAN"):
        runtime.load(write_model(gb.graph()), backend="c")
