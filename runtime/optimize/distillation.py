"""Knowledge distillation: a small student learns from a teacher's soft targets.

Loss (Hinton et al. 2015):  alpha * T^2 * KL(softmax(t/T) || softmax(s/T))
                          + (1 - alpha) * cross_entropy(labels, softmax(s))
with t, s the teacher's and student's logits.  The T^2 keeps the soft term's
gradients on the same scale as the hard term's whatever the temperature.

The training data are fixed (no augmentation), so the teacher's logits are
computed once, up front; that is also what lets a .tflite teacher -- run by
tinyrt, no TensorFlow -- teach as well as a Keras one.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _tf
from .arch import build, logits_model
from .data import Dataset
from .progress import keras_verbosity, say


def teacher_logits(teacher: Any, data: Dataset, *, progress: bool = True) -> np.ndarray:
    """(N, classes) logits of a Keras model, a Keras model file, or an int8/float .tflite."""
    if isinstance(teacher, (bytes, bytearray)) or (
        isinstance(teacher, (str, os.PathLike)) and os.fspath(teacher).endswith(".tflite")
    ):
        return _tflite_logits(teacher, data, progress)
    if isinstance(teacher, (str, os.PathLike)):
        teacher = _tf.load_keras_model(teacher)
    d = data.conform(tuple(teacher.input_shape), teacher.output_shape[-1], "teacher")
    say(f"teacher logits for {len(d)} samples (Keras)", progress)
    return np.asarray(logits_model(teacher).predict(d.x, batch_size=256, verbose=0), dtype=np.float32)


def _tflite_logits(teacher: Any, data: Dataset, progress: bool) -> np.ndarray:
    import runtime
    from runtime.graph import parse_model

    from .progress import counted

    content = bytes(teacher) if isinstance(teacher, (bytes, bytearray)) else open(teacher, "rb").read()
    m = runtime.load(content)
    info_in, info_out = m.inputs[0], m.outputs[0]
    d = data.conform(tuple(info_in.shape), int(info_out.shape[-1]), "teacher")
    rows = [m.run([s[np.newaxis]], dequantize=True)[0].reshape(-1)
            for s in counted(d.x, len(d), "teacher inference (tflite)", enabled=progress)]
    out = np.stack(rows).astype(np.float64)
    g = parse_model(content)
    if g.operators and g.operators[-1].opcode == "SOFTMAX":
        # Probabilities: log p are logits up to a per-sample constant, which softmax
        # ignores.  An int8 softmax rounds small probabilities to 0; floor them at
        # half a quantization step instead of taking log 0.
        floor = info_out.scale / 2 if info_out.quantized else 1e-6
        out = np.log(np.maximum(out, floor))
    return out.astype(np.float32)


def distillation_loss(num_classes: int, temperature: float, alpha: float) -> Any:
    """A Keras loss over y = [one-hot labels | teacher logits] (N, 2C) and student logits (N, C)."""
    tf = _tf.tf()
    t = float(temperature)

    def loss(y: Any, student: Any) -> Any:
        hard = y[:, :num_classes]
        teacher = y[:, num_classes:]
        soft_t = tf.nn.softmax(teacher / t)
        kl = tf.reduce_sum(soft_t * (tf.math.log(soft_t + 1e-12) - tf.nn.log_softmax(student / t)), axis=-1)
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=hard, logits=student)
        return alpha * (t * t) * kl + (1.0 - alpha) * ce

    return loss


def _label_accuracy(num_classes: int) -> Any:
    tf = _tf.tf()

    def accuracy(y: Any, student: Any) -> Any:
        return tf.cast(tf.equal(tf.argmax(y[:, :num_classes], -1), tf.argmax(student, -1)), tf.float32)

    return accuracy


def make_student(student: Any, data: Dataset, num_classes: int, seed: int = 0) -> Any:
    """A fresh student from a spec ("mlp:16"), or a Keras model (object or file) used as given."""
    if isinstance(student, str) and not os.path.exists(student):
        return build(student, data.sample_shape, num_classes, seed=seed)
    if isinstance(student, (str, os.PathLike)):
        return _tf.load_keras_model(student)
    return student


def distill(
    teacher: Any,
    student: Any,
    data: Dataset,
    *,
    temperature: float = 4.0,
    alpha: float = 0.7,
    epochs: int = 60,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    validation: Dataset | None = None,
    progress: bool = True,
    seed: int = 0,
    logits: np.ndarray | None = None,
) -> Any:
    """Train `student` (spec, Keras model or file) on `data` with the teacher's soft targets.

    alpha = 0 trains on the labels alone (the baseline distillation is compared with).
    Returns the trained Keras student, ending in softmax like the teacher."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    keras = _tf.keras()
    if logits is None:
        logits = teacher_logits(teacher, data, progress=progress) if alpha > 0 else None
    num_classes = int(logits.shape[1]) if logits is not None else data.num_classes
    _tf.set_seed(seed)
    model = make_student(student, data, num_classes, seed=seed)
    train = data.conform(tuple(model.input_shape), model.output_shape[-1], "student")
    if logits is None:
        logits = np.zeros((len(train), num_classes), dtype=np.float32)
    if logits.shape != (len(train), num_classes):
        raise ValueError(f"teacher logits have shape {list(logits.shape)}, expected {[len(train), num_classes]}")
    onehot = np.eye(num_classes, dtype=np.float32)[train.y]
    packed = np.concatenate([onehot, logits.astype(np.float32)], axis=1)
    trainee = logits_model(model)
    trainee.compile(optimizer=keras.optimizers.Adam(learning_rate),
                    loss=distillation_loss(num_classes, temperature, alpha),
                    metrics=[_label_accuracy(num_classes)])
    what = f"distilling into {model.name} (T={temperature:g}, alpha={alpha:g})" if alpha > 0 else \
        f"training {model.name} on labels alone"
    val = None
    if validation is not None:
        v = validation.conform(tuple(model.input_shape), num_classes, "student")
        # Teacher logits for the held-out data too, so that the printed val_loss is
        # the same loss as the training one (zeros where there is no teacher).
        v_logits = teacher_logits(teacher, v, progress=False) if teacher is not None and alpha > 0 else \
            np.zeros((len(v), num_classes), np.float32)
        val = (v.x, np.concatenate([np.eye(num_classes, dtype=np.float32)[v.y], v_logits], axis=1))
    say(f"{what}: {epochs} epoch(s) on {len(train)} samples", progress)
    trainee.fit(train.x, packed, batch_size=batch_size, epochs=epochs, validation_data=val,
                verbose=keras_verbosity(progress), shuffle=True)
    # `trainee` shares its layers with `model`, whose Softmax layer turns the
    # trained logits into the probabilities the int8 model outputs.
    return model
