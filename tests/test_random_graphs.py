"""Random int8 graphs: tinyrt's C backend equals LiteRT's BUILTIN_REF kernels bit for bit.

Every operator tinyrt runs is generated alone (SINGLE_PER_OP graphs each,
cycling through its options) and in small multi-op models (N_CHAINS).  Each
graph is written to a real .tflite file (tests/tflite_writer.py), loaded by
both runtimes and run on several random inputs.  Seeds are fixed, so a
failure names a graph that can be rebuilt exactly:

    from graphgen import single_op_case; case = single_op_case("CONV_2D", 7)

A graph LiteRT refuses is a generator bug: it fails here, it is not skipped.
"""

from __future__ import annotations

import collections

import graphgen
import numpy as np
import pytest
from conftest import reference_interpreter, run_reference
from tflite_writer import write_model

import runtime

SINGLE_PER_OP = 20
N_CHAINS = 100
RUNS_PER_GRAPH = 4

SINGLE_CASES = [(op, seed) for op in sorted(graphgen.SINGLE_OPS) for seed in range(SINGLE_PER_OP)]

# What the generated graphs must exercise, from the spec of this suite (not
# read back from the generator): every op, every fused activation where the
# op has one, and the options that select different code paths.
ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
FUSED_ACT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MUL")
REQUIRED_FEATURES = (
    {f"{op}:act:{act}" for op in FUSED_ACT_OPS for act in ACTS}
    | {f"CONV_2D:{f}" for f in ("SAME", "VALID", "stride", "dilation", "groups", "per_channel", "per_tensor", "batch")}
    | {
        f"DEPTHWISE_CONV_2D:{f}"
        for f in ("SAME", "VALID", "stride", "dilation", "depth_multiplier", "per_channel", "per_tensor", "no_bias")
    }
    | {f"FULLY_CONNECTED:{f}" for f in ("per_channel", "per_tensor", "bias", "no_bias", "keep_num_dims", "batch")}
    | {f"{op}:{f}" for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D") for f in ("SAME", "VALID", "stride")}
    | {f"{op}:{f}" for op in ("ADD", "MUL") for f in ("broadcast", "constant")}
    | {"SOFTMAX:beta", "LEAKY_RELU:negative_alpha"}
    | {f"{op}:same_quant" for op in ("RELU", "RELU6", "RELU_N1_TO_1")}
    | {f"{op}:rank{r}" for op in ("PAD", "PADV2") for r in (1, 2, 3, 4)}
    | {f"CONCATENATION:{f}" for f in ("inputs2", "inputs3", "inputs4", "negative_axis", "constant")}
    | {f"CONCATENATION:{f}_axis" for f in ("first", "middle", "last")}
    | {f"MEAN:{f}" for f in ("spatial", "other_axes", "negative_axis", "keep_dims", "drop_dims", "same_quant")}
    | {
        f"QUANTIZE:{t}"
        for t in ("float32->int8", "float32->uint8", "int8->int8", "uint8->int8", "int8->uint8", "same_scale")
    }
    | {"DEQUANTIZE:int8", "DEQUANTIZE:uint8"}
    | {"chain:classifier", "chain:gap", "chain:residual", "chain:concat_branch", "chain:random"}
    | {"chain:squeeze_excite", "chain:same_tensor_twice", "chain:extra_output", "chain:input_is_output"}
)


def check_against_reference(case: graphgen.Case, seed: int) -> None:
    data = write_model(case.graph)
    try:
        ref = reference_interpreter(data)
    except (ValueError, RuntimeError) as exc:
        pytest.fail(f"{case.name}: LiteRT rejects the generated graph (a generator bug): {exc}")
    ours = runtime.load(data, backend="c")
    rng = np.random.default_rng(seed)
    for run in range(RUNS_PER_GRAPH):
        inputs = case.random_inputs(rng)
        got = ours.run(inputs)
        want = run_reference(ref, inputs)
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape, f"{case.name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
            np.testing.assert_array_equal(a, b, err_msg=f"{case.name}, run {run}")


@pytest.mark.parametrize(("opcode", "seed"), SINGLE_CASES, ids=[f"{op}-{s}" for op, s in SINGLE_CASES])
def test_single_op_graph(opcode: str, seed: int) -> None:
    check_against_reference(graphgen.single_op_case(opcode, seed), seed)


@pytest.mark.parametrize("seed", range(N_CHAINS))
def test_multi_op_graph(seed: int) -> None:
    check_against_reference(graphgen.chain_case(seed), 10_000 + seed)


def test_generated_graphs_cover_every_op_and_option() -> None:
    assert len(SINGLE_CASES) >= 200 and N_CHAINS >= 50
    features: collections.Counter[str] = collections.Counter()
    op_counts: collections.Counter[str] = collections.Counter()
    for opcode, seed in SINGLE_CASES:
        case = graphgen.single_op_case(opcode, seed)
        assert [op.opcode for op in case.graph.operators] == [opcode]
        features.update(case.features)
        op_counts[opcode] += 1
    chain_lengths = []
    for seed in range(N_CHAINS):
        case = graphgen.chain_case(seed)
        chain_lengths.append(len(case.graph.operators))
        features.update(case.features)
    # Every op tinyrt's planner registers for int8 graphs is generated alone.
    supported = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MUL"}
    supported |= {"SOFTMAX", "LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH"}
    supported |= {"PAD", "PADV2", "CONCATENATION", "MEAN", "RESHAPE", "QUANTIZE", "DEQUANTIZE"}
    assert supported <= set(op_counts), sorted(supported - set(op_counts))
    missing = sorted(REQUIRED_FEATURES - set(features))
    assert not missing, f"generated graphs never exercise: {missing}"
    assert min(chain_lengths) >= 2 and max(chain_lengths) >= 5
    assert sum(1 for n in chain_lengths if n <= 5) >= N_CHAINS // 4
