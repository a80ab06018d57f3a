"""python -m runtime.export MODEL --board NAME -o DIR: a model as C sources for a firmware project.

The export is the plan the C backend runs, written out as C (TinyEngine /
X-CUBE-AI style: generated code, no interpreter, no malloc):

    DIR/model.h       model_invoke(), I/O sizes, quantization, arena size
    DIR/model.c       the static arena and model_invoke(): one direct kernel
                      call per plan step, with arena offsets baked in
    DIR/model_data.c  weights, biases, multipliers, tables and the kernels'
                      parameter structs, all `const` (they stay in flash)
    DIR/README.md     how to drop it into a firmware project

The only other sources it needs are tinyrt's csrc/ (csrc/host/ excluded:
that is plan-time code for the Python extension).

Parameter structs are written generically from their cffi types: every field
is read back and emitted as a C99 designated initialiser, and every pointer
is mapped back to the numpy array (or cffi buffer) the plan keeps it in,
which becomes a `static const` array.  Only the call of each kernel is
per-kind: KERNEL_CALLS below has one line per trt_op_kind, so a new kernel
kind is one new entry (an unknown kind fails with a message saying so).

Exit codes: 0 written, 1 the model does not fit the board (nothing written),
2 bad input (unreadable model, unknown board, unsupported operator, output
directory in the way).
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._native import ffi
from .errors import TinyRTError
from .graph import Graph, parse_model
from .plan import Plan, build_plan

EXIT_OK, EXIT_DOES_NOT_FIT, EXIT_USAGE = 0, 1, 2

# How each kind of step is called.  Placeholders: {p} the parameter struct,
# {in0} {in1} the first two operands, {inputs} all operands as a comma list,
# {n_inputs}, {out} the output, {scratch} the scratch buffer or NULL, {extra}
# the step's extra word.  Operands are `const uint8_t *` / `uint8_t *`
# expressions, hence the casts.  Keys are trt_op_kind names (tinyrt.h).
KERNEL_CALLS: dict[str, str] = {
    "TRT_OP_CONV2D": "trt_conv2d_s8(&{p}, (const int8_t *){in0}, (int8_t *){out}, {scratch});",
    "TRT_OP_DEPTHWISE_CONV2D": "trt_depthwise_conv2d_s8(&{p}, (const int8_t *){in0}, (int8_t *){out}, {scratch});",
    "TRT_OP_FULLY_CONNECTED": "trt_fully_connected_s8(&{p}, (const int8_t *){in0}, (int8_t *){out});",
    "TRT_OP_AVG_POOL": "trt_avg_pool_s8(&{p}, (const int8_t *){in0}, (int8_t *){out});",
    "TRT_OP_MAX_POOL": "trt_max_pool_s8(&{p}, (const int8_t *){in0}, (int8_t *){out});",
    "TRT_OP_ADD": "trt_add_s8(&{p}, (const int8_t *){in0}, (const int8_t *){in1}, (int8_t *){out});",
    "TRT_OP_MUL": "trt_mul_s8(&{p}, (const int8_t *){in0}, (const int8_t *){in1}, (int8_t *){out});",
    "TRT_OP_SOFTMAX": "trt_softmax_s8(&{p}, (const int8_t *){in0}, (int8_t *){out});",
    "TRT_OP_LUT": "trt_lut_s8(&{p}, (const int8_t *){in0}, (int8_t *){out});",
    "TRT_OP_MEAN": "trt_mean_s8(&{p}, (const int8_t *){in0}, (int8_t *){out});",
    "TRT_OP_PAD": "trt_pad_s8(&{p}, (const int8_t *){in0}, (int8_t *){out});",
    "TRT_OP_CONCAT": "{{ const int8_t *const in[{n_inputs}] = {{{inputs_s8}}}; trt_concat_s8(&{p}, in, (int8_t *){out}); }}",
    "TRT_OP_QUANTIZE_F32_S8": "trt_quantize_f32_s8(&{p}, (const float *)(const void *){in0}, (int8_t *){out});",
    "TRT_OP_QUANTIZE_F32_U8": "trt_quantize_f32_u8(&{p}, (const float *)(const void *){in0}, {out});",
    "TRT_OP_REQUANTIZE": "trt_requantize_8(&{p}, {in0}, ({extra}) & 1, {out}, (({extra}) >> 1) & 1);",
    "TRT_OP_DEQUANTIZE_S8": "trt_dequantize_s8_f32(&{p}, (const int8_t *){in0}, (float *)(void *){out});",
    "TRT_OP_DEQUANTIZE_U8": "trt_dequantize_u8_f32(&{p}, {in0}, (float *)(void *){out});",
    "TRT_OP_COPY": "memcpy({out}, {in0}, {extra});",
    "TRT_OP_SPARSE_FULLY_CONNECTED": "trt_sparse_fully_connected_s8(&{p}, (const int8_t *){in0}, (int8_t *){out});",
    "TRT_OP_SPARSE_CONV2D": "trt_sparse_conv2d_s8(&{p}, (const int8_t *){in0}, (int8_t *){out}, {scratch});",
}

# Pointer fields holding a copy of the weights in a host SIMD layout (the plan
# is built on the host; tinyrt.h: "Optional (NULL on microcontrollers)"), in
# any parameter struct.  Exported as NULL: the kernels then use the portable
# layout, which every target has, and the copy does not take flash.
HOST_SIMD_FIELDS: frozenset[str] = frozenset({"packed_weights", "packed_k4", "bias_k4", "rescale_k4"})

# C element type of each numpy dtype a constant can have.
_C_TYPES = {
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "uint16": "uint16_t",
    "int32": "int32_t",
    "uint32": "uint32_t",
    "float32": "float",
    "float64": "double",
}
_NP_TYPES = {c: np.dtype(n) for n, c in _C_TYPES.items()}

ARENA_ALIGNMENT = 16  # the planner keeps every offset 16-byte aligned
VALUES_PER_LINE = 24


class ExportError(TinyRTError):
    """The plan cannot be written as C (an unknown step kind, a pointer the plan does not own...)."""


class DoesNotFitError(TinyRTError):
    """The model needs more flash or RAM than the board has."""


@dataclass
class TensorIO:
    """A graph input or output as the exported code sees it."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name
    c_type: str
    nbytes: int
    offset: int  # in the arena
    scale: float
    zero_point: int


