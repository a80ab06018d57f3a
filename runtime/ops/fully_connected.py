"""FULLY_CONNECTED: flattened batches, folded zero point, TFLite's rescale."""

from __future__ import annotations

import numpy as np

from .._native import lib
from ..quant import activation_range, f32, quantize_multiplier
from .common import INT8, INT32, OpContext, Step
from .conv import host_simd, host_vnni, pack_gemm_weights, set_k4_layout, set_rescale_k4


def build_fully_connected(ctx: OpContext, fixed_point: bool = False) -> Step:
    """fixed_point=False reproduces TFLite's reference kernel (double-precision
    rescale); True reproduces TFLite Micro / CMSIS-NN (Q31 multiplier)."""
    x = ctx.req_input(0)
    w_t = ctx.req_input(1)
    y = ctx.output()
    ctx.expect_dtype(x, INT8, what="input")
    ctx.expect_dtype(w_t, INT8, what="weights")
    ctx.expect_dtype(y, INT8, what="output")
    if int(ctx.options.get("weights_format", 0)) != 0:
        raise ctx.unsupported("shuffled weight formats are not supported")
    if w_t.data is None:
        raise ctx.unsupported("weights must be a constant tensor")
    if len(w_t.shape) != 2:
        raise ctx.unsupported(f"weights must be 2-D [out, in], got {list(w_t.shape)}")
    n_out, k = w_t.shape
    if k <= 0 or x.size % k:
        raise ctx.unsupported(f"input of {x.size} elements cannot be split into rows of {k}")
    batches = x.size // k
    if y.size != batches * n_out:
        raise ctx.unsupported(f"output has {y.size} elements, expected {batches} x {n_out}")
    in_s, in_zp = ctx.scale_zp(x, "input")
    out_s, out_zp = ctx.scale_zp(y, "output")
    if w_t.quant is None:
        raise ctx.unsupported("weights have no quantization parameters")
    if np.any(w_t.quant.zero_point != 0):
        raise ctx.unsupported("int8 weights must be symmetric (zero point 0)")
    w_scales = w_t.quant.scale.astype(np.float32)
    if w_scales.size not in (1, n_out):
        raise ctx.unsupported(f"weights have {w_scales.size} scales for {n_out} outputs")
    scales = np.broadcast_to(w_scales, (n_out,))

    bias_t = ctx.input(2, optional=True)
    bias = np.zeros(n_out, dtype=np.int64)
    if bias_t is not None:
        ctx.expect_dtype(bias_t, INT32, what="bias")
        if bias_t.data is None or bias_t.size != n_out:
            raise ctx.unsupported(f"bias must be a constant of {n_out} int32 values")
        bias = bias_t.data.reshape(-1).astype(np.int64)
    w = w_t.data
    bias_folded = bias + (-in_zp) * w.astype(np.int64).sum(axis=1)
    if bias_folded.max(initial=0) > 0x7FFFFFFF or bias_folded.min(initial=0) < -0x80000000:
        raise ctx.unsupported("bias plus zero-point term overflows int32")
    act_min, act_max = activation_range(int(ctx.options.get("fused_activation_function", 0)), out_s, out_zp)

    p = ctx.new("trt_fully_connected_params *")
    p.batches, p.in_features, p.out_features = batches, k, n_out
    p.input_offset, p.output_offset = -in_zp, out_zp
    p.act_min, p.act_max = act_min, act_max
    p.weights = ctx.c_array(w, "const int8_t *")
    # With this machine's SIMD GEMM the per-feature arrays are read sixteen
    # at a time: pad them (the padding is never stored to the output).
    packed = ctx.host_layouts and host_simd()
    pad = (-n_out) % 16 if packed else 0
    if packed:
        p.packed_weights = ctx.c_array(pack_gemm_weights(w), "const int16_t *")
        if host_vnni():
            set_k4_layout(ctx, p, w, bias_folded, pad)
    p.bias_folded = ctx.c_array(np.pad(bias_folded.astype(INT32), (0, pad)), "const int32_t *")
    in_d, out_d = f32(in_s), f32(out_s)
    if fixed_point:
        mult = np.empty(n_out, dtype=INT32)
        shift = np.empty(n_out, dtype=INT32)
        for n in range(n_out):
            if w_scales.size == 1:  # GetQuantizedConvolutionMultipler: product in float
                real = float(np.float32(in_s) * np.float32(scales[n])) / out_d
            else:
                real = in_d * float(scales[n]) / out_d
            mult[n], shift[n] = quantize_multiplier(real)
        p.scale = ctx.NULL
        p.multiplier = ctx.c_array(np.pad(mult, (0, pad)), "const int32_t *")
        p.shift = ctx.c_array(np.pad(shift, (0, pad)), "const int32_t *")
        if p.packed_k4 != ctx.NULL:
            set_rescale_k4(ctx, p, mult, shift, out_zp)
    else:
        # reference_integer_ops::FullyConnected{,PerChannel}: all in double.
        eff = np.array([in_d * float(scales[n]) / out_d for n in range(n_out)], dtype=np.float64)
        p.scale = ctx.c_array(np.pad(eff, (0, pad)), "const double *")
        p.multiplier = ctx.NULL
        p.shift = ctx.NULL
    return ctx.finish(
        Step(
            kind=lib.TRT_OP_FULLY_CONNECTED,
            params=p,
            inputs=[x.index],
            output=y.index,
            macs=batches * n_out * k,
            weight_bytes=w.nbytes + n_out * 4,
        )
    )
