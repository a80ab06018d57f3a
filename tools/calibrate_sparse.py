"""Calibrate the sparse cost model (runtime.sparse.COSTS) on this machine.

    python tools/calibrate_sparse.py [--isa avx2,portable] [--quick] [--rounds R] [--json OUT.json]

For single FULLY_CONNECTED, pointwise and 3x3 CONV_2D layers of many shapes,
pruned (runtime.prune) unstructured and in 8x1 blocks over a range of
sparsities, it times the kernel (one trt_run_plan call) of the dense plan
and of the sparse plan in every block size (1, 4, 8) -- the formats of one
pruned layer interleaved round by round, as tools/bench_sparse.py does --
and fits (20th percentile of the samples, as the benchmark reports), per
instruction set, kind and format, the coefficients of
runtime.sparse.cost_features by least squares on relative error (the
decision compares times, so a 10% error on a small layer matters as much as
on a large one), non-negative.  It prints the COSTS table to paste into
runtime/sparse.py, with its provenance, and how well it decides: on the
measured layers, how often the predicted best of dense / sparse is the
measured best, and the worst slowdown of the prediction's pick.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
import bench_sparse  # noqa: E402  (tools/ is not a package)

from runtime import isa as isa_mod  # noqa: E402
from runtime._native import lib  # noqa: E402
from runtime.backends.c import CModel  # noqa: E402
from runtime.graph import parse_model  # noqa: E402
from runtime.prune import prune_model  # noqa: E402
from runtime.sparse import (  # noqa: E402
    BLOCKS,
    FEATURES,
    TILE_ISAS,
    SparsePolicy,
    choose_tile,
    cost_features,
    weight_stats,
)

# Shapes of the shipped MLPerf Tiny models' layers and around them.
SHAPES: dict[str, list[dict[str, Any]]] = {
    "fc": [
        {"k": 64, "n": 64}, {"k": 128, "n": 128}, {"k": 640, "n": 128}, {"k": 128, "n": 640},
        {"k": 256, "n": 256}, {"k": 512, "n": 512}, {"k": 1024, "n": 1024}, {"k": 2048, "n": 256},
        {"k": 256, "n": 32, "batch": 8},
    ],
    "pointwise": [
        {"hw": (48, 48), "cin": 8, "cout": 16}, {"hw": (24, 24), "cin": 32, "cout": 32},
        {"hw": (24, 24), "cin": 64, "cout": 128}, {"hw": (25, 5), "cin": 64, "cout": 64},
        {"hw": (12, 12), "cin": 64, "cout": 64}, {"hw": (6, 6), "cin": 128, "cout": 128},
        {"hw": (3, 3), "cin": 256, "cout": 256}, {"hw": (16, 16), "cin": 16, "cout": 32},
    ],
    "conv": [
        {"hw": (32, 32), "cin": 16, "cout": 16, "kernel": 3}, {"hw": (16, 16), "cin": 32, "cout": 32, "kernel": 3},
        {"hw": (8, 8), "cin": 64, "cout": 64, "kernel": 3}, {"hw": (16, 16), "cin": 16, "cout": 32, "kernel": 3,
                                                              "stride": 2},
        {"hw": (49, 10), "cin": 1, "cout": 64, "kernel": (10, 4), "stride": 2},
        {"hw": (32, 32), "cin": 3, "cout": 16, "kernel": 3},
    ],
}
QUICK = {"fc": [0, 6], "pointwise": [2, 5], "conv": [0, 2]}
SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
PATTERNS = ((1, 1), (8, 1))
FORMATS = ("dense", *(str(b) for b in BLOCKS))


def layer_units(graph: Any, isa: str) -> tuple[str, int, int, int]:
    """kind, units, taps and the units a sparse kernel computes (whole tiles)."""
    op = graph.operators[0]
    out = graph.tensors[op.outputs[0]]
    if op.opcode == "FULLY_CONNECTED":
        w = graph.tensors[op.inputs[1]]
        units = out.size // w.shape[0]
        return "fc", units, 1, units
    w = graph.tensors[op.inputs[1]]
    n, oh, ow, _ = out.shape
    _, kh, kw, _ = w.shape
    x = graph.tensors[op.inputs[0]]
    stride = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    kind = "pointwise" if kh == kw == 1 and stride == (1, 1) and x.shape[1:3] == out.shape[1:3] else "conv"
    sparse_units = n * oh * ow
    if isa in TILE_ISAS:
        tile = choose_tile(kind, oh * ow)
        sparse_units = n * -(-(oh * ow) // tile) * tile
    return kind, n * oh * ow, kh * kw, sparse_units


def measure(data: bytes, isa: str, rounds: int, budget_ms: float) -> list[dict[str, Any]]:
    """Kernel ns of every format of one pruned layer, interleaved."""
    graph = parse_model(data)
    kind, units, taps, sparse_units = layer_units(graph, isa)
    w = np.asarray(graph.tensors[graph.operators[0].inputs[1]].data)
    stats = weight_stats(w.reshape(w.shape[0], -1))
    contenders = []
    keep = []
    for fmt in FORMATS:
        policy = "off" if fmt == "dense" else SparsePolicy("force", block=int(fmt), isa=isa)
        model = CModel(graph, sparse=policy)
        if fmt != "dense":
            assert model.plan.steps[0].kind in (lib.TRT_OP_SPARSE_CONV2D, lib.TRT_OP_SPARSE_FULLY_CONNECTED)
        rng = np.random.default_rng(0)
        model.run([rng.integers(-128, 128, size=i.shape, dtype=np.int8) for i in model.inputs])
        plan, arena, failed = model.plan.c_plan, model._arena_ptr, model._failed
        contenders.append(bench_sparse.Contender(fmt, run=lambda p=plan, a=arena, f=failed: lib.trt_run_plan(p, a, f)))
        keep.append(model)  # the plan's memory lives as long as its model
    bench_sparse.interleave(contenders, rounds, budget_ms, 0.02)
    out = []
    for c in contenders:
        out.append({
            "kind": kind, "format": c.name, "units": units, "rows": stats.rows, "cols": stats.cols,
            "sparsity": stats.sparsity, "features": cost_features(kind, c.name, stats, units, taps, sparse_units),
            # a low quantile, as tools/bench_sparse.py reports: on a shared machine
            # preemption only ever adds time, and small layers drown in it
            "ns": float(np.percentile(c.samples, bench_sparse.QUANTILE)) * 1e6,
        })
    return out


# Costs that run the same code whatever the format: FULLY_CONNECTED rescales
# every output with fully_connected_s8.c's arithmetic in the dense and the
# sparse kernels alike, so its per-row cost is one shared coefficient (fitted
# apart, a per-layer constant would soak it up differently per format and
# tip decisions on small layers).
SHARED = {"fc": ("row",)}


def fit(samples: list[dict[str, Any]], shared: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
    """Per format, non-negative least squares on relative error (drop the most
    negative coefficient and refit until none is), over all formats of one
    kind at once so that the `shared` features have one coefficient."""
    fmts = sorted({s["format"] for s in samples}, key=FORMATS.index)
    # columns: (format, feature) for private features, (None, feature) for shared ones
    cols = [(None, f) for f in shared if any(s["features"].get(f) for s in samples)]
    cols += [(fmt, f) for fmt in fmts for f in FEATURES
             if f not in shared and any(s["features"].get(f) for s in samples if s["format"] == fmt)]
    y = np.array([s["ns"] for s in samples])
    while cols:
        a = np.array([[s["features"].get(f, 0.0) if fmt in (None, s["format"]) else 0.0 for fmt, f in cols]
                      for s in samples]) / y[:, None]
        coef, *_ = np.linalg.lstsq(a, np.ones(len(samples)), rcond=None)
        if np.all(coef >= 0):
            break
        cols.pop(int(np.argmin(coef)))
    out: dict[str, dict[str, float]] = {fmt: {} for fmt in fmts}
    for (fmt, f), c in zip(cols, coef, strict=True):
        for target in (fmts if fmt is None else [fmt]):
            out[target][f] = float(c)
    return out


def predict(coef: dict[str, float], features: dict[str, float]) -> float:
    return sum(coef.get(k, 0.0) * v for k, v in features.items())


def evaluate(table: dict[str, dict[str, dict[str, float]]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per measured layer: does the model pick the faster of dense and the best sparse format?"""
    by_layer: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        key = (r["kind"], r["units"], r["rows"], r["cols"], round(r["sparsity"], 4), r.get("pattern"))
        by_layer.setdefault(key, {})[r["format"]] = r
    right, worst, errors = 0, (1.0, None), []
    for key, fmts in by_layer.items():
        kind = key[0]
        pred = {f: predict(table[kind][f], r["features"]) for f, r in fmts.items()}
        meas = {f: r["ns"] for f, r in fmts.items()}
        errors += [abs(pred[f] / meas[f] - 1) for f in fmts]
        best_sparse = min((f for f in fmts if f != "dense"), key=lambda f: pred[f])
        pick = best_sparse if pred[best_sparse] < pred["dense"] else "dense"
        truth = min(("dense", best_sparse), key=lambda f: meas[f])
        right += pick == truth
        slow = meas[pick] / min(meas["dense"], meas[best_sparse])
        if slow > worst[0]:
            worst = (slow, key)
    return {"layers": len(by_layer), "right": right, "worst_slowdown": worst[0], "worst_layer": worst[1],
            "median_rel_error": float(np.median(errors)) if errors else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/calibrate_sparse.py", description=__doc__.splitlines()[0])
    p.add_argument("--isa", default=",".join(isa_mod.available()), help="instruction sets to calibrate")
    p.add_argument("--quick", action="store_true", help="two shapes per kind (a smoke run)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--budget-ms", type=float, default=8.0)
    p.add_argument("--kinds", default=",".join(SHAPES), help="layer kinds to calibrate (fc, pointwise, conv)")
    p.add_argument("--json", help="write every measurement here")
    p.add_argument("--from-json", help="refit the measurements of an earlier --json run instead of measuring")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if any(k not in SHAPES for k in kinds):
        raise SystemExit(f"calibrate_sparse.py: --kinds takes {', '.join(SHAPES)}")
    started = time.perf_counter()
    tables: dict[str, Any] = {}
    report: dict[str, Any] = {}
    all_rows: dict[str, list[dict[str, Any]]] = {}
    previous = json.loads(Path(args.from_json).read_text())["rows"] if args.from_json else None
    for isa in [s.strip() for s in args.isa.split(",") if s.strip()]:
        rows: list[dict[str, Any]] = []
        if previous is not None:
            rows = [r for r in previous.get(isa, []) if r["kind"] in kinds]
        elif isa_mod.select(isa) != isa:
            print(f"skipping {isa}: not available here", file=sys.stderr)
            continue
        for kind in kinds if previous is None else ():
            shapes = SHAPES[kind]
            picked = [shapes[i] for i in QUICK[kind]] if args.quick else shapes
            for shape in picked:
                data = bench_sparse.make_layer("fc" if kind == "fc" else "conv", **shape)
                for pattern in PATTERNS:
                    for sp in SPARSITIES:
                        if sp == 0.0 and pattern != (1, 1):
                            continue
                        print(f"{isa} {kind} {shape} {pattern[0]}x{pattern[1]} {sp:.0%}", file=sys.stderr, flush=True)
                        pruned = prune_model(data, sp, block=pattern).model
                        for r in measure(pruned, isa, args.rounds, args.budget_ms):
                            r["pattern"] = f"{pattern[0]}x{pattern[1]}"
                            rows.append(r)
        table = {kind: fit([r for r in rows if r["kind"] == kind], SHARED.get(kind, ())) for kind in kinds}
        tables[isa] = table
        report[isa] = evaluate(table, rows)
        all_rows[isa] = rows
    isa_mod.select("best")
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    provenance = (f"tools/calibrate_sparse.py{' --quick' if args.quick else ''} on {cpu} ({platform.machine()}), "
                  f"{datetime.date.today().isoformat()}")
    if args.from_json:
        provenance = json.loads(Path(args.from_json).read_text())["provenance"] + ", refitted"
    print(f'COSTS_PROVENANCE = "{provenance}"')
    print("COSTS: dict[str, dict[str, dict[str, dict[str, float]]]] = {")
    for isa, table in tables.items():
        print(f'    "{isa}": {{')
        for kind, fmts in table.items():
            print(f'        "{kind}": {{')
            for fmt, coef in fmts.items():
                body = ", ".join(f'"{k}": {v:.4g}' for k, v in coef.items())
                print(f'            "{fmt}": {{{body}}},')
            print("        },")
        print("    },")
    print("}")
    for isa, r in report.items():
        print(f"# {isa}: {r['right']}/{r['layers']} layers decided right (dense vs best sparse), worst slowdown of "
              f"the pick {r['worst_slowdown']:.3f} at {r['worst_layer']}, median |error| {r['median_rel_error']:.1%}")
    print(f"# ({time.perf_counter() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"provenance": provenance, "tables": tables, "report": report,
                                               "rows": all_rows}, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
