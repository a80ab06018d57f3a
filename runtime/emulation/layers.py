"""Instructions per MAC of single layers on an emulated Cortex-M core:
tinyrt's portable C kernels, its DSP-extension kernels and CMSIS-NN.

    python -m runtime.emulation.layers [--board nucleo-l4r5zi] [--cmsis-nn PATH] [--no-models]

The layers are the MLPerf Tiny shapes /work/shared/ANCHORS.md gives
CMSIS-NN figures for, each cut out of the shipped model it comes from (its
own weights, quantisation and the memory choices the whole model's plan
made for it: im2col or direct, in place or not); "FC 256->10" is not in a
shipped model and is generated.  Every layer becomes a one-layer model,
exported like any model, and all of them (and, unless --no-models, the
whole shipped models) are linked into one firmware per kernel set:

- "DSP": csrc/ as a board build compiles it, the DSP table timed (it is
  the best table there) and the portable one re-run on every input by the
  harness, which compares the bytes;
- "portable": the same sources with -DTRT_NO_CORTEX_M_DSP, so the portable
  table is the only (and timed) one.

Instructions are the harness's per-step counts (SysTick under -icount
shift=0, the hook's cost removed): the kernel call alone, which is what the
CMSIS-NN figures count.  Every output must equal the host C backend's, and
the two firmwares each other.  With --cmsis-nn PATH (a CMSIS-NN checkout, or
$TINYRT_CMSIS_NN) each layer also runs as the CMSIS-NN call TFLite Micro
makes (runtime.emulation.cmsis_nn) under the same harness.

FULLY_CONNECTED layers are measured with TFLite Micro's fixed-point rescale
(the arithmetic CMSIS-NN has) and, in the "(double rescale)" rows, with
TFLite's reference double-precision one, which tinyrt exports by default.

Exit codes: 0 all bit-exact, 1 a difference, 2 a missing tool or bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TinyRTError
from ..graph import Graph, Operator, Quantization, Tensor, parse_model
from ..memory import Choices
from ..paths import csrc_dir
from .build import Record

NO_DSP_FLAG = "-DTRT_NO_CORTEX_M_DSP"
TRT_ISA_PORTABLE, TRT_ISA_CORTEX_M_DSP = 0, 4


@dataclass(frozen=True)
class LayerSpec:
    name: str
    model: str | None  # shipped model (tests/models/<model>.tflite) the layer is cut from; None: generated
    step: int  # that model's plan step
    macs: int
    cmsis_nn: float  # instructions per MAC, /work/shared/ANCHORS.md (Cortex-M4)
    fc_fixed_point: bool = True
    # The same computation as the CMSIS-NN figure (CMSIS-NN convolves through
    # im2col and rescales FULLY_CONNECTED in fixed point): the goal applies.
    goal: bool = True


LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec("KWS conv1 49x10x1->25x5x64 10x4 s2", "kws_ref_model", 0, 320_000, 3.49),
    LayerSpec("KWS depthwise 3x3 25x5x64", "kws_ref_model", 1, 72_000, 7.79),
    LayerSpec("KWS pointwise 25x5x64->64", "kws_ref_model", 2, 512_000, 2.09),
    LayerSpec("VWW depthwise 3x3 48x48x8 (in place)", "vww_96_int8", 1, 165_888, 8.86),
    LayerSpec("VWW depthwise 3x3 s2 ->24x24x16", "vww_96_int8", 3, 82_944, 8.36),
    LayerSpec("VWW pointwise 24x24x16->32", "vww_96_int8", 4, 294_912, 3.96),
    LayerSpec("IC conv 3x3 32x32x16->16", "pretrainedResnet_quant", 1, 2_359_296, 2.33),
    LayerSpec("IC conv 3x3 32x32x16->16 (direct)", "pretrainedResnet_quant", 2, 2_359_296, 2.33, goal=False),
    LayerSpec("FC 640->128", "ad01_int8", 0, 81_920, 1.96),
    LayerSpec("FC 256->10", None, -1, 2_560, 2.16),
    LayerSpec("FC 640->128 (double rescale)", "ad01_int8", 0, 81_920, 1.96, fc_fixed_point=False, goal=False),
    LayerSpec("FC 256->10 (double rescale)", None, -1, 2_560, 2.16, fc_fixed_point=False, goal=False),
)

# The shipped int8 models measured whole.
MODELS: tuple[str, ...] = (
    "kws_ref_model",
    "vww_96_int8",
    "pretrainedResnet_quant",
    "ad01_int8",
    "micro_speech_quantized",
)


def models_dir() -> Path:
    return csrc_dir().parent / "tests" / "models"


# ------------------------------------------------------------ the layers --


@dataclass
class Layer:
    spec: LayerSpec
    graph: Graph
    choices: Choices  # memory choices of the layer's step (step 0 here)


def cut_operator(graph: Graph, op_index: int) -> Graph:
    """Operator op_index of graph alone: its activation input as the graph
    input, its constants, its output as the graph output."""
    op = graph.operators[op_index]
    keep = [i for i in op.inputs if i >= 0] + list(op.outputs)
    new = {old: k for k, old in enumerate(keep)}
    tensors = [dataclasses.replace(graph.tensors[old], index=k) for k, old in enumerate(keep)]
    inputs = tuple(new[i] for i in op.inputs if i >= 0 and graph.tensors[i].data is None)
    single = Operator(0, op.opcode, op.version, tuple(new.get(i, -1) for i in op.inputs),
                      tuple(new[i] for i in op.outputs), dict(op.options))
    return Graph(tensors, [single], inputs, tuple(new[i] for i in op.outputs),
                 description=f"{op.opcode} cut from a model")


def _choices_for(step_choices: Choices, step: int, input_tensor: int) -> Choices:
    """The whole model's memory choices for `step`, as step 0 of its cut."""
    c = Choices()
    if step in step_choices.direct_conv:
        c.direct_conv.add(0)
    if step in step_choices.dw_block:
        c.dw_block[0] = step_choices.dw_block[step]
        c.inplace[0] = input_tensor
    return c


