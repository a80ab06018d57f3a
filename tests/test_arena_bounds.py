"""The C kernels stay inside their buffers.

Two complementary checks, through the real plan structures handed to C:

1. Arena snapshots (`check_step_confined`).  One step runs alone in an arena
   filled with random bytes and framed by random guard bytes.  Afterwards
   every byte outside the step's output tensor and scratch region - the
   guards included - must be unchanged (no stray writes), and a second run
   over different random bytes with the same input bytes must produce the
   same output (no reads outside the step's inputs, no output byte left
   unwritten, no scratch read before it is written).  Applied to drawn
   CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED graphs and to every step of
   the shipped int8 models (so the planner's offsets are covered too).

2. Guard pages (`fenced_run`).  In a forked child, every buffer of one step -
   each input, the output, the scratch, and every constant array its
   parameter struct points to (weights, biases, multipliers, ...) - is
   copied into its own mapping, flush against a PROT_NONE page, once at the
   end (overruns) and once at the start (underruns).  A read or write of a
   single byte outside any of them kills the child with SIGSEGV, even when
   the stray value would not have changed the result.
"""

from __future__ import annotations

import ctypes
import faulthandler
import mmap
import os
import signal
import sys
from typing import Any

import numpy as np
import pytest
from _hypothesis_cases import (
    GraphBuilder,
    OpCase,
    conv2d_cases,
    depthwise_cases,
    exact_settings,
    fully_connected_cases,
    isa_selected,
)
from conftest import INT8_MODELS, model_path
from hypothesis import given
from hypothesis import strategies as st

import runtime
from runtime._native import ffi, lib
from runtime.backends.c import CModel
from runtime.plan import Plan

GUARD = 256  # guard bytes on each side of the arena
ALIGN = 64  # the arena's alignment in CModel
PAGE = mmap.PAGESIZE
PROT_NONE = 0  # not exported by the mmap module


# ------------------------------------------------------------ the regions --


