"""Streaming mode: a ring buffer of samples that yields a model input every
`hop` new samples over the last `window` samples.

How samples map to the model's input: the input tensor (one input only) has
S values in C order.  A window of N samples fills it, so each sample is
F = S / N values (N must divide S), and the input is the last N samples in
time order, oldest first, flattened and reshaped to the input shape.  So:

    kws_ref_model, input (1, 49, 10, 1), --window 49: a sample is one
        10-value MFCC frame; the time axis is axis 1.
    ad01_int8, input (1, 640), --window 640: a sample is one value;
        --window 5 makes a sample one 128-value spectrogram frame.

The first window is complete after N samples; then a window ends every M
samples: inferences run after sample counts N, N + M, N + 2M, ...  (M > N
skips M - N samples between windows).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def values_per_sample(input_shape: tuple[int, ...], window: int) -> int:
    total = int(np.prod(input_shape, dtype=np.int64))
    if window < 1:
        raise ValueError(f"--window must be at least 1, got {window}")
    if total % window:
        raise ValueError(
            f"--window {window} does not divide the input's {total} values (shape {list(input_shape)}): "
            f"a window of N samples must fill the input exactly, so N must be a divisor of {total}"
        )
    return total // window


class SampleWindow:
    """Fixed memory: 2 * window samples.

    Every sample is written twice, at i and i + window (i = count mod window),
    so the last `window` samples are always one contiguous slice of the
    buffer and a window is handed to the model without copying or rolling.
    """

    def __init__(self, window: int, hop: int, sample_values: int, dtype: np.dtype | type):
        if window < 1 or hop < 1 or sample_values < 1:
            raise ValueError(f"window, hop and sample size must be >= 1, got {window}, {hop}, {sample_values}")
        self.window = window
        self.hop = hop
        self.sample_values = sample_values
        self.dtype = np.dtype(dtype)
        self._buf = np.zeros((2 * window, sample_values), dtype=self.dtype)
        self.count = 0  # samples received since the last reset
        self._next_end = window  # sample count at which the next window is complete

    def reset(self) -> None:
        self.count = 0
        self._next_end = self.window
        self._buf[:] = 0

    def push(self, samples: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Add samples (k * sample_values values, any shape).  Yields
        (end_sample, window) for every window completed, where end_sample is
        the sample count just after the window's last sample and window is a
        (window, sample_values) view valid until the generator is resumed.
        The generator must be run to the end for all samples to be added."""
        flat = np.asarray(samples).reshape(-1)
        if flat.size % self.sample_values:
            raise ValueError(f"{flat.size} values is not a whole number of {self.sample_values}-value samples")
        rows = flat.reshape(-1, self.sample_values)
        pos = 0
        while pos < len(rows):
            # Write up to the next window end, then hand that window out.
            take = min(len(rows) - pos, self._next_end - self.count)
            self._write(rows[pos : pos + take])
            pos += take
            if self.count == self._next_end:
                self._next_end += self.hop
                start = self.count % self.window
                yield self.count, self._buf[start : start + self.window]

    def _write(self, rows: np.ndarray) -> None:
        if len(rows) > self.window:  # only the newest `window` can matter
            self.count += len(rows) - self.window
            rows = rows[-self.window :]
        idx = (self.count + np.arange(len(rows))) % self.window
        self._buf[idx] = rows
        self._buf[idx + self.window] = rows
        self.count += len(rows)
