"""PAD folded into the following VALID convolution (runtime/fuse.py).

Random PAD -> CONV_2D and PAD -> DEPTHWISE_CONV_2D graphs (symmetric and
asymmetric pads, padding wider than the kernel, strides 1 and 2, dilation,
depth multipliers, batches, PADV2, PAD chains) are written to .tflite and
run by tinyrt with the fold and without it; both must equal LiteRT's
BUILTIN_REF kernels bit for bit.  The folded plan has one step per PAD
fewer and an arena no larger.  Graphs the fold must not touch (padding of
the batch or channel dimension, a PAD output read twice or exported, a
PADV2 constant other than the zero point, a requantising PAD, a SAME
convolution) keep their PAD and stay exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import graphgen
import numpy as np
import pytest
from conftest import reference_interpreter, run_reference
from graphgen import SAME, VALID, GraphBuilder
from tflite_writer import write_model

from runtime import isa
from runtime._native import ffi, lib
from runtime.errors import UnsupportedModelError
from runtime.fuse import FOLDED_PAD, fold_pads
from runtime.graph import Graph
from runtime.memory import Choices
from runtime.plan import Plan, build_plan

RUNS = 3
ALIGN = 64


def run_plan(plan: Plan, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """One inference of a materialised plan in a fresh arena."""
    graph = plan.graph
    raw = np.zeros(plan.arena_bytes + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    arena = raw[start : start + plan.arena_bytes]

    def view(t: int) -> np.ndarray:
        tensor = graph.tensors[t]
        assert tensor.dtype is not None
        return np.ndarray(tensor.shape, dtype=tensor.dtype, buffer=arena, offset=plan.tensor_offset[t])

    for t, x in zip(graph.inputs, inputs, strict=True):
        np.copyto(view(t), x)
    failed = ffi.new("int32_t *")
    status = lib.trt_run_plan(plan.c_plan, ffi.cast("uint8_t *", ffi.from_buffer(arena)), failed)
    assert status == 0, f"step {failed[0]} failed with status {status}"
    return [view(t).copy() for t in graph.outputs]


# ------------------------------------------------------------- graphs


@dataclass
class PadCase:
    name: str
    graph: Graph
    pads: list[tuple[int, int, int, int]]  # (top, bottom, left, right) of each PAD that must fold
    case: graphgen.Case


def _pad(
    gb: GraphBuilder, x: int, pads: np.ndarray, opcode: str = "PAD", value: int | None = None, requantize: bool = False
) -> int:
    """PAD / PADV2 of x by pads [rank][2] with constant `value` (PADV2)."""
    out_shape = tuple(int(d + a + b) for d, (a, b) in zip(gb.shape(x), pads, strict=True))
    if requantize:  # same zero point, another scale: the bytes mean other values after it
        s, zp = gb.qparams(x)
        y = gb.tensor(out_shape, "int8", s * 1.5, zp)
    else:
        y = gb.like(x, out_shape)
    inputs = [x, gb.tensor(pads.shape, "int32", data=pads.astype(np.int32))]
    if opcode == "PADV2":
        s, zp = gb.qparams(x)
        inputs.append(gb.tensor((1,), "int8", s, zp, data=np.array([zp if value is None else value], np.int8)))
    gb.op(opcode, inputs, [y])
    return y


def _spatial(top: int, bottom: int, left: int, right: int) -> np.ndarray:
    return np.array([[0, 0], [top, bottom], [left, right], [0, 0]])


def _conv(gb: GraphBuilder, rng: np.random.Generator, x: int, kind: str, seed: int, **kw) -> int:
    if kind == "conv":
        kw.setdefault("groups", seed % 6 == 5)
        return graphgen.add_conv2d(gb, rng, x, seed, **kw)
    kw.setdefault("depth_multiplier", 1 if seed % 3 else 2)  # 2: the grouped-convolution path
    return graphgen.add_depthwise(gb, rng, x, seed, **kw)


def pad_conv_case(kind: str, seed: int) -> PadCase:
    """x -> PAD (H, W only, the zero point) -> VALID conv -> output, with a
    geometry drawn from the seed: symmetric or asymmetric pads (some wider
    than the kernel), strides 1 / 2, dilation, PADV2, a PAD chain, batch 2."""
    rng = np.random.default_rng([77, 0 if kind == "conv" else 1, seed])
    gb = GraphBuilder()
    s, zp = graphgen.act_quant(rng)
    batch = 2 if seed % 7 == 6 else 1
    channels = int(rng.choice([1, 3, 4, 8, 16, 20])) if seed % 5 else int(rng.integers(24, 40))
    if kind == "conv" and seed % 6 == 5 and channels % 2:
        channels += 1  # groups
    h, w = (int(v) for v in rng.integers(2, 10, size=2))
    x = gb.input((batch, h, w, channels), "int8", s, zp)
    if seed % 4 == 0:
        top = bottom = int(rng.integers(0, 3))
        left = right = int(rng.integers(0, 3))
    else:
        top, bottom, left, right = (int(v) for v in rng.integers(0, 4 if seed % 8 == 3 else 3, size=4))
    if seed % 8 == 3:  # padding wider than a small kernel: whole windows of zero points
        top, right = top + 3, right + 2
    chain = seed % 9 == 4 and batch == 1
    pads = [(top, bottom, left, right)]
    y = _pad(gb, x, _spatial(top, bottom, left, right), "PADV2" if seed % 3 == 1 else "PAD")
    if chain:  # PAD -> PAD -> conv: both fold
        more = tuple(int(v) for v in rng.integers(0, 3, size=4))
        pads.append(more)
        y = _pad(gb, y, _spatial(*more))
    ph, pw = gb.shape(y)[1:3]
    dilation = seed % 5 == 2
    reach = 3 if dilation else 1  # the largest dilation graphgen draws
    kh = int(rng.integers(1, min(4, (ph - 1) // reach + 1) + 1))
    kw = int(rng.integers(1, min(4, (pw - 1) // reach + 1) + 1))
    stride = (1, 1) if seed % 2 == 0 else (2, int(rng.integers(1, 3)))
    out = _conv(gb, rng, y, kind, seed, kernel=(kh, kw), stride=stride, padding=VALID, dilation=dilation)
    gb.outputs.append(out)
    g = gb.graph()
    name = f"{kind}#{seed} pads={pads} k={kh}x{kw} stride={stride} dilation={dilation} batch={batch} c={channels}"
    conv = g.operators[-1]
    if conv.options["padding"] != VALID:  # the generator fell back to SAME: nothing may fold
        pads = []
    if in_place_hazard(g, conv):
        pads = []
    if chain and pads:  # the fold records each PAD's own amounts, the nearer one first
        pads = pads[::-1]
    return PadCase(name, g, pads, graphgen.Case(name, g, gb.features))


def in_place_hazard(g: Graph, conv) -> bool:
    """A depthwise convolution (multiplier 1) of several images whose output
    image would be larger than the PAD's input image: the planner may run it
    in place, so the PAD stays (test_growing_depthwise_batches_keep_their_pad)."""
    x = g.tensors[g.inputs[0]].shape
    y = g.tensors[conv.outputs[0]].shape
    return conv.opcode == "DEPTHWISE_CONV_2D" and x[0] > 1 and y[3] == x[3] and y[1] * y[2] > x[1] * x[2]


@pytest.fixture(params=isa.available())
def kernel_isa(request: pytest.FixtureRequest) -> Iterator[str]:
    isa.select(request.param)
    try:
        yield request.param
    finally:
        isa.select("best")


def check_fold(pc: PadCase, seed: int, choices: Callable | None = None) -> tuple[Plan, Plan]:
    """Fused and unfused plans both equal LiteRT; the fused one lost the folded PADs' steps."""
    data = write_model(pc.graph)
    ref = reference_interpreter(data)
    fused = build_plan(pc.graph, fuse=True, choices=choices)
    plain = build_plan(pc.graph, fuse=False, choices=choices)
    assert [(f.top, f.bottom, f.left, f.right) for f in fused.folded_pads] == pc.pads, pc.name
    assert plain.folded_pads == []
    assert len(fused.steps) == len(plain.steps) - len(pc.pads), pc.name
    assert fused.arena_bytes <= plain.arena_bytes, pc.name
    # Reports still index the model's operators: PADs gone, the convolution named.
    pad_ops = {f.pad_op for f in fused.folded_pads}
    assert fused.graph is pc.graph and set(fused.step_ops) == set(plain.step_ops) - pad_ops
    assert all(pc.graph.operators[f.pad_op].opcode in ("PAD", "PADV2") for f in fused.folded_pads)
    rng = np.random.default_rng(seed)
    for run in range(RUNS):
        inputs = pc.case.random_inputs(rng)
        want = run_reference(ref, inputs)
        for plan, label in ((fused, "fused"), (plain, "unfused")):
            got = run_plan(plan, inputs)
            for a, b in zip(got, want, strict=True):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_array_equal(a, b, err_msg=f"{pc.name} ({label}), run {run}")
    return fused, plain


