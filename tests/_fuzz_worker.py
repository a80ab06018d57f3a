"""Child process of the model fuzz test (tests/test_fuzz_models.py).

A crash in C (segfault, abort) must not take the test runner down with it,
and must be reported with the case that caused it, so the cases run here, in
a separate interpreter.  The protocol on stdin/stdout is line based:

    parent -> child:  "<case id> <model name> <seed>"
    child -> parent:  "B <case id>"                    before the case starts
                      "R <case id> <verdict> <JSON detail>"  when it has finished

A "B" without its "R" means the child died (or hung) on that case.  verdict
is "ok" (loaded and ran), "rejected" (a clean, allowed exception) or "BAD"
(any other exception, or an allowed one with an empty message).

Reproduce one case by hand:  python tests/_fuzz_worker.py --case <model> <seed> [c|tflite|auto]
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import struct
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "tests" / "models"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Interesting byte and 32-bit values: extremes and sign boundaries, the
# values that turn lengths into huge or negative numbers.
INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80)
INTERESTING_U32 = (
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
    0xFFFFFFFE,
    0xFFFFFFFC,
)

# The address space a case may use.  A hostile shape must be refused before
# memory is allocated for it; with this limit an attempt shows up as a
# MemoryError (a failure) instead of swapping the CI machine to death.
ADDRESS_SPACE_LIMIT = 4 << 30


def model_names() -> list[str]:
    return sorted(p.stem for p in MODELS.glob("*.tflite"))


def structure_ranges(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the flatbuffer outside the constant buffers' payloads.

    Most of a model file is weights; flipping bits there only changes the
    numbers.  The tables, vtables, offsets, shapes and quantization vectors
    live in between, and those are what a hostile file attacks.
    """
    import tflite

    model = tflite.Model.GetRootAs(data, 0)
    payloads: list[tuple[int, int]] = []
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        o = buf._tab.Offset(4)
        if o:
            start = buf._tab.Vector(o)
            payloads.append((start, start + buf._tab.VectorLen(o)))
    payloads.sort()
    ranges: list[tuple[int, int]] = []
    pos = 0
    for start, end in payloads:
        if start > pos:
            ranges.append((pos, start))
        pos = max(pos, end)
    if pos < len(data):
        ranges.append((pos, len(data)))
    return [(a, b) for a, b in ranges if b - a >= 4]


def _vtable_fields(data: bytes, table_pos: int) -> list[int]:
    """Absolute positions of the fields present in the table at table_pos."""
    vtable = table_pos - int.from_bytes(data[table_pos : table_pos + 4], "little", signed=True)
    size = int.from_bytes(data[vtable : vtable + 2], "little")
    slots = [int.from_bytes(data[vtable + k : vtable + k + 2], "little") for k in range(4, size, 2)]
    return [table_pos + o for o in slots if o]


def edit_sites(data: bytes) -> dict[str, list[int]]:
    """Where the meaningful scalar fields of a valid model are, by kind.

    Byte-level mutations mostly break the structure and are refused by the
    parser.  Changing one field in place keeps a model well formed but
    makes it inconsistent (a dimension off by one, a zero scale, a stride of
    255, an operator reading another tensor), which is what gets past the
    parser to the planner and, if a check is missing, to the C kernels.
    """
    import tflite

    def vector(tab: object, slot: int, item: int) -> list[int]:
        o = tab.Offset(slot)  # type: ignore[attr-defined]
        if not o:
            return []
        start = tab.Vector(o)  # type: ignore[attr-defined]
        return [start + item * k for k in range(tab.VectorLen(o))]  # type: ignore[attr-defined]

    def scalar(tab: object, slot: int) -> list[int]:
        o = tab.Offset(slot)  # type: ignore[attr-defined]
        return [tab.Pos + o] if o else []  # type: ignore[attr-defined]

    sites: dict[str, list[int]] = {k: [] for k in ("dim", "scale", "zp", "qdim", "type", "buffer", "op_io", "option")}
    model = tflite.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        sites["dim"] += vector(t._tab, 4, 4)
        sites["type"] += scalar(t._tab, 6)
        sites["buffer"] += scalar(t._tab, 8)
        q = t.Quantization()
        if q is not None:
            sites["scale"] += vector(q._tab, 8, 4)[:4]
            sites["zp"] += vector(q._tab, 10, 8)[:4]
            sites["qdim"] += scalar(q._tab, 16)
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        sites["op_io"] += vector(op._tab, 6, 4) + vector(op._tab, 8, 4)
        options = op.BuiltinOptions()
        if options is not None:
            sites["option"] += _vtable_fields(data, options.Pos)
    sites["op_io"] += vector(sub._tab, 6, 4) + vector(sub._tab, 8, 4)  # graph inputs/outputs
    return {k: v for k, v in sites.items() if v}


_RANGES: dict[str, list[tuple[int, int]]] = {}
_SITES: dict[str, dict[str, list[int]]] = {}


