"""What the emulation suites run, and the references they are checked against.

Models: the shared int8 models (tests/models, Apache-2.0), several random
inputs each.  Kernels: graphs from tests/graphgen.py, every operator tinyrt
runs with its options cycled, plus multi-op chains (multiple outputs, an
input that is also an output, residuals, squeeze-excite).

References: ai-edge-litert's BUILTIN_REF (TFLite's reference kernels, the
contract) and tinyrt's host C backend; emulated outputs must equal both.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # graphgen, tflite_writer

import graphgen  # noqa: E402
from tflite_writer import write_model  # noqa: E402

import runtime  # noqa: E402
from runtime.export import Export, generate  # noqa: E402
from runtime.graph import parse_model  # noqa: E402

MODELS = TESTS / "models"
# The shared int8 models (/work/shared/models): each must run bit-exact.
INT8_MODELS = [
    "hello_world_int8",
    "micro_speech_quantized",
    "kws_ref_model",
    "vww_96_int8",
    "pretrainedResnet_quant",
    "ad01_int8",
]
INPUTS_PER_MODEL = 3
KERNEL_SEEDS = 3  # graphs per operator
KERNEL_CHAINS = 12
KERNEL_INPUTS = 2


def model_path(name: str) -> Path:
    return MODELS / f"{name}.tflite"


@dataclass
class Case:
    """One graph, its inputs, and the outputs it must produce."""

    name: str
    data: bytes  # the .tflite file
    inputs: list[list[np.ndarray]]
    host: list[list[np.ndarray]] = field(default_factory=list)  # tinyrt's host C backend
    ref: list[list[np.ndarray]] | None = None  # BUILTIN_REF (None: LiteRT refuses the model)

    def export(self, name: str, fc_fixed_point: bool = False) -> Export:
        return generate(parse_model(self.data), name=name, fc_fixed_point=fc_fixed_point, source=self.name)


def _litert():
    return pytest.importorskip("ai_edge_litert.interpreter", reason="needs ai-edge-litert (pip install -e '.[dev]')")


def builtin_ref(data: bytes, inputs: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    litert = _litert()
    it = litert.Interpreter(model_content=data, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    out = []
    for xs in inputs:
        for detail, x in zip(it.get_input_details(), xs, strict=True):
            it.set_tensor(detail["index"], x)
        it.invoke()
        out.append([it.get_tensor(d["index"]).copy() for d in it.get_output_details()])
    return out


def _random_inputs(model: runtime.Model, count: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(count):
        xs = []
        for info in model.inputs:
            lim = np.iinfo(info.dtype)
            xs.append(rng.integers(lim.min, lim.max + 1, size=info.shape, dtype=info.dtype))
        result.append(xs)
    return result


def _finish(case: Case, with_ref: bool = True) -> Case:
    host = runtime.load(case.data, backend="c")
    case.host = [host.run(xs) for xs in case.inputs]
    if with_ref:
        case.ref = builtin_ref(case.data, case.inputs)
    return case


@cache
def model_case(name: str) -> Case:
    data = model_path(name).read_bytes()
    host = runtime.load(data, backend="c")
    inputs = _random_inputs(host, INPUTS_PER_MODEL, seed=INT8_MODELS.index(name) if name in INT8_MODELS else 99)
    # person_detect: LiteRT refuses its stale quantized_dimension; TFLite Micro
    # runs it and the host C backend equals TFLite Micro (tests/test_models.py).
    return _finish(Case(name, data, inputs), with_ref=name != "person_detect")


@cache
def kernel_cases() -> tuple[Case, ...]:
    cases = []
    graphs = [graphgen.single_op_case(op, seed) for op in sorted(graphgen.SINGLE_OPS) for seed in range(KERNEL_SEEDS)]
    graphs += [graphgen.chain_case(seed) for seed in range(KERNEL_CHAINS)]
    for k, g in enumerate(graphs):
        rng = np.random.default_rng(1000 + k)
        inputs = [g.random_inputs(rng) for _ in range(KERNEL_INPUTS)]
        cases.append(_finish(Case(g.name, write_model(g.graph), inputs)))
    return tuple(cases)


def kernel_features() -> set[str]:
    feats: set[str] = set()
    for op in graphgen.SINGLE_OPS:
        for seed in range(KERNEL_SEEDS):
            feats |= graphgen.single_op_case(op, seed).features
    for seed in range(KERNEL_CHAINS):
        feats |= graphgen.chain_case(seed).features
    return feats


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Bit for bit (float outputs too: compared as bytes, with dtype and shape)."""
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True)
    )


def check_outputs(case: Case, emulated: list[list[np.ndarray]], where: str) -> list[str]:
    """Problems found (empty when every output equals the host's and BUILTIN_REF's)."""
    problems = []
    if len(emulated) != len(case.inputs):
        return [f"{case.name} on {where}: {len(emulated)} of {len(case.inputs)} inputs ran"]
    for k, got in enumerate(emulated):
        if not same(got, case.host[k]):
            problems.append(f"{case.name} input {k} on {where}: differs from the host C backend")
        if case.ref is not None and not same(got, case.ref[k]):
            problems.append(f"{case.name} input {k} on {where}: differs from BUILTIN_REF")
    return problems
