"""Full-int8 post-training quantization and quantization-aware training.

The TFLite converter does the quantization: per-channel symmetric int8 weights
(conv and, here, dense layers too), int8 activations calibrated on a
representative dataset, int8 input and output tensors so that the whole graph
runs on tinyrt's C kernels with no float at the edges.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _tf
from .data import Dataset
from .progress import counted, epoch_progress, keras_verbosity, say


def representative_batches(calib: Dataset, limit: int, seed: int = 0) -> np.ndarray:
    """Up to `limit` calibration samples, drawn evenly from every class so that a
    small calibration set still sees the whole input range."""
    n = len(calib)
    if n == 0:
        raise ValueError("the calibration data is empty")
    if limit <= 0 or limit >= n:
        return calib.x
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    # Round-robin over classes in the shuffled order.
    by_class = [order[calib.y[order] == c] for c in np.unique(calib.y)]
    picked: list[int] = []
    i = 0
    while len(picked) < limit:
        for members in by_class:
            if i < len(members) and len(picked) < limit:
                picked.append(int(members[i]))
        i += 1
    return calib.x[np.sort(np.array(picked))]


def convert_int8(
    model: Any,
    calib: Dataset,
    *,
    num_calib: int = 200,
    per_channel: bool = True,
    progress: bool = True,
    seed: int = 0,
) -> bytes:
    """Convert a Keras model to a full-int8 .tflite (int8 input and output).

    per_channel: one weight scale per output channel for conv and dense layers
    (TFLite's default for dense is per-tensor; per-channel loses less accuracy,
    and tinyrt's FULLY_CONNECTED runs both)."""
    tf = _tf.tf()
    calib = calib.conform(tuple(model.input_shape), model.output_shape[-1])
    samples = representative_batches(calib, num_calib, seed)

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        # One sample per batch: the converter's int8 model has batch 1.
        for x in counted(samples, len(samples), "calibration batch", enabled=progress):
            yield [x[np.newaxis].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if per_channel:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = False
    else:
        converter._experimental_disable_per_channel = True
    say(f"converting to int8 with {len(samples)} calibration samples", progress)
    with warnings.catch_warnings():
        # "Statistics for quantized inputs were expected": the int8 input's scale
        # comes from calibration, which is what we want.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(converter.convert())


def qat_model(model: Any, train: Dataset, *, epochs: int, batch_size: int = 32, learning_rate: float = 1e-4,
              validation: Dataset | None = None, progress: bool = True) -> Any:
    """Quantization-aware training (tfmot quantize_model): fake-quantized weights and
    activations during a few epochs of fine-tuning, so the weights adapt to int8."""
    tfmot = _tf.tfmot()
    keras = _tf.keras()
    train = train.conform(tuple(model.input_shape), model.output_shape[-1])
    q_aware = tfmot.quantization.keras.quantize_model(model)
    q_aware.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not _has_softmax_output(model)),
        metrics=["accuracy"],
    )
    val = None
    if validation is not None:
        v = validation.conform(tuple(model.input_shape), model.output_shape[-1])
        val = (v.x, v.y)
    say(f"quantization-aware training: {epochs} epoch(s) on {len(train)} samples", progress)
    q_aware.fit(train.x, train.y, batch_size=batch_size, epochs=epochs, validation_data=val,
                verbose=keras_verbosity(progress), shuffle=True, callbacks=epoch_progress(epochs, progress))
    return q_aware


def _has_softmax_output(model: Any) -> bool:
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    return getattr(act, "__name__", "") == "softmax" or type(last).__name__ == "Softmax"


def quantize(
    model: Any,
    calib: Dataset,
    *,
    qat_epochs: int = 0,
    train: Dataset | None = None,
    num_calib: int = 200,
    per_channel: bool = True,
    batch_size: int = 32,
    progress: bool = True,
    seed: int = 0,
) -> bytes:
    """Keras model (object or path) -> full-int8 .tflite bytes.

    With qat_epochs > 0, quantization-aware training on `train` comes first."""
    if isinstance(model, (str, os.PathLike)):
        model = _tf.load_keras_model(model)
    if qat_epochs > 0:
        if train is None:
            raise ValueError("quantization-aware training (--qat) needs training data (--data)")
        _tf.set_seed(seed)
        model = qat_model(model, train, epochs=qat_epochs, batch_size=batch_size, progress=progress)
    return convert_int8(model, calib, num_calib=num_calib, per_channel=per_channel, progress=progress, seed=seed)
