"""Hand-made hostile models and bad run() inputs: clean exceptions that name the problem.

Models are either written from scratch with the flatbuffers builder of the
`tflite` schema package (a tiny writer below that, unlike a real converter,
writes whatever indices, shapes and quantization it is given), or real
models with one field overwritten in place.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field, replace
from importlib.util import find_spec
from typing import Any

import flatbuffers
import numpy as np
import pytest
import tflite
from conftest import model_path, reference_interpreter, run_reference
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions

import runtime
from runtime.errors import ModelFormatError, TinyRTError, UnsupportedModelError
from runtime.graph import parse_model

FLOAT32, INT32, INT8 = 0, 2, 9  # tflite TensorType codes


# --------------------------------------------------------------- a raw writer


@dataclass
class T:
    """A tensor as written: nothing is checked."""

    name: str | bytes
    shape: list[int]
    type: int = INT8
    buffer: int = 0
    scale: list[float] | None = None
    zero_point: list[int] | None = None
    axis: int = 0


@dataclass
class Op:
    opcode_index: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[str, dict[str, int]] | None = None  # ("Conv2DOptions", {"StrideW": 1, ...})


@dataclass
class Spec:
    tensors: list[T]
    ops: list[Op]
    buffers: list[bytes]  # buffer 0 is the empty sentinel
    inputs: list[int]
    outputs: list[int]
    opcodes: list[int] = field(default_factory=lambda: [BuiltinOperator.FULLY_CONNECTED])


def _vector(b: flatbuffers.Builder, values: list[Any], kind: str) -> int:
    size = struct.calcsize(kind)
    b.StartVector(size, len(values), size)
    prepend = {"i": b.PrependInt32, "f": b.PrependFloat32, "q": b.PrependInt64, "B": b.PrependUint8}[kind]
    for v in reversed(values):
        prepend(v)
    return b.EndVector()


def _tables(b: flatbuffers.Builder, start: Any, offsets: list[int]) -> int:
    start(b, len(offsets))
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def write(spec: Spec) -> bytes:
    b = flatbuffers.Builder(1024)
    buffers = []
    for data in spec.buffers:
        vec = _vector(b, list(data), "B") if data else None
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        buffers.append(tflite.BufferEnd(b))
    tensors = []
    for t in spec.tensors:
        name = b.CreateString(t.name)
        shape = _vector(b, t.shape, "i")
        quant = None
        if t.scale is not None:
            scale = _vector(b, t.scale, "f")
            zp = _vector(b, t.zero_point if t.zero_point is not None else [0] * len(t.scale), "q")
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddName(b, name)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, t.type)
        tflite.TensorAddBuffer(b, t.buffer)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensors.append(tflite.TensorEnd(b))
    ops = []
    for op in spec.ops:
        ins, outs = _vector(b, op.inputs, "i"), _vector(b, op.outputs, "i")
        options = None
        if op.options is not None:
            table, fields = op.options
            getattr(tflite, table + "Start")(b)
            for key, value in fields.items():
                getattr(tflite, f"{table}Add{key}")(b, value)
            options = getattr(tflite, table + "End")(b)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, op.opcode_index)
        tflite.OperatorAddInputs(b, ins)
        tflite.OperatorAddOutputs(b, outs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(BuiltinOptions, op.options[0]))
            tflite.OperatorAddBuiltinOptions(b, options)
        ops.append(tflite.OperatorEnd(b))
    codes = []
    for code in spec.opcodes:
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1)
        codes.append(tflite.OperatorCodeEnd(b))
    tensor_vec = _tables(b, tflite.SubGraphStartTensorsVector, tensors)
    op_vec = _tables(b, tflite.SubGraphStartOperatorsVector, ops)
    ins, outs = _vector(b, spec.inputs, "i"), _vector(b, spec.outputs, "i")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensor_vec)
    tflite.SubGraphAddInputs(b, ins)
    tflite.SubGraphAddOutputs(b, outs)
    tflite.SubGraphAddOperators(b, op_vec)
    subgraph = tflite.SubGraphEnd(b)
    subgraphs = _tables(b, tflite.ModelStartSubgraphsVector, [subgraph])
    code_vec = _tables(b, tflite.ModelStartOperatorCodesVector, codes)
    buffer_vec = _tables(b, tflite.ModelStartBuffersVector, buffers)
    description = b.CreateString("tinyrt hostile test model")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, code_vec)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddDescription(b, description)
    tflite.ModelAddBuffers(b, buffer_vec)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# A valid int8 FULLY_CONNECTED model: y[1,3] = W[3,4] x[1,4] + bias.
WEIGHTS = np.array([[1, -2, 3, -4], [5, 6, -7, 8], [-9, 10, 11, -12]], dtype=np.int8)
BIAS = np.array([100, -50, 7], dtype=np.int32)
IN_SCALE, IN_ZP = 0.5, -1


def fc_spec() -> Spec:
    return Spec(
        tensors=[
            T("x", [1, 4], scale=[IN_SCALE], zero_point=[IN_ZP]),
            T("weights", [3, 4], buffer=1, scale=[0.02], zero_point=[0]),
            T("bias", [3], type=INT32, buffer=2, scale=[0.01], zero_point=[0]),
            T("y", [1, 3], scale=[0.25], zero_point=[2]),
        ],
        ops=[Op(0, [0, 1, 2], [3])],
        buffers=[b"", WEIGHTS.tobytes(), BIAS.tobytes()],
        inputs=[0],
        outputs=[3],
    )


def add_spec() -> Spec:
    """y = x + c, int8, c a constant."""
    return Spec(
        tensors=[
            T("x", [1, 4], scale=[0.5], zero_point=[0]),
            T("c", [1, 4], buffer=1, scale=[0.5], zero_point=[0]),
            T("y", [1, 4], scale=[0.25], zero_point=[0]),
        ],
        ops=[Op(0, [0, 1], [2])],
        buffers=[b"", bytes([1, 2, 3, 4])],
        inputs=[0],
        outputs=[2],
        opcodes=[BuiltinOperator.ADD],
    )


def conv_spec() -> Spec:
    """A 2x5 CONV_2D, SAME padding, 4 output channels with per-channel scales."""
    weights = np.arange(40, dtype=np.int8).reshape(4, 2, 5, 1) - 20
    conv_options = (
        "Conv2DOptions",
        {"Padding": 0, "StrideW": 1, "StrideH": 1, "DilationWFactor": 1, "DilationHFactor": 1},
    )
    return Spec(
        tensors=[
            T("x", [1, 4, 4, 1], scale=[0.5], zero_point=[0]),
            T("w", [4, 2, 5, 1], buffer=1, scale=[0.01, 0.02, 0.03, 0.04], zero_point=[0] * 4),
            T("b", [4], type=INT32, buffer=2, scale=[0.005, 0.01, 0.015, 0.02], zero_point=[0] * 4),
            T("y", [1, 4, 4, 4], scale=[0.1], zero_point=[0]),
        ],
        ops=[Op(0, [0, 1, 2], [3], conv_options)],
        buffers=[b"", weights.tobytes(), np.array([5, -5, 100, 0], np.int32).tobytes()],
        inputs=[0],
        outputs=[3],
        opcodes=[BuiltinOperator.CONV_2D],
    )


def with_tensor(spec: Spec, index: int, **changes: Any) -> Spec:
    tensors = list(spec.tensors)
    tensors[index] = replace(tensors[index], **changes)
    return replace(spec, tensors=tensors)


def load(data: bytes, backend: str = "c") -> runtime.Model:
    return runtime.load(data, backend=backend)  # type: ignore[arg-type]


def test_the_writer_makes_a_valid_model():
    # The baseline every hostile variant below departs from: it loads, and
    # tinyrt agrees with TFLite on it, so each rejection is due to the edit.
    data = write(fc_spec())
    model = load(data)
    x = np.array([[3, -7, 100, -128]], dtype=np.int8)
    (y,) = model.run([x])
    acc = WEIGHTS.astype(np.int64) @ (x[0].astype(np.int64) - IN_ZP) + BIAS
    scaled = acc * IN_SCALE * 0.02 / 0.25
    expected = np.clip(np.trunc(scaled + np.copysign(0.5, scaled)) + 2, -128, 127)  # TFLite rounds halves away
    np.testing.assert_array_equal(y[0], expected.astype(np.int8))
    conv = write(conv_spec())
    x_conv = np.arange(16, dtype=np.int8).reshape(1, 4, 4, 1) - 8
    assert load(conv).run([x_conv])[0].shape == (1, 4, 4, 4)
    # y = x + c with scales 0.5, 0.5 -> 0.25: each sum doubles.
    add = write(add_spec())
    x_add = np.array([[-10, 0, 7, 30]], dtype=np.int8)
    np.testing.assert_array_equal(load(add).run([x_add])[0], [[-18, 4, 20, 68]])
    pytest.importorskip("ai_edge_litert.interpreter")
    np.testing.assert_array_equal(load(data, "tflite").run([x])[0], y)
    np.testing.assert_array_equal(load(add, "tflite").run([x_add])[0], [[-18, 4, 20, 68]])
    np.testing.assert_array_equal(load(conv).run([x_conv])[0], run_reference(reference_interpreter(conv), [x_conv])[0])


# ------------------------------------------------- hostile models from scratch

BAD_SPECS: dict[str, tuple[Spec, type[Exception], str]] = {
    "op input index out of range": (
        replace(fc_spec(), ops=[Op(0, [0, 1, 99], [3])]),
        ModelFormatError,
        r"operator 0 \(FULLY_CONNECTED\) inputs refers to tensor 99; the model has 4",
    ),
    "negative op input index": (
        replace(fc_spec(), ops=[Op(0, [-5, 1, 2], [3])]),
        ModelFormatError,
        r"inputs refers to tensor -5",
    ),
    "op output index out of range": (
        replace(fc_spec(), ops=[Op(0, [0, 1, 2], [4])]),
        ModelFormatError,
        r"outputs refers to tensor 4; the model has 4",
    ),
    "omitted output (-1)": (
        replace(fc_spec(), ops=[Op(0, [0, 1, 2], [-1])]),
        ModelFormatError,
        r"outputs refers to tensor -1",
    ),
    "graph input index out of range": (
        replace(fc_spec(), inputs=[7]),
        ModelFormatError,
        r"subgraph inputs refers to tensor 7; the model has 4",
    ),
    "graph output index negative": (
        replace(fc_spec(), outputs=[-2]),
        ModelFormatError,
        r"subgraph outputs refers to tensor -2",
    ),
    "buffer index out of range": (
        with_tensor(fc_spec(), 1, buffer=1_000_000),
        ModelFormatError,
        r"buffer index 1000000 out of range \(model has 3\)",
    ),
    "opcode index out of range": (
        replace(fc_spec(), ops=[Op(5, [0, 1, 2], [3])]),
        ModelFormatError,
        r"operator 0 uses opcode 5; the table has 1",
    ),
    "shape product overflows": (
        with_tensor(fc_spec(), 3, shape=[65536, 65536, 65536]),
        ModelFormatError,
        r"tensor 3 \('y'\) has shape \[65536, 65536, 65536\] with 281474976710656 elements; the limit is",
    ),
    "int32 shape product overflows to a small number": (
        # 2**16 * 2**16 * 2 wraps to 0 in int32 arithmetic: Python's must not.
        with_tensor(fc_spec(), 0, shape=[65536, 65536, 2]),
        ModelFormatError,
        r"with 8589934592 elements",
    ),
    "negative dimension": (
        with_tensor(fc_spec(), 3, shape=[1, -3]),
        ModelFormatError,
        r"tensor 3 \('y'\) has a negative dimension \[1, -3\]",
    ),
    "rank 100": (
        with_tensor(fc_spec(), 0, shape=[1] * 100),
        ModelFormatError,
        r"tensor 0 \('x'\) has rank 100; at most 8",
    ),
    "weights buffer too small": (
        replace(fc_spec(), buffers=[b"", WEIGHTS.tobytes()[:5], BIAS.tobytes()]),
        ModelFormatError,
        r"tensor 1 \('weights'\) of shape \[3, 4\] INT8 needs 12 bytes but its buffer holds 5",
    ),
    "bias buffer too large": (
        replace(fc_spec(), buffers=[b"", WEIGHTS.tobytes(), BIAS.tobytes() + b"\0\0\0\0"]),
        ModelFormatError,
        r"tensor 2 \('bias'\) of shape \[3\] INT32 needs 12 bytes but its buffer holds 16",
    ),
    "unknown tensor type": (
        with_tensor(fc_spec(), 3, type=99),
        ModelFormatError,
        r"tensor 3 \('y'\) has unknown type code 99",
    ),
    "per-channel scale count matches no axis": (
        with_tensor(fc_spec(), 1, scale=[0.02, 0.03], zero_point=[0, 0]),
        ModelFormatError,
        r"tensor 1 \('weights'\) of shape \[3, 4\] has 2 per-channel scales on axis 0, and no single axis",
    ),
    "conv per-channel scale count matches no axis": (
        with_tensor(conv_spec(), 1, scale=[0.01, 0.02, 0.03], zero_point=[0] * 3),
        ModelFormatError,
        r"tensor 1 \('w'\) of shape \[4, 2, 5, 1\] has 3 per-channel scales on axis 0, and no single axis",
    ),
    "scale and zero point counts differ": (
        with_tensor(fc_spec(), 1, scale=[0.02, 0.03, 0.04], zero_point=[0, 0]),
        ModelFormatError,
        r"tensor 1 \('weights'\) has 3 scales but 2 zero points",
    ),
    "zero scale on an activation": (
        with_tensor(fc_spec(), 3, scale=[0.0]),
        ModelFormatError,
        r"tensor 3 \('y'\) has a quantization scale of 0",
    ),
    "NaN scale": (
        with_tensor(fc_spec(), 0, scale=[math.nan]),
        ModelFormatError,
        r"tensor 0 \('x'\) has a non-finite quantization scale",
    ),
    "infinite weight scale": (
        with_tensor(fc_spec(), 1, scale=[math.inf]),
        ModelFormatError,
        r"tensor 1 \('weights'\) has a non-finite quantization scale",
    ),
    "negative scale": (
        with_tensor(fc_spec(), 1, scale=[-0.02]),
        ModelFormatError,
        r"tensor 1 \('weights'\) has a negative quantization scale -0.02",
    ),
    "int8 zero point out of range": (
        with_tensor(fc_spec(), 0, zero_point=[300]),
        ModelFormatError,
        r"tensor 0 \('x'\) has zero point 300 outside the range \[-128, 127\]",
    ),
    "int32 zero point out of range": (
        with_tensor(fc_spec(), 2, zero_point=[1 << 40]),
        ModelFormatError,
        r"tensor 2 \('bias'\) has zero point 1099511627776 outside the range",
    ),
    "missing buffer for the weights": (
        with_tensor(fc_spec(), 1, buffer=0),
        ModelFormatError,
        r"operator 0 \(FULLY_CONNECTED\) reads tensor 1 'weights' INT8\[3, 4\], which has no buffer, "
        r"is not a graph input and no earlier operator writes it",
    ),
    "tensor name not UTF-8": (
        with_tensor(fc_spec(), 3, name=b"\xff\xfe"),
        ModelFormatError,
        r"tensor 3 has a name that is not UTF-8: b'\\xff\\xfe'",
    ),
    "operator input missing": (
        replace(fc_spec(), ops=[Op(0, [0], [3])]),
        ModelFormatError,
        r"operator 0 \(FULLY_CONNECTED\) has no input 1; it needs 2 \(inputs \[0\]\)",
    ),
    "required operator input omitted (-1)": (
        # LiteRT segfaulted on this one (found by fuzzing the tflite backend).
        replace(fc_spec(), ops=[Op(0, [0, -1, 2], [3])]),
        ModelFormatError,
        r"operator 0 \(FULLY_CONNECTED\) has no input 1; it needs 2 \(inputs \[0, -1, 2\]\)",
    ),
    "ADD input scale 2**19 times the output's": (
        # TFLite's Prepare CHECKs this and aborts the process.
        with_tensor(add_spec(), 0, scale=[3e38]),
        ModelFormatError,
        r"operator 0 \(ADD\) rescales inputs of scale 3e\+38 and 0.5 to an output of scale 0.25",
    ),
    "ADD constant operand with scale 0": (
        with_tensor(add_spec(), 1, scale=[0.0]),
        ModelFormatError,
        r"operator 0 \(ADD\) rescales inputs of scale 0.5 and 0 .*TFLite needs positive scales",
    ),
    # --- well-formed files whose graph the C backend must refuse
    "operator without outputs": (
        replace(fc_spec(), ops=[Op(0, [0, 1, 2], [])], outputs=[0]),
        UnsupportedModelError,
        r"operator 0 \(FULLY_CONNECTED\): 0 outputs; exactly one is supported",
    ),
    "graph output never computed": (
        replace(fc_spec(), ops=[]),
        UnsupportedModelError,
        r"graph output 'y' INT8\[1, 3\] is never computed",
    ),
    "conv per-channel scales along the wrong axis": (
        # Two scales: the parser takes the one axis of length 2 (TFLite
        # Micro's leniency for stale axes), which is not the output channels.
        with_tensor(conv_spec(), 1, scale=[0.01, 0.02], zero_point=[0, 0], axis=0),
        UnsupportedModelError,
        r"operator 0 \(CONV_2D\): weights are quantized along axis 1, expected 0",
    ),
    "weights shape disagrees with the output": (
        with_tensor(fc_spec(), 3, shape=[1, 5]),
        UnsupportedModelError,
        r"output has 5 elements, expected 1 x 3",
    ),
    "zero-sized activation": (
        # Empty tensors would reach the kernels' loops and divisions.
        with_tensor(with_tensor(fc_spec(), 0, shape=[0, 4]), 3, shape=[0, 3]),
        UnsupportedModelError,
        r"tensor 'x' INT8\[0, 4\] has no elements",
    ),
    "arena over 1 GiB": (
        # 2**28 rows of 4 int8 in, 3 out: 1.75 GiB, refused before allocation.
        with_tensor(with_tensor(fc_spec(), 0, shape=[1 << 28, 4]), 3, shape=[1 << 28, 3]),
        UnsupportedModelError,
        r"needs a \d+-byte arena .* refuses arenas over 1 GiB",
    ),
    "graph input of a type without a numpy dtype": (
        with_tensor(fc_spec(), 0, type=5),  # STRING
        UnsupportedModelError,
        r"graph input/output 'x' STRING\[1, 4\] has an unsupported type",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_hostile_model_is_rejected(case):
    spec, error, pattern = BAD_SPECS[case]
    with pytest.raises(error) as info:
        load(write(spec))
    assert type(info.value) is error
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize(
    "case",
    [
        "missing buffer for the weights",
        "tensor name not UTF-8",
        "required operator input omitted (-1)",
        "ADD input scale 2**19 times the output's",
        "ADD constant operand with scale 0",
    ],
)
@pytest.mark.parametrize("backend", ["tflite", "auto"])
def test_hostile_model_is_rejected_before_litert(case, backend):
    # Found by fuzzing the tflite backend: LiteRT segfaults or aborts on the
    # last three; its Python API raised UnicodeDecodeError on such names, and
    # invoke() "Input tensor lacks data" on the first.
    spec, error, pattern = BAD_SPECS[case]
    with pytest.raises(error, match=pattern):
        load(write(spec), backend)


def test_model_litert_fails_to_invoke_gives_a_tinyrt_error():
    # Found by fuzzing the tflite backend: an int8 SOFTMAX with a float32
    # output passes LiteRT's Prepare and fails in invoke() with RuntimeError.
    pytest.importorskip("ai_edge_litert.interpreter")
    spec = Spec(
        tensors=[T("x", [1, 4], scale=[0.5], zero_point=[0]), T("p", [1, 4], type=FLOAT32)],
        ops=[Op(0, [0], [1], ("SoftmaxOptions", {"Beta": 1.0}))],
        buffers=[b""],
        inputs=[0],
        outputs=[1],
        opcodes=[BuiltinOperator.SOFTMAX],
    )
    model = load(write(spec), "tflite")
    with pytest.raises(TinyRTError, match=r"the tflite backend could not run the model: .*SOFTMAX") as info:
        model.run([np.zeros((1, 4), np.int8)])
    assert type(info.value) is TinyRTError
    with pytest.raises(UnsupportedModelError, match=r"operator 0 \(SOFTMAX\): output must be int8, got FLOAT32"):
        load(write(spec), "c")


def test_absurd_scales_in_the_planner():
    # Scales the parser accepts but the fixed-point arithmetic cannot take:
    # a rescale factor of ~1e36 needs a left shift of ~120 bits, undefined
    # for an int32 in C.  The planner refuses it (TFLite Micro rounding).
    tiny_out = write(with_tensor(fc_spec(), 3, scale=[1e-38]))
    huge_w = write(with_tensor(fc_spec(), 1, scale=[1e30]))
    for data in (tiny_out, huge_w):
        with pytest.raises(UnsupportedModelError, match=r"quantization multiplier .* is too large \(at most 2\*\*31\)"):
            runtime.load(data, backend="c", fc_rounding="tflm")
    # TFLite's reference rounding rescales in double precision, clamps to
    # int32 and then adds the zero point with int32 wrap-around: the same
    # models load, and give what TFLite's reference kernel gives.
    x = np.array([[3, -7, 100, -128]], dtype=np.int8)
    for data in (tiny_out, huge_w):
        np.testing.assert_array_equal(load(data).run([x])[0], [[-128, -128, -128]])
    if find_spec("ai_edge_litert") is not None:  # (TFLite refuses huge_w: its bias scale check)
        np.testing.assert_array_equal(run_reference(reference_interpreter(tiny_out), [x])[0], [[-128, -128, -128]])


def _shared_quantization_model(n_tensors: int, n_scales: int) -> bytes:
    """n_tensors tensors whose quantization is one table of n_scales scales.

    The flatbuffer format allows tables to share data; a hostile file uses
    that to make each of many tensors "own" one long vector.
    """
    b = flatbuffers.Builder(1024)
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    scale, zp = _vector(b, [0.5] * n_scales, "f"), _vector(b, [0] * n_scales, "q")
    tflite.QuantizationParametersStart(b)
    tflite.QuantizationParametersAddScale(b, scale)
    tflite.QuantizationParametersAddZeroPoint(b, zp)
    quant = tflite.QuantizationParametersEnd(b)
    shape = _vector(b, [n_scales], "i")
    tensors = []
    for _ in range(n_tensors):
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, INT8)
        tflite.TensorAddQuantization(b, quant)
        tensors.append(tflite.TensorEnd(b))
    tensor_vec = _tables(b, tflite.SubGraphStartTensorsVector, tensors)
    io = _vector(b, [0], "i")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensor_vec)
    tflite.SubGraphAddInputs(b, io)
    tflite.SubGraphAddOutputs(b, io)
    subgraphs = _tables(b, tflite.ModelStartSubgraphsVector, [tflite.SubGraphEnd(b)])
    buffers = _tables(b, tflite.ModelStartBuffersVector, [empty])
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddBuffers(b, buffers)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_tables_sharing_one_vector_do_not_multiply_memory():
    # 2,000 tensors x 20,000 scales: a 280 KB file that asked the parser for
    # ~500 MB of copies before it counted the bytes it reads.
    data = _shared_quantization_model(2000, 20000)
    assert len(data) < 300_000
    with pytest.raises(ModelFormatError, match=r"tensor \d+ \(''\) quantization reuses bytes other tables hold"):
        parse_model(data)
    # A little sharing (what a deduplicating writer may do) is fine.
    graph = parse_model(_shared_quantization_model(3, 20000))
    assert [t.quant.scale.size for t in graph.tensors] == [20000] * 3


# ---------------------------------------------------- edits of real models


def _patched(name: str, edit) -> bytes:
    data = bytearray(model_path(name).read_bytes())
    model = tflite.Model.GetRootAs(bytes(data), 0)
    edit(data, model)
    return bytes(data)


def _vector_start(table: Any, field_offset: int) -> int:
    """Byte position of a vector field's length word in a table."""
    tab = table._tab
    o = tab.Offset(field_offset)
    assert o, "field absent"
    return tab.Vector(o) - 4


