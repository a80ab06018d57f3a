/*
 * tinyrt.h - the one public header of tinyrt's int8 kernels.
 *
 * Conventions (CMSIS-NN style):
 *   - Tensors are NHWC, int8 unless a name says otherwise.
 *   - Every buffer is owned by the caller; no kernel allocates.
 *   - Each kernel takes one const parameter struct holding its shapes, its
 *     quantization constants and pointers to its constant data (weights,
 *     biases, per-channel multipliers).  The structs are plain data so that a
 *     code generator can emit them as `const` initialisers that live in flash.
 *   - The arithmetic reproduces TensorFlow Lite's reference int8 kernels bit
 *     for bit.  The Python planner computes every multiplier and shift.
 *
 * This file is also fed to cffi's cdef (the build strips preprocessor lines),
 * so it holds only plain typedefs, enums and prototypes.
 */
#ifndef TINYRT_H
#define TINYRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ shapes */

typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} trt_dims;

/* -------------------------------------------------------------- conv 2d --- */

typedef struct {
    trt_dims input;          /* N, H, W, C_in                                 */
    trt_dims filter;         /* C_out, KH, KW, C_in / groups                  */
    trt_dims output;         /* N, OH, OW, C_out                              */
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t input_offset;    /* minus the input zero point                    */
    int32_t output_offset;   /* the output zero point                         */
    int32_t act_min;
    int32_t act_max;
    const int8_t *weights;   /* [C_out][KH][KW][C_in/groups]                  */
    const int32_t *bias;     /* [C_out], may be NULL                          */
    /* Per output channel: the bias plus input_offset times the sum of that
     * channel's weights (the zero-point term, folded at plan time). */
    const int32_t *bias_folded;
    const int32_t *multiplier; /* [C_out] Q31                                */
    const int32_t *shift;      /* [C_out] >0 left, <0 right                  */
    /* 1: gather receptive fields into scratch patches (faster);
     * 0: read the input directly (no scratch). */
    int32_t im2col;
    /* Optional (NULL on microcontrollers): the weights again as int16 for
     * the SIMD GEMM, [ceil(C_out/16)][ceil(K/2)][16][2] with K = KH*KW*C_in,
     * element [b][i][l][j] = weight[16b + l][2i + j], zero padded.  When
     * set, bias_folded, multiplier and shift hold a multiple of 16 entries. */
    const int16_t *packed_weights;
    /* Optional (NULL on microcontrollers): the weights for the x86 VNNI
     * GEMMs, int8 [ceil(C_out/16)][ceil(K/4)][16][4], element [b][i][l][j] =
     * weight[16b + l][4i + j], zero padded; and per output channel
     * bias_folded - 128 * sum(weights), because vpdpbusd multiplies unsigned
     * bytes by signed ones and the inputs are fed to it as x + 128.  When
     * set, bias_k4, multiplier and shift hold a multiple of 16 entries.
     * k4_channels: the channels per tap in packed_k4: C_in, or C_in
     * rounded up to 4 with zero weights (K = KH*KW*k4_channels then), so that
     * a kernel row of a 3-channel image is whole 4-byte groups. */
    const int8_t *packed_k4;
    const int32_t *bias_k4;
    int32_t k4_channels;
    /* Optional (NULL on microcontrollers, and where a channel's shift is
     * not in [-23, -1]): the requantisation constants of the VNNI
     * kernels, made at plan time.  Per 16-channel block, 48 int64 (six
     * 64-byte vectors): the 16 int32 multipliers; then for the 8 odd
     * channels their multipliers, and for the 8 even and the 8 odd channels
     * 2^30 + 2^(30+e) + output_offset * 2^(31+e) and 31 + e, e = -shift
     * (csrc/trt_avx512_rescale.h says why). */
    const int64_t *rescale_k4;
} trt_conv2d_params;

/* scratch: trt_conv2d_s8_scratch_size() bytes (im2col patches, or none) */
size_t trt_conv2d_s8_scratch_size(const trt_conv2d_params *p);
void trt_conv2d_s8(const trt_conv2d_params *p, const int8_t *input,
                   int8_t *output, void *scratch);
/* Output pixels [begin, end) (over batch and space) only, with patches on
 * the stack; returns 0 when this convolution cannot be split that way. */
