"""The Cortex-M DSP-extension kernels (csrc/ukernels_cortex_m_dsp.c) on an
emulated Cortex-M4 (NUCLEO-L4R5ZI profile, QEMU mps2-an386).

One measurement (runtime.emulation.layers) builds two firmwares from the
same exports: csrc/ as a DSP board compiles it (the DSP table timed, the
portable table re-run on every input by the harness and compared byte for
byte) and csrc/ with -DTRT_NO_CORTEX_M_DSP (portable only).  It holds the
MLPerf Tiny layers of /work/shared/ANCHORS.md, each cut out of its shipped
model with that model's memory choices, and the whole shipped models.
Every output must equal the host C backend's; the DSP kernels must do each
layer in at most CMSIS-NN's instructions per MAC (the ANCHORS.md figure, or
CMSIS-NN measured under the same harness when TINYRT_CMSIS_NN points to a
checkout) and every model in fewer instructions than the portable kernels.

The table entries themselves are also compared with the portable ones on
random shapes and edge values, with guard pages, by tests/test_neon.py
(tests/c/ukernel_diff.c on 32-bit ARM Linux under qemu-arm, where the DSP
table is selectable).

Run with -s to see the tables.  Missing tools skip, naming the Debian
packages (gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runtime.emulation import layers as L

BOARD = "nucleo-l4r5zi"
TRT_ISA_PORTABLE, TRT_ISA_CORTEX_M_DSP = 0, 4


@pytest.fixture(scope="module")
def measured(cortex_m, emu_cache: Path) -> L.Measurement:
    cortex_m(BOARD)  # skips, naming the Debian packages, when a tool is missing
    cmsis = os.environ.get("TINYRT_CMSIS_NN") or None
    if cmsis and not (Path(cmsis) / "Source").is_dir():
        cmsis = None
    m = L.measure(BOARD, cache=emu_cache, cmsis_nn=cmsis)
    print(f"\n{m.target}\n{L.format_layers(m)}\n\n{L.format_models(m)}\n"
          f"flash: portable {m.flash_portable:,} B, DSP {m.flash_dsp:,} B; {m.seconds:.0f} s")
    return m


def test_every_output_is_bit_exact(measured: L.Measurement) -> None:
    # DSP firmware = portable firmware = host C backend, on every layer and
    # model, and the two tables agreed inside the DSP firmware.
    assert measured.bit_exact, "\n".join(measured.problems)
    assert all(r.bit_exact for r in measured.layers)
    assert all(r.bit_exact for r in measured.models)


@pytest.mark.parametrize("spec", [s for s in L.LAYERS if s.goal], ids=lambda s: s.name)
def test_layer_at_or_below_cmsis_nn(measured: L.Measurement, spec: L.LayerSpec) -> None:
    r = next(x for x in measured.layers if x.name == spec.name)
    assert r.dsp_per_mac <= r.reference_per_mac, (
        f"{spec.name}: {r.dsp_per_mac:.2f} instructions/MAC, CMSIS-NN {r.reference_per_mac:.2f}"
    )


def test_dsp_beats_portable_on_every_layer(measured: L.Measurement) -> None:
    for r in measured.layers:
        # SMLAD does two MACs per instruction: at least a third fewer instructions everywhere
        assert r.dsp < 0.75 * r.portable, (r.name, r.dsp, r.portable)
    # the layers without a CMSIS-NN counterpart stay near it all the same
    for r in measured.layers:
        spec = next(s for s in L.LAYERS if s.name == r.name)
        if not spec.goal and spec.fc_fixed_point:
            assert r.dsp_per_mac <= 1.2 * r.reference_per_mac, r.name


def test_whole_models_take_fewer_instructions(measured: L.Measurement) -> None:
    by_name = {m.name: m for m in measured.models}
    assert set(by_name) == set(L.MODELS)
    for m in measured.models:
        assert m.dsp < m.portable, m.name
        # per step too (every step runs the same kernels or faster ones)
        assert len(m.steps_dsp) == len(m.steps_portable) == len(m.step_ops)
    # the convolution-heavy MLPerf models at least halve... nearly
    for name in ("kws_ref_model", "vww_96_int8", "pretrainedResnet_quant"):
        assert by_name[name].dsp < 0.6 * by_name[name].portable, name


def test_conv_and_depthwise_steps_are_faster_in_every_model(measured: L.Measurement) -> None:
    for m in measured.models:
        for op, d, p in zip(m.step_ops, m.steps_dsp, m.steps_portable, strict=True):
            if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and p > 20_000:
                assert d < p, (m.name, op, d, p)


def test_flash_cost_of_the_table(measured: L.Measurement) -> None:
    # The DSP table's code (no extra weight layout: it reads the int8 weights
    # the portable kernels read) is the only difference between the builds.
    extra = measured.flash_dsp - measured.flash_portable
    assert 0 < extra < 16 * 1024, extra


def test_the_layers_are_the_mlperf_shapes() -> None:
    # Each cut layer has the MACs ANCHORS.md lists (layers() checks the
    # model's step; this checks the spec list itself stays complete).
    names = {s.name.split(" (")[0] for s in L.LAYERS}
    for shape in ("KWS conv1", "KWS depthwise 3x3 25x5x64", "KWS pointwise 25x5x64->64",
                  "VWW depthwise 3x3 48x48x8", "VWW pointwise 24x24x16->32", "IC conv 3x3 32x32x16->16",
                  "FC 640->128", "FC 256->10"):
        assert any(n.startswith(shape) for n in names), shape
    cut = L.layers()
    for layer in cut:
        assert len(layer.graph.operators) == 1 and len(layer.graph.inputs) == 1


def test_cli_prints_the_table_and_json(cortex_m, emu_cache: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    cortex_m(BOARD)
    monkeypatch.setenv("TINYRT_EMULATION_CACHE", str(emu_cache))
    monkeypatch.delenv("TINYRT_CMSIS_NN", raising=False)
    out_json = tmp_path / "layers.json"
    assert L.main(["--board", BOARD, "--no-models", "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| layer | MACs | portable instr/MAC | DSP instr/MAC | CMSIS-NN (ANCHORS.md)")
    data = json.loads(out_json.read_text())
    assert data["bit_exact"] and not data["models"]
    assert [r["layer"] for r in data["layers"]] == [s.name for s in L.LAYERS]


def test_no_dsp_table_without_the_extension(cortex_m, tmp_path: Path) -> None:
    # Cortex-M0+ (no DSP extension): the file compiles to nothing and the
    # harness finds only the portable table.
    from runtime.emulation.build import Record

    from .emu_cases import model_case

    runner = cortex_m("pico")
    case = model_case("hello_world_int8")
    res = runner.run(runner.build([case.export("model")], tmp_path), [Record(0, case.inputs[0])])
    assert res.runs[0].isas == [TRT_ISA_PORTABLE]
    m4 = cortex_m(BOARD)
    res = m4.run(m4.build([case.export("model")], tmp_path / "m4"), [Record(0, case.inputs[0])])
    assert res.runs[0].isas == [TRT_ISA_CORTEX_M_DSP, TRT_ISA_PORTABLE]
    assert res.runs[0].mismatches == 0
