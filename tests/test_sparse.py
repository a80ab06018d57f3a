"""Sparse kernels (runtime.sparse, csrc/sparse_*.c): bit-exact with TFLite's
reference kernels on pruned models, under every instruction set, in every
format and mode; packing, plan choices, memory and the --show-plan output.

References are LiteRT's BUILTIN_REF outputs on the same pruned .tflite files.
"""

from __future__ import annotations

import functools

import graphgen
import numpy as np
import pytest
from conftest import INT8_MODELS, model_path, random_inputs, reference_interpreter, run_reference
from tflite_writer import write_model

import runtime
from runtime import isa
from runtime._native import ffi, lib
from runtime.backends.c import CModel
from runtime.graph import parse_model
from runtime.memory import Choices, elementwise_inplace
from runtime.plan import build_plan
from runtime.prune import prune_model
from runtime.sparse import BLOCKS, SparsePolicy, conv_scratch_without_tile, pack, weight_stats

SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
PATTERNS = {"1x1": (1, 1), "4x1": (4, 1), "8x1": (8, 1)}
# The full grid (every sparsity x pattern x format) on the smaller models; the
# two large convolutional ones get every sparsity in auto / force and the
# per-format grid at two sparsities, which keeps this file to a few minutes.
LARGE = {"vww_96_int8", "pretrainedResnet_quant"}


@pytest.fixture(params=isa.available())
def kernel_isa(request):
    isa.select(request.param)
    yield request.param
    isa.select("best")


@functools.cache
def pruned(name: str, sparsity: float, pattern: str) -> bytes:
    data = model_path(name).read_bytes()
    return prune_model(data, sparsity, block=PATTERNS[pattern]).model


@functools.cache
def reference(name: str, sparsity: float, pattern: str, runs: int) -> tuple[list, list]:
    data = pruned(name, sparsity, pattern)
    it = reference_interpreter(data)
    model = runtime.load(data, backend="c", sparse="off")
    rng = np.random.default_rng(2024)
    inputs = [random_inputs(model, rng) for _ in range(runs)]
    return inputs, [run_reference(it, x) for x in inputs]


def assert_matches(model, inputs, expected) -> None:
    for x, want in zip(inputs, expected, strict=True):
        got = model.run(x)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def policies(name: str, sparsity: float) -> list[SparsePolicy | str]:
    out: list[SparsePolicy | str] = ["force", "auto"]
    if name not in LARGE or sparsity in (0.5, 0.9):
        out += [SparsePolicy("force", block=b) for b in BLOCKS]
    return out


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("name", INT8_MODELS)
def test_pruned_models_bit_exact(name, sparsity, pattern, kernel_isa):
    if name in LARGE and pattern == "4x1":
        pytest.skip("4x1 is covered on the large models through the 8x1 files and forced block 4")
    inputs, expected = reference(name, sparsity, pattern, 2 if name in LARGE else 3)
    graph = parse_model(pruned(name, sparsity, pattern))
    for policy in policies(name, sparsity):
        model = CModel(graph, sparse=policy)
        kinds = {s.kind for s in model.plan.steps}
        if policy == "force" or isinstance(policy, SparsePolicy):
            assert kinds & {lib.TRT_OP_SPARSE_CONV2D, lib.TRT_OP_SPARSE_FULLY_CONNECTED}, "force planned no sparse step"
        assert_matches(model, inputs, expected)


def _pixel_path(graph, steps, views):
    """Memory choices that take the sparse convolutions off their pixel tiles."""
    c = Choices(inplace=elementwise_inplace(graph, steps, views))
    for i, step in enumerate(steps):
        if step.kind == lib.TRT_OP_SPARSE_CONV2D:
            c.direct_conv.add(i)
    return c


