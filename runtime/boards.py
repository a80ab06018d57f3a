"""Board profiles: what a board has (RAM, flash, clock, ISA) and how fast it runs int8 layers.

One TOML file per board in board_profiles/ (see the shipped files for the
schema, every value there carries its source).  ``load_board("pico")`` reads
a shipped profile by name; ``load_board("my/board.toml")`` reads a user's own
file with the same checks.  A profile that breaks the schema raises
BoardProfileError naming the file, the key and the problem, so a typo in a
user file is found at load time rather than as a nonsense budget report.

The latency model is deliberately simple, one linear cost per layer:

    cycles(layer) = macs * <kind>_cycles_per_mac + per_op_overhead_cycles        (conv, depthwise, FC)
    cycles(layer) = elements * elementwise_cycles_per_element + per_op_overhead  (everything else)
    latency_ms    = sum(cycles) / clock_hz * 1000

The per-MAC coefficients include the requantization of each output, because
they are fitted to (or checked against) whole-model measurements; the output
element count of a MAC layer is therefore not charged again.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import TinyRTError
from .paths import board_profiles_dir

KINDS = ("mcu", "linux")
CORES = (
    "cortex-m0plus",
    "cortex-m4",
    "cortex-m7",
    "cortex-m33",
    "cortex-m55",
    "cortex-a53",
    "cortex-a72",
    "cortex-a76",
    "xtensa-lx7",
    "x86-64",
)
ISA_FEATURES = ("dsp", "simd-neon", "dotprod", "fpu-sp", "fpu-dp", "helium", "avx2", "pie")
EMULATION_TARGETS = ("qemu-system-arm", "qemu-aarch64", "qemu-arm", "none")
LAYER_KINDS = ("conv", "depthwise", "fully_connected", "elementwise")

# Which cores a kind of board can have: an MCU profile with an A-class core is
# almost certainly a copy-paste slip, and the planner would budget it wrongly.
_CORES_BY_KIND = {
    "mcu": frozenset({"cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "xtensa-lx7"}),
    "linux": frozenset({"cortex-a53", "cortex-a72", "cortex-a76", "x86-64"}),
}

# The features each core can have at all (Arm TRMs; Xtensa LX7 as configured in
# the ESP32-S3).  A feature outside this set is a typo or a wrong core, and
# would make a kernel dispatcher pick a path the chip cannot run.
_FEATURES_BY_CORE = {
    "cortex-m0plus": frozenset(),
    "cortex-m4": frozenset({"dsp", "fpu-sp"}),
    "cortex-m7": frozenset({"dsp", "fpu-sp", "fpu-dp"}),
    "cortex-m33": frozenset({"dsp", "fpu-sp"}),
    "cortex-m55": frozenset({"dsp", "fpu-sp", "fpu-dp", "helium"}),
    "cortex-a53": frozenset({"simd-neon", "fpu-sp", "fpu-dp"}),
    "cortex-a72": frozenset({"simd-neon", "fpu-sp", "fpu-dp"}),
    "cortex-a76": frozenset({"simd-neon", "dotprod", "fpu-sp", "fpu-dp"}),
    "xtensa-lx7": frozenset({"pie", "fpu-sp"}),
    "x86-64": frozenset({"avx2", "fpu-sp", "fpu-dp"}),
}

# QEMU's M-profile system machines accept exactly one CPU each (QEMU 7.2:
# "This board can only be used with CPU cortex-m3-arm-cpu"), so a mismatched
# pair fails only when someone finally runs the emulator.  Machines not listed
# here are passed through unchecked, for newer QEMU versions.
_QEMU_MACHINE_CPU = {
    "mps2-an385": "cortex-m3",
    "mps2-an386": "cortex-m4",
    "mps2-an500": "cortex-m7",
    "mps2-an505": "cortex-m33",
    "mps2-an511": "cortex-m3",
    "mps2-an521": "cortex-m33",
    "mps3-an524": "cortex-m33",
    "mps3-an547": "cortex-m55",
    "microbit": "cortex-m0",
    "netduino2": "cortex-m3",
    "netduinoplus2": "cortex-m4",
    "stm32vldiscovery": "cortex-m3",
}

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class BoardProfileError(TinyRTError, ValueError):
    """A board profile is missing, malformed or breaks the schema.

    ``path`` is the file (or, for an unknown name, the profiles directory),
    ``key`` the offending key in dotted form (``cycle_model.cpi``) or None when
    the problem is the file as a whole, ``problem`` the explanation.
    """

    def __init__(self, path: str | os.PathLike[str], key: str | None, problem: str):
        self.path = Path(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else str(self.path)
        super().__init__(f"{where}: {problem}")


class UnknownBoardError(BoardProfileError):
    """No shipped profile has the requested name; the message lists the ones there are."""


@dataclass(frozen=True)
class CycleModel:
    """Per-layer cycle costs: see the module docstring for the formula."""

    source: str
    conv_cycles_per_mac: float
    depthwise_cycles_per_mac: float
    fully_connected_cycles_per_mac: float
    elementwise_cycles_per_element: float
    per_op_overhead_cycles: float
    cpi: float  # cycles per instruction, turns emulated instruction counts into cycles

    def estimate_cycles(self, kind: str, macs: int = 0, elements: int = 0) -> float:
        """Estimated cycles of one layer.

        kind: "conv", "depthwise", "fully_connected" (cost from ``macs``) or
        "elementwise" (add, mul, pooling, softmax, activations...: cost from
        the output ``elements``).  The other count is ignored: requantizing a
        MAC layer's outputs is already inside its per-MAC coefficient.
        """
        if kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {kind!r}; expected one of {', '.join(LAYER_KINDS)}")
        for label, value in (("macs", macs), ("elements", elements)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{label} must be a non-negative integer, got {value!r}")
        if kind == "elementwise":
            work = elements * self.elementwise_cycles_per_element
        else:
            work = macs * getattr(self, f"{kind}_cycles_per_mac")
        return float(work + self.per_op_overhead_cycles)

    def instructions_to_cycles(self, instructions: int | float) -> float:
        """Cycles for an emulator's instruction count (QEMU -icount counts instructions)."""
        return float(instructions) * self.cpi


