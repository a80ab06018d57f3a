"""The C backend: a Plan executed by csrc/ through one cffi call per inference."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .._native import ffi, lib
from ..errors import TinyRTError
from ..graph import Graph
from ..model import Model, TensorInfo
from ..plan import Plan, build_plan

ARENA_ALIGNMENT = 64
_run_plan = lib.trt_run_plan  # bound once: run() is on the hot path
_pool_run = lib.trt_pool_run_plan


def tensor_info(graph: Graph, index: int) -> TensorInfo:
    t = graph.tensors[index]
    scale, zp = 0.0, 0
    if t.quant is not None and not t.quant.per_channel:
        scale, zp = t.quant.scalar_scale, t.quant.scalar_zero_point
    assert t.dtype is not None
    return TensorInfo(name=t.name, shape=t.shape, dtype=t.dtype, scale=scale, zero_point=zp)


class CModel(Model):
    backend = "c"

    def __init__(
        self,
        graph: Graph,
        fc_fixed_point: bool = False,
        plan_choices: Any = None,
        sparse: Any = "auto",
        num_threads: int = 1,
    ):
        super().__init__(
            [tensor_info(graph, i) for i in graph.inputs],
            [tensor_info(graph, i) for i in graph.outputs],
        )
        self.graph = graph
        # sparse: "auto" | "off" | "force" or a runtime.sparse.SparsePolicy
        self.plan: Plan = build_plan(graph, fc_fixed_point=fc_fixed_point, choices=plan_choices, sparse=sparse)
        # The arena: aligned so that every planned offset keeps 16-byte alignment.
        raw = np.zeros(self.plan.arena_bytes + ARENA_ALIGNMENT, dtype=np.uint8)
        start = (-raw.ctypes.data) % ARENA_ALIGNMENT
        self._arena_raw = raw  # the bytes around the arena stay untouched (tested)
        self._arena = raw[start : start + self.plan.arena_bytes]
        self._arena_ptr = ffi.cast("uint8_t *", ffi.from_buffer(self._arena))
        self._failed = ffi.new("int32_t *")
        self._in_views = [self._view(i) for i in graph.inputs]
        self._out_views = [self._view(i) for i in graph.outputs]
        self._lock = threading.Lock()
        # (dtype, shape) of each input for run()'s fast path; numpy's dtype
        # objects of the built-in types are singletons: compared by identity
        self._fast_inputs = [(v.dtype, v.shape) for v in self._in_views]
        self._c_plan = self.plan.c_plan
        # num_threads > 1: a pool of POSIX threads splits the large steps.
        self.num_threads = num_threads
        self._pool = self._run_pool = None
        if num_threads > 1:
            from ..threads import assign_parts

            split = any(n > 1 for n in assign_parts(self.plan, num_threads))
            pool = lib.trt_pool_create(num_threads)
            if pool == ffi.NULL:
                raise TinyRTError(f"cannot start {num_threads} threads")
            self._pool = ffi.gc(pool, lib.trt_pool_destroy)
            # A plan with no step large enough to split (ad01) runs on the
            # caller's thread: the pool's start and finish cost ~0.2 us a
            # call and bring nothing (the pool stays for per-step timing).
            self._run_pool = self._pool if split else None

    def _view(self, index: int) -> np.ndarray:
        t = self.graph.tensors[index]
        assert t.dtype is not None
        offset = self.plan.tensor_offset[index]
        return np.ndarray(t.shape, dtype=t.dtype, buffer=self._arena, offset=offset)

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    def run(self, inputs: Any, dequantize: bool = False) -> list[np.ndarray]:
        # The common call -- one array, or a list of arrays, of exactly the
        # inputs' dtypes and shapes -- goes straight to _run: Model.run's
        # general checks and conversions cost ~3 us, as long as a whole small
        # model (ad01: ~4 us of C).  Anything else takes the checked path.
        if not dequantize:
            if type(inputs) is list:
                arrays = inputs
            elif type(inputs) is np.ndarray:
                arrays = [inputs]
            else:
                arrays = None
            expected = self._fast_inputs
            if arrays is not None and len(arrays) == len(expected):
                i = 0
                for dtype, shape in expected:
                    a = arrays[i]
                    if type(a) is not np.ndarray or a.dtype is not dtype or a.shape != shape:
                        break
                    i += 1
                else:
                    return self._run(arrays)
        return super().run(inputs, dequantize)

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        # (on the hot path: no comprehensions, which Python 3.11 makes into
        # function calls of ~0.3 us, and no `with`)
        lock = self._lock
        lock.acquire()
        try:
            views = self._in_views
            for i in range(len(arrays)):
                views[i][...] = arrays[i]  # any strides: numpy copies into the arena
            pool = self._run_pool
            if pool is None:
                status = _run_plan(self._c_plan, self._arena_ptr, self._failed)
            else:
                status = _pool_run(pool, self._c_plan, self._arena_ptr, self._failed)
            if status:
                op = self.plan.step_ops[self._failed[0]]
                raise TinyRTError(f"kernel failed with status {status} at operator {op}")
            outs = self._out_views
            if len(outs) == 1:
                return [outs[0].copy()]
            return list(map(np.ndarray.copy, outs))
        finally:
            lock.release()