int32_t trt_conv2d_s8_pixels(const trt_conv2d_params *p, const int8_t *input,
                             int8_t *output, int32_t begin, int32_t end);

/* ----------------------------------------------------- depthwise conv 2d --- */

typedef struct {
    trt_dims input;          /* N, H, W, C_in                                 */
    trt_dims filter;         /* 1, KH, KW, C_out                              */
    trt_dims output;         /* N, OH, OW, C_out = C_in * depth_multiplier    */
    int32_t depth_multiplier;
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    const int8_t *weights;   /* [KH][KW][C_out]                               */
    /* Per output channel: bias + input_offset * the sum of its KH*KW
     * weights (the zero-point term, folded at plan time). */
    const int32_t *bias_folded;
    const int32_t *multiplier;
    const int32_t *shift;
    /* In place: input and output are the same buffer (depth multiplier 1);
     * channel_block channels are computed at a time into the scratch. */
    int32_t in_place;
    int32_t channel_block;
    /* Optional (NULL on microcontrollers): for the x86 VNNI kernels (depth
     * multiplier 1, KW <= 4, KH <= 4), the weights as int8
     * [KH][ceil(C/16) * 16][4], element [ky][c][kx] = weight[ky][kx][c]
     * (0 for kx >= KW or c >= C), and per channel bias_folded - 128 * the
     * sum of its weights, padded to a multiple of 16. */
    const int8_t *packed_k4;
    const int32_t *bias_k4;
    const int64_t *rescale_k4; /* as trt_conv2d_params.rescale_k4 */
} trt_depthwise_conv2d_params;

/* scratch: trt_depthwise_conv2d_s8_scratch_size() bytes (0 unless in place) */
size_t trt_depthwise_conv2d_s8_scratch_size(
    const trt_depthwise_conv2d_params *p);
void trt_depthwise_conv2d_s8(const trt_depthwise_conv2d_params *p,
                             const int8_t *input, int8_t *output,
                             void *scratch);
/* 1 when the active kernel table runs p in place without channel blocks
 * (as fast as not in place, whatever channel_block is); 0 when in place
 * means the channel-block path, whose small blocks are slow on SIMD tables. */
int32_t trt_depthwise_conv2d_s8_in_place_native(
    const trt_depthwise_conv2d_params *p);
/* Output pixels [begin, end) only (not in place); returns 0 if in place. */
int32_t trt_depthwise_conv2d_s8_pixels(const trt_depthwise_conv2d_params *p,
                                       const int8_t *input, int8_t *output,
                                       int32_t begin, int32_t end);

/* -------------------------------------------------------- fully connected --- */

typedef struct {
    int32_t batches;         /* rows of the input                             */
    int32_t in_features;     /* K                                             */
    int32_t out_features;    /* N                                             */
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    const int8_t *weights;   /* [N][K]                                        */
    /* bias + input_offset * sum_k weights[n][k], per output feature          */
    const int32_t *bias_folded;
    /* Requantisation.  TFLite's reference FULLY_CONNECTED rescales in double
     * precision: round_half_away(acc * scale[n]).  When `scale` is NULL the
     * fixed-point path (multiplier/shift, as TFLite Micro and CMSIS-NN do) is
     * used instead. */
    const double *scale;     /* [N] or NULL                                   */
    const int32_t *multiplier; /* [N], used when scale is NULL               */
    const int32_t *shift;
    /* Optional (NULL on microcontrollers): the weights as int16 panels for
     * the SIMD GEMM, laid out as trt_conv2d_params.packed_weights with
     * K = in_features; the per-feature arrays then hold a multiple of 16. */
    const int16_t *packed_weights;
    /* Optional (NULL on microcontrollers): the VNNI layout and bias of
     * trt_conv2d_params.packed_k4 / bias_k4 with K = in_features. */
    const int8_t *packed_k4;
    const int32_t *bias_k4;
    /* as trt_conv2d_params.rescale_k4, for the fixed-point path (scale NULL) */
    const int64_t *rescale_k4;
} trt_fully_connected_params;

void trt_fully_connected_s8(const trt_fully_connected_params *p,
                            const int8_t *input, int8_t *output);
