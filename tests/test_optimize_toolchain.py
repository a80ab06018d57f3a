"""The optimization toolchain on scikit-learn's digits with TensorFlow's own tools:
quantization, pruning with fine-tuning, distillation, fit -- and every model it
writes runs bit-exact on tinyrt's C backend against LiteRT's reference kernels.

Small epochs so the module stays within a couple of minutes on 2 cores; the
full-length figures are in examples/digits/README.md.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import reference_interpreter, run_reference

MISSING = [m for m in ("tensorflow", "tf_keras", "tensorflow_model_optimization", "sklearn")
           if importlib.util.find_spec(m) is None]
pytestmark = [
    pytest.mark.tensorflow,
    # tfmot 0.8 checks TensorFlow's version with distutils; not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:tensorflow_model_optimization"),
    pytest.mark.skipif(bool(MISSING), reason=f"needs the [optimize] extra (pip install -e \".[optimize]\"): "
                                             f"missing {', '.join(MISSING)}"),
]

SEED = 0
TEACHER = "cnn:16,32/64"


@pytest.fixture(scope="module")
def digits():
    from runtime.optimize import load_digits

    return load_digits(0.3, seed=SEED)


@pytest.fixture(scope="module")
def teacher(digits):
    from runtime.optimize import build, train

    tr, _ = digits
    model = build(TEACHER, tr.sample_shape, 10, seed=SEED)
    return train(model, tr, epochs=20, progress=False, seed=SEED)


@pytest.fixture(scope="module")
def float_accuracy(teacher, digits):
    _, te = digits
    return float(np.mean(teacher.predict(te.x, verbose=0).argmax(1) == te.y))


@pytest.fixture(scope="module")
def ptq(teacher, digits):
    from runtime.optimize import quantize

    return quantize(teacher, digits[0], progress=False, seed=SEED)


@pytest.fixture(scope="module")
def pruned(teacher, digits):
    from runtime.optimize import prune

    return prune(teacher, digits[0], sparsity=0.8, epochs=20, progress=False, seed=SEED)


@pytest.fixture(scope="module")
def pruned_4x1(teacher, digits):
    from runtime.optimize import prune

    return prune(teacher, digits[0], sparsity=0.8, block="4x1", epochs=6, progress=False, seed=SEED)


@pytest.fixture(scope="module")
def qat(teacher, digits):
    from runtime.optimize import quantize

    return quantize(teacher, digits[0], qat_epochs=1, train=digits[0], progress=False, seed=SEED)


@pytest.fixture(scope="module")
def student(teacher, digits):
    from runtime.optimize import convert_int8, distill

    tr = digits[0]
    model = distill(teacher, "mlp:16", tr, temperature=4, alpha=0.7, epochs=20, progress=False, seed=SEED)
    return model, convert_int8(model, tr, progress=False, seed=SEED)


@pytest.fixture(scope="module")
def labels_only_student(digits):
    from runtime.optimize import distill

    return distill(None, "mlp:16", digits[0], alpha=0.0, epochs=20, progress=False, seed=SEED)


def _accuracy(tflite, data):
    from runtime.optimize import accuracy

    return accuracy(tflite, data)


def test_ptq_is_full_int8_per_channel_and_close_to_float(ptq, digits, float_accuracy):
    import runtime
    from runtime.graph import parse_model

    m = runtime.load(ptq, backend="c")
    assert m.inputs[0].dtype == np.int8 and m.outputs[0].dtype == np.int8
    g = parse_model(ptq)
    weights = [(op.opcode, g.tensors[op.inputs[1]]) for op in g.operators
               if op.opcode in ("CONV_2D", "FULLY_CONNECTED")]
    assert [o for o, _ in weights] == ["CONV_2D", "CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    for _, w in weights:
        # One scale per output channel, symmetric (zero point 0).
        assert w.quant.scale.size == w.shape[0]
        assert not w.quant.zero_point.any()
    acc = _accuracy(ptq, digits[1])
    assert acc >= float_accuracy - 0.01, (acc, float_accuracy)


def test_pruned_is_truly_sparse_and_accurate(pruned, ptq, digits, teacher):
    from runtime.optimize import weight_tensors

    # Measured from the int8 .tflite itself, not from the Keras masks.
    assert pruned.sparsity >= 0.78
    for t in weight_tensors(pruned.tflite):
        assert t.sparsity >= 0.75, t
    assert all(layer.pattern == "element" for layer in pruned.layers)
    dense = _accuracy(ptq, digits[1])
    acc = _accuracy(pruned.tflite, digits[1])
    assert acc >= dense - 0.02, (acc, dense)
    # The caller's model is not pruned in place.
    kernel = teacher.get_layer("dense0").get_weights()[0]
    assert np.mean(kernel == 0) < 0.05


def test_block_pruning_zeroes_the_runtimes_4x1_blocks(pruned_4x1):
    from runtime.graph import parse_model
    from runtime.optimize import block_zero_fraction

    g = parse_model(pruned_4x1.tflite)
    # Dense kernels directly, 3x3 convolutions through their flattened kernel.
    assert [layer.pattern for layer in pruned_4x1.layers] == ["block 4x1"] * 4
    assert pruned_4x1.sparsity >= 0.78
    weights = [np.asarray(g.tensors[op.inputs[1]].data) for op in g.operators
               if op.opcode in ("CONV_2D", "FULLY_CONNECTED")]
    assert [w.shape for w in weights] == [(16, 3, 3, 1), (32, 3, 3, 16), (64, 128), (10, 64)]
    for w in weights:
        if w.shape[0] % 4:
            continue  # the 10-row output layer ends in a part block
        # TFLite layout: a row per output channel over KH*KW*C_in (or in_features);
        # a block is 4 consecutive output channels at one input position.
        blocks = block_zero_fraction(w, (4, 1))
        assert blocks >= 0.78, w.shape
        # Nearly every zero lies in an all-zero block (int8 rounding adds a few lone zeros).
        assert blocks * w.size >= 0.97 * np.count_nonzero(w == 0)
        # Read across the inputs instead, the zeros are not in blocks.
        assert block_zero_fraction(w, (1, 4)) < blocks - 0.2


def test_block_shapes_are_the_runtimes(teacher, digits):
    from runtime.optimize import prune

    with pytest.raises(ValueError, match=r"block 1x4: tinyrt's sparse kernels read 1x1, 4x1, 8x1"):
        prune(teacher, digits[0], block="1x4")


def test_qat_model_is_int8_and_accurate(qat, digits, float_accuracy):
    acc = _accuracy(qat, digits[1])
    assert acc >= float_accuracy - 0.02, (acc, float_accuracy)


def test_tflite_teacher_gives_the_keras_teachers_soft_targets(teacher, ptq, digits):
    from runtime.optimize import teacher_logits

    tr = digits[0].subset(np.arange(300))
    keras_logits = teacher_logits(teacher, tr, progress=False)
    tflite_logits = teacher_logits(ptq, tr, progress=False)
    assert tflite_logits.shape == keras_logits.shape == (300, 10)
    assert np.mean(keras_logits.argmax(1) == tflite_logits.argmax(1)) >= 0.99

    def soft(z):
        e = np.exp((z - z.max(1, keepdims=True)) / 4)
        return e / e.sum(1, keepdims=True)

    # Soft targets at T=4 agree closely although the int8 softmax is coarse.
    assert np.abs(soft(keras_logits) - soft(tflite_logits)).max() < 0.1


def test_distilled_student_learns_the_teachers_soft_targets(student, labels_only_student, teacher, digits):
    from runtime.optimize import teacher_logits

    model, tflite = student
    te = digits[1]
    assert _accuracy(tflite, te) >= 0.85

    def soft(z, t=4.0):
        e = np.exp((z - z.max(1, keepdims=True)) / t)
        return e / e.sum(1, keepdims=True)

    # On images neither saw in training, the distilled student's T=4 distribution is
    # closer to the teacher's than that of the same student trained on labels alone.
    target = soft(teacher_logits(teacher, te, progress=False))

    def kl_to_teacher(m):
        p = soft(teacher_logits(m, te, progress=False))
        return float(np.mean(np.sum(target * (np.log(target) - np.log(p)), axis=1)))

    assert kl_to_teacher(model) < 0.5 * kl_to_teacher(labels_only_student)


@pytest.mark.parametrize("name", ["ptq", "pruned", "pruned_4x1", "qat", "student"])
def test_every_written_model_is_bit_exact_with_builtin_ref(name, request, digits):
    import runtime

    value = request.getfixturevalue(name)
    tflite = value.tflite if hasattr(value, "tflite") else value[1] if isinstance(value, tuple) else value
    ours = runtime.load(tflite, backend="c")
    ref = reference_interpreter(tflite)
    info = ours.inputs[0]
    rng = np.random.default_rng(7)
    samples = [info.quantize(x.reshape(info.shape)) for x in digits[1].x[:80]]
    samples += [rng.integers(-128, 128, size=info.shape, dtype=np.int8) for _ in range(20)]
    for x in samples:
        (a,) = ours.run([x])
        (b,) = run_reference(ref, [x])
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel_isa", ["portable", "avx2"])
def test_auto_picks_sparse_kernels_for_the_pruned_model(kernel_isa, pruned, pruned_4x1, ptq):
    import runtime
    from runtime import isa
    from runtime.sparse import plan_summary

    if kernel_isa not in isa.available():
        pytest.skip(f"no {kernel_isa} kernels on this machine")
    isa.select(kernel_isa)
    try:
        # The planner's cost model decides per layer; the pruned models must get
        # at least one sparse kernel, the dense one none.
        for model in (pruned.tflite, pruned_4x1.tflite):
            m = runtime.load(model)
            assert m.backend == "c"
            summary = plan_summary(m.plan)
            assert summary["sparse_layers"] >= 1, summary
            # Which layers go sparse is the cost model's call (per ISA); those that do
            # skip their zero weights' multiply-adds.
            assert summary["macs"] < plan_summary(runtime.load(ptq).plan)["macs"]
        assert plan_summary(runtime.load(ptq).plan)["sparse_layers"] == 0
    finally:
        isa.select("best")


def _softmax(z, t=1.0):
    e = np.exp((z - z.max(-1, keepdims=True)) / t)
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.0), (4.0, 0.7), (2.0, 1.0)])
def test_distillation_loss_is_the_temperature_scaled_kl_plus_hard_cross_entropy(temperature, alpha):
    from runtime.optimize.distillation import distillation_loss

    rng = np.random.default_rng(3)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    teacher, student = (rng.normal(0, 4, (16, 10)).astype(np.float32) for _ in range(2))
    got = np.asarray(distillation_loss(10, temperature, alpha)(np.concatenate([labels, teacher], 1), student))
    p, q = _softmax(teacher, temperature), _softmax(student, temperature)
    kl = np.sum(p * (np.log(p) - np.log(q)), axis=1)
    ce = -np.sum(labels * np.log(_softmax(student)), axis=1)  # the hard term at T=1
    np.testing.assert_allclose(got, alpha * temperature**2 * kl + (1 - alpha) * ce, rtol=1e-4, atol=1e-5)


def test_soft_term_gradient_does_not_shrink_with_temperature():
    """Hinton et al.: with the T^2 factor the soft term's gradient is T * (q - p), which at a
    high temperature tends to the logit difference over the class count -- the same
    scale at any T, so alpha means the same at T=2 and T=8."""
    from runtime.optimize import _tf
    from runtime.optimize.distillation import distillation_loss

    tf = _tf.tf()
    rng = np.random.default_rng(4)
    teacher = rng.normal(0, 1, (4, 10)).astype(np.float32)
    student = rng.normal(0, 1, (4, 10)).astype(np.float32)
    y = np.concatenate([np.eye(10, dtype=np.float32)[[0, 1, 2, 3]], teacher], 1)
    centred = (student - student.mean(1, keepdims=True)) - (teacher - teacher.mean(1, keepdims=True))
    for t in (20.0, 50.0):
        s = tf.Variable(student)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(distillation_loss(10, t, 1.0)(y, s))
        np.testing.assert_allclose(tape.gradient(loss, s).numpy(), centred / 10, atol=0.01)


def test_teacher_logits_are_pre_softmax_and_without_dropout(digits):
    from runtime.optimize import _tf, teacher_logits

    keras = _tf.keras()
    inp = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Dropout(0.5, seed=1)(keras.layers.Flatten()(inp))
    logits = keras.layers.Dense(10, kernel_initializer=keras.initializers.GlorotUniform(seed=2))(x)
    model = keras.Model(inp, keras.layers.Softmax()(logits))
    data = digits[0].subset(np.arange(64))
    a = teacher_logits(model, data, progress=False)
    # The same on every call (dropout off), the Dense output itself (not probabilities),
    # and the model's own softmax output after softmax.
    np.testing.assert_array_equal(a, teacher_logits(model, data, progress=False))
    np.testing.assert_allclose(a, keras.Model(inp, logits).predict(data.x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_softmax(a), model.predict(data.x, verbose=0), rtol=1e-4, atol=1e-6)


def test_ensemble_teacher_averages_its_members_logits(teacher, ptq, digits):
    from runtime.optimize import distill, teacher_logits

    data = digits[0].subset(np.arange(100))
    keras_logits = teacher_logits(teacher, data, progress=False)
    tflite_logits = teacher_logits(ptq, data, progress=False)
    both = teacher_logits([teacher, ptq], data, progress=False)
    np.testing.assert_allclose(both, (keras_logits + tflite_logits) / 2, rtol=1e-5, atol=1e-5)
    # An ensemble teaches on fresh mixup and shifted inputs too.
    student = distill([teacher, ptq], "mlp:8", data, temperature=1, alpha=1, mixup=True, shift=1, epochs=2,
                      progress=False, seed=SEED)
    assert student.output_shape == (None, 10)
    with pytest.raises(ValueError, match="needs the teacher itself"):
        distill(None, "mlp:8", data, alpha=0.5, shift=1, epochs=1, progress=False)
