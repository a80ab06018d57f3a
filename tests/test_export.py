"""python -m runtime.export: the generated C, compiled with the host's gcc
(-std=c99 -Wall -Wextra -Werror) and run natively, equals the host C backend
and BUILTIN_REF bit for bit on every shared int8 model and the kernel suite;
the CLI's files, exit codes and all-or-nothing output directory.

(The same exports on ARM cores under QEMU: tests/emulation/.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from emulation.emu_cases import INT8_MODELS, check_outputs, kernel_cases, model_case, model_path

from runtime import export as export_mod
from runtime._native import ffi
from runtime.emulation.build import Record
from runtime.export import KERNEL_CALLS, ExportError, generate, main
from runtime.graph import parse_model
from runtime.plan import build_plan

ROOT = Path(__file__).resolve().parents[1]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (apt-get install gcc)")


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory):
    from runtime.emulation.linux import LinuxUser

    if shutil.which("gcc") is None:
        pytest.skip("needs gcc (apt-get install gcc)")
    return LinuxUser("host", cache=tmp_path_factory.mktemp("native-cache"))


def _run_natively(native, cases, tmp_path: Path, **export_kw) -> list[str]:
    prog = native.build([c.export(f"m{i}", **export_kw) for i, c in enumerate(cases)], tmp_path)
    res = native.run(prog, [Record(i, xs) for i, c in enumerate(cases) for xs in c.inputs])
    problems, pos = [], 0
    for c in cases:
        problems += check_outputs(c, [r.outputs for r in res.runs[pos : pos + len(c.inputs)]], "native")
        pos += len(c.inputs)
    assert sum(r.mismatches for r in res.runs) == 0  # every ISA table of this build agrees
    return problems


def test_shared_models_run_natively_bit_exact(native, tmp_path: Path) -> None:
    problems = _run_natively(native, [model_case(n) for n in INT8_MODELS], tmp_path)
    assert not problems, "\n".join(problems)


def test_kernel_suite_runs_natively_bit_exact(native, tmp_path: Path) -> None:
    problems = _run_natively(native, list(kernel_cases()), tmp_path)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])


def test_fc_tflm_rounding_export_matches_the_tflm_backend(native, tmp_path: Path) -> None:
    import runtime

    case = model_case("ad01_int8")
    prog = native.build([case.export("m0", fc_fixed_point=True)], tmp_path)
    res = native.run(prog, [Record(0, xs) for xs in case.inputs])
    tflm = runtime.load(case.data, backend="c", fc_rounding="tflm")
    for run, xs in zip(res.runs, case.inputs, strict=True):
        np.testing.assert_array_equal(run.outputs[0], tflm.run(xs)[0])


def test_every_kernel_kind_has_an_export_call() -> None:
    # Adding a trt_op_kind to tinyrt.h means one line in runtime.export.KERNEL_CALLS.
    kinds = set(ffi.typeof("trt_op_kind").elements.values())
    assert kinds <= set(KERNEL_CALLS), f"no export call for {sorted(kinds - set(KERNEL_CALLS))}"


def test_unknown_kind_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = parse_model(model_path("hello_world_int8"))
    real = export_mod.build_plan

    def with_unknown_kind(*args, **kwargs):
        plan = real(*args, **kwargs)
        plan.steps[1].kind = 99
        return plan

    monkeypatch.setattr(export_mod, "build_plan", with_unknown_kind)
    with pytest.raises(ExportError, match=r"step 1 .*FULLY_CONNECTED.*kind 99.*KERNEL_CALLS"):
        generate(graph)


def test_pointer_outside_the_plan_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    stray = np.arange(16, dtype=np.int32)
    real = export_mod.build_plan

    def with_stray_pointer(*args, **kwargs):
        plan = real(*args, **kwargs)
        plan.steps[0].params.multiplier = ffi.cast("const int32_t *", ffi.from_buffer(stray))
        return plan

    monkeypatch.setattr(export_mod, "build_plan", with_stray_pointer)
    with pytest.raises(ExportError, match=r"step 0 .*\.multiplier points to memory the plan does not keep"):
        generate(parse_model(model_path("hello_world_int8")))


def test_generated_code_shape() -> None:
    exp = generate(model_path("kws_ref_model"), name="kws")
    plan = build_plan(parse_model(model_path("kws_ref_model")), materialize=False)
    header, model_c, data_c = exp.files["kws.h"], exp.files["kws.c"], exp.files["kws_data.c"]
    assert f"#define KWS_ARENA_BYTES {plan.arena_bytes}" in header
    assert "void kws_invoke(const int8_t *in, int8_t *out);" in header
    assert "static uint8_t kws_arena[KWS_ARENA_BYTES]" in model_c
    # one direct kernel call per plan step, in plan order; no interpreter, no allocation
    calls = re.findall(r"^    (trt_\w+)\(", model_c, flags=re.M)
    assert len(calls) == len(plan.steps) and calls[0] == "trt_conv2d_s8" and calls[-1] == "trt_softmax_s8"
    assert "trt_run_plan" not in model_c and "malloc" not in model_c + data_c
    # constants are const (flash), parameter structs too
    assert not re.search(r"^(static )?(int8_t|int32_t|double|trt_\w+) ", data_c, flags=re.M)
    assert data_c.count("const trt_conv2d_params kws_p") == sum(1 for c in calls if c == "trt_conv2d_s8")
    # host SIMD copies of the weights (tinyrt.h: "NULL on microcontrollers") are not exported
    assert "packed_weights[" not in data_c


def test_multi_io_graph_gets_the_general_entry_point() -> None:
    case = next(c for c in kernel_cases() if len(c.inputs[0]) > 1)  # e.g. ADD of two graph inputs
    exp = case.export("two")
    assert len(exp.inputs) > 1
    assert "two_invoke_io(const void *const *inputs, void *const *outputs)" in exp.files["two.h"]
    assert "void two_invoke(" not in exp.files["two.h"]


def test_float_constants_are_exact_hex_literals() -> None:
    # FULLY_CONNECTED's reference rescale is a double per output: emitted as C99 hex floats.
    exp = generate(model_path("hello_world_int8"))
    literals = re.findall(r"static const double model_s0_scale\[\d+\] TRT_EXPORT_ALIGNED = \{\s*([^}]*)\}",
                          exp.files["model_data.c"])
    values = [float.fromhex(v) for v in literals[0].replace("\n", " ").split(",") if v.strip()]
    plan = exp.plan
    p = plan.steps[0].params
    assert values == [p.scale[i] for i in range(p.out_features)]


def test_names_from_the_model_cannot_break_the_comments() -> None:
    assert export_mod.comment_text("a */ int x; /* b") == "a *? int x; ?* b"
    assert export_mod.comment_text("é\n" + "x" * 100, limit=10) == "??xxxxx..."


@needs_gcc
def test_cli_writes_the_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "kws"
    assert main([str(model_path("kws_ref_model")), "--board", "nucleo-l4r5zi", "-o", str(out), "--name", "kws"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "kws.c", "kws.h", "kws_data.c"]
    readme = (out / "README.md").read_text()
    assert "STM32 NUCLEO-L4R5ZI" in readme and "-mcpu=cortex-m4" in readme and "kws_invoke(in, out);" in readme
    assert "wrote" in capsys.readouterr().out
    # the files compile as they are: C99, no warnings, against csrc only
    csrc = ROOT / "csrc"
    for src in ("kws.c", "kws_data.c"):
        subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", f"-I{csrc}",
                        f"-I{csrc / 'include'}", "-c", str(out / src), "-o", str(tmp_path / (src + ".o"))], check=True)


def test_cli_refuses_a_non_empty_directory_and_force_replaces_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "dir"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = [str(model_path("hello_world_int8")), "--board", "pico", "-o", str(out)]
    assert main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main([*argv, "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "model.c", "model.h", "model_data.c"]
    assert [p.name for p in tmp_path.iterdir()] == ["dir"]  # no temporary directories left behind


def _small_flash_board(tmp_path: Path) -> Path:
    text = (ROOT / "board_profiles" / "pico.toml").read_text().replace('name = "pico"', 'name = "tiny-flash"')
    text = "\n".join("flash_bytes = 262144" if ln.startswith("flash_bytes =") else ln for ln in text.splitlines())
    path = tmp_path / "tiny-flash.toml"
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["kws_ref_model", "--board", "no-such-board"], 2, "no board named 'no-such-board'"),
        (["hello_world_float", "--board", "pico"], 2, "operator 0 (FULLY_CONNECTED): input must be int8"),
        (["kws_ref_model", "--board", "pico", "--name", "9lives"], 2, "must be a C identifier"),
        (["ad01_int8", "--board", "TINY"], 1, "ad01_int8.tflite does not fit tiny-flash: flash: needs"),
        (["missing", "--board", "pico"], 2, "missing.tflite"),
    ],
)
def test_cli_bad_input(argv: list[str], code: int, message: str, tmp_path: Path, capsys) -> None:
    argv = [str(model_path(argv[0])), *[str(_small_flash_board(tmp_path)) if a == "TINY" else a for a in argv[1:]]]
    out = tmp_path / "out"
    assert main([*argv, "-o", str(out)]) == code
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ")
    assert not out.exists()  # nothing half-written


def test_failure_while_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = Path.write_text

    def failing(self: Path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", failing)
    out = tmp_path / "out"
    assert main([str(model_path("kws_ref_model")), "--board", "pico", "-o", str(out)]) == 2
    assert list(tmp_path.iterdir()) == []


def test_validate_does_not_count_host_simd_copies_for_a_microcontroller() -> None:
    # The plan is made on this host; its AVX2 weight copies are left out of an
    # export, and out of an MCU board's flash estimate.
    from runtime.validate import report

    graph = parse_model(model_path("kws_ref_model"))
    host_plan = build_plan(graph, materialize=False)
    mcu_plan = build_plan(graph, materialize=False, host_layouts=False)

    def kept(plan) -> int:
        return sum(o.nbytes for s in plan.steps for o in s.keep if isinstance(o, np.ndarray))

    mcu = report(model_path("kws_ref_model"), "nucleo-l4r5zi")
    host = report(model_path("kws_ref_model"), "host")
    assert host["persistent_bytes"] - mcu["persistent_bytes"] == kept(host_plan) - kept(mcu_plan)
    exp = generate(graph)
    assert exp.array_bytes <= mcu["weight_bytes"] + mcu["persistent_bytes"]