def step_regions(plan: Plan, s: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """([(offset, nbytes)] the step reads, [(offset, nbytes)] it may write) in the arena."""
    step = plan.steps[s]
    tensors = plan.graph.tensors
    reads = [(plan.tensor_offset[i], tensors[i].nbytes) for i in step.inputs if isinstance(i, int)]
    writes = [(plan.tensor_offset[step.output], tensors[step.output].nbytes)]
    if step.scratch_bytes:
        writes.append((plan.scratch_offset[s], step.scratch_bytes))
    return reads, writes


def _one_step_plan(plan: Plan, s: int) -> Any:
    one = ffi.new("trt_plan *")
    one.num_steps = 1
    one.steps = plan.c_plan.steps + s
    return one


def _run_step_in(plan: Plan, s: int, arena: np.ndarray) -> None:
    failed = ffi.new("int32_t *")
    status = lib.trt_run_plan(_one_step_plan(plan, s), ffi.cast("uint8_t *", ffi.from_buffer(arena)), failed)
    assert status == lib.TRT_OK, f"step {s} failed with status {status}"


def _framed_arena(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(whole buffer, the arena inside it): GUARD bytes either side, arena aligned as CModel aligns it."""
    raw = np.empty(size + 2 * GUARD + ALIGN, dtype=np.uint8)
    start = (-(raw.ctypes.data + GUARD)) % ALIGN
    whole = raw[start : start + size + 2 * GUARD]
    return whole, whole[GUARD : GUARD + size]


def _fill_inputs(plan: Plan, s: int, arena: np.ndarray, rng: np.random.Generator) -> None:
    """Random bytes are valid 8-bit inputs; float32 inputs get finite values instead."""
    for i in plan.steps[s].inputs:
        if isinstance(i, int) and plan.graph.tensors[i].dtype == np.float32:
            t = plan.graph.tensors[i]
            off = plan.tensor_offset[i]
            arena[off : off + t.nbytes] = rng.normal(0, 4, t.size).astype(np.float32).view(np.uint8)


def check_step_confined(plan: Plan, s: int, rng: np.random.Generator) -> None:
    reads, writes = step_regions(plan, s)
    whole, arena = _framed_arena(plan.arena_bytes)
    whole[:] = rng.integers(0, 256, whole.size, dtype=np.uint8)
    _fill_inputs(plan, s, arena, rng)
    before = whole.copy()
    _run_step_in(plan, s, arena)

    may_change = np.zeros(whole.size, dtype=bool)
    for off, n in writes:
        may_change[GUARD + off : GUARD + off + n] = True
    stray = np.flatnonzero((whole != before) & ~may_change)
    op = plan.graph.operators[plan.step_ops[s]].opcode
    assert stray.size == 0, (
        f"step {s} ({op}) wrote {stray.size} bytes outside its output/scratch, first at arena offset "
        f"{int(stray[0]) - GUARD} (output/scratch regions {writes}, arena {plan.arena_bytes} bytes)"
    )

    # Same input bytes, everything else re-randomized: the output must not move.
    out_off, out_n = writes[0]
    first = arena[out_off : out_off + out_n].copy()
    whole[:] = rng.integers(0, 256, whole.size, dtype=np.uint8)
    for off, n in reads:
        whole[GUARD + off : GUARD + off + n] = before[GUARD + off : GUARD + off + n]
    _run_step_in(plan, s, arena)
    second = arena[out_off : out_off + out_n]
    assert np.array_equal(first, second), (
        f"step {s} ({op}): the output depends on bytes outside its inputs "
        f"(or leaves output bytes unwritten); {int((first != second).sum())} of {out_n} bytes differ"
    )


def _check_case_confined(case: OpCase, seed: int) -> None:
    with isa_selected(case.isa):
        model = case.model()
        assert len(model.plan.steps) == 1
        check_step_confined(model.plan, 0, np.random.default_rng(seed))
        # The drawn example is a real one: its output also matches the spec.
        np.testing.assert_array_equal(model.run(case.inputs)[0], case.expected[0], err_msg=case.summary)


@exact_settings(60)
@given(case=conv2d_cases(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_stays_in_its_regions(case: OpCase, seed: int) -> None:
    _check_case_confined(case, seed)


@exact_settings(60)
@given(case=depthwise_cases(), seed=st.integers(0, 2**32 - 1))
def test_depthwise_conv2d_stays_in_its_regions(case: OpCase, seed: int) -> None:
    _check_case_confined(case, seed)


@exact_settings(60)
@given(case=fully_connected_cases(), seed=st.integers(0, 2**32 - 1))
def test_fully_connected_stays_in_its_regions(case: OpCase, seed: int) -> None:
    _check_case_confined(case, seed)


@pytest.mark.parametrize("name", INT8_MODELS)
def test_every_step_of_shipped_models_stays_in_its_regions(name: str) -> None:
    model = runtime.load(model_path(name), backend="c")
    plan = model.plan
    rng = np.random.default_rng(2024)
    for s in range(len(plan.steps)):
        check_step_confined(plan, s, rng)


# ------------------------------------------------------------ guard pages --

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


class FencedSpace:
    """One mapping holding buffers, each flush against its own PROT_NONE page.

    flush="end": a buffer ends exactly where a protected page begins
    (overruns fault); flush="start": it begins right after one (underruns
    fault).  Offsets are relative to `base`, as arena offsets are.
    """

    def __init__(self, sizes: list[int], flush: str, aligns: list[int] | None = None):
        self.flush = flush
        aligns = aligns or [1] * len(sizes)
        spans = [max(1, -(-(n + a) // PAGE)) for n, a in zip(sizes, aligns, strict=True)]
        total = (sum(spans) + len(spans) + 1) * PAGE
        base = _libc.mmap(None, total, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        self.base = base
        self.offsets: list[int] = []
        cursor = PAGE  # page 0 is a fence
        self._protect(0)
        for n, a, pages in zip(sizes, aligns, spans, strict=True):
            end = cursor + pages * PAGE
            # Flush at the end: as close to the fence as the alignment allows
            # (exact whenever n is a multiple of the alignment).
            self.offsets.append((end - n) // a * a if flush == "end" else cursor)
            self._protect(end)
            cursor = end + PAGE

    def _protect(self, offset: int) -> None:
        if _libc.mprotect(self.base + offset, PAGE, PROT_NONE) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")

    def view(self, offset: int, n: int) -> np.ndarray:
        return np.frombuffer(ffi.buffer(ffi.cast("uint8_t *", self.base + offset), n), dtype=np.uint8)


def _constant_arrays(step: Any) -> list[tuple[Any, str, int, int, int]]:
    """(struct, field, address, bytes, itemsize) of every pointer field of the
    step's parameter struct, or of a struct embedded in it (a sparse weight
    matrix), that points into a constant array the builder created - found
    by address, so new fields are covered without listing them."""
    kept = [(a.ctypes.data, a.nbytes, a.itemsize) for a in step.keep if isinstance(a, np.ndarray) and a.nbytes]
    found = []

    def visit(struct: Any) -> None:
        for name, field in ffi.typeof(struct).fields:
            if field.type.kind == "struct":
                visit(getattr(struct, name))
            elif field.type.kind == "pointer":
                addr = int(ffi.cast("uintptr_t", getattr(struct, name)))
                for start, n, itemsize in kept:
                    if start <= addr < start + n:
                        found.append((struct, name, addr, start + n - addr, itemsize))
                        break

    visit(step.params[0])
    return found


def fenced_run(plan: Plan, s: int, flush: str, seed: int, short: str | None = None) -> None:
    """Run step s with every buffer fenced.  Call only in a child process: it
    repoints the step's parameter struct at the fenced copies.

    Arena buffers are keyed by their planned offset, so an in-place step
    (output over its input) keeps reading and writing one buffer.  `short`
    names one buffer ("output" or a parameter field) to fence one element
    too short, for the self-test of this machinery."""
    step = plan.steps[s]
    cstep = plan.c_plan.steps[s]
    tensors = plan.graph.tensors
    # planned offset -> [bytes, alignment]: each buffer keeps its element
    # alignment; scratch is promised 4 bytes.
    arena: dict[int, list[int]] = {}

    def need(offset: int, n: int, align: int) -> None:
        size, a = arena.get(offset, [0, 1])
        arena[offset] = [max(size, n), max(a, align)]

    for i in step.inputs:
        if isinstance(i, int):
            need(plan.tensor_offset[i], tensors[i].nbytes, tensors[i].dtype.itemsize)
    need(int(cstep.output), tensors[step.output].nbytes, tensors[step.output].dtype.itemsize)
    if cstep.scratch >= 0:
        need(int(cstep.scratch), step.scratch_bytes, 4)
    if short == "output":
        arena[int(cstep.output)][0] -= arena[int(cstep.output)][1]
    consts = _constant_arrays(step)
    const_operands = [(k, op) for k, op in enumerate(step.inputs) if isinstance(op, np.ndarray) and op.nbytes]
    const_sizes = [n - (itemsize if short == name else 0) for _, name, _, n, itemsize in consts]

    keys = list(arena)
    sizes = [arena[k][0] for k in keys] + const_sizes + [op.nbytes for _, op in const_operands]
    aligns = [arena[k][1] for k in keys] + [c[4] for c in consts] + [op.itemsize for _, op in const_operands]
    space = FencedSpace(sizes, flush, aligns)
    where = dict(zip(keys, space.offsets[: len(keys)], strict=True))
    rest = iter(space.offsets[len(keys) :])

    # Every arena buffer starts as random bytes: the inputs' values, and
    # garbage the output and scratch must not depend on.
    rng = np.random.default_rng(seed)
    for k in keys:
        space.view(where[k], arena[k][0])[:] = rng.integers(0, 256, arena[k][0], dtype=np.uint8)
    operands = ffi.new("trt_operand[]", max(int(cstep.num_inputs), 1))
    for k in range(cstep.num_inputs):
        operands[k].data = cstep.inputs[k].data
        operands[k].offset = where[int(cstep.inputs[k].offset)] if cstep.inputs[k].data == ffi.NULL else -1

    # Constant arrays of the parameter struct, and constant operands: fenced copies.
    for (struct, name, addr, _, _), n in zip(consts, const_sizes, strict=True):
        off = next(rest)
        space.view(off, n)[:] = np.frombuffer(ffi.buffer(ffi.cast("uint8_t *", addr), n), dtype=np.uint8)
        setattr(struct, name, ffi.cast(ffi.typeof(getattr(struct, name)), space.base + off))
    for k, op in const_operands:
        off = next(rest)
        space.view(off, op.nbytes)[:] = np.frombuffer(op.tobytes(), dtype=np.uint8)
        operands[k].data = ffi.cast("void *", space.base + off)

    one = ffi.new("trt_step *")
    one.kind, one.params, one.extra = cstep.kind, cstep.params, cstep.extra
    one.num_inputs, one.inputs = cstep.num_inputs, operands
    one.output = where[int(cstep.output)]
    one.scratch = where[int(cstep.scratch)] if cstep.scratch >= 0 else -1
    plan_1 = ffi.new("trt_plan *")
    plan_1.num_steps, plan_1.steps = 1, one
    failed = ffi.new("int32_t *")
    status = lib.trt_run_plan(plan_1, ffi.cast("uint8_t *", space.base), failed)
    if status != lib.TRT_OK:
        raise AssertionError(f"step failed with status {status}")


def in_child(fn: Any, *args: Any) -> tuple[int, str]:
    """Run fn(*args) in a forked child: (exit status or -signal, its error text)."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        os.close(r)
        faulthandler.disable()  # an expected SIGSEGV needs no traceback
        code = 0
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            os.write(w, f"{type(exc).__name__}: {exc}".encode()[:4000])
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status), message
    return os.WEXITSTATUS(status), message


