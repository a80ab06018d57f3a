"""Progress lines for the long steps (epochs, calibration batches) on stderr.

Keras prints its own per-epoch lines; this covers the steps Keras does not see,
such as the converter pulling calibration batches."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

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
    """Keras fit(verbose=...): always 0; `epoch_progress` prints instead.  Keras's
    bar (1) floods logs that are not terminals, and one line per epoch (2) is
    a thousand lines for a long distillation."""
    return 0


def epoch_progress(epochs: int, enabled: bool = True, what: str = "epoch") -> list[Any]:
    """Keras callbacks printing about ten lines over a fit: epoch i/N and its metrics."""
    if not enabled:
        return []
    from . import _tf

    keras = _tf.keras()
    step = max(1, epochs // 10)

    class _EpochLines(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
        def on_train_begin(self, logs: Any = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            n = epoch + 1
            if n % step == 0 or n == epochs or n == 1:
                metrics = ", ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
                say(f"{what} {n}/{epochs}: {metrics} ({time.perf_counter() - self._start:.1f} s)")

    return [_EpochLines()]
