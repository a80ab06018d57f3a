"""tests/tflite_writer.py: parse -> write -> parse keeps a model, and LiteRT runs the copy identically."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import INT8_MODELS, model_path, random_inputs, reference_interpreter, run_reference
from graphgen import GraphBuilder
from tflite_writer import write_model

import runtime
from runtime.graph import parse_model


@pytest.mark.parametrize("name", INT8_MODELS + ["hello_world_float"])
def test_round_trip_keeps_the_graph(name: str) -> None:
    original = parse_model(model_path(name))
    copy = parse_model(write_model(original))
    assert copy.inputs == original.inputs and copy.outputs == original.outputs
    assert len(copy.tensors) == len(original.tensors)
    for a, b in zip(original.tensors, copy.tensors, strict=True):
        assert (a.shape, a.type_code, a.is_variable) == (b.shape, b.type_code, b.is_variable), a.name
        assert (a.data is None) == (b.data is None), a.name
        if a.data is not None:
            np.testing.assert_array_equal(a.data, b.data)
        assert (a.quant is None) == (b.quant is None), a.name
        if a.quant is not None and b.quant is not None:
            np.testing.assert_array_equal(a.quant.scale, b.quant.scale)
            np.testing.assert_array_equal(a.quant.zero_point, b.quant.zero_point)
            if a.quant.per_channel:
                assert a.quant.axis == b.quant.axis
    for a, b in zip(original.operators, copy.operators, strict=True):
        assert (a.opcode, a.version, a.inputs, a.outputs) == (b.opcode, b.version, b.inputs, b.outputs)
        assert a.options == b.options


@pytest.mark.parametrize("name", INT8_MODELS)
def test_round_trip_runs_identically_in_litert(name: str) -> None:
    raw = model_path(name).read_bytes()
    copy = write_model(parse_model(raw))
    ref_a = reference_interpreter(raw)
    ref_b = reference_interpreter(copy)
    ours = runtime.load(copy, backend="c")
    rng = np.random.default_rng(5)
    for _ in range(3):
        inputs = random_inputs(ours, rng)
        for a, b, c in zip(run_reference(ref_a, inputs), run_reference(ref_b, inputs), ours.run(inputs), strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


def test_constant_buffers_are_aligned() -> None:
    gb = GraphBuilder()
    x = gb.input((1, 3), "int8", 0.1, 0)
    odd = gb.tensor((3,), "int8", 0.1, 0, data=np.array([1, 2, 3], dtype=np.int8))
    bias = gb.tensor((5,), "int32", 0.01, 0, data=np.arange(5, dtype=np.int32))
    y = gb.tensor((1, 3), "int8", 0.2, 0)
    gb.op("ADD", [x, odd], [y], fused_activation_function=0)
    gb.outputs.append(y)
    data = write_model(gb.graph())
    for t in (odd, bias):
        expected = gb.tensors[t].data
        assert expected is not None
        pos = data.find(expected.tobytes())
        assert pos >= 0 and pos % 16 == 0


def test_per_channel_axis_and_options_survive() -> None:
    gb = GraphBuilder()
    x = gb.input((1, 4, 4, 2), "int8", 0.1, 3)
    w = gb.tensor((1, 3, 3, 4), "int8", [0.01, 0.02, 0.03, 0.04], 0, data=np.ones((1, 3, 3, 4), np.int8), axis=3)
    y = gb.tensor((1, 2, 2, 4), "int8", 0.2, -1)
    gb.op(
        "DEPTHWISE_CONV_2D",
        [x, w],
        [y],
        padding=1,
        stride_w=1,
        stride_h=1,
        depth_multiplier=2,
        fused_activation_function=3,
        dilation_w_factor=1,
        dilation_h_factor=1,
    )
    gb.outputs.append(y)
    g = parse_model(write_model(gb.graph()))
    assert g.tensors[w].quant is not None and g.tensors[w].quant.axis == 3
    opts = g.operators[0].options
    assert (opts["padding"], opts["depth_multiplier"], opts["fused_activation_function"]) == (1, 2, 3)


def test_unknown_option_is_an_error() -> None:
    gb = GraphBuilder()
    x = gb.input((4,), "int8", 0.1, 0)
    y = gb.tensor((4,), "int8", 0.1, 0)
    gb.op("SOFTMAX", [x], [y], no_such_option=1)
    gb.outputs.append(y)
    with pytest.raises(ValueError, match="SoftmaxOptionsAddNoSuchOption"):
        write_model(gb.graph())