def _put(data: bytearray, pos: int, fmt: str, value: float | int) -> None:
    struct.pack_into(fmt, data, pos, value)


def _field_edit(rng: random.Random, data: bytearray, sites: dict[str, list[int]]) -> str:
    parts = []
    for _ in range(rng.choice((1, 1, 2))):
        kind = rng.choice(sorted(sites))
        pos = rng.choice(sites[kind])
        if kind == "dim":
            (v,) = struct.unpack_from("<i", data, pos)
            new: float | int = rng.choice((0, 1, 2, 3, v - 1, v + 1, 2 * v, v // 2, -1, 1 << 16, 0x7FFFFFFF))
            _put(data, pos, "<i", new)
        elif kind == "scale":
            (v,) = struct.unpack_from("<f", data, pos)
            new = rng.choice((0.0, -v, math.nan, math.inf, 1e-45, 1e-30, 1e30, 2 * v, v / 2, 1.0, 1 / 256))
            _put(data, pos, "<f", new)
        elif kind == "zp":
            new = rng.choice((0, -128, 127, 128, -129, 255, -1, 1 << 40))
            _put(data, pos, "<q", new)
        elif kind == "qdim":
            new = rng.choice((0, 1, 2, 3, 4, -1, 100))
            _put(data, pos, "<i", new)
        elif kind == "type":
            new = rng.choice((*range(19), 99))
            _put(data, pos, "<b", new)
        elif kind == "buffer":
            new = rng.choice((0, 1, 2, 3, rng.randrange(1, 64), 0xFFFFFFFF))
            _put(data, pos, "<I", new)
        elif kind == "op_io":
            new = rng.choice((-1, 0, 1, 2, rng.randrange(0, 128), -2))
            _put(data, pos, "<i", new)
        else:  # one byte of an options field: stride, padding, activation, axis...
            new = rng.choice((0, 1, 2, 3, 4, 5, 6, 0x7F, 0x80, 0xFF))
            _put(data, pos, "<B", new)
        parts.append(f"{kind} at {pos} := {new}")
    return "field edits " + "; ".join(parts)


def _position(rng: random.Random, data: bytes, ranges: list[tuple[int, int]], align: int = 1) -> int:
    """A position, nine times in ten inside the flatbuffer's structure."""
    if ranges and rng.random() < 0.9:
        weights = [b - a for a, b in ranges]
        a, b = rng.choices(ranges, weights=weights)[0]
        pos = rng.randrange(a, b - 3)
    else:
        pos = rng.randrange(0, len(data) - 3)
    return pos - pos % align


def _bit_flips(rng: random.Random, data: bytearray, ranges: list[tuple[int, int]]) -> str:
    n = rng.choice((1, 1, 2, 4, 8))
    where = []
    for _ in range(n):
        pos = _position(rng, data, ranges)
        bit = rng.randrange(8)
        data[pos] ^= 1 << bit
        where.append(f"{pos}.{bit}")
    return "bit flips at " + ",".join(where)


def _byte_overwrites(rng: random.Random, data: bytearray, ranges: list[tuple[int, int]]) -> str:
    n = rng.choice((1, 1, 2, 4, 8))
    where = []
    for _ in range(n):
        pos = _position(rng, data, ranges)
        value = rng.choice(INTERESTING_BYTES)
        data[pos] = value
        where.append(f"{pos}={value:#x}")
    return "byte overwrites " + ",".join(where)


def _offset_corruption(rng: random.Random, data: bytearray, ranges: list[tuple[int, int]]) -> str:
    # Tables, offsets and vector lengths are 4-byte aligned 32-bit words.
    pos = _position(rng, data, ranges, align=4)
    old = int.from_bytes(data[pos : pos + 4], "little")
    kind = rng.randrange(4)
    if kind == 0:
        new = rng.choice(INTERESTING_U32)
    elif kind == 1:
        new = (old + rng.choice((-8, -4, -1, 1, 4, 8, 64, -64))) & 0xFFFFFFFF
    elif kind == 2:
        new = rng.choice((len(data), len(data) - 4, len(data) + 4, len(data) // 2))
    else:
        new = rng.getrandbits(32)
    data[pos : pos + 4] = new.to_bytes(4, "little")
    return f"u32 at {pos}: {old:#x} -> {new:#x}"


def _truncation(rng: random.Random, data: bytearray, ranges: list[tuple[int, int]]) -> str:
    cut = rng.randrange(0, len(data))
    del data[cut:]
    return f"truncated to {cut} bytes"


def _chunk_duplication(rng: random.Random, data: bytearray, ranges: list[tuple[int, int]]) -> str:
    start = _position(rng, data, ranges)
    length = rng.choice((1, 2, 4, 8, 16, 64, 256))
    chunk = bytes(data[start : start + length])
    dest = _position(rng, data, ranges)
    data[dest:dest] = chunk
    return f"duplicated {len(chunk)} bytes from {start} at {dest}"


def _chunk_deletion(rng: random.Random, data: bytearray, ranges: list[tuple[int, int]]) -> str:
    start = _position(rng, data, ranges)
    length = rng.choice((1, 2, 4, 8, 16, 64, 256))
    del data[start : start + length]
    return f"deleted {length} bytes at {start}"


def _combo(rng: random.Random, data: bytearray, ranges: list[tuple[int, int]]) -> str:
    parts = [rng.choice(_MUTATORS[:3])(rng, data, ranges) for _ in range(rng.randrange(2, 5))]
    return "; ".join(parts)


Mutator = Callable[[random.Random, bytearray, list[tuple[int, int]]], str]
_MUTATORS: list[Mutator] = [_bit_flips, _byte_overwrites, _offset_corruption]
# Offset corruption hits the tables directly: give it the largest share.
_SCHEDULE: list[Mutator] = [
    _bit_flips,
    _bit_flips,
    _byte_overwrites,
    _byte_overwrites,
    _offset_corruption,
    _offset_corruption,
    _offset_corruption,
    _truncation,
    _chunk_duplication,
    _chunk_deletion,
    _combo,
]
# Out of every len(_SCHEDULE) + FIELD_EDIT_SLOTS seeds, this many edit fields in place.
FIELD_EDIT_SLOTS = 5


def mutate(name: str, seed: int) -> tuple[bytes, str]:
    """The bytes of case (name, seed) and what was done to them; deterministic."""
    original = (MODELS / f"{name}.tflite").read_bytes()
    if name not in _RANGES:
        _RANGES[name] = structure_ranges(original)
    rng = random.Random(f"{name}:{seed}")
    data = bytearray(original)
    slot = seed % (len(_SCHEDULE) + FIELD_EDIT_SLOTS)
    if slot >= len(_SCHEDULE):
        if name not in _SITES:
            _SITES[name] = edit_sites(original)
        return bytes(data), _field_edit(rng, data, _SITES[name])
    what = _SCHEDULE[slot](rng, data, _RANGES[name])
    return bytes(data), what


def random_inputs(model: object, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for info in model.inputs:  # type: ignore[attr-defined]
        if info.dtype.kind in "iu":
            lim = np.iinfo(info.dtype)
            out.append(rng.integers(lim.min, lim.max + 1, size=info.shape, dtype=info.dtype))
        elif info.dtype.kind == "b":
            out.append(rng.integers(0, 2, size=info.shape).astype(bool))
        else:
            out.append(rng.standard_normal(info.shape).astype(info.dtype))
    return out


def judge(data: bytes, seed: int, backend: str = "c") -> tuple[str, str]:
    """Load (and run, if it loads) one model: (verdict, detail)."""
    import runtime
    from runtime.errors import TinyRTError

    stage = "load"
    try:
        model = runtime.load(data, backend=backend)  # type: ignore[arg-type]
        stage = "run"
        model.run(random_inputs(model, seed))
    except (TinyRTError, ValueError) as exc:
        message = str(exc).strip()
        if not message:
            return "BAD", f"{stage}: {type(exc).__name__} with an empty message"
        # Loading must fail with tinyrt's own errors: a bare ValueError from
        # numpy or the flatbuffers bindings does not explain a bad file.
        if stage == "load" and not isinstance(exc, TinyRTError):
            return "BAD", f"{stage}: {type(exc).__name__}: {message}\n{traceback.format_exc()}"
        return "rejected", f"{stage}: {type(exc).__name__}: {message.splitlines()[0][:200]}"
    except BaseException as exc:  # noqa: BLE001 - the point is to catch everything else
        return "BAD", f"{stage}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    return "ok", ""


def _limit_memory() -> None:
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        return  # AddressSanitizer reserves terabytes of address space for its shadow
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = ADDRESS_SPACE_LIMIT if hard == resource.RLIM_INFINITY else min(hard, ADDRESS_SPACE_LIMIT)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def serve(backend: str) -> None:
    _limit_memory()
    out = sys.stdout
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        case_id, name, seed = parts[0], parts[1], int(parts[2])
        out.write(f"B {case_id}\n")
        out.flush()
        data, _ = mutate(name, seed)
        verdict, detail = judge(data, seed, backend)
        out.write(f"R {case_id} {verdict} {json.dumps(detail)}\n")  # JSON: one line, even for tracebacks
        out.flush()


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "--case":
        name, seed = argv[1], int(argv[2])
        backend = argv[3] if len(argv) > 3 else "c"
        data, what = mutate(name, seed)
        print(f"{name} seed {seed}: {what}")
        verdict, detail = judge(data, seed, backend)
        print(verdict, detail)
        return 0 if verdict != "BAD" else 1
    backend = argv[1] if len(argv) > 1 and argv[0] == "--backend" else "c"
    serve(backend)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