needs_fork = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="guard pages need Linux")


def _check_case_fenced(case: OpCase, seed: int) -> None:
    with isa_selected(case.isa):  # the forked child inherits the selection
        model = case.model()
        results = [(flush, *in_child(fenced_run, model.plan, 0, flush, seed)) for flush in ("end", "start")]
    for flush, code, message in results:
        if code < 0:
            name = signal.Signals(-code).name
            pytest.fail(
                f"{name} with every buffer fenced at its {flush}: a kernel touched memory outside a buffer; {case.summary}"
            )
        assert code == 0, message


@needs_fork
@exact_settings(40)
@given(case=conv2d_cases(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_never_touches_memory_outside_its_buffers(case: OpCase, seed: int) -> None:
    _check_case_fenced(case, seed)


@needs_fork
@exact_settings(40)
@given(case=depthwise_cases(), seed=st.integers(0, 2**32 - 1))
def test_depthwise_conv2d_never_touches_memory_outside_its_buffers(case: OpCase, seed: int) -> None:
    _check_case_fenced(case, seed)


@needs_fork
@exact_settings(40)
@given(case=fully_connected_cases(), seed=st.integers(0, 2**32 - 1))
def test_fully_connected_never_touches_memory_outside_its_buffers(case: OpCase, seed: int) -> None:
    _check_case_fenced(case, seed)


@needs_fork
@pytest.mark.parametrize("short", ["output", "weights", "multiplier"])
def test_guard_pages_catch_a_kernel_one_byte_past_a_buffer(short: str) -> None:
    """The fences are tight: with one buffer fenced an element short, the
    convolution's last access to it faults."""
    # 16 output channels: a whole SIMD block, so the per-channel arrays carry
    # no padding and the kernel's last access is the arrays' last element.
    x = np.arange(2 * 5 * 5 * 3, dtype=np.int64).astype(np.int8).reshape(2, 5, 5, 3)
    w = np.arange(16 * 3 * 3 * 3, dtype=np.int64).astype(np.int8).reshape(16, 3, 3, 3)
    g = GraphBuilder()
    t_x = g.tensor(x.shape, np.int8, 0.5, 3)
    t_w = g.tensor(w.shape, np.int8, np.float32([0.01] * 16), 0, data=w, axis=0)
    t_y = g.tensor((2, 5, 5, 16), np.int8, 0.7, -2)
    g.op("CONV_2D", [t_x, t_w], [t_y], padding=0, stride_h=1, stride_w=1, fused_activation_function=0)
    # The portable path reads `weights` itself (SIMD paths may read a packed copy).
    with isa_selected("portable"):
        model = CModel(g.graph([t_x], [t_y]))
        assert in_child(fenced_run, model.plan, 0, "end", 1)[0] == 0
        code, _ = in_child(fenced_run, model.plan, 0, "end", 1, short)
    assert code == -signal.SIGSEGV


def test_snapshots_catch_a_stray_write() -> None:
    """check_step_confined notices a write one byte outside what it allows."""
    x = np.arange(12, dtype=np.int8).reshape(1, 12)
    w = np.ones((5, 12), dtype=np.int8)
    g = GraphBuilder()
    t_x = g.tensor(x.shape, np.int8, 0.5, 3)
    t_w = g.tensor(w.shape, np.int8, 0.01, 0, data=w)
    t_y = g.tensor((1, 5), np.int8, 0.7, -2)
    g.op("FULLY_CONNECTED", [t_x, t_w], [t_y], fused_activation_function=0)
    model = CModel(g.graph([t_x], [t_y]))
    model.graph.tensors[t_y].shape = (1, 4)  # the check now allows only 4 of the 5 bytes written
    with pytest.raises(AssertionError, match="wrote 1 bytes outside"):
        check_step_confined(model.plan, 0, np.random.default_rng(0))


@needs_fork
def test_guard_pages_catch_an_overrun() -> None:
    """The fence works: touching one byte past a fenced buffer kills the child."""

    def overrun() -> None:
        space = FencedSpace([10], "end")
        ptr = ffi.cast("uint8_t *", space.base + space.offsets[0])
        ptr[9] = 1  # the last byte: fine
        ptr[10] = 1  # one past: faults

    code, _ = in_child(overrun)
    assert code == -signal.SIGSEGV