@dataclass(frozen=True)
class Emulation:
    """How to run this board's code under QEMU (target "none": no emulation)."""

    target: str
    machine: str  # QEMU -M value for qemu-system-*, "" for user mode and "none"
    cpu: str  # QEMU -cpu value, "" for "none"

    def command(self) -> list[str]:
        """The QEMU command prefix ([] when the board has no emulation)."""
        if self.target == "none":
            return []
        cmd = [self.target]
        if self.machine:
            cmd += ["-M", self.machine]
        return cmd + ["-cpu", self.cpu]


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    kind: str
    core: str
    cores: int
    isa_features: tuple[str, ...]
    clock_hz: int
    ram_bytes: int
    flash_bytes: int
    ram_reserved_bytes: int
    flash_reserved_bytes: int
    latency_budget_ms: float
    cycle_model: CycleModel
    emulation: Emulation
    path: Path = field(compare=False)

    @property
    def ram_available(self) -> int:
        """RAM left for the model's arena and persistent buffers."""
        return self.ram_bytes - self.ram_reserved_bytes

    @property
    def flash_available(self) -> int:
        """Flash (MCU) or storage budget (Linux) left for the model's weights."""
        return self.flash_bytes - self.flash_reserved_bytes

    def cycles_to_ms(self, cycles: float) -> float:
        """Milliseconds at this board's clock (one core)."""
        return cycles / self.clock_hz * 1000.0

    def has_feature(self, feature: str) -> bool:
        return feature in self.isa_features


# --------------------------------------------------------------------------
# Schema checks.  A _Reader wraps one TOML table; its typed getters raise
# BoardProfileError on the first fault, with the key in dotted form.


