"""python -m runtime.validate MODEL --board NAME --emulate: measured figures
next to the estimates, the JSON `emulation` object, exit codes and messages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.boards import load_board
from runtime.emulation import targets as emu_targets
from runtime.validate import main

from .emu_cases import model_path

ROOT = Path(__file__).resolve().parents[2]


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"emulation tool missing: {emu_targets.EmulationUnavailable(tool)}")


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, emu_cache: Path) -> None:
    # the CLI's csrc objects go to the session's cache, not ~/.cache
    monkeypatch.setenv("TINYRT_EMULATION_CACHE", str(emu_cache))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_emulation_object(capsys: pytest.CaptureFixture[str]) -> None:
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    code, out, _ = _run(capsys, str(model_path("kws_ref_model")), "--board", "nucleo-l4r5zi", "--emulate", "--json",
                        "--latency-budget-ms", "1000")
    r = json.loads(out)
    em = r["emulation"]
    for key in ("target", "bit_exact", "instructions", "flash_bytes", "ram_bytes", "stack_bytes", "cycles_est",
                "latency_ms_est"):
        assert key in em, key
    assert "mps2-an386" in em["target"] and "cortex-m4" in em["target"]
    assert em["bit_exact"] is True
    board = load_board("nucleo-l4r5zi")
    # estimated cycles = instructions x the profile's CPI factor; latency at the board's clock
    assert em["cycles_est"] == round(em["instructions"] * board.cycle_model.cpi)
    assert em["latency_ms_est"] == pytest.approx(em["cycles_est"] / board.clock_hz * 1e3, rel=1e-6)
    assert em["ram_bytes"] >= r["arena_bytes"]
    assert em["ram_bytes"] + em["stack_bytes"] <= r["ram_bytes"]  # within the estimate
    assert em["estimates"]["flash_bytes"] == r["flash_bytes"]
    assert sum(s["instructions"] for s in em["steps"]) <= em["instructions"]
    assert len(em["steps"]) == len(r["layers"])
    # the verdict: measured budgets (flash, RAM + stack, latency), bit-exact outputs
    assert {b["name"] for b in em["budgets"]} == {"ram", "flash", "latency_ms"}
    assert r["fits"] == (em["bit_exact"] and all(b["ok"] for b in em["budgets"]))
    assert code == (0 if r["fits"] else 1)


def test_measured_latency_decides_over_the_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    argv = [str(model_path("micro_speech_quantized")), "--board", "nucleo-l4r5zi", "--json"]
    est = json.loads(_run(capsys, *argv)[1])["latency_ms"]
    em = json.loads(_run(capsys, *argv, "--emulate")[1])["emulation"]
    # a budget between the two figures: only the measured one decides under --emulate
    budget = (est + em["latency_ms_est"]) / 2
    code, out, _ = _run(capsys, *argv, "--emulate", "--latency-budget-ms", f"{budget:.6f}")
    r = json.loads(out)
    estimate_ok = next(b["ok"] for b in r["budgets"] if b["name"] == "latency_ms")
    measured_ok = next(b["ok"] for b in r["emulation"]["budgets"] if b["name"] == "latency_ms")
    assert estimate_ok != measured_ok
    assert r["fits"] == measured_ok and code == (0 if measured_ok else 1)


def test_text_report_shows_measured_next_to_estimated(capsys: pytest.CaptureFixture[str]) -> None:
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    code, out, _ = _run(capsys, str(model_path("micro_speech_quantized")), "--board", "pico", "--emulate")
    assert "emulated on qemu-system-arm -M mps2-an385" in out
    assert "bit-exact with the host C backend on 3 random inputs" in out
    for label in ("flash", "static RAM", "stack", "instructions"):
        assert f"  {label}" in out
    assert "(measured)" in out
    assert out.rstrip().endswith(("FITS", "DOES NOT FIT"))
    assert code in (0, 1)


def test_raspberry_pi_board_runs_under_qemu_user(capsys: pytest.CaptureFixture[str]) -> None:
    _need("aarch64-linux-gnu-gcc", "qemu-aarch64")
    code, out, _ = _run(capsys, str(model_path("ad01_int8")), "--board", "rpi-4b", "--emulate", "--json")
    em = json.loads(out)["emulation"]
    assert em["bit_exact"] is True
    assert em["target"].startswith("qemu-aarch64 -cpu cortex-a72")
    assert em["instructions"] is None and em["cycles_est"] is None  # qemu-user counts none
    assert em["flash_bytes"] > 0
    assert code == 0


def test_board_without_emulation_target(capsys: pytest.CaptureFixture[str]) -> None:
    for board in ("esp32-s3", "host"):
        code, out, err = _run(capsys, str(model_path("kws_ref_model")), "--board", board, "--emulate")
        assert code == 2
        assert "has no emulation target" in err and "nucleo-l4r5zi" in err  # names boards that have one
        assert out == ""


def test_unknown_board(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, str(model_path("kws_ref_model")), "--board", "nucleo-l4r5z", "--emulate")
    assert code == 2 and "no board named 'nucleo-l4r5z'" in err


def test_missing_tool_names_the_debian_package(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(emu_targets.shutil, "which", lambda t: None if t == "arm-none-eabi-gcc" else real(t))
    code, _, err = _run(capsys, str(model_path("kws_ref_model")), "--board", "nucleo-l4r5zi", "--emulate")
    assert code == 2
    assert "arm-none-eabi-gcc is not installed" in err and "apt-get install gcc-arm-none-eabi" in err


def _small_flash_board(tmp_path: Path) -> Path:
    text = (ROOT / "board_profiles" / "nucleo-l4r5zi.toml").read_text()
    text = text.replace('name = "nucleo-l4r5zi"', 'name = "small-flash"')
    lines = [
        "flash_bytes = 262144" if line.startswith("flash_bytes =") else line for line in text.splitlines()
    ]
    path = tmp_path / "small-flash.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_model_over_the_flash_budget_does_not_fit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _need("arm-none-eabi-gcc", "qemu-system-arm")
    # ad01's 264 KB of FC weights on a 256 KB-flash M4 board: measured and estimated both fail.
    board = _small_flash_board(tmp_path)
    code, out, _ = _run(capsys, str(model_path("ad01_int8")), "--board", str(board), "--emulate", "--json")
    r = json.loads(out)
    assert code == 1 and r["fits"] is False
    flash = next(b for b in r["emulation"]["budgets"] if b["name"] == "flash")
    assert not flash["ok"] and flash["used"] == r["emulation"]["flash_bytes"]
    assert r["emulation"]["bit_exact"] is True  # it still ran, and says by how much it misses


def test_cli_entry_point(tmp_path: Path) -> None:
    # as a user runs it: a separate process, exit code 2 and one line on stderr
    proc = subprocess.run(
        [sys.executable, "-m", "runtime.validate", str(model_path("kws_ref_model")), "--board", "esp32-s3", "--emulate"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: board esp32-s3")
