"""From a Graph to an executable Plan.

Planning happens once per load: every operator becomes a Step (its C
parameter struct filled in), views (RESHAPE) become aliases, and every
non-constant tensor and scratch buffer gets an offset in one arena from its
lifetime.  The result is handed to C as an array of trt_step; one inference
is then one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._native import ffi
from .errors import UnsupportedModelError
from .fuse import FoldedPad, fold_pads
from .graph import Graph
from .memory import Choices, choose_layout, forced_layout
from .ops import BUILDERS, Alias, OpContext, Step
from .planner import Buffer
from .sparse import SparseLayer, SparsePolicy, as_policy, sparsify

SUPPORTED_IO_DTYPES = ("int8", "uint8", "float32")
MAX_ARENA_BYTES = 1 << 30


@dataclass
class Plan:
    graph: Graph
    steps: list[Step]
    step_ops: list[int]  # the operator index of each step
    root: dict[int, int]  # tensor -> tensor whose buffer it uses (aliases)
    buffers: list[Buffer]
    arena_bytes: int
    tensor_offset: dict[int, int]
    scratch_offset: list[int]  # per step, -1 when none
    memory: Any = None  # the runtime.memory.Layout chosen
    # FULLY_CONNECTED / CONV_2D layers eligible for sparse kernels: the choice made
    sparse_layers: list[SparseLayer] = field(default_factory=list)
    # PADs folded into the convolution after them (runtime.fuse): no step of their own
    folded_pads: list[FoldedPad] = field(default_factory=list)
    c_plan: Any = None  # cffi trt_plan *
    _keep: list[Any] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)

    @property
    def weight_bytes(self) -> int:
        return sum(s.weight_bytes for s in self.steps)


def unsupported_reason(graph: Graph) -> UnsupportedModelError | None:
    """The first reason the C backend cannot run this graph, or None."""
    try:
        build_plan(graph, materialize=False)
    except UnsupportedModelError as exc:
        return exc
    return None


def _check_graph(graph: Graph) -> None:
    if graph.num_subgraphs != 1:
        raise UnsupportedModelError(
            f"the model has {graph.num_subgraphs} subgraphs; the C backend runs single-subgraph models"
        )
    for i in graph.inputs + graph.outputs:
        t = graph.tensors[i]
        if t.dtype is None or t.dtype.name not in SUPPORTED_IO_DTYPES:
            raise UnsupportedModelError(f"graph input/output {graph.describe_tensor(i)} has an unsupported type")
        if t.is_constant:
            raise UnsupportedModelError(f"graph input/output {graph.describe_tensor(i)} is a constant")
    for t in graph.tensors:
        if t.is_variable:
            raise UnsupportedModelError(f"tensor {t.name!r} is a variable (stateful models are not supported)")


def build_plan(
    graph: Graph,
    materialize: bool = True,
    fc_fixed_point: bool = False,
    choices: Callable[[Graph, list[Step], dict[int, int]], Choices] | None = None,
    sparse: str | SparsePolicy = "off",
    host_layouts: bool = True,
    fuse: bool = True,
    dw_policy: str | None = None,
) -> Plan:
    """Plan the graph for the C backend.  Raises UnsupportedModelError naming the op.

    choices: for tests, a function (graph, steps, views) -> memory choices to
    use instead of searching for the smallest arena.
    sparse: "off" (the dense kernels), "auto" (sparse kernels for the layers
    whose pruned weights make them faster, runtime.sparse) or "force".
    host_layouts: also keep the weights in this machine's SIMD layouts (e.g.
    int16 GEMM panels on AVX2); an export for a microcontroller turns it off
    so its flash holds each weight once.
    fuse: fold PADs into the convolutions that read them (runtime.fuse); the
    plan's graph stays the model's, and steps keep its operator indices.
    dw_policy: which in-place depthwise blocks the memory search may use
    (runtime.memory.dw_blocks); default "active" for a plan made to run
    here (host_layouts), "memory" for one that leaves this machine."""
    _check_graph(graph)
    model_graph = graph
    folded: list[FoldedPad] = []
    if fuse:
        graph, folded = fold_pads(graph)
    policy = as_policy(sparse)
    sparse_layers: list[SparseLayer] = []
    steps: list[Step] = []
    step_ops: list[int] = []
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while t in root:
            t = root[t]
        return t

    produced: set[int] = set(graph.inputs)
    for op in graph.operators:
        builder = BUILDERS.get(op.opcode)
        ctx = OpContext(graph, op, op.options, host_layouts=host_layouts)
        if builder is None:
            raise ctx.unsupported("operator is not implemented by the C backend")
        if len(op.outputs) != 1:
            raise ctx.unsupported(f"{len(op.outputs)} outputs; exactly one is supported")
        for i in op.inputs + op.outputs:
            # Kernels loop over and divide by dimensions: none may be empty.
            if i >= 0 and not graph.tensors[i].is_constant and graph.tensors[i].size == 0:
                raise ctx.unsupported(f"tensor {graph.describe_tensor(i)} has no elements")
        for i in op.inputs:
            if i >= 0 and not graph.tensors[i].is_constant and i not in produced and find(i) not in produced:
                raise ctx.unsupported(f"input tensor {graph.describe_tensor(i)} is read before anything writes it")
        if op.opcode == "FULLY_CONNECTED" and fc_fixed_point:
            from .ops.fully_connected import build_fully_connected

            result = build_fully_connected(ctx, fixed_point=True)
        else:
            result = builder(ctx)
        if policy.mode != "off" and isinstance(result, Step) and op.opcode in ("FULLY_CONNECTED", "CONV_2D"):
            result, layer = sparsify(graph, op, result, len(steps), policy)
            if layer is not None:
                sparse_layers.append(layer)
        out = op.outputs[0]
        if out in produced or graph.tensors[out].is_constant:
            raise ctx.unsupported(f"output tensor {graph.describe_tensor(out)} is written twice or is a constant")
        if isinstance(result, Alias):
            root[result.target] = find(result.source)
        else:
            steps.append(result)
            step_ops.append(op.index)
        produced.add(out)
    for i in graph.outputs:
        if i not in produced:
            raise UnsupportedModelError(f"graph output {graph.describe_tensor(i)} is never computed")

    if dw_policy is None:
        dw_policy = "active" if host_layouts else "memory"
    mem = (
        choose_layout(graph, steps, root, dw_policy)
        if choices is None
        else forced_layout(graph, steps, root, choices)
    )
    if mem.arena_bytes > MAX_ARENA_BYTES:
        # Checked before anything is allocated: a hostile shape must not get
        # its arena (and C offsets are int32).
        raise UnsupportedModelError(
            f"the model needs a {mem.arena_bytes}-byte arena for its tensors; "
            f"the C backend refuses arenas over {MAX_ARENA_BYTES >> 30} GiB"
        )

    plan = Plan(
        graph=model_graph,
        steps=steps,
        step_ops=step_ops,
        root=mem.root,
        buffers=mem.buffers,
        arena_bytes=mem.arena_bytes,
        tensor_offset=mem.tensor_offset,
        scratch_offset=mem.scratch_offset,
        memory=mem,
        sparse_layers=sparse_layers,
        folded_pads=folded,
    )
    if materialize:
        _materialize(plan)
    return plan


def _materialize(plan: Plan) -> None:
    """Build the trt_plan C structure that trt_run_plan walks."""
    keep = plan._keep
    c_steps = ffi.new("trt_step[]", max(len(plan.steps), 1))
    keep.append(c_steps)
    for i, step in enumerate(plan.steps):
        operands = ffi.new("trt_operand[]", max(len(step.inputs), 1))
        keep.append(operands)
        for k, operand in enumerate(step.inputs):
            if isinstance(operand, int):
                operands[k].offset = plan.tensor_offset[operand]
                operands[k].data = ffi.NULL
            else:
                keep.append(operand)
                operands[k].offset = -1
                operands[k].data = ffi.from_buffer(operand)
        cs = c_steps[i]
        cs.kind = step.kind
        cs.params = step.params
        cs.num_inputs = len(step.inputs)
        cs.inputs = operands
        cs.output = plan.tensor_offset[step.output]
        cs.scratch = plan.scratch_offset[i]
        cs.extra = step.extra
    c_plan = ffi.new("trt_plan *")
    c_plan.num_steps = len(plan.steps)
    c_plan.steps = c_steps
    keep.append(c_plan)
    plan.c_plan = c_plan
