"""num_threads > 1: large steps split across a thread pool, bit-exact."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import INT8_MODELS, model_path, random_inputs, reference_interpreter, run_reference

import runtime
from runtime.threads import MIN_MACS_PER_PART


@pytest.mark.parametrize("name", INT8_MODELS)
@pytest.mark.parametrize("threads", [2, 3, 4])
def test_threads_give_the_reference_output(name, threads):
    model = runtime.load(model_path(name), backend="c", num_threads=threads)
    ref = reference_interpreter(model_path(name))
    rng = np.random.default_rng(threads)
    for _ in range(4):
        x = random_inputs(model, rng)
        np.testing.assert_array_equal(model.run(x)[0], run_reference(ref, x)[0])


def test_only_large_steps_are_split():
    model = runtime.load(model_path("vww_96_int8"), backend="c", num_threads=4)
    steps = model.plan.steps
    parts = [model.plan.c_plan.steps[i].parts for i in range(len(steps))]
    assert any(p > 1 for p in parts)
    for step, p in zip(steps, parts, strict=True):
        assert p == 1 or step.macs >= p * MIN_MACS_PER_PART
        assert p <= 4


def test_single_thread_plans_are_unchanged():
    model = runtime.load(model_path("kws_ref_model"), backend="c")
    assert model._pool is None
    assert all(model.plan.c_plan.steps[i].parts in (0, 1) for i in range(len(model.plan.steps)))


def test_pools_start_and_stop_cleanly():
    x = [np.zeros((1, 49, 10, 1), np.int8)]
    first = None
    for _ in range(30):
        model = runtime.load(model_path("kws_ref_model"), backend="c", num_threads=3)
        out = model.run(x)[0]
        first = out if first is None else first
        np.testing.assert_array_equal(out, first)
        del model