def _quant(scale: float | np.ndarray, zero_point: int | np.ndarray = 0) -> Quantization:
    s = np.atleast_1d(np.asarray(scale, dtype=np.float32))
    z = np.broadcast_to(np.atleast_1d(np.asarray(zero_point, dtype=np.int64)), s.shape).copy()
    return Quantization(scale=s, zero_point=z, axis=0)


def fc_graph(k: int, n: int, seed: int = 0) -> Graph:
    """A FULLY_CONNECTED k -> n with random int8 weights (per-tensor scale),
    int32 bias and an output scale that spreads the results over int8."""
    rng = np.random.default_rng(seed)
    in_scale, in_zp, w_scale = 0.02, 5, 0.004
    w = rng.integers(-127, 128, size=(n, k), dtype=np.int8)
    bias = rng.integers(-20_000, 20_000, size=n, dtype=np.int32)
    # |acc| spreads as sqrt(k) * 74 (input) * 73 (weight): a third of it per output step
    out_scale = in_scale * w_scale * np.sqrt(k) * 74 * 73 / 40
    i8, i32 = np.dtype(np.int8), np.dtype(np.int32)
    tensors = [
        Tensor(0, "input", (1, k), 9, i8, _quant(in_scale, in_zp), None),
        Tensor(1, "weights", (n, k), 9, i8, _quant(w_scale), w),
        Tensor(2, "bias", (n,), 2, i32, _quant(in_scale * w_scale), bias),
        Tensor(3, "output", (1, n), 9, i8, _quant(out_scale, -7), None),
    ]
    op = Operator(0, "FULLY_CONNECTED", 1, (0, 1, 2), (3,),
                  {"fused_activation_function": 0, "weights_format": 0, "keep_num_dims": False})
    return Graph(tensors, [op], (0,), (3,), description=f"FULLY_CONNECTED {k}->{n}")


def layers(specs: tuple[LayerSpec, ...] = LAYERS) -> list[Layer]:
    """Each spec as a one-layer graph with its model's memory choices."""
    from ..plan import build_plan

    plans: dict[str, tuple[Graph, Any]] = {}
    out = []
    for spec in specs:
        if spec.model is None:
            k, n = (int(v) for v in spec.name.split()[1].split("->"))
            out.append(Layer(spec, fc_graph(k, n), Choices()))
            continue
        if spec.model not in plans:
            g = parse_model(models_dir() / f"{spec.model}.tflite")
            plans[spec.model] = (g, build_plan(g, host_layouts=False, sparse="off"))
        g, plan = plans[spec.model]
        op_index = plan.step_ops[spec.step]
        single = cut_operator(g, op_index)
        s = plan.steps[spec.step]
        if s.macs != spec.macs:
            raise TinyRTError(f"{spec.name}: step {spec.step} of {spec.model} has {s.macs} MACs, not {spec.macs}")
        out.append(Layer(spec, single, _choices_for(plan.memory.choices, spec.step, single.inputs[0])))
    return out


