"""Small Keras architectures from a one-line spec, for teachers, students and `fit`.

    mlp:H1,H2,...        Flatten, Dense(H1)+ReLU, Dense(H2)+ReLU, ..., Dense(classes), Softmax
    cnn:C1,C2,.../D1,... Conv3x3(C1, same)+ReLU, MaxPool 2x2, Conv3x3(C2)+ReLU, MaxPool 2x2, ...,
                         Flatten, Dense(D1)+ReLU, ..., Dense(classes), Softmax

A max-pool is left out where the feature map is already smaller than 2x2.  Every
model ends in a separate Softmax layer, so the logits (which distillation needs)
are the input of the last layer, and the int8 model outputs probabilities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import _tf


@dataclass(frozen=True)
class ArchSpec:
    kind: str  # "mlp" or "cnn"
    conv: tuple[int, ...]
    dense: tuple[int, ...]

    def __str__(self) -> str:
        if self.kind == "mlp":
            return "mlp:" + ",".join(map(str, self.dense))
        tail = ("/" + ",".join(map(str, self.dense))) if self.dense else ""
        return "cnn:" + ",".join(map(str, self.conv)) + tail

    def scaled(self, factor: float) -> ArchSpec:
        """The same shape with every width multiplied by `factor` (at least 1)."""

        def s(ws: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(max(1, int(round(w * factor))) for w in ws)

        return ArchSpec(self.kind, s(self.conv), s(self.dense))


_WIDTHS = r"\d+(?:,\d+)*"


def parse_spec(text: str) -> ArchSpec:
    t = text.strip().lower()
    m = re.fullmatch(rf"mlp:({_WIDTHS})?", t)
    if m:
        dense = tuple(int(w) for w in m.group(1).split(",")) if m.group(1) else ()
        return _checked(ArchSpec("mlp", (), dense), text)
    m = re.fullmatch(rf"cnn:({_WIDTHS})(?:/({_WIDTHS}))?", t)
    if m:
        conv = tuple(int(w) for w in m.group(1).split(","))
        dense = tuple(int(w) for w in m.group(2).split(",")) if m.group(2) else ()
        return _checked(ArchSpec("cnn", conv, dense), text)
    raise ValueError(f"architecture spec {text!r}: expected 'mlp:H1,H2,...' or 'cnn:C1,C2,.../D1,...' (e.g. cnn:16,32/64)")


def _checked(spec: ArchSpec, text: str) -> ArchSpec:
    if any(w <= 0 for w in spec.conv + spec.dense):
        raise ValueError(f"architecture spec {text!r}: widths must be positive")
    return spec


def build(spec: ArchSpec | str, input_shape: tuple[int, ...], num_classes: int, seed: int = 0) -> Any:
    """A Keras (tf-keras) model for the spec; input_shape without the batch dimension."""
    if isinstance(spec, str):
        spec = parse_spec(spec)
    keras = _tf.keras()
    layers = keras.layers
    init = keras.initializers

    def glorot() -> Any:
        # Seeded per layer so a spec builds the same initial weights every time.
        nonlocal seed
        seed += 1
        return init.GlorotUniform(seed=seed)

    inp = keras.Input(shape=input_shape, name="input")
    x = inp
    if spec.kind == "cnn":
        if len(input_shape) != 3:
            raise ValueError(f"a cnn spec needs image inputs (height, width, channels), got {list(input_shape)}")
        for i, c in enumerate(spec.conv):
            x = layers.Conv2D(c, 3, padding="same", activation="relu", kernel_initializer=glorot(), name=f"conv{i}")(x)
            if x.shape[1] >= 2 and x.shape[2] >= 2:
                x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, d in enumerate(spec.dense):
        x = layers.Dense(d, activation="relu", kernel_initializer=glorot(), name=f"dense{i}")(x)
    x = layers.Dense(num_classes, kernel_initializer=glorot(), name="logits")(x)
    out = layers.Softmax(name="probs")(x)
    return keras.Model(inp, out, name=str(spec).replace(":", "_").replace(",", "_").replace("/", "_"))


def train(model: Any, train_data: Any, *, epochs: int, batch_size: int = 32, learning_rate: float = 1e-3,
          validation: Any = None, progress: bool = True, seed: int = 0) -> Any:
    """Train a softmax classifier on labels (sparse cross-entropy, Adam)."""
    from .progress import epoch_progress, keras_verbosity, say

    keras = _tf.keras()
    _tf.set_seed(seed)
    data = train_data.conform(tuple(model.input_shape), model.output_shape[-1])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    val = None
    if validation is not None:
        v = validation.conform(tuple(model.input_shape), model.output_shape[-1])
        val = (v.x, v.y)
    say(f"training {model.name}: {epochs} epoch(s) on {len(data)} samples", progress)
    model.fit(data.x, data.y, batch_size=batch_size, epochs=epochs, validation_data=val,
              verbose=keras_verbosity(progress), shuffle=True,
              callbacks=epoch_progress(epochs, progress))
    return model


def logits_model(model: Any) -> Any:
    """A model computing the pre-softmax logits of a classifier.

    The last layer is a Softmax/Activation layer (take its input), or a Dense with
    a softmax activation (recompute it without the activation), or else the model
    already outputs logits."""
    keras = _tf.keras()
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    act_name = getattr(act, "__name__", "")
    if type(last).__name__ == "Softmax" or (type(last).__name__ == "Activation" and act_name == "softmax"):
        return keras.Model(model.inputs, last.input)
    if type(last).__name__ == "Dense" and act_name == "softmax":
        tf = _tf.tf()
        kernel, bias = last.kernel, last.bias
        out = keras.layers.Lambda(lambda h: tf.matmul(h, kernel) + (bias if bias is not None else 0.0))(last.input)
        return keras.Model(model.inputs, out)
    return model
