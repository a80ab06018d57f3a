"""Magnitude pruning with fine-tuning (tfmot prune_low_magnitude), then full int8.

Block shapes are the ones tinyrt's sparse kernels read (runtime.sparse): in
TFLite's weight layout, a row per output channel over the inputs it reduces
(FULLY_CONNECTED: in_features; CONV_2D: KH*KW*C_in in patch order), a block
"Bx1" is B consecutive output channels at one input -- the lanes of one SIMD
multiply-add.  "1x1" (the default) is unstructured.  Same convention as
`python -m runtime.prune`, the data-free post-training pruner.

tfmot prunes in blocks only weights that are two-dimensional.  Dense kernels
are ([in, out] in Keras: a Bx1 block is tfmot's block (1, B)); so are 1x1
convolutions once squeezed.  A KxK convolution is trained, for the duration of
block pruning, as `FlatKernelConv2D`: the same convolution with its kernel
stored as the [KH*KW*C_in, C_out] matrix that the runtime's rows are, so the
blocks tfmot zeroes are the runtime's blocks; the stripped model gets plain
Conv2D layers back before conversion.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _tf
from .data import Dataset
from .measure import LayerSparsity, block_zero_fraction, weight_sparsity, weight_tensors
from .progress import epoch_progress, keras_verbosity, say
from .quantization import convert_int8


def runtime_blocks() -> tuple[str, ...]:
    """The block shapes tinyrt's sparse kernels run, "Bx1" for B in runtime.sparse.BLOCKS."""
    from ..sparse import BLOCKS

    return tuple(f"{b}x1" for b in BLOCKS)


def parse_block(text: str | tuple[int, int]) -> tuple[int, int]:
    """ "4x1" -> (4, 1); only the shapes the runtime's sparse kernels read."""
    if isinstance(text, tuple):
        block = text
    else:
        parts = text.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"block shape {text!r}: expected OUTxIN such as {', '.join(runtime_blocks())}")
        block = (int(parts[0]), int(parts[1]))
    name = f"{block[0]}x{block[1]}"
    if name not in runtime_blocks():
        raise ValueError(
            f"block {name}: tinyrt's sparse kernels read {', '.join(runtime_blocks())} (output channels x inputs, "
            "TFLite layout); other shapes would be pruned in blocks the runtime cannot skip as blocks"
        )
    return block


@dataclass
class PrunedLayer:
    name: str
    kernel_shape: tuple[int, ...]
    pattern: str  # "block RxC" or "element" (why, when a block was asked for and not possible)


@dataclass
class PruneResult:
    tflite: bytes
    keras_model: Any  # stripped float model (pruning wrappers removed)
    target_sparsity: float
    block: tuple[int, int]
    layers: list[PrunedLayer] = field(default_factory=list)

    @property
    def sparsity(self) -> float:
        """Zero weights / all weights in the int8 model's conv and FC tensors."""
        return weight_sparsity(self.tflite)

    def tensors(self) -> list[LayerSparsity]:
        return weight_tensors(self.tflite)

    def block_fractions(self) -> dict[str, float]:
        """Per int8 weight tensor: the fraction of whole `block`s that are all zero."""
        from ..graph import parse_model

        g = parse_model(self.tflite)
        out = {}
        for layer in weight_tensors(g):
            data = g.tensors[[t.name for t in g.tensors].index(layer.tensor)].data
            out[layer.tensor] = block_zero_fraction(np.asarray(data), self.block)
        return out


def _keras_block(layer: Any, block: tuple[int, int]) -> tuple[tuple[int, int], str]:
    """tfmot's block_size for a layer with a 2-D (Keras [in, out]) kernel, and the pattern."""
    if block == (1, 1):
        return (1, 1), "element"
    rows = block[0]
    return (1, rows), f"block {rows}x1"


def _flattenable_conv(layer: Any) -> bool:
    """A KxK Conv2D that FlatKernelConv2D reproduces exactly."""
    if type(layer).__name__ != "Conv2D":
        return False
    c = layer.get_config()
    return c.get("groups", 1) == 1 and c.get("data_format", "channels_last") == "channels_last" and \
        tuple(layer.kernel.shape[:2]) != (1, 1)


_flat_conv_class: Any = None


def flat_kernel_conv_class() -> Any:
    """FlatKernelConv2D, made on first use (it subclasses tf-keras and tfmot classes)."""
    global _flat_conv_class
    if _flat_conv_class is not None:
        return _flat_conv_class
    tf, keras, tfmot = _tf.tf(), _tf.keras(), _tf.tfmot()

    class FlatKernelConv2D(keras.layers.Layer, tfmot.sparsity.keras.PrunableLayer):  # type: ignore[misc, name-defined]
        """Conv2D whose kernel variable is [KH*KW*C_in, C_out] (reshaped on every call)."""

        def __init__(self, conv: Any, **kwargs: Any):
            super().__init__(name=conv.name, **kwargs)
            c = conv.get_config()
            self.kernel_shape = tuple(int(d) for d in conv.kernel.shape)
            self.strides = tuple(c["strides"])
            self.padding = c["padding"].upper()
            self.dilations = tuple(c["dilation_rate"])
            self.activation = keras.activations.get(c["activation"])
            kernel, *rest = conv.get_weights()
            kh, kw, cin, cout = self.kernel_shape
            self.kernel = self.add_weight(name="kernel", shape=(kh * kw * cin, cout),
                                          initializer=keras.initializers.Constant(kernel.reshape(-1, cout)))
            self.bias = self.add_weight(name="bias", shape=(cout,),
                                        initializer=keras.initializers.Constant(rest[0])) if rest else None

        def call(self, x: Any) -> Any:
            y = tf.nn.conv2d(x, tf.reshape(self.kernel, self.kernel_shape), strides=self.strides,
                             padding=self.padding, dilations=self.dilations)
            if self.bias is not None:
                y = tf.nn.bias_add(y, self.bias)
            return self.activation(y)

        def get_prunable_weights(self) -> list[Any]:
            return [self.kernel]

    _flat_conv_class = FlatKernelConv2D
    return FlatKernelConv2D


