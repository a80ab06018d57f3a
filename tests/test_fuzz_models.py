"""Fuzzing: mutated copies of the shipped models never crash or hang tinyrt.

Each case mutates one model's bytes (bit flips, interesting byte values,
corrupt 32-bit offsets and lengths, truncation, chunk duplication and
deletion, in-place edits of dimensions, scales, zero points, types, buffer
and tensor indices and operator options; see tests/_fuzz_worker.py), loads
the result with backend="c" and, if it loads, runs it once.  Allowed
outcomes: success, or a TinyRTError / ValueError with a message (loading
must fail with a TinyRTError).  A segfault, any other exception or a case
that spins past its CPU limit fails the test, naming the model and seed.

The cases run in child processes so that a crash in C is observed rather
than suffered.  TINYRT_FUZZ_CASES=<n> runs more cases (a longer local hunt).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_fuzz_worker.py"
sys.path.insert(0, str(HERE))
from _fuzz_worker import model_names  # noqa: E402

NUM_CASES = int(os.environ.get("TINYRT_FUZZ_CASES", "2100"))
SEED_BASE = 20_000  # fixed: the same cases on every run
# A case takes ~30 ms.  A hang is judged on the child's CPU time, so that a
# busy CI machine (wall time stretched by other jobs) does not look like one;
# the wall-clock limit catches a child that is stuck without spinning.
CASE_CPU_LIMIT = 10.0
CASE_WALL_LIMIT = 120.0
WORKERS = max(1, min(2, os.cpu_count() or 1))


@dataclass
class Report:
    verdicts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (model, verdict) -> count
    failures: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)


def _cases(n: int) -> list[tuple[str, int]]:
    names = model_names()
    return [(names[i % len(names)], SEED_BASE + i) for i in range(n)]


class _Worker:
    """One child interpreter running cases one at a time."""

    def __init__(self, backend: str):
        self.backend = backend
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", str(WORKER), "--backend", backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
            cwd=HERE.parent,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # the child is gone

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")[-3000:]

    def cpu_seconds(self) -> float | None:
        """The child's user + system CPU time (Linux), or None."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def run(self, case_id: int, name: str, seed: int) -> tuple[str, str]:
        """(verdict, detail); verdict "CRASH" or "HANG" when the child did not answer."""
        assert self.proc.stdin is not None
        cpu_start = self.cpu_seconds()
        try:
            self.proc.stdin.write(f"{case_id} {name} {seed}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "CRASH", f"worker gone before the case (exit {self.proc.wait()})\n{self.stderr_tail()}"
        start = time.monotonic()
        while True:
            try:
                line = self.lines.get(timeout=0.25)
            except queue.Empty:
                wall = time.monotonic() - start
                cpu = self.cpu_seconds()
                used = cpu - cpu_start if cpu is not None and cpu_start is not None else wall
                if used > CASE_CPU_LIMIT or wall > CASE_WALL_LIMIT:
                    self.kill()
                    return "HANG", f"no result after {used:.1f} s of CPU time ({wall:.1f} s wall)"
                continue
            if line is None:
                code = self.proc.wait()
                return "CRASH", f"worker died with exit code {code}\n{self.stderr_tail()}"
            kind, _, rest = line.partition(" ")
            if kind == "R":
                rid, verdict, detail = (rest.split(" ", 2) + [""])[:3]
                if int(rid) == case_id:
                    return verdict, json.loads(detail) if detail else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.stderr.close()


def run_fuzz(cases: list[tuple[str, int]], backend: str = "c", workers: int = WORKERS) -> Report:
    report = Report()
    todo: queue.Queue[tuple[int, str, int]] = queue.Queue()
    for i, (name, seed) in enumerate(cases):
        todo.put((i, name, seed))
    lock = threading.Lock()

    def drive() -> None:
        worker = _Worker(backend)
        try:
            while True:
                try:
                    case_id, name, seed = todo.get_nowait()
                except queue.Empty:
                    return
                verdict, detail = worker.run(case_id, name, seed)
                with lock:
                    report.verdicts[(name, verdict)] += 1
                    if verdict == "rejected":
                        report.reasons[detail.split(":")[1].strip()] += 1
                    if verdict not in ("ok", "rejected"):
                        report.failures.append(
                            f"{verdict}: {name} seed {seed} (reproduce: python {WORKER.relative_to(HERE.parent)}"
                            f" --case {name} {seed} {backend})\n{detail.strip()}"
                        )
                if verdict in ("CRASH", "HANG"):
                    worker.close()
                    worker = _Worker(backend)  # a fresh child for the remaining cases
        finally:
            worker.close()

    threads = [threading.Thread(target=drive) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return report


def test_mutated_models_never_crash_or_hang():
    cases = _cases(NUM_CASES)
    assert len(cases) >= 2000
    start = time.monotonic()
    report = run_fuzz(cases)
    elapsed = time.monotonic() - start
    assert not report.failures, f"{len(report.failures)} bad case(s):\n\n" + "\n\n".join(report.failures[:20])
    total = sum(report.verdicts.values())
    assert total == len(cases)
    # The mutations must exercise both paths on every model: some mutants
    # still load and run (weights and values changed), others are refused.
    for name in model_names():
        assert report.verdicts[(name, "rejected")] > 0, f"no mutant of {name} was rejected"
    int8_models = [n for n in model_names() if "float" not in n]
    for name in int8_models:
        assert report.verdicts[(name, "ok")] > 0, f"no mutant of {name} loaded and ran"
    print(f"\n{total} fuzz cases in {elapsed:.1f} s on {WORKERS} worker(s): {dict(report.verdicts)}")


def _fake_worker(script: str):
    """A _Worker.__init__ whose child announces each case, then runs script."""
    source = "import sys\nfor line in sys.stdin:\n    print('B', line.split()[0], flush=True)\n" + "".join(
        f"    {s}\n" for s in script.splitlines()
    )

    def init(self: _Worker, backend: str) -> None:
        self.backend = backend
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", source],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    return init


def test_harness_reports_a_crash_with_its_seed(monkeypatch):
    # A child that dies mid-case is reported as a CRASH naming the case, and
    # the remaining cases still run, in a fresh child.
    monkeypatch.setattr(_Worker, "__init__", _fake_worker("import ctypes\nctypes.string_at(0)"))
    report = run_fuzz([("hello_world_int8", 1), ("hello_world_int8", 2)], workers=1)
    assert len(report.failures) == 2
    assert report.failures[0].startswith("CRASH: hello_world_int8 seed 1 (reproduce: python tests/_fuzz_worker.py")
    assert "worker died with exit code -11" in report.failures[0]
    assert report.failures[1].startswith("CRASH: hello_world_int8 seed 2")


def test_harness_reports_a_hang(monkeypatch):
    # A child spinning on a case is killed once it has used the CPU limit.
    monkeypatch.setattr(sys.modules[__name__], "CASE_CPU_LIMIT", 0.5)
    monkeypatch.setattr(_Worker, "__init__", _fake_worker("while True: pass"))
    start = time.monotonic()
    report = run_fuzz([("kws_ref_model", 7)], workers=1)
    assert time.monotonic() - start < 30
    assert len(report.failures) == 1
    assert report.failures[0].startswith("HANG: kws_ref_model seed 7")
    assert "s of CPU time" in report.failures[0]


@pytest.mark.parametrize("backend", ["tflite", "auto"])
def test_mutated_models_on_other_backends(backend):
    # runtime.load parses every model before LiteRT sees it, so a corrupt
    # file gets the same ModelFormatError on every backend, not a crash in
    # LiteRT's C++.
    pytest.importorskip("ai_edge_litert.interpreter")
    cases = _cases(200)
    report = run_fuzz(cases, backend=backend)
    assert not report.failures, f"{len(report.failures)} bad case(s):\n\n" + "\n\n".join(report.failures[:20])
