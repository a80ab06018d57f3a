"""Pruned weights at plan time: measure, decide, pack.

For every FULLY_CONNECTED and (single-group) CONV_2D the planner measures
how many weights are zero, predicts the kernel time of the dense kernel and
of the sparse kernels from a cost model calibrated on this machine class
(tools/calibrate_sparse.py), and in ``sparse="auto"`` mode keeps the
faster: dense below the break-even sparsity, sparse above it.
``"force"`` takes the cheapest sparse format for every eligible layer,
``"off"`` leaves the plan exactly as without this module.

Formats (csrc/include/tinyrt.h, trt_sparse_matrix): a row is an output
channel over the K inputs it reduces (FULLY_CONNECTED: in_features; CONV_2D:
KH*KW*C_in in the dense patch order).  Rows are cut into strips of B rows
and a strip lists its kept blocks -- B consecutive rows by one input --
with a uint16 input index each:

- B = 1, "1x1": unstructured, one index per kept weight;
- B = 4 / 8, "4x1" / "8x1": one index per four / eight weights, what
  ``python -m runtime.prune --block 4x1`` (or 8x1) leaves, and what SIMD
  lanes want (the rows of a strip are the lanes of one multiply-add).

A block is kept when any of its weights is non-zero; its zeros are stored,
so the sum of the kept weights is the dense sum and the folded zero-point
term (bias_folded) is the dense one: results are bit-exact by construction.
Strips keep an even number of blocks (a zero block pads an odd count) and
store the weights of two blocks interleaved row by row, the operand order of
a 2-way int16 multiply-add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._native import ffi, lib
from .graph import Graph, Operator
from .ops.common import Step

SparseMode = Literal["auto", "off", "force"]
MODES: tuple[str, ...] = ("auto", "off", "force")
BLOCKS: tuple[int, ...] = (1, 4, 8)
MAX_COLS = 0xFFFF  # indices are uint16
TILE_ISAS = ("avx2", "avx512-vnni", "avx-vnni", "amx")  # tables with spmm_tile (csrc/sparse_ukernels_*.c)
# Tables without a calibration of their own, and the one whose costs they take:
# the AMX table is the AVX-512 VNNI one with the tile GEMM for large layers
# (so its dense costs are, if anything, overestimated there).
COST_ALIASES = {"amx": "avx512-vnni"}

# ---------------------------------------------------------------------------- cost model
#
# Predicted nanoseconds per inference of one layer: a sum of coefficient x
# count over counts the planner knows before packing (cost_features):
#
#   call    1 per layer (call and set-up)
#   mac     dense multiply-adds: units * rows * cols
#   entry   kept blocks incl. the pad that makes each strip's count even, per unit
#   strip   ceil(rows / B) per unit (per-strip loop and accumulator set-up)
#   row     rows (outputs) per unit: requantisation, stores, transposes
#   patch   cols per unit for convolutions: gathering / transposing inputs
#   tap     KH*KW per unit for non-pointwise convolutions (one copy per tap)
#
# units: input rows (FULLY_CONNECTED) or output pixels (CONV_2D; for the
# sparse kernels rounded up to whole SIMD tiles where they use tiles).  Kinds:
# "fc", "pointwise" (1x1, stride 1, no padding) and "conv" (any other single-
# group convolution).  Formats: "dense" and the block sizes "1", "4", "8".
# The coefficients come from `python tools/calibrate_sparse.py` (kernel time
# of single-layer models over shapes and sparsities, every format interleaved
# with the dense kernel, least squares per kind and format) on the machine
# COSTS_PROVENANCE names; rerun it on another class of machine and paste
# its output here.  Near the break-even point the two choices differ by
# little; the worst picks cost 1.1-1.4x on layers of 1-60 us, where the
# timings of this shared machine scatter by about 10%.  FULLY_CONNECTED's
# per-row cost is one coefficient for all formats: they rescale with the
# same code.
COSTS_PROVENANCE = (
    "tools/calibrate_sparse.py on AMD EPYC (x86_64): portable and avx2 on Zen 3, 2026-11-28; "
    "avx512-vnni and avx-vnni on Zen 5, 2026-12-04"
)
COSTS: dict[str, dict[str, dict[str, dict[str, float]]]] = {
    "portable": {
        "fc": {
            "dense": {"row": 3.413, "call": 446.9, "mac": 0.1038},
            "1": {"row": 3.413, "call": 403.2, "entry": 0.7669},
            "4": {"row": 3.413, "call": 337, "entry": 3.308},
            "8": {"row": 3.413, "call": 300.9, "entry": 6.216},
        },
        "pointwise": {
            "dense": {"mac": 0.07747, "row": 5.402},
            "1": {"call": 276.5, "entry": 0.7021, "row": 5.188},
            "4": {"call": 99.18, "entry": 3.193, "strip": 0.9693, "row": 3.877},
            "8": {"call": 44.02, "entry": 6.091, "strip": 0.457, "row": 3.656},
        },
        "conv": {
            "dense": {"call": 1.678e+04, "mac": 0.08906, "tap": 26.3},
            "1": {"call": 1.377e+04, "entry": 2.935, "tap": 15.58},
            "4": {"call": 1.441e+04, "entry": 6.482, "tap": 7.729},
            "8": {"call": 1.385e+04, "entry": 10.9, "tap": 6.346},
        },
    },
    "avx2": {
        "fc": {
            "dense": {"row": 1.407, "call": 295.4, "mac": 0.026},
            "1": {"row": 1.407, "call": 591.8, "entry": 0.8071},
            "4": {"row": 1.407, "call": 295.1, "entry": 0.4931, "strip": 9.571},
            "8": {"row": 1.407, "call": 296.5, "entry": 0.5344, "strip": 17.77},
        },
        "pointwise": {
            "dense": {"call": 841.5, "mac": 0.01415, "row": 0.7918},
            "1": {"call": 636, "entry": 0.03881, "row": 0.4724, "patch": 0.1517},
            "4": {"entry": 0.1081, "strip": 0.1631, "row": 0.6522, "patch": 0.1494},
            "8": {"entry": 0.2191, "strip": 0.08584, "row": 0.6867, "patch": 0.1442},
        },
        "conv": {
            "dense": {"mac": 0.01331, "row": 1.266, "tap": 2.693},
            "1": {"entry": 0.04303, "row": 1.094, "tap": 3.754},
            "4": {"entry": 0.1038, "strip": 0.2354, "row": 0.9415, "patch": 0.01079, "tap": 4.088},
            "8": {"entry": 0.2091, "strip": 0.1372, "row": 1.098, "tap": 3.893},
        },
    },
    "avx512-vnni": {
        "fc": {
            "dense": {"row": 0.5521, "call": 125.1, "mac": 0.005711},
            "1": {"row": 0.5521, "call": 359.5, "entry": 0.4368},
            "4": {"row": 0.5521, "call": 157.9, "entry": 0.2546, "strip": 6.03},
            "8": {"row": 0.5521, "call": 169.3, "entry": 0.4259, "strip": 8.951},
        },
        "pointwise": {
            "dense": {"call": 310.9, "mac": 0.001777, "row": 0.1554},
            "1": {"call": 311.9, "entry": 0.02049, "row": 0.3246},
            "4": {"entry": 0.05545, "strip": 0.09714, "row": 0.3885},
            "8": {"entry": 0.1111, "strip": 0.05137, "row": 0.411},
        },
        "conv": {
            "dense": {"call": 494.5, "mac": 0.001377, "row": 0.1902, "patch": 0.03111},
            "1": {"call": 225.2, "entry": 0.0261, "row": 0.3232, "patch": 0.03749, "tap": 1.737},
            "4": {"call": 175.2, "entry": 0.05837, "strip": 0.07728, "row": 0.3091, "patch": 0.04039, "tap": 1.733},
            "8": {"call": 131.6, "entry": 0.1173, "strip": 0.04546, "row": 0.3637, "patch": 0.0386, "tap": 1.683},
        },
    },
    "avx-vnni": {
        "fc": {
            "dense": {"row": 0.554, "call": 160, "mac": 0.00668},
            "1": {"row": 0.554, "call": 365.5, "entry": 0.4429},
            "4": {"row": 0.554, "call": 159, "entry": 0.2587, "strip": 6.204},
            "8": {"row": 0.554, "call": 171.8, "entry": 0.4306, "strip": 9.171},
        },
        "pointwise": {
            "dense": {"call": 545.5, "mac": 0.003992, "row": 0.3558},
            "1": {"call": 338, "entry": 0.02056, "row": 0.3227},
            "4": {"entry": 0.05583, "strip": 0.09674, "row": 0.387},
            "8": {"entry": 0.1121, "strip": 0.05106, "row": 0.4085},
        },
        "conv": {
            "dense": {"call": 264.8, "mac": 0.003796, "row": 0.4653, "patch": 0.004101},
            "1": {"call": 55.85, "entry": 0.02604, "row": 0.4086, "patch": 0.03579, "tap": 1.616},
            "4": {"call": 79.29, "entry": 0.05831, "strip": 0.09064, "row": 0.3626, "patch": 0.03629, "tap": 1.706},
            "8": {"call": 70.04, "entry": 0.1177, "strip": 0.04739, "row": 0.3791, "patch": 0.03715, "tap": 1.695},
        },
    },
}
# Fit quality on the calibration layers (dense vs the predicted best sparse format):
#   portable: 246/252 layers decided right (dense vs best sparse), worst slowdown of the pick 1.429 at ('conv', 125, 64, 40, 0.9, '1x1'), median |error| 3.6%
#   avx2: 237/252 layers decided right (dense vs best sparse), worst slowdown of the pick 1.394 at ('fc', 1, 640, 128, 0.9, '8x1'), median |error| 9.0%
#   avx512-vnni: 247/252 layers decided right (dense vs best sparse), worst slowdown of the pick 1.223 at ('fc', 1, 1024, 1024, 0.98, '1x1'), median |error| 4.5%
#   avx-vnni: 241/252 layers decided right (dense vs best sparse), worst slowdown of the pick 1.223 at ('pointwise', 2304, 16, 8, 0.7969, '1x1'), median |error| 3.5%
# A table a machine lacks falls back to "portable".
FEATURES = ("call", "mac", "entry", "strip", "row", "patch", "tap")


# ---------------------------------------------------------------------------- statistics


@dataclass
class WeightStats:
    """Zero structure of one weight matrix [rows][cols]."""

    rows: int
    cols: int
    nnz: int
    # per block size B: (kept blocks incl. even-count padding, kept blocks,
    # strips, weights in kept blocks on real rows)
    blocks: dict[int, tuple[int, int, int, int]]

    @property
    def sparsity(self) -> float:
        total = self.rows * self.cols
        return 1.0 - self.nnz / total if total else 0.0


def _strips_view(w2: np.ndarray, block: int) -> np.ndarray:
    """[strips][block][cols] with zero rows padding the last strip."""
    rows, cols = w2.shape
    strips = -(-rows // block)
    if strips * block != rows:
        w2 = np.concatenate([w2, np.zeros((strips * block - rows, cols), dtype=w2.dtype)])
    return w2.reshape(strips, block, cols)


def _kept_blocks(w2: np.ndarray, block: int) -> np.ndarray:
    """bool [strips][cols]: the block (strip, col) has a non-zero weight."""
    if block == 1:
        return w2 != 0
    return np.any(_strips_view(w2, block) != 0, axis=1)


def weight_stats(w2: np.ndarray) -> WeightStats:
    rows, cols = w2.shape
    blocks: dict[int, tuple[int, int, int, int]] = {}
    for b in BLOCKS:
        keep = _kept_blocks(w2, b)
        counts = keep.sum(axis=1)
        strips = int(keep.shape[0])
        # the last strip may be short of b real rows
        weights = int(counts[:-1].sum()) * b + int(counts[-1]) * (rows - (strips - 1) * b) if strips else 0
        blocks[b] = (int((counts + (counts & 1)).sum()), int(counts.sum()), strips, weights)
    return WeightStats(rows, cols, int(np.count_nonzero(w2)), blocks)


# ---------------------------------------------------------------------------- packing


@dataclass
class Packed:
    block: int
    strip_ptr: np.ndarray  # int32 [strips + 1]
    index: np.ndarray  # uint16 [entries]
    values: np.ndarray  # int8 [entries * block], pair-interleaved

    @property
    def nbytes(self) -> int:
        return int(self.strip_ptr.nbytes + self.index.nbytes + self.values.nbytes)

    def dense(self, rows: int, cols: int) -> np.ndarray:
        """Unpack (for tests): the [rows][cols] matrix these arrays hold."""
        b = self.block
        strips = self.strip_ptr.size - 1
        out = np.zeros((strips * b, cols), dtype=np.int32)
        pairs = self.values.reshape(-1, b, 2).transpose(0, 2, 1).reshape(-1, b)
        for s in range(strips):
            for j in range(int(self.strip_ptr[s]), int(self.strip_ptr[s + 1])):
                out[s * b : (s + 1) * b, int(self.index[j])] += pairs[j]
        return out[:rows].astype(np.int8)


def pack(w2: np.ndarray, block: int) -> Packed:
    """Pack an int8 matrix [rows][cols] in the trt_sparse_matrix format."""
    rows, cols = w2.shape
    if cols > MAX_COLS:
        raise ValueError(f"{cols} inputs per row: sparse indices are uint16 (at most {MAX_COLS})")
    view = _strips_view(np.asarray(w2, dtype=np.int8), block)
    keep = _kept_blocks(w2, block)
    strips = keep.shape[0]
    s_idx, k_idx = np.nonzero(keep)  # strip-major, columns ascending
    counts = np.bincount(s_idx, minlength=strips).astype(np.int64)
    padded = counts + (counts & 1)
    strip_ptr = np.zeros(strips + 1, dtype=np.int64)
    np.cumsum(padded, out=strip_ptr[1:])
    first = np.zeros(strips, dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    pos = strip_ptr[s_idx] + (np.arange(s_idx.size) - first[s_idx])
    total = int(strip_ptr[-1])
    index = np.zeros(total, dtype=np.uint16)
    index[pos] = k_idx
    # A pad block repeats the strip's last input (a cache-warm address) with zero weights.
    odd = np.nonzero(counts & 1)[0]
    index[strip_ptr[odd + 1] - 1] = k_idx[first[odd] + counts[odd] - 1]
    vals = np.zeros((total, block), dtype=np.int8)
    vals[pos] = view[s_idx, :, k_idx]
    values = vals.reshape(-1, 2, block).transpose(0, 2, 1).reshape(-1)
    return Packed(block, strip_ptr.astype(np.int32), index, np.ascontiguousarray(values))


# ---------------------------------------------------------------------------- decisions


@dataclass
class SparsePolicy:
    """How the planner treats pruned weights.  block: force this block size
    (1, 4 or 8) where it applies instead of the cheapest (calibration, tests)."""

    mode: str = "auto"
    block: int | None = None
    isa: str | None = None  # cost table to use; None: the active instruction set

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"sparse must be 'auto', 'off' or 'force', got {self.mode!r}")
        if self.block is not None and self.block not in BLOCKS:
            raise ValueError(f"sparse block must be one of {BLOCKS}, got {self.block!r}")


def as_policy(sparse: str | SparsePolicy | None) -> SparsePolicy:
    if isinstance(sparse, SparsePolicy):
        return sparse
    return SparsePolicy(mode="off" if sparse is None else sparse)


@dataclass
class SparseLayer:
    """The plan's choice for one eligible layer (what --show-plan prints)."""

    step: int
    op_index: int
    opcode: str
    weights: str  # weight tensor name
    shape: tuple[int, ...]
    format: str  # "dense", "sparse 1x1", "sparse 4x1", "sparse 8x1"
    sparsity: float  # zero weights / weights
    block_sparsity: float  # zero blocks / blocks of the chosen format (= sparsity for dense and 1x1)
    macs_dense: int
    macs_kept: int
    bytes_dense: int
    bytes_packed: int
    predicted_ns: dict[str, float] = field(default_factory=dict)  # "dense", "1", "4", "8"
    note: str = ""


