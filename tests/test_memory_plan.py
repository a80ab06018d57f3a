"""The arena plan: as small as TFLite Micro's, never overlapping, and exact
whichever memory-saving kernel variants it picks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import model_path, random_inputs, reference_interpreter, run_reference
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime._native import lib
from runtime.backends.c import CModel
from runtime.graph import parse_model
from runtime.memory import Choices, dw_inplace_candidates, elementwise_inplace
from runtime.planner import Buffer, check_no_overlap, plan_arena

# TFLite Micro's planned arena head for these models (../shared/ANCHORS.md).
TFLM_ARENA = {
    "kws_ref_model": 16000,
    "vww_96_int8": 73728,
    "pretrainedResnet_quant": 49152,
    "ad01_int8": 768,
    "micro_speech_quantized": 5968,
    "person_detect": 55296,
}


@pytest.mark.parametrize("name", sorted(TFLM_ARENA))
def test_arena_at_most_tflite_micro(name):
    model = CModel(parse_model(model_path(name)))
    print(f"{name}: tinyrt arena {model.arena_bytes} B, TFLite Micro {TFLM_ARENA[name]} B")
    assert model.arena_bytes <= TFLM_ARENA[name]


def test_vww_in_place_depthwise_beats_tflite_micro():
    graph = parse_model(model_path("vww_96_int8"))
    model = CModel(graph)
    assert model.plan.memory.choices.dw_block, "expected an in-place depthwise convolution"
    assert model.arena_bytes < TFLM_ARENA["vww_96_int8"]
    # Without in-place depthwise the same search ends higher.
    no_inplace = CModel(graph, plan_choices=lambda g, s, v: Choices(inplace=elementwise_inplace(g, s, v)))
    print(f"vww arena: {model.arena_bytes} B with in-place depthwise, {no_inplace.arena_bytes} B without")
    assert model.arena_bytes < no_inplace.arena_bytes


def _all_variants(block: int):
    def make(graph, steps, views):
        c = Choices(inplace=elementwise_inplace(graph, steps, views))
        for i, step in enumerate(steps):
            if step.kind == lib.TRT_OP_CONV2D:
                c.direct_conv.add(i)
        for i in dw_inplace_candidates(graph, steps, views):
            c.dw_block[i] = max(1, min(block, steps[i].params.output.c))
            c.inplace[i] = steps[i].inputs[0]
        return c

    return make


@pytest.mark.parametrize("name", ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "micro_speech_quantized"])
@pytest.mark.parametrize("block", [1, 3, 16, 1024])
def test_memory_saving_variants_stay_bit_exact(name, block):
    """Direct convolution everywhere and in-place depthwise with any channel
    block give TFLite's reference output, bit for bit."""
    path = model_path(name)
    model = CModel(parse_model(path), plan_choices=_all_variants(block))
    ref = reference_interpreter(path)
    rng = np.random.default_rng(block)
    for _ in range(3):
        x = random_inputs(model, rng)
        np.testing.assert_array_equal(model.run(x)[0], run_reference(ref, x)[0])


@given(
    st.lists(
        st.tuples(st.integers(1, 5000), st.integers(-1, 30), st.integers(0, 30)),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=300, derandomize=True, deadline=None)
def test_planner_never_overlaps_live_buffers(specs):
    buffers = [Buffer(key=i, size=size, first=min(a, a + b), last=a + b) for i, (size, a, b) in enumerate(specs)]
    arena = plan_arena(buffers)
    check_no_overlap(buffers)  # raises on any overlap
    assert all(b.offset >= 0 and b.offset + b.size <= arena for b in buffers)
    # the arena is at least the largest set of buffers alive at one time
    steps = range(min(b.first for b in buffers), max(b.last for b in buffers) + 1)
    assert arena >= max(sum(b.size for b in buffers if b.first <= t <= b.last) for t in steps)


@pytest.mark.parametrize("seed", range(24))
def test_in_place_depthwise_any_geometry_every_table(seed):
    """In-place depthwise (forced, any channel block) on strides 1-3, SAME
    and VALID, kernels up to 4x4, dilation: every instruction-set table gives
    TFLite's reference output (the AVX-512 kernel runs such layers in place
    itself when its row ring allows, in_place_safe, else the channel blocks)."""
    import graphgen
    from tflite_writer import write_model

    from runtime import isa

    rng = np.random.default_rng([77, seed])
    gb = graphgen.GraphBuilder()
    h, w = int(rng.integers(3, 20)), int(rng.integers(3, 20))
    c = int(rng.choice([1, 3, 8, 16, 20, 32]))
    s, zp = graphgen.act_quant(rng)
    x = gb.input((1, h, w, c), "int8", s, zp)
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if seed % 3 else (2, 2)
    y = graphgen.add_depthwise(gb, rng, x, seed, depth_multiplier=1, stride=stride)
    gb.outputs.append(y)
    graph = gb.graph()
    block = int(rng.integers(1, c + 1))

    def in_place(g, steps, views):
        return Choices(inplace={0: steps[0].inputs[0]}, dw_block={0: block})

    data = write_model(graph)
    ref = reference_interpreter(data)
    inputs = [rng.integers(-128, 128, (1, h, w, c), dtype=np.int8) for _ in range(2)]
    want = [run_reference(ref, [a])[0] for a in inputs]
    try:
        for table in isa.available():
            isa.select(table)
            model = CModel(parse_model(data), plan_choices=in_place)
            assert model.plan.steps[0].params.in_place == 1
            for a, expect in zip(inputs, want, strict=True):
                np.testing.assert_array_equal(model.run([a])[0], expect, err_msg=f"{table} block {block}")
    finally:
        isa.select("best")


def test_hosts_do_not_trade_a_slow_depthwise_for_a_few_kb():
    """A model whose peak is a stride-2 depthwise (vww's third layer cut out):
    a microcontroller plan ("memory") runs it in place one channel at a time
    for the smallest arena; a plan for this machine never takes a block the
    active kernels run slowly (below 16 channels), except where they run the
    layer in place themselves (AVX-512: as fast, so the small arena is free)."""
    from runtime import isa
    from runtime.emulation.layers import cut_operator
    from runtime.memory import dw_blocks
    from runtime.plan import build_plan

    graph = cut_operator(parse_model(model_path("vww_96_int8")), 3)
    small = build_plan(graph, materialize=False, dw_policy="memory")
    assert small.memory.choices.dw_block == {0: 1}
    speed = build_plan(graph, materialize=False, dw_policy="speed")
    assert all(b >= 16 for b in speed.memory.choices.dw_block.values())
    assert speed.arena_bytes > small.arena_bytes
    try:
        for table in isa.available():
            isa.select(table)
            plan = build_plan(graph, materialize=False)  # runtime.load's: "active"
            step = plan.steps[0]
            native = bool(lib.trt_depthwise_conv2d_s8_in_place_native(step.params))
            assert native == (table in ("avx512-vnni", "avx-vnni", "amx"))
            if table == "portable" or native:
                assert dw_blocks(step, "active") == [16, 4, 1]
                assert plan.arena_bytes == small.arena_bytes
            else:
                assert dw_blocks(step, "active") == [16]
                assert all(b >= 16 for b in plan.memory.choices.dw_block.values())
    finally:
        isa.select("best")
    with pytest.raises(ValueError, match="dw_policy"):
        build_plan(graph, materialize=False, dw_policy="fast")
