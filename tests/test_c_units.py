"""C-level unit programs in tests/c/, compiled with the host compiler and run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (apt-get install gcc)")
def test_fixedpoint_fast_forms_equal_gemmlowp_definitions(tmp_path):
    exe = tmp_path / "test_fixedpoint"
    subprocess.run(
        ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'csrc'}", f"-I{ROOT / 'csrc' / 'include'}",
         str(ROOT / "tests" / "c" / "test_fixedpoint.c"), "-o", str(exe)],
        check=True,
    )
    result = subprocess.run([str(exe), "5000000"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mismatches: 0" in result.stdout


def _compile_all(compiler: str, flags: list[str], tmp_path: Path) -> None:
    for source in sorted((ROOT / "csrc").glob("*.c")):
        subprocess.run(
            [compiler, "-std=c99", "-Wall", "-Wextra", "-Werror", *flags,
             f"-I{ROOT / 'csrc'}", f"-I{ROOT / 'csrc' / 'include'}",
             "-c", str(source), "-o", str(tmp_path / (source.stem + ".o"))],
            check=True,
        )


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (apt-get install gcc)")
def test_csrc_is_warning_free_c99_on_the_host(tmp_path):
    _compile_all("gcc", ["-O2", "-pedantic"], tmp_path)


@pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None,
    reason="needs arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)",
)
@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33"])
def test_csrc_compiles_unchanged_for_cortex_m(cpu, tmp_path):
    # No OS, no libc beyond memcpy/memset: -ffreestanding, and the link test
    # below proves no other libc symbol is referenced.
    _compile_all("arm-none-eabi-gcc", ["-Os", f"-mcpu={cpu}", "-mthumb", "-ffreestanding"], tmp_path)
    nm = subprocess.run(
        ["arm-none-eabi-nm", "-u", *map(str, sorted(tmp_path.glob("*.o")))], capture_output=True, text=True, check=True
    )
    undefined = {line.split()[-1] for line in nm.stdout.splitlines() if line.strip() and not line.endswith(":")}
    defined = subprocess.run(
        ["arm-none-eabi-nm", "--defined-only", *map(str, sorted(tmp_path.glob("*.o")))],
        capture_output=True, text=True, check=True,
    ).stdout
    defined_names = {line.split()[-1] for line in defined.splitlines() if len(line.split()) == 3}
    external = undefined - defined_names
    allowed = {"memcpy", "memset", "__aeabi_memcpy", "__aeabi_memset", "__aeabi_memclr", "__aeabi_memcpy4",
               "__aeabi_memset4", "__aeabi_memclr4", "__aeabi_memcpy8", "__aeabi_memclr8", "__aeabi_memset8"}
    # compiler support routines (64-bit and float arithmetic) are not libc
    external = {s for s in external if not s.startswith(("__aeabi_", "__gnu_", "__ARM_"))} - allowed
    assert not external, f"csrc needs more than memcpy/memset from libc: {sorted(external)}"
