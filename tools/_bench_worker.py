"""One contender of tools/bench.py, in its own process.

    python tools/_bench_worker.py CONTENDER

CONTENDER is one of tinyrt, xnnpack, builtin, ref, tflm.  The worker reads
one JSON command per line on stdin and answers one JSON object per line on
stdout; bench.py drives several workers in turn so that their timed runs
interleave.  A process per contender keeps one runtime's threads, allocator
state and caches from disturbing another's timings.

Commands (every answer has "ok"; a failure adds "reason"):
  {"cmd": "load", "model": PATH, "inputs": NPZ, "n_outputs": K, "load_repeats": R, "isa": NAME}
      load the model and the input sets (arrays s{set}_i{input} in NPZ);
      tinyrt selects the kernel table NAME (runtime.isa) first and also
      answers load times, arena bytes, MACs and the table in use
  {"cmd": "outputs", "out": NPZ}   run every input set, save outputs as s{set}_o{output}
  {"cmd": "warmup", "seconds": S, "min_iters": N}   run untimed; answer the median ms seen
  {"cmd": "time", "n": N}          answer N per-inference times in ns (input set 0)
  {"cmd": "quit"}
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CONTENDERS = ("tinyrt", "xnnpack", "builtin", "ref", "tflm")

# set inputs + invoke + get outputs, through the runtime's Python API
RunFn = Callable[[list[np.ndarray]], list[np.ndarray]]


def _short(exc: BaseException) -> str:
    """A one-line reason.  LiteRT repeats its message for every bad tensor:
    keep the first copy only."""
    text = " ".join(str(exc).split())
    again = text.find(text[:24], 1) if len(text) >= 48 else -1
    if again > 0:
        text = text[:again].rstrip() + " (repeated)"
    return f"{type(exc).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def _litert_runner(path: str, kind: str) -> RunFn:
    from ai_edge_litert import interpreter as litert  # type: ignore[import-not-found]

    kwargs: dict[str, Any] = {"model_path": path, "num_threads": 1}
    if kind == "builtin":
        kwargs["experimental_op_resolver_type"] = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    elif kind == "ref":
        kwargs["experimental_op_resolver_type"] = litert.OpResolverType.BUILTIN_REF
    it = litert.Interpreter(**kwargs)
    it.allocate_tensors()
    ins = [d["index"] for d in it.get_input_details()]
    outs = [d["index"] for d in it.get_output_details()]

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        for index, arr in zip(ins, arrays, strict=True):
            it.set_tensor(index, arr)
        it.invoke()
        return [it.get_tensor(index) for index in outs]  # get_tensor already copies

    return run


def _tflm_runner(path: str, n_outputs: int) -> RunFn:
    from tflite_micro import runtime as tflm  # type: ignore[import-not-found]

    it = tflm.Interpreter.from_file(path)

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        for i, arr in enumerate(arrays):
            it.set_input(arr, i)
        it.invoke()
        return [np.array(it.get_output(i)) for i in range(n_outputs)]

    return run


class Worker:
    def __init__(self, contender: str):
        self.contender = contender
        self.run: RunFn | None = None
        self.inputs: list[list[np.ndarray]] = []

    def _need_model(self) -> None:
        if self.run is None:
            raise RuntimeError("no model loaded (send 'load' first)")

    def load(self, cmd: dict[str, Any]) -> dict[str, Any]:
        # Drop the previous model first so two models never share the heap.
        self.run, self.inputs = None, []
        gc.collect()
        path = cmd["model"]
        with np.load(cmd["inputs"], allow_pickle=False) as z:
            n_sets = 1 + max(int(k[1:].split("_")[0]) for k in z.files)
            n_inputs = 1 + max(int(k.split("_i")[1]) for k in z.files)
            self.inputs = [[np.ascontiguousarray(z[f"s{s}_i{i}"]) for i in range(n_inputs)] for s in range(n_sets)]
        answer: dict[str, Any] = {"ok": True}
        if self.contender == "tinyrt":
            answer.update(self._load_tinyrt(path, int(cmd.get("load_repeats", 5)), str(cmd.get("isa", "best"))))
        elif self.contender in ("xnnpack", "builtin", "ref"):
            self.run = _litert_runner(path, self.contender)
        elif self.contender == "tflm":
            self.run = _tflm_runner(path, cmd["n_outputs"])
        else:
            raise ValueError(f"unknown contender {self.contender!r}")
        return answer

    def _load_tinyrt(self, path: str, repeats: int, table: str) -> dict[str, Any]:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        import runtime
        from runtime import isa

        # (before the load: the plan is made for the kernels that will run it)
        if isa.select(table) != (isa.best() if table == "best" else table):
            raise ValueError(f"this CPU cannot run tinyrt's {table} kernels (it has {', '.join(isa.available())})")

        # Each load reads the file, parses it and builds the plan: the cost a user pays.
        times = []
        model = None
        for _ in range(max(1, repeats)):
            model = None
            gc.collect()
            t0 = time.perf_counter_ns()
            model = runtime.load(path, backend="c")
            times.append(time.perf_counter_ns() - t0)
        assert model is not None
        self.run = model.run
        plan = getattr(model, "plan", None)
        return {
            "load_ns": times,
            "arena_bytes": int(getattr(model, "arena_bytes", -1)),
            "macs": int(plan.macs) if plan is not None else None,
            "isa": isa.active(),
        }

    def outputs(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self._need_model()
        saved = {}
        for s, arrays in enumerate(self.inputs):
            for o, out in enumerate(self.run(arrays)):
                saved[f"s{s}_o{o}"] = np.asarray(out)
        np.savez(cmd["out"], **saved)
        return {"ok": True}

    def warmup(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self._need_model()
        run, arrays = self.run, self.inputs[0]
        seen = []
        deadline = time.perf_counter_ns() + int(float(cmd["seconds"]) * 1e9)
        while len(seen) < int(cmd["min_iters"]) or time.perf_counter_ns() < deadline:
            t0 = time.perf_counter_ns()
            run(arrays)
            seen.append(time.perf_counter_ns() - t0)
            if len(seen) >= 100_000:
                break
        return {"ok": True, "median_ms": float(np.median(seen)) / 1e6, "iters": len(seen)}

    def time(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self._need_model()
        run, arrays = self.run, self.inputs[0]
        n = int(cmd["n"])
        samples = [0] * n
        clock = time.perf_counter_ns
        # A garbage collection landing in one contender's window would bias it alone.
        gc.disable()
        try:
            for k in range(n):
                t0 = clock()
                run(arrays)
                samples[k] = clock() - t0
        finally:
            gc.enable()
        return {"ok": True, "ns": samples}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CONTENDERS:
        print(f"usage: _bench_worker.py {{{','.join(CONTENDERS)}}}", file=sys.stderr)
        return 2
    # The protocol owns the real stdout; native code that prints (LiteRT's
    # "Created TensorFlow Lite XNNPACK delegate", TFLM's allocation reports)
    # is sent to stderr so it cannot corrupt an answer.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = Worker(argv[0])
    handlers = {"load": worker.load, "outputs": worker.outputs, "warmup": worker.warmup, "time": worker.time}
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        try:
            answer = handlers[cmd["cmd"]](cmd)
        except Exception as exc:  # any refusal is an answer, not a crash: bench.py prints it as n/a
            answer = {"ok": False, "reason": _short(exc)}
        proto.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
