"""tinyrt's serial protocol: framing, CRC and message bodies.  Pure: no I/O.

The byte-level specification is docs/serial-protocol.md; csrc/serial_frame.c
is the C (microcontroller) implementation of the same framing.  In short:

    wire   = 0x00  COBS(frame)  0x00
    frame  = type:u8  seq:u16le  payload  crc32:u32le     (crc over type..payload)

COBS removes every 0x00 from the frame, so 0x00 only ever delimits frames: a
receiver that starts in the middle of a stream, or after line noise, is back
in sync at the next 0x00.  The leading delimiter ends any garbage or half a
frame left on the line (e.g. by a sender that was reset mid-frame), so the
frame that follows is never glued onto it.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

import numpy as np

PROTOCOL_VERSION = 1
HEADER_SIZE = 3  # type, seq
CRC_SIZE = 4
FRAME_OVERHEAD = HEADER_SIZE + CRC_SIZE  # decoded bytes around the payload
MIN_MAX_FRAME = 64
#: No receiver accepts decoded frames longer than this; each announces its own
#: (smaller) limit in INFO.  1 MiB holds any model tensor tinyrt targets.
PROTOCOL_MAX_FRAME = 1 << 20
NO_SEQ = 0xFFFF  # "no sequence number": senders wrap from 0xFFFE to 0
REPLY_BIT = 0x80
MAX_ERROR_TEXT = 200


class MsgType(enum.IntEnum):
    # Requests (bit 7 clear).
    HELLO = 0x01
    INFER = 0x02
    PING = 0x03
    SAMPLES = 0x04
    # Replies (bit 7 set).  A receiver never answers a reply, not even with
    # an ERROR: two peers can then never bounce errors back and forth.
    ERROR = 0x80
    INFO = 0x81
    RESULT = 0x82
    PONG = 0x83
    STREAM_RESULT = 0x84


class ErrorCode(enum.IntEnum):
    # Frame-level: the frame's own header could not be trusted (the seq in
    # such an ERROR is the one read from the damaged frame, or NO_SEQ).
    BAD_CRC = 1
    TRUNCATED = 2
    TOO_LONG = 3
    # Request-level: the frame was intact but the request cannot be served.
    UNKNOWN_TYPE = 4
    BAD_SIZE = 5
    BAD_STATE = 6
    BAD_VERSION = 7
    INFER_FAILED = 8

    @property
    def frame_level(self) -> bool:
        return self <= ErrorCode.TOO_LONG


# TFLite's TensorType numbers, which firmware that reads .tflite files knows.
DTYPE_CODES: dict[str, int] = {
    "float32": 0,
    "float16": 1,
    "int32": 2,
    "uint8": 3,
    "int64": 4,
    "bool": 6,
    "int16": 7,
    "int8": 9,
    "float64": 10,
    "uint32": 15,
    "uint16": 16,
}
CODE_DTYPES = {code: name for name, code in DTYPE_CODES.items()}


class ProtocolError(ValueError):
    """A message body that does not follow the specification."""


# ------------------------------------------------------------------- CRC ---


def crc32(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32/ISO-HDLC (the zlib / Ethernet CRC): reflected, poly 0xEDB88320,
    initial and final XOR 0xFFFFFFFF.  crc32(b"123456789") == 0xCBF43926."""
    return zlib.crc32(data, crc) & 0xFFFFFFFF


# ------------------------------------------------------------------ COBS ---


def cobs_encode(data: bytes | bytearray | memoryview) -> bytes:
    """Consistent Overhead Byte Stuffing: the result has no 0x00 byte and is
    len(data) + len(data) // 254 + 1 bytes long.  Matches trt_frame_encode."""
    out = bytearray()
    for part in bytes(data).split(b"\x00"):
        # A run of 254 non-zero bytes fills a block (code 0xFF, no implied
        # zero); the remainder, possibly empty, closes the run with its zero.
        start = 0
        while len(part) - start >= 254:
            out.append(0xFF)
            out += part[start : start + 254]
            start += 254
        out.append(len(part) - start + 1)
        out += part[start:]
    return bytes(out)


