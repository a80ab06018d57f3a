"""CONV_2D and DEPTHWISE_CONV_2D: shapes, per-channel rescale, folded zero points."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import lib
from ..fuse import FOLDED_PAD
from ..quant import activation_range, f32, quantize_multipliers
from .common import FLOAT32, INT8, INT32, OpContext, Step, padding_same_or_valid, set_dims


def per_channel_multipliers(
    ctx: OpContext, input_scale: float, filter_scales: np.ndarray, output_scale: float, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """TFLite PopulateConvolutionQuantizationParams: double(in) * double(w) / double(out)."""
    if filter_scales.size not in (1, channels):
        raise ctx.unsupported(f"weights have {filter_scales.size} scales for {channels} output channels")
    scales = np.broadcast_to(filter_scales.astype(FLOAT32), (channels,)).astype(np.float64)
    in_s, out_s = f32(input_scale), f32(output_scale)
    if out_s <= 0:
        raise ctx.unsupported(f"output scale {out_s} must be positive")
    # Same operation order as TFLite, element-wise in float64.
    return quantize_multipliers(in_s * scales / out_s)


def _weights_and_bias(ctx: OpContext, channels: int, channel_axis: int) -> tuple[np.ndarray, np.ndarray | None]:
    weights = ctx.req_input(1)
    ctx.expect_dtype(weights, INT8, what="weights")
    if weights.data is None:
        raise ctx.unsupported("weights must be a constant tensor")
    if weights.quant is None:
        raise ctx.unsupported("weights have no quantization parameters")
    if np.any(weights.quant.zero_point != 0):
        raise ctx.unsupported("int8 weights must be symmetric (zero point 0)")
    if weights.quant.per_channel and weights.quant.axis != channel_axis:
        raise ctx.unsupported(f"weights are quantized along axis {weights.quant.axis}, expected {channel_axis}")
    bias = ctx.input(2, optional=True)
    bias_data = None
    if bias is not None:
        ctx.expect_dtype(bias, INT32, what="bias")
        if bias.data is None:
            raise ctx.unsupported("bias must be a constant tensor")
        if bias.size != channels:
            raise ctx.unsupported(f"bias has {bias.size} values for {channels} output channels")
        bias_data = bias.data.reshape(-1).astype(np.int64)
    return weights.data, bias_data


def host_simd() -> bool:
    """Whether this machine's kernels read the int16 GEMM panels (the x86
    tables do, the VNNI ones where their own layout does not apply; the NEON
    tables read the int8 weights directly, so Pis skip the copy)."""
    return lib.trt_isa_best() in (
        lib.TRT_ISA_AMX, lib.TRT_ISA_AVX512_VNNI, lib.TRT_ISA_AVX_VNNI, lib.TRT_ISA_AVX2, lib.TRT_ISA_SSE41
    )


def host_vnni() -> bool:
    """Whether this machine has a VNNI table (or the AMX one over it), which reads the packed_k4 layout."""
    return lib.trt_isa_best() in (lib.TRT_ISA_AMX, lib.TRT_ISA_AVX512_VNNI, lib.TRT_ISA_AVX_VNNI)


def rescale_k4_table(mult: np.ndarray, shift: np.ndarray, out_zp: int) -> np.ndarray | None:
    """tinyrt.h rescale_k4: the AVX-512 VNNI kernels' requantisation constants
    per 16-channel block, or None when a shift is outside [-23, -1] (the
    kernels then make them at run time)."""
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if shift.size == 0 or shift.min() < -23 or shift.max() > -1:
        return None
    pad = (-mult.size) % 16
    m = np.pad(mult, (0, pad))  # padding channels: multiplier 0, shift -1 (never stored)
    e = np.pad(-shift, (0, pad), constant_values=1)
    s = 31 + e
    k = (1 << 30) + np.left_shift(np.int64(1), 30 + e) + np.int64(out_zp) * np.left_shift(np.int64(1), s)
    blocks = m.size // 16
    table = np.empty((blocks, 6, 8), dtype=np.int64)
    table[:, 0] = m.astype(np.int32).view(np.int64).reshape(blocks, 8)  # the 16 int32 multipliers
    table[:, 1] = m.reshape(blocks, 8, 2)[:, :, 1]
    table[:, 2] = k.reshape(blocks, 8, 2)[:, :, 0]
    table[:, 3] = k.reshape(blocks, 8, 2)[:, :, 1]
    table[:, 4] = s.reshape(blocks, 8, 2)[:, :, 0]
    table[:, 5] = s.reshape(blocks, 8, 2)[:, :, 1]
    return table.reshape(-1)


def set_rescale_k4(ctx: OpContext, p: Any, mult: np.ndarray, shift: np.ndarray, out_zp: int) -> None:
    table = rescale_k4_table(mult, shift, out_zp)
    if table is not None:
        p.rescale_k4 = ctx.c_array(table, "const int64_t *")


def pack_k4_weights(w: np.ndarray) -> np.ndarray:
    """[N][K] int8 -> int8 [ceil(N/16)][ceil(K/4)][16][4], zero padded (tinyrt.h packed_k4)."""
    return _panels(w, 4, np.int8)


def set_k4_layout(ctx: OpContext, p: Any, w: np.ndarray, bias_folded: np.ndarray, pad: int) -> None:
    """The VNNI kernels' weights and bias on a CONV_2D or FULLY_CONNECTED struct:
    bias_folded - 128 * the weight sums, as they feed the inputs as x + 128.
    Left NULL (the other kernels run) in the unlikely case that overflows int32."""
    w2 = w.reshape(w.shape[0], -1)
    shifted = bias_folded.astype(np.int64) - 128 * w2.astype(np.int64).sum(axis=1)
    if shifted.size and (shifted.max() > 0x7FFFFFFF or shifted.min() < -0x80000000):
        return
    p.packed_k4 = ctx.c_array(pack_k4_weights(w2), "const int8_t *")
    p.bias_k4 = ctx.c_array(np.pad(shifted.astype(INT32), (0, pad)), "const int32_t *")


def _panels(w: np.ndarray, group: int, dtype: type) -> np.ndarray:
    """[N][K] -> [ceil(N/16)][ceil(K/group)][16][group]: sixteen output
    channels side by side, `group` consecutive k each, zero padded."""
    n, k = w.shape
    nb, kg = -(-n // 16), -(-k // group)
    padded = np.zeros((nb * 16, kg * group), dtype=dtype)
    padded[:n, :k] = w
    return np.ascontiguousarray(padded.reshape(nb, 16, kg, group).transpose(0, 2, 1, 3))


def pack_gemm_weights(w: np.ndarray) -> np.ndarray:
    """[N][K] int8 -> int16 [ceil(N/16)][ceil(K/2)][16][2], zero padded."""
    return _panels(w, 2, np.int16)


def _check_int32(ctx: OpContext, values: np.ndarray, what: str) -> np.ndarray:
    if values.size and (values.max() > 0x7FFFFFFF or values.min() < -0x80000000):
        raise ctx.unsupported(f"{what} overflows int32")
    return values.astype(INT32)


def _geometry(ctx: OpContext, in_shape, kh: int, kw: int, out_shape) -> dict[str, int]:
    o = ctx.options
    stride_h, stride_w = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    dil_h, dil_w = int(o.get("dilation_h_factor", 1) or 1), int(o.get("dilation_w_factor", 1) or 1)
    padding = int(o.get("padding", 0))
    # PADs folded into this (VALID) convolution by runtime/fuse.py: windows
    # over the padded size, whose padding taps the kernels read as the zero
    # point, as they do any tap outside the image.
    top, bottom, left, right = o.get(FOLDED_PAD, (0, 0, 0, 0))
    oh, pad_top = padding_same_or_valid(ctx, padding, in_shape[1] + top + bottom, kh, stride_h, dil_h)
    ow, pad_left = padding_same_or_valid(ctx, padding, in_shape[2] + left + right, kw, stride_w, dil_w)
    pad_top, pad_left = pad_top + top, pad_left + left
    if (out_shape[1], out_shape[2]) != (oh, ow):
        raise ctx.unsupported(
            f"output spatial size {out_shape[1]}x{out_shape[2]} disagrees with the computed {oh}x{ow}"
        )
    return {
        "stride_h": stride_h,
        "stride_w": stride_w,
        "dilation_h": dil_h,
        "dilation_w": dil_w,
        "pad_top": pad_top,
        "pad_left": pad_left,
    }


def _io(ctx: OpContext):
    x = ctx.req_input(0)
    y = ctx.output()
    ctx.expect_dtype(x, INT8, what="input")
    ctx.expect_dtype(y, INT8, what="output")
    ctx.expect_rank(x, 4, "input")
    ctx.expect_rank(y, 4, "output")
    if x.shape[0] != y.shape[0]:
        raise ctx.unsupported("input and output batch sizes differ")
    in_s, in_zp = ctx.scale_zp(x, "input")
    out_s, out_zp = ctx.scale_zp(y, "output")
    return x, y, in_s, in_zp, out_s, out_zp


def build_conv2d(ctx: OpContext) -> Step:
    x, y, in_s, in_zp, out_s, out_zp = _io(ctx)
    out_c = y.shape[3]
    w, bias = _weights_and_bias(ctx, out_c, 0)
    if w.ndim != 4 or w.shape[0] != out_c:
        raise ctx.unsupported(f"weights shape {list(w.shape)} does not match {out_c} output channels")
    _, kh, kw, fc = w.shape
    in_c = x.shape[3]
    if fc <= 0 or in_c % fc or out_c % (in_c // fc):
        raise ctx.unsupported(f"input channels {in_c} and filter depth {fc} do not form whole groups")
    return _conv_step(ctx, w, bias)


def _conv_step(ctx: OpContext, w: np.ndarray, bias: np.ndarray | None) -> Step:
    """A CONV_2D step for weights [C_out][KH][KW][C_in / groups] (checked)."""
    x, y, in_s, in_zp, out_s, out_zp = _io(ctx)
    out_c = y.shape[3]
    _, kh, kw, fc = w.shape
    in_c = x.shape[3]
    geo = _geometry(ctx, x.shape, kh, kw, y.shape)
    mult, shift = per_channel_multipliers(ctx, in_s, ctx.req_input(1).quant.scale, out_s, out_c)
    act_min, act_max = activation_range(int(ctx.options.get("fused_activation_function", 0)), out_s, out_zp)

    bias_raw = bias if bias is not None else np.zeros(out_c, dtype=np.int64)
    bias_folded = bias_raw + (-in_zp) * w.astype(np.int64).reshape(out_c, -1).sum(axis=1)

    p = ctx.new("trt_conv2d_params *")
    set_dims(p.input, x.shape)
    set_dims(p.filter, w.shape)
    set_dims(p.output, y.shape)
    for key, value in geo.items():
        setattr(p, key, value)
    p.input_offset = -in_zp
    p.output_offset = out_zp
    p.act_min, p.act_max = act_min, act_max
    p.weights = ctx.c_array(w, "const int8_t *")
    p.bias = ctx.c_array(_check_int32(ctx, bias_raw, "bias"), "const int32_t *") if bias is not None else ctx.NULL
    p.bias_folded = ctx.c_array(_check_int32(ctx, bias_folded, "bias plus zero-point term"), "const int32_t *")
    p.multiplier = ctx.c_array(mult, "const int32_t *")
    p.shift = ctx.c_array(shift, "const int32_t *")
    p.im2col = 1  # the planner switches to 0 where the patches would raise the peak
    if in_c == fc and ctx.host_layouts and host_simd():
        # The SIMD GEMM's layout (see trt_conv2d_params.packed_weights); its
        # per-channel arrays are read sixteen at a time, so pad them.
        p.packed_weights = ctx.c_array(pack_gemm_weights(w.reshape(out_c, -1)), "const int16_t *")
        pad = (-out_c) % 16
        p.bias_folded = ctx.c_array(np.pad(_check_int32(ctx, bias_folded, "bias"), (0, pad)), "const int32_t *")
        p.multiplier = ctx.c_array(np.pad(mult, (0, pad)), "const int32_t *")
        p.shift = ctx.c_array(np.pad(shift, (0, pad)), "const int32_t *")
        if host_vnni():
            # Kernel rows of whole 4-byte groups (tinyrt.h k4_channels): a
            # 3-channel image's taps get a fourth, zero-weighted channel.
            c4 = fc if (kw * fc) % 4 == 0 or (kh == kw == 1) else -(-fc // 4) * 4
            w4 = np.pad(w, ((0, 0), (0, 0), (0, 0), (0, c4 - fc)))
            set_k4_layout(ctx, p, w4, bias_folded, pad)
            p.k4_channels = c4
            set_rescale_k4(ctx, p, mult, shift, out_zp)
    macs = int(np.prod(y.shape)) * kh * kw * fc
    return ctx.finish(
        Step(
            kind=lib.TRT_OP_CONV2D,
            params=p,
            inputs=[x.index],
            output=y.index,
            scratch_bytes=int(lib.trt_conv2d_s8_scratch_size(p)),
            macs=macs,
            weight_bytes=w.nbytes + out_c * 4,
        )
    )


def build_depthwise_conv2d(ctx: OpContext) -> Step:
    x, y, in_s, in_zp, out_s, out_zp = _io(ctx)
    out_c = y.shape[3]
    in_c = x.shape[3]
    w, bias = _weights_and_bias(ctx, out_c, 3)
    if w.ndim != 4 or w.shape[0] != 1 or w.shape[3] != out_c:
        raise ctx.unsupported(f"depthwise weights shape {list(w.shape)} must be [1, KH, KW, {out_c}]")
    if in_c <= 0 or out_c % in_c:
        raise ctx.unsupported(f"output channels {out_c} are not a multiple of input channels {in_c}")
    _, kh, kw, _ = w.shape
    if out_c != in_c:
        # A depth multiplier M > 1 is a grouped convolution: group ic turns
        # input channel ic into output channels ic*M .. ic*M + M - 1, in the
        # same channel order.  As such it runs on the convolution's GEMM
        # (one input channel: an ordinary convolution), not per element.
        return _conv_step(ctx, np.ascontiguousarray(w.transpose(3, 1, 2, 0)), bias)
    geo = _geometry(ctx, x.shape, kh, kw, y.shape)
    mult, shift = per_channel_multipliers(ctx, in_s, ctx.req_input(1).quant.scale, out_s, out_c)
    act_min, act_max = activation_range(int(ctx.options.get("fused_activation_function", 0)), out_s, out_zp)

    p = ctx.new("trt_depthwise_conv2d_params *")
    set_dims(p.input, x.shape)
    set_dims(p.filter, w.shape)
    set_dims(p.output, y.shape)
    p.depth_multiplier = out_c // in_c
    for key, value in geo.items():
        setattr(p, key, value)
    p.input_offset = -in_zp
    p.output_offset = out_zp
    p.act_min, p.act_max = act_min, act_max
    p.weights = ctx.c_array(w, "const int8_t *")
    bias_raw = bias if bias is not None else np.zeros(out_c, dtype=np.int64)
    bias_folded = bias_raw + (-in_zp) * w.astype(np.int64).reshape(-1, out_c).sum(axis=0)
    p.bias_folded = ctx.c_array(_check_int32(ctx, bias_folded, "bias plus zero-point term"), "const int32_t *")
    p.multiplier = ctx.c_array(mult, "const int32_t *")
    p.shift = ctx.c_array(shift, "const int32_t *")
    if ctx.host_layouts and host_vnni() and kw <= 4 and kh <= 4:
        _set_depthwise_k4_layout(ctx, p, w.reshape(kh, kw, out_c), bias_folded, mult, shift)
    macs = int(np.prod(y.shape)) * kh * kw
    return ctx.finish(
        Step(
            kind=lib.TRT_OP_DEPTHWISE_CONV2D,
            params=p,
            inputs=[x.index],
            output=y.index,
            scratch_bytes=int(lib.trt_depthwise_conv2d_s8_scratch_size(p)),
            macs=macs,
            weight_bytes=w.nbytes + out_c * 4,
        )
    )


def _set_depthwise_k4_layout(
    ctx: OpContext, p: Any, w: np.ndarray, bias_folded: np.ndarray, mult: np.ndarray, shift: np.ndarray
) -> None:
    """The VNNI depthwise kernel's operands (tinyrt.h: packed_k4, bias_k4): w [KH][KW][C] as
    [KH][C padded to 16][4] with kx in the bytes, the bias shifted for inputs fed as x + 128,
    and the per-channel arrays padded to sixteen."""
    kh, kw, c = w.shape
    shifted = bias_folded.astype(np.int64) - 128 * w.astype(np.int64).sum(axis=(0, 1))
    if shifted.size and (shifted.max() > 0x7FFFFFFF or shifted.min() < -0x80000000):
        return
    pad = (-c) % 16
    packed = np.zeros((kh, c + pad, 4), dtype=np.int8)
    packed[:, :c, :kw] = w.transpose(0, 2, 1)
    p.packed_k4 = ctx.c_array(packed, "const int8_t *")
    p.bias_k4 = ctx.c_array(np.pad(shifted.astype(INT32), (0, pad)), "const int32_t *")
    p.multiplier = ctx.c_array(np.pad(mult, (0, pad)), "const int32_t *")
    p.shift = ctx.c_array(np.pad(shift, (0, pad)), "const int32_t *")
    set_rescale_k4(ctx, p, mult, shift, int(p.output_offset))