# ---------------------------------------------------------- measurement --


@dataclass
class LayerResult:
    name: str
    macs: int
    portable: int  # instructions of the kernel call
    dsp: int
    cmsis_nn_anchor: float  # instructions per MAC, ANCHORS.md
    cmsis_nn: int | None = None  # measured here, when a CMSIS-NN checkout was given
    bit_exact: bool = True  # DSP = portable = host C backend (and CMSIS-NN = host, when run)
    invoke_portable: int = 0  # the whole model_invoke (input/output copies included)
    invoke_dsp: int = 0
    comparable: bool = True  # LayerSpec.goal: the same computation as the CMSIS-NN figure

    @property
    def portable_per_mac(self) -> float:
        return self.portable / self.macs

    @property
    def dsp_per_mac(self) -> float:
        return self.dsp / self.macs

    @property
    def reference_per_mac(self) -> float:
        """CMSIS-NN's instructions per MAC: measured here if it was, else ANCHORS.md's."""
        return self.cmsis_nn / self.macs if self.cmsis_nn is not None else self.cmsis_nn_anchor

    @property
    def goal_met(self) -> bool:
        return self.dsp_per_mac <= self.reference_per_mac

    def as_json(self) -> dict[str, Any]:
        return {
            "layer": self.name,
            "macs": self.macs,
            "portable_instructions": self.portable,
            "dsp_instructions": self.dsp,
            "portable_per_mac": round(self.portable_per_mac, 3),
            "dsp_per_mac": round(self.dsp_per_mac, 3),
            "cmsis_nn_anchor_per_mac": self.cmsis_nn_anchor,
            "cmsis_nn_per_mac": None if self.cmsis_nn is None else round(self.cmsis_nn / self.macs, 3),
            "goal_met": self.goal_met if self.comparable else None,
            "bit_exact": self.bit_exact,
        }


@dataclass
class ModelResult:
    name: str
    macs: int
    portable: int  # model_invoke instructions
    dsp: int
    bit_exact: bool
    steps_portable: list[int] = field(default_factory=list)
    steps_dsp: list[int] = field(default_factory=list)
    step_ops: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "macs": self.macs,
            "portable_instructions": self.portable,
            "dsp_instructions": self.dsp,
            "dsp_over_portable": round(self.dsp / self.portable, 3),
            "bit_exact": self.bit_exact,
        }


@dataclass
class Measurement:
    target: str
    layers: list[LayerResult]
    models: list[ModelResult]
    flash_portable: int  # the firmware's flash with each kernel set
    flash_dsp: int
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def bit_exact(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "layers": [r.as_json() for r in self.layers],
            "models": [m.as_json() for m in self.models],
            "flash_portable": self.flash_portable,
            "flash_dsp": self.flash_dsp,
            "bit_exact": self.bit_exact,
            "problems": self.problems,
        }


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))


