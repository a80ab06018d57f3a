"""csrc/serial_frame.c (the MCU end) against runtime/serial_protocol.py, through cffi."""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import serial_protocol as sp
from runtime._native import ffi, lib

CSRC = Path(__file__).resolve().parent.parent / "csrc"


def c_encode(msg_type: int, seq: int, a: bytes, b: bytes = b"") -> bytes:
    cap = lib.trt_frame_encoded_size(len(a) + len(b))
    out = ffi.new("uint8_t[]", cap)
    n = lib.trt_frame_encode(msg_type, seq, a or ffi.NULL, len(a), b or ffi.NULL, len(b), out, cap)
    assert n > 0
    return bytes(ffi.buffer(out, n))


class CDecoder:
    """trt_frame_decoder driven like a firmware would: push until all bytes are used."""

    def __init__(self, cap: int):
        self.buf = ffi.new("uint8_t[]", cap)
        self.d = ffi.new("trt_frame_decoder *")
        lib.trt_frame_decoder_init(self.d, self.buf, cap)

    def _event(self, ev: int) -> sp.Event:
        d = self.d
        if ev == lib.TRT_FRAME_READY:
            return sp.Frame(d.type, d.seq, bytes(ffi.buffer(d.payload, d.payload_len)))
        assert ev == lib.TRT_FRAME_ERROR
        return sp.FrameError(sp.ErrorCode(d.error), d.seq, "")

    def feed(self, data: bytes) -> list[sp.Event]:
        events = []
        used = ffi.new("size_t *")
        src = ffi.from_buffer(data)
        pos = 0
        while pos < len(data):
            ev = lib.trt_frame_decoder_push(self.d, src + pos, len(data) - pos, used)
            assert 0 < used[0] <= len(data) - pos
            pos += used[0]
            if ev != lib.TRT_FRAME_NONE:
                events.append(self._event(ev))
        return events

    def abandon(self) -> sp.Event | None:
        ev = lib.trt_frame_decoder_abandon(self.d)
        return None if ev == lib.TRT_FRAME_NONE else self._event(ev)


def comparable(events):
    # The Python decoder adds a human-readable detail; the decision and seq must match.
    return [(e.code, e.seq) if isinstance(e, sp.FrameError) else e for e in events]


def test_crc_matches_zlib():
    data = os.urandom(3000)
    assert lib.trt_crc32(0, b"123456789", 9) == 0xCBF43926
    assert lib.trt_crc32(0, data, len(data)) == zlib.crc32(data)
    assert lib.trt_crc32(lib.trt_crc32(0, data, 1000), data[1000:], 2000) == zlib.crc32(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=1200), st.integers(0, 1200))
def test_c_encode_equals_python_encode(msg_type, seq, payload, split):
    split = min(split, len(payload))
    wire = c_encode(msg_type, seq, payload[:split], payload[split:])  # two parts, one payload
    assert wire == sp.encode_frame(msg_type, seq, payload)
    assert len(wire) <= lib.trt_frame_encoded_size(len(payload))
    assert sp.FrameDecoder().feed(wire) == [sp.Frame(msg_type, seq, payload)]


def test_encode_refuses_a_small_buffer():
    out = ffi.new("uint8_t[]", 64)
    need = lib.trt_frame_encoded_size(10)
    assert lib.trt_frame_encode(2, 0, b"x" * 10, 10, ffi.NULL, 0, out, need - 1) == 0
    assert lib.trt_frame_encode(2, 0, b"x" * 10, 10, ffi.NULL, 0, out, need) > 0
    assert lib.trt_frame_encode(2, 0, ffi.NULL, 5, ffi.NULL, 0, out, 64) == 0  # NULL with a length


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=600))
def test_python_encode_c_decode_byte_by_byte(msg_type, seq, payload):
    dec = CDecoder(sp.FRAME_OVERHEAD + len(payload))
    wire = sp.encode_frame(msg_type, seq, payload)
    events = []
    for i in range(len(wire)):  # one byte at a time, as a UART interrupt would
        events += dec.feed(wire[i : i + 1])
    assert events == [sp.Frame(msg_type, seq, payload)]


def _mutate(rng: np.random.Generator, frame: bytes) -> bytes:
    b = bytearray(frame)
    kind = rng.integers(6)
    if kind == 0 and b:  # flip bits
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # cut
        b = b[: rng.integers(len(b) + 1)]
    elif kind == 2:  # drop a byte
        del b[rng.integers(len(b))]
    elif kind == 3:  # insert random bytes
        i = rng.integers(len(b) + 1)
        b[i:i] = rng.bytes(int(rng.integers(1, 8)))
    elif kind == 4:  # duplicate a slice
        i = rng.integers(len(b))
        b[i:i] = b[i : i + rng.integers(1, 20)]
    else:  # a zero in the middle (splits the frame)
        b.insert(int(rng.integers(len(b) + 1)), 0)
    return bytes(b)