SEEDS = range(36)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["conv", "depthwise"])
def test_pad_conv_folds_bit_exact(kind: str, seed: int) -> None:
    pc = pad_conv_case(kind, seed)
    fused, _ = check_fold(pc, seed)
    if pc.pads:
        # The convolution's own geometry carries the PAD: top/left offsets.
        (step,) = [s for s in fused.steps if s.kind in (lib.TRT_OP_CONV2D, lib.TRT_OP_DEPTHWISE_CONV2D)]
        assert step.params.pad_top == sum(p[0] for p in pc.pads)
        assert step.params.pad_left == sum(p[2] for p in pc.pads)
        assert step.inputs == [pc.graph.inputs[0]]


def test_cases_cover_the_geometries() -> None:
    """The seeds reach every shape of the fold this file promises."""
    seen: set[str] = set()
    for kind in ("conv", "depthwise"):
        for seed in SEEDS:
            pc = pad_conv_case(kind, seed)
            conv = pc.graph.operators[-1]
            if not pc.pads:
                continue
            seen.add(kind)
            top, bottom, left, right = (sum(p[i] for p in pc.pads) for i in range(4))
            seen.add("symmetric" if (top, left) == (bottom, right) else "asymmetric")
            if max(top, bottom, left, right) >= 3:
                seen.add("wide")
            if max(conv.options["stride_h"], conv.options["stride_w"]) > 1:
                seen.add("stride")
            if max(conv.options["dilation_h_factor"], conv.options["dilation_w_factor"]) > 1:
                seen.add("dilation")
            if len(pc.pads) > 1:
                seen.add("chain")
            if any(op.opcode == "PADV2" for op in pc.graph.operators):
                seen.add("PADV2")
            if pc.graph.tensors[pc.graph.inputs[0]].shape[0] > 1:
                seen.add("batch")
            if kind == "depthwise" and conv.options["depth_multiplier"] > 1:
                seen.add("multiplier")
    want = {"conv", "depthwise", "symmetric", "asymmetric", "wide", "stride", "dilation", "chain", "PADV2"}
    assert want | {"batch", "multiplier"} <= seen, sorted(want | {"batch", "multiplier"} - seen)


