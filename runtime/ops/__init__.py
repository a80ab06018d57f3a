"""Plan-time builders, one per TFLite operator the C backend runs."""

from __future__ import annotations

from .activations import build_hard_swish, build_leaky_relu, build_logistic, build_relu, build_tanh
from .binary import build_add, build_mul
from .common import Alias, Builder, OpContext, Step
from .conv import build_conv2d, build_depthwise_conv2d
from .convert import build_dequantize, build_quantize
from .fully_connected import build_fully_connected
from .pooling import build_avg_pool, build_max_pool
from .reduce import build_mean
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
    "LOGISTIC": build_logistic,
    "TANH": build_tanh,
    "RELU": build_relu,
    "RELU6": build_relu,
    "RELU_N1_TO_1": build_relu,
    "RELU_0_TO_1": build_relu,
    "LEAKY_RELU": build_leaky_relu,
    "HARD_SWISH": build_hard_swish,
    "MEAN": build_mean,
}

__all__ = ["BUILDERS", "Alias", "OpContext", "Step"]