def test_differential_fuzz_c_and_python_decoders_agree():
    rng = np.random.default_rng(2024)
    for trial in range(2000):
        cap = int(rng.choice([7, 8, 16, 64, 300, 600]))
        pieces = []
        for _ in range(rng.integers(1, 12)):
            r = rng.random()
            payload = rng.bytes(int(rng.integers(0, 700)))
            frame = sp.encode_frame(int(rng.integers(256)), int(rng.integers(0x10000)), payload)
            if r < 0.3:
                pieces.append(frame)
            elif r < 0.7:
                pieces.append(_mutate(rng, frame))
            else:  # raw noise, with and without zeros
                noise = rng.bytes(int(rng.integers(1, 400)))
                pieces.append(noise if rng.random() < 0.5 else noise.replace(b"\x00", b"\x7f"))
        stream = b"".join(pieces)
        py, c = sp.FrameDecoder(cap), CDecoder(cap)
        # different chunkings on each side: the decisions must not depend on them
        py_events, pos = [], 0
        while pos < len(stream):
            n = int(rng.integers(1, 300))
            py_events += py.feed(stream[pos : pos + n])
            pos += n
        c_events = c.feed(stream)
        assert comparable(py_events) == comparable(c_events), f"trial {trial}"
        a, b = py.abandon(), c.abandon()
        assert (a is None) == (b is None)
        if a is not None:
            assert (a.code, a.seq) == (b.code, b.seq)


def test_c_decoder_buffer_is_bounded_and_resyncs():
    dec = CDecoder(32)
    good = sp.encode_frame(sp.MsgType.PING, 9, b"ok")
    noise = bytes(range(1, 256)) * 400  # 100 kB without a delimiter
    events = dec.feed(noise + good)
    # 01 02 03 04 05 .. decodes as 00 03 00 05 06 07 ..: the peeked seq is 0x0003
    assert comparable(events) == [(sp.ErrorCode.TOO_LONG, 0x0003), sp.Frame(3, 9, b"ok")]
    assert dec.d.len == 0 and dec.d.overflow == 0


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_builds_freestanding_with_only_memset(tmp_path):
    # "Compiles unchanged for Cortex-M": strict C99, no hosted libc, and the
    # only external symbol is memset.
    obj = tmp_path / "serial_frame.o"
    flags = [
        "-std=c99",
        "-pedantic",
        "-Wall",
        "-Wextra",
        "-Wconversion",
        "-Wsign-conversion",
        "-Werror",
        "-ffreestanding",
        "-fno-builtin",
        "-Os",
    ]
    subprocess.run(
        ["gcc", *flags, "-I", str(CSRC / "include"), "-c", str(CSRC / "serial_frame.c"), "-o", str(obj)], check=True
    )
    undefined = subprocess.run(["nm", "-u", str(obj)], check=True, capture_output=True, text=True).stdout.split()
    assert [s for s in undefined if s != "U"] == ["memset"]


# ------------------------------------------------- on an emulated Cortex-M ---

_HARNESS = r"""
#include <stddef.h>
#include <stdint.h>
#include "tinyrt.h"
#include "stream.h"

/* Bare metal: no libc.  serial_frame.c needs memset; this is it. */
void *memset(void *s, int c, size_t n) {
    unsigned char *p = (unsigned char *)s;
    while (n--) *p++ = (unsigned char)c;
    return s;
}

/* ARM semihosting (BKPT 0xAB on M-profile): print and exit through QEMU. */
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static void put(const char *s) { semihost(0x04, s); }
static void put_hex(uint32_t v) {
    char buf[9];
    int i;
    for (i = 7; i >= 0; --i) { buf[i] = "0123456789abcdef"[v & 15u]; v >>= 4; }
    buf[8] = 0;
    put(buf);
}
static void leave(int ok) { semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026 : 0x20024)); for (;;) {} }

static uint32_t digest_event(uint32_t crc, int32_t ev, const trt_frame_decoder *d) {
    uint8_t rec[9];
    rec[0] = (uint8_t)ev;
    rec[1] = ev == TRT_FRAME_READY ? d->type : 0u;
    rec[2] = (uint8_t)d->error;
    rec[3] = (uint8_t)(d->seq & 0xFFu);
    rec[4] = (uint8_t)(d->seq >> 8);
    rec[5] = (uint8_t)(d->payload_len & 0xFFu);
    rec[6] = (uint8_t)((d->payload_len >> 8) & 0xFFu);
    rec[7] = (uint8_t)((d->payload_len >> 16) & 0xFFu);
    rec[8] = (uint8_t)((d->payload_len >> 24) & 0xFFu);
    crc = trt_crc32(crc, rec, sizeof rec);
    if (ev == TRT_FRAME_READY) crc = trt_crc32(crc, d->payload, d->payload_len);
    return crc;
}

int main(void) {
    uint8_t rx[DECODER_CAP];
    uint8_t tx[ENCODED_CAP];
    trt_frame_decoder d;
    uint32_t digest = 0, events = 0;
    size_t pos = 0, chunk = 1, n;

    trt_frame_decoder_init(&d, rx, sizeof rx);
    while (pos < sizeof stream) {           /* chunks of 1..37 bytes, like UART DMA */
        size_t len = sizeof stream - pos < chunk ? sizeof stream - pos : chunk;
        while (len) {
            size_t used;
            int32_t ev = trt_frame_decoder_push(&d, stream + pos, len, &used);
            pos += used; len -= used;
            if (ev != TRT_FRAME_NONE) { digest = digest_event(digest, ev, &d); events++; }
        }
        chunk = chunk % 37u + 1u;
    }
    n = trt_frame_encode(0x82, 0xBEEF, stream, ENC_A, stream + ENC_A, ENC_B, tx, sizeof tx);
    put("digest="); put_hex(digest);
    put(" events="); put_hex(events);
    put(" enc="); put_hex(trt_crc32(0, tx, n));
    put(" len="); put_hex((uint32_t)n);
    put(" check="); put_hex(trt_crc32(0, (const uint8_t *)"123456789", 9));
    put("\n");
    leave(1);
    return 0;
}

extern uint32_t _stack_top;
static void fault(void) { put("HARDFAULT\n"); leave(0); }
static void reset(void) { main(); }
__attribute__((section(".vectors"), used))
static void (*const vectors[16])(void) = {
    (void (*)(void))&_stack_top, reset, fault, fault, fault, fault, fault, 0, 0, 0, 0, fault, fault, 0, fault, fault,
};
"""

