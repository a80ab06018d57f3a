"""num_threads > 1: large steps split across a thread pool, bit-exact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import INT8_MODELS, model_path, random_inputs, reference_interpreter, run_reference

import runtime
from runtime._native import lib
from runtime.threads import MIN_MACS_PER_PART, splittable

ROOT = Path(__file__).resolve().parents[1]


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
        assert p == 1 or step.macs >= p * MIN_MACS_PER_PART[step.kind]
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


def test_in_place_depthwise_steps_are_never_split():
    """An in-place depthwise step sweeps the image per channel block: the
    executor cannot share it, so the planner must not wake threads for it."""
    model = runtime.load(model_path("vww_96_int8"), backend="c", num_threads=2)
    in_place = [
        i for i, s in enumerate(model.plan.steps) if s.kind == lib.TRT_OP_DEPTHWISE_CONV2D and s.params.in_place
    ]
    assert in_place, "vww's planner keeps an in-place depthwise step"
    for i in in_place:
        assert model.plan.c_plan.steps[i].parts == 1
        assert not splittable(model.plan.steps[i])


def test_calibration_tool_times_every_splittable_step():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "calibrate_threads.py"), "--models", "ad01", "--rounds", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith("ad01")]
    assert len(rows) == 10  # ad01: ten FULLY_CONNECTED steps
    for row in rows:
        t1, t2, speedup = float(row[3]), float(row[4]), float(row[5].rstrip("x"))
        # (the times are printed to 0.01 us: compare loosely)
        assert t1 > 0 and t2 > 0 and speedup == pytest.approx(t1 / t2, rel=0.05, abs=0.02)
    assert "MIN_MACS_PER_PART" in out.stdout or "no step size gains" in out.stdout


def test_a_plan_with_nothing_to_split_runs_on_the_callers_thread():
    """num_threads=2 on ad01 (no FULLY_CONNECTED step is large enough to
    split) runs like one thread, without the pool's start and finish; kws,
    whose convolutions split, goes through the pool.  Same bytes either way."""
    rng = np.random.default_rng(11)
    for name, splits in (("ad01_int8", False), ("kws_ref_model", True)):
        one = runtime.load(model_path(name), backend="c")
        two = runtime.load(model_path(name), backend="c", num_threads=2)
        parts = [int(two.plan.c_plan.steps[i].parts) for i in range(len(two.plan.steps))]
        assert (max(parts) > 1) is splits
        assert (two._run_pool is not None) is splits and two._pool is not None
        for _ in range(3):
            x = rng.integers(-128, 128, size=one.inputs[0].shape, dtype=np.int8)
            np.testing.assert_array_equal(two.run(x)[0], one.run(x)[0])


def test_calibration_sweep_times_whole_models_per_candidate():
    """--sweep: one row per model, its one-thread time and a two-thread
    speed-up per candidate threshold; the thresholds are put back after."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "calibrate_threads.py"), "--models", "ad01,kws",
         "--rounds", "2", "--sweep", "10000,40000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "by MIN_MACS_PER_PART of CONV_2D and DEPTHWISE_CONV_2D (now 10,000)" in out.stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.split()[:1] in (["ad01"], ["kws"])}
    assert set(rows) == {"ad01", "kws"}
    for cells in rows.values():
        assert float(cells[0]) > 0 and len(cells) == 3
        assert all(float(c.rstrip("x")) > 0 for c in cells[1:])
    bad = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "calibrate_threads.py"), "--sweep", "ten"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert bad.returncode != 0 and "whole numbers" in bad.stderr
