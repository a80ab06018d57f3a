"""runtime.optimize without TensorFlow: DATA loading and its errors, the CLI's
clear failure when the [optimize] extra is missing, and a core runtime that
never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import model_path

from runtime.optimize.data import DataError, Dataset, check_arrays, load_data

ROOT = Path(__file__).resolve().parent.parent


def _xy(n: int = 30, classes: int = 3, shape: tuple[int, ...] = (8, 8)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, *shape)).astype(np.float32), np.arange(n) % classes


def test_npz_round_trip(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = load_data(tmp_path / "d.npz")
    assert len(d) == 30 and d.sample_shape == (8, 8) and d.num_classes == 3
    np.testing.assert_array_equal(d.x, x)
    np.testing.assert_array_equal(d.y, y)
    assert d.x.dtype == np.float32 and d.y.dtype == np.int64


def test_folder_with_x_and_y(tmp_path):
    x, y = _xy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y.astype(np.uint8))
    d = load_data(tmp_path)
    np.testing.assert_array_equal(d.y, y)


def test_folder_of_class_files(tmp_path):
    rng = np.random.default_rng(1)
    sizes = {"cat": 4, "dog": 6, "bird": 5}
    for name, n in sizes.items():
        np.save(tmp_path / f"{name}.npy", rng.random((n, 4, 4)))
    d = load_data(tmp_path)
    # Classes in sorted file-name order: bird=0, cat=1, dog=2.
    assert d.class_names == ["bird", "cat", "dog"]
    assert np.bincount(d.y).tolist() == [5, 4, 6]


def test_one_hot_labels_become_indices():
    x, y = _xy()
    xf, yf = check_arrays(x, np.eye(3)[y])
    np.testing.assert_array_equal(yf, y)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x, y: (x, y[:-1]), "x has 30 samples but y has 29 labels"),
        (lambda x, y: (x, y + 0.5), "whole-number class labels"),
        (lambda x, y: (x, y - 1), "labels must be >= 0"),
        (lambda x, y: (x[:, 0, 0], y), "shape (N, ...)"),
        (lambda x, y: (x, y.astype(str)), "integer class labels"),
        (lambda x, y: (np.where(x > 0.5, np.nan, x), y), "NaN"),
    ],
)
def test_bad_arrays_name_the_problem(make, message):
    x, y = _xy()
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_arrays(*make(x, y))


def test_npz_without_x_and_y(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 3)), labels=np.zeros(2))
    with pytest.raises(DataError, match=r"needs arrays 'x' and 'y', found \['images', 'labels'\]"):
        load_data(tmp_path / "d.npz")


def test_missing_and_wrong_kind(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "nope.npz")
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=r"\.npz file"):
        load_data(tmp_path / "d.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no .npy files"):
        load_data(empty)


def test_class_files_of_different_shapes(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 4)))
    np.save(tmp_path / "b.npy", np.zeros((3, 5, 5)))
    with pytest.raises(DataError, match=r"a.npy: \[3, 4, 4\], b.npy: \[3, 5, 5\]"):
        load_data(tmp_path)


def test_conform_adds_channel_and_checks_shape_and_classes():
    x, y = _xy()
    d = Dataset(x, y, "d")
    assert d.conform((None, 8, 8, 1), 10).x.shape == (30, 8, 8, 1)
    with pytest.raises(DataError, match=r"samples have shape \[8, 8\] but the model takes \['N', 28, 28, 1\]"):
        d.conform((None, 28, 28, 1), 10)
    with pytest.raises(DataError, match=r"labels go up to 2 but the model has 2 outputs"):
        d.conform((None, 8, 8), 2)


def test_split_is_stratified_and_seeded():
    x, y = _xy(100, 4)
    d = Dataset(x, y)
    train, held = d.split(0.3, seed=5)
    assert len(train) + len(held) == 100
    # Every class contributes its share to the held-out part.
    assert np.bincount(held.y).tolist() == [8, 8, 8, 8]
    again = d.split(0.3, seed=5)[1]
    np.testing.assert_array_equal(held.x, again.x)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_core_runtime_never_imports_tensorflow():
    # Loading and running a model, and importing the toolchain package itself, must
    # not pull TensorFlow in: the board-side install has no TensorFlow.
    code = (
        "import sys, numpy as np, runtime, runtime.optimize\n"
        f"m = runtime.load({str(model_path('kws_ref_model'))!r})\n"
        "m.run([np.zeros(m.inputs[0].shape, m.inputs[0].dtype)])\n"
        "from runtime.optimize import measure\n"
        f"measure.weight_sparsity({str(model_path('kws_ref_model'))!r})\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', "
        "'tensorflow_model_optimization'))\n"
        "print(bad)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_without_the_extra_says_how_to_install(tmp_path):
    # Simulate a machine without TensorFlow: a None entry in sys.modules makes the
    # import fail exactly as a missing package does.
    x, y = _xy()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"
        "from runtime.optimize.cli import main\n"
        f"sys.exit(main(['quantize', 'm.keras', '--calib', {str(tmp_path / 'd.npz')!r}, '-o', 'o.tflite']))\n"
    )
    out = _python(code)
    assert out.returncode == 2, out.stderr
    assert 'pip install -e ".[optimize]"' in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_help_works_without_tensorflow():
    out = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['tensorflow'] = None\n"
         "from runtime.optimize.cli import main; sys.exit(main(['--help']))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0
    for command in ("quantize", "prune", "distill", "fit"):
        assert command in out.stdout


def test_shift_images_translates_by_whole_pixels_with_zeros_shifted_in():
    from runtime.optimize.distillation import shift_images

    x = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5, 1) + 1
    out = shift_images(x, np.array([1, 0, -2]), np.array([0, -1, 2]))
    assert out.shape == x.shape
    np.testing.assert_array_equal(out[0, 1:], x[0, :-1])  # down by one
    assert not out[0, 0].any()
    np.testing.assert_array_equal(out[1, :, :-1], x[1, :, 1:])  # left by one
    assert not out[1, :, -1].any()
    np.testing.assert_array_equal(out[2, :-2, 2:], x[2, 2:, :-2])  # up by two, right by two
    assert not out[2, -2:].any() and not out[2, :, :2].any()
    # Without a channel axis too; no shift is a copy.
    np.testing.assert_array_equal(shift_images(x[..., 0], np.zeros(3, int), np.zeros(3, int)), x[..., 0])
    with pytest.raises(ValueError, match="needs images"):
        shift_images(x.reshape(3, -1), np.zeros(3, int), np.zeros(3, int))
