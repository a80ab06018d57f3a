"""Raspberry Pi OS builds under qemu-user: the shared int8 models and the
kernel suite, cross-compiled for aarch64 (-mcpu=cortex-a53 / cortex-a72, run
with the same -cpu) and armhf (ARMv8 AArch32 with NEON, qemu-arm -cpu max),
equal the host C backend and BUILTIN_REF bit for bit.  Each target is one
static binary holding every model, built once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from runtime.emulation.build import Record

from .emu_cases import INT8_MODELS, Case, check_outputs, kernel_cases, model_case

TARGETS = [("aarch64", "cortex-a53"), ("aarch64", "cortex-a72"), ("armhf", None)]


@dataclass
class Suite:
    where: str
    cases: list[Case]
    outputs: list[list[list[Any]]]  # per case, per input
    isas: list[list[int]]
    mismatches: int
    flash_bytes: int
    ram_bytes: int
    array_bytes: int  # the const arrays the exports emitted


@pytest.fixture(scope="module", params=TARGETS, ids=[f"{t}-{c or 'max'}" for t, c in TARGETS])
def suite(request: pytest.FixtureRequest, linux_user, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    target, cpu = request.param
    runner = linux_user(target, cpu)
    cases = [model_case(n) for n in INT8_MODELS] + list(kernel_cases())
    exports = [c.export(f"m{i}") for i, c in enumerate(cases)]
    prog = runner.build(exports, tmp_path_factory.mktemp(target))
    res = runner.run(prog, [Record(i, xs) for i, c in enumerate(cases) for xs in c.inputs])
    outputs, pos = [], 0
    for c in cases:
        outputs.append([r.outputs for r in res.runs[pos : pos + len(c.inputs)]])
        pos += len(c.inputs)
    print(f"\n{runner.target}: {len(res.runs)} inferences in {res.seconds:.2f} s")
    return Suite(
        runner.target,
        cases,
        outputs,
        [r.isas for r in res.runs],
        sum(r.mismatches for r in res.runs),
        prog.flash_bytes,
        prog.ram_bytes,
        sum(e.array_bytes for e in exports),
    )


def test_shared_models_are_bit_exact(suite: Suite) -> None:
    problems: list[str] = []
    for case, outs in zip(suite.cases[: len(INT8_MODELS)], suite.outputs, strict=False):
        problems += check_outputs(case, outs, suite.where)
    assert not problems, "\n".join(problems)


def test_kernel_suite_is_bit_exact(suite: Suite) -> None:
    problems: list[str] = []
    for case, outs in zip(suite.cases[len(INT8_MODELS) :], suite.outputs[len(INT8_MODELS) :], strict=True):
        problems += check_outputs(case, outs, suite.where)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])


def test_every_isa_table_agrees(suite: Suite) -> None:
    # The harness re-runs each input under every micro-kernel table the build
    # has (portable, and NEON when csrc gains one) and compares the bytes.
    assert all(isas and isas[0] >= 0 for isas in suite.isas)
    assert suite.mismatches == 0


def test_sizes_are_measured(suite: Suite) -> None:
    # From the link map: code + constants of the models and kernels (not libc),
    # which hold every array the exports emitted; RAM holds every arena.
    assert suite.flash_bytes > suite.array_bytes
    assert suite.ram_bytes > 0
