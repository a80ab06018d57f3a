"""The x86-64 VNNI tables (csrc/ukernels_avx512_vnni*.c, csrc/ukernels_avx_vnni.c):
the GEMM of CONV_2D and FULLY_CONNECTED and DEPTHWISE_CONV_2D on vpdpbusd
give the portable bits.

Their kernels are checked entry by entry against the portable table by
tests/c/ukernel_diff.c (tests/test_sse41.py runs it natively); here they run
through the Python runtime: the plan's VNNI layout, random graphs against
LiteRT's BUILTIN_REF, the hypothesis cases against the NumPy spec, batches
and threads.  The shipped models run under every table in tests/test_models.py.
Skipped on CPUs without VNNI (QEMU does not emulate it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import graphgen
import numpy as np
import pytest
from _hypothesis_cases import OpCase, conv2d_cases, depthwise_cases, exact_settings, fully_connected_cases
from conftest import model_path
from hypothesis import given
from test_kernels_hypothesis import assert_matches, run_c
from test_random_graphs import check_against_reference

import runtime
from runtime import isa
from runtime._native import ffi, lib
from runtime.backends.c import CModel
from runtime.graph import parse_model
from runtime.ops.conv import host_vnni, pack_k4_weights

VNNI = [name for name in ("avx512-vnni", "avx-vnni", "amx") if name in isa.available()]
needs_vnni = pytest.mark.skipif(not VNNI, reason="the CPU has no AVX-512 VNNI or AVX-VNNI")


@pytest.fixture(params=VNNI or ["none"])
def vnni(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "none":
        pytest.skip("the CPU has no AVX-512 VNNI or AVX-VNNI")
    isa.select(request.param)
    try:
        yield request.param
    finally:
        isa.select("best")


def test_pack_k4_layout() -> None:
    """[N][K] -> [N/16][K/4][16][4]: element [b][i][l][j] is w[16b + l][4i + j], zero padded."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(21, 7), dtype=np.int8)
    p = pack_k4_weights(w)
    assert p.shape == (2, 2, 16, 4) and p.dtype == np.int8
    for b, i, lane, j in np.ndindex(p.shape):
        oc, k = 16 * b + lane, 4 * i + j
        assert p[b, i, lane, j] == (w[oc, k] if oc < 21 and k < 7 else 0)


@needs_vnni
def test_plans_carry_the_vnni_layout_and_shifted_bias() -> None:
    """Every single-group CONV_2D and FULLY_CONNECTED of resnet gets packed_k4
    and bias_k4 = bias_folded - 128 * the weight sums (the inputs go in as x + 128)."""
    assert host_vnni()
    graph = parse_model(model_path("pretrainedResnet_quant").read_bytes())
    model = runtime.load(model_path("pretrainedResnet_quant"), backend="c")
    checked = 0
    for step in model.plan.steps:
        if step.kind == lib.TRT_OP_CONV2D:
            p = ffi.cast("trt_conv2d_params *", step.params)
            n, k = p.filter.n, p.filter.h * p.filter.w * p.filter.c
            w = np.frombuffer(ffi.buffer(p.weights, n * k), dtype=np.int8).reshape(n, k)
            # the 3-channel first layer's taps widened to four channels, zero weighted
            c4 = 4 if p.filter.c == 3 else p.filter.c
            assert p.k4_channels == c4
            wide = np.zeros((n, p.filter.h, p.filter.w, c4), dtype=np.int8)
            wide[..., : p.filter.c] = w.reshape(n, p.filter.h, p.filter.w, p.filter.c)
            wk = wide.reshape(n, -1)
        elif step.kind == lib.TRT_OP_FULLY_CONNECTED:
            p = ffi.cast("trt_fully_connected_params *", step.params)
            n, k = p.out_features, p.in_features
            w = wk = np.frombuffer(ffi.buffer(p.weights, n * k), dtype=np.int8).reshape(n, k)
        else:
            continue
        nb, k4 = -(-n // 16), -(-wk.shape[1] // 4)
        packed = np.frombuffer(ffi.buffer(p.packed_k4, nb * k4 * 64), dtype=np.int8)
        np.testing.assert_array_equal(packed, pack_k4_weights(wk).reshape(-1))
        folded = np.frombuffer(ffi.buffer(p.bias_folded, 4 * n), dtype=np.int32).astype(np.int64)
        shifted = np.frombuffer(ffi.buffer(p.bias_k4, 4 * nb * 16), dtype=np.int32)
        np.testing.assert_array_equal(shifted[:n], folded - 128 * w.astype(np.int64).sum(axis=1))
        assert not shifted[n:].any()
        checked += 1
    assert checked == sum(op.opcode in ("CONV_2D", "FULLY_CONNECTED") for op in graph.operators) == 10


KERNEL_OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]