def _put_u32(data: bytearray, pos: int, value: int) -> None:
    data[pos : pos + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")


# vtable slots of the schema's tables (field id * 2 + 4)
SUBGRAPH_TENSORS, SUBGRAPH_OPERATORS = 4, 10
TENSOR_SHAPE, TENSOR_BUFFER = 4, 8
OPERATOR_OPCODE_INDEX, OPERATOR_INPUTS = 4, 6


def _tensor_table_count(data: bytearray, model: Any) -> None:
    # The subgraph's tensor vector claims 2**31 - 1 entries.
    _put_u32(data, _vector_start(model.Subgraphs(0), SUBGRAPH_TENSORS), 0x7FFFFFFF)


def _rank_claim(data: bytearray, model: Any) -> None:
    # Tensor 0's shape vector claims 100 dimensions (the bytes after it are
    # whatever follows in the file).
    _put_u32(data, _vector_start(model.Subgraphs(0).Tensors(0), TENSOR_SHAPE), 100)


def _negative_dim(data: bytearray, model: Any) -> None:
    start = _vector_start(model.Subgraphs(0).Tensors(0), TENSOR_SHAPE)
    _put_u32(data, start + 8, -7)  # the second dimension


def _op_input(data: bytearray, model: Any) -> None:
    start = _vector_start(model.Subgraphs(0).Operators(0), OPERATOR_INPUTS)
    _put_u32(data, start + 4, 123456)


def _opcode_index(data: bytearray, model: Any) -> None:
    # The first operator whose opcode index is stored (0, the default, is
    # left out of the table by the writer).
    sub = model.Subgraphs(0)
    op = next(
        sub.Operators(i)._tab
        for i in range(sub.OperatorsLength())
        if sub.Operators(i)._tab.Offset(OPERATOR_OPCODE_INDEX)
    )
    _put_u32(data, op.Pos + op.Offset(OPERATOR_OPCODE_INDEX), 4000)


def _buffer_index(data: bytearray, model: Any) -> None:
    sub = model.Subgraphs(0)
    weights = sub.Tensors(sub.Operators(0).Inputs(1))._tab
    _put_u32(data, weights.Pos + weights.Offset(TENSOR_BUFFER), 0xFFFFFFF0)


def _root_offset(data: bytearray, model: Any) -> None:
    _put_u32(data, 0, len(data) + 100)


REAL_EDITS = {
    "tensor table longer than the file": (
        _tensor_table_count,
        r"tensor table claims 2147483647 entries, more than a \d+-byte file",
    ),
    "shape vector of rank 100": (_rank_claim, r"tensor 0 \(.*\) has rank 100; at most 8"),
    "negative dimension": (_negative_dim, r"tensor 0 \(.*\) has a negative dimension \[1, -7"),
    "operator input out of range": (_op_input, r"operator 0 \(\w+\) inputs refers to tensor 123456"),
    "opcode index out of range": (_opcode_index, r"operator \d+ uses opcode 4000; the table has \d+"),
    "buffer index out of range": (_buffer_index, r"buffer index 4294967280 out of range"),
    "root offset past the end": (_root_offset, r"root table offset points past the end"),
}


@pytest.mark.parametrize("case", list(REAL_EDITS))
@pytest.mark.parametrize("backend", ["c", "tflite", "auto"])
def test_edited_real_model_is_rejected_on_every_backend(case, backend):
    # runtime.load parses the file before LiteRT sees it: the same clean
    # error on every backend rather than whatever LiteRT's C++ does.
    edit, pattern = REAL_EDITS[case]
    data = _patched("kws_ref_model", edit)
    with pytest.raises(ModelFormatError) as info:
        load(data, backend)
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", r"not a TFLite model: file has only 0 bytes"),
        (b"TFL3", r"not a TFLite model: file has only 4 bytes"),
        (
            b"\x89PNG\r\n\x1a\n" + bytes(100),
            r"not a TFLite model: file identifier is b'\\r\\n\\x1a\\n', expected b'TFL3'",
        ),
        (b"# a text file\nthat is not a model\n", r"not a TFLite model: file identifier is b'text'"),
    ],
    ids=["empty", "identifier only", "png", "text"],
)
@pytest.mark.parametrize("backend", ["c", "tflite", "auto"])
def test_not_a_model(data, pattern, backend):
    with pytest.raises(ModelFormatError, match=pattern):
        load(data, backend)


