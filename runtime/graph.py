"""Reading a .tflite flatbuffer into a plain Python graph.

The flatbuffer is read through the generated schema bindings of the `tflite`
package (no hand-written parser).  Constant buffers stay zero-copy numpy
views of the file's bytes.  Everything read from the file is checked before
it is trusted: a corrupt or hostile file raises ModelFormatError, it never
crashes the process or makes it loop over a bogus length.

Leniency, as TFLite Micro: a per-tensor quantization (one scale) with a stale
`quantized_dimension` is accepted (TFLite Micro's person_detect.tflite).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelFormatError

try:  # the maintained schema bindings
    import tflite as _schema
    from tflite.BuiltinOperator import BuiltinOperator as _BuiltinOperator
    from tflite.BuiltinOptions import BuiltinOptions as _BuiltinOptions
except ImportError as exc:  # pragma: no cover - a dependency of the package
    raise ImportError("tinyrt needs the 'tflite' package (pip install tflite)") from exc

# Limits that keep a hostile file from asking for absurd work or memory.
MAX_TENSORS = 1 << 20
MAX_OPERATORS = 1 << 20
MAX_RANK = 8
MAX_ELEMENTS = 1 << 31

OPCODE_NAMES: dict[int, str] = {
    value: name for name, value in vars(_BuiltinOperator).items() if not name.startswith("_")
}
_OPTIONS_NAMES: dict[int, str] = {
    value: name for name, value in vars(_BuiltinOptions).items() if not name.startswith("_")
}

_DTYPES: dict[int, np.dtype] = {
    0: np.dtype(np.float32),
    1: np.dtype(np.float16),
    2: np.dtype(np.int32),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int64),
    6: np.dtype(np.bool_),
    7: np.dtype(np.int16),
    9: np.dtype(np.int8),
    10: np.dtype(np.float64),
    12: np.dtype(np.uint64),
    15: np.dtype(np.uint32),
    16: np.dtype(np.uint16),
}
_TYPE_NAMES: dict[int, str] = {
    value: name
    for name, value in vars(_schema.TensorType).items()
    if isinstance(value, int) and not name.startswith("_")
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point)."""

    scale: np.ndarray  # float32, one value or one per channel
    zero_point: np.ndarray  # int64, same length as scale
    axis: int  # quantized_dimension, meaningful only when per-channel

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def scalar_scale(self) -> float:
        return float(self.scale[0])

    @property
    def scalar_zero_point(self) -> int:
        return int(self.zero_point[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type_code: int
    dtype: np.dtype | None  # None for types numpy has no dtype for
    quant: Quantization | None
    data: np.ndarray | None  # constant contents (read-only view), or None
    is_variable: bool = False

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type_code, f"type#{self.type_code}")

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def nbytes(self) -> int:
        itemsize = self.dtype.itemsize if self.dtype is not None else 1
        return self.size * itemsize

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass
class Operator:
    index: int
    opcode: str  # e.g. "CONV_2D", or "CUSTOM:<name>"
    version: int
    inputs: tuple[int, ...]  # -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""
    version: int = 0
    num_subgraphs: int = 1
    file_size: int = 0

    def describe_tensor(self, index: int) -> str:
        t = self.tensors[index]
        return f"{t.name!r} {t.type_name}{list(t.shape)}"


def _camel_to_snake(name: str) -> str:
    """DilationHFactor -> dilation_h_factor, StrideW -> stride_w."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


_OPTION_GETTERS: dict[str, list[tuple[str, str]]] = {}


def _option_getters(cls: type) -> list[tuple[str, str]]:
    """Public scalar getters of a generated options table, by introspection."""
    key = cls.__name__
    if key not in _OPTION_GETTERS:
        getters = []
        for attr in dir(cls):
            if attr.startswith("_") or attr in ("Init",) or attr.startswith("GetRootAs"):
                continue
            if attr.endswith(("AsNumpy", "Length", "IsNone", "BufferHasIdentifier")):
                continue
            getters.append((attr, _camel_to_snake(attr)))
        _OPTION_GETTERS[key] = getters
    return _OPTION_GETTERS[key]


def _read_options(op: Any, file_size: int) -> dict[str, Any]:
    options_type = op.BuiltinOptionsType()
    if options_type == 0:
        return {}
    name = _OPTIONS_NAMES.get(options_type)
    if name is None:
        return {}
    cls = getattr(_schema, name, None)
    if cls is not None and not isinstance(cls, type):  # a module of the same name
        cls = getattr(cls, name, None)
    if cls is None:
        return {}
    table = op.BuiltinOptions()
    if table is None:
        return {}
    options = cls()
    options.Init(table.Bytes, table.Pos)
    result: dict[str, Any] = {}
    for getter, key in _option_getters(cls):
        method = getattr(options, getter)
        length_method = getattr(options, getter + "Length", None)
        if length_method is not None:  # a vector: read it whole, bounded
            n = length_method()
            _check_vector_length(n, 4, file_size, f"option {key}")
            if hasattr(options, getter + "AsNumpy"):
                value = getattr(options, getter + "AsNumpy")()
                result[key] = np.array(value).tolist() if not isinstance(value, int) else []
            else:
                result[key] = [method(j) for j in range(n)]
        else:
            try:
                result[key] = method()
            except TypeError:  # getters that need an argument we do not use
                continue
    return result


def _check_vector_length(n: int, item_size: int, file_size: int, what: str) -> None:
    if n < 0 or n * item_size > file_size:
        raise ModelFormatError(
            f"corrupt model: {what} claims {n} entries, more than a {file_size}-byte file can hold"
        )


def _read_quantization(t: Any, shape: tuple[int, ...], file_size: int, where: str) -> Quantization | None:
    q = t.Quantization()
    if q is None:
        return None
    n_scale = q.ScaleLength()
    if n_scale == 0:
        return None
    _check_vector_length(n_scale, 4, file_size, f"{where} scale")
    scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32).copy()
    n_zp = q.ZeroPointLength()
    _check_vector_length(n_zp, 8, file_size, f"{where} zero point")
    if n_zp == 0:
        zero_point = np.zeros(n_scale, dtype=np.int64)
    else:
        zero_point = np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64).copy()
    if zero_point.size == 1 and scale.size > 1:
        zero_point = np.repeat(zero_point, scale.size)
    if zero_point.size != scale.size:
        raise ModelFormatError(
            f"corrupt model: {where} has {scale.size} scales but {zero_point.size} zero points"
        )
    if not np.all(np.isfinite(scale)):
        raise ModelFormatError(f"corrupt model: {where} has a non-finite quantization scale")
    axis = int(q.QuantizedDimension())
    if scale.size > 1:
        if not (0 <= axis < len(shape) and shape[axis] == scale.size):
            # A stale quantized_dimension (TFLite Micro's person_detect has
            # biases that say axis 3): TFLite Micro never reads it for them.
            # Take the one axis whose length matches the scales, if unique.
            matches = [d for d, n in enumerate(shape) if n == scale.size]
            if len(matches) != 1:
                raise ModelFormatError(
                    f"corrupt model: {where} of shape {list(shape)} has {scale.size} "
                    f"per-channel scales on axis {axis}, and no single axis of that length"
                )
            axis = matches[0]
    else:
        # Per-tensor: the axis means nothing; TFLite Micro ignores a stale one.
        axis = 0
    return Quantization(scale=scale, zero_point=zero_point, axis=axis)


def _check_quantization(quant: Quantization, dtype: np.dtype | None, constant: bool, where: str) -> None:
    """Scales and zero points every kernel can use: the planner divides by
    scales and hands zero points to C as int32."""
    if np.any(quant.scale < 0):
        raise ModelFormatError(f"corrupt model: {where} has a negative quantization scale {float(quant.scale.min()):g}")
    if not constant and np.any(quant.scale == 0):
        # Weights may have an all-zero channel with scale 0; a computed
        # tensor's values are divided by its scale.
        raise ModelFormatError(f"corrupt model: {where} has a quantization scale of 0")
    if dtype is not None and dtype.kind in "iu" and dtype.itemsize <= 2:
        lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    else:
        lo, hi = -(1 << 31), (1 << 31) - 1
    bad = quant.zero_point[(quant.zero_point < lo) | (quant.zero_point > hi)]
    if bad.size:
        raise ModelFormatError(
            f"corrupt model: {where} has zero point {int(bad[0])} outside the range [{lo}, {hi}] of its type"
        )


# Inputs an operator cannot run without (the first n; -1 marks an omitted
# optional input).  LiteRT dereferences them unchecked in Prepare: a
# FULLY_CONNECTED without weights segfaults it.  Operators not listed keep
# whatever inputs the file gives (LSTMs, for one, have optional inputs).
_REQUIRED_INPUTS: dict[str, int] = {
    "CONV_2D": 2,
    "DEPTHWISE_CONV_2D": 2,
    "FULLY_CONNECTED": 2,
    "TRANSPOSE_CONV": 3,
    "AVERAGE_POOL_2D": 1,
    "MAX_POOL_2D": 1,
    "ADD": 2,
    "SUB": 2,
    "MUL": 2,
    "SOFTMAX": 1,
    "RESHAPE": 1,
    "SQUEEZE": 1,
    "EXPAND_DIMS": 2,
    "PAD": 2,
    "PADV2": 2,
    "QUANTIZE": 1,
    "DEQUANTIZE": 1,
    "LOGISTIC": 1,
    "TANH": 1,
    "RELU": 1,
    "RELU6": 1,
    "LEAKY_RELU": 1,
    "HARD_SWISH": 1,
    "MEAN": 2,
}


def _check_required_inputs(op: Operator) -> None:
    required = len(op.inputs) if op.opcode == "CONCATENATION" else _REQUIRED_INPUTS.get(op.opcode, 0)
    for k in range(required):
        if k >= len(op.inputs) or op.inputs[k] < 0:
            raise ModelFormatError(
                f"corrupt model: operator {op.index} ({op.opcode}) has no input {k}; it needs {required} "
                f"(inputs {list(op.inputs)})"
            )


def _check_add_rescale(op: Operator, tensors: list[Tensor]) -> None:
    """TFLite's 8-bit ADD/SUB rescale, which its Prepare CHECKs (aborting the
    process) rather than reports: every multiplier strictly inside (0, 1)."""
    if op.opcode not in ("ADD", "SUB") or len(op.inputs) < 2 or not op.outputs or min(op.inputs[:2]) < 0:
        return
    a, b, y = tensors[op.inputs[0]], tensors[op.inputs[1]], tensors[op.outputs[0]]
    if any(t.dtype is None or t.dtype.itemsize != 1 or t.dtype.kind not in "iu" or t.quant is None for t in (a, b, y)):
        return
    s1, s2, so = (float(np.float32(t.quant.scalar_scale)) for t in (a, b, y))
    twice_max = 2 * max(s1, s2)
    if min(s1, s2, so) <= 0 or twice_max >= (1 << 20) * so:
        raise ModelFormatError(
            f"corrupt model: operator {op.index} ({op.opcode}) rescales inputs of scale {s1:g} and {s2:g} "
            f"to an output of scale {so:g}; TFLite needs positive scales with inputs below 2**19 times the output"
        )


def _buffer_view(model: Any, data: memoryview, index: int, file_size: int) -> np.ndarray | None:
    if index == 0:
        return None  # buffer 0 is the empty sentinel by convention
    if not 0 <= index < model.BuffersLength():
        raise ModelFormatError(
            f"corrupt model: buffer index {index} out of range (model has {model.BuffersLength()})"
        )
    buf = model.Buffers(index)
    if buf is None:
        return None
    offset = buf.Offset()
    if offset > 1:  # data stored after the flatbuffer (models above 2 GB)
        size = buf.Size()
        if offset + size > file_size:
            raise ModelFormatError(f"corrupt model: buffer {index} lies past the end of the file")
        return np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
    n = buf.DataLength()
    if n == 0:
        return None
    _check_vector_length(n, 1, file_size, f"buffer {index}")
    return buf.DataAsNumpy()


def parse_model(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> Graph:
    """Parse a .tflite model (path or bytes) into a Graph of its main subgraph."""
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise ModelFormatError(f"cannot read model {os.fspath(source)!r}: {exc.strerror}") from exc
    else:
        raw = bytes(source)
    try:
        return _parse(raw)
    except ModelFormatError:
        raise
    except (IndexError, ValueError, TypeError, OverflowError, UnicodeDecodeError, AttributeError) as exc:
        # The flatbuffers runtime signals out-of-bounds reads this way.
        raise ModelFormatError(f"corrupt model: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # struct.error and friends from the bindings
        if type(exc).__name__ == "error":
            raise ModelFormatError(f"corrupt model: truncated flatbuffer ({exc})") from exc
        raise


def _parse(raw: bytes) -> Graph:
    file_size = len(raw)
    if file_size < 8:
        raise ModelFormatError(f"not a TFLite model: file has only {file_size} bytes")
    if raw[4:8] != b"TFL3":
        raise ModelFormatError(
            f"not a TFLite model: file identifier is {raw[4:8]!r}, expected b'TFL3'"
        )
    root = int.from_bytes(raw[0:4], "little")
    if root + 4 > file_size:
        raise ModelFormatError("corrupt model: root table offset points past the end of the file")
    view = memoryview(raw)
    model = _schema.Model.GetRootAs(raw, 0)

    # Bytes of vectors and strings copied out of the file.  The tables of a
    # well-formed file do not overlap, so this stays below the file size; a
    # hostile file that points many tables at one long vector would make the
    # parse quadratic in time and memory (a 300 KB file asking for GBs).
    copied = 0

    def charge(nbytes: int, what: str) -> None:
        nonlocal copied
        copied += nbytes
        if copied > 2 * file_size + 4096:
            raise ModelFormatError(
                f"corrupt model: {what} reuses bytes other tables hold "
                f"({copied} bytes of tables read from a {file_size}-byte file)"
            )

    n_codes = model.OperatorCodesLength()
    _check_vector_length(n_codes, 4, file_size, "operator code table")
    opcodes: list[tuple[str, int]] = []
    for i in range(n_codes):
        code = model.OperatorCodes(i)
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = OPCODE_NAMES.get(builtin, f"BUILTIN#{builtin}")
        if name == "CUSTOM":
            custom = code.CustomCode()
            charge(len(custom or b""), f"operator code {i}")
            name = "CUSTOM:" + (custom.decode("utf-8", "replace") if custom else "?")
        opcodes.append((name, int(code.Version())))

    n_sub = model.SubgraphsLength()
    if n_sub < 1:
        raise ModelFormatError("corrupt model: no subgraph")
    _check_vector_length(n_sub, 4, file_size, "subgraph table")
    sub = model.Subgraphs(0)

    n_tensors = sub.TensorsLength()
    _check_vector_length(n_tensors, 4, file_size, "tensor table")
    if n_tensors > MAX_TENSORS:
        raise ModelFormatError(f"model has {n_tensors} tensors; tinyrt accepts at most {MAX_TENSORS}")
    tensors: list[Tensor] = []
    for i in range(n_tensors):
        t = sub.Tensors(i)
        raw_name = t.Name() or b""
        try:  # flatbuffers strings are UTF-8; LiteRT's Python API decodes them strictly
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFormatError(f"corrupt model: tensor {i} has a name that is not UTF-8: {raw_name[:40]!r}") from None
        rank = t.ShapeLength()
        if rank > MAX_RANK:
            raise ModelFormatError(f"tensor {i} ({name!r}) has rank {rank}; at most {MAX_RANK} is supported")
        charge(len(raw_name) + 4 * rank, f"tensor {i}")
        shape = tuple(int(d) for d in (t.ShapeAsNumpy() if rank else ()))
        if any(d < 0 for d in shape):
            # -1 marks a dynamic dimension; TFLite resolves it to 1 for batch.
            if shape and shape[0] == -1 and all(d >= 0 for d in shape[1:]):
                shape = (1,) + shape[1:]
            else:
                raise ModelFormatError(f"tensor {i} ({name!r}) has a negative dimension {list(shape)}")
        n_elem = math.prod(shape)
        if n_elem > MAX_ELEMENTS:
            raise ModelFormatError(
                f"tensor {i} ({name!r}) has shape {list(shape)} with {n_elem} elements; "
                f"the limit is {MAX_ELEMENTS}"
            )
        type_code = int(t.Type())
        if type_code not in _TYPE_NAMES:
            raise ModelFormatError(f"corrupt model: tensor {i} ({name!r}) has unknown type code {type_code}")
        dtype = _DTYPES.get(type_code)
        quant = _read_quantization(t, shape, file_size, f"tensor {i} ({name!r})")
        if quant is not None:
            charge(quant.scale.nbytes, f"tensor {i} ({name!r}) quantization")
        data_raw = _buffer_view(model, view, int(t.Buffer()), file_size)
        if quant is not None:
            _check_quantization(quant, dtype, data_raw is not None, f"tensor {i} ({name!r})")
        data = None
        if data_raw is not None:
            if dtype is None:
                data = data_raw  # e.g. INT4 packed: kept as bytes
            else:
                expected = n_elem * dtype.itemsize
                if data_raw.nbytes != expected:
                    raise ModelFormatError(
                        f"tensor {i} ({name!r}) of shape {list(shape)} {_TYPE_NAMES.get(type_code)} needs "
                        f"{expected} bytes but its buffer holds {data_raw.nbytes}"
                    )
                data = np.frombuffer(data_raw, dtype=dtype).reshape(shape)
        tensors.append(
            Tensor(
                index=i,
                name=name,
                shape=shape,
                type_code=type_code,
                dtype=dtype,
                quant=quant,
                data=data,
                is_variable=bool(t.IsVariable()),
            )
        )

    def _indices(arr_len: int, getter: Any, what: str, allow_missing: bool) -> tuple[int, ...]:
        _check_vector_length(arr_len, 4, file_size, what)
        charge(4 * arr_len, what)
        out = tuple(int(getter(j)) for j in range(arr_len))
        for idx in out:
            if idx == -1 and allow_missing:
                continue
            if not 0 <= idx < n_tensors:
                raise ModelFormatError(f"corrupt model: {what} refers to tensor {idx}; the model has {n_tensors}")
        return out

    inputs = _indices(sub.InputsLength(), sub.Inputs, "subgraph inputs", False)
    outputs = _indices(sub.OutputsLength(), sub.Outputs, "subgraph outputs", False)

    n_ops = sub.OperatorsLength()
    _check_vector_length(n_ops, 4, file_size, "operator list")
    if n_ops > MAX_OPERATORS:
        raise ModelFormatError(f"model has {n_ops} operators; at most {MAX_OPERATORS} are supported")
    operators: list[Operator] = []
    for i in range(n_ops):
        op = sub.Operators(i)
        code_index = int(op.OpcodeIndex())
        if not 0 <= code_index < len(opcodes):
            raise ModelFormatError(
                f"corrupt model: operator {i} uses opcode {code_index}; the table has {len(opcodes)}"
            )
        name, version = opcodes[code_index]
        op_inputs = _indices(op.InputsLength(), op.Inputs, f"operator {i} ({name}) inputs", True)
        op_outputs = _indices(op.OutputsLength(), op.Outputs, f"operator {i} ({name}) outputs", False)
        options = _read_options(op, file_size)
        charge(4 * sum(len(v) for v in options.values() if isinstance(v, list)), f"operator {i} ({name}) options")
        operators.append(
            Operator(
                index=i,
                opcode=name,
                version=version,
                inputs=op_inputs,
                outputs=op_outputs,
                options=options,
            )
        )

    # Every operator input must hold data when the operator runs: a graph
    # input, a constant, a variable or an earlier operator's output.  (LiteRT
    # reads such a tensor uninitialised or fails in invoke().)
    written = set(inputs)
    for op in operators:
        _check_required_inputs(op)
        _check_add_rescale(op, tensors)
        for idx in op.inputs:
            t = tensors[idx] if idx >= 0 else None
            if t is not None and idx not in written and t.data is None and not t.is_variable and t.size:
                raise ModelFormatError(
                    f"corrupt model: operator {op.index} ({op.opcode}) reads tensor {idx} "
                    f"{t.name!r} {t.type_name}{list(t.shape)}, which has no buffer, is not a graph input "
                    f"and no earlier operator writes it"
                )
        written.update(op.outputs)

    description = model.Description()
    return Graph(
        tensors=tensors,
        operators=operators,
        inputs=inputs,
        outputs=outputs,
        description=description.decode("utf-8", "replace") if description else "",
        version=int(model.Version()),
        num_subgraphs=n_sub,
        file_size=file_size,
    )