@pytest.mark.parametrize("opcode", KERNEL_OPS)
def test_random_single_op_graphs(vnni: str, opcode: str) -> None:
    for seed in range(12):
        assert isa.active() == vnni
        check_against_reference(graphgen.single_op_case(opcode, seed), seed)


def test_random_multi_op_graphs(vnni: str) -> None:
    for seed in range(30):
        check_against_reference(graphgen.chain_case(seed), 20_000 + seed)


def _under(case: OpCase, name: str) -> OpCase:
    return dataclasses.replace(case, isa=name)


@pytest.mark.parametrize("name", ["avx512-vnni", "avx-vnni", "amx"])
@exact_settings(120)
@given(case=conv2d_cases())
def test_conv2d_exact(name: str, case: OpCase) -> None:
    if name not in isa.available():
        pytest.skip(f"the CPU has no {name}")
    case = _under(case, name)
    assert_matches(case, run_c(case))


@pytest.mark.parametrize("name", ["avx512-vnni", "avx-vnni", "amx"])
@exact_settings(200)
@given(case=depthwise_cases())
def test_depthwise_conv2d_exact(name: str, case: OpCase) -> None:
    """Each VNNI table's depthwise kernel (tap rows of four kx per lane, in
    place too) on every geometry the strategy draws."""
    if name not in isa.available():
        pytest.skip(f"the CPU has no {name}")
    case = _under(case, name)
    assert_matches(case, run_c(case))


@pytest.mark.parametrize("name", ["avx512-vnni", "avx-vnni", "amx"])
@exact_settings(100)
@given(case=fully_connected_cases())
def test_fully_connected_exact(name: str, case: OpCase) -> None:
    if name not in isa.available():
        pytest.skip(f"the CPU has no {name}")
    case = _under(case, name)
    assert_matches(case, run_c(case))


@pytest.mark.parametrize("threads", [1, 2])
def test_shipped_models_with_threads_equal_portable(vnni: str, threads: int) -> None:
    """Threads split the VNNI convolutions by pixels and FULLY_CONNECTED by
    features (16 at a time): same bytes as the portable table, one thread."""
    rng = np.random.default_rng(5)
    for name in ("kws_ref_model", "pretrainedResnet_quant", "ad01_int8"):
        path = model_path(name)
        info = runtime.load(path, backend="c").inputs[0]
        xs = [rng.integers(-128, 128, size=info.shape, dtype=np.int8) for _ in range(4)]
        isa.select("portable")
        want = [runtime.load(path, backend="c").run([x])[0] for x in xs]
        isa.select(vnni)
        model = runtime.load(path, backend="c", num_threads=threads)
        for x, expected in zip(xs, want, strict=True):
            np.testing.assert_array_equal(model.run([x])[0], expected)


def test_fully_connected_feature_slices_equal_the_whole(vnni: str) -> None:
    """A thread's share of a FULLY_CONNECTED (features [begin, end), begin a
    multiple of 16) on the VNNI path writes exactly its slice of the whole."""
    model = runtime.load(model_path("ad01_int8"), backend="c")
    step = model.plan.steps[0]
    p = ffi.cast("trt_fully_connected_params *", step.params)
    assert step.kind == lib.TRT_OP_FULLY_CONNECTED and p.packed_k4 != ffi.NULL
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=p.in_features, dtype=np.int8)
    whole = np.zeros(p.out_features, dtype=np.int8)
    lib.trt_fully_connected_s8(p, ffi.from_buffer(x), ffi.from_buffer(whole))
    for begin, end in ((0, 16), (16, 48), (48, 128), (112, 128)):
        part = np.full(p.out_features, 0x5A, dtype=np.int8)
        lib.trt_fully_connected_s8_features(p, ffi.from_buffer(x), ffi.from_buffer(part), begin, end)
        np.testing.assert_array_equal(part[begin:end], whole[begin:end])
        assert (part[:begin] == 0x5A).all() and (part[end:] == 0x5A).all()
    isa.select("portable")
    reference = np.zeros(p.out_features, dtype=np.int8)
    lib.trt_fully_connected_s8(p, ffi.from_buffer(x), ffi.from_buffer(reference))
    np.testing.assert_array_equal(whole, reference)


