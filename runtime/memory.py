"""Arena layout for a list of steps: lifetimes, aliasing, in-place choices.

Given the steps of a plan, this decides which tensors share memory and where
every buffer lives in the one arena:

- views (RESHAPE and friends) alias their input;
- element-wise steps (ADD, MUL, table look-ups, 8-bit requantize) write over
  an input that dies at that step, when shapes match (no broadcast on it);
- depthwise convolutions may run in place (TinyEngine), with a temporary
  block of channels in scratch, when that lowers the peak;
- convolutions drop their im2col patches for the direct path when the
  patches would raise the peak.  (Sparse convolutions keep their SIMD pixel
  tiles: without them they lose to the dense kernel, runtime.sparse.)

The last two trade a little speed for memory, so they are searched: start
from the fastest choices and take, one at a time, the change that shrinks
the arena most, until none does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._native import lib
from .graph import Graph
from .ops import Step
from .planner import Buffer, check_no_overlap, plan_arena
from .sparse import conv_scratch_without_tile

# Element-wise kinds whose output may overwrite a same-sized input.
_ELEMENTWISE = {lib.TRT_OP_ADD, lib.TRT_OP_MUL, lib.TRT_OP_LUT, lib.TRT_OP_REQUANTIZE}
MAX_SEARCH_STEPS = 120


@dataclass
class Choices:
    """Per-step memory decisions (keyed by step index)."""

    inplace: dict[int, int] = field(default_factory=dict)  # step -> input tensor overwritten
    dw_block: dict[int, int] = field(default_factory=dict)  # in-place depthwise channel block
    direct_conv: set[int] = field(default_factory=set)  # convolutions without im2col scratch

    def copy(self) -> Choices:
        return Choices(dict(self.inplace), dict(self.dw_block), set(self.direct_conv))


@dataclass
class Layout:
    root: dict[int, int]  # tensor -> tensor whose buffer it uses
    buffers: list[Buffer]
    arena_bytes: int
    tensor_offset: dict[int, int]
    scratch_offset: list[int]
    choices: Choices


def apply_choices(steps: list[Step], choices: Choices) -> None:
    """Write the decisions into the steps' C parameter structs and scratch sizes."""
    for i, step in enumerate(steps):
        if step.kind == lib.TRT_OP_CONV2D:
            step.params.im2col = 0 if i in choices.direct_conv else 1
            step.scratch_bytes = int(lib.trt_conv2d_s8_scratch_size(step.params))
        elif step.kind == lib.TRT_OP_SPARSE_CONV2D and i in choices.direct_conv:
            step.params.tile = 0  # forced by a test: the pixel-by-pixel path
            step.scratch_bytes = int(lib.trt_sparse_conv2d_s8_scratch_size(step.params))
        elif step.kind == lib.TRT_OP_DEPTHWISE_CONV2D:
            block = choices.dw_block.get(i, 0)
            step.params.in_place = 1 if block else 0
            step.params.channel_block = block
            step.scratch_bytes = int(lib.trt_depthwise_conv2d_s8_scratch_size(step.params))


def _scratch_for(step: Step, index: int, choices: Choices) -> int:
    """Scratch bytes of a step under the given choices (without touching it)."""
    if step.kind == lib.TRT_OP_CONV2D:
        if index in choices.direct_conv:
            return 0
        return step.im2col_scratch
    if step.kind == lib.TRT_OP_SPARSE_CONV2D:
        return conv_scratch_without_tile(step.params) if index in choices.direct_conv else step.im2col_scratch
    if step.kind == lib.TRT_OP_DEPTHWISE_CONV2D:
        block = choices.dw_block.get(index, 0)
        p = step.params
        return p.output.h * p.output.w * block if block else 0
    return step.scratch_bytes