@dataclass
class Export:
    """What export_model() wrote (or would write: `files` maps names to text)."""

    name: str
    files: dict[str, str]
    arena_bytes: int
    inputs: list[TensorIO]
    outputs: list[TensorIO]
    num_steps: int
    step_ops: list[str]  # "CONV_2D" ... per step
    const_bytes: int  # bytes of const arrays and parameter structs (structs at host sizes)
    array_bytes: int  # bytes of the const arrays alone (the same on every target)
    plan: Plan = field(repr=False)

    @property
    def single_io(self) -> bool:
        return len(self.inputs) == 1 and len(self.outputs) == 1


def _kind_names() -> dict[int, str]:
    return dict(ffi.typeof("trt_op_kind").elements)


def _c_float(value: float, ctype: str, where: str) -> str:
    if not math.isfinite(value):
        raise ExportError(f"{where}: {value} has no C literal; the plan should not contain non-finite constants")
    text = float(value).hex()  # exact: C99 hexadecimal floating constants
    return text + "f" if ctype == "float" else text


def _c_int(value: int) -> str:
    # -2147483648 is not an int literal in C (it is -(2147483648), a long).
    if value == -(1 << 31):
        return "(-2147483647 - 1)"
    return str(int(value))


def _format_values(arr: np.ndarray, ctype: str, where: str) -> Iterator[str]:
    flat = arr.reshape(-1)
    if ctype in ("float", "double"):
        items = [_c_float(float(v), ctype, where) for v in flat.tolist()]
    elif flat.dtype == np.int32:
        items = [_c_int(v) for v in flat.tolist()]
    else:
        items = [str(v) for v in flat.tolist()]
    for start in range(0, len(items), VALUES_PER_LINE):
        yield "    " + ", ".join(items[start : start + VALUES_PER_LINE]) + ","


