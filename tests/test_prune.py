"""python -m runtime.prune: magnitude pruning of .tflite files.

The pruned files keep the flatbuffer layout (only weight bytes change), so
LiteRT runs them; sparsity is exact, globally or per layer, in whole blocks
when asked; int8 per-channel weights are ranked by real magnitude; bad input
exits 2 and writes nothing.
"""

from __future__ import annotations

import math
import re

import graphgen
import numpy as np
import pytest
from conftest import model_path, reference_interpreter, run_reference
from tflite_writer import write_model

from runtime.graph import parse_model
from runtime.prune import PruneError, agreement, find_layers, main, prune_model


def _weights(data: bytes) -> dict[str, np.ndarray]:
    graph, layers = find_layers(data)
    return {layer.name: np.asarray(graph.tensors[layer.tensor].data) for layer in layers}


def _changed_ranges(a: bytes, b: bytes) -> np.ndarray:
    x, y = np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8)
    return np.nonzero(x != y)[0]


@pytest.mark.parametrize("name", ["ad01_int8", "kws_ref_model", "vww_96_int8"])
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_global_sparsity_is_exact_and_only_weight_bytes_change(name, sparsity):
    data = model_path(name).read_bytes()
    result = prune_model(data, sparsity)
    assert len(result.model) == len(data)
    before, after = _weights(data), _weights(result.model)
    total = sum(w.size for w in after.values())
    zeros = sum(int(np.count_nonzero(w == 0)) for w in after.values())
    already = sum(int(np.count_nonzero(w == 0)) for w in before.values())
    # exactly round(s * n) weights are chosen; weights that were zero count among them
    assert zeros == max(round(sparsity * total), already) or zeros == round(sparsity * total)
    assert result.sparsity == pytest.approx(zeros / total)
    # every byte that changed lies inside a pruned weight buffer, and only zeros were written
    graph, layers = find_layers(data)
    spans = [(layer.offset, layer.offset + math.prod(layer.shape)) for layer in layers]
    changed = _changed_ranges(data, result.model)
    assert bool(changed.size) == (zeros > already)  # vww is more than half zeros as shipped
    assert all(any(lo <= i < hi for lo, hi in spans) for i in changed)
    assert np.all(np.frombuffer(result.model, np.uint8)[changed] == 0)
    # the kept weights are untouched
    for k, w in after.items():
        kept = w != 0
        np.testing.assert_array_equal(w[kept], before[k][kept])


def test_pruned_file_runs_on_litert_and_tinyrt_alike():
    data = prune_model(model_path("kws_ref_model").read_bytes(), 0.8).model
    it = reference_interpreter(data)
    import runtime

    model = runtime.load(data, backend="c")
    rng = np.random.default_rng(3)
    x = [rng.integers(-128, 128, size=model.inputs[0].shape, dtype=np.int8)]
    np.testing.assert_array_equal(model.run(x)[0], run_reference(it, x)[0])
    # and LiteRT's default (XNNPACK) interpreter loads it too
    from ai_edge_litert import interpreter as litert

    default = litert.Interpreter(model_content=data)
    default.allocate_tensors()
    default.set_tensor(default.get_input_details()[0]["index"], x[0])
    default.invoke()


def test_per_layer_sparsity_and_names():
    data = model_path("ad01_int8").read_bytes()
    graph, layers = find_layers(data)
    first, second = layers[0], layers[1]
    result = prune_model(data, 0.5, {first.name: 0.9, str(second.op_index): 0.25})
    by = {layer.name: layer for layer in result.layers}
    w = _weights(result.model)
    assert np.mean(w[first.name] == 0) == pytest.approx(0.9, abs=1 / w[first.name].size)
    assert by[first.name].target == 0.9 and by[second.name].target == 0.25
    # layer 1 had 24% zeros already: its 25% target zeroes one more percent at most
    assert np.mean(w[second.name] == 0) == pytest.approx(0.25, abs=1 / w[second.name].size)
    rest = [layer for layer in result.layers if layer.name not in (first.name, second.name)]
    total = sum(math.prod(layer.shape) for layer in rest)
    zeros = sum(int(np.count_nonzero(w[layer.name] == 0)) for layer in rest)
    assert zeros == round(0.5 * total)
    # the output tensor's name and "#index" work too
    result2 = prune_model(data, 0.5, {first.output_name: 0.9, f"#{second.op_index}": 0.25})
    assert result2.model == result.model