def prunable(layer: Any) -> bool:
    return type(layer).__name__ in ("Dense", "Conv2D", "DepthwiseConv2D", "Conv1D", "SeparableConv2D")


def prune(
    model: Any,
    data: Dataset,
    *,
    sparsity: float = 0.8,
    block: tuple[int, int] | str = (1, 1),
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    end_fraction: float = 0.3,
    calib: Dataset | None = None,
    validation: Dataset | None = None,
    num_calib: int = 200,
    progress: bool = True,
    seed: int = 0,
) -> PruneResult:
    """Prune every conv / dense kernel to `sparsity` by magnitude while fine-tuning on
    `data`, strip the pruning wrappers and convert to full int8.

    Schedule: polynomial decay from 0 to `sparsity` over the first `end_fraction` of
    the training steps, pruning every ~quarter epoch, then fine-tuning at the final
    sparsity for the rest so the remaining weights recover the accuracy.  (On digits,
    a short ramp and a long recovery did best: 80% sparsity lost 0.9 points with
    ramp 0.3 of 20 epochs, 1.9 points with ramp 0.5, 3.9 with 10 epochs.)"""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if epochs < 1:
        raise ValueError("pruning needs at least one epoch of fine-tuning")
    if isinstance(model, (str, os.PathLike)):
        model = _tf.load_keras_model(model)
    block = parse_block(block)
    tfmot = _tf.tfmot()
    keras = _tf.keras()
    sparsity_api = tfmot.sparsity.keras
    _tf.set_seed(seed)
    train = data.conform(tuple(model.input_shape), model.output_shape[-1])
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total = steps_per_epoch * epochs
    end_step = max(1, int(total * end_fraction))
    frequency = max(1, steps_per_epoch // 4)
    schedule = sparsity_api.PolynomialDecay(initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
                                            end_step=end_step, frequency=frequency)
    layers: list[PrunedLayer] = []

    def wrap(layer: Any) -> Any:
        if not prunable(layer):
            return layer
        shape = tuple(int(d) for d in layer.kernel.shape)
        if block == (1, 1):
            kblock, pattern = (1, 1), "element"
        elif type(layer).__name__ == "Dense" or (type(layer).__name__ == "Conv2D" and shape[:2] == (1, 1)):
            kblock, pattern = _keras_block(layer, block)
        elif _flattenable_conv(layer):
            kblock, pattern = _keras_block(layer, block)
            flat[layer.name] = shape
            layer = flat_kernel_conv_class()(layer)
        else:
            kblock, pattern = (1, 1), f"element ({type(layer).__name__}: no block form)"
        layers.append(PrunedLayer(layer.name, shape, pattern))
        return sparsity_api.prune_low_magnitude(layer, pruning_schedule=schedule, block_size=kblock)

    # A private copy first: wrapping reuses the layer objects, and fine-tuning must
    # not change the caller's model.  Then per-layer wrapping (the block size
    # differs per layer), which keeps each layer's trained weights.
    flat: dict[str, tuple[int, ...]] = {}
    base = keras.models.clone_model(model)
    base.set_weights(model.get_weights())
    wrapped = keras.models.clone_model(base, clone_function=wrap)
    softmax_out = type(model.layers[-1]).__name__ == "Softmax" or getattr(
        getattr(model.layers[-1], "activation", None), "__name__", "") == "softmax"
    wrapped.compile(optimizer=keras.optimizers.Adam(learning_rate),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax_out),
                    metrics=["accuracy"])
    val = None
    if validation is not None:
        v = validation.conform(tuple(model.input_shape), model.output_shape[-1])
        val = (v.x, v.y)
    say(f"pruning to {sparsity:.0%} ({'x'.join(map(str, block))} blocks): {epochs} epoch(s), "
        f"sparsity ramps over {end_step}/{total} steps", progress)
    wrapped.fit(train.x, train.y, batch_size=batch_size, epochs=epochs, validation_data=val,
                callbacks=[sparsity_api.UpdatePruningStep(), *epoch_progress(epochs, progress)],
                verbose=keras_verbosity(progress), shuffle=True)
    stripped = sparsity_api.strip_pruning(wrapped)
    if flat:
        stripped = _unflatten(model, stripped, flat)
    result = PruneResult(
        tflite=convert_int8(stripped, calib or data, num_calib=num_calib, progress=progress, seed=seed),
        keras_model=stripped,
        target_sparsity=sparsity,
        block=block,
        layers=layers,
    )
    say(f"int8 weight sparsity {result.sparsity:.3f}", progress)
    return result


def _unflatten(original: Any, stripped: Any, flat: dict[str, tuple[int, ...]]) -> Any:
    """The original architecture (plain Conv2D layers) with the pruned weights."""
    keras = _tf.keras()
    plain = keras.models.clone_model(original)
    for layer in plain.layers:
        weights = stripped.get_layer(layer.name).get_weights()
        if layer.name in flat:
            weights = [weights[0].reshape(flat[layer.name]), *weights[1:]]
        layer.set_weights(weights)
    return plain