@pytest.mark.parametrize("keep", [8, 100, 1000, 30000])
def test_truncated_real_model(keep):
    data = model_path("kws_ref_model").read_bytes()[:keep]
    with pytest.raises(ModelFormatError, match=r"corrupt model|not a TFLite model"):
        load(data)


def test_missing_file_is_a_model_format_error(tmp_path):
    with pytest.raises(ModelFormatError, match=r"cannot read model .*nope\.tflite"):
        runtime.load(tmp_path / "nope.tflite")


# ------------------------------------------------------------ run() inputs


@pytest.fixture(params=["c", "tflite"])
def fc_model(request) -> runtime.Model:
    if request.param == "tflite":
        pytest.importorskip("ai_edge_litert.interpreter")
    return load(write(fc_spec()), request.param)


def test_wrong_shape(fc_model):
    with pytest.raises(ValueError, match=r"input 'x': expected shape \[1, 4\], got \[1, 5\]"):
        fc_model.run([np.zeros((1, 5), np.int8)])
    with pytest.raises(ValueError, match=r"expected shape \[1, 4\], got \[4, 1\]"):
        fc_model.run(np.zeros((4, 1), np.int8))


def test_shape_without_the_batch_dimension_is_accepted(fc_model):
    x = np.array([1, 2, 3, 4], np.int8)
    np.testing.assert_array_equal(fc_model.run(x)[0], fc_model.run(x[None])[0])


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.bool_, np.uint8])
def test_wrong_dtype(fc_model, dtype):
    with pytest.raises(
        ValueError, match=rf"input 'x': expected dtype int8 \(or float to be quantized\), got {np.dtype(dtype)}"
    ):
        fc_model.run([np.zeros((1, 4), dtype)])


