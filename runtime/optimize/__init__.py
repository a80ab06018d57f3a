"""The model-side toolchain: Keras model -> int8 .tflite for a board.

    from runtime import optimize
    train, test = optimize.load_digits()
    int8 = optimize.quantize("model.keras", calib=train)                 # bytes of a .tflite
    pruned = optimize.prune("model.keras", train, sparsity=0.8)          # .tflite, .sparsity, .keras_model
    student = optimize.distill("model.keras", "mlp:16", train)           # Keras student
    best = optimize.fit("model.keras", "nucleo-l4r5zi", train, evaluation=test).best

Needs the [optimize] extra (tensorflow-cpu, tf-keras, tensorflow-model-optimization).
Importing this package does not import TensorFlow; the first call that trains or
converts does, with TF_USE_LEGACY_KERAS=1 so that tfmot gets the Keras 2 it needs.
The core runtime (`runtime.load`, `Model.run`) never imports TensorFlow.
"""

from __future__ import annotations

from ._tf import MissingToolchainError, available
from .arch import ArchSpec, build, parse_spec, train
from .data import DataError, Dataset, load_data, load_digits, save_npz
from .distillation import distill, teacher_logits
from .fitting import Candidate, FitResult, fit
from .measure import (
    accuracy,
    block_zero_fraction,
    host_latencies_ms,
    host_latency_ms,
    weight_bytes,
    weight_sparsity,
    weight_tensors,
)
from .pruning import PruneResult, prune
from .quantization import convert_int8, quantize

__all__ = [
    "ArchSpec",
    "Candidate",
    "DataError",
    "Dataset",
    "FitResult",
    "MissingToolchainError",
    "PruneResult",
    "accuracy",
    "available",
    "block_zero_fraction",
    "build",
    "convert_int8",
    "distill",
    "fit",
    "host_latencies_ms",
    "host_latency_ms",
    "load_data",
    "load_digits",
    "parse_spec",
    "prune",
    "quantize",
    "save_npz",
    "teacher_logits",
    "train",
    "weight_bytes",
    "weight_sparsity",
    "weight_tensors",
]
