"""The cycle-model calibration (runtime.emulation.cmsis_nn) and the survey
table (python -m runtime.emulation).

The CMSIS-NN run needs a CMSIS-NN checkout: set TINYRT_CMSIS_NN to one
(git clone https://github.com/ARM-software/CMSIS-NN); without it only the
code generation is checked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from runtime.boards import load_board
from runtime.emulation import __main__ as survey
from runtime.emulation import cmsis_nn

from .emu_cases import model_path


@pytest.mark.parametrize("name", list(cmsis_nn.MLPERF_CMSIS_NN["cortex-m4"][2]))
def test_every_mlperf_step_maps_to_a_cmsis_nn_call(name: str) -> None:
    exp, plan = cmsis_nn.cmsis_export(model_path(name))
    code = exp.files["cm.c"]
    calls = re.findall(r"\b(arm_\w+_s8)\(", code)
    assert len(calls) == len(plan.steps)  # one call per step, nothing dropped
    assert len(re.findall(r"^    TRT_STEP_HOOK\(", code, flags=re.M)) == len(plan.steps) + 1
    # CMSIS-NN cannot run a layer in place: the plan for it has none
    assert not plan.memory.choices.inplace and not plan.memory.choices.dw_block


@pytest.fixture
def cmsis_checkout() -> Path:
    root = os.environ.get("TINYRT_CMSIS_NN")
    if not root or not (Path(root) / "Source").is_dir():
        pytest.skip("set TINYRT_CMSIS_NN to a CMSIS-NN checkout (github.com/ARM-software/CMSIS-NN) to run this")
    return Path(root)


def test_cpi_calibration_reproduces_the_profile(cmsis_checkout: Path, capsys, emu_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("TINYRT_EMULATION_CACHE", str(emu_cache))
    assert cmsis_nn.main(["--cmsis-nn", str(cmsis_checkout), str(model_path("kws_ref_model"))]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("kws_ref_model") and "CMSIS-NN" in line)
    assert " yes " in row  # CMSIS-NN's outputs equal tinyrt's: the calls are the right ones
    cpi = float(row.split()[-1])
    # the profile's value came from all four models (1.54); KWS alone gives 1.56
    assert cpi == pytest.approx(load_board("nucleo-l4r5zi").cycle_model.cpi, abs=0.05)


def test_survey_table(capsys, cortex_m, emu_cache: Path, monkeypatch) -> None:
    cortex_m("nucleo-l4r5zi")  # skips without the tools
    monkeypatch.setenv("TINYRT_EMULATION_CACHE", str(emu_cache))
    code = survey.main([str(model_path("hello_world_int8")), "--board", "nucleo-l4r5zi", "--inputs", "2"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("| model | board (core) | flash B")
    cells = [c.strip() for c in out[2].strip("|").split("|")]
    assert cells[0] == "hello_world_int8" and cells[1] == "nucleo-l4r5zi (cortex-m4)" and cells[8] == "yes"
    assert int(cells[6].replace(",", "")) > 288  # instructions: more than the model's 288 MACs