@pytest.mark.parametrize("name", ["kws_ref_model", "pretrainedResnet_quant", "vww_96_int8"])
def test_pixel_path_without_tiles(name, kernel_isa):
    inputs, expected = reference(name, 0.9, "1x1", 2)
    graph = parse_model(pruned(name, 0.9, "1x1"))
    for block in BLOCKS:
        model = CModel(graph, sparse=SparsePolicy("force", block=block), plan_choices=_pixel_path)
        convs = [s for s in model.plan.steps if s.kind == lib.TRT_OP_SPARSE_CONV2D]
        assert convs and all(s.params.tile == 0 for s in convs)
        assert_matches(model, inputs, expected)


# ------------------------------------------------------------------ single layers


def _layer_case(kind: str, seed: int) -> bytes:
    """A CONV_2D / FULLY_CONNECTED with shapes that hit every edge of the kernels:
    channels not a multiple of 16 or of the block, pixel counts not a multiple
    of the tile, strides, dilation, padding, batches, per-tensor scales."""
    rng = np.random.default_rng(seed)
    gb = graphgen.GraphBuilder()
    variant = seed
    if kind == "FULLY_CONNECTED":
        k = int(rng.choice([3, 16, 37, 200, 640]))
        rows = int(rng.choice([1, 3]))
        s, zp = graphgen.act_quant(rng)
        x = gb.input((rows, k), "int8", s, zp)
        y = graphgen.add_fully_connected(gb, rng, x, variant, units=int(rng.choice([1, 5, 17, 64, 130])))
    else:
        h, w = int(rng.integers(3, 14)), int(rng.integers(3, 14))
        cin = int(rng.choice([1, 3, 8, 16, 24, 40]))
        batch = 2 if seed % 5 == 4 else 1
        s, zp = graphgen.act_quant(rng)
        x = gb.input((batch, h, w, cin), "int8", s, zp)
        kernel = (1, 1) if seed % 2 == 0 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        stride = (1, 1) if seed % 4 == 0 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        y = graphgen.add_conv2d(
            gb, rng, x, variant, groups=False, cout=int(rng.choice([1, 5, 16, 33, 72])), kernel=kernel, stride=stride,
            dilation=seed % 7 == 3, padding=seed % 3 % 2,
        )
    gb.outputs.append(y)
    return write_model(gb.graph())


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", ["CONV_2D", "FULLY_CONNECTED"])
def test_single_layers_every_format(kind, seed, kernel_isa):
    dense = _layer_case(kind, seed)
    for sparsity, pattern in ((0.0, (1, 1)), (0.6, (1, 1)), (0.9, (1, 1)), (0.85, (4, 1)), (0.9, (8, 1)), (0.99, (1, 1))):
        data = prune_model(dense, sparsity, block=pattern).model
        it = reference_interpreter(data)
        graph = parse_model(data)
        rng = np.random.default_rng(seed)
        base = CModel(graph, sparse="off")
        inputs = [random_inputs(base, rng) for _ in range(3)]
        expected = [run_reference(it, x) for x in inputs]
        for block in BLOCKS:
            for choices in (None, _pixel_path):
                model = CModel(graph, sparse=SparsePolicy("force", block=block), plan_choices=choices)
                assert any(s.kind in (lib.TRT_OP_SPARSE_CONV2D, lib.TRT_OP_SPARSE_FULLY_CONNECTED)
                           for s in model.plan.steps)
                assert_matches(model, inputs, expected)


def test_grouped_convolution_stays_dense():
    case = graphgen.single_op_case("CONV_2D", 4)  # variant 4: groups
    assert "CONV_2D:groups" in case.features
    plan = build_plan(case.graph, materialize=False, sparse="force")
    assert all(s.kind == lib.TRT_OP_CONV2D for s in plan.steps)
    assert not plan.sparse_layers


