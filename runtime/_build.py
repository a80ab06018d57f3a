"""cffi build script: compiles csrc/ into the extension module runtime._tinyrt.

Used by setup.py (`cffi_modules`) when the package is installed, and runnable
directly (`python runtime/_build.py`) to build in place for development.  The
cdef is read from the public header itself, so the C API has one source.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CSRC = ROOT / "csrc"
HEADER = CSRC / "include" / "tinyrt.h"


def header_cdef(text: str) -> str:
    """The header without preprocessor lines and C++ guards, for cffi's cdef."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = []
    skip_brace = 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if stripped.startswith('extern "C"'):
            skip_brace += 1
            continue
        if stripped == "}" and skip_brace:
            skip_brace -= 1
            continue
        lines.append(line)
    return "\n".join(lines)


def compile_args() -> list[str]:
    args = ["-O3", "-std=c99", "-fno-strict-aliasing"]
    if os.environ.get("TINYRT_WERROR"):
        args += ["-Wall", "-Wextra", "-Werror"]
    extra = os.environ.get("TINYRT_CFLAGS")
    if extra:
        args += extra.split()
    return args


ffibuilder = FFI()
ffibuilder.cdef(header_cdef(HEADER.read_text()))
ffibuilder.set_source(
    "runtime._tinyrt",
    '#include "tinyrt.h"',
    # setuptools wants paths relative to the project root (its working
    # directory); __main__ below compiles from there too.
    # csrc/*.c is the portable kernel library (also built for firmware);
    # csrc/host/*.c is plan-time code for this extension only (uses libm).
    sources=sorted(p.relative_to(ROOT).as_posix() for p in [*CSRC.glob("*.c"), *CSRC.glob("host/*.c")]),
    include_dirs=["csrc/include", "csrc"],
    extra_compile_args=compile_args(),
    # csrc/host/thread_pool.c uses POSIX threads
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    # Builds runtime/_tinyrt*.so in place (cffi writes runtime/_tinyrt.c and
    # compiles it from the project root, where the relative paths hold).
    os.chdir(ROOT)
    path = ffibuilder.compile(tmpdir=str(ROOT), verbose="-v" in sys.argv)
    print(f"built {path}")