def layout(graph: Graph, steps: list[Step], views: dict[int, int], choices: Choices) -> Layout:
    """Lifetimes and offsets for these steps under these choices."""
    root = dict(views)

    def find(t: int) -> int:
        while t in root:
            t = root[t]
        return t

    for s_idx, t in choices.inplace.items():
        root[steps[s_idx].output] = find(t)

    n = len(steps)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in graph.inputs:
        r = find(i)
        first[r] = -1
        last[r] = max(last.get(r, -1), -1)
    for s_idx, step in enumerate(steps):
        for operand in step.inputs:
            if isinstance(operand, int):
                r = find(operand)
                first.setdefault(r, s_idx)
                last[r] = max(last.get(r, s_idx), s_idx)
        r = find(step.output)
        first.setdefault(r, s_idx)
        last[r] = max(last.get(r, s_idx), s_idx)
    for i in graph.outputs:
        last[find(i)] = n

    sizes = {t: max(graph.tensors[t].nbytes, 1) for t in first}
    for member in root:
        r = find(member)
        if r in sizes:
            sizes[r] = max(sizes[r], graph.tensors[member].nbytes)

    buffers = [Buffer(key=t, size=sizes[t], first=first[t], last=last[t]) for t in first]
    for s_idx, step in enumerate(steps):
        scratch = _scratch_for(step, s_idx, choices)
        if scratch:
            buffers.append(Buffer(key=("scratch", s_idx), size=scratch, first=s_idx, last=s_idx))
    arena = plan_arena(buffers)

    tensor_offset: dict[int, int] = {}
    scratch_offset = [-1] * n
    for b in buffers:
        if isinstance(b.key, tuple):
            scratch_offset[b.key[1]] = b.offset
        else:
            tensor_offset[b.key] = b.offset
    for member in root:
        r = find(member)
        if r in tensor_offset:
            tensor_offset[member] = tensor_offset[r]
    return Layout(root, buffers, max(arena, 16), tensor_offset, scratch_offset, choices)


def _last_use(graph: Graph, steps: list[Step], views: dict[int, int]) -> dict[int, int]:
    """Last step reading each root buffer (graph outputs: one past the end)."""

    def find(t: int) -> int:
        while t in views:
            t = views[t]
        return t

    last: dict[int, int] = {}
    for s_idx, step in enumerate(steps):
        for operand in step.inputs:
            if isinstance(operand, int):
                last[find(operand)] = s_idx
    for i in graph.outputs:
        last[find(i)] = len(steps)
    return last


def elementwise_inplace(graph: Graph, steps: list[Step], views: dict[int, int]) -> dict[int, int]:
    """Element-wise steps that can overwrite an input dying at that step."""

    def find(t: int) -> int:
        while t in views:
            t = views[t]
        return t

    last = _last_use(graph, steps, views)
    out: dict[int, int] = {}
    taken: set[int] = set()
    for s_idx, step in enumerate(steps):
        if step.kind not in _ELEMENTWISE:
            continue
        out_t = graph.tensors[step.output]
        for operand in step.inputs:
            if not isinstance(operand, int):
                continue
            r = find(operand)
            t = graph.tensors[operand]
            # Same element count and size: element i is read before it is
            # written, and no other element reads it (no broadcasting).
            if t.size == out_t.size and t.nbytes == out_t.nbytes and last.get(r) == s_idx and r not in taken:
                out[s_idx] = operand
                taken.add(r)
                break
    return out


def dw_inplace_candidates(graph: Graph, steps: list[Step], views: dict[int, int]) -> list[int]:
    def find(t: int) -> int:
        while t in views:
            t = views[t]
        return t

    last = _last_use(graph, steps, views)
    out = []
    for s_idx, step in enumerate(steps):
        if step.kind != lib.TRT_OP_DEPTHWISE_CONV2D or step.params.depth_multiplier != 1:
            continue
        (operand,) = step.inputs[:1]
        if isinstance(operand, int) and last.get(find(operand)) == s_idx:
            out.append(s_idx)
    return out


def _fastest_conv_scratch(steps: list[Step]) -> None:
    """Start every convolution with its speed-first scratch (im2col patches;
    a sparse one with the tile its builder chose) and remember its size."""
    for step in steps:
        if step.kind == lib.TRT_OP_CONV2D:
            step.params.im2col = 1
            step.im2col_scratch = int(lib.trt_conv2d_s8_scratch_size(step.params))
        elif step.kind == lib.TRT_OP_SPARSE_CONV2D:
            step.im2col_scratch = int(lib.trt_sparse_conv2d_s8_scratch_size(step.params))


