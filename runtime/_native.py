"""The compiled C library (cffi API mode), or a clear message when it is missing."""

from __future__ import annotations

try:
    from ._tinyrt import ffi, lib  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "tinyrt's C library is not built. Install the package (pip install .) "
        "or build it in place with: python runtime/_build.py"
    ) from exc

__all__ = ["ffi", "lib"]
