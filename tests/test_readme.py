"""The README's commands and example work (run from the repository root)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
EMULATION_TOOLS = ("qemu-aarch64", "aarch64-linux-gnu-gcc")


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_readme_has_install_and_test_commands():
    blocks = _bash_blocks()
    assert any("pip install -e ." in b and "python -m runtime.run tests/models/" in b for b in blocks)
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(b.strip() for b in blocks if "pytest" in b)
    assert test_cmd in ci, ".ci/run must call exactly the README's test command"


def test_readme_run_command_works():
    # The part after the install: the model it names ships in the repository.
    block = next(b for b in _bash_blocks() if "python -m runtime.run" in b)
    cmd = block.strip().split("&&")[-1].strip()
    assert cmd.startswith("python -m runtime.run ")
    args = cmd.split()[3:]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "runtime.run", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "top-5" in out.stdout and "median" in out.stdout


def test_readme_python_example_runs():
    block = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert namespace["scores"].dtype.name == "int8" and namespace["scores"].shape == (1, 12)
    assert namespace["probs"].dtype.name == "float32"


def test_every_other_readme_command_runs():
    """Each one-line `python -m runtime.<tool> ...` block in the README works as shown."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    commands = [b.strip() for b in _bash_blocks() if b.strip().startswith("python -m runtime.") and "\n" not in b.strip()]
    assert commands, "the README shows tool commands"
    for cmd in commands:
        if "runtime.emulation" in cmd and not all(map(shutil.which, EMULATION_TOOLS)):
            continue  # as tests/emulation does: skipped without the cross tools and QEMU
        out = subprocess.run(cmd.split(), cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode in (0, 1), (cmd, out.stderr)  # 1 = "does not fit", still a valid report
        assert out.stdout.strip(), cmd


def test_readme_fit_report_is_current():
    """The example report in the README is what validate prints today."""
    cmd = next(b.strip() for b in _bash_blocks() if b.strip().startswith("python -m runtime.validate"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(cmd.split(), cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.stdout.strip() in README
