"""runtime/serial_protocol.py: CRC, COBS, frames, the decoder's decisions, message bodies."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import serial_protocol as sp


def test_crc_check_value_and_zlib():
    assert sp.crc32(b"123456789") == 0xCBF43926
    assert sp.crc32(b"") == 0
    data = bytes(range(256)) * 3
    assert sp.crc32(data) == zlib.crc32(data)
    assert sp.crc32(data[100:], sp.crc32(data[:100])) == zlib.crc32(data)  # chains


@pytest.mark.parametrize(
    "data, encoded",
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),  # 254 non-zero: full block
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
        (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255)) + b"\x01"),
    ],
)
def test_cobs_known_vectors(data, encoded):
    # The vectors of the COBS paper / Wikipedia, for the variant that always
    # starts a new block after a full one (as csrc/serial_frame.c does).
    assert sp.cobs_encode(data) == encoded
    assert sp.cobs_decode(encoded) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_cobs_round_trip_and_length(data):
    enc = sp.cobs_encode(data)
    assert b"\x00" not in enc
    assert len(data) + 1 <= len(enc) <= sp.cobs_max_encoded(len(data))
    assert sp.cobs_decode(enc) == data


def test_cobs_decode_rejects_cut_blocks():
    with pytest.raises(sp.ProtocolError):
        sp.cobs_decode(b"\x05\x11\x22")
    assert sp.cobs_decode_lenient(b"\x05\x11\x22") == (b"\x11\x22", False)


def test_frame_layout_byte_by_byte():
    wire = sp.encode_frame(sp.MsgType.INFER, 0x0102, b"\xaa\x00\xbb")
    assert wire[0] == 0 and wire[-1] == 0 and b"\x00" not in wire[1:-1]
    frame = sp.cobs_decode(wire[1:-1])
    assert frame[:3] == b"\x02\x02\x01"  # type, seq little-endian
    assert frame[3:6] == b"\xaa\x00\xbb"
    assert struct.unpack("<I", frame[6:])[0] == zlib.crc32(frame[:6])
    assert len(wire) <= sp.wire_size(3)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=1500), st.integers(1, 64))
def test_decoder_round_trip_in_any_chunking(msg_type, seq, payload, chunk):
    wire = sp.encode_frame(msg_type, seq, payload) * 2
    dec = sp.FrameDecoder(sp.FRAME_OVERHEAD + len(payload))
    events = []
    for i in range(0, len(wire), chunk):
        events += dec.feed(wire[i : i + chunk])
    assert events == [sp.Frame(msg_type, seq, payload)] * 2
    assert dec.pending == 0


def _codes(events):
    return [e.code if isinstance(e, sp.FrameError) else ("ok", e.seq) for e in events]


def test_decoder_decisions():
    good = sp.encode_frame(sp.MsgType.PING, 5, b"hello")
    body = bytearray(sp.cobs_decode(good[1:-1]))
    dec = sp.FrameDecoder(64)
    # bad CRC: one payload bit flipped, re-stuffed so the framing is intact
    bad = bytearray(body)
    bad[4] ^= 0x01
    assert _codes(dec.feed(b"\x00" + sp.cobs_encode(bad) + b"\x00")) == [sp.ErrorCode.BAD_CRC]
    # cut short: the frame loses its tail, the next frame's leading 0x00 ends it
    assert _codes(dec.feed(good[:-4] + good)) == [sp.ErrorCode.TRUNCATED, ("ok", 5)]
    # too short to hold type, seq and CRC
    assert _codes(dec.feed(b"\x00" + sp.cobs_encode(b"\x03\x05\x00") + b"\x00")) == [sp.ErrorCode.TRUNCATED]
    # oversize: 100-byte payload > 64-byte limit; the seq is still read from the header
    (ev,) = dec.feed(sp.encode_frame(sp.MsgType.PING, 77, bytes(100)))
    assert ev.code == sp.ErrorCode.TOO_LONG and ev.seq == 77
    # garbage without a 0x00 does not grow the buffer past the limit
    dec.feed(b"\x55" * 100_000)
    assert dec.pending <= 64 + 64 // 254 + 8
    assert _codes(dec.feed(good)) == [sp.ErrorCode.TOO_LONG, ("ok", 5)]
    # idle line, back-to-back delimiters: nothing
    assert dec.feed(b"\x00" * 10) == []
    # abandon: a half frame is reported once, then the decoder is idle
    dec.feed(good[:6])
    ev = dec.abandon()
    assert ev is not None and ev.code == sp.ErrorCode.TRUNCATED and ev.seq == 5
    assert dec.abandon() is None and dec.pending == 0


def test_frame_at_exactly_max_frame_is_accepted():
    limit = 300
    payload = bytes(range(1, 256)) + bytes(limit - sp.FRAME_OVERHEAD - 255)
    dec = sp.FrameDecoder(limit)
    assert dec.feed(sp.encode_frame(3, 1, payload)) == [sp.Frame(3, 1, payload)]
    assert _codes(dec.feed(sp.encode_frame(3, 2, payload + b"x"))) == [sp.ErrorCode.TOO_LONG]


@settings(max_examples=200, deadline=None)
@given(st.integers(sp.FRAME_OVERHEAD, 5000), st.integers(0, 3))
def test_kept_bytes_bound_implies_too_long(max_frame, slack):
    # FrameDecoder keeps at most max_frame + max_frame // 254 + 8 encoded bytes;
    # beyond that it assumes the frame is too long.  The worst case for that
    # assumption is all-0xFF blocks (fewest decoded bytes per encoded byte).
    dec = sp.FrameDecoder(max_frame)
    n = dec._keep + 1 + slack
    worst = (b"\xff" + b"\x01" * 254) * (n // 255) + bytes([n % 255 or 1]) + b"\x01" * max(0, n % 255 - 1)
    decoded, _ = sp.cobs_decode_lenient(worst[:n])
    assert len(decoded) > max_frame


def test_info_round_trip():
    t_in = sp.TensorDesc("input_1", (1, 49, 10, 1), np.dtype(np.int8), 0.5847029089927673, 83)
    t_out = sp.TensorDesc("Identity ✓", (1, 12), np.dtype(np.int8), 0.00390625, -128)
    info = sp.ServerInfo(1, 1024, [t_in], [t_out], 49, 10, 10)
    body = sp.encode_info(info)
    assert body[:2] == b"\x01\x01"  # version, streaming flag
    assert struct.unpack_from("<IIII", body, 2) == (1024, 49, 10, 10)
    assert body[18:22] == b"\x01\x01\x09\x04"  # 1 in, 1 out; int8 = TFLite code 9, 4 dims
    assert sp.decode_info(body) == info
    with pytest.raises(sp.ProtocolError):
        sp.decode_info(body[:-3])


def test_tensors_are_little_endian_and_sized():
    d = [sp.TensorDesc("a", (2,), np.dtype(np.int16), 0.0, 0), sp.TensorDesc("b", (1,), np.dtype(np.float32), 0.0, 0)]
    raw = sp.pack_tensors(d, [np.array([1, -2], np.int16), np.array([1.5], np.float32)])
    assert raw == b"\x01\x00\xfe\xff" + struct.pack("<f", 1.5)
    a, b = sp.unpack_tensors(d, raw)
    assert a.tolist() == [1, -2] and b.tolist() == [1.5] and a.dtype == np.int16
    with pytest.raises(sp.ProtocolError):
        sp.unpack_tensors(d, raw[:-1])
    with pytest.raises(ValueError):
        sp.pack_tensors(d, [np.array([1, 2, 3], np.int16), np.array([1.5], np.float32)])


def test_error_and_result_bodies():
    assert sp.decode_error(sp.encode_error(sp.ErrorCode.BAD_SIZE, "x" * 500)) == (5, "x" * sp.MAX_ERROR_TEXT)
    assert sp.encode_error(1, "é" * 150)[1:].decode("utf-8") == "é" * 100  # cut on a character boundary
    assert sp.decode_result(sp.encode_result(1234, b"\x01\x02")) == (1234, b"\x01\x02")
    assert sp.decode_stream_result(sp.encode_stream_result(2**40, 7, b"\x09")) == (2**40, 7, b"\x09")
    assert sp.next_seq(0xFFFE) == 0 and sp.next_seq(5) == 6
    assert [c.frame_level for c in sp.ErrorCode][:4] == [True, True, True, False]