@dataclass
class _Block:
    """A buffer the plan owns (numpy array or cffi allocation) that pointers may point into."""

    base: int
    nbytes: int
    raw: bytes
    symbol: str = ""
    ctype: str = ""


class _Writer:
    def __init__(self, plan: Plan, name: str):
        self.plan = plan
        self.name = name
        self.blocks: list[_Block] = []
        self.data_lines: list[str] = []
        self.decls: list[str] = []  # extern declarations model.c needs
        self.const_bytes = 0
        self.array_bytes = 0
        self._kinds = _kind_names()

    # -- memory the plan owns ------------------------------------------------
    def collect_blocks(self) -> None:
        seen: set[int] = set()

        def add(base: int, nbytes: int, read: Any) -> None:
            if nbytes <= 0 or base in seen:
                return
            seen.add(base)
            self.blocks.append(_Block(base, nbytes, read()))

        def visit(obj: Any) -> None:
            if isinstance(obj, np.ndarray):
                arr = obj
                add(arr.ctypes.data, arr.nbytes, lambda: np.ascontiguousarray(arr).tobytes())
            elif isinstance(obj, ffi.CData):
                t = ffi.typeof(obj)
                if t.kind in ("pointer", "array"):
                    try:
                        size = ffi.sizeof(obj)
                    except (TypeError, ffi.error):
                        return
                    base = int(ffi.cast("uintptr_t", obj))
                    add(base, size, lambda: ffi.buffer(obj, size)[:])

        for step in self.plan.steps:
            for obj in step.keep:
                visit(obj)
        for obj in self.plan._keep:
            visit(obj)

    def _block_for(self, address: int, where: str) -> _Block:
        for block in self.blocks:
            if block.base <= address < block.base + block.nbytes:
                return block
        raise ExportError(f"{where} points to memory the plan does not keep; the exporter cannot emit it")

    def pointer(self, value: Any, item: Any, symbol: str, where: str) -> str:
        """The C expression for a pointer field: NULL, or a const array (emitted once) plus an offset."""
        address = int(ffi.cast("uintptr_t", value))
        if address == 0:
            return "NULL"
        if item.kind == "struct":
            struct_symbol = f"{symbol}_v"
            body = self.struct_init(ffi.cast(f"{item.cname} *", value)[0], item, struct_symbol, where)
            self.data_lines.append(f"static const {item.cname} {struct_symbol} = {body};\n")
            self.const_bytes += ffi.sizeof(item)
            return f"&{struct_symbol}"
        if item.kind != "primitive" or item.cname not in _NP_TYPES:
            raise ExportError(f"{where}: pointers to {item.cname} are not supported by the exporter")
        block = self._block_for(address, where)
        itemsize = ffi.sizeof(item)
        if block.symbol and block.ctype != item.cname:
            raise ExportError(f"{where}: one buffer is read as both {block.ctype} and {item.cname}")
        if (address - block.base) % itemsize or block.nbytes % itemsize:
            raise ExportError(f"{where}: a {item.cname} pointer is not aligned within its buffer")
        if not block.symbol:
            block.symbol, block.ctype = symbol, item.cname
            values = np.frombuffer(block.raw, dtype=_NP_TYPES[item.cname])
            self.emit_array(symbol, item.cname, values, where)
        index = (address - block.base) // itemsize
        return block.symbol if index == 0 else f"({block.symbol} + {index})"

    def emit_array(self, symbol: str, ctype: str, values: np.ndarray, where: str, static: bool = True) -> None:
        storage = "static const" if static else "const"
        self.data_lines.append(f"{storage} {ctype} {symbol}[{max(values.size, 1)}] TRT_EXPORT_ALIGNED = {{")
        self.data_lines.extend(_format_values(values, ctype, where) if values.size else ["    0,"])
        self.data_lines.append("};\n")
        self.const_bytes += values.nbytes
        self.array_bytes += values.nbytes

    # -- parameter structs ----------------------------------------------------
    def value(self, value: Any, ctype: Any, symbol: str, where: str) -> str:
        if ctype.kind == "struct":
            return self.struct_init(value, ctype, symbol, where)
        if ctype.kind == "array":
            items = [self.value(value[k], ctype.item, f"{symbol}_{k}", f"{where}[{k}]") for k in range(ctype.length)]
            return "{" + ", ".join(items) + "}"
        if ctype.kind == "pointer":
            return self.pointer(value, ctype.item, symbol, where)
        if ctype.kind == "enum":
            return _c_int(int(ffi.cast("int", value)))
        if ctype.kind == "primitive":
            if ctype.cname in ("float", "double"):
                return _c_float(float(value), ctype.cname, where)
            if ctype.cname in ("char",):
                return str(ord(value))
            return _c_int(int(value))
        raise ExportError(f"{where}: fields of type {ctype.cname} are not supported by the exporter")

    def struct_init(self, struct: Any, ctype: Any, symbol: str, where: str) -> str:
        parts = []
        for fname, f in ctype.fields:
            if fname in HOST_SIMD_FIELDS and f.type.kind == "pointer":
                parts.append(f".{fname} = NULL")
                continue
            text = self.value(getattr(struct, fname), f.type, f"{symbol}_{fname}", f"{where}.{fname}")
            parts.append(f".{fname} = {text}")
        return "{" + ", ".join(parts) + "}"

    # -- steps -----------------------------------------------------------------
    def step_call(self, i: int) -> list[str]:
        plan, graph, name = self.plan, self.plan.graph, self.name
        step = plan.steps[i]
        op = graph.operators[plan.step_ops[i]]
        kind = self._kinds.get(step.kind, f"kind {step.kind}")
        where = f"step {i} (operator {op.index}, {op.opcode}, {kind})"
        template = KERNEL_CALLS.get(kind)
        if template is None:
            raise ExportError(
                f"{where}: the exporter has no call for {kind}; add one line for it to runtime.export.KERNEL_CALLS"
            )
        ptype = ffi.typeof(step.params)
        if ptype.kind != "pointer" or ptype.item.kind != "struct":
            raise ExportError(f"{where}: parameters are {ptype.cname}, expected a pointer to a struct")
        struct_t = ptype.item
        p_symbol = f"{name}_p{i}"
        init = self.struct_init(step.params[0], struct_t, f"{name}_s{i}", where)
        self.data_lines.append(f"const {struct_t.cname} {p_symbol} = {init};\n")
        self.decls.append(f"extern const {struct_t.cname} {p_symbol};")
        self.const_bytes += ffi.sizeof(struct_t)

        operands = []
        for k, operand in enumerate(step.inputs):
            if isinstance(operand, (int, np.integer)):
                operands.append(f"(a + {plan.tensor_offset[int(operand)]})")
            else:
                arr = np.ascontiguousarray(operand)
                ctype = _C_TYPES.get(arr.dtype.name)
                if ctype is None:
                    raise ExportError(f"{where}: constant operand {k} has dtype {arr.dtype}, which has no C type here")
                symbol = f"{name}_s{i}_in{k}"
                self.emit_array(symbol, ctype, arr, f"{where} operand {k}", static=False)
                self.decls.append(f"extern const {ctype} {symbol}[];")
                operands.append(f"((const uint8_t *){symbol})")
        scratch = plan.scratch_offset[i]
        fields = {
            "p": p_symbol,
            "in0": operands[0] if operands else "NULL",
            "in1": operands[1] if len(operands) > 1 else "NULL",
            "inputs": ", ".join(operands),
            "inputs_s8": ", ".join(f"(const int8_t *){o}" for o in operands),
            "n_inputs": str(max(len(operands), 1)),
            "out": f"(a + {plan.tensor_offset[step.output]})",
            "scratch": f"(void *)(a + {scratch})" if scratch >= 0 else "NULL",
            "extra": str(int(step.extra)),
        }
        out_t = graph.tensors[step.output]
        return [
            f"    /* step {i}: operator {op.index} {op.opcode} -> {comment_text(repr(out_t.name), 60)} {list(out_t.shape)} */",
            f"    TRT_STEP_HOOK({i});",
            "    " + template.format(**fields),
        ]


