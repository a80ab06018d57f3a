"""Child process of the model fuzz test (tests/test_fuzz_models.py).

A crash in C (segfault, abort) must not take the test runner down with it,
and must be reported with the case that caused it, so the cases run here, in
a separate interpreter.  The protocol on stdin/stdout is line based:

    parent -> child:  "<case id> <model name> <seed>"
    child -> parent:  "B <case id>"                    before the case starts
                      "R <case id> <verdict> <detail>"   when it has finished

A "B" without its "R" means the child died (or hung) on that case.  verdict
is "ok" (loaded and ran), "rejected" (a clean, allowed exception) or "BAD"
(any other exception, or an allowed one with an empty message).

Reproduce one case by hand:  python tests/_fuzz_worker.py --case <model> <seed>
"""

from __future__ import annotations

import os
import random
import resource
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


_RANGES: dict[str, list[tuple[int, int]]] = {}


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


def mutate(name: str, seed: int) -> tuple[bytes, str]:
    """The bytes of case (name, seed) and what was done to them; deterministic."""
    original = (MODELS / f"{name}.tflite").read_bytes()
    if name not in _RANGES:
        _RANGES[name] = structure_ranges(original)
    rng = random.Random(f"{name}:{seed}")
    mutator = _SCHEDULE[seed % len(_SCHEDULE)]
    data = bytearray(original)
    what = mutator(rng, data, _RANGES[name])
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
        # One line per result: escape newlines in tracebacks.
        out.write(f"R {case_id} {verdict} {detail.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n")
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
