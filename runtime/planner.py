"""Arena memory planning: one buffer, offsets from tensor lifetimes.

Greedy by size, the strategy of TFLite Micro's GreedyMemoryPlanner: place
the largest buffers first, each at the lowest offset that does not collide
with an already placed buffer whose lifetime overlaps.  Lifetimes are
inclusive step ranges [first, last].
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGNMENT = 16


def align(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


@dataclass
class Buffer:
    key: object  # what the buffer holds (a tensor index, or ("scratch", step))
    size: int  # bytes, before alignment
    first: int  # first step that needs it (-1: before the first step)
    last: int  # last step that needs it
    offset: int = -1

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


def plan_arena(buffers: list[Buffer]) -> int:
    """Assign buffer.offset for every buffer; return the arena size in bytes."""
    order = sorted(range(len(buffers)), key=lambda i: (-align(buffers[i].size), buffers[i].first, i))
    # (first, last, offset, end) of the placed buffers: plain tuples, as the
    # memory search plans a model's arena a few dozen times per load
    placed: list[tuple[int, int, int, int]] = []
    arena = 0
    for i in order:
        buf = buffers[i]
        size = align(max(buf.size, 1))
        first, last = buf.first, buf.last
        busy = sorted([(o, e) for f, la, o, e in placed if f <= last and first <= la])
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            if end > offset:
                offset = end
        buf.offset = offset
        placed.append((first, last, offset, offset + size))
        if offset + size > arena:
            arena = offset + size
    return arena


def check_no_overlap(buffers: list[Buffer]) -> None:
    """Raise AssertionError if two buffers live at the same time share bytes.

    A sweep over offsets: each buffer is compared only with the buffers that
    start before it ends in memory, so the usual cost is O(n log n) rather
    than every pair (a hostile model may have thousands of buffers)."""
    order = sorted(buffers, key=lambda b: b.offset)
    active: list[Buffer] = []  # buffers whose byte range reaches the current offset
    for b in order:
        active = [a for a in active if a.offset + max(a.size, 1) > b.offset]
        for a in active:
            if a.overlaps_in_time(b):
                raise AssertionError(f"buffers {a.key} and {b.key} overlap in time and memory")
        active.append(b)