/* Output features [begin, end) only; begin a multiple of 16. */
void trt_fully_connected_s8_features(const trt_fully_connected_params *p,
                                     const int8_t *input, int8_t *output,
                                     int32_t begin, int32_t end);

/* ---------------------------------------------------------- sparse weights --- */

/* Pruned weights, packed at plan time so that zero weights cost nothing.
 *
 * The matrix has `rows` output channels of `cols` inputs each (FULLY_CONNECTED:
 * [N][K]; CONV_2D: [C_out][KH*KW*C_in], a row over the receptive field in the
 * dense kernel's patch order).  Rows are cut into strips of `block` rows; a
 * strip keeps a list of blocks, each one column and `block` consecutive rows
 * (block 1: unstructured, one weight per entry; 4 or 8: the Bx1 blocks that
 * pruning with --block 4x1 / 8x1 leaves, one index per B weights).
 *
 *   strip_ptr[s] .. strip_ptr[s + 1]   the blocks of strip s (an even count:
 *                                      an odd strip ends with a block of zeros)
 *   index[j]                           the column of block j (uint16: cols <= 65535)
 *   values                             B weights per block, two blocks at a time
 *                                      interleaved: block j, row r is at
 *                                      values[(j & ~1) * B + 2 * r + (j & 1)]
 *
 * The interleave puts the two weights one row multiplies in a pair of blocks
 * next to each other, which is the operand order of a 2-way int16 multiply-add
 * (vpmaddwd, SMLAD); block 1 reduces to values[j].  Rows past `rows` in the
 * last strip hold zeros.  Zero weights of a kept block are stored as zeros, so
 * the sum of kept weights equals the dense sum and the folded zero-point term
 * (bias_folded) is the dense one: results are bit-exact with the dense kernels. */
typedef struct {
    int32_t rows;
    int32_t cols;
    int32_t block;                /* rows per block: 1, 4 or 8                 */
    const int32_t *strip_ptr;     /* [ceil(rows / block) + 1]                  */
    const uint16_t *index;        /* [strip_ptr[strips]]                       */
    const int8_t *values;         /* [strip_ptr[strips] * block]               */
} trt_sparse_matrix;

/* FULLY_CONNECTED with sparse weights; everything else as
 * trt_fully_connected_params (same rescale: `scale` in double, or
 * multiplier/shift when it is NULL). */
typedef struct {
    int32_t batches;
    int32_t in_features;
    int32_t out_features;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    trt_sparse_matrix weights;   /* rows = out_features, cols = in_features  */
    const int32_t *bias_folded;  /* bias + input_offset * sum of kept weights */
    const double *scale;
    const int32_t *multiplier;
    const int32_t *shift;
} trt_sparse_fully_connected_params;

void trt_sparse_fully_connected_s8(const trt_sparse_fully_connected_params *p,
                                   const int8_t *input, int8_t *output);

/* CONV_2D (one group) with sparse weights; geometry and quantisation as
 * trt_conv2d_params. */
typedef struct {
    trt_dims input;              /* N, H, W, C_in                             */
    trt_dims filter;             /* C_out, KH, KW, C_in                       */
    trt_dims output;             /* N, OH, OW, C_out                          */
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t input_offset;
    int32_t output_offset;
    int32_t act_min;
    int32_t act_max;
    trt_sparse_matrix weights;   /* rows = C_out, cols = KH * KW * C_in      */
    const int32_t *bias_folded;  /* bias + input_offset * sum of kept weights */
    const int32_t *multiplier;
    const int32_t *shift;
    /* Pixels per SIMD tile, 16 or 32: the tile is transposed in scratch to
     * one int16 row per input with the pixels side by side (the scratch size
     * includes it); 0: pixel by pixel, reading the input in place, no
     * scratch.  The planner sets a tile only for instruction sets with tile
     * kernels; without one a tile plan runs pixel by pixel. */
    int32_t tile;
} trt_sparse_conv2d_params;

size_t trt_sparse_conv2d_s8_scratch_size(const trt_sparse_conv2d_params *p);
void trt_sparse_conv2d_s8(const trt_sparse_conv2d_params *p,
                          const int8_t *input, int8_t *output, void *scratch);

/* ----------------------------------------------------------------- pooling --- */

typedef struct {
    trt_dims input;
    trt_dims output;
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t act_min;
    int32_t act_max;
} trt_pool_params;

