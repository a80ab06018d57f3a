"""Instruction counts on Raspberry Pi cores (runtime.emulation.a_class):
the trace parser on a made-up trace, and real counts of MLPerf layers under
qemu-aarch64 for the Pi 4 (NEON) and Pi 5 (SDOT) tables, bit-exact."""

from __future__ import annotations

import pytest

from runtime.emulation.a_class import TICKS, invoke_counts, measure
from runtime.emulation.layers import LAYERS
from runtime.emulation.targets import EmulationUnavailable


def trace(*functions: str) -> list[str]:
    return [f"Trace 0: 0x7f00 [00000000/{i:016x}/00000001/00000201] {f}\n" for i, f in enumerate(functions)]


def test_counts_are_the_instructions_between_two_tick_calls():
    lines = trace(
        "main",
        "main",
        TICKS,
        TICKS,
        "model_invoke",
        "conv",
        "conv",
        "conv",
        TICKS,
        TICKS,  # record 1: 4
        "main",
        TICKS,
        "x",
        "y",
        TICKS,  # record 2: 2
        "main",
        "harness_main",
    )
    lines.insert(3, "some other log line\n")
    assert invoke_counts(lines) == [4, 2]


def test_a_call_without_its_partner_counts_nothing():
    assert invoke_counts(trace("main", TICKS, "model_invoke", "conv")) == []


def _measure(board: str, spec_index: int):
    try:
        return measure(board, (LAYERS[spec_index],))
    except EmulationUnavailable as exc:
        pytest.skip(f"emulation tool missing: {exc}")


def test_pi_layers_are_counted_and_exact():
    pointwise = 2  # KWS pointwise 25x5x64->64
    target4, (pi4,) = _measure("rpi-4b", pointwise)
    target5, (pi5,) = _measure("rpi-5", pointwise)
    assert "cortex-a72" in target4 and "cortex-a76" in target5
    assert pi4.bit_exact and pi5.bit_exact
    assert pi4.macs == pi5.macs == 512_000
    # a GEMM on NEON takes well under 2 instructions per MAC, and SDOT (four
    # MACs per lane per instruction) fewer than the NEON widening multiplies
    assert 0.05 < pi5.per_mac < pi4.per_mac < 2.0
