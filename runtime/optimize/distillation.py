"""Knowledge distillation: a small student learns from a teacher's soft targets.

Loss (Hinton et al. 2015):  alpha * T^2 * KL(softmax(t/T) || softmax(s/T))
                          + (1 - alpha) * cross_entropy(labels, softmax(s))
with t, s the teacher's and student's logits.  The T^2 keeps the soft term's
gradients on the same scale as the hard term's whatever the temperature.

The teacher is used as a function from inputs to logits (`Teacher`), so a
.tflite teacher -- run by tinyrt, no TensorFlow -- teaches as well as a Keras
one.  Without mixup its logits on the training data are computed once, up
front; with mixup it labels every epoch's fresh mixtures.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _tf
from .arch import build, logits_model
from .data import Dataset
from .progress import epoch_progress, keras_verbosity, say


class Teacher:
    """A teacher as a function from a batch of inputs to logits, whatever it is stored as:
    a Keras model (object or file) or a .tflite model (path or bytes) run by tinyrt.

    A list or tuple of such models is an ensemble: its logits are the mean of the
    members' logits (the normalised geometric mean of their distributions)."""

    def __init__(self, teacher: Any):
        self.tflite: bytes | None = None
        self.members: list[Teacher] = []
        if isinstance(teacher, (list, tuple)):
            if not teacher:
                raise ValueError("an ensemble teacher needs at least one model")
            self.members = [m if isinstance(m, Teacher) else Teacher(m) for m in teacher]
            first = self.members[0]
            for k, m in enumerate(self.members[1:], 1):
                if m.num_classes != first.num_classes or m.input_shape[1:] != first.input_shape[1:]:
                    raise ValueError(
                        f"ensemble teacher {k} takes {list(m.input_shape)} and has {m.num_classes} classes, but "
                        f"teacher 0 takes {list(first.input_shape)} and has {first.num_classes}")
            self.input_shape, self.num_classes = first.input_shape, first.num_classes
            return
        if isinstance(teacher, (bytes, bytearray)) or (
            isinstance(teacher, (str, os.PathLike)) and os.fspath(teacher).endswith(".tflite")
        ):
            content = bytes(teacher) if isinstance(teacher, (bytes, bytearray)) else open(teacher, "rb").read()
            self.tflite = content
            self._setup_tflite(content)
        else:
            if isinstance(teacher, (str, os.PathLike)):
                teacher = _tf.load_keras_model(teacher)
            self._keras = logits_model(teacher)
            self.input_shape = tuple(teacher.input_shape)
            self.num_classes = int(teacher.output_shape[-1])

    def describe(self) -> str:
        if self.members:
            return f"ensemble of {len(self.members)}: " + ", ".join(m.describe() for m in self.members)
        return "tflite" if self.tflite is not None else "Keras"

    def _setup_tflite(self, content: bytes) -> None:
        import runtime
        from runtime.graph import parse_model

        exposed = expose_softmax_input(content)
        self._model = runtime.load(exposed if exposed is not None else content)
        info_in, info_out = self._model.inputs[0], self._model.outputs[0]
        self.input_shape = tuple(info_in.shape)
        self.num_classes = int(info_out.shape[-1])
        self._log_floor: float | None = None
        if exposed is None:
            g = parse_model(content)
            if g.operators and g.operators[-1].opcode == "SOFTMAX":
                # Float probabilities: log p are the logits up to a per-sample
                # constant, which softmax ignores.  Floored to avoid log 0.
                self._log_floor = info_out.scale / 2 if info_out.quantized else 1e-12

    def conform(self, data: Dataset) -> Dataset:
        return data.conform(self.input_shape, self.num_classes, "teacher")

    def __call__(self, x: np.ndarray, progress: bool = False) -> np.ndarray:
        if self.members:
            return np.mean([m(x, progress=progress) for m in self.members], axis=0, dtype=np.float64).astype(np.float32)
        if self.tflite is None:
            return np.asarray(self._keras.predict(x, batch_size=1024, verbose=0), dtype=np.float32)
        from .progress import counted

        rows = [self._model.run([s[np.newaxis]], dequantize=True)[0].reshape(-1)
                for s in counted(x, len(x), "teacher inference (tflite)", enabled=progress)]
        out = np.stack(rows).astype(np.float64)
        if self._log_floor is not None:
            out = np.log(np.maximum(out, self._log_floor))
        return out.astype(np.float32)


