"""Serialise a runtime.graph.Graph into a .tflite flatbuffer.

Tests build graphs as plain Python objects (tests/graphgen.py) and need real
model files for both tinyrt and LiteRT.  Everything is written through the
generated builder functions of the `tflite` schema package and
flatbuffers.Builder, so the output is a schema-valid model by construction:

    data = write_model(graph)          # bytes starting with a TFL3 root
    runtime.load(data, backend="c")

Operator options are the snake_case dicts that runtime.graph reads
(`{"stride_h": 2, "padding": 1, ...}`); each key becomes a call of the
options table's `<Table>Add<CamelKey>` builder function, so a graph parsed
from a file writes back with the same options.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions

from runtime.graph import Graph, Operator, Quantization, Tensor

# The options table of each operator that has one (TFLite's schema names).
OPTIONS_TABLE: dict[str, str] = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "ADD": "AddOptions",
    "MUL": "MulOptions",
    "SOFTMAX": "SoftmaxOptions",
    "CONCATENATION": "ConcatenationOptions",
    "RESHAPE": "ReshapeOptions",
    "SQUEEZE": "SqueezeOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "MEAN": "ReducerOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "LEAKY_RELU": "LeakyReluOptions",
    "HARD_SWISH": "HardSwishOptions",
}

# Buffers are aligned like the converter aligns them, so int32 and float
# constants are naturally aligned wherever the file is loaded.
BUFFER_ALIGNMENT = 16


def _camel(key: str) -> str:
    """stride_h -> StrideH, dilation_w_factor -> DilationWFactor."""
    return "".join(part[:1].upper() + part[1:] for part in key.split("_"))


def _fn(name: str) -> Any:
    fn = getattr(tflite, name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"the tflite schema package has no builder function {name}")
    return fn


def _int_vector(b: flatbuffers.Builder, values: Any, dtype: Any = np.int32) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=dtype).reshape(-1))


def _byte_vector(b: flatbuffers.Builder, data: bytes) -> int:
    """A [ubyte] vector whose first byte is BUFFER_ALIGNMENT-aligned."""
    b.StartVector(1, len(data), BUFFER_ALIGNMENT)
    b.head = b.head - len(data)
    b.Bytes[b.head : b.head + len(data)] = data
    b.vectorNumElems = len(data)
    return b.EndVector()


def _options(b: flatbuffers.Builder, op: Operator) -> tuple[int, int]:
    """(BuiltinOptions type, table offset), or (0, 0) when the op has no options.

    An empty options dict writes no table at all (what a parsed file without
    one reads back as), so a round trip is exact."""
    if not op.options:
        return 0, 0
    table = OPTIONS_TABLE.get(op.opcode)
    if table is None:
        raise ValueError(f"{op.opcode} takes no options, got {sorted(op.options)}")
    # Vectors must be complete before the table starts.
    vectors: dict[str, int] = {}
    for key, value in op.options.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            if any(not float(v).is_integer() for v in np.asarray(value).reshape(-1)):
                raise ValueError(f"{op.opcode} option {key}: only integer vectors are supported")
            vectors[key] = _int_vector(b, value)
    _fn(table + "Start")(b)
    for key, value in op.options.items():
        add = _fn(f"{table}Add{_camel(key)}")
        if key in vectors:
            add(b, vectors[key])
        elif isinstance(value, (bool, np.bool_)):
            add(b, bool(value))
        elif isinstance(value, (int, np.integer)):
            add(b, int(value))
        else:
            add(b, float(value))
    return int(getattr(BuiltinOptions, table)), _fn(table + "End")(b)


def _quantization(b: flatbuffers.Builder, q: Quantization) -> int:
    scale = _int_vector(b, q.scale, np.float32)
    zero_point = _int_vector(b, q.zero_point, np.int64)
    tflite.QuantizationParametersStart(b)
    tflite.QuantizationParametersAddScale(b, scale)
    tflite.QuantizationParametersAddZeroPoint(b, zero_point)
    tflite.QuantizationParametersAddQuantizedDimension(b, int(q.axis) if q.per_channel else 0)
    return tflite.QuantizationParametersEnd(b)


def _tensor(b: flatbuffers.Builder, t: Tensor, buffer_index: int) -> int:
    name = b.CreateString(t.name or f"t{t.index}")
    shape = _int_vector(b, list(t.shape))
    quant = _quantization(b, t.quant) if t.quant is not None else None
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape)
    tflite.TensorAddType(b, int(t.type_code))
    tflite.TensorAddBuffer(b, buffer_index)
    tflite.TensorAddName(b, name)
    if quant is not None:
        tflite.TensorAddQuantization(b, quant)
    if t.is_variable:
        tflite.TensorAddIsVariable(b, True)
    return tflite.TensorEnd(b)


def _tensor_bytes(t: Tensor) -> bytes:
    assert t.data is not None
    data = np.asarray(t.data)
    if t.dtype is not None:
        data = data.astype(t.dtype.newbyteorder("<"), copy=False)
        if data.size != t.size:
            raise ValueError(f"tensor {t.name!r}: {data.size} values for shape {list(t.shape)}")
    return np.ascontiguousarray(data).tobytes()


def _offsets_vector(b: flatbuffers.Builder, start: Any, offsets: list[int]) -> int:
    start(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def write_model(graph: Graph, description: str = "tinyrt test graph") -> bytes:
    """The graph as .tflite bytes (one subgraph, TFLite schema version 3)."""
    b = flatbuffers.Builder(1024)

    # Buffer 0 is the empty sentinel; each constant tensor gets its own.
    buffer_of: dict[int, int] = {}
    buffer_offsets = []
    tflite.BufferStart(b)
    buffer_offsets.append(tflite.BufferEnd(b))
    for t in graph.tensors:
        if t.data is None:
            continue
        data = _byte_vector(b, _tensor_bytes(t))
        tflite.BufferStart(b)
        tflite.BufferAddData(b, data)
        buffer_of[t.index] = len(buffer_offsets)
        buffer_offsets.append(tflite.BufferEnd(b))

    for i, t in enumerate(graph.tensors):
        if t.index != i:
            raise ValueError(f"tensor {i} says it is tensor {t.index}")
    tensor_offsets = [_tensor(b, t, buffer_of.get(t.index, 0)) for t in graph.tensors]

    codes: list[tuple[str, int]] = []
    op_offsets = []
    for op in graph.operators:
        key = (op.opcode, max(int(op.version), 1))
        if key not in codes:
            codes.append(key)
        inputs = _int_vector(b, list(op.inputs))
        outputs = _int_vector(b, list(op.outputs))
        options_type, options = _options(b, op)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, codes.index(key))
        tflite.OperatorAddInputs(b, inputs)
        tflite.OperatorAddOutputs(b, outputs)
        if options_type:
            tflite.OperatorAddBuiltinOptionsType(b, options_type)
            tflite.OperatorAddBuiltinOptions(b, options)
        op_offsets.append(tflite.OperatorEnd(b))

    code_offsets = []
    for opcode, version in codes:
        builtin = getattr(BuiltinOperator, opcode, None)
        if builtin is None:
            raise ValueError(f"unknown builtin operator {opcode}")
        tflite.OperatorCodeStart(b)
        # Codes above 127 live only in builtin_code; the deprecated int8
        # field holds PLACEHOLDER_FOR_GREATER_OP_CODES (127) for them.
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(int(builtin), 127))
        tflite.OperatorCodeAddBuiltinCode(b, int(builtin))
        tflite.OperatorCodeAddVersion(b, version)
        code_offsets.append(tflite.OperatorCodeEnd(b))

    tensors = _offsets_vector(b, tflite.SubGraphStartTensorsVector, tensor_offsets)
    operators = _offsets_vector(b, tflite.SubGraphStartOperatorsVector, op_offsets)
    sg_inputs = _int_vector(b, list(graph.inputs))
    sg_outputs = _int_vector(b, list(graph.outputs))
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors)
    tflite.SubGraphAddInputs(b, sg_inputs)
    tflite.SubGraphAddOutputs(b, sg_outputs)
    tflite.SubGraphAddOperators(b, operators)
    tflite.SubGraphAddName(b, sg_name)
    subgraph = tflite.SubGraphEnd(b)

    subgraphs = _offsets_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
    opcodes = _offsets_vector(b, tflite.ModelStartOperatorCodesVector, code_offsets)
    buffers = _offsets_vector(b, tflite.ModelStartBuffersVector, buffer_offsets)
    desc = b.CreateString(description)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, opcodes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, buffers)
    model = tflite.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())
