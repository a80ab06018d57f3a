"""Training and evaluation data for the optimization toolchain.

DATA is either an .npz file with arrays `x` and `y`, or a folder holding
`x.npy` and `y.npy`, or a folder with one `<class>.npy` per class (the samples of
that class stacked along the first axis; classes are numbered in sorted file-name
order).  Everything here is numpy only: loading and checking data must work, and
fail clearly, before TensorFlow is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """The data cannot be used: missing arrays, mismatched lengths, bad labels or shapes."""


@dataclass
class Dataset:
    x: np.ndarray  # float32, (N, *sample_shape)
    y: np.ndarray  # int64 class indices, (N,)
    source: str = "arrays"
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.x, self.y = check_arrays(self.x, self.y, self.source)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return max(len(self.class_names), int(self.y.max()) + 1 if len(self.y) else 0)

    def subset(self, index: np.ndarray) -> Dataset:
        return Dataset(self.x[index], self.y[index], self.source, list(self.class_names))

    def split(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """A stratified (train, held-out) split; the held-out part has `fraction` of each class."""
        if not 0.0 < fraction < 1.0:
            raise DataError(f"split fraction must be in (0, 1), got {fraction}")
        rng = np.random.default_rng(seed)
        held: list[np.ndarray] = []
        for c in np.unique(self.y):
            members = np.flatnonzero(self.y == c)
            rng.shuffle(members)
            held.append(members[: int(round(fraction * len(members)))])
        held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
        mask = np.ones(len(self), dtype=bool)
        mask[held_idx] = False
        if not mask.any() or mask.all():
            raise DataError(f"{self.source}: {len(self)} samples are too few to hold out {fraction:.0%}")
        return self.subset(np.flatnonzero(mask)), self.subset(held_idx)

    def conform(self, input_shape: tuple[int | None, ...], num_outputs: int | None = None, what: str = "model") -> Dataset:
        """Check the data against a model's input shape (batch first) and class count.

        A missing trailing channel of 1 (8x8 images for an 8x8x1 input) is added;
        anything else that does not match is an error naming both shapes."""
        want = tuple(input_shape[1:])
        have = self.sample_shape
        x = self.x
        if len(want) == len(have) + 1 and want[-1] == 1 and _shape_matches(want[:-1], have):
            x = x[..., np.newaxis]
        elif not _shape_matches(want, have):
            raise DataError(
                f"{self.source}: samples have shape {list(have)} but the {what} takes "
                f"{['N' if d is None else d for d in input_shape]} (a batch of {list(want)})"
            )
        if num_outputs is not None and len(self.y) and int(self.y.max()) >= num_outputs:
            raise DataError(
                f"{self.source}: labels go up to {int(self.y.max())} but the {what} has {num_outputs} outputs "
                f"(classes 0..{num_outputs - 1})"
            )
        return Dataset(x, self.y, self.source, list(self.class_names))


def _shape_matches(want: tuple[int | None, ...], have: tuple[int, ...]) -> bool:
    return len(want) == len(have) and all(w is None or w == h for w, h in zip(want, have, strict=True))


def check_arrays(x: object, y: object, source: str = "arrays") -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise (x, y): float32 samples, int64 labels, same length."""
    xa = np.asarray(x)
    ya = np.asarray(y)
    if xa.dtype.kind not in "iuf" or xa.ndim < 2:
        raise DataError(f"{source}: x must be a numeric array of shape (N, ...), got {xa.dtype} {list(xa.shape)}")
    if ya.ndim == 2 and ya.shape[1] > 1:
        # One-hot (or soft) labels: the class is the largest entry.
        ya = ya.argmax(axis=1)
    elif ya.ndim == 2:
        ya = ya[:, 0]
    if ya.ndim != 1:
        raise DataError(f"{source}: y must be class labels of shape (N,) or one-hot (N, classes), got {list(ya.shape)}")
    if xa.shape[0] != ya.shape[0]:
        raise DataError(f"{source}: x has {xa.shape[0]} samples but y has {ya.shape[0]} labels")
    if ya.dtype.kind == "f":
        if not np.all(np.isfinite(ya)) or not np.all(ya == np.round(ya)):
            raise DataError(f"{source}: y must hold whole-number class labels, found non-integer values")
    elif ya.dtype.kind not in "iub":
        raise DataError(f"{source}: y must hold integer class labels, got dtype {ya.dtype}")
    ya = ya.astype(np.int64)
    if len(ya) and ya.min() < 0:
        raise DataError(f"{source}: labels must be >= 0, found {int(ya.min())}")
    xf = xa.astype(np.float32)
    if not np.all(np.isfinite(xf)):
        raise DataError(f"{source}: x holds NaN or infinite values")
    return xf, ya


def load_data(path: str | os.PathLike[str]) -> Dataset:
    """Read DATA: an .npz with x/y, a folder with x.npy/y.npy, or a folder of <class>.npy."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() != ".npz":
            raise DataError(f"{p}: data must be an .npz file with arrays 'x' and 'y', or a folder of .npy files")
        try:
            with np.load(p, allow_pickle=False) as z:
                names = list(z.keys())
                if "x" not in z or "y" not in z:
                    raise DataError(f"{p}: needs arrays 'x' and 'y', found {names}")
                x, y = z["x"], z["y"]
                class_names = [str(c) for c in z["class_names"]] if "class_names" in z else []
        except (OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"cannot read {p}: {exc}") from exc
        return Dataset(x, y, str(p), class_names)
    if p.is_dir():
        if (p / "x.npy").is_file() and (p / "y.npy").is_file():
            return Dataset(_load_npy(p / "x.npy"), _load_npy(p / "y.npy"), str(p))
        files = sorted(f for f in p.iterdir() if f.suffix.lower() == ".npy")
        if not files:
            raise DataError(f"{p}: folder has no .npy files (expected x.npy + y.npy or one <class>.npy per class)")
        xs = [_load_npy(f) for f in files]
        shapes = {tuple(a.shape[1:]) for a in xs}
        if len(shapes) != 1:
            detail = ", ".join(f"{f.name}: {list(a.shape)}" for f, a in zip(files, xs, strict=True))
            raise DataError(f"{p}: per-class files must hold samples of one shape, got {detail}")
        y = np.concatenate([np.full(len(a), k, dtype=np.int64) for k, a in enumerate(xs)])
        return Dataset(np.concatenate(xs), y, str(p), [f.stem for f in files])
    raise DataError(f"data {os.fspath(path)!r} does not exist")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def save_npz(path: str | os.PathLike[str], data: Dataset) -> None:
    extra = {"class_names": np.array(data.class_names)} if data.class_names else {}
    np.savez_compressed(path, x=data.x, y=data.y, **extra)


def load_digits(test_fraction: float = 0.3, seed: int = 0) -> tuple[Dataset, Dataset]:
    """scikit-learn's bundled 8x8 digits (offline), scaled to [0, 1], as 8x8x1 images;
    a stratified (train, test) split."""
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError as exc:
        raise DataError("the digits data set needs scikit-learn: pip install -e '.[optimize]'") from exc
    d = _sk_digits()
    x = (d.images / 16.0).astype(np.float32)[..., np.newaxis]
    full = Dataset(x, d.target, "sklearn digits", [str(c) for c in d.target_names])
    return full.split(test_fraction, seed=seed)
