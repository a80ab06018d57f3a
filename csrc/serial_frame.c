/*
 * serial_frame.c - the framing of tinyrt's serial protocol, for the
 * microcontroller end of a UART / USB-CDC link.
 *
 *     wire  = 0x00  COBS(frame)  0x00
 *     frame = type:u8  seq:u16le  payload  crc32:u32le
 *
 * Portable C99 for Cortex-M and friends: no malloc, no stdio, nothing from
 * libc but memcpy/memset, no recursion, stack use of a few words.  The
 * decoder works a byte at a time, so a UART interrupt handler can feed it
 * single bytes, and never holds more than the caller's buffer.
 * runtime/serial_protocol.py is the Python twin; the tests run both on the
 * same random byte streams and require the same events.
 */
#include <string.h>

#include "tinyrt.h"

/* ------------------------------------------------------------------ CRC --- */

/* A 16-entry (64-byte) table, one lookup per nibble: a quarter of the
 * speed of a 1 KiB byte table but it fits any flash budget. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

static uint32_t crc_byte(uint32_t crc, uint8_t byte)
{
    crc ^= byte;
    crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    return crc;
}

uint32_t trt_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    /* The init/final inversions are applied here so that results chain
     * like zlib's crc32(data, crc). */
    crc = ~crc;
    for (i = 0; i < len; ++i) {
        crc = crc_byte(crc, data[i]);
    }
    return ~crc;
}

/* --------------------------------------------------------------- encoder --- */

size_t trt_frame_encoded_size(size_t payload_len)
{
    size_t n = payload_len + TRT_FRAME_OVERHEAD;
    /* COBS adds one code byte per started 254-byte run, plus 2 delimiters. */
    return n + n / 254u + 1u + 2u;
}

typedef struct {
    uint8_t *out;
    size_t pos;        /* next free byte                                   */
    size_t code_pos;   /* where the current block's code byte goes         */
    uint8_t code;      /* 1 + data bytes in the current block              */
    uint32_t crc;      /* running CRC, not yet inverted                    */
} cobs_writer;

static void cobs_put(cobs_writer *w, uint8_t byte)
{
    if (byte != 0u) {
        w->out[w->pos++] = byte;
        w->code++;
    }
    /* A zero ends the block (it is implied by the code); so does a full
     * block of 254 data bytes (code 0xFF implies no zero). */
    if (byte == 0u || w->code == 0xFFu) {
        w->out[w->code_pos] = w->code;
        w->code_pos = w->pos++;
        w->code = 1u;
    }
}

static void put_crc(cobs_writer *w, uint8_t byte)
{
    w->crc = crc_byte(w->crc, byte);
    cobs_put(w, byte);
}

size_t trt_frame_encode(uint8_t type, uint16_t seq, const uint8_t *a,
                        size_t a_len, const uint8_t *b, size_t b_len,
                        uint8_t *out, size_t out_cap)
{
    cobs_writer w;
    uint32_t crc;
    size_t i;

    if (out == NULL || (a == NULL && a_len != 0u) || (b == NULL && b_len != 0u)) {
        return 0u;
    }
    /* Checking the worst case once keeps the byte loop free of bounds tests. */
    if (a_len > (size_t)-1 / 2u || b_len > (size_t)-1 / 2u - a_len ||
        out_cap < trt_frame_encoded_size(a_len + b_len)) {
        return 0u;
    }
    out[0] = 0u;
    w.out = out;
    w.code_pos = 1u;
    w.pos = 2u;
    w.code = 1u;
    w.crc = 0xFFFFFFFFu;
    put_crc(&w, type);
    put_crc(&w, (uint8_t)(seq & 0xFFu));
    put_crc(&w, (uint8_t)(seq >> 8));
    for (i = 0; i < a_len; ++i) {
        put_crc(&w, a[i]);
    }
    for (i = 0; i < b_len; ++i) {
        put_crc(&w, b[i]);
    }
    crc = ~w.crc;
    for (i = 0; i < 4u; ++i) {
        cobs_put(&w, (uint8_t)(crc >> (8u * i)));
    }
    w.out[w.code_pos] = w.code;
    out[w.pos++] = 0u;
    return w.pos;
}

