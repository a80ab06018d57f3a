"""Backends: `c` (tinyrt's own kernels) and `tflite` (LiteRT / tflite-runtime)."""
