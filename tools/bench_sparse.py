"""Benchmark pruned models: tinyrt dense vs sparse vs auto vs LiteRT+XNNPACK, in one run.

    python tools/bench_sparse.py [--models ad01,kws,vww,resnet,fc1024,pw64x128,conv3x3]
                                 [--sparsities 0,50,70,80,90,95] [--patterns 1x1,8x1]
                                 [--rounds R] [--budget-ms MS] [--json OUT.json]

Every model is pruned with runtime.prune (global magnitude, unstructured
"1x1" or in blocks, e.g. "8x1") at every sparsity, and the same pruned
.tflite is run by

  dense    tinyrt, sparse="off"   (the dense kernels)
  sparse   tinyrt, sparse="force" (a sparse kernel for every eligible layer)
  auto     tinyrt, sparse="auto"  (the plan-time cost model decides per layer)
  xnnpack  LiteRT with its default XNNPACK delegate, 1 thread

Whole models are timed like tools/bench.py times them: set inputs + invoke +
get outputs through each Python API.  The single layers (fc1024: a 1024x1024
FULLY_CONNECTED; pw64x128: a 1x1 CONV_2D 64 -> 128 on 24x24; conv3x3: a 3x3
CONV_2D 32 -> 64 on 16x16) are timed twice: that way, and as kernel time
(one trt_run_plan call, no Python I/O), where the ratio between tinyrt's
own paths is the kernels' and not diluted by the ~4 us a Python call costs.

Timing: after a warm-up, rounds alternate between the contenders (the
order rotating each round), each timed for about --budget-ms per round.  On
a shared, oversubscribed machine another process only ever adds time, so the
reported figure is a low quantile of all samples (--quantile, default the
20th percentile), which tracks a contender's own cost; read the ratios, not
the times.  An auto plan identical to the dense or the sparse one (same
kernels, same formats) is that plan: it is not timed again, which would
only measure noise.  tinyrt's three plans must give identical outputs
(checked on every row); the bit-exactness against BUILTIN_REF is
tests/test_sparse.py's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
MODELS_DIR = REPO / "tests" / "models"

MODEL_FILES = {
    "ad01": "ad01_int8",
    "kws": "kws_ref_model",
    "vww": "vww_96_int8",
    "resnet": "pretrainedResnet_quant",
    "micro_speech": "micro_speech_quantized",
    "hello_world": "hello_world_int8",
}
LAYERS = ("fc1024", "pw64x128", "conv3x3")
DEFAULT_MODELS = ("ad01", "kws", "vww", "resnet", *LAYERS)
CONTENDERS = ("dense", "sparse", "auto", "xnnpack")
AUTO_TOLERANCE = 0.05  # auto may be at most 5% slower than the better of dense / sparse

# The goals: (model, pattern, sparsity %, kernel speedup sparse/dense)
SPEEDUP_GOALS = (("fc1024", "1x1", 90, 5.0), ("pw64x128", "1x1", 90, 3.0))
XNNPACK_GOALS = (("vww", 90), ("ad01", 90))


# ---------------------------------------------------------------------------- models


LAYER_SHAPES: dict[str, dict[str, Any]] = {
    "fc1024": {"kind": "fc", "k": 1024, "n": 1024},
    "pw64x128": {"kind": "conv", "hw": (24, 24), "cin": 64, "cout": 128, "kernel": 1, "stride": 1},
    "conv3x3": {"kind": "conv", "hw": (16, 16), "cin": 32, "cout": 64, "kernel": 3, "stride": 1},
}


def make_layer(kind: str, *, k: int = 0, n: int = 0, batch: int = 1, hw: tuple[int, int] = (1, 1), cin: int = 0,
               cout: int = 0, kernel: int | tuple[int, int] = 1, stride: int = 1, seed: int = 7) -> bytes:
    """A single-layer int8 .tflite (FULLY_CONNECTED k -> n, or CONV_2D), built
    with the test suite's graph writer."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import graphgen
    from tflite_writer import write_model

    rng = np.random.default_rng(seed)
    gb = graphgen.GraphBuilder()
    if kind == "fc":
        x = gb.input((batch, k), "int8", 0.05, -3)
        y = graphgen.add_fully_connected(gb, rng, x, 0, units=n, per_channel=False, bias=True, keep_num_dims=False)
    else:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        x = gb.input((batch, hw[0], hw[1], cin), "int8", 0.05, -3)
        y = graphgen.add_conv2d(gb, rng, x, 0, cout=cout, kernel=(kh, kw), stride=(stride, stride), padding=0,
                                dilation=False, groups=False, per_channel=True)
    gb.outputs.append(y)
    return write_model(gb.graph(), description=f"tinyrt sparse benchmark layer {kind}")