def measure(
    board: Any = "nucleo-l4r5zi",
    specs: tuple[LayerSpec, ...] = LAYERS,
    models: tuple[str, ...] = MODELS,
    cmsis_nn: str | Path | None = None,
    cache: str | Path | None = None,
    work_dir: str | Path | None = None,
    seed: int = 0,
) -> Measurement:
    """Build and run the layers (and models) with each kernel set; see the module docstring."""
    from ..backends.c import CModel
    from ..boards import Board, load_board
    from ..export import generate
    from . import random_inputs
    from .cortex_m import CortexM

    b = board if isinstance(board, Board) else load_board(board)
    if b.emulation.target != "qemu-system-arm":
        raise TinyRTError(f"board {b.name} is not a Cortex-M board with a QEMU machine")
    start = time.monotonic()
    cache_dir = Path(cache) if cache is not None else None
    cut = layers(specs)
    exports = []
    inputs: list[list[np.ndarray]] = []
    host: list[list[np.ndarray]] = []
    for i, layer in enumerate(cut):
        exp = generate(layer.graph, name=f"layer{i}", board=b, fc_fixed_point=layer.spec.fc_fixed_point,
                       sparse="off", choices=lambda g, s, v, c=layer.choices: c.copy(), source=layer.spec.name)
        exports.append(exp)
        x = random_inputs(exp.inputs, 1, seed + i)[0]
        inputs.append(x)
        host.append(CModel(layer.graph, fc_fixed_point=layer.spec.fc_fixed_point, sparse="off").run(x))
    model_macs = []
    for j, name in enumerate(models):
        path = models_dir() / f"{name}.tflite"
        exp = generate(path, name=f"model{j}", board=b, sparse="off", source=path.name)
        exports.append(exp)
        x = random_inputs(exp.inputs, 1, seed + 100 + j)[0]
        inputs.append(x)
        host.append(CModel(parse_model(path), sparse="off").run(x))
        model_macs.append(sum(s.macs for s in exp.plan.steps))
    records = [Record(i, x) for i, x in enumerate(inputs)]

    dsp_runner = CortexM(b, cache_dir)
    portable_runner = CortexM(b, cache_dir)
    portable_runner.flags = [*portable_runner.flags, NO_DSP_FLAG]
    tmp = tempfile.TemporaryDirectory(prefix="tinyrt-layers-") if work_dir is None else None
    work = Path(tmp.name) if tmp is not None else Path(work_dir)  # type: ignore[arg-type]
    try:
        fw_dsp = dsp_runner.build(exports, work / "dsp")
        fw_portable = portable_runner.build(exports, work / "portable")
        res_dsp = dsp_runner.run(fw_dsp, records)
        res_portable = portable_runner.run(fw_portable, records)
        cmsis = _cmsis_nn_counts(dsp_runner, cut, inputs[: len(cut)], cmsis_nn, work / "cmsis-nn", cache_dir)
    finally:
        if tmp is not None:
            tmp.cleanup()

    problems: list[str] = []
    names = [layer.spec.name for layer in cut] + list(models)
    for i, (rd, rp) in enumerate(zip(res_dsp.runs, res_portable.runs, strict=True)):
        what = names[i]
        if rd.isas[:1] != [TRT_ISA_CORTEX_M_DSP] or TRT_ISA_PORTABLE not in rd.isas:
            problems.append(f"{what}: the DSP firmware ran tables {rd.isas}, not the DSP table timed and the portable one")
        if rp.isas != [TRT_ISA_PORTABLE]:
            problems.append(f"{what}: the portable firmware ran tables {rp.isas}")
        if rd.mismatches:
            problems.append(f"{what}: the DSP and portable tables disagree inside the DSP firmware")
        if not _same(rd.outputs, host[i]):
            problems.append(f"{what}: the DSP firmware differs from the host C backend")
        if not _same(rp.outputs, host[i]):
            problems.append(f"{what}: the portable firmware differs from the host C backend")

    layer_results = []
    for i, layer in enumerate(cut):
        rd, rp = res_dsp.runs[i], res_portable.runs[i]
        c_count, c_exact = cmsis[i] if cmsis else (None, True)
        if not c_exact:
            problems.append(f"{layer.spec.name}: CMSIS-NN's outputs differ from the host backend (TFLM rounding)")
        layer_results.append(
            LayerResult(layer.spec.name, layer.spec.macs, rp.step_instructions[0], rd.step_instructions[0],
                        layer.spec.cmsis_nn, c_count, bit_exact=not any(p.startswith(layer.spec.name + ":")
                                                                        for p in problems),
                        invoke_portable=rp.instructions, invoke_dsp=rd.instructions, comparable=layer.spec.goal)
        )
    model_results = []
    for j, name in enumerate(models):
        k = len(cut) + j
        rd, rp = res_dsp.runs[k], res_portable.runs[k]
        exp = exports[k]
        model_results.append(
            ModelResult(name, model_macs[j], rp.instructions, rd.instructions,
                        not any(p.startswith(name + ":") for p in problems),
                        rp.step_instructions[: exp.num_steps], rd.step_instructions[: exp.num_steps], exp.step_ops)
        )
    return Measurement(dsp_runner.target, layer_results, model_results, fw_portable.flash_bytes,
                       fw_dsp.flash_bytes, time.monotonic() - start, problems)


