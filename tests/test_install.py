"""A non-editable install, used from another directory, without any TFLite
runtime installed: the C library, the C sources and the board profiles are
all found, and a model runs."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECK = r"""
import importlib.util, sys
import numpy as np
import runtime
from runtime.paths import board_profiles_dir, csrc_dir
assert "site-packages" in runtime.__file__, runtime.__file__
assert importlib.util.find_spec("ai_edge_litert") is None and importlib.util.find_spec("tflite_runtime") is None
assert (csrc_dir() / "include" / "tinyrt.h").is_file()
assert board_profiles_dir().is_dir()
m = runtime.load(sys.argv[1], backend="auto")
assert m.backend == "c"
y = m.run([np.zeros(m.inputs[0].shape, np.int8)])[0]
print("ok", y.shape)
"""


@pytest.mark.skipif(os.environ.get("TINYRT_SKIP_INSTALL_TEST") == "1", reason="TINYRT_SKIP_INSTALL_TEST=1")
def test_wheel_install_works_from_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("tinyrt-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    away = tmp_path / "elsewhere"
    away.mkdir()
    out = subprocess.run(
        [str(py), "-c", CHECK, str(ROOT / "tests" / "models" / "kws_ref_model.tflite")],
        cwd=away,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok (1, 12)")
