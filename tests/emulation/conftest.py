"""Fixtures of the emulation suite: one runner per target, csrc/ compiled once
per target per session (a session cache directory), and a skip naming the
Debian package when a tool is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.boards import load_board
from runtime.emulation import EmulationUnavailable


@pytest.fixture(scope="session")
def emu_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulation-cache")


def _or_skip(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except EmulationUnavailable as exc:
        pytest.skip(f"emulation tool missing: {exc}")


@pytest.fixture(scope="session")
def cortex_m(emu_cache: Path) -> Callable[[str], Any]:
    """cortex_m(board_name) -> a CortexM runner (cached per board), or a skip."""
    from runtime.emulation.cortex_m import CortexM

    runners: dict[str, Any] = {}

    def get(board: str) -> Any:
        if board not in runners:
            b = load_board(board)
            runners[board] = _or_skip(lambda: CortexM(b, emu_cache))
        return runners[board]

    return get


@pytest.fixture(scope="session")
def linux_user(emu_cache: Path) -> Callable[[str, str | None], Any]:
    """linux_user(target, cpu) -> a LinuxUser runner, or a skip."""
    from runtime.emulation.linux import LinuxUser

    runners: dict[tuple[str, str | None], Any] = {}

    def get(target: str, cpu: str | None = None) -> Any:
        if (target, cpu) not in runners:
            runners[(target, cpu)] = _or_skip(lambda: LinuxUser(target, cpu, emu_cache))
        return runners[(target, cpu)]

    return get