class _Reader:
    def __init__(self, path: Path, table: dict[str, Any], expected: tuple[str, ...], prefix: str = ""):
        self.path = path
        self.table = table
        self.expected = expected  # every key this table may have, for typo hints
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, problem: str) -> BoardProfileError:
        return BoardProfileError(self.path, self._key(key), problem)

    def get(self, key: str) -> Any:
        if key not in self.table:
            # "ram_byte = ..." should point at the typo, not only at the missing "ram_bytes"
            unknown = [k for k in self.table if k not in self.expected]
            close = difflib.get_close_matches(key, unknown, n=1)
            hint = f" (is {self._key(close[0])!r} a misspelling?)" if close else ""
            raise self.fail(key, f"missing required key{hint}")
        return self.table[key]

    def string(self, key: str, allow_empty: bool = False) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_describe(value)}")
        if not allow_empty and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def choice(self, key: str, allowed: Iterable[str], what: str) -> str:
        value = self.string(key)
        allowed = tuple(allowed)
        if value not in allowed:
            raise self.fail(key, f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
        return value

    def integer(self, key: str, minimum: int) -> int:
        value = self.get(key)
        # TOML booleans arrive as Python bool, a subclass of int: reject them.
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_describe(value)}")
        if value < minimum:
            bound = "positive" if minimum == 1 else f"at least {minimum}"
            raise self.fail(key, f"must be {bound}, got {value}")
        return value

    def number(self, key: str, positive: bool = True) -> float:
        value = self.get(key)
        # An integer is accepted where a float is expected ("cpi = 1" is fine).
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {_describe(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(key, f"must be finite, got {value}")
        if positive and value <= 0:
            raise self.fail(key, f"must be positive, got {value:g}")
        if not positive and value < 0:
            raise self.fail(key, f"must not be negative, got {value:g}")
        return value

    def table_of(self, key: str, expected: tuple[str, ...]) -> _Reader:
        value = self.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table [{self._key(key)}], got {_describe(value)}")
        return _Reader(self.path, value, expected, f"{self._key(key)}.")

    def no_unknown_keys(self) -> None:
        extra = sorted(set(self.table) - set(self.expected))
        if extra:
            raise self.fail(extra[0], f"unknown key (allowed here: {', '.join(sorted(self.expected))})")


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array"}
    if isinstance(value, dict):
        return "a table"
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"


def _parse_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BoardProfileError(path, None, f"cannot read board profile: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BoardProfileError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError has no lineno attribute; the line is in
        # the message as "(at line N, column M)".  Lead with it so it is seen.
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        detail = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        if match:
            line, column = match.groups()
            raise BoardProfileError(path, None, f"line {line}, column {column}: malformed TOML: {detail}") from exc
        raise BoardProfileError(path, None, f"malformed TOML: {detail}") from exc


_TOP_KEYS = tuple(f.name for f in fields(Board) if f.name != "path")
_CYCLE_KEYS = tuple(f.name for f in fields(CycleModel))
_EMULATION_KEYS = tuple(f.name for f in fields(Emulation))


def _build(path: Path, data: dict[str, Any]) -> Board:
    top = _Reader(path, data, _TOP_KEYS)
    name = top.string("name")
    if name != path.stem:
        raise top.fail("name", f"{name!r} must equal the file name stem {path.stem!r}")
    if not _NAME_RE.match(name):
        raise top.fail("name", f"{name!r} must be lower-case letters, digits and '-'")
    title = top.string("title")
    kind = top.choice("kind", KINDS, "kind")
    core = top.choice("core", CORES, "core")
    if core not in _CORES_BY_KIND[kind]:
        allowed = ", ".join(c for c in CORES if c in _CORES_BY_KIND[kind])
        raise top.fail("core", f"{core!r} is not a {kind} core; a {kind} board has one of {allowed}")
    cores = top.integer("cores", 1)

    features = top.get("isa_features")
    if not isinstance(features, list):
        raise top.fail("isa_features", f"expected an array of strings, got {_describe(features)}")
    for item in features:
        if not isinstance(item, str):
            raise top.fail("isa_features", f"expected an array of strings, found {_describe(item)}")
        if item not in ISA_FEATURES:
            raise top.fail("isa_features", f"unknown feature {item!r}; expected any of {', '.join(ISA_FEATURES)}")
        if item not in _FEATURES_BY_CORE[core]:
            possible = ", ".join(sorted(_FEATURES_BY_CORE[core])) or "none"
            raise top.fail("isa_features", f"{core} cannot have feature {item!r} (possible: {possible})")
    duplicates = sorted({f for f in features if features.count(f) > 1})
    if duplicates:
        raise top.fail("isa_features", f"duplicate feature {duplicates[0]!r}")

    clock_hz = top.integer("clock_hz", 1)
    ram_bytes = top.integer("ram_bytes", 1)
    flash_bytes = top.integer("flash_bytes", 1)
    ram_reserved = top.integer("ram_reserved_bytes", 0)
    flash_reserved = top.integer("flash_reserved_bytes", 0)
    if ram_reserved >= ram_bytes:
        raise top.fail("ram_reserved_bytes", f"{ram_reserved} must be less than ram_bytes ({ram_bytes})")
    if flash_reserved >= flash_bytes:
        raise top.fail("flash_reserved_bytes", f"{flash_reserved} must be less than flash_bytes ({flash_bytes})")
    latency_budget_ms = top.number("latency_budget_ms")

    cm = top.table_of("cycle_model", _CYCLE_KEYS)
    cycle_model = CycleModel(
        source=cm.string("source"),
        conv_cycles_per_mac=cm.number("conv_cycles_per_mac"),
        depthwise_cycles_per_mac=cm.number("depthwise_cycles_per_mac"),
        fully_connected_cycles_per_mac=cm.number("fully_connected_cycles_per_mac"),
        elementwise_cycles_per_element=cm.number("elementwise_cycles_per_element"),
        per_op_overhead_cycles=cm.number("per_op_overhead_cycles", positive=False),
        cpi=cm.number("cpi"),
    )
    cm.no_unknown_keys()

    em = top.table_of("emulation", _EMULATION_KEYS)
    target = em.choice("target", EMULATION_TARGETS, "emulation target")
    machine = em.string("machine", allow_empty=True)
    cpu = em.string("cpu", allow_empty=True)
    if target == "none":
        if machine:
            raise em.fail("machine", f"must be empty when target is 'none', got {machine!r}")
        if cpu:
            raise em.fail("cpu", f"must be empty when target is 'none', got {cpu!r}")
    else:
        if target.startswith("qemu-system-"):
            if not machine:
                raise em.fail("machine", f"{target} needs a machine (QEMU -M value)")
        elif machine:
            raise em.fail("machine", f"must be empty for user-mode {target}, got {machine!r}")
        if not cpu:
            raise em.fail("cpu", f"{target} needs a cpu (QEMU -cpu value)")
        fixed = _QEMU_MACHINE_CPU.get(machine)
        if fixed is not None and cpu != fixed:
            raise em.fail("cpu", f"QEMU machine {machine} only runs cpu {fixed!r}, got {cpu!r}")
    emulation = Emulation(target=target, machine=machine, cpu=cpu)
    em.no_unknown_keys()

    top.no_unknown_keys()
    return Board(
        name=name,
        title=title,
        kind=kind,
        core=core,
        cores=cores,
        isa_features=tuple(features),
        clock_hz=clock_hz,
        ram_bytes=ram_bytes,
        flash_bytes=flash_bytes,
        ram_reserved_bytes=ram_reserved,
        flash_reserved_bytes=flash_reserved,
        latency_budget_ms=latency_budget_ms,
        cycle_model=cycle_model,
        emulation=emulation,
        path=path,
    )


def _is_path(name_or_path: str | os.PathLike[str]) -> bool:
    if isinstance(name_or_path, os.PathLike):
        return True
    return "/" in name_or_path or os.sep in name_or_path or name_or_path.endswith(".toml")


def _shipped_names() -> list[str]:
    return sorted(p.stem for p in board_profiles_dir().glob("*.toml"))


def load_board(name_or_path: str | os.PathLike[str]) -> Board:
    """A shipped profile by name ("nucleo-l4r5zi"), or a user's file by path.

    A Path, or a string containing a path separator or ending in ".toml", is
    read as a file; anything else is a shipped board name.  Raises
    BoardProfileError (UnknownBoardError for a name no profile has).
    """
    if _is_path(name_or_path):
        path = Path(name_or_path)
    else:
        name = str(name_or_path)
        directory = board_profiles_dir()
        path = directory / f"{name}.toml"
        if not name or not path.is_file():
            available = ", ".join(_shipped_names()) or "(none)"
            raise UnknownBoardError(directory, None, f"no board named {name!r}; available boards: {available}")
    return _build(path, _parse_toml(path))


def list_boards() -> list[Board]:
    """Every shipped profile, sorted by name.  A broken shipped file raises."""
    return [load_board(board_profiles_dir() / f"{name}.toml") for name in _shipped_names()]


def _size(n: int) -> str:
    """Bytes in binary units, exact where possible: 655360 -> "640 KiB"."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if n % scale == 0 else f"{value:.1f} {unit}"
    return f"{n} B"


def _clock(hz: int) -> str:
    if hz >= 1_000_000_000:
        return f"{hz / 1e9:g} GHz"
    if hz >= 1_000_000:
        return f"{hz / 1e6:g} MHz"
    return f"{hz / 1e3:g} kHz"


def list_boards_table(boards: Iterable[Board] | None = None) -> str:
    """The text of `python -m runtime.validate --list-boards`: one row per board."""
    rows = [("name", "title", "core", "cores", "clock", "RAM", "flash", "emulation")]
    for b in sorted(list_boards() if boards is None else boards, key=lambda b: b.name):
        emulation = " ".join(b.emulation.command()) or "none"
        size = (_clock(b.clock_hz), _size(b.ram_bytes), _size(b.flash_bytes))
        rows.append((b.name, b.title, b.core, str(b.cores), *size, emulation))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    # The last column is not padded, so no line carries trailing blanks.
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]) for row in rows]
    return "\n".join(lines) + "\n"