def test_rescale_k4_table_is_gemmlowp_requantisation() -> None:
    """The plan-time table of the AVX-512 VNNI epilogue (tinyrt.h rescale_k4):
    (acc * mult + K - [acc < 0] 2^31) >> S, with K and S from the table, is
    the spec's MultiplyByQuantizedMultiplier plus the zero point, ties
    included; shifts outside [-23, -1] get no table."""
    import spec_model

    from runtime.ops.conv import rescale_k4_table

    rng = np.random.default_rng(3)
    for trial in range(40):
        n = int(rng.integers(1, 40))
        mult = rng.integers(0, 2**31, n)
        mult[: n // 3] = 1 << 30  # one half: many exact ties
        shift = rng.integers(-23, 0, n)
        zp = int(rng.integers(-128, 128))
        table = rescale_k4_table(mult, shift, zp)
        assert table is not None and table.size == -(-n // 16) * 48
        blocks = table.reshape(-1, 6, 8)
        mult_t = blocks[:, 0].copy().view(np.int32).reshape(-1)
        k_t = np.stack([blocks[:, 2], blocks[:, 3]], axis=-1).reshape(-1)
        s_t = np.stack([blocks[:, 4], blocks[:, 5]], axis=-1).reshape(-1)
        np.testing.assert_array_equal(mult_t[:n], mult)
        np.testing.assert_array_equal(blocks[:, 1].reshape(-1), mult_t.astype(np.int64)[1::2])
        acc = rng.integers(-(2**31), 2**31, (64, n))
        acc[:16] = rng.integers(-64, 64, (16, n)) * (1 << int(trial % 8))
        for c in range(n):
            p = [int(a) * int(mult_t[c]) for a in acc[:, c]]
            got = [(v + int(k_t[c]) - ((1 << 31) if v < 0 else 0)) >> int(s_t[c]) for v in p]
            want = spec_model.multiply_by_quantized_multiplier(acc[:, c], int(mult[c]), int(shift[c])) + zp
            np.testing.assert_array_equal(np.array(got), want)
    assert rescale_k4_table(np.array([1 << 30]), np.array([0]), 0) is None
    assert rescale_k4_table(np.array([1 << 30]), np.array([-24]), 0) is None


@pytest.mark.parametrize("seed", range(16))
def test_eight_channel_depthwise_two_pixels_a_vector(vnni: str, seed: int) -> None:
    """Eight-channel depthwise with stride and dilation 1 across (the AVX-512
    kernel computes two output pixels per vector from one tap row): odd and
    even widths, kernels up to 4x4, SAME and VALID, any vertical stride, in
    place or not, split over threads (a range starting mid-row takes the
    one-pixel path), against TFLite's reference."""
    import graphgen
    from conftest import reference_interpreter, run_reference
    from tflite_writer import write_model

    from runtime.memory import Choices

    rng = np.random.default_rng([88, seed])
    gb = graphgen.GraphBuilder()
    h, w = int(rng.integers(2, 14)), int(rng.integers(1, 14))
    s, zp = graphgen.act_quant(rng)
    x = gb.input((1, h, w, 8), "int8", s, zp)
    kernel = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    y = graphgen.add_depthwise(gb, rng, x, seed, depth_multiplier=1, kernel=kernel,
                               stride=(int(rng.integers(1, 3)), 1), dilation=False)
    gb.outputs.append(y)
    data = write_model(gb.graph())
    ref = reference_interpreter(data)
    inputs = [rng.integers(-128, 128, (1, h, w, 8), dtype=np.int8) for _ in range(2)]

    def in_place(g, steps, views):
        return Choices(inplace={0: steps[0].inputs[0]}, dw_block={0: 8})

    for kwargs in ({}, {"plan_choices": in_place}, {"num_threads": 2}):
        model = CModel(parse_model(data), **kwargs)
        for a in inputs:
            np.testing.assert_array_equal(model.run([a])[0], run_reference(ref, [a])[0], err_msg=str(kwargs))