void trt_avg_pool_s8(const trt_pool_params *p, const int8_t *input,
                     int8_t *output);
void trt_max_pool_s8(const trt_pool_params *p, const int8_t *input,
                     int8_t *output);

/* ---------------------------------------------------- broadcasting binary --- */

/* Both inputs are broadcast to the 4-D output shape: a stride of 0 in
 * in1_strides / in2_strides repeats the element along that axis. */
typedef struct {
    int32_t out_shape[4];
    int32_t in1_strides[4];
    int32_t in2_strides[4];
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t left_shift;          /* ADD only                                  */
    int32_t input1_multiplier;   /* ADD only                                  */
    int32_t input1_shift;
    int32_t input2_multiplier;   /* ADD only                                  */
    int32_t input2_shift;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} trt_binary_params;

void trt_add_s8(const trt_binary_params *p, const int8_t *input1,
                const int8_t *input2, int8_t *output);
void trt_mul_s8(const trt_binary_params *p, const int8_t *input1,
                const int8_t *input2, int8_t *output);

/* ------------------------------------------------------------ activations --- */

typedef struct {
    int32_t outer;           /* number of rows                                */
    int32_t depth;           /* length of a row (softmax axis)                */
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} trt_softmax_params;

void trt_softmax_s8(const trt_softmax_params *p, const int8_t *input,
                    int8_t *output);

/* Point-wise int8 -> int8 functions (LOGISTIC, TANH, the RELU family) run
 * as a 256-entry table that the planner fills with TFLite's arithmetic. */
typedef struct {
    int32_t size;            /* number of elements                            */
    const int8_t *table;     /* 256 entries, indexed by (uint8_t)(x + 128)    */
} trt_lut_params;

void trt_lut_s8(const trt_lut_params *p, const int8_t *input, int8_t *output);

/* ---------------------------------------- point-wise scalar functions --- */

/* One table entry each: the planner evaluates these for all 256 int8 inputs
 * to fill a trt_lut_params table, so they only need to be exact. */

/* LOGISTIC and TANH: TFLite's reference kernels build their int8 table in
 * single-precision float (dequantize, expf or tanhf, divide by the output
 * scale, round half away from zero, add the zero point, clamp). */
typedef struct {
    float input_scale;
    int32_t input_zero_point;
    float output_scale;
    int32_t output_zero_point;
} trt_float_lut_params;

int8_t trt_logistic_s8_scalar(const trt_float_lut_params *p, int8_t x);
int8_t trt_tanh_s8_scalar(const trt_float_lut_params *p, int8_t x);

/* RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1 (TFLite's ReluX): rescale
 * x - input_zero_point by input_scale / output_scale, add the output zero
 * point, clamp to [act_min, act_max]. */
typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;          /* Q31                                      */
    int32_t shift;               /* >0 left, <0 right                        */
    int32_t act_min;
    int32_t act_max;
} trt_relu_params;

int8_t trt_relu_s8_scalar(const trt_relu_params *p, int8_t x);

/* LEAKY_RELU: x - input_zero_point rescaled by input_scale / output_scale
 * when >= 0, else by alpha * input_scale / output_scale. */
typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t identity_multiplier;
    int32_t identity_shift;
    int32_t alpha_multiplier;    /* negative when alpha is                   */
    int32_t alpha_shift;
} trt_leaky_relu_params;

int8_t trt_leaky_relu_s8_scalar(const trt_leaky_relu_params *p, int8_t x);

/* HARD_SWISH: TFLite's int16 fixed-point recipe (Q15 multipliers). */
typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int16_t output_multiplier;   /* (input_scale / 128) / output_scale       */
    int16_t reluish_multiplier;  /* (input_scale / 128) / (3 / 32768)        */
    int32_t output_exponent;     /* <= 0                                     */
    int32_t reluish_exponent;
} trt_hard_swish_params;

int8_t trt_hard_swish_s8_scalar(const trt_hard_swish_params *p, int8_t x);

/* ------------------------------------------------------------------- shape --- */

typedef struct {
    int32_t in_shape[4];
    int32_t pad_before[4];
    int32_t pad_after[4];
    int8_t pad_value;
} trt_pad_params;