def cobs_decode_lenient(data: bytes | bytearray | memoryview) -> tuple[bytes, bool]:
    """Decode COBS bytes (without delimiters).  Returns the decoded bytes and
    whether the last block was complete; a truncated last block still yields
    the bytes it holds, exactly as the byte-at-a-time C decoder sees them."""
    raw = bytes(data)
    out = bytearray()
    i, prev, n = 0, 0, len(raw)
    while i < n:
        code = raw[i]
        if code == 0:
            raise ProtocolError("0x00 inside a COBS frame")
        if prev not in (0, 0xFF):
            out.append(0)  # the zero the previous block ended with
        chunk = raw[i + 1 : i + code]
        out += chunk
        if len(chunk) < code - 1:
            return bytes(out), False
        i += code
        prev = code
    return bytes(out), True


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    out, complete = cobs_decode_lenient(data)
    if not complete:
        raise ProtocolError("truncated COBS block")
    return out


def cobs_max_encoded(n: int) -> int:
    return n + n // 254 + 1


# ---------------------------------------------------------------- frames ---


def encode_frame(msg_type: int, seq: int, payload: bytes | bytearray | memoryview = b"") -> bytes:
    """One frame as it goes on the wire, both delimiters included."""
    if not 0 <= msg_type <= 0xFF:
        raise ValueError(f"message type {msg_type} is not a byte")
    if not 0 <= seq <= 0xFFFF:
        raise ValueError(f"sequence number {seq} is not a u16")
    body = bytearray(struct.pack("<BH", msg_type, seq))
    body += payload
    body += struct.pack("<I", crc32(body))
    return b"\x00" + cobs_encode(body) + b"\x00"


def wire_size(payload_len: int) -> int:
    """Bytes one frame with this payload takes on the wire (at most)."""
    return cobs_max_encoded(payload_len + FRAME_OVERHEAD) + 2


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


@dataclass(frozen=True)
class FrameError:
    code: ErrorCode
    seq: int  # read from the damaged frame's header (unverified), or NO_SEQ
    detail: str


Event = Frame | FrameError


class FrameDecoder:
    """Splits a byte stream into frames.  Memory is bounded by max_frame.

    For every non-empty run of bytes between two 0x00 it yields exactly one
    event, decided in this order (the C decoder decides identically):
      TOO_LONG   the decoded run is longer than max_frame (its bytes are
                 dropped as they arrive, not buffered);
      TRUNCATED  the last COBS block is cut short, or fewer than 7 bytes;
      BAD_CRC    the CRC does not match;
      Frame      otherwise.
    """

    def __init__(self, max_frame: int = PROTOCOL_MAX_FRAME):
        if not FRAME_OVERHEAD <= max_frame <= PROTOCOL_MAX_FRAME:
            raise ValueError(f"max_frame must be in [{FRAME_OVERHEAD}, {PROTOCOL_MAX_FRAME}], got {max_frame}")
        self.max_frame = max_frame
        # Encoded bytes worth keeping.  A run of COBS bytes decodes to at least
        # len - len // 255 - 1 bytes (a code byte costs one byte per 254 data
        # bytes at most, plus the last block's), so a run longer than this is
        # certainly too long and only its first bytes (for the seq) are kept.
        self._keep = max_frame + max_frame // 254 + 8
        self._buf = bytearray()
        self._overflow = False

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held (0 between frames)."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        events: list[Event] = []
        data = bytes(data)
        start, n = 0, len(data)
        while start < n:
            z = data.find(b"\x00", start)
            end = n if z < 0 else z
            if not self._overflow:
                room = self._keep - len(self._buf)
                if end - start > room:
                    self._buf += data[start : start + room]
                    self._overflow = True
                else:
                    self._buf += data[start:end]
            if z < 0:
                break
            if self._buf:
                events.append(self._finish())
            start = z + 1
        return events

    def abandon(self) -> FrameError | None:
        """Drop an unfinished frame (e.g. after an inter-byte timeout or a port
        reopen); returns the TRUNCATED error to report, or None if idle."""
        if not self._buf:
            return None
        dec, _ = cobs_decode_lenient(self._buf)
        self._reset()
        return FrameError(ErrorCode.TRUNCATED, _peek_seq(dec), "partial frame timed out")

    def _reset(self) -> None:
        self._buf = bytearray()
        self._overflow = False

    def _finish(self) -> Event:
        overflow = self._overflow
        dec, complete = cobs_decode_lenient(self._buf)
        self._reset()
        seq = _peek_seq(dec)
        if overflow or len(dec) > self.max_frame:
            return FrameError(ErrorCode.TOO_LONG, seq, f"frame longer than {self.max_frame} bytes")
        if not complete:
            return FrameError(ErrorCode.TRUNCATED, seq, "frame cut short")
        if len(dec) < FRAME_OVERHEAD:
            return FrameError(ErrorCode.TRUNCATED, seq, f"frame of {len(dec)} bytes")
        (want,) = struct.unpack_from("<I", dec, len(dec) - CRC_SIZE)
        if crc32(memoryview(dec)[: len(dec) - CRC_SIZE]) != want:
            return FrameError(ErrorCode.BAD_CRC, seq, "crc mismatch")
        return Frame(dec[0], seq, dec[HEADER_SIZE : len(dec) - CRC_SIZE])


