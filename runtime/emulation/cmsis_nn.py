"""Calibrating the Cortex-M cycle model: the same plans run on CMSIS-NN.

    python -m runtime.emulation.cmsis_nn --cmsis-nn PATH [--board nucleo-l4r5zi] [MODEL ...]

QEMU counts instructions, not cycles.  The profiles turn instructions into
cycles with `cpi`; to calibrate it, this tool runs the MLPerf Tiny models
with the kernels whose cycles on silicon are published (CMSIS-NN: MLPerf
Tiny v1.0, OctoML microTVM + CMSIS-NN on NUCLEO-L4R5ZI) under the same
harness as tinyrt's own firmware (SysTick under -icount shift=0, per-step
counts), and divides: cpi = published cycles / emulated CMSIS-NN
instructions.  It also prints CMSIS-NN's and tinyrt's instructions per MAC
per layer kind on the same layers.

Each plan step becomes the CMSIS-NN call TFLite Micro's CMSIS-NN kernels
make (arm_convolve_wrapper_s8, arm_depthwise_conv_wrapper_s8,
arm_fully_connected_s8, arm_avgpool_s8 / arm_max_pool_s8, arm_softmax_s8,
arm_elementwise_add_s8), from the plan's own parameters; the plan is made
with TFLite Micro's FULLY_CONNECTED rounding and no in-place layers, which
CMSIS-NN does not do.  Its outputs are compared with tinyrt's (fc_rounding
"tflm") to show the calls are right.  PATH is a CMSIS-NN checkout (Include/
and Source/), e.g. github.com/ARM-software/CMSIS-NN.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .._native import ffi
from ..errors import TinyRTError
from ..export import Export, TensorIO, _c_int, _io
from ..graph import Graph, parse_model
from ..memory import Choices
from ..plan import Plan, build_plan
from .build import Record, cache_root, jobs, run_tool

# Published CMSIS-NN latencies on silicon, per core: MLPerf Tiny v1.0 closed,
# OctoML microTVM + CMSIS-NN (github.com/mlcommons/tiny_results_v1.0
# closed/OctoML/results/microtvm_cmsis_nn/<board>), milliseconds per inference;
# the figures board_profiles/nucleo-l4r5zi.toml and pico2.toml are fitted to.
MLPERF_CMSIS_NN: dict[str, tuple[str, int, dict[str, float]]] = {
    "cortex-m4": (
        "NUCLEO_L4R5ZI (STM32L4R5, 120 MHz)",
        120_000_000,
        {"kws_ref_model": 99.8, "vww_96_int8": 301.0, "pretrainedResnet_quant": 389.6, "ad01_int8": 8.6},
    ),
    "cortex-m33": (
        "NRF5340-DK (nRF5340 application core, 128 MHz)",
        128_000_000,
        {"kws_ref_model": 76.1, "vww_96_int8": 232.0, "pretrainedResnet_quant": 316.0, "ad01_int8": 6.27},
    ),
}
CMSIS_DIRS = (
    "ConvolutionFunctions",
    "FullyConnectedFunctions",
    "NNSupportFunctions",
    "PoolingFunctions",
    "SoftmaxFunctions",
    "BasicMathFunctions",
)
SCRATCH_BYTES = 256 << 10  # CMSIS-NN's per-call buffers (im2col etc.); the emulator has 4 MB


def _array(ptr: Any, ctype: str, count: int) -> np.ndarray:
    dt = {"int8_t": np.int8, "int32_t": np.int32}[ctype]
    if count == 0 or ffi.cast("uintptr_t", ptr) == 0:
        return np.zeros(count, dtype=dt)
    return np.frombuffer(ffi.buffer(ffi.cast(f"{ctype} *", ptr), count * np.dtype(dt).itemsize), dtype=dt).copy()


def _dims(d: Any) -> str:
    return f"{{{d.n}, {d.h}, {d.w}, {d.c}}}"


class _Gen:
    def __init__(self, plan: Plan, name: str):
        self.plan, self.name = plan, name
        self.data: list[str] = []
        self.body: list[str] = []

    def const(self, symbol: str, ctype: str, values: np.ndarray) -> str:
        vals = values.reshape(-1).tolist() or [0]
        text = ", ".join(_c_int(int(v)) for v in vals)
        self.data.append(f"static const {ctype} {symbol}[{len(vals)}] __attribute__((aligned(4))) = {{{text}}};")
        return symbol

    def step(self, i: int) -> None:
        plan, n = self.plan, self.name
        s = plan.steps[i]
        op = plan.graph.operators[plan.step_ops[i]].opcode
        p = s.params
        off = plan.tensor_offset
        ins = [f"(const int8_t *)(a + {off[t]})" for t in s.inputs if isinstance(t, (int, np.integer))]
        if len(ins) != len(s.inputs):
            raise TinyRTError(f"step {i} ({op}): constant operands are not mapped to CMSIS-NN")
        out = f"(int8_t *)(a + {off[s.output]})"
        pre = f"{n}_s{i}"
        lines: list[str] = [f"    TRT_STEP_HOOK({i}); /* {op} */", "    {"]
        if op == "CONV_2D":
            cout, kh, kw, cin = p.filter.n, p.filter.h, p.filter.w, p.filter.c
            if cin != p.input.c:
                raise TinyRTError(f"step {i}: grouped CONV_2D is not mapped to CMSIS-NN")
            w = self.const(f"{pre}_w", "int8_t", _array(p.weights, "int8_t", cout * kh * kw * cin))
            b = self.const(f"{pre}_b", "int32_t", _array(p.bias, "int32_t", cout))
            m = self.const(f"{pre}_m", "int32_t", _array(p.multiplier, "int32_t", cout))
            sh = self.const(f"{pre}_sh", "int32_t", _array(p.shift, "int32_t", cout))
            lines += [
                f"        static const cmsis_nn_conv_params cp = {{{p.input_offset}, {p.output_offset}, "
                f"{{{p.stride_w}, {p.stride_h}}}, {{{p.pad_left}, {p.pad_top}}}, {{{p.dilation_w}, {p.dilation_h}}}, "
                f"{{{p.act_min}, {p.act_max}}}}};",
                f"        const cmsis_nn_per_channel_quant_params qp = {{(int32_t *){m}, (int32_t *){sh}}};",
                f"        static const cmsis_nn_dims di = {_dims(p.input)}, df = {_dims(p.filter)}, "
                f"db = {{1, 1, 1, {cout}}}, do_ = {_dims(p.output)};",
                f"        (void)arm_convolve_wrapper_s8(&ctx, &cp, &qp, &di, {ins[0]}, &df, {w}, &db, {b}, &do_, {out});",
            ]
        elif op == "DEPTHWISE_CONV_2D":
            kh, kw, cout = p.filter.h, p.filter.w, p.filter.c
            wv = _array(p.weights, "int8_t", kh * kw * cout)
            folded = _array(p.bias_folded, "int32_t", cout)
            # tinyrt keeps bias + input_offset * sum(weights); CMSIS-NN takes the bias
            bias = folded - p.input_offset * wv.reshape(kh * kw, cout).astype(np.int64).sum(axis=0)
            w = self.const(f"{pre}_w", "int8_t", wv)
            b = self.const(f"{pre}_b", "int32_t", bias.astype(np.int32))
            m = self.const(f"{pre}_m", "int32_t", _array(p.multiplier, "int32_t", cout))
            sh = self.const(f"{pre}_sh", "int32_t", _array(p.shift, "int32_t", cout))
            lines += [
                f"        static const cmsis_nn_dw_conv_params cp = {{{p.input_offset}, {p.output_offset}, "
                f"{p.depth_multiplier}, {{{p.stride_w}, {p.stride_h}}}, {{{p.pad_left}, {p.pad_top}}}, "
                f"{{{p.dilation_w}, {p.dilation_h}}}, {{{p.act_min}, {p.act_max}}}}};",
                f"        const cmsis_nn_per_channel_quant_params qp = {{(int32_t *){m}, (int32_t *){sh}}};",
                f"        static const cmsis_nn_dims di = {_dims(p.input)}, df = {_dims(p.filter)}, "
                f"db = {{1, 1, 1, {cout}}}, do_ = {_dims(p.output)};",
                f"        (void)arm_depthwise_conv_wrapper_s8(&ctx, &cp, &qp, &di, {ins[0]}, &df, {w}, &db, {b}, &do_, {out});",
            ]
        elif op == "FULLY_CONNECTED":
            k, nout = p.in_features, p.out_features
            if ffi.cast("uintptr_t", p.scale) != 0:
                raise TinyRTError("plan FULLY_CONNECTED with fc_fixed_point=True for CMSIS-NN")
            wv = _array(p.weights, "int8_t", nout * k)
            mult, shift = _array(p.multiplier, "int32_t", nout), _array(p.shift, "int32_t", nout)
            if len(set(mult.tolist())) > 1 or len(set(shift.tolist())) > 1:
                raise TinyRTError(f"step {i}: per-channel FULLY_CONNECTED is not mapped to CMSIS-NN")
            folded = _array(p.bias_folded, "int32_t", nout)
            bias = folded - p.input_offset * wv.reshape(nout, k).astype(np.int64).sum(axis=1)
            w = self.const(f"{pre}_w", "int8_t", wv)
            b = self.const(f"{pre}_b", "int32_t", bias.astype(np.int32))
            lines += [
                f"        static const cmsis_nn_fc_params cp = {{{p.input_offset}, 0, {p.output_offset}, "
                f"{{{p.act_min}, {p.act_max}}}}};",
                f"        static const cmsis_nn_per_tensor_quant_params qp = {{{_c_int(int(mult[0]))}, {int(shift[0])}}};",
                f"        static const cmsis_nn_dims di = {{{p.batches}, 1, 1, {k}}}, df = {{{k}, 1, 1, {nout}}}, "
                f"db = {{1, 1, 1, {nout}}}, do_ = {{{p.batches}, 1, 1, {nout}}};",
                "        const cmsis_nn_context none = {0, 0};",
                f"        (void)arm_fully_connected_s8(&none, &cp, &qp, &di, {ins[0]}, &df, {w}, &db, {b}, &do_, {out});",
            ]
        elif op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            fn = "arm_avgpool_s8" if op == "AVERAGE_POOL_2D" else "arm_max_pool_s8"
            lines += [
                f"        static const cmsis_nn_pool_params cp = {{{{{p.stride_w}, {p.stride_h}}}, "
                f"{{{p.pad_left}, {p.pad_top}}}, {{{p.act_min}, {p.act_max}}}}};",
                f"        static const cmsis_nn_dims di = {_dims(p.input)}, df = {{1, {p.filter_h}, {p.filter_w}, 1}}, "
                f"do_ = {_dims(p.output)};",
                f"        (void){fn}(&ctx, &cp, &di, {ins[0]}, &df, &do_, {out});",
            ]
        elif op == "SOFTMAX":
            lines.append(
                f"        arm_softmax_s8({ins[0]}, {p.outer}, {p.depth}, {_c_int(p.input_multiplier)}, "
                f"{p.input_left_shift}, {p.diff_min}, {out});"
            )
        elif op == "ADD":
            shape = list(p.out_shape)
            size = int(np.prod(shape))
            # same-shape operands: contiguous strides (any stride along a size-1 axis)
            contiguous = [size // int(np.prod(shape[: d + 1])) for d in range(4)]

            def plain(strides: Any) -> bool:
                return all(shape[d] == 1 or strides[d] == contiguous[d] for d in range(4))

            if not (plain(p.in1_strides) and plain(p.in2_strides)):
                raise TinyRTError(f"step {i}: broadcasting ADD is not mapped to CMSIS-NN")
            lines.append(
                f"        (void)arm_elementwise_add_s8({ins[0]}, {ins[1]}, {p.input1_offset}, "
                f"{_c_int(p.input1_multiplier)}, {p.input1_shift}, {p.input2_offset}, {_c_int(p.input2_multiplier)}, "
                f"{p.input2_shift}, {p.left_shift}, {out}, {p.output_offset}, {_c_int(p.output_multiplier)}, "
                f"{p.output_shift}, {p.act_min}, {p.act_max}, {size});"
            )
        else:
            raise TinyRTError(f"step {i}: {op} is not mapped to CMSIS-NN")
        lines.append("    }")
        self.body += lines


def cmsis_export(model: str | Path | Graph, name: str = "cm") -> tuple[Export, Plan]:
    """The model (a path or a parsed Graph) as CMSIS-NN calls, in an Export the harness can build."""
    graph = model if isinstance(model, Graph) else parse_model(Path(model))
    kwargs: dict[str, Any] = {}
    import inspect

    if "sparse" in inspect.signature(build_plan).parameters:
        kwargs["sparse"] = "off"  # dense weights, as CMSIS-NN takes them
    plan = build_plan(graph, materialize=True, fc_fixed_point=True, choices=lambda g, s, v: Choices(), **kwargs)
    gen = _Gen(plan, name)
    for i in range(len(plan.steps)):
        gen.step(i)
    gen.body.append(f"    TRT_STEP_HOOK({len(plan.steps)});")
    inputs: list[TensorIO] = [_io(graph, plan, t) for t in graph.inputs]
    outputs: list[TensorIO] = [_io(graph, plan, t) for t in graph.outputs]
    code = [
        "/* Generated by runtime.emulation.cmsis_nn: the plan's steps as CMSIS-NN calls. */",
        "#include <stdint.h>",
        "#include <string.h>",
        '#include "arm_nnfunctions.h"',
        "#ifndef TRT_STEP_HOOK",
        "#define TRT_STEP_HOOK(i) ((void)0)",
        "#endif",
        *gen.data,
        f"static uint8_t {name}_arena[{max(plan.arena_bytes, 1)}] __attribute__((aligned(16)));",
        f"static int8_t {name}_scratch[{SCRATCH_BYTES}] __attribute__((aligned(16)));",
        f"static void {name}_run(uint8_t *a) {{",
        f"    const cmsis_nn_context ctx = {{{name}_scratch, (int32_t)sizeof({name}_scratch)}};",
        "    (void)ctx;",
        *gen.body,
        "}",
        f"int {name}_invoke_io(const void *const *inputs, void *const *outputs) {{",
        *[f"    memcpy({name}_arena + {t.offset}, inputs[{k}], {t.nbytes});" for k, t in enumerate(inputs)],
        f"    {name}_run({name}_arena);",
        *[f"    memcpy(outputs[{k}], {name}_arena + {t.offset}, {t.nbytes});" for k, t in enumerate(outputs)],
        "    return 0;",
        "}",
        "",
    ]
    exp = Export(
        name=name,
        files={f"{name}.c": "\n".join(code), f"{name}_data.c": "/* (data is in the model file) */\ntypedef int unused;\n"},
        arena_bytes=plan.arena_bytes,
        inputs=inputs,
        outputs=outputs,
        num_steps=len(plan.steps),
        step_ops=[graph.operators[i].opcode for i in plan.step_ops],
        const_bytes=0,
        array_bytes=0,
        plan=plan,
    )
    return exp, plan


def cmsis_objects(root: Path, flags: list[str], cache: Path | None = None) -> list[Path]:
    """CMSIS-NN's int8 kernels compiled once per (checkout, flags); files that
    do not build for the core (float16, MVE-only) are left out."""
    sources = sorted(f for d in CMSIS_DIRS for f in (root / "Source" / d).glob("*.c"))
    if not sources:
        raise TinyRTError(f"{root} has no CMSIS-NN sources (expected {root}/Source/ConvolutionFunctions/*.c)")
    h = hashlib.sha256("\0".join(flags).encode())
    for f in sources:
        h.update(f.read_bytes())
    out = (cache or cache_root()) / f"cmsis-nn-{h.hexdigest()[:20]}"
    if not out.exists():
        tmp = Path(tempfile.mkdtemp(prefix=".cmsis-", dir=out.parent if out.parent.exists() else None))

        def build(src: Path) -> None:
            import subprocess

            subprocess.run(
                ["arm-none-eabi-gcc", *flags, "-w", f"-I{root / 'Include'}", "-c", str(src), "-o", str(tmp / f"{src.stem}.o")],
                capture_output=True,
                check=False,
            )

        with ThreadPoolExecutor(jobs()) as pool:
            list(pool.map(build, sources))
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, out)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    objs = sorted(out.glob("*.o"))
    lib = out / "libcmsis-nn.a"
    if not lib.exists():
        run_tool(["arm-none-eabi-ar", "rcs", str(lib), *map(str, objs)], what="ar")
    return [lib]


def main(argv: list[str] | None = None) -> int:
    from ..api import load
    from ..boards import load_board
    from ..paths import csrc_dir
    from . import random_inputs
    from .cortex_m import CortexM

    ap = argparse.ArgumentParser(prog="python -m runtime.emulation.cmsis_nn", description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help=".tflite files (default: the MLPerf Tiny models in tests/models)")
    ap.add_argument("--cmsis-nn", required=True, type=Path, help="a CMSIS-NN checkout (Include/, Source/)")
    ap.add_argument("--board", default="nucleo-l4r5zi", help="a Cortex-M board profile (default nucleo-l4r5zi)")
    args = ap.parse_args(argv)
    board = load_board(args.board)
    ref_board, ref_hz, ref_ms = MLPERF_CMSIS_NN.get(board.core, ("", 0, {}))
    models = [Path(m) for m in args.models] or [
        csrc_dir().parent / "tests" / "models" / f"{m}.tflite" for m in MLPERF_CMSIS_NN["cortex-m4"][2]
    ]
    runner = CortexM(board)
    flags = [*runner.flags]
    lib = cmsis_objects(args.cmsis_nn.resolve(), flags)
    inc = ["-isystem", str(args.cmsis_nn.resolve() / "Include")]
    kinds = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    print(f"{runner.target}; CMSIS-NN from {args.cmsis_nn}")
    if ref_board:
        print(f"cpi = MLPerf Tiny v1.0 OctoML microTVM+CMSIS-NN cycles on {ref_board} / CMSIS-NN instructions here")
    total_cycles = total_instructions = 0.0
    print(f"{'model':<24} {'kernels':<9} {'instructions':>13} " + " ".join(f"{k[:9]:>10}" for k in kinds)
          + f" {'exact':>6} {'MLPerf ms':>10} {'cpi':>6}")
    for model in models:
        exp, plan = cmsis_export(model)
        tflm = load(model, backend="c", fc_rounding="tflm")
        inputs = random_inputs(exp.inputs, 1, 0)
        with tempfile.TemporaryDirectory() as work:
            fw = runner.build([exp], Path(work) / "cmsis", extra_flags=inc, extra_objects=lib)
            cm = runner.run(fw, [Record(0, inputs[0])])
            from ..export import generate

            own = generate(model, name="model", fc_fixed_point=True, sparse="off")
            fw2 = runner.build([own], Path(work) / "tinyrt")
            tr = runner.run(fw2, [Record(0, inputs[0])])
        exact = all(a.tobytes() == b.tobytes() for a, b in zip(cm.runs[0].outputs, tflm.run(inputs[0]), strict=True))
        for label, res, steps_ops in (("CMSIS-NN", cm, exp.step_ops), ("tinyrt", tr, own.step_ops)):
            run = res.runs[0]
            per_kind = []
            for kind in kinds:
                idx = [i for i, o in enumerate(steps_ops) if o == kind]
                macs = sum(plan.steps[i].macs for i in idx)
                per_kind.append(f"{sum(run.step_instructions[i] for i in idx) / macs:>10.2f}" if macs else f"{'':>10}")
            ms = ref_ms.get(Path(model).stem)
            cpi = None
            if ms is not None and label == "CMSIS-NN":
                cycles = ms * 1e-3 * ref_hz
                cpi = cycles / run.instructions
                total_cycles += cycles
                total_instructions += run.instructions
            print(
                f"{Path(model).stem:<24} {label:<9} {run.instructions:>13,} " + " ".join(per_kind)
                + f" {('yes' if exact else 'NO') if label == 'CMSIS-NN' else '':>6}"
                + f" {ms if (ms and cpi) else '':>10} {f'{cpi:.2f}' if cpi else '':>6}",
                flush=True,
            )
    if total_instructions:
        print(f"cpi over all models (total cycles / total instructions): {total_cycles / total_instructions:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