# ------------------------------------------------------------------ packing


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("density", [0.0, 0.03, 0.3, 1.0])
def test_pack_round_trip(block, density):
    rng = np.random.default_rng(int(density * 100) + block)
    for rows, cols in ((1, 1), (7, 13), (16, 64), (33, 5), (64, 300)):
        w = rng.integers(-127, 128, size=(rows, cols)).astype(np.int8)
        w[rng.random((rows, cols)) >= density] = 0
        p = pack(w, block)
        np.testing.assert_array_equal(p.dense(rows, cols), w)
        counts = np.diff(p.strip_ptr)
        assert np.all(counts % 2 == 0), "every strip holds whole pairs of blocks"
        assert p.strip_ptr.size == -(-rows // block) + 1
        assert p.values.size == p.index.size * block
        stats = weight_stats(w)
        assert stats.blocks[block][0] == p.index.size
        assert stats.nnz == np.count_nonzero(w)


def test_pack_layout_is_the_documented_interleave():
    w = np.array([[1, 0, 2, 3], [4, 0, 0, 5]], dtype=np.int8)
    p = pack(w, 1)
    assert p.strip_ptr.tolist() == [0, 4, 6]  # row 0: three kept + one pad block
    assert p.index.tolist() == [0, 2, 3, 3, 0, 3]
    assert p.values.tolist() == [1, 2, 3, 0, 4, 5]
    p2 = pack(w, 2)  # one strip of two rows: columns 0, 2, 3
    assert p2.strip_ptr.tolist() == [0, 4]
    # pairs (col 0, col 2) then (col 3, pad): row 0 then row 1, two weights each
    assert p2.values.tolist() == [1, 2, 4, 0, 3, 0, 5, 0]


def test_pack_refuses_indices_beyond_uint16():
    with pytest.raises(ValueError, match="uint16"):
        pack(np.zeros((1, 70000), dtype=np.int8), 1)


# ------------------------------------------------------------------ plans


def _plan_signature(plan) -> list[tuple]:
    return [(s.kind, s.scratch_bytes, s.macs, s.weight_bytes, tuple(i for i in s.inputs if isinstance(i, int)))
            for s in plan.steps] + [("arena", plan.arena_bytes)]


@pytest.mark.parametrize("name", INT8_MODELS)
def test_off_leaves_the_plan_unchanged(name):
    graph = parse_model(pruned(name, 0.9, "1x1"))
    default = build_plan(graph, materialize=False)
    off = build_plan(graph, materialize=False, sparse="off")
    assert _plan_signature(off) == _plan_signature(default)
    assert not off.sparse_layers
    assert all(s.kind not in (lib.TRT_OP_SPARSE_CONV2D, lib.TRT_OP_SPARSE_FULLY_CONNECTED) for s in off.steps)


def test_auto_keeps_unpruned_models_dense():
    for name in ("kws_ref_model", "pretrainedResnet_quant", "ad01_int8", "micro_speech_quantized"):
        plan = CModel(parse_model(model_path(name))).plan
        assert plan.sparse_layers, name
        assert all(layer.format == "dense" for layer in plan.sparse_layers), name


def test_auto_and_force_on_a_pruned_model():
    graph = parse_model(pruned("kws_ref_model", 0.9, "8x1"))
    # the AVX2 cost table, where this model's pruned layers gain (under the
    # VNNI tables the dense kernels beat the sparse ones even at 98%)
    auto = CModel(graph, sparse=SparsePolicy("auto", isa="avx2")).plan
    force = CModel(graph, sparse="force").plan
    off = CModel(graph, sparse="off").plan
    assert any(layer.format != "dense" for layer in auto.sparse_layers)
    assert all(layer.format != "dense" for layer in force.sparse_layers)
    # packed weights are smaller at 90%, and MACs kept follow the zeros
    assert force.weight_bytes < off.weight_bytes
    assert force.macs < off.macs
    for layer in force.sparse_layers:
        assert layer.macs_kept <= layer.macs_dense
    # one global threshold: layers end up at different sparsities, 90% overall
    sizes = [int(np.prod(layer.shape)) for layer in force.sparse_layers]
    overall = sum(layer.sparsity * n for layer, n in zip(force.sparse_layers, sizes, strict=True)) / sum(sizes)
    assert overall == pytest.approx(0.9, abs=0.01)


def test_sparse_step_keeps_no_dense_weights():
    graph = parse_model(pruned("ad01_int8", 0.9, "1x1"))
    plan = build_plan(graph, materialize=False, sparse="force")
    for step in plan.steps:
        assert step.kind == lib.TRT_OP_SPARSE_FULLY_CONNECTED
        kept = sum(a.nbytes for a in step.keep if isinstance(a, np.ndarray) and a.dtype == np.int8)
        # int8 arrays kept: the packed values only (the dense weights are not referenced)
        p = step.params.weights
        assert kept == int(p.strip_ptr[p.rows // p.block + (p.rows % p.block > 0)]) * p.block


def test_scratch_without_tile_matches_the_c_kernel():
    for name in ("kws_ref_model", "pretrainedResnet_quant", "vww_96_int8"):
        plan = build_plan(parse_model(pruned(name, 0.9, "1x1")), materialize=False, sparse="force")
        for step in plan.steps:
            if step.kind != lib.TRT_OP_SPARSE_CONV2D:
                continue
            q = ffi.new("trt_sparse_conv2d_params *", step.params[0])
            q.tile = 0
            assert conv_scratch_without_tile(step.params) == lib.trt_sparse_conv2d_s8_scratch_size(q)


def test_tiles_only_where_the_instruction_set_has_them():
    graph = parse_model(pruned("vww_96_int8", 0.9, "1x1"))
    plan = build_plan(graph, materialize=False, sparse=SparsePolicy("force", isa="portable"))
    convs = [s for s in plan.steps if s.kind == lib.TRT_OP_SPARSE_CONV2D]
    assert convs and all(s.params.tile == 0 for s in convs)
    dense = build_plan(graph, materialize=False, sparse="off")
    # the pixel-by-pixel path needs no scratch for pointwise convolutions: no bigger arena
    assert plan.arena_bytes <= dense.arena_bytes


# TFLite Micro's arena for these models (tests/test_memory_plan.py)
TFLM_ARENA = {"kws_ref_model": 16000, "vww_96_int8": 73728, "pretrainedResnet_quant": 49152, "ad01_int8": 768}


@pytest.mark.parametrize("name", sorted(TFLM_ARENA))
def test_pruned_arena_report(name, kernel_isa):
    """Sparse tiles take scratch on SIMD hosts; report it and keep it bounded."""
    graph = parse_model(pruned(name, 0.9, "1x1"))
    off = CModel(graph, sparse="off").arena_bytes
    auto = CModel(graph, sparse="auto").arena_bytes
    force = CModel(graph, sparse="force").arena_bytes
    print(f"{name} ({kernel_isa}) arena: off {off} B, auto {auto} B, force {force} B, TFLM {TFLM_ARENA[name]} B")
    if kernel_isa == "portable":
        assert force <= off
    assert force <= 2 * max(off, TFLM_ARENA[name])


def test_load_rejects_a_bad_sparse_mode():
    with pytest.raises(ValueError, match="sparse"):
        runtime.load(model_path("ad01_int8"), backend="c", sparse="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block"):
        SparsePolicy("force", block=3)


def test_show_plan_cli(tmp_path, capsys):
    from runtime.run import main

    path = tmp_path / "kws90.tflite"
    path.write_bytes(pruned("kws_ref_model", 0.9, "4x1"))
    assert main([str(path), "--show-plan", "--sparse", "force"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "CONV_2D" in line and "DEPTHWISE" not in line]
    assert len(lines) == 5
    assert all("sparse" in line for line in lines)
    assert "MACs kept" in out and "weight bytes" in out
    assert main([str(path), "--show-plan", "--sparse", "off"]) == 0
    out = capsys.readouterr().out
    layers = [line for line in out.splitlines() if "CONV_2D" in line or "FULLY_CONNECTED" in line]
    assert len(layers) == 10 and all(" dense " in line and "sparse" not in line for line in layers)
    assert main([str(path), "--sparse", "bogus"]) == 2
