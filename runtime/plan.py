"""From a Graph to an executable Plan.

Planning happens once per load: every operator becomes a Step (its C
parameter struct filled in), views (RESHAPE) become aliases, and every
non-constant tensor and scratch buffer gets an offset in one arena from its
lifetime.  The result is handed to C as an array of trt_step; one inference
is then one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._native import ffi
from .errors import UnsupportedModelError
from .graph import Graph
from .ops import BUILDERS, Alias, OpContext, Step
from .planner import Buffer, check_no_overlap, plan_arena

SUPPORTED_IO_DTYPES = ("int8", "uint8", "float32")


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


def build_plan(graph: Graph, materialize: bool = True, fc_fixed_point: bool = False) -> Plan:
    """Plan the graph for the C backend.  Raises UnsupportedModelError naming the op."""
    _check_graph(graph)
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
        ctx = OpContext(graph, op, op.options)
        if builder is None:
            raise ctx.unsupported("operator is not implemented by the C backend")
        if len(op.outputs) != 1:
            raise ctx.unsupported(f"{len(op.outputs)} outputs; exactly one is supported")
        for i in op.inputs:
            if i >= 0 and not graph.tensors[i].is_constant and i not in produced and find(i) not in produced:
                raise ctx.unsupported(f"input tensor {graph.describe_tensor(i)} is read before anything writes it")
        if op.opcode == "FULLY_CONNECTED" and fc_fixed_point:
            from .ops.fully_connected import build_fully_connected

            result = build_fully_connected(ctx, fixed_point=True)
        else:
            result = builder(ctx)
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

    # Lifetimes of the root buffers, in step indices.
    n = len(steps)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in graph.inputs:
        first[find(i)] = -1
        last[find(i)] = max(last.get(find(i), -1), -1)
    for s_idx, step in enumerate(steps):
        for operand in step.inputs:
            if isinstance(operand, int):
                r = find(operand)
                last[r] = max(last.get(r, s_idx), s_idx)
        r = find(step.output)
        first.setdefault(r, s_idx)
        last[r] = max(last.get(r, s_idx), s_idx)
    for i in graph.outputs:
        last[find(i)] = n

    sizes: dict[int, int] = {}
    for t_idx in list(first):
        sizes[t_idx] = max(graph.tensors[t_idx].nbytes, 1)
    # An alias group's buffer must hold every member (they have equal sizes).
    for alias, _ in root.items():
        r = find(alias)
        if r in sizes:
            sizes[r] = max(sizes[r], graph.tensors[alias].nbytes)

    buffers = [Buffer(key=t, size=sizes[t], first=first[t], last=last[t]) for t in first]
    for s_idx, step in enumerate(steps):
        if step.scratch_bytes:
            buffers.append(Buffer(key=("scratch", s_idx), size=step.scratch_bytes, first=s_idx, last=s_idx))
    arena_bytes = plan_arena(buffers)
    check_no_overlap(buffers)

    tensor_offset: dict[int, int] = {}
    scratch_offset = [-1] * n
    for b in buffers:
        if isinstance(b.key, tuple):
            scratch_offset[b.key[1]] = b.offset
        else:
            tensor_offset[b.key] = b.offset
    for alias in root:
        r = find(alias)
        if r in tensor_offset:
            tensor_offset[alias] = tensor_offset[r]

    plan = Plan(
        graph=graph,
        steps=steps,
        step_ops=step_ops,
        root=root,
        buffers=buffers,
        arena_bytes=max(arena_bytes, 16),
        tensor_offset=tensor_offset,
        scratch_offset=scratch_offset,
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
