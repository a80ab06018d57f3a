"""python -m runtime.optimize end to end on digits files: quantize, prune, distill,
fit, and the errors a user sees for mismatched data.  In-process (main()) so
TensorFlow is imported once for the module."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

MISSING = [m for m in ("tensorflow", "tf_keras", "tensorflow_model_optimization", "sklearn")
           if importlib.util.find_spec(m) is None]
pytestmark = [
    pytest.mark.tensorflow,
    # tfmot 0.8 checks TensorFlow's version with distutils; not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorflow_model_optimization"),
    pytest.mark.skipif(bool(MISSING), reason=f"needs the [optimize] extra (pip install -e \".[optimize]\"): "
                                             f"missing {', '.join(MISSING)}"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """train.npz, test.npz and a small trained Keras CNN saved as teacher.keras."""
    from runtime.optimize import build, load_digits, save_npz, train

    d = tmp_path_factory.mktemp("digits")
    tr, te = load_digits(0.3, seed=0)
    save_npz(d / "train.npz", tr)
    save_npz(d / "test.npz", te)
    model = train(build("cnn:8,16/32", tr.sample_shape, 10, seed=0), tr, epochs=15, progress=False)
    model.save(d / "teacher.keras")
    return d


def _main(args):
    from runtime.optimize.cli import main

    return main([str(a) for a in args])


def test_quantize_writes_an_int8_model_and_reports_accuracy(files, capsys):
    out = files / "q.tflite"
    code = _main(["quantize", files / "teacher.keras", "--calib", files / "train.npz", "-o", out,
                  "--eval", files / "test.npz", "--num-calib", 50])
    assert code == 0
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out
    acc = float(captured.out.split("int8 accuracy on ")[1].split(": ")[1].split("%")[0])
    assert 80.0 <= acc <= 100.0
    # Progress goes to stderr: calibration batches counted up to the total.
    assert "calibration batch 50/50" in captured.err

    import runtime

    m = runtime.load(out, backend="c")
    assert m.inputs[0].dtype == np.int8 and list(m.inputs[0].shape) == [1, 8, 8, 1]


def test_prune_with_blocks_prints_sparsity_and_layout(files, capsys):
    out = files / "p.tflite"
    code = _main(["prune", files / "teacher.keras", "--data", files / "train.npz", "--sparsity", 0.8,
                  "--block", "4x1", "--epochs", 3, "-o", out, "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    sparsity = float(text.split("weight sparsity ")[1].split()[0])
    from runtime.optimize import weight_sparsity

    assert sparsity == pytest.approx(weight_sparsity(out), abs=5e-4) and sparsity >= 0.78
    layer_lines = {line.split()[0]: line for line in text.splitlines() if " kernel [" in line}
    # cnn:8,16/32 on 8x8: every kernel, 3x3 convolutions included, in 4x1 blocks.
    assert layer_lines["conv1"].endswith("kernel [3, 3, 8, 16]: block 4x1")
    assert layer_lines["dense0"].endswith("kernel [64, 32]: block 4x1")
    blocks = {line.split(":")[0].strip(): float(line.split(": ")[1].split()[0])
              for line in text.splitlines() if "of 4x1 blocks all zero" in line}
    assert len(blocks) == 4, blocks
    for name, fraction in blocks.items():
        # Whole blocks only: the 10-row output layer's last two rows are a part block.
        assert fraction >= (0.6 if "logits" in name else 0.75), blocks


def test_prune_refuses_a_block_the_runtime_cannot_run(files, capsys, tmp_path):
    code = _main(["prune", files / "teacher.keras", "--data", files / "train.npz", "--block", "1x4",
                  "-o", tmp_path / "o.tflite", "--quiet"])
    assert code == 2
    assert "tinyrt's sparse kernels read 1x1, 4x1, 8x1" in capsys.readouterr().err
    assert not (tmp_path / "o.tflite").exists()


def test_distill_from_a_tflite_teacher_with_comparison(files, capsys):
    teacher_tflite = files / "teacher_int8.tflite"
    assert _main(["quantize", files / "teacher.keras", "--calib", files / "train.npz", "-o", teacher_tflite,
                  "--quiet"]) == 0
    out = files / "s.tflite"
    code = _main(["distill", "--teacher", teacher_tflite, "--student-arch", "mlp:16", "--data",
                  files / "train.npz", "--temperature", 4, "--alpha", 0.7, "--epochs", 10, "-o", out,
                  "--eval", files / "test.npz", "--compare", "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    assert "int8 accuracy on" in text and "same student on labels alone, int8:" in text
    import runtime

    # A 64-16-10 MLP: two fully-connected weight tensors, 64*16 and 16*10.
    from runtime.optimize import weight_tensors

    assert [t.elements for t in weight_tensors(out)] == [1024, 160]
    assert runtime.load(out).backend == "c"


def test_fit_picks_the_most_accurate_candidate_that_fits(files, capsys):
    out = files / "best.tflite"
    code = _main(["fit", files / "teacher.keras", "--board", "nucleo-l4r5zi", "--data", files / "train.npz",
                  "--eval", files / "test.npz", "--sparsities", "0.8", "--student", "mlp:16", "--prune-epochs", 3,
                  "--distill-epochs", 10, "--json", "-o", out, "--quiet"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in doc["candidates"]]
    assert names == ["int8", "prune 80%", "distill mlp:16"]
    fitting = [c for c in doc["candidates"] if c["fits"]]
    best = max(fitting, key=lambda c: c["accuracy"])
    assert doc["best"] == best["name"]
    for c in doc["candidates"]:
        assert c["report"]["board"] == "nucleo-l4r5zi"
        assert {b["name"] for b in c["report"]["budgets"]} == {"ram", "flash", "latency_ms"}
    assert out.is_file()


def test_fit_with_an_impossible_budget_finds_nothing(files, capsys):
    code = _main(["fit", files / "teacher.keras", "--board", "pico", "--data", files / "train.npz",
                  "--eval", files / "test.npz", "--sparsities", "", "--student", "mlp:4", "--distill-epochs", 2,
                  "--latency-budget-ms", "0.0001", "--quiet"])
    assert code == 1
    text = capsys.readouterr().out
    assert "no candidate fits this board" in text
    assert text.count("over latency_ms") == 2


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x, y: dict(x=x[:, :4, :4], y=y), r"samples have shape [4, 4, 1] but the model takes ['N', 8, 8, 1]"),
        (lambda x, y: dict(x=x, y=y[:-3]), "x has 1258 samples but y has 1255 labels"),
        (lambda x, y: dict(x=x, y=y + 10), "labels go up to 19 but the model has 10 outputs"),
    ],
)
def test_mismatched_data_is_a_clear_error(files, capsys, tmp_path, make, message):
    with np.load(files / "train.npz") as z:
        np.savez(tmp_path / "bad.npz", **make(z["x"], z["y"]))
    code = _main(["prune", files / "teacher.keras", "--data", tmp_path / "bad.npz", "-o", tmp_path / "o.tflite",
                  "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_board_fails_before_training(files, capsys):
    code = _main(["fit", files / "teacher.keras", "--board", "no-such-board", "--data", files / "train.npz",
                  "--quiet"])
    assert code == 2
    assert "no board named 'no-such-board'" in capsys.readouterr().err
