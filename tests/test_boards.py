"""Board profiles: every shipped file against the schema, every schema rule against a broken file,
and the real-data values and cycle models against what the datasheets and MLPerf Tiny say."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from runtime.boards import (
    CORES,
    EMULATION_TARGETS,
    ISA_FEATURES,
    KINDS,
    Board,
    BoardProfileError,
    UnknownBoardError,
    list_boards,
    list_boards_table,
    load_board,
)
from runtime.errors import TinyRTError
from runtime.paths import board_profiles_dir

SHIPPED = [
    "esp32-s3",
    "host",
    "nano33-ble-sense",
    "nucleo-l4r5zi",
    "pico",
    "pico2",
    "rpi-3b",
    "rpi-4b",
    "rpi-5",
    "rpi-zero-2w",
    "sparkfun-edge",
    "stm32f746g-disco",
]

TOP_KEYS = [
    "name",
    "title",
    "kind",
    "core",
    "cores",
    "isa_features",
    "clock_hz",
    "ram_bytes",
    "flash_bytes",
    "ram_reserved_bytes",
    "flash_reserved_bytes",
    "latency_budget_ms",
    "cycle_model",
    "emulation",
]
CYCLE_KEYS = [
    "source",
    "conv_cycles_per_mac",
    "depthwise_cycles_per_mac",
    "fully_connected_cycles_per_mac",
    "elementwise_cycles_per_element",
    "per_op_overhead_cycles",
    "cpi",
]
EMULATION_KEYS = ["target", "machine", "cpu"]
ALL_KEYS = TOP_KEYS + [f"cycle_model.{k}" for k in CYCLE_KEYS] + [f"emulation.{k}" for k in EMULATION_KEYS]


# ---------------------------------------------------------------------------
# helpers: a valid profile as a dict, mutated and written back as TOML


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        if isinstance(value, float) and math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for everything used here
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # inline table, only for "a table where a value belongs" tests
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _dump(data: dict[str, Any]) -> str:
    scalars = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [
        f"\n[{k}]\n" + "\n".join(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
        for k, v in data.items()
        if isinstance(v, dict)
    ]
    return "\n".join(scalars) + "\n" + "\n".join(tables) + "\n"


def _valid(name: str = "myboard") -> dict[str, Any]:
    data = tomllib.loads((board_profiles_dir() / "nucleo-l4r5zi.toml").read_text())
    data["name"] = name
    return data


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    target = data
    for p in parents:
        target = target[p]
    target[leaf] = value


def _delete(data: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    target = data
    for p in parents:
        target = target[p]
    del target[leaf]


def _write(tmp_path: Path, data: dict[str, Any], stem: str = "myboard") -> Path:
    path = tmp_path / f"{stem}.toml"
    path.write_text(_dump(data))
    return path


def _broken(tmp_path: Path, dotted: str, value: Any) -> tuple[Path, BoardProfileError]:
    data = _valid()
    _set(data, dotted, value)
    path = _write(tmp_path, data)
    with pytest.raises(BoardProfileError) as info:
        load_board(path)
    return path, info.value


def _assert_names(err: BoardProfileError, path: Path, key: str | None, *problem: str) -> None:
    message = str(err)
    assert str(path) in message, message
    if key is not None:
        assert err.key == key, message
        assert key in message, message
    for fragment in problem:
        assert fragment in message, message


# ---------------------------------------------------------------------------
# shipped profiles


def test_every_shipped_profile_loads_and_passes_the_schema() -> None:
    boards = list_boards()
    assert [b.name for b in boards] == SHIPPED
    for b in boards:
        assert isinstance(b, Board)
        assert b.path.stem == b.name
        assert b.kind in KINDS and b.core in CORES
        assert set(b.isa_features) <= set(ISA_FEATURES)
        assert b.emulation.target in EMULATION_TARGETS
        assert load_board(b.name) == b  # by name and by the listing: the same board


def test_every_shipped_value_has_a_source_comment() -> None:
    # The brief: a source (URL or "estimate: ...") on the value's line or the line above.
    # cycle_model.source is itself the provenance of the coefficients.
    for path in sorted(board_profiles_dir().glob("*.toml")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if not re.match(r"^[a-z_]+\s*=", line) or line.startswith("source"):
                continue
            inline = re.search(r"\s#\s*\S", line.split("=", 1)[1]) is not None
            above = i > 0 and lines[i - 1].lstrip().startswith("#")
            assert inline or above, f"{path.name}:{i + 1}: {line!r} has no source comment"


def _comment_for(lines: list[str], key: str) -> str:
    """The inline comment of `key = ...` plus the comment lines directly above it."""
    for i, line in enumerate(lines):
        if line.startswith(f"{key} ="):
            above = []
            j = i - 1
            while j >= 0 and lines[j].lstrip().startswith("#"):
                above.insert(0, lines[j])
                j -= 1
            return "\n".join([*above, line.split("#", 1)[1] if "#" in line else ""])
    raise AssertionError(f"no {key} line")


def test_estimates_are_marked_and_facts_cite_a_source() -> None:
    # Reserves and budgets have no datasheet: each must say it is an estimate, right where it is set.
    for path in sorted(board_profiles_dir().glob("*.toml")):
        lines = path.read_text().splitlines()
        for key in ("ram_reserved_bytes", "latency_budget_ms"):
            assert "estimate" in _comment_for(lines, key), f"{path.name}: {key} is not marked as an estimate"
        if path.stem != "host":
            assert "https://" in path.read_text(), f"{path.name} cites no datasheet or product page"
    # the host profile says it is generic, not a product
    assert "GENERIC" in (board_profiles_dir() / "host.toml").read_text()


# ---------------------------------------------------------------------------
# real data


def test_nucleo_l4r5zi_matches_the_st_datasheet() -> None:
    b = load_board("nucleo-l4r5zi")
    assert (b.kind, b.core, b.cores) == ("mcu", "cortex-m4", 1)
    assert b.ram_bytes == 655360  # 640 KB SRAM
    assert b.flash_bytes == 2097152  # 2 MB flash
    assert b.clock_hz == 120_000_000
    assert set(b.isa_features) == {"dsp", "fpu-sp"}
    assert (b.emulation.target, b.emulation.machine, b.emulation.cpu) == ("qemu-system-arm", "mps2-an386", "cortex-m4")


def test_pico_and_pico2_match_the_raspberry_pi_datasheets() -> None:
    pico = load_board("pico")
    assert pico.ram_bytes == 264 * 1024
    assert pico.flash_bytes == 2 * 1024 * 1024
    assert (pico.core, pico.cores, pico.clock_hz) == ("cortex-m0plus", 2, 133_000_000)
    assert pico.isa_features == ()  # no DSP, no FPU
    pico2 = load_board("pico2")
    assert pico2.ram_bytes == 520 * 1024
    assert pico2.flash_bytes == 4 * 1024 * 1024
    assert (pico2.core, pico2.clock_hz) == ("cortex-m33", 150_000_000)


@pytest.mark.parametrize(
    ("name", "core", "clock_hz", "ram_bytes", "flash_bytes"),
    [
        ("stm32f746g-disco", "cortex-m7", 216_000_000, 320 * 1024, 1024 * 1024),
        ("nano33-ble-sense", "cortex-m4", 64_000_000, 256 * 1024, 1024 * 1024),
        ("sparkfun-edge", "cortex-m4", 48_000_000, 384 * 1024, 1024 * 1024),
        ("esp32-s3", "xtensa-lx7", 240_000_000, 512 * 1024, 8 * 1024 * 1024),
        ("rpi-zero-2w", "cortex-a53", 1_000_000_000, 512 << 20, None),
        ("rpi-3b", "cortex-a53", 1_200_000_000, 1 << 30, None),
        ("rpi-4b", "cortex-a72", 1_500_000_000, 1 << 30, None),
        ("rpi-5", "cortex-a76", 2_400_000_000, 2 << 30, None),
    ],
)
def test_datasheet_values(name: str, core: str, clock_hz: int, ram_bytes: int, flash_bytes: int | None) -> None:
    b = load_board(name)
    assert (b.core, b.clock_hz, b.ram_bytes) == (core, clock_hz, ram_bytes)
    if flash_bytes is not None:
        assert b.flash_bytes == flash_bytes


def test_every_board_leaves_room_and_has_a_sane_clock() -> None:
    for b in list_boards():
        assert 0 <= b.ram_reserved_bytes < b.ram_bytes
        assert 0 <= b.flash_reserved_bytes < b.flash_bytes
        assert b.ram_available == b.ram_bytes - b.ram_reserved_bytes > 0
        assert b.flash_available == b.flash_bytes - b.flash_reserved_bytes > 0
        assert b.latency_budget_ms > 0
        if b.kind == "mcu":
            assert 16e6 <= b.clock_hz <= 1e9, b.name
            assert b.ram_bytes <= 8 << 20, b.name  # on-chip SRAM, never PSRAM/SDRAM
            assert b.ram_reserved_bytes < b.ram_bytes // 2, b.name  # most of the SRAM is for the model
        else:
            assert b.clock_hz >= 500e6, b.name


def test_emulation_targets_fit_the_cores() -> None:
    for b in list_boards():
        em = b.emulation
        assert em.target in EMULATION_TARGETS
        if b.core.startswith("cortex-a"):
            # user mode, the board's own core (QEMU 7.2 has cortex-a53, -a72 and -a76)
            assert (em.target, em.machine, em.cpu) == ("qemu-aarch64", "", b.core), b.name
        elif b.core.startswith("cortex-m"):
            assert em.target == "qemu-system-arm" and em.machine.startswith("mps"), b.name
        else:
            assert (em.target, em.machine, em.cpu) == ("none", "", ""), b.name
    # the stand-ins the brief asks for
    assert load_board("sparkfun-edge").emulation.machine == "mps2-an386"
    assert load_board("nano33-ble-sense").emulation.machine == "mps2-an386"
    assert load_board("stm32f746g-disco").emulation.machine == "mps2-an500"
    assert load_board("pico2").emulation.machine == "mps2-an505"
    # QEMU's mps2-an385 accepts only cortex-m3; it runs the Pico's ARMv6-M code unchanged
    assert (load_board("pico").emulation.machine, load_board("pico").emulation.cpu) == ("mps2-an385", "cortex-m3")


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm is not installed")
def test_qemu_accepts_every_shipped_machine_cpu_pair() -> None:
    pairs = {(b.emulation.machine, b.emulation.cpu) for b in list_boards() if b.emulation.target == "qemu-system-arm"}
    # A rejected pair exits at once with an error; an accepted one waits (-S: CPU stopped) until killed.
    # All pairs start together so the test waits once.
    procs = {
        pair: subprocess.Popen(
            [
                "qemu-system-arm",
                "-M",
                pair[0],
                "-cpu",
                pair[1],
                "-S",
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "none",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pair in sorted(pairs)
    }
    time.sleep(1.5)
    rejected = {}
    for pair, proc in procs.items():
        if proc.poll() is None:
            proc.kill()
        elif proc.returncode != 0:
            rejected[pair] = proc.stderr.read().strip() if proc.stderr else ""
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert not rejected, f"QEMU rejects: {rejected}"


@pytest.mark.skipif(shutil.which("qemu-aarch64") is None, reason="qemu-aarch64 is not installed")
def test_qemu_aarch64_knows_every_shipped_cpu() -> None:
    # QEMU 7.2 prints the list and exits with status 1, so the status is not checked
    listing = subprocess.run(["qemu-aarch64", "-cpu", "help"], capture_output=True, text=True).stdout
    known = set(listing.split())
    for b in list_boards():
        if b.emulation.target == "qemu-aarch64":
            assert b.emulation.cpu in known, b.name


# Per-layer-kind MAC counts of the MLPerf Tiny models in tests/models (conv, depthwise, FC MACs,
# elementwise output elements, operators other than reshapes), and published latencies.
KWS = (2_368_000, 288_000, 768, 76, 12)
VWW = (6_690_816, 798_336, 512, 258, 30)
IC = (12_500_992, 0, 640, 28_746, 15)
AD = (0, 0, 264_192, 0, 10)
PERSON_DETECT = (6_193_664, 964_224, 0, 258, 30)


def _model_ms(board: Board, model: tuple[int, int, int, int, int]) -> float:
    conv, depthwise, fc, elements, ops = model
    cm = board.cycle_model
    cycles = (
        cm.estimate_cycles("conv", macs=conv)
        + cm.estimate_cycles("depthwise", macs=depthwise)
        + cm.estimate_cycles("fully_connected", macs=fc)
        + cm.estimate_cycles("elementwise", elements=elements)
    )
    # estimate_cycles charges one overhead per call (4 calls); the models have `ops` operators
    cycles += (ops - 4) * cm.per_op_overhead_cycles
    return board.cycles_to_ms(cycles)


@pytest.mark.parametrize(
    ("model", "measured_ms"),
    [(KWS, 99.8), (VWW, 301.0), (IC, 389.6), (AD, 8.6)],
    ids=["kws", "vww", "ic", "ad"],
)
def test_nucleo_cycle_model_reproduces_mlperf_tiny_cmsis_nn(model: tuple[int, ...], measured_ms: float) -> None:
    # MLPerf Tiny v1.0 closed, microTVM + CMSIS-NN on NUCLEO-L4R5ZI (tiny_results_v1.0, OctoML)
    estimate = _model_ms(load_board("nucleo-l4r5zi"), model)
    assert estimate == pytest.approx(measured_ms, rel=0.1)


def test_nucleo_estimates_sit_between_published_implementations() -> None:
    b = load_board("nucleo-l4r5zi")
    # slower than the vendor compiler (X-CUBE-AI v1.0: 75.1 ms), faster than TFLM reference v0.5 (181.9 ms)
    assert 75.1 < _model_ms(b, KWS) < 181.9
    assert 230.5 < _model_ms(b, VWW) < 600.5


def test_esp32_s3_cycle_model_reproduces_esp_nn_person_detection() -> None:
    # esp-tflite-micro README: person detection 54 ms at 240 MHz with ESP-NN
    assert _model_ms(load_board("esp32-s3"), PERSON_DETECT) == pytest.approx(54.0, rel=0.1)


def test_cycle_models_rank_the_cores_as_their_microarchitectures_do() -> None:
    conv = {b.name: b.cycle_model.conv_cycles_per_mac for b in list_boards()}
    # no SIMD MAC on the M0+; dual issue on the M7; NEON on the A-class; dotprod on the A76
    assert conv["pico"] > 3 * conv["nucleo-l4r5zi"]
    assert conv["stm32f746g-disco"] < conv["nucleo-l4r5zi"]
    assert conv["rpi-5"] < conv["rpi-4b"] < conv["rpi-3b"] == conv["rpi-zero-2w"] < 1.0
    for b in list_boards():
        cm = b.cycle_model
        # depthwise reuses each weight far less than a full convolution: never cheaper per MAC
        assert cm.depthwise_cycles_per_mac >= cm.conv_cycles_per_mac, b.name
        assert len(cm.source) > 40, b.name


def test_a_bigger_board_runs_kws_faster() -> None:
    ms = {b.name: _model_ms(b, KWS) for b in list_boards()}
    assert ms["pico"] > ms["nucleo-l4r5zi"] > ms["stm32f746g-disco"] > ms["rpi-zero-2w"] > ms["rpi-4b"] > ms["rpi-5"]


# ---------------------------------------------------------------------------
# loading by name and by path


def test_unknown_name_lists_the_available_boards() -> None:
    with pytest.raises(UnknownBoardError) as info:
        load_board("nucleo-l4r5")
    message = str(info.value)
    assert "'nucleo-l4r5'" in message
    for name in SHIPPED:
        assert name in message
    assert isinstance(info.value, BoardProfileError)
    assert isinstance(info.value, TinyRTError) and isinstance(info.value, ValueError)


def test_empty_name_is_unknown() -> None:
    with pytest.raises(UnknownBoardError, match="available boards"):
        load_board("")


def test_user_file_by_path(tmp_path: Path) -> None:
    data = _valid("my-board")
    data["title"] = "My own board"
    data["ram_bytes"] = 131072
    path = _write(tmp_path, data, "my-board")
    by_str = load_board(str(path))
    by_path = load_board(path)
    assert by_str == by_path
    assert (by_str.name, by_str.title, by_str.ram_bytes) == ("my-board", "My own board", 131072)
    assert by_str.path == path
    # everything else equals the profile it was copied from
    nucleo = load_board("nucleo-l4r5zi")
    assert by_str.cycle_model == nucleo.cycle_model and by_str.emulation == nucleo.emulation


def test_relative_toml_name_is_a_path_not_a_board_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, _valid("pico"), "pico")  # same name as a shipped board, but a file here
    monkeypatch.chdir(tmp_path)
    board = load_board("pico.toml")
    assert board.path == Path("pico.toml")
    assert board.core == "cortex-m4"  # the local copy of the NUCLEO data, not the shipped Pico


def test_missing_user_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(BoardProfileError) as info:
        load_board(path)
    _assert_names(info.value, path, None, "cannot read")


# ---------------------------------------------------------------------------
# every schema rule, one broken file each


@pytest.mark.parametrize("key", ALL_KEYS)
def test_missing_key(tmp_path: Path, key: str) -> None:
    data = _valid()
    _delete(data, key)
    path = _write(tmp_path, data)
    with pytest.raises(BoardProfileError) as info:
        load_board(path)
    _assert_names(info.value, path, key, "missing required key")


WRONG_TYPES = [
    ("name", 7, "expected a string"),
    ("title", ["x"], "expected a string"),
    ("kind", 1, "expected a string"),
    ("core", True, "expected a string"),
    ("cores", "1", "expected an integer"),
    ("cores", 1.0, "expected an integer"),
    ("cores", True, "expected an integer"),  # TOML booleans are not numbers
    ("isa_features", "dsp", "expected an array of strings"),
    ("isa_features", [1], "expected an array of strings"),
    ("clock_hz", 120e6, "expected an integer"),
    ("clock_hz", "120 MHz", "expected an integer"),
    ("ram_bytes", "640K", "expected an integer"),
    ("flash_bytes", 2.0, "expected an integer"),
    ("ram_reserved_bytes", [0], "expected an integer"),
    ("flash_reserved_bytes", False, "expected an integer"),
    ("latency_budget_ms", "100", "expected a number"),
    ("latency_budget_ms", True, "expected a number"),
    ("cycle_model", "fast", "expected a table"),
    ("emulation", ["qemu"], "expected a table"),
    ("cycle_model.source", 1, "expected a string"),
    ("cycle_model.conv_cycles_per_mac", "3.7", "expected a number"),
    ("cycle_model.depthwise_cycles_per_mac", [12.0], "expected a number"),
    ("cycle_model.fully_connected_cycles_per_mac", False, "expected a number"),
    ("cycle_model.elementwise_cycles_per_element", "10", "expected a number"),
    ("cycle_model.per_op_overhead_cycles", "2000", "expected a number"),
    ("cycle_model.cpi", {"x": 1}, "expected a number"),
    ("emulation.target", 3, "expected a string"),
    ("emulation.machine", 386, "expected a string"),
    ("emulation.cpu", ["cortex-m4"], "expected a string"),
]


@pytest.mark.parametrize(("key", "value", "problem"), WRONG_TYPES, ids=[f"{k}={v!r}" for k, v, _ in WRONG_TYPES])
def test_wrong_type(tmp_path: Path, key: str, value: Any, problem: str) -> None:
    path, err = _broken(tmp_path, key, value)
    _assert_names(err, path, key, problem)


BAD_VALUES = [
    ("cores", 0, "must be positive"),
    ("clock_hz", 0, "must be positive"),
    ("clock_hz", -120000000, "must be positive"),
    ("ram_bytes", 0, "must be positive"),
    ("ram_bytes", -655360, "must be positive"),
    ("flash_bytes", 0, "must be positive"),
    ("ram_reserved_bytes", -1, "must be at least 0"),
    ("flash_reserved_bytes", -1, "must be at least 0"),
    ("latency_budget_ms", 0, "must be positive"),
    ("latency_budget_ms", -5.0, "must be positive"),
    ("latency_budget_ms", math.inf, "must be finite"),
    ("cycle_model.conv_cycles_per_mac", 0.0, "must be positive"),
    ("cycle_model.depthwise_cycles_per_mac", -1.0, "must be positive"),
    ("cycle_model.fully_connected_cycles_per_mac", math.nan, "must be finite"),
    ("cycle_model.elementwise_cycles_per_element", 0, "must be positive"),
    ("cycle_model.per_op_overhead_cycles", -1.0, "must not be negative"),
    ("cycle_model.cpi", 0.0, "must be positive"),
    ("cycle_model.source", "  ", "must not be empty"),
    ("title", "", "must not be empty"),
]


@pytest.mark.parametrize(("key", "value", "problem"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_bad_value(tmp_path: Path, key: str, value: Any, problem: str) -> None:
    path, err = _broken(tmp_path, key, value)
    _assert_names(err, path, key, problem)


def test_integer_accepted_where_a_float_is_expected(tmp_path: Path) -> None:
    data = _valid()
    data["latency_budget_ms"] = 100
    data["cycle_model"]["cpi"] = 1
    board = load_board(_write(tmp_path, data))
    assert board.latency_budget_ms == 100.0 and isinstance(board.latency_budget_ms, float)
    assert board.cycle_model.cpi == 1.0 and isinstance(board.cycle_model.cpi, float)


def test_zero_overhead_and_zero_reserves_are_allowed(tmp_path: Path) -> None:
    data = _valid()
    data["ram_reserved_bytes"] = 0
    data["flash_reserved_bytes"] = 0
    data["cycle_model"]["per_op_overhead_cycles"] = 0
    board = load_board(_write(tmp_path, data))
    assert board.ram_available == board.ram_bytes and board.cycle_model.per_op_overhead_cycles == 0.0


@pytest.mark.parametrize(
    ("key", "value", "total"),
    [
        ("ram_reserved_bytes", 655360, "ram_bytes (655360)"),
        ("ram_reserved_bytes", 10**9, "ram_bytes (655360)"),
        ("flash_reserved_bytes", 2097152, "flash_bytes (2097152)"),
        ("flash_reserved_bytes", 4194304, "flash_bytes (2097152)"),
    ],
)
def test_reserved_must_be_less_than_total(tmp_path: Path, key: str, value: int, total: str) -> None:
    path, err = _broken(tmp_path, key, value)
    _assert_names(err, path, key, "must be less than", total)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("kind", "rtos", "unknown kind 'rtos'"),
        ("core", "cortex-m3", "unknown core 'cortex-m3'"),
        ("core", "Cortex-M4", "unknown core 'Cortex-M4'"),
        ("isa_features", ["dsp", "neon"], "unknown feature 'neon'"),
        ("emulation.target", "qemu-system-xtensa", "unknown emulation target 'qemu-system-xtensa'"),
        ("emulation.target", "renode", "unknown emulation target 'renode'"),
    ],
)
def test_unknown_enumerated_value_lists_the_allowed_ones(tmp_path: Path, key: str, value: Any, problem: str) -> None:
    path, err = _broken(tmp_path, key, value)
    _assert_names(err, path, key, problem, "expected")


def test_unknown_core_message_lists_every_core(tmp_path: Path) -> None:
    _, err = _broken(tmp_path, "core", "riscv")
    for core in CORES:
        assert core in str(err)


def test_core_must_fit_the_kind(tmp_path: Path) -> None:
    path, err = _broken(tmp_path, "core", "cortex-a72")
    _assert_names(err, path, "core", "not a mcu core")


@pytest.mark.parametrize(
    ("features", "problem"),
    [
        (["dsp", "avx2"], "cortex-m4 cannot have feature 'avx2'"),
        (["dsp", "fpu-dp"], "cortex-m4 cannot have feature 'fpu-dp'"),
        (["helium"], "cortex-m4 cannot have feature 'helium'"),
        (["dsp", "dsp"], "duplicate feature 'dsp'"),
    ],
)
def test_isa_features_must_fit_the_core(tmp_path: Path, features: list[str], problem: str) -> None:
    path, err = _broken(tmp_path, "isa_features", features)
    _assert_names(err, path, "isa_features", problem)


def test_empty_feature_list_is_valid(tmp_path: Path) -> None:
    data = _valid()
    data["isa_features"] = []
    assert load_board(_write(tmp_path, data)).isa_features == ()


def test_name_must_equal_file_stem(tmp_path: Path) -> None:
    path, err = _broken(tmp_path, "name", "nucleo-l4r5zi")
    _assert_names(err, path, "name", "'nucleo-l4r5zi' must equal the file name stem 'myboard'")


def test_name_must_be_a_plain_identifier(tmp_path: Path) -> None:
    data = _valid("My_Board")
    path = _write(tmp_path, data, "My_Board")
    with pytest.raises(BoardProfileError) as info:
        load_board(path)
    _assert_names(info.value, path, "name", "lower-case")


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("ram_kb", "unknown key"),
        ("cycle_model.matmul_cycles_per_mac", "unknown key"),
        ("emulation.kernel", "unknown key"),
    ],
)
def test_unknown_key(tmp_path: Path, key: str, problem: str) -> None:
    path, err = _broken(tmp_path, key, 1)
    _assert_names(err, path, key, problem, "allowed here")


def test_unknown_table(tmp_path: Path) -> None:
    path, err = _broken(tmp_path, "power", {"active_mw": 30})
    _assert_names(err, path, "power", "unknown key")


@pytest.mark.parametrize(
    ("emulation", "key", "problem"),
    [
        ({"target": "qemu-system-arm", "machine": "", "cpu": "cortex-m4"}, "emulation.machine", "needs a machine"),
        ({"target": "qemu-system-arm", "machine": "mps2-an386", "cpu": ""}, "emulation.cpu", "needs a cpu"),
        ({"target": "qemu-aarch64", "machine": "virt", "cpu": "cortex-a53"}, "emulation.machine", "must be empty"),
        ({"target": "qemu-arm", "machine": "", "cpu": ""}, "emulation.cpu", "needs a cpu"),
        ({"target": "none", "machine": "mps2-an386", "cpu": ""}, "emulation.machine", "must be empty"),
        ({"target": "none", "machine": "", "cpu": "cortex-m4"}, "emulation.cpu", "must be empty"),
        (
            {"target": "qemu-system-arm", "machine": "mps2-an385", "cpu": "cortex-m0"},
            "emulation.cpu",
            "mps2-an385 only runs cpu 'cortex-m3'",
        ),
        (
            {"target": "qemu-system-arm", "machine": "mps2-an386", "cpu": "cortex-m7"},
            "emulation.cpu",
            "mps2-an386 only runs cpu 'cortex-m4'",
        ),
    ],
)
def test_emulation_fields_must_agree(tmp_path: Path, emulation: dict[str, str], key: str, problem: str) -> None:
    path, err = _broken(tmp_path, "emulation", emulation)
    _assert_names(err, path, key, problem)


def test_unlisted_qemu_machine_is_passed_through(tmp_path: Path) -> None:
    # newer QEMU versions add machines; only the pairs QEMU is known to refuse are rejected
    data = _valid()
    data["emulation"] = {"target": "qemu-system-arm", "machine": "some-future-board", "cpu": "cortex-m4"}
    assert load_board(_write(tmp_path, data)).emulation.machine == "some-future-board"


def test_malformed_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "myboard.toml"
    text = _dump(_valid()).splitlines()
    text[4] = "ram_bytes = 640 KB"  # line 5
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(BoardProfileError) as info:
        load_board(path)
    _assert_names(info.value, path, None, "line 5", "malformed TOML")
    assert info.value.key is None


def test_duplicate_key_is_malformed_toml(tmp_path: Path) -> None:
    path = tmp_path / "myboard.toml"
    path.write_text(_dump(_valid()) + "\n[emulation]\ncpu = 'cortex-m4'\n")
    with pytest.raises(BoardProfileError, match=r"line \d+, column \d+: malformed TOML"):
        load_board(path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "myboard.toml"
    path.write_bytes(b'title = "caf\xe9"\n')
    with pytest.raises(BoardProfileError) as info:
        load_board(path)
    _assert_names(info.value, path, None, "not UTF-8")


def test_copy_of_a_shipped_file_is_valid(tmp_path: Path) -> None:
    # The helper round-trip itself: every shipped profile re-serialised loads to the same values.
    for board in list_boards():
        data = tomllib.loads(board.path.read_text())
        loaded = load_board(_write(tmp_path, copy.deepcopy(data), board.name))
        assert dataclasses.replace(loaded, path=board.path) == board


# ---------------------------------------------------------------------------
# the Python API the validator uses


def test_estimate_cycles_formula() -> None:
    cm = load_board("nucleo-l4r5zi").cycle_model
    overhead = cm.per_op_overhead_cycles
    assert cm.estimate_cycles("conv", macs=1000, elements=10) == 1000 * cm.conv_cycles_per_mac + overhead
    assert cm.estimate_cycles("depthwise", 1000, 0) == 1000 * cm.depthwise_cycles_per_mac + overhead
    assert cm.estimate_cycles("fully_connected", 640, 1) == 640 * cm.fully_connected_cycles_per_mac + overhead
    assert cm.estimate_cycles("elementwise", 0, 250) == 250 * cm.elementwise_cycles_per_element + overhead
    assert cm.estimate_cycles("elementwise", macs=0, elements=0) == overhead  # an op still costs its dispatch
    assert isinstance(cm.estimate_cycles("conv", 1, 0), float)
    assert cm.instructions_to_cycles(1000) == 1000 * cm.cpi


@pytest.mark.parametrize(
    ("kind", "macs", "elements", "problem"),
    [
        ("matmul", 1, 0, "unknown layer kind 'matmul'"),
        ("conv", -1, 0, "macs must be a non-negative integer"),
        ("elementwise", 0, -5, "elements must be a non-negative integer"),
        ("conv", 1.5, 0, "macs must be a non-negative integer"),
    ],
)
def test_estimate_cycles_rejects_bad_arguments(kind: str, macs: Any, elements: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        load_board("pico").cycle_model.estimate_cycles(kind, macs, elements)


def test_latency_from_cycles() -> None:
    b = load_board("nucleo-l4r5zi")
    assert b.cycles_to_ms(120_000_000) == pytest.approx(1000.0)
    assert b.cycles_to_ms(b.cycle_model.estimate_cycles("conv", 1_000_000, 0)) == pytest.approx(
        (1_000_000 * 3.7 + 2000) / 120e6 * 1000
    )


def test_available_memory() -> None:
    b = load_board("nucleo-l4r5zi")
    assert b.ram_available == 655360 - 65536
    assert b.flash_available == 2097152 - 131072


def test_board_is_frozen_and_hashable() -> None:
    b = load_board("pico")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.ram_bytes = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.cycle_model.cpi = 1.0  # type: ignore[misc]
    assert len({b, load_board("pico")}) == 1
    assert b.has_feature("dsp") is False and load_board("pico2").has_feature("dsp") is True


def test_emulation_command() -> None:
    assert load_board("nucleo-l4r5zi").emulation.command() == [
        "qemu-system-arm",
        "-M",
        "mps2-an386",
        "-cpu",
        "cortex-m4",
    ]
    assert load_board("rpi-4b").emulation.command() == ["qemu-aarch64", "-cpu", "cortex-a72"]
    assert load_board("host").emulation.command() == []


def test_list_boards_is_sorted_by_name() -> None:
    names = [b.name for b in list_boards()]
    assert names == sorted(names)


def test_list_boards_table() -> None:
    table = list_boards_table()
    lines = table.splitlines()
    assert table.endswith("\n")
    assert lines[0].split() == ["name", "title", "core", "cores", "clock", "RAM", "flash", "emulation"]
    assert len(lines) == 1 + len(SHIPPED)
    assert [line.split()[0] for line in lines[1:]] == SHIPPED
    by_name = {line.split()[0]: line for line in lines[1:]}
    nucleo = by_name["nucleo-l4r5zi"]
    for cell in ("STM32 NUCLEO-L4R5ZI", "cortex-m4", "120 MHz", "640 KiB", "2 MiB"):
        assert cell in nucleo
    assert nucleo.endswith("qemu-system-arm -M mps2-an386 -cpu cortex-m4")
    assert "264 KiB" in by_name["pico"] and "133 MHz" in by_name["pico"]
    assert "2.4 GHz" in by_name["rpi-5"] and by_name["rpi-5"].endswith("qemu-aarch64 -cpu cortex-a76")
    assert by_name["esp32-s3"].endswith("none")
    # columns line up: every row has the emulation column at the header's offset
    column = lines[0].index("emulation")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[1:])
    assert all(line == line.rstrip() for line in lines)


def test_list_boards_table_of_given_boards() -> None:
    table = list_boards_table([load_board("pico"), load_board("esp32-s3")])
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["esp32-s3", "pico"]


def test_missing_key_points_at_a_likely_misspelling(tmp_path: Path) -> None:
    data = _valid()
    data["ram_byte"] = data.pop("ram_bytes")
    data["cycle_model"]["conv_cycle_per_mac"] = data["cycle_model"].pop("conv_cycles_per_mac")
    path = _write(tmp_path, data)
    with pytest.raises(BoardProfileError) as info:
        load_board(path)
    _assert_names(info.value, path, "ram_bytes", "missing required key", "'ram_byte' a misspelling")
    del data["ram_byte"]
    data["ram_bytes"] = 655360
    path = _write(tmp_path, data)
    with pytest.raises(BoardProfileError) as info:
        load_board(path)
    _assert_names(info.value, path, "cycle_model.conv_cycles_per_mac", "'cycle_model.conv_cycle_per_mac' a misspelling")