def teacher_logits(teacher: Any, data: Dataset, *, progress: bool = True) -> np.ndarray:
    """(N, classes) logits of a Keras model, a Keras model file, or an int8/float .tflite
    (or the mean logits of a list of them)."""
    t = teacher if isinstance(teacher, Teacher) else Teacher(teacher)
    d = t.conform(data)
    say(f"teacher logits for {len(d)} samples ({t.describe()})", progress)
    return t(d.x, progress=progress)


def expose_softmax_input(content: bytes) -> bytes | None:
    """For a model ending in an int8 SOFTMAX: the same model with the softmax's input
    (the int8 logits) as its output, else None.

    An int8 softmax output has steps of 1/256, so every probability under 1/512
    reads as 0 and log-probabilities would lose exactly the small values that
    soft targets are made of; the int8 logits before it keep them (one step is
    typically 0.1-0.2 in logit units).  The graph output index is patched in place
    in a copy of the flatbuffer; the now unused SOFTMAX still runs, harmlessly."""
    from tflite.Model import Model as FbModel

    from runtime.graph import parse_model

    g = parse_model(content)
    if not g.operators or len(g.outputs) != 1:
        return None
    last = g.operators[-1]
    if last.opcode != "SOFTMAX" or last.outputs[0] != g.outputs[0]:
        return None
    logits = g.tensors[last.inputs[0]]
    if logits.dtype is None or logits.dtype.kind not in "iu" or logits.quant is None:
        return None
    buf = bytearray(content)
    outputs = FbModel.GetRootAsModel(buf, 0).Subgraphs(0).OutputsAsNumpy()
    outputs[0] = last.inputs[0]  # a view into buf: this writes the flatbuffer
    patched = bytes(buf)
    if parse_model(patched).outputs != (last.inputs[0],):
        return None
    return patched


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