def _near_peak(current: Layout, n_steps: int) -> set[int]:
    """Steps whose live buffers add up to at least half the arena."""
    live = [0] * (n_steps + 2)
    for b in current.buffers:
        for t in range(max(b.first, 0), min(b.last, n_steps) + 1):
            live[t] += b.size
    threshold = current.arena_bytes // 2
    return {t for t in range(n_steps) if live[t] >= threshold}


DW_POLICIES = ("memory", "speed", "active")


def dw_blocks(step: Step, policy: str) -> list[int]:
    """The in-place channel blocks the search may try for a depthwise step,
    largest first.  Small blocks save scratch (H x W bytes a channel) but run
    the layer a block at a time, which the SIMD tables' per-pixel kernels do
    3-25x slower below sixteen channels (the portable C about 2x).  policy:
    "memory" (a microcontroller's plan: every size), "speed" (a SIMD board's:
    no block below sixteen channels), "active" (runtime.load: as "speed",
    but every size where this machine's kernels run the layer in place
    themselves, equally fast for any block, and with the portable table)."""
    channels = step.params.output.c
    sizes = {channels, min(channels, 16), min(channels, 4), 1}
    if policy == "speed" or (
        policy == "active"
        and lib.trt_isa_active() != lib.TRT_ISA_PORTABLE
        and not lib.trt_depthwise_conv2d_s8_in_place_native(step.params)
    ):
        sizes = {channels, min(channels, 16)}
    return sorted(sizes, reverse=True)


def choose_layout(graph: Graph, steps: list[Step], views: dict[int, int], dw_policy: str = "memory") -> Layout:
    """Search the memory choices for the smallest arena, preferring speed on
    ties; dw_policy limits the in-place depthwise blocks tried (dw_blocks)."""
    if dw_policy not in DW_POLICIES:
        raise ValueError(f"dw_policy must be one of {DW_POLICIES}, got {dw_policy!r}")
    _fastest_conv_scratch(steps)
    choices = Choices(inplace=elementwise_inplace(graph, steps, views))
    best = layout(graph, steps, views, choices)
    dw_candidates = dw_inplace_candidates(graph, steps, views)
    # The search costs O(steps^2) layouts; real models have tens of steps.
    searching = len(steps) <= MAX_SEARCH_STEPS
    while searching:
        # Only steps whose live bytes come near the peak can lower it: the
        # rest are skipped, which keeps loading fast (vww: 13 depthwise steps).
        hot = _near_peak(best, len(steps))
        trials: list[Choices] = []
        for s_idx, step in enumerate(steps):
            if (
                s_idx in hot
                and step.kind == lib.TRT_OP_CONV2D
                and step.im2col_scratch
                and s_idx not in best.choices.direct_conv
            ):
                c = best.choices.copy()
                c.direct_conv.add(s_idx)
                trials.append(c)
        for s_idx in dw_candidates:
            if s_idx in best.choices.dw_block or s_idx not in hot:
                continue
            # whole (fastest), then smaller blocks of scratch
            for block in dw_blocks(steps[s_idx], dw_policy):
                c = best.choices.copy()
                c.dw_block[s_idx] = block
                c.inplace[s_idx] = steps[s_idx].inputs[0]
                trials.append(c)
        improved = None
        for c in trials:
            candidate = layout(graph, steps, views, c)
            if candidate.arena_bytes < (improved or best).arena_bytes:
                improved = candidate
        if improved is None:
            break
        best = improved
    check_no_overlap(best.buffers)
    apply_choices(steps, best.choices)
    return best


def forced_layout(graph: Graph, steps: list[Step], views: dict[int, int], make: object) -> Layout:
    """The layout for choices given by a function of the steps (for tests)."""
    _fastest_conv_scratch(steps)
    chosen = make(graph, steps, views)  # type: ignore[operator]
    result = layout(graph, steps, views, chosen)
    check_no_overlap(result.buffers)
    apply_choices(steps, chosen)
    return result
