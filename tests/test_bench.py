"""Smoke test of tools/bench.py: it runs, writes well-formed JSON, and tinyrt agrees with BUILTIN_REF.

No timing assertions: the machines are shared and noisy, so only the structure is checked.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "tools" / "bench.py"
HAVE_LITERT = importlib.util.find_spec("ai_edge_litert") is not None
CONTENDERS = ("tinyrt", "xnnpack", "builtin", "ref", "tflm")


def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(BENCH),
        "--models",
        "hello_world,ad01",
        "--repeat",
        "3",
        "--rounds",
        "1",
        "--json",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Acceptance:" in proc.stdout

    doc = json.loads(out.read_text())
    assert set(doc) >= {"environment", "settings", "contenders", "models", "acceptance"}
    assert list(doc["contenders"]) == list(CONTENDERS)
    assert [m["model"] for m in doc["models"]] == ["hello_world", "ad01"]
    # ad01 is an MLPerf model, so it gets a verdict; hello_world does not.
    assert set(doc["acceptance"]["models"]) == {"ad01"}
    assert isinstance(doc["acceptance"]["pass"], bool)

    for m in doc["models"]:
        assert m["macs"] > 0
        assert m["arena_bytes"] > 0
        assert m["tinyrt_load_ms"]["median"] > 0
        assert set(m["contenders"]) == set(CONTENDERS)
        assert set(m["ratios"]) == set(CONTENDERS[1:])
        for name, res in m["contenders"].items():
            assert res["status"] in ("ok", "n/a"), name
            if res["status"] == "ok":
                assert res["samples"] == 3, name
                assert 0 < res["median_ms"] <= res["p90_ms"], name
                assert len(res["round_medians_ms"]) == 1, name
            else:
                assert res["reason"], name
        tinyrt = m["contenders"]["tinyrt"]
        assert tinyrt["status"] == "ok", tinyrt["reason"]
        assert m["tinyrt_isa"] == best_isa()
        if HAVE_LITERT:  # without LiteRT there is no BUILTIN_REF to agree with
            assert m["contenders"]["ref"]["status"] == "ok", m["contenders"]["ref"]["reason"]
            assert m["reference"] == "ref"
            assert m["ratios"]["ref"] > 0
            assert tinyrt["max_diff_lsb"] == 0  # bit-exact with TFLite's reference kernels
            assert m["contenders"]["ref"]["max_diff_lsb"] == 0


def best_isa() -> str:
    sys.path.insert(0, str(REPO))
    from runtime import isa

    return isa.best()


def test_bench_isa_selects_tinyrts_kernel_table(tmp_path: Path) -> None:
    """--isa runs tinyrt on the named kernel table (the plan made for it),
    says so, and its outputs are still BUILTIN_REF's; a table the CPU lacks
    is an n/a with the reason, not a crash."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(BENCH), "--models", "kws", "--contenders", "tinyrt,ref", "--repeat", "2",
           "--rounds", "1", "--isa", "portable", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tinyrt kernel table: portable" in proc.stdout
    (m,) = json.loads(out.read_text())["models"]
    assert m["tinyrt_isa"] == "portable"
    assert m["contenders"]["tinyrt"]["status"] == "ok"
    if HAVE_LITERT:
        assert m["contenders"]["tinyrt"]["max_diff_lsb"] == 0
    missing = "neon" if best_isa() not in ("neon", "neon-dotprod") else "avx2"
    cmd = [sys.executable, str(BENCH), "--models", "hello_world", "--contenders", "tinyrt", "--repeat", "2",
           "--rounds", "1", "--isa", missing]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"cannot run tinyrt's {missing} kernels" in proc.stdout


def test_bench_rejects_unknown_names() -> None:
    for args in (["--models", "nosuchmodel"], ["--contenders", "tinyrt,onnx"]):
        proc = subprocess.run([sys.executable, str(BENCH), *args], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert "unknown" in proc.stderr


def test_bench_per_layer_sets_xnnpack_beside_each_layer() -> None:
    """--per-layer with the xnnpack contender: one row per tinyrt step, each
    with the same operator's time alone on LiteRT + XNNPACK and the ratio."""
    cmd = [sys.executable, str(BENCH), "--models", "ad01", "--contenders", "tinyrt,xnnpack",
           "--repeat", "3", "--rounds", "1", "--per-layer"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout[proc.stdout.index("ad01: per layer"):].splitlines()
    assert "XNNPACK us" in table[1] and "ratio" in table[1]
    rows = [line.split() for line in table[2:] if line.split()[:1] and line.split()[0].isdigit()]
    assert len(rows) == 10 and all(r[1] == "FULLY_CONNECTED" for r in rows)  # ad01's ten layers
    for r in rows:
        tinyrt_us = float(r[-5])
        if HAVE_LITERT:
            xnn_us, ratio = float(r[-2]), float(r[-1].rstrip("x"))
            assert xnn_us > 0 and tinyrt_us > 0
            # (both times are printed to 0.01 us: the ratio agrees within that rounding)
            assert abs(ratio - xnn_us / tinyrt_us) <= ratio * (0.005 / tinyrt_us + 0.005 / xnn_us) + 0.006
        else:
            assert r[-1] == "n/a"


def test_roofline_prints_the_floors() -> None:
    """tools/roofline.py: the vpdpbusd peak and L2 bandwidth it measures, and
    per model MAC and weight-streaming floors consistent with them."""
    import pytest

    sys.path.insert(0, str(REPO))
    from runtime._native import lib

    if lib.trt_isa_best() not in (lib.TRT_ISA_AVX512_VNNI, lib.TRT_ISA_AMX):
        pytest.skip("the roofline probe needs AVX-512 VNNI")
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "roofline.py"), "--models", "kws,ad01"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    peak = float(lines[0].split("=")[1].split()[0]) * 1e9  # GMAC/s
    l2 = float(lines[1].split(":")[1].split()[0]) * 1e9  # B/s
    assert peak > 1e10 and l2 > 1e9
    rows = {r.split()[0]: r.split() for r in lines[4:]}
    assert set(rows) == {"kws", "ad01"}
    for name, macs in (("kws", 2_656_768), ("ad01", 264_192)):
        r = rows[name]
        assert int(r[1].replace(",", "")) == macs
        weights = int(r[2].replace(",", ""))
        assert abs(float(r[3]) - macs / peak * 1e6) < 0.02 * float(r[3]) + 0.01
        assert abs(float(r[4]) - weights / l2 * 1e6) < 0.02 * float(r[4]) + 0.01
