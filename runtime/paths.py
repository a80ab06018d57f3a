"""Where the C sources and board profiles are, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"cannot find tinyrt's {name}/ (looked in {installed} and {checkout})")


def csrc_dir() -> Path:
    return _find("csrc")


def board_profiles_dir() -> Path:
    return _find("board_profiles")
