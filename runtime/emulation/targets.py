"""What an emulated target is: its tools (and the Debian packages that hold
them), its compiler flags and, for Cortex-M, the QEMU machine's memory map.

Compiler flags come from the board profile's core and ISA features, so a
firmware build and an export's README agree on them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..errors import TinyRTError

# Where each tool comes from on Debian / Ubuntu.
PACKAGES = {
    "qemu-system-arm": "qemu-system-arm",
    "qemu-aarch64": "qemu-user",
    "qemu-arm": "qemu-user",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
    "arm-none-eabi-size": "binutils-arm-none-eabi",
    "arm-none-eabi newlib": "libnewlib-arm-none-eabi",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf",
    "gcc": "gcc",
}
DEBIAN_PACKAGES = (
    "qemu-system-arm",
    "qemu-user",
    "gcc-arm-none-eabi",
    "libnewlib-arm-none-eabi",
    "gcc-aarch64-linux-gnu",
    "gcc-arm-linux-gnueabihf",
)

OPT_FLAGS = ("-O2",)  # as the CMSIS-NN instruction counts in /work/shared/ANCHORS.md
COMMON_FLAGS = ("-ffunction-sections", "-fdata-sections", "-fno-strict-aliasing")


class EmulationUnavailable(TinyRTError):
    """A tool the emulation needs is not installed; the message names the Debian package."""

    def __init__(self, tool: str):
        self.tool = tool
        self.package = PACKAGES.get(tool, tool)
        super().__init__(f"{tool} is not installed (Debian/Ubuntu: sudo apt-get install {self.package})")


class NoEmulationTarget(TinyRTError):
    """The board profile has no QEMU target ([emulation] target = "none")."""


@dataclass(frozen=True)
class Memory:
    """A Cortex-M machine's code and data regions (QEMU 7.2 `info mtree`)."""

    flash_origin: int
    flash_length: int
    ram_origin: int
    ram_length: int


# The linker places code+constants in `flash` and data+bss+stack in `ram`.
# mps2-an385/386/500: ZBT SSRAM1 (4 MB, code) at 0 and SSRAM2/3 (4 MB) at
# 0x20000000.  mps2-an505 (SSE-200, boots Secure, VTOR 0x10000000): SSRAM1
# through its Secure alias 0x10000000 and SSRAM2 (2 MB) at 0x38000000.
# mps3-an547 (SSE-300, VTOR 0): ITCM 512 KB at 0 and the 4 MB SSRAM at 0x21000000.
MACHINES: dict[str, Memory] = {
    "mps2-an385": Memory(0x00000000, 4 << 20, 0x20000000, 4 << 20),
    "mps2-an386": Memory(0x00000000, 4 << 20, 0x20000000, 4 << 20),
    "mps2-an500": Memory(0x00000000, 4 << 20, 0x20000000, 4 << 20),
    "mps2-an505": Memory(0x10000000, 4 << 20, 0x38000000, 2 << 20),
    "mps3-an547": Memory(0x00000000, 512 << 10, 0x21000000, 4 << 20),
}

_M_CPUS = {
    "cortex-m0plus": "cortex-m0plus",
    "cortex-m4": "cortex-m4",
    "cortex-m7": "cortex-m7",
    "cortex-m33": "cortex-m33",
    "cortex-m55": "cortex-m55",
}
_A_CPUS = {"cortex-a53", "cortex-a72", "cortex-a76"}


def compile_flags(board: Any) -> list[str]:
    """gcc flags for the board's core and ISA features (optimisation included)."""
    core = board.core
    feats = set(board.isa_features)
    if core in _M_CPUS:
        cpu = _M_CPUS[core]
        if core == "cortex-m33" and "dsp" not in feats:
            cpu += "+nodsp"
        flags = [f"-mcpu={cpu}", "-mthumb"]
        if core == "cortex-m55":
            flags += ["-mfloat-abi=hard"]  # -mfpu=auto: FPv5 double + MVE from -mcpu
        elif "fpu-dp" in feats:
            flags += ["-mfloat-abi=hard", "-mfpu=fpv5-d16"]
        elif "fpu-sp" in feats:
            flags += ["-mfloat-abi=hard", "-mfpu=fpv4-sp-d16" if core == "cortex-m4" else "-mfpu=fpv5-sp-d16"]
        else:
            flags += ["-mfloat-abi=soft"]
        return [*flags, *OPT_FLAGS]
    if core in _A_CPUS:
        return [f"-mcpu={core}", *OPT_FLAGS]
    raise TinyRTError(f"no compiler flags known for core {core!r}")


@dataclass(frozen=True)
class LinuxTarget:
    """A Raspberry Pi OS user-mode target: cross gcc, static binary, qemu-user."""

    name: str  # "aarch64" | "armhf"
    gcc: str
    qemu: str
    cflags: tuple[str, ...]


LINUX_TARGETS = {
    # 64-bit Raspberry Pi OS; -mcpu is set per board (cortex-a53 / a72 / a76).
    "aarch64": LinuxTarget("aarch64", "aarch64-linux-gnu-gcc", "qemu-aarch64", ("-march=armv8-a",)),
    # 32-bit Raspberry Pi OS on a Pi 2 v1.2 / 3 / 4 / Zero 2: ARMv8 AArch32 with
    # NEON.  qemu-arm has no cortex-a53/a72 model; "max" is an ARMv8 core in AArch32.
    "armhf": LinuxTarget(
        "armhf",
        "arm-linux-gnueabihf-gcc",
        "qemu-arm",
        ("-march=armv8-a", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard"),
    ),
    # This machine, natively: the exporter's own tests run exported C here without QEMU.
    "host": LinuxTarget("host", "gcc", "", ()),
}


def need(tool: str) -> str:
    """The tool's path, or EmulationUnavailable naming its Debian package."""
    path = shutil.which(tool)
    if path is None:
        raise EmulationUnavailable(tool)
    return path


@cache
def _newlib_present() -> bool:
    out = subprocess.run(
        ["arm-none-eabi-gcc", "-print-file-name=libc_nano.a"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return "/" in out


def need_cortex_m_tools() -> None:
    need("arm-none-eabi-gcc")
    need("arm-none-eabi-size")
    if not _newlib_present():
        raise EmulationUnavailable("arm-none-eabi newlib")
    need("qemu-system-arm")


def need_linux_tools(target: str) -> None:
    t = LINUX_TARGETS[target]
    need(t.gcc)
    if t.qemu:
        need(t.qemu)


def machine_memory(machine: str) -> Memory:
    try:
        return MACHINES[machine]
    except KeyError:
        raise NoEmulationTarget(
            f"QEMU machine {machine!r} has no memory map in tinyrt's firmware harness; "
            f"known: {', '.join(sorted(MACHINES))}"
        ) from None