@pytest.mark.parametrize("seed", range(8))
def test_folded_kernels_under_every_table(kernel_isa: str, seed: int) -> None:
    """The SIMD tables' convolution paths on the folded geometry (the plan
    is built under the selected table, as the sparse policy reads it)."""
    assert isa.active() == kernel_isa
    for kind in ("conv", "depthwise"):
        check_fold(pad_conv_case(kind, 100 + seed), seed)


def _forced(make: Callable[[list], Choices]) -> Callable:
    return lambda graph, steps, views: make(steps)


@pytest.mark.parametrize("seed", range(10))
def test_folded_direct_conv_and_in_place_depthwise(seed: int) -> None:
    """The kernel variants the memory search may pick, forced: the direct
    convolution (no patches: outside taps as zero-point sums) and the
    in-place depthwise convolution, on folded asymmetric padding."""

    def direct(steps: list) -> Choices:
        return Choices(direct_conv={i for i, s in enumerate(steps) if s.kind == lib.TRT_OP_CONV2D})

    def in_place(steps: list) -> Choices:
        c = Choices()
        for i, s in enumerate(steps):
            if s.kind == lib.TRT_OP_DEPTHWISE_CONV2D and s.params.depth_multiplier == 1:
                c.dw_block[i] = min(4, int(s.params.output.c))
                c.inplace[i] = s.inputs[0]
        return c

    pc = pad_conv_case("conv", 200 + seed)
    check_fold(pc, seed, choices=_forced(direct))
    # depthwise, multiplier 1, whose input dies at the convolution
    rng = np.random.default_rng([5, seed])
    gb = GraphBuilder()
    s, zp = graphgen.act_quant(rng)
    x = gb.input((1, int(rng.integers(3, 8)), int(rng.integers(3, 8)), int(rng.integers(1, 12))), "int8", s, zp)
    h = graphgen.add_unary(gb, rng, x, 0, opcode="RELU")  # a computed tensor the convolution may overwrite
    pads = (int(rng.integers(0, 3)), int(rng.integers(0, 3)), int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    y = _pad(gb, h, _spatial(*pads))
    out = graphgen.add_depthwise(
        gb, rng, y, seed, depth_multiplier=1, kernel=(3, 3), stride=(1 + seed % 2, 1), padding=VALID, dilation=False
    )
    gb.outputs.append(out)
    g = gb.graph()
    fold = [pads] if g.operators[-1].options["padding"] == VALID else []
    check_fold(PadCase("in-place dw", g, fold, graphgen.Case("dw", g, gb.features)), seed, choices=_forced(in_place))


def test_folded_sparse_convolution() -> None:
    """A pruned convolution on the sparse kernels reads the folded geometry too."""
    for seed in range(6):
        pc = pad_conv_case("conv", 300 + seed)
        conv = pc.graph.operators[-1]
        w = pc.graph.tensors[conv.inputs[1]]
        assert w.data is not None
        pruned = np.where(np.random.default_rng(seed).random(w.data.shape) < 0.8, 0, w.data).astype(np.int8)
        pc.graph.tensors[conv.inputs[1]] = dataclasses.replace(w, data=pruned)
        data = write_model(pc.graph)
        ref = reference_interpreter(data)
        plan = build_plan(pc.graph, sparse="force")
        assert len(plan.folded_pads) == len(pc.pads)
        rng = np.random.default_rng(seed)
        inputs = pc.case.random_inputs(rng)
        for a, b in zip(run_plan(plan, inputs), run_reference(ref, inputs), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=pc.name)


# ----------------------------------------------------- left alone


def test_growing_depthwise_batches_keep_their_pad() -> None:
    """Two images through PAD -> depthwise whose padding outgrows the kernel:
    in place (the memory search's option), image 0's larger output would run
    over image 1's input, so the PAD is not folded; forced in place, the
    unfolded plan is still exact."""
    rng = np.random.default_rng(3)
    gb = GraphBuilder()
    s, zp = graphgen.act_quant(rng)
    x = gb.input((2, 4, 5, 8), "int8", s, zp)
    h = graphgen.add_unary(gb, rng, x, 0, opcode="RELU")
    y = _pad(gb, h, _spatial(2, 1, 0, 3))
    out = graphgen.add_depthwise(
        gb, rng, y, 0, depth_multiplier=1, kernel=(1, 2), stride=(1, 1), padding=VALID, dilation=False
    )
    gb.outputs.append(out)
    g = gb.graph()
    assert in_place_hazard(g, g.operators[-1])
    assert fold_pads(g)[1] == []

    def in_place(steps: list) -> Choices:
        (i,) = [i for i, s in enumerate(steps) if s.kind == lib.TRT_OP_DEPTHWISE_CONV2D]
        return Choices(inplace={i: steps[i].inputs[0]}, dw_block={i: 4})

    pc = PadCase("growing depthwise", g, [], graphgen.Case("dw", g, gb.features))
    check_fold(pc, 0)
    check_fold(pc, 1, choices=_forced(in_place))


def _base(seed: int, channels: int = 4) -> tuple[GraphBuilder, np.random.Generator, int]:
    rng = np.random.default_rng([91, seed])
    gb = GraphBuilder()
    s, zp = graphgen.act_quant(rng)
    return gb, rng, gb.input((1, 6, 5, channels), "int8", s, zp)


def _valid_conv(gb: GraphBuilder, rng: np.random.Generator, x: int, seed: int, kind: str = "conv", **kw) -> int:
    return _conv(gb, rng, x, kind, seed, kernel=(2, 3), stride=(1, 1), dilation=False, **{"padding": VALID, **kw})


def no_fold_batch_pad(seed: int) -> Graph:
    gb, rng, x = _base(seed)
    y = _pad(gb, x, np.array([[1, 0], [1, 1], [0, 1], [0, 0]]))
    gb.outputs.append(_valid_conv(gb, rng, y, seed))
    return gb.graph()


def no_fold_channel_pad(seed: int) -> Graph:
    gb, rng, x = _base(seed)
    y = _pad(gb, x, np.array([[0, 0], [1, 1], [1, 1], [1, 2]]))
    gb.outputs.append(_valid_conv(gb, rng, y, seed, kind="depthwise" if seed % 2 else "conv"))
    return gb.graph()


def no_fold_read_twice(seed: int) -> Graph:
    gb, rng, x = _base(seed)
    y = _pad(gb, x, _spatial(1, 0, 1, 2))
    a = _valid_conv(gb, rng, y, seed)
    b = _valid_conv(gb, rng, y, seed + 1, kind="depthwise")
    gb.outputs += [a, b]
    return gb.graph()


def no_fold_read_by_add(seed: int) -> Graph:
    gb, rng, x = _base(seed)
    y = _pad(gb, x, _spatial(1, 1, 1, 1))
    a = _valid_conv(gb, rng, y, seed)
    gb.outputs += [a, graphgen.add_binary(gb, rng, y, seed, opcode="ADD", other=y)]
    return gb.graph()


def no_fold_padv2_constant(seed: int) -> Graph:
    gb, rng, x = _base(seed)
    _, zp = gb.qparams(x)
    y = _pad(gb, x, _spatial(1, 2, 0, 1), "PADV2", value=zp + 1 if zp < 127 else zp - 1)
    gb.outputs.append(_valid_conv(gb, rng, y, seed, kind="depthwise" if seed % 2 else "conv"))
    return gb.graph()


def no_fold_same_conv(seed: int) -> Graph:
    gb, rng, x = _base(seed)
    y = _pad(gb, x, _spatial(0, 1, 1, 0))
    gb.outputs.append(_valid_conv(gb, rng, y, seed, padding=SAME))
    return gb.graph()


def no_fold_graph_output(seed: int) -> Graph:
    gb, rng, x = _base(seed)
    y = _pad(gb, x, _spatial(1, 1, 2, 0))
    gb.outputs += [_valid_conv(gb, rng, y, seed), y]
    return gb.graph()


def no_fold_requantizing_pad(seed: int) -> Graph:
    gb, rng, x = _base(seed)
    y = _pad(gb, x, _spatial(1, 0, 0, 1), requantize=True)
    gb.outputs.append(_valid_conv(gb, rng, y, seed))
    return gb.graph()


NO_FOLD = [
    no_fold_batch_pad,
    no_fold_channel_pad,
    no_fold_read_twice,
    no_fold_read_by_add,
    no_fold_padv2_constant,
    no_fold_same_conv,
    no_fold_graph_output,
    no_fold_requantizing_pad,
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("make", NO_FOLD, ids=[f.__name__ for f in NO_FOLD])
def test_pads_that_must_stay(make: Callable[[int], Graph], seed: int) -> None:
    g = make(seed)
    rewritten, folded = fold_pads(g)
    assert folded == [] and rewritten is g
    assert any(op.opcode in ("PAD", "PADV2") for op in g.operators)
    fused, plain = check_fold(PadCase(make.__name__, g, [], graphgen.Case(make.__name__, g, set())), seed)
    assert len(fused.steps) == len(plain.steps)
    assert {lib.TRT_OP_PAD} <= {s.kind for s in fused.steps}


def test_fold_leaves_the_model_graph_alone() -> None:
    pc = pad_conv_case("conv", 1)
    before = [(op.index, op.opcode, op.inputs, dict(op.options)) for op in pc.graph.operators]
    rewritten, folded = fold_pads(pc.graph)
    assert [(op.index, op.opcode, op.inputs, dict(op.options)) for op in pc.graph.operators] == before
    assert len(rewritten.operators) == len(pc.graph.operators) - 1
    conv = rewritten.operators[-1]
    assert conv.index == pc.graph.operators[-1].index  # indices of the model, not of the shorter list
    assert conv.options[FOLDED_PAD] == pc.pads[0] and folded[0].conv_op == conv.index
    assert conv.inputs[0] == pc.graph.inputs[0]


def test_errors_name_the_models_operators() -> None:
    """A convolution the backend refuses is named by its own index, fused or not."""
    gb, rng, x = _base(0)
    y = _pad(gb, x, _spatial(1, 1, 1, 1))
    out = _valid_conv(gb, rng, y, 0)
    gb.outputs.append(out)
    g = gb.graph()
    conv = g.operators[-1]
    w = g.tensors[conv.inputs[1]]
    assert w.quant is not None
    # asymmetric int8 weights: refused by the convolution's builder
    g.tensors[conv.inputs[1]] = dataclasses.replace(
        w, quant=dataclasses.replace(w.quant, zero_point=w.quant.zero_point + 1)
    )
    errors = []
    for fuse in (True, False):
        with pytest.raises(UnsupportedModelError) as info:
            build_plan(g, fuse=fuse, materialize=False)
        errors.append((info.value.op_index, str(info.value).split(":")[0]))
    assert errors[0] == errors[1] == (conv.index, f"operator {conv.index} (CONV_2D)")


def test_runtime_load_folds() -> None:
    """The public loader plans with the fold (the C backend's default)."""
    import runtime

    pc = pad_conv_case("depthwise", 0)
    assert pc.pads
    model = runtime.load(write_model(pc.graph), backend="c")
    assert len(model.plan.folded_pads) == 1