def _tiles(a: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """[out/R][R][outer][inner/C][C] view of whole blocks (ragged edges dropped)."""
    rows, cols = block
    o, inner = a.shape[0], a.shape[-1]
    outer = a.size // o // inner
    a3 = a.reshape(o, outer, inner)[: (o // rows) * rows, :, : (inner // cols) * cols]
    return a3.reshape(o // rows, rows, outer, inner // cols, cols)


@pytest.mark.parametrize("block", [(4, 1), (8, 1), (1, 4), (2, 2)])
def test_block_pruning_zeroes_whole_blocks(block):
    data = model_path("kws_ref_model").read_bytes()
    result = prune_model(data, 0.75, block=block)
    before = _weights(data)
    zero_blocks = all_blocks = 0
    for name, w in _weights(result.model).items():
        pruned_here = _tiles((w == 0) & (before[name] != 0), block)
        all_zero = np.all(_tiles(w, block) == 0, axis=(1, 4))
        # a block pruning touched is zero as a whole
        assert np.all(all_zero | ~np.any(pruned_here, axis=(1, 4))), name
        zero_blocks += int(all_zero.sum())
        all_blocks += all_zero.size
    if block[1] == 1:
        # one global threshold over blocks (kws's 12-output FC leaves ragged 8x1 blocks)
        assert zero_blocks / all_blocks == pytest.approx(0.75, abs=0.03)
    # (1x4 and 2x2 also cut the first convolution's single input channel into ragged one-weight blocks)
    assert result.sparsity == pytest.approx(0.75, abs=0.05)


def test_per_channel_weights_are_ranked_by_real_magnitude():
    """Two output channels with the same int8 values and scales 100x apart:
    pruning half the weights globally takes the small-scale channel."""
    gb = graphgen.GraphBuilder()
    x = gb.input((1, 8), "int8", 0.05, 0)
    w = np.tile(np.arange(1, 9, dtype=np.int8), (2, 1))
    wt = gb.tensor((2, 8), "int8", np.array([0.001, 0.1], np.float32), np.zeros(2, np.int64), data=w, axis=0)
    y = gb.tensor((1, 2), "int8", 0.1, 0)
    gb.op("FULLY_CONNECTED", [x, wt, -1], [y], fused_activation_function=0, weights_format=0, keep_num_dims=False,
          asymmetric_quantize_inputs=False)
    gb.outputs.append(y)
    data = write_model(gb.graph())
    pruned = _weights(prune_model(data, 0.5).model)
    (w2,) = pruned.values()
    assert np.all(w2[0] == 0)
    np.testing.assert_array_equal(w2[1], w[1])


def test_float_model():
    data = model_path("hello_world_float").read_bytes()
    result = prune_model(data, 0.6)
    assert [layer.dtype for layer in result.layers] == ["float32"] * 3
    w = _weights(result.model)
    total = sum(a.size for a in w.values())
    assert sum(int(np.count_nonzero(a == 0)) for a in w.values()) == round(0.6 * total)
    # LiteRT runs the pruned float model
    from ai_edge_litert import interpreter as litert

    it = litert.Interpreter(model_content=result.model)
    it.allocate_tensors()
    it.invoke()
    agree = agreement(data, result.model, count=8)
    assert agree["backend"] == "tflite" and agree["top1_agreement"] is None  # one output value: no top-1
    assert math.isfinite(agree["sqnr_db"])
    # a mixed model: int8 convolutions, float FULLY_CONNECTED: both pruned
    mixed = prune_model(model_path("kws_ref_model_float32").read_bytes(), 0.5)
    assert {layer.dtype for layer in mixed.layers} == {"int8", "float32"}
    assert all(layer.sparsity_after >= 0.0 for layer in mixed.layers)


def test_skip_first_last():
    data = model_path("ad01_int8").read_bytes()
    before = _weights(data)
    result = prune_model(data, 0.8, skip_first_last=True)
    after = _weights(result.model)
    names = [layer.name for layer in result.layers]
    for name in (names[0], names[-1]):
        np.testing.assert_array_equal(after[name], before[name])
    assert "skipped" in result.layers[0].note and result.layers[0].target is None


def test_sparsity_zero_changes_nothing_and_agrees_fully():
    data = model_path("kws_ref_model").read_bytes()
    result = prune_model(data, 0.0)
    assert result.model == data
    agree = agreement(data, result.model, count=4)
    assert agree["top1_agreement"] == 1.0 and agree["sqnr_db"] == math.inf


def test_agreement_drops_with_sparsity():
    data = model_path("kws_ref_model").read_bytes()
    low = agreement(data, prune_model(data, 0.3).model, count=16)
    high = agreement(data, prune_model(data, 0.95).model, count=16)
    assert low["sqnr_db"] > high["sqnr_db"]
    assert 0.0 <= high["top1_agreement"] <= low["top1_agreement"] <= 1.0


# ------------------------------------------------------------------ CLI


def test_cli_writes_model_and_prints_report(tmp_path, capsys):
    out = tmp_path / "kws80.tflite"
    rc = main([str(model_path("kws_ref_model")), "-o", str(out), "--sparsity", "0.8", "--block", "4x1",
               "--count", "4"])
    assert rc == 0
    text = capsys.readouterr().out
    assert out.is_file() and parse_model(out.read_bytes())
    assert re.search(r"overall weight sparsity 80\.[01]% \(4x1 blocks\)", text)
    assert "top-1" in text and "SQNR" in text and "dB" in text
    for layer in find_layers(model_path("kws_ref_model").read_bytes())[1]:
        assert layer.name in text


def test_cli_samples_file(tmp_path, capsys):
    data = model_path("kws_ref_model")
    samples = np.random.default_rng(0).integers(-128, 128, size=(5, 1, 49, 10, 1), dtype=np.int8)
    np.save(tmp_path / "s.npy", samples)
    rc = main([str(data), "-o", str(tmp_path / "o.tflite"), "--sparsity", "0.5", "--samples", str(tmp_path / "s.npy")])
    assert rc == 0
    assert "on 5 samples inputs" in capsys.readouterr().out


def _no_prunable_model() -> bytes:
    gb = graphgen.GraphBuilder()
    x = gb.input((1, 4, 4, 8), "int8", 0.05, 0)
    y = graphgen.add_depthwise(gb, np.random.default_rng(0), x, 0)
    gb.outputs.append(y)
    return write_model(gb.graph())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sparsity", "1.0"], "--sparsity must be in [0, 1)"),
        (["--sparsity", "-0.1"], "--sparsity must be in [0, 1)"),
        (["--sparsity", "nan"], "--sparsity must be in [0, 1)"),
        (["--sparsity", "0.5", "--per-layer", "no_such_layer=0.5"], "no_such_layer"),
        (["--sparsity", "0.5", "--per-layer", "functional_1/dense/MatMul=1.5"], "must be in [0, 1)"),
        (["--sparsity", "0.5", "--per-layer", "functional_1/dense/MatMul"], "NAME=SPARSITY"),
        (["--sparsity", "0.5", "--block", "4by1"], "ROWSxCOLS"),
        (["--sparsity", "0.5", "--block", "0x4"], "at least 1"),
    ],
)
def test_cli_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out.tflite"
    rc = main([str(model_path("ad01_int8")), "-o", str(out), *args])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_model_without_prunable_layers(tmp_path, capsys):
    src = tmp_path / "dw.tflite"
    src.write_bytes(_no_prunable_model())
    out = tmp_path / "out.tflite"
    assert main([str(src), "-o", str(out), "--sparsity", "0.5"]) == 2
    assert "no prunable layer" in capsys.readouterr().err
    assert not out.exists()


def test_cli_unreadable_inputs(tmp_path, capsys):
    out = tmp_path / "out.tflite"
    assert main([str(tmp_path / "missing.tflite"), "-o", str(out), "--sparsity", "0.5"]) == 2
    (tmp_path / "junk.tflite").write_bytes(b"not a model at all")
    assert main([str(tmp_path / "junk.tflite"), "-o", str(out), "--sparsity", "0.5"]) == 2
    assert main([str(model_path("ad01_int8")), "-o", str(out), "--sparsity", "0.5", "--samples",
                 str(tmp_path / "none.npy")]) == 2
    np.save(tmp_path / "bad.npy", np.zeros((3, 7), np.int8))
    assert main([str(model_path("ad01_int8")), "-o", str(out), "--sparsity", "0.5", "--samples",
                 str(tmp_path / "bad.npy")]) == 2
    assert main([str(model_path("ad01_int8")), "-o", str(tmp_path / "no_dir" / "o.tflite"), "--sparsity", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "cannot read model" in err and "not a TFLite model" in err and "cannot read samples" in err
    assert "does not split" in err and "does not exist" in err
    assert not out.exists()


def test_prune_error_is_raised_by_the_api():
    with pytest.raises(PruneError, match="no prunable"):
        prune_model(_no_prunable_model(), 0.5)
    with pytest.raises(PruneError, match=r"\[0, 1\)"):
        prune_model(model_path("ad01_int8").read_bytes(), 1.0)
