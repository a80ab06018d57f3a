"""python -m runtime.run: inputs, outputs, latency and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import model_path

import runtime

ROOT = Path(__file__).resolve().parent.parent
KWS = str(model_path("kws_ref_model"))
HELLO = str(model_path("hello_world_int8"))


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "runtime.run", *args], input=stdin, capture_output=True, text=True, timeout=120, env=env
    )


def test_random_input_prints_top5_and_says_so():
    out = run_cli(KWS)
    assert out.returncode == 0, out.stderr
    assert "random input" in out.stdout
    assert out.stdout.count("class ") == 5


def test_npy_input_and_json_output_match_the_api(tmp_path):
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    out = run_cli(KWS, "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.json"))
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "y.json").read_text())
    expected = runtime.load(KWS, backend="c").run([x])[0]
    assert doc["outputs"][0]["values"] == expected.reshape(-1).tolist()
    assert doc["outputs"][0]["shape"] == [1, 12]


def test_npz_input_and_npy_output(tmp_path):
    x = np.random.default_rng(4).integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
    model = runtime.load(KWS, backend="c")
    np.savez(tmp_path / "x.npz", **{model.inputs[0].name: x})
    out = run_cli(KWS, "--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "y.npy"))
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.run([x])[0])


def test_csv_and_stdin_inputs_are_real_values(tmp_path):
    (tmp_path / "x.csv").write_text("1.5\n")
    expected = runtime.load(HELLO, backend="c").run([np.array([[1.5]], dtype=np.float32)], dequantize=True)[0]
    for args, stdin in (([str(tmp_path / "x.csv")], None), (["-"], "[1.5]"), (["-"], "1.5")):
        out = run_cli(HELLO, "--input", *args, "--dequantize", "--output", str(tmp_path / "y.json"), stdin=stdin)
        assert out.returncode == 0, out.stderr
        value = json.loads((tmp_path / "y.json").read_text())["outputs"][0]["values"][0]
        assert np.isclose(value, float(expected.reshape(-1)[0]))


def test_repeat_prints_median_and_p90():
    out = run_cli(HELLO, "--repeat", "20")
    assert out.returncode == 0
    assert "median" in out.stdout and "p90" in out.stdout and "over 20 runs" in out.stdout


def test_exit_code_2_on_bad_input(tmp_path):
    (tmp_path / "bad.tflite").write_bytes(b"not a model at all")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3), dtype=np.int8))
    cases = [
        ["/nonexistent/model.tflite"],
        [str(tmp_path / "bad.tflite")],
        [KWS, "--input", str(tmp_path / "wrong.npy")],
        [KWS, "--input", str(tmp_path / "missing.npy")],
        [KWS, "--repeat", "0"],
        [KWS, "--backend", "gpu"],
        [KWS, "--output", str(tmp_path / "y.txt")],
    ]
    for args in cases:
        out = run_cli(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stderr.strip(), args


def test_unsupported_model_with_c_backend_exits_2():
    out = run_cli(str(model_path("hello_world_float")), "--backend", "c")
    assert out.returncode == 2
    assert "FULLY_CONNECTED" in out.stderr and "operator 0" in out.stderr
