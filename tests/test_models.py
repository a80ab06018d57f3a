"""The shipped int8 models: tinyrt's C backend equals TFLite's reference kernels bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import INT8_MODELS, model_path, random_inputs, reference_interpreter, run_reference

import runtime
from runtime import isa


@pytest.fixture(params=isa.available())
def kernel_isa(request):
    """Run the test under each instruction-set path this machine has."""
    isa.select(request.param)
    yield request.param
    isa.select("best")


@pytest.mark.parametrize("name", INT8_MODELS)
def test_bit_exact_against_builtin_ref(name, kernel_isa):
    assert isa.active() == kernel_isa
    path = model_path(name)
    model = runtime.load(path, backend="c")
    ref = reference_interpreter(path)
    rng = np.random.default_rng(1234)
    for _ in range(20):
        inputs = random_inputs(model, rng)
        ours = model.run(inputs)
        theirs = run_reference(ref, inputs)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def test_outputs_depend_on_inputs():
    # Guards against a plan that ignores its input (e.g. a wrong arena offset).
    model = runtime.load(model_path("kws_ref_model"), backend="c")
    rng = np.random.default_rng(7)
    outs = {model.run(random_inputs(model, rng))[0].tobytes() for _ in range(8)}
    assert len(outs) > 1


def test_person_detect_matches_tflite_micro(kernel_isa):
    tflm = pytest.importorskip("tflite_micro")
    path = model_path("person_detect")
    model = runtime.load(path, backend="c")
    interp = tflm.runtime.Interpreter.from_file(str(path))
    rng = np.random.default_rng(99)
    for _ in range(5):
        (x,) = random_inputs(model, rng)
        interp.set_input(x, 0)
        interp.invoke()
        expected = interp.get_output(0)
        np.testing.assert_array_equal(model.run([x])[0], expected)
