"""Progress lines for the long steps (epochs, calibration batches) on stderr.

Keras prints its own per-epoch lines; this covers the steps Keras does not see,
such as the converter pulling calibration batches."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def say(message: str, enabled: bool = True) -> None:
    if enabled:
        print(f"[optimize] {message}", file=sys.stderr, flush=True)


def counted(items: Iterable[T], total: int, what: str, enabled: bool = True, every: int = 0) -> Iterator[T]:
    """Yield items, printing `what i/total` four times over the run (and at the end)."""
    step = every or max(1, total // 4)
    start = time.perf_counter()
    n = 0
    for n, item in enumerate(items, 1):
        yield item
        if enabled and (n % step == 0 or n == total):
            say(f"{what} {n}/{total} ({time.perf_counter() - start:.1f} s)")
    if enabled and n != total and n % step != 0:
        say(f"{what} {n}/{total} ({time.perf_counter() - start:.1f} s)")


def keras_verbosity(enabled: bool) -> int:
    """Keras fit(verbose=...): one line per epoch when shown (2), silent otherwise.
    The progress bar (1) floods logs that are not terminals, as in CI."""
    return 2 if enabled else 0