def layer_model(name: str) -> bytes:
    if name not in LAYER_SHAPES:
        raise SystemExit(f"bench_sparse.py: unknown layer {name!r}")
    return make_layer(**LAYER_SHAPES[name])


def model_bytes(name: str) -> bytes:
    if name in LAYERS:
        return layer_model(name)
    if name in MODEL_FILES:
        return (MODELS_DIR / f"{MODEL_FILES[name]}.tflite").read_bytes()
    path = Path(name)
    if path.suffix == ".tflite" and path.is_file():
        return path.read_bytes()
    raise SystemExit(f"bench_sparse.py: unknown model {name!r}: use {', '.join([*MODEL_FILES, *LAYERS])} or a .tflite")


def parse_pattern(text: str) -> tuple[int, int]:
    from runtime.prune import PruneError, parse_block

    try:
        return parse_block(text)
    except PruneError as exc:
        raise SystemExit(f"bench_sparse.py: {exc}") from None


# ---------------------------------------------------------------------------- timing


RunFn = Callable[[], Any]


@dataclass
class Contender:
    name: str
    run: RunFn  # one inference through the Python API
    kernel: RunFn | None = None  # one trt_run_plan call (tinyrt only)
    samples: list[float] = field(default_factory=list)
    kernel_samples: list[float] = field(default_factory=list)
    rounds: list[float] = field(default_factory=list)  # per round: the quantile of that round's samples
    kernel_rounds: list[float] = field(default_factory=list)


def _timed(fn: RunFn, n: int) -> list[float]:
    clock = time.perf_counter_ns
    out = [0.0] * n
    gc.disable()
    try:
        for k in range(n):
            t0 = clock()
            fn()
            out[k] = (clock() - t0) / 1e6
    finally:
        gc.enable()
    return out


def _repeats(fn: RunFn, budget_ms: float, warmup_s: float) -> int:
    """Iterations for ~budget_ms, after warming up for warmup_s."""
    seen = []
    deadline = time.perf_counter() + warmup_s
    while len(seen) < 5 or time.perf_counter() < deadline:
        seen += _timed(fn, 1)
        if len(seen) > 10000:
            break
    return int(min(20000, max(3, round(budget_ms / max(float(np.median(seen)), 1e-4)))))


def interleave(contenders: list[Contender], rounds: int, budget_ms: float, warmup_s: float) -> None:
    """Timed batches alternate between contenders; the order rotates each round."""
    jobs: list[tuple[Contender, str, RunFn]] = []
    for c in contenders:
        jobs.append((c, "api", c.run))
        if c.kernel is not None:
            jobs.append((c, "kernel", c.kernel))
    reps = [_repeats(fn, budget_ms, warmup_s) for _, _, fn in jobs]
    for r in range(rounds):
        order = list(range(len(jobs)))
        shift = r % len(order)
        for k in order[shift:] + order[:shift]:
            c, what, fn = jobs[k]
            ms = _timed(fn, reps[k])
            (c.kernel_samples if what == "kernel" else c.samples).extend(ms)
            (c.kernel_rounds if what == "kernel" else c.rounds).append(float(np.percentile(ms, QUANTILE)))


QUANTILE = 20.0  # percent; --quantile


def estimate(values: list[float]) -> float | None:
    return float(np.percentile(values, QUANTILE)) if values else None


def plan_signature(plan: Any) -> tuple:
    """Steps, kernels and formats: equal signatures run the same code on the same data."""
    out = []
    for step in plan.steps:
        w = getattr(step.params, "weights", None)
        block = int(w.block) if w is not None and hasattr(w, "block") else 0
        out.append((int(step.kind), block, int(step.weight_bytes), int(step.scratch_bytes)))
    return tuple(out)


# ---------------------------------------------------------------------------- contenders


def tinyrt_contender(name: str, data: bytes, mode: str, inputs: list[np.ndarray]) -> tuple[Contender, Any]:
    import runtime
    from runtime._native import lib

    model = runtime.load(data, backend="c", sparse=mode)  # type: ignore[arg-type]
    plan, arena, failed = model.plan.c_plan, model._arena_ptr, model._failed
    run_plan = lib.trt_run_plan
    model.run(inputs)
    return Contender(name, run=lambda: model.run(inputs), kernel=lambda: run_plan(plan, arena, failed)), model