def _kind(op: Operator, params: Any) -> str:
    if op.opcode == "FULLY_CONNECTED":
        return "fc"
    pointwise = (
        params.filter.h == 1
        and params.filter.w == 1
        and params.stride_h == 1
        and params.stride_w == 1
        and params.pad_top == 0
        and params.pad_left == 0
        and params.input.h == params.output.h
        and params.input.w == params.output.w
    )
    return "pointwise" if pointwise else "conv"


def cost_features(kind: str, fmt: str, stats: WeightStats, units: int, taps: int = 1,
                  sparse_units: int | None = None) -> dict[str, float]:
    """The counts the cost model multiplies (see COSTS).  taps: KH*KW of a
    convolution; sparse_units: the units a sparse kernel really computes
    (pixels rounded up to whole tiles), default units."""
    rows, cols = stats.rows, stats.cols
    if fmt == "dense":
        f = {"call": 1.0, "row": float(units * rows), "mac": float(units * rows * cols)}
        if kind == "conv":
            f["patch"] = float(units * cols)
            f["tap"] = float(units * taps)
        return f
    u = units if sparse_units is None else sparse_units
    entries, _, strips, _ = stats.blocks[int(fmt)]
    f = {"call": 1.0, "row": float(u * rows), "entry": float(u * entries)}
    if fmt != "1":  # one row per strip: the row count says it
        f["strip"] = float(u * strips)
    if kind != "fc":
        f["patch"] = float(u * cols)
    if kind == "conv":
        f["tap"] = float(u * taps)
    return f


