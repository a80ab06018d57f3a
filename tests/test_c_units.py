"""C-level unit programs in tests/c/, compiled with the host compiler and run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (apt-get install gcc)")
def test_fixedpoint_fast_forms_equal_gemmlowp_definitions(tmp_path):
    exe = tmp_path / "test_fixedpoint"
    subprocess.run(
        ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'csrc'}", f"-I{ROOT / 'csrc' / 'include'}",
         str(ROOT / "tests" / "c" / "test_fixedpoint.c"), "-o", str(exe)],
        check=True,
    )
    result = subprocess.run([str(exe), "5000000"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mismatches: 0" in result.stdout
