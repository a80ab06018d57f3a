"""The one place that imports TensorFlow, tf-keras and tfmot.

tfmot 0.8 works with Keras 2 only; TensorFlow 2.21 ships Keras 3 as `tf.keras`
unless TF_USE_LEGACY_KERAS=1 is set *before* TensorFlow is first imported, in
which case `tf.keras` is tf-keras (Keras 2).  So the variable is set here, and
every module of the toolchain gets TensorFlow from `tf()` / `keras()` / `tfmot()`.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

INSTALL_HINT = 'pip install -e ".[optimize]"  (tensorflow-cpu 2.21, tf-keras 2.21, tensorflow-model-optimization 0.8)'


class MissingToolchainError(ImportError):
    """TensorFlow, tf-keras or tensorflow-model-optimization is not installed."""


_modules: dict[str, ModuleType] = {}


def _load() -> dict[str, ModuleType]:
    if _modules:
        return _modules
    # If TensorFlow was imported before this, the setting comes too late; the
    # check after the import says so instead of failing inside tfmot.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # TensorFlow's C++ start-up chatter (CUDA stubs, CPU features) is noise here.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
        import tf_keras  # noqa: F401  - fail here, clearly, rather than deep inside tfmot
    except ImportError as exc:
        raise MissingToolchainError(f"the optimization toolchain needs TensorFlow and tf-keras: {INSTALL_HINT}") from exc
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as exc:
        raise MissingToolchainError(f"the optimization toolchain needs tensorflow-model-optimization: {INSTALL_HINT}") from exc
    keras = tf.keras
    if not keras.__name__.startswith("tf_keras") and not getattr(keras, "__version__", "3").startswith("2."):
        raise MissingToolchainError(
            "tf.keras is Keras 3, which tfmot cannot prune or quantize: TensorFlow was imported before "
            "TF_USE_LEGACY_KERAS=1 was set. Set it in the environment, or import runtime.optimize first."
        )
    _modules.update(tf=tf, keras=keras, tfmot=tfmot)
    return _modules


def available() -> tuple[bool, str]:
    """(True, "") when the toolchain imports, else (False, the reason) -- for pytest skips."""
    try:
        _load()
    except MissingToolchainError as exc:
        return False, str(exc)
    return True, ""


def tf() -> Any:
    return _load()["tf"]


def keras() -> Any:
    return _load()["keras"]


def tfmot() -> Any:
    return _load()["tfmot"]


def set_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow, and make TensorFlow's kernels deterministic,
    so that a run with the same seed on the same machine trains the same weights."""
    t = tf()
    t.keras.utils.set_random_seed(seed)
    try:
        t.config.experimental.enable_op_determinism()
    except (AttributeError, RuntimeError):
        pass


def load_keras_model(path: str | os.PathLike[str]) -> Any:
    """A Keras model from .keras / .h5 / SavedModel, without its training state.

    The optimizer state is not needed (every tool compiles afresh) and loading it
    across Keras versions is a common source of errors."""
    k = keras()
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"Keras model {p!r} does not exist")
    try:
        return k.models.load_model(p, compile=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load Keras model {p!r}: {exc}") from exc
