"""tinyrt: an int8 inference runtime for Raspberry Pi- and microcontroller-class boards.

    import runtime
    model = runtime.load("model.tflite")
    outputs = model.run([x])
"""

from __future__ import annotations

from .api import load
from .errors import BackendUnavailableError, ModelFormatError, TinyRTError, UnsupportedModelError
from .model import Model, TensorInfo

__version__ = "0.1.0"

__all__ = [
    "load",
    "Model",
    "TensorInfo",
    "TinyRTError",
    "ModelFormatError",
    "UnsupportedModelError",
    "BackendUnavailableError",
    "__version__",
]
