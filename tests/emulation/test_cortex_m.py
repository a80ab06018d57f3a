"""Cortex-M firmware under qemu-system-arm: every shared int8 model on the
Cortex-M4 (NUCLEO-L4R5ZI profile, mps2-an386) and the Cortex-M0+ (Pico
profile, mps2-an385) equals the host C backend and BUILTIN_REF bit for bit,
with flash, static RAM, stack and instructions measured; the kernel suite on
both; smoke runs on the M7, M33 and M55 machines.

Run with -s to see the measured figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.boards import load_board
from runtime.emulation.build import Record
from runtime.validate import KERNEL_STACK_BYTES, report

from .emu_cases import INT8_MODELS, check_outputs, kernel_cases, model_case, model_path

BOARDS = ["nucleo-l4r5zi", "pico"]  # Cortex-M4 (mps2-an386), Cortex-M0+ (mps2-an385)


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", INT8_MODELS)
def test_shared_model_is_bit_exact_and_measured(name: str, board: str, cortex_m, tmp_path: Path) -> None:
    runner = cortex_m(board)
    case = model_case(name)
    exp = case.export("model")
    fw = runner.build([exp], tmp_path)
    res = runner.run(fw, [Record(0, xs) for xs in case.inputs])
    problems = check_outputs(case, [r.outputs for r in res.runs], runner.target)
    assert not problems, "\n".join(problems)
    # every micro-kernel table the build has (portable, DSP...) gave the same bytes
    assert all(r.mismatches == 0 for r in res.runs)

    est = report(model_path(name), board)
    # Every constant array of the plan (weights, biases, multipliers, tables)
    # is `const` and lands in .rodata, i.e. in flash, with the param structs.
    assert fw.sections[".rodata"] >= exp.array_bytes
    # Static RAM is the planned arena plus a few words of kernel state.
    assert exp.arena_bytes <= fw.ram_bytes <= exp.arena_bytes + 64
    stack = max(r.stack_bytes for r in res.runs)
    assert 0 < stack <= KERNEL_STACK_BYTES
    # The acceptance bound: RAM really used (static + stack) within validate's estimate.
    assert fw.ram_bytes + stack <= est["ram_bytes"]
    for r in res.runs:
        # Portable C kernels: no core here does better than one instruction per MAC.
        assert r.instructions > est["macs"]
        # Per-step counts add up to the total, less the input/output copies.
        gap = r.instructions - sum(r.step_instructions)
        assert -100 <= gap <= 0.01 * r.instructions + 2000, (r.instructions, sum(r.step_instructions))
    file_bytes = model_path(name).stat().st_size
    print(
        f"\n{name} on {board}: flash {fw.flash_bytes:,} B ({fw.flash_bytes / file_bytes:.2f}x the "
        f"{file_bytes:,} B .tflite; estimate {est['flash_bytes']:,} B), static RAM {fw.ram_bytes:,} B, "
        f"stack {stack} B (RAM {fw.ram_bytes + stack:,} <= estimate {est['ram_bytes']:,}), "
        f"instructions {max(r.instructions for r in res.runs):,}, bit-exact on {len(res.runs)} inputs, "
        f"QEMU {res.seconds:.2f} s"
    )


def test_person_detect_on_cortex_m4(cortex_m, tmp_path: Path) -> None:
    # TFLite Micro's person detection model (LiteRT refuses it): equal to the host backend.
    runner = cortex_m("nucleo-l4r5zi")
    case = model_case("person_detect")
    fw = runner.build([case.export("model")], tmp_path)
    res = runner.run(fw, [Record(0, xs) for xs in case.inputs])
    problems = check_outputs(case, [r.outputs for r in res.runs], runner.target)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("board", BOARDS)
def test_kernel_suite(board: str, cortex_m, tmp_path: Path) -> None:
    # Every operator with its options cycled, and multi-op chains (several
    # outputs, input = output, residuals), in one firmware image.
    runner = cortex_m(board)
    cases = kernel_cases()
    fw = runner.build([c.export(f"k{i}") for i, c in enumerate(cases)], tmp_path)
    records = [Record(i, xs) for i, c in enumerate(cases) for xs in c.inputs]
    res = runner.run(fw, records)
    problems: list[str] = []
    pos = 0
    for c in cases:
        runs = res.runs[pos : pos + len(c.inputs)]
        pos += len(c.inputs)
        problems += check_outputs(c, [r.outputs for r in runs], runner.target)
        problems += [f"{c.name}: micro-kernel tables disagree" for r in runs if r.mismatches]
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])


def test_counts_are_deterministic_and_calibrated(cortex_m, tmp_path: Path) -> None:
    runner = cortex_m("nucleo-l4r5zi")
    case = model_case("kws_ref_model")
    fw = runner.build([case.export("model")], tmp_path)
    x = case.inputs[0]
    res = runner.run(fw, [Record(0, x), Record(0, x)])
    # MPS2 AN386 clocks SysTick at 25 MHz: with -icount shift=0 (1 ns per
    # instruction) that is one tick per 40 instructions, measured by a loop.
    assert res.calibration.instructions_per_tick == 40.0
    # a TRT_STEP_HOOK (plat_ticks() call + store) is some tens of instructions
    assert 5 < res.calibration.hook_instructions < 60
    a, b = res.runs
    # The same work: equal to the resolution of the count (one tick), and the
    # same stack.  (Which tick a step starts in varies with the phase.)
    tick = res.calibration.instructions_per_tick
    assert abs(a.instructions - b.instructions) <= tick
    assert all(abs(x - y) <= tick for x, y in zip(a.step_instructions, b.step_instructions, strict=True))
    assert a.stack_bytes == b.stack_bytes


def test_counter_wraps_are_counted(cortex_m, emu_cache: Path, tmp_path: Path) -> None:
    # The 24-bit SysTick wraps every 671 M instructions on MPS2; no shipped
    # model gets there, so a harness with an 8,192-tick period (328 k
    # instructions) must give the same counts as the full period.
    from runtime.emulation.cortex_m import CortexM

    cortex_m("nucleo-l4r5zi")  # skips without the tools
    board = load_board("nucleo-l4r5zi")
    period = 8192
    short = CortexM(board, emu_cache, harness_flags=[f"-DHARNESS_SYST_RELOAD={period - 1}u"])
    full = CortexM(board, emu_cache)
    case = model_case("kws_ref_model")
    records = [Record(0, case.inputs[0])]
    a = short.run(short.build([case.export("model")], tmp_path / "short"), records)
    b = full.run(full.build([case.export("model")], tmp_path / "full"), records)
    tick = b.calibration.instructions_per_tick
    wraps = a.runs[0].instructions / (period * tick)
    assert wraps > 5  # it did wrap, several times
    # Each wrap runs the SysTick handler (some tens of instructions), which
    # the count includes; a lost or doubled wrap would be 328 k instructions off.
    assert a.calibration.instructions_per_tick == pytest.approx(tick, rel=1e-4)
    assert abs(a.runs[0].instructions - b.runs[0].instructions) <= 2 * tick + 40 * wraps
    assert a.runs[0].outputs[0].tobytes() == b.runs[0].outputs[0].tobytes()


@pytest.fixture
def m55_board(tmp_path: Path) -> str:
    # No shipped profile has a Cortex-M55; a user profile with QEMU's MPS3 AN547.
    text = (Path(__file__).resolve().parents[2] / "board_profiles" / "nucleo-l4r5zi.toml").read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        line = {
            "name": 'name = "m55-test"',
            "core": 'core = "cortex-m55"',
            "isa_features": 'isa_features = ["dsp", "fpu-sp", "fpu-dp", "helium"]',
            "machine": 'machine = "mps3-an547"',
            "cpu": 'cpu = "cortex-m55"',
        }.get(key, line)
        lines.append(line)
    path = tmp_path / "m55-test.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("board", ["stm32f746g-disco", "pico2", "m55"])
def test_other_cortex_m_machines(board: str, cortex_m, m55_board: str, tmp_path: Path) -> None:
    # Cortex-M7 (mps2-an500), Cortex-M33 (mps2-an505, Secure), Cortex-M55 (mps3-an547).
    runner = cortex_m(m55_board if board == "m55" else board)
    cases = [model_case("hello_world_int8"), model_case("micro_speech_quantized"), *kernel_cases()[::7]]
    fw = runner.build([c.export(f"c{i}") for i, c in enumerate(cases)], tmp_path / "fw")
    res = runner.run(fw, [Record(i, xs) for i, c in enumerate(cases) for xs in c.inputs])
    problems: list[str] = []
    pos = 0
    for c in cases:
        problems += check_outputs(c, [r.outputs for r in res.runs[pos : pos + len(c.inputs)]], runner.target)
        pos += len(c.inputs)
    assert not problems, "\n".join(problems)
    assert all(r.instructions > 0 for r in res.runs)