_LINKER = """
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 256K
         RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 16K }
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) *(.ARM.exidx*) } > FLASH
  .data : { *(.data*) } > RAM
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
  _stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""


def _digest(events: list[sp.Event]) -> int:
    crc = 0
    for e in events:
        if isinstance(e, sp.Frame):
            rec = bytes([1, e.type, 0]) + e.seq.to_bytes(2, "little") + len(e.payload).to_bytes(4, "little")
            crc = zlib.crc32(rec + e.payload, crc)
        else:
            crc = zlib.crc32(bytes([2, 0, e.code]) + e.seq.to_bytes(2, "little") + bytes(4), crc)
    return crc


@pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm",
)
@pytest.mark.parametrize(
    "machine, cpu", [("microbit", "cortex-m0"), ("mps2-an385", "cortex-m3"), ("mps2-an386", "cortex-m4")]
)
def test_c_framing_runs_on_emulated_cortex_m(machine, cpu, tmp_path):
    # The same decisions as the Python decoder, computed by serial_frame.c
    # compiled for and run on a Cortex-M core (QEMU, bare metal, semihosting).
    rng = np.random.default_rng(77)
    cap = 256
    pieces = []
    for _ in range(60):
        frame = sp.encode_frame(
            int(rng.integers(256)), int(rng.integers(0x10000)), rng.bytes(int(rng.integers(0, 300)))
        )
        r = rng.random()
        pieces.append(frame if r < 0.4 else _mutate(rng, frame) if r < 0.8 else rng.bytes(int(rng.integers(1, 200))))
    stream = b"".join(pieces)
    events = sp.FrameDecoder(cap).feed(stream)
    assert (
        sum(isinstance(e, sp.Frame) for e in events) >= 10 and sum(isinstance(e, sp.FrameError) for e in events) >= 10
    )
    enc_a, enc_b = 100, 200
    want_enc = sp.encode_frame(0x82, 0xBEEF, stream[: enc_a + enc_b])
    header = (
        f"#define DECODER_CAP {cap}\n#define ENCODED_CAP {lib.trt_frame_encoded_size(enc_a + enc_b)}\n"
        f"#define ENC_A {enc_a}\n#define ENC_B {enc_b}\n"
        "static const uint8_t stream[] = {" + ",".join(str(b) for b in stream) + "};\n"
    )
    (tmp_path / "stream.h").write_text(header)
    (tmp_path / "harness.c").write_text(_HARNESS)
    (tmp_path / "link.ld").write_text(_LINKER)
    elf = tmp_path / "harness.elf"
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Os",
            f"-mcpu={cpu}",
            "-mthumb",
            "-ffreestanding",
            "-fno-builtin",
            "-nostdlib",
            "-nostartfiles",
            "-T",
            str(tmp_path / "link.ld"),
            "-I",
            str(CSRC / "include"),
            "-I",
            str(tmp_path),
            str(tmp_path / "harness.c"),
            str(CSRC / "serial_frame.c"),
            "-lgcc",
            "-o",
            str(elf),
        ],
        check=True,
    )
    run = subprocess.run(
        [
            "qemu-system-arm",
            "-M",
            machine,
            "-cpu",
            cpu,
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
            str(elf),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # QEMU writes semihosting output to its stderr
    fields = dict(kv.split("=") for kv in (run.stdout + run.stderr).split() if "=" in kv)
    assert int(fields["check"], 16) == 0xCBF43926
    assert int(fields["events"], 16) == len(events)
    assert int(fields["digest"], 16) == _digest(events)
    assert int(fields["len"], 16) == len(want_enc) and int(fields["enc"], 16) == zlib.crc32(want_enc)
