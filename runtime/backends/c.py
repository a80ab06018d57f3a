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
        self._c_plan = self.plan.c_plan
        # num_threads > 1: a pool of POSIX threads splits the large steps.
        self.num_threads = num_threads
        self._pool = None
        if num_threads > 1:
            from ..threads import assign_parts

            assign_parts(self.plan, num_threads)
            pool = lib.trt_pool_create(num_threads)
            if pool == ffi.NULL:
                raise TinyRTError(f"cannot start {num_threads} threads")
            self._pool = ffi.gc(pool, lib.trt_pool_destroy)

    def _view(self, index: int) -> np.ndarray:
        t = self.graph.tensors[index]
        assert t.dtype is not None
        offset = self.plan.tensor_offset[index]
        return np.ndarray(t.shape, dtype=t.dtype, buffer=self._arena, offset=offset)

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            # (plain indexing: zip(strict=True) costs ~1 us, a third of a small model's run)
            for i in range(len(arrays)):
                self._in_views[i][...] = arrays[i]
            if self._pool is None:
                status = _run_plan(self._c_plan, self._arena_ptr, self._failed)
            else:
                status = _pool_run(self._pool, self._c_plan, self._arena_ptr, self._failed)
            if status:
                op = self.plan.step_ops[self._failed[0]]
                raise TinyRTError(f"kernel failed with status {status} at operator {op}")
            return [view.copy() for view in self._out_views]
