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