def _cmsis_nn_counts(runner: Any, cut: list[Layer], inputs: list[list[np.ndarray]], root: str | Path | None,
                     work: Path, cache: Path | None) -> list[tuple[int | None, bool]] | None:
    """Each layer as the CMSIS-NN call (runtime.emulation.cmsis_nn): its instructions and
    whether its outputs equal the host backend's with TFLM rounding; None without a checkout."""
    if root is None:
        return None
    from ..backends.c import CModel
    from .cmsis_nn import cmsis_export, cmsis_objects

    root = Path(root).resolve()
    lib = cmsis_objects(root, list(runner.flags), cache)
    inc = ["-isystem", str(root / "Include")]
    exports, keep = [], []
    for i, layer in enumerate(cut):
        if not layer.spec.fc_fixed_point:
            continue  # CMSIS-NN has no double-precision rescale
        exp, _ = cmsis_export(layer.graph, name=f"cm{i}")
        exports.append(exp)
        keep.append(i)
    fw = runner.build(exports, work, extra_flags=inc, extra_objects=lib)
    res = runner.run(fw, [Record(k, inputs[i]) for k, i in enumerate(keep)])
    out: list[tuple[int | None, bool]] = [(None, True)] * len(cut)
    for k, i in enumerate(keep):
        want = CModel(cut[i].graph, fc_fixed_point=True, sparse="off").run(inputs[i])
        out[i] = (res.runs[k].step_instructions[0], _same(res.runs[k].outputs, want))
    return out


# ----------------------------------------------------------------- report --


def format_layers(m: Measurement) -> str:
    live = any(r.cmsis_nn is not None for r in m.layers)
    head = ["layer", "MACs", "portable instr/MAC", "DSP instr/MAC", "CMSIS-NN (ANCHORS.md)"]
    if live:
        head.append("CMSIS-NN (measured)")
    head += ["DSP / CMSIS-NN", "goal"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 2) + "---|"]
    for r in m.layers:
        row = [r.name, f"{r.macs:,}", f"{r.portable_per_mac:.2f}", f"{r.dsp_per_mac:.2f}", f"{r.cmsis_nn_anchor:.2f}"]
        if live:
            row.append("n/a" if r.cmsis_nn is None else f"{r.cmsis_nn / r.macs:.2f}")
        goal = ("met" if r.goal_met else "NOT met") if r.comparable else "n/a (CMSIS-NN: im2col, fixed point)"
        row += [f"{r.dsp_per_mac / r.reference_per_mac:.2f}", goal]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def format_models(m: Measurement) -> str:
    lines = [
        "| model | MACs | portable instructions | DSP instructions | DSP / portable | bit-exact |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in m.models:
        lines.append(
            f"| {r.name} | {r.macs:,} | {r.portable:,} | {r.dsp:,} | {r.dsp / r.portable:.2f} | "
            f"{'yes' if r.bit_exact else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .targets import EmulationUnavailable

    ap = argparse.ArgumentParser(prog="python -m runtime.emulation.layers", description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="nucleo-l4r5zi", help="a Cortex-M board profile (default nucleo-l4r5zi)")
    ap.add_argument("--cmsis-nn", type=Path, default=os.environ.get("TINYRT_CMSIS_NN") or None,
                    help="a CMSIS-NN checkout: measure its kernels on the same layers (default $TINYRT_CMSIS_NN)")
    ap.add_argument("--no-models", action="store_true", help="layers only, not the whole shipped models")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    try:
        m = measure(args.board, models=() if args.no_models else MODELS, cmsis_nn=args.cmsis_nn)
    except EmulationUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (TinyRTError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{m.target}; kernel calls only (per-step counts), instructions per MAC")
    print(format_layers(m))
    if m.models:
        print()
        print(format_models(m))
    print(f"\nfirmware flash: portable {m.flash_portable:,} B, with the DSP table {m.flash_dsp:,} B "
          f"(+{m.flash_dsp - m.flash_portable:,} B); {m.seconds:.0f} s")
    for p in m.problems:
        print(f"PROBLEM: {p}")
    if args.json:
        args.json.write_text(json.dumps(m.as_json(), indent=2) + "\n")
    return 0 if m.bit_exact else 1


if __name__ == "__main__":
    sys.exit(main())