def test_wrong_number_of_inputs(fc_model):
    x = np.zeros((1, 4), np.int8)
    with pytest.raises(ValueError, match=r"the model takes 1 input\(s\), got 2"):
        fc_model.run([x, x])
    with pytest.raises(ValueError, match=r"the model takes 1 input\(s\), got 0"):
        fc_model.run([])


def test_unknown_and_missing_names(fc_model):
    x = np.zeros((1, 4), np.int8)
    with pytest.raises(ValueError, match=r"expected \['x'\], got \['y'\] \(unknown \['y'\]\) \(missing \['x'\]\)"):
        fc_model.run({"y": x})
    with pytest.raises(ValueError, match=r"expected \['x'\], got \['x', 'z'\] \(unknown \['z'\]\)"):
        fc_model.run({"x": x, "z": x})
    np.testing.assert_array_equal(fc_model.run({"x": x})[0], fc_model.run([x])[0])


def test_not_an_array(fc_model):
    with pytest.raises(ValueError, match=r"inputs must be an array, a list of arrays or a dict, got int"):
        fc_model.run(3)  # type: ignore[arg-type]


# TFLite's quantize: q = clamp(round_half_away(x / scale) + zero_point), with
# scale 0.5 and zero point -1 for the input "x".
FLOATS = np.array([[1.3, -0.74, 0.25, 100.0]], dtype=np.float32)
QUANTIZED = np.array([[2, -2, 0, 127]], dtype=np.int8)  # 2.6->3, -1.48->-1, 0.5->1 (half away), 200 clamps


