"""python -m runtime.validate: fit reports against board budgets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import model_path, random_inputs, reference_interpreter, run_reference

from runtime.backends.c import CModel
from runtime.boards import load_board
from runtime.graph import parse_model
from runtime.validate import KERNEL_STACK_BYTES, report

ROOT = Path(__file__).resolve().parent.parent
MCU_BOARDS = ["nucleo-l4r5zi", "pico", "pico2", "stm32f746g-disco", "nano33-ble-sense", "sparkfun-edge", "esp32-s3"]
MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "micro_speech_quantized"]


def validate_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "runtime.validate", *args], capture_output=True, text=True, timeout=120, env=env
    )


def board_file(tmp_path: Path, base: str, **overrides: object) -> Path:
    """A copy of a shipped profile with some top-level values replaced."""
    text = load_board(base).path.read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        if key in overrides:
            value = overrides[key]
            line = f"{key} = {json.dumps(value) if isinstance(value, str) else value}"
        lines.append(line)
    path = tmp_path / f"{overrides.get('name', base)}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", MODELS)
def test_json_report_has_the_documented_fields(name):
    out = validate_cli(str(model_path(name)), "--board", "nucleo-l4r5zi", "--json")
    assert out.returncode in (0, 1), out.stderr
    r = json.loads(out.stdout)
    for key in ("board", "arena_bytes", "persistent_bytes", "weight_bytes", "ram_bytes", "flash_bytes", "macs",
                "latency_ms", "fits", "budgets", "layers"):
        assert key in r
    assert r["fits"] == all(b["ok"] for b in r["budgets"])
    assert out.returncode == (0 if r["fits"] else 1)
    assert {b["name"] for b in r["budgets"]} == {"ram", "flash", "latency_ms"}
    assert r["macs"] == sum(layer["macs"] for layer in r["layers"])
    assert r["weight_bytes"] >= sum(layer["weight_bytes"] for layer in r["layers"]) > 0


@pytest.mark.parametrize("name", MODELS)
def test_c_backend_runs_in_exactly_the_reported_arena(name):
    r = report(model_path(name), "nucleo-l4r5zi")
    model = CModel(parse_model(model_path(name)))
    assert model.arena_bytes == r["arena_bytes"] == model._arena.nbytes
    raw, arena = model._arena_raw, model._arena
    start = arena.ctypes.data - raw.ctypes.data
    raw[:start] = 0xA5
    raw[start + arena.nbytes :] = 0xA5
    ref = reference_interpreter(model_path(name))
    x = random_inputs(model, np.random.default_rng(11))
    np.testing.assert_array_equal(model.run(x)[0], run_reference(ref, x)[0])
    assert np.all(raw[:start] == 0xA5) and np.all(raw[start + arena.nbytes :] == 0xA5)


def test_vww_fits_the_mlperf_board_ram_but_not_a_64k_board(tmp_path):
    r = report(model_path("vww_96_int8"), "nucleo-l4r5zi")
    ram = next(b for b in r["budgets"] if b["name"] == "ram")
    assert ram["ok"]
    small = board_file(tmp_path, "nucleo-l4r5zi", name="tiny64k", ram_bytes=65536, ram_reserved_bytes=16384)
    r2 = report(model_path("vww_96_int8"), small)
    ram2 = next(b for b in r2["budgets"] if b["name"] == "ram")
    assert not ram2["ok"] and not r2["fits"]
    out = validate_cli(str(model_path("vww_96_int8")), "--board", str(small))
    assert out.returncode == 1 and "DOES NOT FIT" in out.stdout and "FAIL" in out.stdout


def test_every_mcu_profile_gives_a_verdict_for_every_model():
    for board in MCU_BOARDS:
        for name in MODELS:
            r = report(model_path(name), board)
            assert isinstance(r["fits"], bool)
            assert r["ram_bytes"] == r["arena_bytes"] + KERNEL_STACK_BYTES  # constants stay in flash on an MCU


def test_budget_edges_are_inclusive(tmp_path):
    base = report(model_path("ad01_int8"), "nucleo-l4r5zi")
    exact = board_file(
        tmp_path,
        "nucleo-l4r5zi",
        name="exact",
        ram_bytes=base["ram_bytes"] + 1000,
        ram_reserved_bytes=1000,
        flash_bytes=base["flash_bytes"] + 2000,
        flash_reserved_bytes=2000,
    )
    r = report(model_path("ad01_int8"), exact, latency_budget_ms=base["latency_ms"])
    assert [b["ok"] for b in r["budgets"]] == [True, True, True]
    one_less = board_file(
        tmp_path,
        "nucleo-l4r5zi",
        name="oneless",
        ram_bytes=base["ram_bytes"] + 999,
        ram_reserved_bytes=1000,
        flash_bytes=base["flash_bytes"] + 1999,
        flash_reserved_bytes=2000,
    )
    r = report(model_path("ad01_int8"), one_less, latency_budget_ms=base["latency_ms"] * 0.999)
    assert [b["ok"] for b in r["budgets"]] == [False, False, False]


def test_latency_budget_flag_overrides_the_profile():
    fast = validate_cli(str(model_path("ad01_int8")), "--board", "nucleo-l4r5zi", "--latency-budget-ms", "1000", "--json")
    slow = validate_cli(str(model_path("ad01_int8")), "--board", "nucleo-l4r5zi", "--latency-budget-ms", "0.001", "--json")
    assert json.loads(fast.stdout)["budgets"][2]["limit"] == 1000
    assert fast.returncode == 0 and slow.returncode == 1


def test_bad_input_exits_2(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "broken"\nram_bytes = "lots"\n')
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    cases = [
        ([str(model_path("kws_ref_model")), "--board", "no-such-board"], "no-such-board"),
        ([str(model_path("kws_ref_model")), "--board", str(broken)], "broken.toml"),
        ([str(tmp_path / "junk.tflite"), "--board", "pico"], "model"),
        ([str(model_path("hello_world_float")), "--board", "pico"], "FULLY_CONNECTED"),
        ([str(model_path("kws_ref_model"))], "--board"),
        ([str(model_path("kws_ref_model")), "--board", "pico", "--latency-budget-ms", "-5"], "positive"),
    ]
    for args, needle in cases:
        out = validate_cli(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert needle in out.stderr, (args, out.stderr)


def test_list_boards():
    out = validate_cli("--list-boards")
    assert out.returncode == 0
    for name in MCU_BOARDS + ["rpi-4b", "rpi-5", "host"]:
        assert name in out.stdout


def test_plot_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "memory.png"
    out = validate_cli(str(model_path("vww_96_int8")), "--board", "nucleo-l4r5zi", "--plot", str(png))
    assert out.returncode in (0, 1), out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