/* --------------------------------------------------------------- decoder --- */

static void decoder_clear(trt_frame_decoder *d)
{
    d->len = 0u;
    d->block_code = 0u;
    d->block_left = 0u;
    d->in_frame = 0u;
    d->overflow = 0u;
}

void trt_frame_decoder_init(trt_frame_decoder *d, uint8_t *buf, size_t cap)
{
    memset(d, 0, sizeof(*d));
    d->buf = buf;
    d->cap = cap;
    d->seq = TRT_FRAME_NO_SEQ;
}

static void append(trt_frame_decoder *d, uint8_t byte)
{
    if (d->len < d->cap) {
        d->buf[d->len++] = byte;
    } else {
        /* Keep the first cap bytes (for the seq in the ERROR) and drop the
         * rest until the delimiter: memory stays bounded by cap. */
        d->overflow = 1u;
    }
}

static uint16_t peek_seq(const trt_frame_decoder *d)
{
    if (d->len < TRT_FRAME_HEADER_SIZE) {
        return (uint16_t)TRT_FRAME_NO_SEQ;
    }
    return (uint16_t)(d->buf[1] | (uint16_t)(d->buf[2] << 8));
}

static int32_t fail(trt_frame_decoder *d, int32_t error)
{
    d->error = error;
    d->seq = peek_seq(d);
    d->type = d->len > 0u ? d->buf[0] : 0u;
    d->payload = NULL;
    d->payload_len = 0u;
    decoder_clear(d);
    return TRT_FRAME_ERROR;
}

/* The frame between two delimiters is complete: classify it, in the order
 * the protocol specifies (too long, cut short, bad CRC, good). */
static int32_t finish(trt_frame_decoder *d)
{
    size_t body;
    uint32_t want;

    if (d->overflow) {
        return fail(d, TRT_SERIAL_ERR_TOO_LONG);
    }
    if (d->block_left != 0u || d->len < (size_t)TRT_FRAME_OVERHEAD) {
        return fail(d, TRT_SERIAL_ERR_TRUNCATED);
    }
    body = d->len - 4u;
    want = (uint32_t)d->buf[body] | ((uint32_t)d->buf[body + 1u] << 8) |
           ((uint32_t)d->buf[body + 2u] << 16) |
           ((uint32_t)d->buf[body + 3u] << 24);
    if (trt_crc32(0u, d->buf, body) != want) {
        return fail(d, TRT_SERIAL_ERR_BAD_CRC);
    }
    d->error = TRT_SERIAL_OK;
    d->type = d->buf[0];
    d->seq = peek_seq(d);
    d->payload = d->buf + TRT_FRAME_HEADER_SIZE;
    d->payload_len = body - TRT_FRAME_HEADER_SIZE;
    decoder_clear(d);
    return TRT_FRAME_READY;
}

int32_t trt_frame_decoder_push(trt_frame_decoder *d, const uint8_t *data,
                               size_t len, size_t *consumed)
{
    size_t i;

    for (i = 0; i < len; ++i) {
        uint8_t byte = data[i];
        if (byte == 0u) {
            if (d->in_frame) {
                *consumed = i + 1u;
                return finish(d);
            }
            continue; /* an empty frame: idle line or back-to-back delimiters */
        }
        d->in_frame = 1u;
        if (d->overflow) {
            continue;
        }
        if (d->block_left == 0u) {
            /* A code byte.  The block before it ended with an implied zero
             * unless it was a full 0xFF block (or there was none). */
            if (d->block_code != 0u && d->block_code != 0xFFu) {
                append(d, 0u);
            }
            d->block_code = byte;
            d->block_left = (uint8_t)(byte - 1u);
        } else {
            append(d, byte);
            d->block_left--;
        }
    }
    *consumed = len;
    return TRT_FRAME_NONE;
}

int32_t trt_frame_decoder_abandon(trt_frame_decoder *d)
{
    if (!d->in_frame) {
        return TRT_FRAME_NONE;
    }
    return fail(d, TRT_SERIAL_ERR_TRUNCATED);
}