def test_float_input_is_quantized_like_tflite(fc_model):
    assert fc_model.prepare_inputs([FLOATS])[0].tolist() == QUANTIZED.tolist()
    np.testing.assert_array_equal(fc_model.run([FLOATS])[0], fc_model.run([QUANTIZED])[0])
    negative = np.array([[-100.0, -0.25, -0.75, 0.0]], dtype=np.float64)  # float64 works too
    assert fc_model.prepare_inputs([negative])[0].tolist() == [[-128, -2, -3, -1]]


def test_quantize_formula_matches_tflites_quantize_op():
    # TFLite's own QUANTIZE kernel on the same values and parameters decides
    # what "quantized like TFLite" means, halves and clamping included.
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    spec = Spec(
        tensors=[T("f", [1, 4], type=FLOAT32), T("q", [1, 4], scale=[IN_SCALE], zero_point=[IN_ZP])],
        ops=[Op(0, [0], [1])],
        buffers=[b""],
        inputs=[0],
        outputs=[1],
        opcodes=[BuiltinOperator.QUANTIZE],
    )
    # The reference kernels, as everywhere in these tests: the default
    # XNNPACK delegate rounds halves to even instead (0.25 / 0.5 -> 0).
    it = litert.Interpreter(model_content=write(spec), experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    values = np.array(
        [[1.3, -0.74, 0.25, 100.0], [-100.0, -0.25, -0.75, 0.0], [0.75, 1.25, -1.25, 63.0], [64.0, -64.0, 0.7499, 2.5]],
        dtype=np.float32,
    )
    fc = load(write(fc_spec()))
    for row in values:
        it.set_tensor(it.get_input_details()[0]["index"], row[None])
        it.invoke()
        expected = it.get_tensor(it.get_output_details()[0]["index"])
        np.testing.assert_array_equal(fc.prepare_inputs([row[None]])[0], expected)
