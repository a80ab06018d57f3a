"""Backend selection and the shared Model interface."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import model_path, random_inputs

import runtime
from runtime.errors import UnsupportedModelError


def test_c_backend_names_the_unsupported_operator():
    with pytest.raises(UnsupportedModelError) as info:
        runtime.load(model_path("hello_world_float"), backend="c")
    msg = str(info.value)
    assert "operator 0 (FULLY_CONNECTED)" in msg and "FLOAT32" in msg
    assert info.value.op_index == 0 and info.value.op_name == "FULLY_CONNECTED"


def test_auto_falls_back_to_tflite_with_a_notice(capsys):
    pytest.importorskip("ai_edge_litert")
    model = runtime.load(model_path("hello_world_float"), backend="auto")
    assert model.backend == "tflite"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FULLY_CONNECTED" in err
    (y,) = model.run([np.array([[np.pi / 2]], dtype=np.float32)])
    assert abs(float(y.reshape(-1)[0]) - 1.0) < 0.1  # it learned sin(x)


def test_auto_picks_c_when_everything_is_supported(capsys):
    assert runtime.load(model_path("kws_ref_model")).backend == "c"
    assert capsys.readouterr().err == ""


def test_both_backends_agree_and_describe_io_the_same():
    pytest.importorskip("ai_edge_litert")
    c = runtime.load(model_path("micro_speech_quantized"), backend="c")
    t = runtime.load(model_path("micro_speech_quantized"), backend="tflite")
    assert [(i.shape, i.dtype, i.zero_point) for i in c.inputs] == [(i.shape, i.dtype, i.zero_point) for i in t.inputs]
    assert np.isclose(c.outputs[0].scale, t.outputs[0].scale)
    x = random_inputs(c, np.random.default_rng(5))
    # The default LiteRT kernels are close to, not always equal to, the reference.
    assert np.abs(c.run(x)[0].astype(int) - t.run(x)[0].astype(int)).max() <= 2


def test_inputs_by_name_list_or_single_array_are_the_same():
    model = runtime.load(model_path("kws_ref_model"), backend="c")
    x = random_inputs(model, np.random.default_rng(6))[0]
    a = model.run([x])[0]
    np.testing.assert_array_equal(a, model.run({model.inputs[0].name: x})[0])
    np.testing.assert_array_equal(a, model.run(x)[0])
    np.testing.assert_array_equal(a, model.run([x[0]])[0])  # without the batch dimension


def test_float_inputs_are_quantized_and_outputs_dequantized():
    model = runtime.load(model_path("hello_world_int8"), backend="c")
    info = model.inputs[0]
    real = np.array([[1.0]], dtype=np.float32)
    q = np.array([[int(np.round(1.0 / info.scale)) + info.zero_point]], dtype=np.int8)
    np.testing.assert_array_equal(model.run([real])[0], model.run([q])[0])
    (y,) = model.run([real], dequantize=True)
    assert y.dtype == np.float32 and abs(float(y[0, 0]) - np.sin(1.0)) < 0.1


def test_invalid_arguments():
    with pytest.raises(ValueError, match="backend"):
        runtime.load(model_path("kws_ref_model"), backend="gpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_threads"):
        runtime.load(model_path("kws_ref_model"), num_threads=0)


def test_fast_run_path_takes_only_exact_arrays_and_returns_copies():
    """CModel.run goes straight to C for arrays of the exact dtype and shape;
    everything else must still be checked, converted or refused as before."""
    model = runtime.load(model_path("kws_ref_model"), backend="c")
    rng = np.random.default_rng(7)
    x = random_inputs(model, rng)[0]
    (a,) = model.run([x])
    (b,) = model.run(x)
    np.testing.assert_array_equal(a, b)
    # outputs are the caller's: the next run must not change them
    kept = a.copy()
    model.run([random_inputs(model, rng)[0]])
    np.testing.assert_array_equal(a, kept)
    # a non-contiguous array of the right shape is copied correctly
    wide = np.zeros((1, 49, 10, 2), dtype=np.int8)
    wide[..., :1] = x
    np.testing.assert_array_equal(model.run([wide[..., :1]])[0], a)
    # wrong dtype: never cast silently
    with pytest.raises(ValueError, match="dtype"):
        model.run([x.astype(np.int16)])
    # shapes that numpy would broadcast into the arena are refused
    with pytest.raises(ValueError, match="shape"):
        model.run([x[:, :1]])
    with pytest.raises(ValueError, match="input"):
        model.run([x, x])