def _peek_seq(dec: bytes) -> int:
    return dec[1] | dec[2] << 8 if len(dec) >= HEADER_SIZE else NO_SEQ


# -------------------------------------------------------- message bodies ---


@dataclass(frozen=True)
class TensorDesc:
    """A tensor as INFO describes it (mirrors runtime.model.TensorInfo)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype.kind in "iu"

    @classmethod
    def from_info(cls, info: object) -> TensorDesc:
        return cls(
            str(info.name),  # type: ignore[attr-defined]
            tuple(int(d) for d in info.shape),  # type: ignore[attr-defined]
            np.dtype(info.dtype),  # type: ignore[attr-defined]
            float(info.scale),  # type: ignore[attr-defined]
            int(info.zero_point),  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class ServerInfo:
    """The body of INFO."""

    version: int
    max_frame: int
    inputs: list[TensorDesc]
    outputs: list[TensorDesc]
    window: int = 0  # streaming mode when > 0
    hop: int = 0
    sample_values: int = 0  # values per sample in streaming mode

    @property
    def streaming(self) -> bool:
        return self.window > 0

    @property
    def input_bytes(self) -> int:
        return sum(t.nbytes for t in self.inputs)

    @property
    def output_bytes(self) -> int:
        return sum(t.nbytes for t in self.outputs)


_INFO_HEAD = struct.Struct("<BBIIIIBB")  # version flags max_frame window hop sample_values n_in n_out


def _utf8_prefix(text: str, limit: int) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return raw
    return raw[:limit].decode("utf-8", errors="ignore").encode("utf-8")  # cut on a character boundary


def encode_info(info: ServerInfo) -> bytes:
    if len(info.inputs) > 255 or len(info.outputs) > 255:
        raise ValueError("at most 255 inputs and 255 outputs")
    out = bytearray(
        _INFO_HEAD.pack(
            info.version,
            1 if info.streaming else 0,
            info.max_frame,
            info.window,
            info.hop,
            info.sample_values,
            len(info.inputs),
            len(info.outputs),
        )
    )
    for t in [*info.inputs, *info.outputs]:
        code = DTYPE_CODES.get(t.dtype.name)
        if code is None:
            raise ValueError(f"tensor {t.name!r}: dtype {t.dtype} has no protocol code")
        if len(t.shape) > 255:
            raise ValueError(f"tensor {t.name!r}: more than 255 dimensions")
        out += struct.pack("<BB", code, len(t.shape))
        out += struct.pack(f"<{len(t.shape)}I", *t.shape)
        out += struct.pack("<fi", t.scale, t.zero_point)
        name = _utf8_prefix(t.name, 255)
        out += struct.pack("<B", len(name)) + name
    return bytes(out)


def decode_info(body: bytes) -> ServerInfo:
    try:
        version, _flags, max_frame, window, hop, sample_values, n_in, n_out = _INFO_HEAD.unpack_from(body, 0)
        pos = _INFO_HEAD.size
        tensors = []
        for _ in range(n_in + n_out):
            code, ndim = struct.unpack_from("<BB", body, pos)
            pos += 2
            shape = struct.unpack_from(f"<{ndim}I", body, pos)
            pos += 4 * ndim
            scale, zero_point = struct.unpack_from("<fi", body, pos)
            pos += 8
            (name_len,) = struct.unpack_from("<B", body, pos)
            if pos + 1 + name_len > len(body):
                raise ProtocolError("INFO ends inside a tensor name")
            name = body[pos + 1 : pos + 1 + name_len].decode("utf-8", errors="replace")
            pos += 1 + name_len
            if code not in CODE_DTYPES:
                raise ProtocolError(f"INFO: unknown dtype code {code}")
            tensors.append(TensorDesc(name, tuple(shape), np.dtype(CODE_DTYPES[code]), float(scale), zero_point))
    except struct.error as exc:
        raise ProtocolError(f"INFO body too short: {exc}") from exc
    return ServerInfo(version, max_frame, tensors[:n_in], tensors[n_in:], window, hop, sample_values)


def pack_tensors(descs: list[TensorDesc], arrays: list[np.ndarray]) -> bytes:
    """Tensors back to back, each C-ordered, little-endian, in its own dtype."""
    if len(arrays) != len(descs):
        raise ValueError(f"expected {len(descs)} tensors, got {len(arrays)}")
    parts = []
    for d, a in zip(descs, arrays, strict=True):
        arr = np.asarray(a)
        if arr.dtype != d.dtype or arr.size != d.size:
            raise ValueError(f"tensor {d.name!r}: expected {d.size} x {d.dtype}, got {arr.size} x {arr.dtype}")
        parts.append(np.ascontiguousarray(arr, dtype=d.dtype.newbyteorder("<")).tobytes())
    return b"".join(parts)


def unpack_tensors(descs: list[TensorDesc], data: bytes | memoryview) -> list[np.ndarray]:
    need = sum(d.nbytes for d in descs)
    if len(data) != need:
        raise ProtocolError(f"tensor bytes: expected {need}, got {len(data)}")
    out, pos = [], 0
    for d in descs:
        arr = np.frombuffer(data, dtype=d.dtype.newbyteorder("<"), count=d.size, offset=pos)
        out.append(arr.astype(d.dtype).reshape(d.shape))
        pos += d.nbytes
    return out


def encode_result(infer_us: int, outputs_bytes: bytes) -> bytes:
    return struct.pack("<I", min(infer_us, 0xFFFFFFFF)) + outputs_bytes


def decode_result(body: bytes) -> tuple[int, bytes]:
    if len(body) < 4:
        raise ProtocolError("RESULT body shorter than 4 bytes")
    return struct.unpack_from("<I", body)[0], body[4:]


def encode_stream_result(end_sample: int, infer_us: int, outputs_bytes: bytes) -> bytes:
    return struct.pack("<QI", end_sample, min(infer_us, 0xFFFFFFFF)) + outputs_bytes


def decode_stream_result(body: bytes) -> tuple[int, int, bytes]:
    if len(body) < 12:
        raise ProtocolError("STREAM_RESULT body shorter than 12 bytes")
    end_sample, infer_us = struct.unpack_from("<QI", body)
    return end_sample, infer_us, body[12:]


def encode_error(code: int, text: str) -> bytes:
    return struct.pack("<B", code) + _utf8_prefix(text, MAX_ERROR_TEXT)


def decode_error(body: bytes) -> tuple[int, str]:
    if not body:
        raise ProtocolError("ERROR body is empty")
    return body[0], body[1:].decode("utf-8", errors="replace")


def next_seq(seq: int) -> int:
    return 0 if seq >= NO_SEQ - 1 else seq + 1
