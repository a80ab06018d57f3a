"""Plan-time builders, one per TFLite operator the C backend runs."""

from __future__ import annotations

from .binary import build_add, build_mul
from .common import Alias, Builder, OpContext, Step
from .conv import build_conv2d, build_depthwise_conv2d
from .convert import build_dequantize, build_quantize
from .fully_connected import build_fully_connected
from .pooling import build_avg_pool, build_max_pool
from .shape import build_concatenation, build_pad, build_reshape
from .softmax import build_softmax

BUILDERS: dict[str, Builder] = {
    "CONV_2D": build_conv2d,
    "DEPTHWISE_CONV_2D": build_depthwise_conv2d,
    "FULLY_CONNECTED": build_fully_connected,
    "AVERAGE_POOL_2D": build_avg_pool,
    "MAX_POOL_2D": build_max_pool,
    "ADD": build_add,
    "MUL": build_mul,
    "SOFTMAX": build_softmax,
    "RESHAPE": build_reshape,
    "SQUEEZE": build_reshape,
    "EXPAND_DIMS": build_reshape,
    "PAD": build_pad,
    "PADV2": build_pad,
    "CONCATENATION": build_concatenation,
    "QUANTIZE": build_quantize,
    "DEQUANTIZE": build_dequantize,
}

__all__ = ["BUILDERS", "Alias", "OpContext", "Step"]