void trt_pad_s8(const trt_pad_params *p, const int8_t *input, int8_t *output);

/* Concatenation of inputs with identical quantisation along one axis:
 * outer * (sum of axis_bytes) bytes out, input i contributes axis_bytes[i]
 * contiguous bytes per outer step. */
typedef struct {
    int32_t num_inputs;
    int32_t outer;
    const int32_t *axis_bytes;   /* [num_inputs]                              */
} trt_concat_params;

void trt_concat_s8(const trt_concat_params *p, const int8_t *const *inputs,
                   int8_t *output);

/* ------------------------------------------------------------------ reduce --- */

enum { TRT_MEAN_MAX_DIMS = 8 };

/* MEAN over any axes.  The planner splits the input's axes into the kept
 * ones (outer loops, output order) and the reduced ones (inner loops), with
 * neighbours of the same kind merged; strides are in input elements. */
typedef struct {
    int32_t outputs;             /* product of kept_shape                     */
    int32_t count;               /* product of reduced_shape                  */
    int32_t num_kept;
    int32_t kept_shape[TRT_MEAN_MAX_DIMS];
    int32_t kept_stride[TRT_MEAN_MAX_DIMS];
    int32_t num_reduced;
    int32_t reduced_shape[TRT_MEAN_MAX_DIMS];
    int32_t reduced_stride[TRT_MEAN_MAX_DIMS];
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier;          /* in_scale / out_scale / count, Q31         */
    int32_t shift;
} trt_mean_params;

void trt_mean_s8(const trt_mean_params *p, const int8_t *input,
                 int8_t *output);

/* ------------------------------------------------ quantize / dequantize --- */

typedef struct {
    int32_t size;
    float scale;                 /* QUANTIZE from float: real / scale        */
    int32_t zero_point;          /* output zero point                        */
    int32_t qmin;
    int32_t qmax;
    int32_t input_zero_point;    /* requantize int8/uint8 -> int8/uint8      */
    int32_t multiplier;
    int32_t shift;
} trt_quantize_params;

void trt_quantize_f32_s8(const trt_quantize_params *p, const float *input,
                         int8_t *output);
void trt_quantize_f32_u8(const trt_quantize_params *p, const float *input,
                         uint8_t *output);
/* in_signed / out_signed: 1 for int8, 0 for uint8 */
void trt_requantize_8(const trt_quantize_params *p, const void *input,
                      int32_t in_signed, void *output, int32_t out_signed);

typedef struct {
    int32_t size;
    int32_t zero_point;
    double scale;
} trt_dequantize_params;

void trt_dequantize_s8_f32(const trt_dequantize_params *p, const int8_t *input,
                           float *output);
void trt_dequantize_u8_f32(const trt_dequantize_params *p,
                           const uint8_t *input, float *output);

/* ------------------------------------------------------ instruction sets --- */

/* The convolution kernels run on one table of micro-kernels per instruction
 * set; all give identical results.  The best one the CPU supports is used
 * unless another is selected (tests and benchmarks do). */
typedef enum {
    TRT_ISA_PORTABLE = 0,
    TRT_ISA_AVX2 = 2,
    TRT_ISA_NEON = 3,
    TRT_ISA_CORTEX_M_DSP = 4,
    TRT_ISA_NEON_DOTPROD = 5,    /* aarch64 NEON + ARMv8.2 SDOT             */
    TRT_ISA_SSE41 = 6,           /* x86-64 SSE4.1, for CPUs without AVX2    */
    TRT_ISA_AVX512_VNNI = 7,     /* x86-64 AVX-512 (F, BW, VL) with VNNI    */
    TRT_ISA_AVX_VNNI = 8,        /* x86-64 AVX2 with AVX-VNNI (256-bit)     */
    TRT_ISA_AMX = 9              /* AVX-512 VNNI + AMX-INT8 tiles (Linux)   */
} trt_isa;

int32_t trt_isa_best(void);
/* Returns the ISA now in use: the requested one, or portable if unavailable. */
int32_t trt_isa_select(int32_t isa);
int32_t trt_isa_active(void);

/* --------------------------------------------------------------- executor --- */

