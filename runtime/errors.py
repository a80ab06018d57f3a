"""Exceptions raised by tinyrt.

Every failure a user can cause (a bad model file, an input of the wrong
shape, an unsupported operator) is one of these, with a message that says
what was expected and what was found.
"""

from __future__ import annotations


class TinyRTError(Exception):
    """Base class of tinyrt's own errors."""


class ModelFormatError(TinyRTError, ValueError):
    """The .tflite file is truncated, corrupt or inconsistent."""


class UnsupportedModelError(TinyRTError):
    """The model is valid but uses an operator or type a backend cannot run."""

    def __init__(self, message: str, op_index: int | None = None, op_name: str | None = None):
        super().__init__(message)
        self.op_index = op_index
        self.op_name = op_name


class BackendUnavailableError(TinyRTError):
    """The requested backend is not installed on this machine."""