def xnnpack_contender(data: bytes, inputs: list[np.ndarray]) -> Contender | str:
    try:
        from ai_edge_litert import interpreter as litert  # type: ignore[import-not-found]
    except ImportError:
        return "ai-edge-litert is not installed"
    try:
        it = litert.Interpreter(model_content=data, num_threads=1)
        it.allocate_tensors()
    except Exception as exc:  # noqa: BLE001 - any refusal is a table entry
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    ins = [d["index"] for d in it.get_input_details()]
    outs = [d["index"] for d in it.get_output_details()]

    def run() -> list[np.ndarray]:
        for index, arr in zip(ins, inputs, strict=True):
            it.set_tensor(index, arr)
        it.invoke()
        return [it.get_tensor(index) for index in outs]

    run()
    return Contender("xnnpack", run=run)


def random_inputs(model: Any, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for info in model.inputs:
        if info.dtype.kind in "iu":
            lim = np.iinfo(info.dtype)
            out.append(rng.integers(lim.min, lim.max + 1, size=info.shape, dtype=info.dtype))
        else:
            out.append(rng.standard_normal(info.shape).astype(info.dtype))
    return out


def bench_one(name: str, dense_model: bytes, pattern: str, sparsity: int, args: argparse.Namespace) -> dict[str, Any]:
    from runtime.prune import prune_model
    from runtime.sparse import plan_summary

    pruned = prune_model(dense_model, sparsity / 100.0, block=parse_pattern(pattern)).model
    row: dict[str, Any] = {"model": name, "pattern": pattern, "sparsity": sparsity, "layer": name in LAYERS}
    contenders: list[Contender] = []
    models: dict[str, Any] = {}
    inputs: list[np.ndarray] | None = None
    for mode in ("dense", "sparse", "auto"):
        mode_arg = {"dense": "off", "sparse": "force", "auto": "auto"}[mode]
        if inputs is None:
            import runtime

            inputs = random_inputs(runtime.load(pruned, backend="c", sparse="off"), args.seed)
        c, m = tinyrt_contender(mode, pruned, mode_arg, inputs)
        contenders.append(c)
        models[mode] = m
    assert inputs is not None
    outs = {mode: m.run(inputs) for mode, m in models.items()}
    row["bits_equal"] = all(
        all(np.array_equal(a, b) for a, b in zip(outs["dense"], outs[mode], strict=True)) for mode in outs
    )
    plans = {mode: plan_summary(m.plan) for mode, m in models.items()}
    row["plans"] = plans
    signature = {mode: plan_signature(m.plan) for mode, m in models.items()}
    row["auto_plan"] = (
        "dense" if signature["auto"] == signature["dense"]
        else "sparse" if signature["auto"] == signature["sparse"]
        else "mixed"
    )
    if row["auto_plan"] != "mixed":
        contenders = [c for c in contenders if c.name != "auto"]  # the same plan as another contender
    if "xnnpack" in args.contenders:
        x = xnnpack_contender(pruned, inputs)
        if isinstance(x, str):
            row["xnnpack_note"] = x
        else:
            contenders.append(x)
    contenders = [c for c in contenders if c.name in args.contenders]
    interleave(contenders, args.rounds, args.budget_ms, args.warmup)
    row["api_ms"] = {c.name: estimate(c.samples) for c in contenders}
    row["kernel_ms"] = {c.name: estimate(c.kernel_samples) for c in contenders if c.kernel is not None}
    row["api_rounds"] = {c.name: c.rounds for c in contenders}
    row["kernel_rounds"] = {c.name: c.kernel_rounds for c in contenders if c.kernel is not None}
    if row["auto_plan"] != "mixed":
        for what in ("api_ms", "kernel_ms", "api_rounds", "kernel_rounds"):
            if row["auto_plan"] in row[what]:
                row[what]["auto"] = row[what][row["auto_plan"]]
    row["weight_bytes"] = {mode: plans[mode]["weight_bytes"] for mode in plans}
    row["macs"] = {mode: plans[mode]["macs"] for mode in plans}
    return row


# ---------------------------------------------------------------------------- report


def _ms(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4f}" if v < 0.1 else f"{v:.3f}"


def ratio(row: dict[str, Any], what: str, a: str, b: str) -> float | None:
    """time(a) / time(b), paired by round: the median over rounds of the ratio
    of the two contenders' times in that round, so that load that comes and
    goes between rounds cancels (contenders of one round run back to back)."""
    rounds = row[f"{what}_rounds"]
    ra, rb = rounds.get(a), rounds.get(b)
    if not ra or not rb or len(ra) != len(rb):
        return None
    return float(np.median([x / y for x, y in zip(ra, rb, strict=True) if y > 0]))


def _x(r: float | None) -> str:
    """A speedup: r = time(reference) / time(contender)."""
    return "n/a" if not r else f"{r:.2f}x"


def speedup(row: dict[str, Any], what: str, ref: str, contender: str) -> float | None:
    r = ratio(row, what, contender, ref)
    return 1.0 / r if r else None


def _table(rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def auto_check(row: dict[str, Any]) -> tuple[float | None, bool]:
    """auto / the better of dense and sparse (paired by round), on the timing
    that judges the layer: kernel time for single layers, API time for models."""
    what = "kernel" if row["layer"] else "api"
    r = [x for x in (ratio(row, what, "auto", "dense"), ratio(row, what, "auto", "sparse")) if x]
    worst = max(r) if r else None  # over the better one: the larger of the two ratios
    return worst, worst is not None and worst <= 1 + AUTO_TOLERANCE


def report(rows: list[dict[str, Any]], args: argparse.Namespace, env: dict[str, Any]) -> str:
    out = [
        f"tinyrt sparse benchmark: ms per inference ({QUANTILE:g}th percentile), 1 thread, random int8 input",
        f"host: {env.get('cpu', '?')}, {env.get('cpus')} CPUs, load avg {env.get('load_avg')}; "
        f"python {env['python']}, ai-edge-litert {env.get('ai-edge-litert')}, ISA {env.get('isa')}",
        f"{args.rounds} interleaved rounds, ~{args.budget_ms:g} ms per contender per round; "
        "speedup = dense / x (> 1: x is faster), ratios paired round by round; "
        "API = set inputs + invoke + get outputs, kernel = one trt_run_plan call",
        "",
    ]
    head = ["model", "pattern", "sparsity", "dense", "sparse", "auto", "xnnpack", "sparse x", "auto x",
            "auto/best", "auto plan", "vs xnnpack", "weights B dense->sparse", "bits"]
    table = [head]
    for row in rows:
        t = row["api_ms"]
        auto_r, ok = auto_check(row)
        wb = row["weight_bytes"]
        table.append([
            row["model"], row["pattern"], f"{row['sparsity']}%",
            _ms(t.get("dense")), _ms(t.get("sparse")), _ms(t.get("auto")), _ms(t.get("xnnpack")),
            _x(speedup(row, "api", "dense", "sparse")), _x(speedup(row, "api", "dense", "auto")),
            "n/a" if auto_r is None else f"{auto_r:.3f}" + ("" if ok else " !"),
            row["auto_plan"], _x(speedup(row, "api", "xnnpack", "auto")),
            f"{wb['dense']:,}->{wb['sparse']:,}", "=" if row["bits_equal"] else "DIFFER",
        ])
    out.append("Whole inference through the Python API (ms); auto/best judged on kernel time for single layers;")
    out.append("auto plan: dense / sparse = the same plan as that contender (its time), mixed = timed on its own")
    out.append(_table(table, right={2, 3, 4, 5, 6, 7, 8, 9, 11, 12}))
    out.append("")
    layer_rows = [r for r in rows if r["layer"]]
    if layer_rows:
        out.append("Single layers, kernel time (one trt_run_plan call, ms)")
        table = [["layer", "pattern", "sparsity", "dense", "sparse", "auto", "sparse x", "auto x", "MACs kept"]]
        for row in layer_rows:
            k = row["kernel_ms"]
            macs = row["macs"]
            table.append([
                row["model"], row["pattern"], f"{row['sparsity']}%", _ms(k.get("dense")), _ms(k.get("sparse")),
                _ms(k.get("auto")), _x(speedup(row, "kernel", "dense", "sparse")),
                _x(speedup(row, "kernel", "dense", "auto")),
                f"{macs['sparse'] / macs['dense']:.1%}" if macs["dense"] else "n/a",
            ])
        out.append(_table(table, right={2, 3, 4, 5, 6, 7, 8}))
        out.append("")
    out.append("Goals")
    for goal in goals(rows):
        out.append(f"  {goal['text']}: {goal['measured']}  {goal['verdict']}")
    notes = sorted({r["xnnpack_note"] for r in rows if r.get("xnnpack_note")})
    for n in notes:
        out.append(f"  note: xnnpack n/a: {n}")
    return "\n".join(out)


def goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = {(r["model"], r["pattern"], r["sparsity"]): r for r in rows}
    out = []
    for model, pattern, sp, want in SPEEDUP_GOALS:
        r = found.get((model, pattern, sp))
        text = f"{model} {pattern} {sp}%: sparse kernel >= {want:g}x dense"
        if r is None:
            out.append({"text": text, "measured": "not measured", "verdict": "n/a"})
            continue
        x = speedup(r, "kernel", "dense", "sparse")
        best_block = [rr for (m, p, s), rr in found.items() if m == model and s == sp and p != pattern]
        extra = "".join(
            f"; {rr['pattern']} blocks {_x(speedup(rr, 'kernel', 'dense', 'sparse'))}" for rr in best_block
        )
        out.append({"text": text, "measured": f"{x:.2f}x{extra}" if x else "n/a",
                    "verdict": "MET" if x and x >= want else "NOT MET"})
    worst = None
    fails = []
    for r in rows:
        value, ok = auto_check(r)
        if value is not None and (worst is None or value > worst[0]):
            worst = (value, r)
        if not ok:
            fails.append(f"{r['model']} {r['pattern']} {r['sparsity']}% ({value:.3f})" if value else r["model"])
    out.append({
        "text": f"auto never more than {AUTO_TOLERANCE:.0%} slower than the better of dense/sparse",
        "measured": (f"worst auto/best {worst[0]:.3f} ({worst[1]['model']} {worst[1]['pattern']} {worst[1]['sparsity']}%)"
                     if worst else "n/a") + (f"; over: {', '.join(fails)}" if fails else ""),
        "verdict": "MET" if worst and not fails else ("NOT MET" if fails else "n/a"),
    })
    for model, sp in XNNPACK_GOALS:
        rs = [r for (m, p, s), r in found.items() if m == model and s == sp]
        text = f"{model} {sp}% pruned: tinyrt (auto) faster than LiteRT+XNNPACK"
        parts, all_ok = [], bool(rs)
        for r in rs:
            x = speedup(r, "api", "xnnpack", "auto")
            if x is None:
                all_ok = False
                parts.append(f"{r['pattern']} n/a")
                continue
            all_ok &= x > 1.0
            parts.append(f"{r['pattern']} {x:.2f}x")
        out.append({"text": text, "measured": ", ".join(parts) or "not measured",
                    "verdict": ("MET" if all_ok else "NOT MET") if rs else "n/a"})
    return out


def environment() -> dict[str, Any]:
    from runtime import isa

    env: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(), "isa": isa.active()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                env["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        env["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    from importlib import metadata

    try:
        env["ai-edge-litert"] = metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        env["ai-edge-litert"] = None
    return env


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python tools/bench_sparse.py", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=_csv, default=list(DEFAULT_MODELS),
                   help=f"comma-separated: {', '.join([*MODEL_FILES, *LAYERS])} or .tflite paths")
    p.add_argument("--sparsities", type=_csv, default=["0", "50", "70", "80", "90", "95"], help="percent")
    p.add_argument("--patterns", type=_csv, default=["1x1", "8x1"], help="pruning blocks: 1x1 (unstructured), 4x1, 8x1")
    p.add_argument("--contenders", type=_csv, default=list(CONTENDERS), help=f"subset of {','.join(CONTENDERS)}")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--budget-ms", type=float, default=15.0, help="time per contender per round")
    p.add_argument("--warmup", type=float, default=0.05, help="seconds of warm-up per contender")
    p.add_argument("--isa", default="best", help="instruction set for tinyrt (portable, avx2, best)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quantile", type=float, default=QUANTILE, help="percentile of the samples reported (50: median)")
    p.add_argument("--json", metavar="OUT.json", help="also write every figure to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    global QUANTILE
    QUANTILE = args.quantile
    from runtime import isa

    isa.select(args.isa)
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        raise SystemExit(f"bench_sparse.py: unknown contender(s) {unknown}")
    try:
        sparsities = [int(s) for s in args.sparsities]
    except ValueError:
        raise SystemExit("bench_sparse.py: --sparsities takes whole percentages such as 0,50,90") from None
    if any(not 0 <= s < 100 for s in sparsities) or args.rounds < 1:
        raise SystemExit("bench_sparse.py: sparsities must be in [0, 100) and --rounds at least 1")
    for pattern in args.patterns:
        parse_pattern(pattern)
    env = environment()
    started = time.perf_counter()
    rows = []
    for name in args.models:
        dense_model = model_bytes(name)
        for pattern in args.patterns:
            for sp in sparsities:
                print(f"benchmarking {name} {pattern} {sp}% ...", file=sys.stderr, flush=True)
                rows.append(bench_one(name, dense_model, pattern, sp, args))
    print(report(rows, args, env))
    print(f"\n({time.perf_counter() - started:.0f} s)")
    if args.json:
        doc = {"environment": env, "settings": {k: v for k, v in vars(args).items() if k != "json"},
               "rows": rows, "goals": goals(rows)}
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