typedef enum {
    TRT_OP_CONV2D = 1,
    TRT_OP_DEPTHWISE_CONV2D = 2,
    TRT_OP_FULLY_CONNECTED = 3,
    TRT_OP_AVG_POOL = 4,
    TRT_OP_MAX_POOL = 5,
    TRT_OP_ADD = 6,
    TRT_OP_MUL = 7,
    TRT_OP_SOFTMAX = 8,
    TRT_OP_LUT = 9,
    TRT_OP_PAD = 10,
    TRT_OP_CONCAT = 11,
    TRT_OP_QUANTIZE_F32_S8 = 13,
    TRT_OP_QUANTIZE_F32_U8 = 14,
    TRT_OP_REQUANTIZE = 15,
    TRT_OP_DEQUANTIZE_S8 = 16,
    TRT_OP_DEQUANTIZE_U8 = 17,
    TRT_OP_COPY = 18,
    TRT_OP_MEAN = 19,
    TRT_OP_SPARSE_FULLY_CONNECTED = 20,
    TRT_OP_SPARSE_CONV2D = 21
} trt_op_kind;

/* Where an operand lives: inside the arena at `offset`, or, when `data` is
 * not NULL, in constant memory (a constant input of ADD or CONCATENATION). */
typedef struct {
    int32_t offset;
    const void *data;
} trt_operand;

typedef struct {
    int32_t kind;                /* trt_op_kind                               */
    const void *params;          /* the kind's parameter struct              */
    int32_t num_inputs;
    const trt_operand *inputs;
    int32_t output;              /* arena offset                              */
    int32_t scratch;             /* arena offset, or -1                       */
    /* extra: TRT_OP_REQUANTIZE in_signed | out_signed << 1;
     *        TRT_OP_COPY byte count                                          */
    int32_t extra;
    /* Threads may split this step into this many parts (host builds with a
     * thread pool only; 0 or 1: run whole).  Set by the planner for large
     * CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED steps. */
    int32_t parts;
} trt_step;

typedef struct {
    int32_t num_steps;
    const trt_step *steps;
} trt_plan;

typedef enum {
    TRT_OK = 0,
    TRT_ERR_UNKNOWN_OP = 1,
    TRT_ERR_BAD_OPERANDS = 2
} trt_status;

/* Runs every step of the plan in order inside `arena`.  Returns TRT_OK, or
 * the error of the first step that could not run (its index in *failed_step
 * when failed_step is not NULL). */
int32_t trt_run_plan(const trt_plan *plan, uint8_t *arena,
                     int32_t *failed_step);

/* Part `part` of `parts` of one step (the executor's unit of work for
 * threads): an equal share of the output pixels (convolutions) or output
 * features (fully connected).  Steps that cannot be split run whole when
 * part == 0 and do nothing otherwise. */
int32_t trt_run_step_part(const trt_step *step, uint8_t *arena, int32_t part,
                          int32_t parts);

/* Host builds only (csrc/host/thread_pool.c, POSIX threads): run a plan with
 * `threads` threads, splitting the steps whose `parts` > 1. */
typedef struct trt_pool trt_pool;
trt_pool *trt_pool_create(int32_t threads);
void trt_pool_destroy(trt_pool *pool);
int32_t trt_pool_run_plan(trt_pool *pool, const trt_plan *plan,
                          uint8_t *arena, int32_t *failed_step);

/* --------------------------------------------------- serial framing (MCU) --- */

/* The framing of tinyrt's serial protocol, for the microcontroller end of
 * the cable (docs/serial-protocol.md has every byte):
 *
 *     wire  = 0x00  COBS(frame)  0x00
 *     frame = type:u8  seq:u16le  payload  crc32:u32le   (CRC over type..payload)
 *
 * serial_frame.c is portable C99: no allocation, nothing from libc but
 * memcpy/memset; every buffer belongs to the caller. */

typedef enum {
    TRT_MSG_HELLO = 1,           /* requests: bit 7 clear                     */
    TRT_MSG_INFER = 2,
    TRT_MSG_PING = 3,
    TRT_MSG_SAMPLES = 4,
    TRT_MSG_ERROR = 128,         /* replies: bit 7 set; never answered        */
    TRT_MSG_INFO = 129,
    TRT_MSG_RESULT = 130,
    TRT_MSG_PONG = 131,
    TRT_MSG_STREAM_RESULT = 132
} trt_msg_type;