def choose_tile(kind: str, pixels: int) -> int:
    """Pixels per SIMD tile of a sparse convolution with this many output
    pixels per image: 32 for pointwise layers (half the per-row costs of 16)
    unless rounding up to 32 wastes much more than to 16 (a 6x6 map: 64 vs
    48); 16 for others, whose long receptive fields make tiles large."""
    if kind != "pointwise":
        return 16
    return 32 if -(-pixels // 32) * 32 <= 1.15 * (-(-pixels // 16) * 16) else 16


def predict_ns(kind: str, isa: str, stats: WeightStats, units: int, taps: int = 1,
               sparse_units: int | None = None) -> dict[str, float]:
    """Predicted kernel nanoseconds of the dense kernel and of each block size.
    units: input rows (FULLY_CONNECTED) or output pixels (CONV_2D)."""
    table = COSTS.get(COST_ALIASES.get(isa, isa), COSTS["portable"])[kind]
    out = {}
    for fmt in ("dense", *(str(b) for b in BLOCKS)):
        features = cost_features(kind, fmt, stats, units, taps, sparse_units)
        out[fmt] = sum(table[fmt].get(k, 0.0) * v for k, v in features.items())
    return out


# "auto" considers a sparse format only where it drops at least this share of
# the multiply-adds: below it the model's small-layer constants, not the
# zeros, would decide (a 12x64 FULLY_CONNECTED with no zeros at all).
AUTO_MIN_SKIPPED = 0.1


def _choose(policy: SparsePolicy, predicted: dict[str, float], stats: WeightStats) -> int | None:
    """The block size to use, or None for dense."""
    if policy.mode == "off":
        return None
    if policy.block is not None:
        candidates = [policy.block]
    elif policy.mode == "force":
        candidates = list(BLOCKS)
    else:
        total = stats.rows * stats.cols
        candidates = [b for b in BLOCKS if stats.blocks[b][3] <= (1.0 - AUTO_MIN_SKIPPED) * total]
        if not candidates:
            return None
    best = min(candidates, key=lambda b: predicted[str(b)])
    if policy.mode == "force":
        return best
    return best if predicted[str(best)] < predicted["dense"] else None


def _c_array(keep: list[Any], values: np.ndarray, ctype: str) -> Any:
    arr = np.ascontiguousarray(values)
    keep.append(arr)
    return ffi.cast(ctype, ffi.from_buffer(arr))


def _set_matrix(m: Any, packed: Packed, rows: int, cols: int, keep: list[Any]) -> None:
    m.rows, m.cols, m.block = rows, cols, packed.block
    m.strip_ptr = _c_array(keep, packed.strip_ptr, "const int32_t *")
    m.index = _c_array(keep, packed.index, "const uint16_t *")
    m.values = _c_array(keep, packed.values, "const int8_t *")


def _referenced(keep: list[Any], pointers: list[Any]) -> list[Any]:
    """The arrays of a dense step that these pointers point into (biases,
    multipliers): the sparse step keeps those, not the dense weights or any
    copy of them the dense kernel uses."""
    addresses = {int(ffi.cast("uintptr_t", ptr)) for ptr in pointers if ptr != ffi.NULL}
    out = []
    for obj in keep:
        if isinstance(obj, np.ndarray) and obj.size:
            start = obj.ctypes.data
            if any(start <= a < start + obj.nbytes for a in addresses):
                out.append(obj)
    return out


def sparsify(graph: Graph, op: Operator, step: Step, step_index: int, policy: SparsePolicy) -> tuple[Step, SparseLayer | None]:
    """The step to run for this FULLY_CONNECTED / CONV_2D (the dense one, or a
    sparse one built from it) and the record of the choice (None: not eligible)."""
    w_t = graph.tensors[op.inputs[1]]
    w = w_t.data
    if w is None or w.dtype != np.int8:
        return step, None
    p = step.params
    if step.kind == lib.TRT_OP_CONV2D:
        if p.filter.c != p.input.c:
            return step, None  # grouped convolutions stay dense
        units = p.output.n * p.output.h * p.output.w
    elif step.kind == lib.TRT_OP_FULLY_CONNECTED:
        units = p.batches
    else:
        return step, None
    w2 = np.asarray(w).reshape(w.shape[0], -1)
    rows, cols = w2.shape
    kind = _kind(op, p)
    stats = weight_stats(w2)
    from . import isa as isa_mod

    isa = policy.isa or isa_mod.active()
    taps, tile, sparse_units = 1, 0, units
    if kind != "fc":
        taps = p.filter.h * p.filter.w
        if isa in TILE_ISAS:
            pixels = p.output.h * p.output.w
            tile = choose_tile(kind, pixels)
            sparse_units = p.output.n * -(-pixels // tile) * tile
    predicted = predict_ns(kind, isa, stats, units, taps, sparse_units)
    info = SparseLayer(
        step=step_index,
        op_index=op.index,
        opcode=op.opcode,
        weights=w_t.name,
        shape=tuple(w.shape),
        format="dense",
        sparsity=stats.sparsity,
        block_sparsity=stats.sparsity,
        macs_dense=step.macs,
        macs_kept=step.macs,
        bytes_dense=step.weight_bytes,
        bytes_packed=step.weight_bytes,
        predicted_ns=predicted,
    )
    if cols > MAX_COLS:
        info.note = f"{cols} inputs per row: sparse indices are uint16"
        return step, info
    block = _choose(policy, predicted, stats)
    if block is None:
        return step, info

    packed = pack(w2, block)
    if step.kind == lib.TRT_OP_FULLY_CONNECTED:
        q = ffi.new("trt_sparse_fully_connected_params *")
        fields = ("batches", "in_features", "out_features", "input_offset", "output_offset", "act_min", "act_max")
        pointers = ("bias_folded", "scale", "multiplier", "shift")
        kernel = lib.TRT_OP_SPARSE_FULLY_CONNECTED
    else:
        q = ffi.new("trt_sparse_conv2d_params *")
        fields = ("input", "filter", "output", "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top",
                  "pad_left", "input_offset", "output_offset", "act_min", "act_max")
        pointers = ("bias_folded", "multiplier", "shift")
        # Pixel tiles only where the instruction set has tile kernels: an MCU
        # plan (portable) must not reserve scratch it never touches.
        q.tile = tile
        kernel = lib.TRT_OP_SPARSE_CONV2D
    for name in fields + pointers:
        setattr(q, name, getattr(p, name))
    keep = _referenced(step.keep, [getattr(p, name) for name in pointers])
    keep.append(q)
    _set_matrix(q.weights, packed, rows, cols, keep)
    _, kept_blocks, strips, kept_weights = stats.blocks[block]
    macs_kept = units * kept_weights
    bytes_packed = packed.nbytes + rows * 4  # + the int32 bias, as the dense count
    new = Step(
        kind=kernel,
        params=q,
        inputs=list(step.inputs),
        output=step.output,
        scratch_bytes=int(lib.trt_sparse_conv2d_s8_scratch_size(q)) if kernel == lib.TRT_OP_SPARSE_CONV2D else 0,
        extra=step.extra,
        keep=keep,
        macs=macs_kept,
        weight_bytes=bytes_packed,
        note=step.note,
    )
    info.format = f"sparse {block}x1"
    info.block_sparsity = 1.0 - kept_blocks / (strips * cols) if strips * cols else 0.0
    info.macs_kept = macs_kept
    info.bytes_packed = bytes_packed
    return new, info


def conv_scratch_without_tile(params: Any) -> int:
    """trt_sparse_conv2d_s8_scratch_size() with tile = 0: the pixel-by-pixel
    path reads every tap in place (mirrors csrc/sparse_conv2d_s8.c)."""
    del params
    return 0


# ---------------------------------------------------------------------------- printing


def _fmt_bytes(n: int) -> str:
    return f"{n:,}"


def format_plan(plan: Any) -> str:
    """Per layer: the kernel chosen, weight sparsity, MACs kept, weight bytes
    before/after packing, and the cost model's predictions."""
    graph = plan.graph
    by_step = {layer.step: layer for layer in getattr(plan, "sparse_layers", [])}
    head = (f"{'#':>3} {'op':<18} {'kernel':<10} {'zeros':>6} {'zero blk':>8} {'MACs kept / all':>21} "
            f"{'weight B dense->packed':>22}  predicted us dense | sparse")
    lines = [head]
    total_dense = total_kept = bytes_dense = bytes_packed = 0
    for i, step in enumerate(plan.steps):
        op = graph.operators[plan.step_ops[i]]
        layer = by_step.get(i)
        if layer is None:
            if step.macs:
                lines.append(f"{op.index:>3} {op.opcode:<18} {'dense':<10} {'':>6} {'':>8} {step.macs:>21,} "
                             f"{step.weight_bytes:>22,}")
            total_dense += step.macs
            total_kept += step.macs
            bytes_dense += step.weight_bytes
            bytes_packed += step.weight_bytes
            continue
        pred = layer.predicted_ns
        best_sparse = min(pred[str(b)] for b in BLOCKS)
        macs = f"{layer.macs_kept:,} / {layer.macs_dense:,}"
        weights = f"{layer.bytes_dense:,} -> {layer.bytes_packed:,}"
        predicted = f"{pred['dense'] / 1e3:.2f} | {best_sparse / 1e3:.2f}"
        lines.append(
            f"{op.index:>3} {op.opcode:<18} {layer.format.replace('sparse ', 'sparse'):<10} {layer.sparsity:>6.1%} "
            f"{layer.block_sparsity:>8.1%} {macs:>21} {weights:>22}  {predicted}"
            + (f"  {layer.note}" if layer.note else "")
        )
        total_dense += layer.macs_dense
        total_kept += layer.macs_kept
        bytes_dense += layer.bytes_dense
        bytes_packed += layer.bytes_packed
    lines.append("")
    share = f" ({total_kept / total_dense:.1%})" if total_dense else ""
    lines.append(f"MACs kept {total_kept:,} of {total_dense:,}{share}; weight bytes {bytes_dense:,} -> "
                 f"{bytes_packed:,}; arena {plan.arena_bytes:,} B")
    lines.append("zeros: zero weights; zero blk: zero blocks of the kernel's format (sparse4x1: 4 outputs x 1 input);")
    lines.append(f"predicted: the cost model's kernel time, dense and the best sparse format ({COSTS_PROVENANCE})")
    return "\n".join(lines)


def plan_summary(plan: Any) -> dict[str, Any]:
    """Totals of a plan's sparse choices (for benchmarks and tests)."""
    layers = list(getattr(plan, "sparse_layers", []))
    return {
        "sparse_layers": sum(1 for layer in layers if layer.format != "dense"),
        "eligible_layers": len(layers),
        "macs": int(plan.macs),
        "weight_bytes": int(plan.weight_bytes),
        "formats": {layer.op_index: layer.format for layer in layers},
    }