def _io(graph: Graph, plan: Plan, index: int) -> TensorIO:
    t = graph.tensors[index]
    assert t.dtype is not None
    scale, zp = 0.0, 0
    if t.quant is not None and not t.quant.per_channel:
        scale, zp = float(t.quant.scalar_scale), int(t.quant.scalar_zero_point)
    return TensorIO(
        name=t.name,
        shape=tuple(int(d) for d in t.shape),
        dtype=t.dtype.name,
        c_type=_C_TYPES[t.dtype.name],
        nbytes=int(t.nbytes),
        offset=int(plan.tensor_offset[index]),
        scale=scale,
        zero_point=zp,
    )


def comment_text(text: str, limit: int = 80) -> str:
    """Text from the model (tensor names, file names) made safe for a C comment:
    printable ASCII, no comment delimiters, at most `limit` characters."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text).replace("*/", "*?").replace("/*", "?*")
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _c_identifier(name: str) -> str:
    if not name or not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"--name {name!r} must be a C identifier (letters, digits, _; not starting with a digit)")
    return name


def generate(
    model: str | Path | bytes | Graph,
    name: str = "model",
    board: Any = None,
    fc_fixed_point: bool = False,
    source: str | None = None,
    sparse: str = "auto",
    choices: Any = None,
) -> Export:
    """The export as text, nothing written.  model: a path, .tflite bytes or a parsed Graph.
    sparse: "auto" | "off" | "force", as runtime.load(): which pruned layers
    run sparse kernels (their weights are then emitted packed).
    choices: as build_plan's, memory choices instead of the smallest-arena
    search (runtime.emulation.layers measures one layer of a model with the
    choices the whole model's plan made for it)."""
    name = _c_identifier(name)
    if isinstance(model, Graph):
        graph = model
    else:
        graph = parse_model(model if isinstance(model, (bytes, bytearray)) else Path(model))
    if source is None:
        source = Path(model).name if isinstance(model, (str, Path)) else "a .tflite model"
    extra = {"choices": choices} if choices is not None else {}
    plan = build_plan(graph, materialize=True, fc_fixed_point=fc_fixed_point, **_plan_args(sparse), **extra)
    w = _Writer(plan, name)
    w.collect_blocks()
    body: list[str] = []
    for i in range(len(plan.steps)):
        body += w.step_call(i)
    body.append(f"    TRT_STEP_HOOK({len(plan.steps)});")
    inputs = [_io(graph, plan, i) for i in graph.inputs]
    outputs = [_io(graph, plan, i) for i in graph.outputs]
    up = name.upper()
    board_note = f" for {board.name} ({board.core})" if board is not None else ""
    banner = (
        f"/* Generated by tinyrt (python -m runtime.export) from {comment_text(source)}{comment_text(board_note)}.\n"
        " * Do not edit: re-export instead. */\n"
    )
    files = {
        f"{name}.h": _header(name, up, banner, inputs, outputs, plan),
        f"{name}.c": _model_c(name, up, banner, w.decls, body, inputs, outputs),
        f"{name}_data.c": _data_c(name, banner, w.data_lines),
    }
    step_ops = [graph.operators[i].opcode for i in plan.step_ops]
    return Export(
        name=name,
        files=files,
        arena_bytes=plan.arena_bytes,
        inputs=inputs,
        outputs=outputs,
        num_steps=len(plan.steps),
        step_ops=step_ops,
        const_bytes=w.const_bytes,
        array_bytes=w.array_bytes,
        plan=plan,
    )


def _plan_args(sparse: str) -> dict[str, Any]:
    """build_plan options for a plan that leaves this machine: the sparse
    choice, and no host SIMD weight layouts (host_layouts=False)."""
    params = inspect.signature(build_plan).parameters
    args: dict[str, Any] = {"host_layouts": False} if "host_layouts" in params else {}
    if "sparse" in params:
        # Firmware runs the portable sparse kernels: choose with their costs,
        # not this host's SIMD ones.
        from .sparse import SparsePolicy

        args["sparse"] = SparsePolicy(sparse, isa="portable")
    elif sparse == "force":
        raise ExportError("this tinyrt has no sparse kernels (sparse='force')")
    return args


def _tensor_comment(t: TensorIO) -> str:
    q = f"scale {t.scale!r}, zero point {t.zero_point}" if t.scale else "not quantized"
    return f"{comment_text(repr(t.name), 60)} {t.dtype} {list(t.shape)} ({q})"


def _header(name: str, up: str, banner: str, inputs: list[TensorIO], outputs: list[TensorIO], plan: Plan) -> str:
    lines = [
        banner,
        f"#ifndef {up}_H",
        f"#define {up}_H",
        "",
        "#include <stdint.h>",
        "",
        '#ifdef __cplusplus\nextern "C" {\n#endif',
        "",
        f"/* The activation arena (static, inside {name}.c). */",
        f"#define {up}_ARENA_BYTES {max(plan.arena_bytes, 1)}",
        f"#define {up}_NUM_STEPS {len(plan.steps)}",
        f"#define {up}_NUM_INPUTS {len(inputs)}",
        f"#define {up}_NUM_OUTPUTS {len(outputs)}",
        "",
    ]
    for kind, tensors in (("INPUT", inputs), ("OUTPUT", outputs)):
        for k, t in enumerate(tensors):
            lines.append(f"/* {kind.lower()} {k}: {_tensor_comment(t)} */")
            lines.append(f"#define {up}_{kind}{k}_BYTES {t.nbytes}")
            if t.scale:
                lines.append(f"#define {up}_{kind}{k}_SCALE {_c_float(t.scale, 'float', t.name)}")
                lines.append(f"#define {up}_{kind}{k}_ZERO_POINT {t.zero_point}")
        lines.append("")
    if len(inputs) == 1 and len(outputs) == 1:
        lines += [
            f"#define {up}_INPUT_BYTES {up}_INPUT0_BYTES",
            f"#define {up}_OUTPUT_BYTES {up}_OUTPUT0_BYTES",
            "",
            "/* One inference: copies `in` into the arena, runs every kernel in plan",
            " * order, copies the result to `out`.  Not reentrant (one static arena). */",
            f"void {name}_invoke(const {inputs[0].c_type} *in, {outputs[0].c_type} *out);",
            "",
        ]
    else:
        lines += [
            f"/* {len(inputs)} inputs / {len(outputs)} outputs: use {name}_invoke_io(). */",
            "",
        ]
    lines += [
        "/* Any number of inputs and outputs: inputs[k] points to input k's bytes,",
        " * outputs[k] receives output k.  Returns 0. */",
        f"int {name}_invoke_io(const void *const *inputs, void *const *outputs);",
        "",
        '#ifdef __cplusplus\n}\n#endif',
        "",
        f"#endif /* {up}_H */",
        "",
    ]
    return "\n".join(lines)


_ALIGN_MACRO = """#ifndef TRT_EXPORT_ALIGNED
#if defined(__GNUC__) || defined(__clang__)
#define TRT_EXPORT_ALIGNED __attribute__((aligned(4)))
#else
#define TRT_EXPORT_ALIGNED
#endif
#endif
"""


def _data_c(name: str, banner: str, data_lines: list[str]) -> str:
    return "\n".join(
        [
            banner,
            "/* Constant data: weights, folded biases, per-channel multipliers and",
            " * shifts, tables and the kernels' parameter structs.  All `const`, so a",
            " * microcontroller build keeps them in flash. */",
            "#include <stddef.h>",
            "#include <stdint.h>",
            "",
            '#include "tinyrt.h"',
            "",
            "/* Word alignment lets kernels load weights 4 bytes at a time. */",
            _ALIGN_MACRO,
            *data_lines,
        ]
    )


def _model_c(
    name: str,
    up: str,
    banner: str,
    decls: list[str],
    body: list[str],
    inputs: list[TensorIO],
    outputs: list[TensorIO],
) -> str:
    lines = [
        banner,
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <string.h>",
        "",
        '#include "tinyrt.h"',
        f'#include "{name}.h"',
        "",
        "/* A hook before each step and after the last (argument: the step index),",
        " * e.g. to time layers.  Empty unless defined when compiling this file. */",
        "#ifndef TRT_STEP_HOOK",
        "#define TRT_STEP_HOOK(step) ((void)0)",
        "#endif",
        "",
        "#if defined(__GNUC__) || defined(__clang__)",
        f"#define {up}_ARENA_ALIGNED __attribute__((aligned({ARENA_ALIGNMENT})))",
        "#else",
        f"#define {up}_ARENA_ALIGNED",
        "#endif",
        "",
        *decls,
        "",
        "/* Every activation, scratch buffer and graph input/output lives here, at",
        " * offsets the planner chose from tensor lifetimes. */",
        f"static uint8_t {name}_arena[{up}_ARENA_BYTES] {up}_ARENA_ALIGNED;",
        "",
        f"static void {name}_run(uint8_t *a) {{",
        "    (void)a; /* a model of views alone (RESHAPE) calls no kernel */",
        *body,
        "}",
        "",
        f"int {name}_invoke_io(const void *const *inputs, void *const *outputs) {{",
    ]
    for k, t in enumerate(inputs):
        lines.append(f"    memcpy({name}_arena + {t.offset}, inputs[{k}], {t.nbytes});")
    lines.append(f"    {name}_run({name}_arena);")
    for k, t in enumerate(outputs):
        lines.append(f"    memcpy(outputs[{k}], {name}_arena + {t.offset}, {t.nbytes});")
    lines += ["    return 0;", "}", ""]
    if len(inputs) == 1 and len(outputs) == 1:
        lines += [
            f"void {name}_invoke(const {inputs[0].c_type} *in, {outputs[0].c_type} *out) {{",
            "    const void *inputs[1];",
            "    void *outputs[1];",
            "    inputs[0] = in;",
            "    outputs[0] = out;",
            f"    (void){name}_invoke_io(inputs, outputs);",
            "}",
            "",
        ]
    return "\n".join(lines)


def _readme(exp: Export, board: Any, source: str) -> str:
    n, up = exp.name, exp.name.upper()
    io = exp.inputs[0], exp.outputs[0]
    signature = (
        f"{n}_invoke(const {io[0].c_type} *in, {io[1].c_type} *out)"
        if exp.single_io
        else f"{n}_invoke_io(const void *const *inputs, void *const *outputs)"
    )
    flags = _suggested_flags(board)
    example_in = f"static {io[0].c_type} in[{up}_INPUT0_BYTES / sizeof({io[0].c_type})];"
    example_out = f"static {io[1].c_type} out[{up}_OUTPUT0_BYTES / sizeof({io[1].c_type})];"
    call = f"{n}_invoke(in, out);" if exp.single_io else f"{n}_invoke_io(inputs, outputs);"
    ins = "\n".join(f"- input {k}: {_tensor_comment(t)}, {t.nbytes} bytes" for k, t in enumerate(exp.inputs))
    outs = "\n".join(f"- output {k}: {_tensor_comment(t)}, {t.nbytes} bytes" for k, t in enumerate(exp.outputs))
    return f"""# {source} as C ({n}.c, {n}_data.c, {n}.h)

Generated by `python -m runtime.export` for {board.title} ({board.name}, {board.core}).
Re-export rather than edit.

{ins}
{outs}
- activation arena: {exp.arena_bytes:,} bytes of static RAM (`{up}_ARENA_BYTES`)
- constants: {exp.const_bytes:,} bytes of `const` data (weights, biases, multipliers,
  tables, parameter structs), which stay in flash
- {exp.num_steps} kernel calls, in plan order; no interpreter, no malloc

## Drop it into a firmware project

1. Add these three files and tinyrt's kernels to the build: every `csrc/*.c` file
   (not `csrc/host/`, which is plan-time code for the Python extension), with
   `csrc/` and `csrc/include/` on the include path. From a pip install they are
   in `python -c "import runtime.paths as p; print(p.csrc_dir())"`.
2. Compile as C99. For {board.core}: `{flags}`.
   Add `-ffunction-sections -fdata-sections` and link with `-Wl,--gc-sections`
   so only the kernels this model calls end up in flash.
3. The kernels need nothing from the C library but `memcpy` and `memset`, and
   the compiler's support library (libgcc) for 64-bit arithmetic.
4. Call it:

```c
#include "{n}.h"

{example_in}
{example_out}

void run_once(void) {{
    /* fill `in` ({"quantized: q = round(x / scale) + zero_point" if io[0].scale else "raw values"}) */
    {call}
}}
```

`{signature}` is not reentrant: the arena is one static buffer. To time layers,
compile `{n}.c` with `-D'TRT_STEP_HOOK(i)=my_hook(i)'`; it is called before each
step and after the last.

Check the fit before flashing: `python -m runtime.validate MODEL --board {board.name}`
(add `--emulate` to run this very code under QEMU and measure flash, RAM, stack and
instructions).
"""


def _suggested_flags(board: Any) -> str:
    from .emulation.targets import compile_flags

    try:
        return " ".join(["-std=c99", *compile_flags(board)])
    except TinyRTError:
        return "-std=c99 -O2"


def fit_problems(report: dict[str, Any]) -> list[str]:
    """Flash and RAM budgets a validate report fails (latency is not a reason to refuse an export)."""
    problems = []
    for b in report["budgets"]:
        if b["name"] in ("flash", "ram") and not b["ok"]:
            problems.append(f"{b['name']}: needs {b['used']:,} bytes, the board has {b['limit']:,} available")
    return problems


def export_model(
    model: str | Path,
    out_dir: str | Path,
    board: Any,
    name: str = "model",
    fc_fixed_point: bool = False,
    force: bool = False,
    check_fit: bool = True,
    sparse: str = "auto",
) -> Export:
    """Write the export to out_dir, all or nothing.

    board: a name, a .toml path or a Board.  Raises DoesNotFitError (flash or
    RAM over the board's budget, per runtime.validate) unless check_fit is
    False, and FileExistsError if out_dir is a non-empty directory and force
    is False; in both cases nothing is written."""
    from .boards import Board, load_board
    from .validate import report

    b = board if isinstance(board, Board) else load_board(board)
    model = Path(model)
    if check_fit:
        problems = fit_problems(report(model, b))
        if problems:
            raise DoesNotFitError(f"{model.name} does not fit {b.name}: " + "; ".join(problems))
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty (use --force to replace it)")
    exp = generate(model, name=name, board=b, fc_fixed_point=fc_fixed_point, source=model.name, sparse=sparse)
    files = dict(exp.files)
    files["README.md"] = _readme(exp, b, model.name)
    _write_atomically(out, files)
    return exp


def _write_atomically(out: Path, files: dict[str, str]) -> None:
    """Write every file into a sibling temporary directory, then rename it into
    place, so an interrupted or failed export never leaves a partial DIR."""
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        for fname, text in files.items():
            (tmp / fname).write_text(text)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
            os.rename(out, old / out.name)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.export", description=__doc__.splitlines()[0])
    p.add_argument("model", help="path to a .tflite model")
    p.add_argument("--board", required=True, help="board profile name (python -m runtime.validate --list-boards) or a .toml")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write (created; must be empty)")
    p.add_argument("--name", default="model", help="C prefix of the files and functions (default: model)")
    p.add_argument(
        "--fc-rounding",
        choices=("reference", "tflm"),
        default="reference",
        help="FULLY_CONNECTED rescale: TFLite's reference (double precision, the default) or TFLite Micro's Q31",
    )
    p.add_argument(
        "--sparse",
        choices=("auto", "off", "force"),
        default="auto",
        help="pruned layers: sparse kernels with packed weights where faster (auto), never (off), wherever possible (force)",
    )
    p.add_argument("--force", action="store_true", help="replace DIR if it is not empty")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        exp = export_model(
            args.model,
            args.output,
            args.board,
            name=args.name,
            fc_fixed_point=args.fc_rounding == "tflm",
            force=args.force,
            sparse=args.sparse,
        )
    except DoesNotFitError as exc:
        print(f"error: {exc}; nothing written", file=sys.stderr)
        return EXIT_DOES_NOT_FIT
    except (TinyRTError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    files = ", ".join([*exp.files, "README.md"])
    print(
        f"wrote {args.output}/: {files} ({exp.num_steps} kernel calls, arena {exp.arena_bytes:,} B, "
        f"constants {exp.const_bytes:,} B)"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