/* The code byte of an ERROR message. 1..3 are frame-level (decoder) errors. */
typedef enum {
    TRT_SERIAL_OK = 0,
    TRT_SERIAL_ERR_BAD_CRC = 1,
    TRT_SERIAL_ERR_TRUNCATED = 2,
    TRT_SERIAL_ERR_TOO_LONG = 3,
    TRT_SERIAL_ERR_UNKNOWN_TYPE = 4,
    TRT_SERIAL_ERR_BAD_SIZE = 5,
    TRT_SERIAL_ERR_BAD_STATE = 6,
    TRT_SERIAL_ERR_BAD_VERSION = 7,
    TRT_SERIAL_ERR_INFER_FAILED = 8
} trt_serial_error;

typedef enum {
    TRT_FRAME_HEADER_SIZE = 3,   /* type, seq                                 */
    TRT_FRAME_OVERHEAD = 7,      /* header + CRC, in decoded bytes            */
    TRT_FRAME_NO_SEQ = 65535     /* "no sequence number"                      */
} trt_frame_constants;

typedef enum {
    TRT_FRAME_NONE = 0,          /* every byte consumed, no frame ended       */
    TRT_FRAME_READY = 1,         /* a valid frame: type, seq, payload         */
    TRT_FRAME_ERROR = 2          /* a bad frame: error, seq (unverified)      */
} trt_frame_event;

/* Receiver state.  Initialise with trt_frame_decoder_init(); the fields
 * below `event results` are valid after push() returns an event, until the
 * next call. */
typedef struct {
    uint8_t *buf;                /* caller's buffer, cap bytes                */
    size_t cap;                  /* longest decoded frame accepted            */
    size_t len;                  /* decoded bytes of the current frame        */
    uint8_t block_code;          /* COBS code of the current block, 0: none   */
    uint8_t block_left;          /* data bytes still due in that block        */
    uint8_t in_frame;            /* a non-zero byte arrived since the 0x00    */
    uint8_t overflow;            /* frame longer than cap: dropping its bytes */
    /* event results */
    uint8_t type;
    uint16_t seq;                /* TRT_FRAME_NO_SEQ when unknown             */
    int32_t error;               /* trt_serial_error                          */
    const uint8_t *payload;      /* inside buf                                */
    size_t payload_len;
} trt_frame_decoder;

/* CRC-32/ISO-HDLC (zlib's crc32): start with crc = 0; chain by passing the
 * previous result. */
uint32_t trt_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* Wire bytes of a frame with this payload, both delimiters included: the
 * out_cap that trt_frame_encode() needs. */
size_t trt_frame_encoded_size(size_t payload_len);

/* Writes one frame whose payload is a[0..a_len) followed by b[0..b_len)
 * (either may be NULL when its length is 0; two parts let a RESULT send its
 * timing word and the output tensor without copying them together).
 * Returns the bytes written, or 0 when out_cap is too small. */
size_t trt_frame_encode(uint8_t type, uint16_t seq, const uint8_t *a,
                        size_t a_len, const uint8_t *b, size_t b_len,
                        uint8_t *out, size_t out_cap);

/* buf holds one decoded frame (type..CRC): cap = TRT_FRAME_OVERHEAD + the
 * longest payload to accept. */
void trt_frame_decoder_init(trt_frame_decoder *d, uint8_t *buf, size_t cap);

/* Feeds received bytes.  Stops after the first frame that ends (returning
 * TRT_FRAME_READY or TRT_FRAME_ERROR) or when all bytes are used
 * (TRT_FRAME_NONE); *consumed says how many bytes were used, so call it
 * again with the rest.  Garbage, oversize and cut-short frames each end in
 * exactly one TRT_FRAME_ERROR and never disturb the next frame. */
int32_t trt_frame_decoder_push(trt_frame_decoder *d, const uint8_t *data,
                               size_t len, size_t *consumed);

/* Drops a half-received frame, e.g. after an inter-byte timeout of the
 * caller's choosing.  Returns TRT_FRAME_ERROR (error TRUNCATED, seq set) if
 * there was one, else TRT_FRAME_NONE. */
int32_t trt_frame_decoder_abandon(trt_frame_decoder *d);

#ifdef __cplusplus
}
#endif

#endif /* TINYRT_H */