def mixup_batches(n: int, epochs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs (i, j) and weights lam for `epochs` passes of n mixed samples:
    every sample appears once per pass as i and once as j; lam ~ U(0, 1).  Drawn
    pass by pass, so the sequence does not depend on how passes are grouped."""
    parts = [(rng.permutation(n), rng.permutation(n), rng.uniform(0.0, 1.0, size=n)) for _ in range(epochs)]
    i = np.concatenate([p[0] for p in parts])
    j = np.concatenate([p[1] for p in parts])
    lam = np.concatenate([p[2] for p in parts]).astype(np.float32)
    return i, j, lam


def shift_images(x: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Images (N, H, W[, C]) translated by whole pixels, sample k by (dy[k], dx[k])
    (down and right for positive values), zeros shifted in at the borders."""
    if x.ndim < 3:
        raise ValueError(f"shift augmentation needs images (N, H, W[, C]), got samples of shape {list(x.shape[1:])}")
    s = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    if s == 0:
        return x.copy()
    h, w = x.shape[1], x.shape[2]
    padded = np.pad(x, [(0, 0), (s, s), (s, s)] + [(0, 0)] * (x.ndim - 3))
    out = np.empty_like(x)
    for oy in np.unique(dy):
        for ox in np.unique(dx):
            k = np.flatnonzero((dy == oy) & (dx == ox))
            if len(k):
                out[k] = padded[k, s - oy:s - oy + h, s - ox:s - ox + w]
    return out


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
    mixup: bool = False,
    shift: int = 0,
    validation: Dataset | None = None,
    progress: bool = True,
    seed: int = 0,
    logits: np.ndarray | None = None,
) -> Any:
    """Train `student` (spec, Keras model or file) on `data` with the teacher's soft targets.

    teacher: a Keras model (object or file) or a .tflite, or a list of them (an
    ensemble whose logits are averaged), or None for labels alone.
    alpha = 0 trains on the labels alone (the baseline distillation is compared with).
    mixup: every epoch trains on fresh mixtures lam*x_i + (1-lam)*x_j of training pairs,
    with the teacher's logits on exactly those inputs (and labels mixed alike) --
    "function matching" (Beyer et al. 2022, "Knowledge distillation: a good teacher
    is patient and consistent"): the student sees the teacher's function between
    the training points, not only at them.  It pays off only with many epochs.
    shift: every epoch translates each training image by a random whole number of
    pixels in [-shift, shift] on each axis (zeros shifted in) before any mixing; the
    teacher labels the shifted images, the labels are kept.
    The learning rate decays along a cosine over the whole run.
    `logits`: the teacher's logits on `data`, when already computed (not with mixup).
    Returns the trained Keras student, ending in softmax like the teacher."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if shift < 0:
        raise ValueError(f"shift must be >= 0 pixels, got {shift}")
    fresh = mixup or shift > 0  # a new transfer set every epoch, labelled by the teacher
    if fresh and alpha > 0 and teacher is None:
        raise ValueError("mixup or shift distillation needs the teacher itself, not precomputed logits")
    keras = _tf.keras()
    t = Teacher(teacher) if teacher is not None and alpha > 0 else None
    if t is not None and logits is None and not fresh:
        logits = teacher_logits(t, data, progress=progress)
    num_classes = t.num_classes if t is not None else int(logits.shape[1]) if logits is not None else data.num_classes
    _tf.set_seed(seed)
    model = make_student(student, data, num_classes, seed=seed)
    train = data.conform(tuple(model.input_shape), model.output_shape[-1], "student")
    n = len(train)
    steps = epochs * -(-n // batch_size)
    trainee = logits_model(model)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    trainee.compile(optimizer=keras.optimizers.Adam(schedule),
                    loss=distillation_loss(num_classes, temperature, alpha),
                    metrics=[_label_accuracy(num_classes)])
    eye = np.eye(num_classes, dtype=np.float32)
    distilling = alpha > 0 and (t is not None or logits is not None)
    aug = ", ".join(([f"shift {shift}"] if shift else []) + (["mixup"] if mixup else []))
    what = f"distilling into {model.name} (T={temperature:g}, alpha={alpha:g}{', ' + aug if aug else ''})" \
        if distilling else f"training {model.name} on labels alone{' with ' + aug if aug else ''}"
    say(f"{what}: {epochs} epoch(s) on {n} samples", progress)
    if not fresh:
        if logits is None:
            logits = np.zeros((n, num_classes), dtype=np.float32)
        if logits.shape != (n, num_classes):
            raise ValueError(f"teacher logits have shape {list(logits.shape)}, expected {[n, num_classes]}")
        packed = np.concatenate([eye[train.y], logits.astype(np.float32)], axis=1)
        val = None
        if validation is not None:
            v = validation.conform(tuple(model.input_shape), num_classes, "student")
            # Teacher logits for the held-out data too, so that val_loss is the
            # training loss (zeros where there is no teacher).
            v_logits = teacher_logits(t, v, progress=False) if t is not None else \
                np.zeros((len(v), num_classes), np.float32)
            val = (v.x, np.concatenate([eye[v.y], v_logits], axis=1))
        trainee.fit(train.x, packed, batch_size=batch_size, epochs=epochs, validation_data=val,
                    verbose=keras_verbosity(progress), shuffle=True, callbacks=epoch_progress(epochs, progress))
    else:
        rng = np.random.default_rng(seed)
        # Shifts from their own stream, so that mixup alone draws what it always did.
        shift_rng = np.random.default_rng([seed, 1])
        # Mixtures are made in chunks of epochs: memory stays bounded, the teacher
        # runs once per chunk on a large batch, and each chunk is a progress line.
        chunk = max(1, min(-(-epochs // 10), 200_000 // max(n, 1)))
        done = 0
        while done < epochs:
            k = min(chunk, epochs - done)
            if mixup:
                i, j, lam = mixup_batches(n, k, rng)
            else:
                i = np.concatenate([rng.permutation(n) for _ in range(k)])
                j, lam = i, np.ones(len(i), np.float32)
            x = data.x[i]
            x2 = data.x[j]
            if shift:
                x = shift_images(x, *shift_rng.integers(-shift, shift + 1, size=(2, len(i))))
                if mixup:
                    x2 = shift_images(x2, *shift_rng.integers(-shift, shift + 1, size=(2, len(i))))
            w = lam.reshape((-1,) + (1,) * (x.ndim - 1))
            inputs = Dataset(w * x + (1.0 - w) * x2 if mixup else x, data.y[i], data.source)
            hard = lam[:, None] * eye[train.y[i]] + (1.0 - lam[:, None]) * eye[train.y[j]]
            soft = t(t.conform(inputs).x) if t is not None else np.zeros_like(hard)
            x_student = inputs.conform(tuple(model.input_shape), None, "student").x
            history = trainee.fit(x_student, np.concatenate([hard, soft], axis=1),
                                  batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
            done += k
            say(f"epoch {done}/{epochs} ({aug}): loss {history.history['loss'][-1]:.4f}", progress)
    # `trainee` shares its layers with `model`, whose Softmax layer turns the
    # trained logits into the probabilities the int8 model outputs.
    return model
