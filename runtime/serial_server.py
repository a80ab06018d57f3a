"""python -m runtime.run MODEL --serial PORT: serve a model over a serial line.

Two protocols (docs/serial-protocol.md): `binary` (COBS frames with a CRC,
for firmware) and `jsonl` (one JSON array or CSV row per line in, one JSON
object per line out, for people and scripts).  With --window N the server
takes a continuous stream of samples instead of whole tensors and runs the
model every --hop M samples over the last N (runtime/serial_stream.py).

The server is one thread: read what has arrived, decode, run, reply.  Every
buffer is bounded (a frame or a line at most); a malformed frame gets an
ERROR and the loop goes on; a port that fails is closed and reopened with
exponential backoff; SIGINT/SIGTERM stop it cleanly with a summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import serial

from . import serial_protocol as sp
from .serial_stream import SampleWindow, values_per_sample

log = logging.getLogger("tinyrt.serial")

READ_CHUNK = 4096
READ_TIMEOUT = 0.05  # how often the loop looks at the stop flag and timeouts
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0
LATENCY_WINDOW = 10_000  # latency percentiles cover the most recent inferences


class Port(Protocol):
    """What the server needs of a pyserial port (runtime.client.FdPort too)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------ stats ---


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    frames: int = 0  # valid frames (binary) or lines (jsonl) received
    inferences: int = 0
    replies: int = 0
    dropped_replies: int = 0  # write timed out: the peer is not reading
    ignored: int = 0  # reply-type frames received (never answered)
    reconnects: int = 0
    stream_gaps: int = 0  # SAMPLES frames whose seq skipped (frames lost)
    errors: Counter[str] = field(default_factory=Counter)
    infer_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    reply_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def summary(self, where: str = "") -> str:
        errs = sum(self.errors.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items()))
        lines = [
            f"tinyrt serial: stopped after {time.monotonic() - self.started:.1f} s{where}",
            f"  frames: {self.frames} received, {errs} errors{f' ({detail})' if detail else ''}, "
            f"{self.ignored} replies ignored",
            f"  replies: {self.replies} sent, {self.dropped_replies} dropped; inferences: {self.inferences}; "
            f"reconnects: {self.reconnects}; stream gaps: {self.stream_gaps}",
        ]
        if self.infer_ms:
            inf = np.percentile(np.array(self.infer_ms), [50, 99])
            rep = np.percentile(np.array(self.reply_ms), [50, 99]) if self.reply_ms else [math.nan, math.nan]
            lines.append(
                f"  latency (last {len(self.infer_ms)}): inference p50 {inf[0]:.3f} ms p99 {inf[1]:.3f} ms; "
                f"frame-to-reply p50 {rep[0]:.3f} ms p99 {rep[1]:.3f} ms"
            )
        else:
            lines.append("  latency: no inferences")
        return "\n".join(lines)


# ---------------------------------------------------------- model service ---


class ModelService:
    """The model side shared by both protocols: describe, infer, stream."""

    def __init__(self, model: Any, stats: Stats, window: int = 0, hop: int = 0):
        self.model = model
        self.stats = stats
        self.inputs = [sp.TensorDesc.from_info(t) for t in model.inputs]
        self.outputs = [sp.TensorDesc.from_info(t) for t in model.outputs]
        self.stream: SampleWindow | None = None
        if window:
            if len(self.inputs) != 1:
                raise ValueError(f"streaming mode needs a one-input model; this one has {len(self.inputs)}")
            f = values_per_sample(self.inputs[0].shape, window)
            self.stream = SampleWindow(window, hop or window, f, self.inputs[0].dtype)

    def info(self, max_frame: int) -> sp.ServerInfo:
        s = self.stream
        return sp.ServerInfo(
            sp.PROTOCOL_VERSION,
            max_frame,
            self.inputs,
            self.outputs,
            s.window if s else 0,
            s.hop if s else 0,
            s.sample_values if s else 0,
        )

    def infer(self, arrays: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
        t0 = time.perf_counter()
        outs = self.model.run(arrays)
        dt = time.perf_counter() - t0
        self.stats.inferences += 1
        self.stats.infer_ms.append(dt * 1e3)
        return outs, int(dt * 1e6)

    def push_samples(self, values: np.ndarray) -> Iterator[tuple[int, list[np.ndarray], int]]:
        assert self.stream is not None
        shape = self.inputs[0].shape
        for end, window in self.stream.push(values):
            outs, us = self.infer([window.reshape(shape)])
            yield end, outs, us


# --------------------------------------------------------- binary session ---


class BinarySession:
    """Binary protocol state for one link: decoder, replies, stream seq."""

    def __init__(self, service: ModelService, stats: Stats, max_frame: int, frame_timeout: float):
        self.service = service
        self.stats = stats
        self.max_frame = max_frame
        self.frame_timeout = frame_timeout
        self.decoder = sp.FrameDecoder(max_frame)
        self.send: Callable[[bytes], None] = lambda data: None
        self._last_rx = 0.0
        self._t_frame = 0.0
        self._samples_seq: int | None = None
        self._in_bytes = sum(t.nbytes for t in service.inputs)

    def feed(self, data: bytes, now: float) -> None:
        self._last_rx = now
        for ev in self.decoder.feed(data):
            self._t_frame = now
            if isinstance(ev, sp.FrameError):
                self._error(ev.seq, ev.code, ev.detail)
            else:
                self._handle(ev)

    def tick(self, now: float) -> None:
        if self.decoder.pending and now - self._last_rx > self.frame_timeout:
            self._t_frame = now
            ev = self.decoder.abandon()
            if ev is not None:
                self._error(ev.seq, ev.code, ev.detail)

    def link_reset(self) -> None:
        self.decoder.abandon()  # half a frame from the old link is meaningless

    # A reply, timed from the frame's arrival.
    def _reply(self, msg_type: int, seq: int, payload: bytes) -> None:
        self.send(sp.encode_frame(msg_type, seq, payload))
        self.stats.replies += 1
        self.stats.reply_ms.append((time.monotonic() - self._t_frame) * 1e3)

    def _error(self, seq: int, code: sp.ErrorCode, text: str) -> None:
        self.stats.errors[code.name.lower()] += 1
        log.debug("ERROR seq %d %s: %s", seq, code.name, text)
        self.send(sp.encode_frame(sp.MsgType.ERROR, seq, sp.encode_error(code, text)))
        self.stats.replies += 1

    def _handle(self, frame: sp.Frame) -> None:
        t, seq, body = frame.type, frame.seq, frame.payload
        if t & sp.REPLY_BIT:
            self.stats.ignored += 1  # a reply (e.g. our own echo on loop://): never answered
            return
        self.stats.frames += 1
        svc = self.service
        try:
            if t == sp.MsgType.HELLO:
                if len(body) != 1:
                    return self._error(seq, sp.ErrorCode.BAD_SIZE, f"HELLO body is 1 byte, got {len(body)}")
                if body[0] != sp.PROTOCOL_VERSION:
                    return self._error(
                        seq, sp.ErrorCode.BAD_VERSION, f"protocol version {body[0]} unsupported, speak 1"
                    )
                if svc.stream:
                    svc.stream.reset()
                self._samples_seq = None
                self._reply(sp.MsgType.INFO, seq, sp.encode_info(svc.info(self.max_frame)))
            elif t == sp.MsgType.INFER:
                if len(body) != self._in_bytes:
                    return self._error(
                        seq, sp.ErrorCode.BAD_SIZE, f"INFER needs {self._in_bytes} tensor bytes, got {len(body)}"
                    )
                outs, us = svc.infer(sp.unpack_tensors(svc.inputs, body))
                self._reply(sp.MsgType.RESULT, seq, sp.encode_result(us, sp.pack_tensors(svc.outputs, outs)))
            elif t == sp.MsgType.PING:
                self._reply(sp.MsgType.PONG, seq, body)
            elif t == sp.MsgType.SAMPLES:
                self._samples(seq, body)
            else:
                self._error(seq, sp.ErrorCode.UNKNOWN_TYPE, f"unknown message type 0x{t:02x}")
        except serial.SerialException:
            raise  # the port failed while replying: reopen it (SerialServer.serve)
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            log.exception("request 0x%02x seq %d failed", t, seq)
            self._error(seq, sp.ErrorCode.INFER_FAILED, f"{type(exc).__name__}: {exc}")

    def _samples(self, seq: int, body: bytes) -> None:
        svc = self.service
        if svc.stream is None:
            return self._error(seq, sp.ErrorCode.BAD_STATE, "SAMPLES needs a server started with --window")
        desc = svc.inputs[0]
        step = svc.stream.sample_values * desc.dtype.itemsize
        if len(body) % step:
            return self._error(
                seq, sp.ErrorCode.BAD_SIZE, f"SAMPLES body must be a multiple of {step} bytes, got {len(body)}"
            )
        if self._samples_seq is not None and seq != sp.next_seq(self._samples_seq):
            self.stats.stream_gaps += 1
            log.debug("stream gap: SAMPLES seq %d after %d", seq, self._samples_seq)  # counted in the summary
        self._samples_seq = seq
        values = np.frombuffer(body, dtype=desc.dtype.newbyteorder("<")).astype(desc.dtype)
        for end, outs, us in svc.push_samples(values):
            payload = sp.encode_stream_result(end, us, sp.pack_tensors(svc.outputs, outs))
            self._reply(sp.MsgType.STREAM_RESULT, seq, payload)


# ---------------------------------------------------------- jsonl session ---


class LineError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _tensor_json(desc: sp.TensorDesc, arr: np.ndarray) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": desc.name, "shape": list(desc.shape), "values": arr.reshape(-1).tolist()}
    if desc.quantized:
        # The same float32 values as TensorInfo.dequantize / run(dequantize=True).
        real = (desc.scale * (arr.astype(np.float64) - desc.zero_point)).astype(np.float32)
        doc["real"] = real.reshape(-1).tolist()
    return doc


def _desc_json(d: sp.TensorDesc) -> dict[str, Any]:
    return {"name": d.name, "shape": list(d.shape), "dtype": d.dtype.name, "scale": d.scale, "zero_point": d.zero_point}


def _parse_text_values(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        pass
    parts = [p for p in text.replace(";", ",").replace("\t", ",").split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise LineError("bad_line", "expected a JSON array or object, or a CSV row of numbers") from None


def to_tensor_values(desc: sp.TensorDesc, values: Any, raw: bool, what: str) -> np.ndarray:
    """JSON numbers -> the tensor's dtype (flat).  Real values are quantized
    with the tensor's scale and zero point exactly as Model.run does it;
    raw=True takes them as the tensor's own (integer) values."""
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (ValueError, TypeError):
        raise LineError("bad_value", f"{what}: values must be numbers (nested lists allowed)") from None
    if raw and desc.dtype.kind in "iu":
        lim = np.iinfo(desc.dtype)
        if (
            not np.all(np.isfinite(arr))
            or np.any(arr != np.round(arr))
            or arr.min(initial=0) < lim.min
            or (arr.max(initial=0) > lim.max)
        ):
            raise LineError("bad_value", f"{what}: raw values must be integers in [{lim.min}, {lim.max}]")
        return arr.astype(desc.dtype)
    if desc.quantized:
        from .model import TensorInfo

        return TensorInfo(desc.name, desc.shape, desc.dtype, desc.scale, desc.zero_point).quantize(arr)
    return arr.astype(desc.dtype)


class JsonlSession:
    """Line protocol state for one link: the partial line and the line count."""

    KEYS = {"id", "input", "inputs", "samples", "raw", "cmd"}

    def __init__(self, service: ModelService, stats: Stats, max_line: int):
        self.service = service
        self.stats = stats
        self.max_line = max_line
        self.send: Callable[[bytes], None] = lambda data: None
        self._buf = bytearray()
        self._discarding = False
        self._lines = 0
        self._t_line = 0.0

    def feed(self, data: bytes, now: float) -> None:
        self._t_line = now
        # \n, \r\n and a lone \r (what terminals send for Enter) end a line;
        # the empty line between \r and \n is ignored like any blank line.
        parts = data.replace(b"\r", b"\n").split(b"\n")
        lines: list[bytes | None] = []  # None: a line that was too long
        for i, part in enumerate(parts):
            if not self._discarding:
                if len(self._buf) + len(part) > self.max_line:
                    self._discarding = True  # drop it up to its end: bounded memory
                    self._buf = bytearray()
                else:
                    self._buf += part
            if i == len(parts) - 1:
                break  # no line end yet
            if self._discarding:
                self._discarding = False
                lines.append(None)
            elif self._buf.strip():
                lines.append(bytes(self._buf))
            self._buf = bytearray()
        self._handle_lines(lines)

    def _handle_lines(self, lines: list[bytes | None]) -> None:
        # Runs of plain sample lines ("0.25" or "1,2,3") are quantized and
        # pushed together: one number per line must cost far less than the
        # line's time on the wire, even on a small board.
        batch: list[tuple[Any, list[float]]] = []
        for line in lines:
            values = self._plain_samples(line) if line is not None else None
            if values is not None:
                self._lines += 1
                self.stats.frames += 1
                batch.append((self._lines, values))
                continue
            self._flush_samples(batch)
            batch = []
            if line is None:
                self._lines += 1
                self.stats.frames += 1
                self._error(self._lines, "line_too_long", f"line longer than {self.max_line} bytes")
            else:
                self._line(line)
        self._flush_samples(batch)

    def _plain_samples(self, line: bytes) -> list[float] | None:
        """A streaming line of plain numbers, or None for the general path
        (which also reports whatever is wrong with the line)."""
        stream = self.service.stream
        text = line.strip()
        if stream is None or text[:1] in (b"{", b"[", b"#"):
            return None
        try:
            parts = text.decode("ascii").replace(";", ",").replace("\t", ",").split(",")
            values = [float(p) for p in parts if p.strip()]  # what json.loads gives for a number
        except (UnicodeDecodeError, ValueError):
            return None
        if not values or len(values) % stream.sample_values:
            return None
        return values

    def _flush_samples(self, batch: list[tuple[Any, list[float]]]) -> None:
        if not batch:
            return
        svc = self.service
        assert svc.stream is not None
        f = svc.stream.sample_values
        # Quantization is element-wise, so quantizing the run at once equals
        # quantizing line by line.
        flat = to_tensor_values(svc.inputs[0], [v for _, vals in batch for v in vals], False, "samples")
        ends = np.cumsum([len(vals) // f for _, vals in batch])
        base = svc.stream.count
        try:
            for end, outs, us in svc.push_samples(flat):
                # the line holding the window's last sample completed it
                ident = batch[int(np.searchsorted(ends, end - base, side="left"))][0]
                self._result(ident, outs, us, end_sample=end)
        except serial.SerialException:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the server
            log.exception("samples up to line %s failed", batch[-1][0])
            self._error(batch[-1][0], "infer_failed", f"{type(exc).__name__}: {exc}")

    def tick(self, now: float) -> None:
        """Lines have no timeout: a person may type slowly."""

    def link_reset(self) -> None:
        self._buf = bytearray()
        self._discarding = False

    def _send(self, doc: dict[str, Any]) -> None:
        self.send(json.dumps(doc, separators=(",", ":")).encode("utf-8") + b"\n")
        self.stats.replies += 1

    def _error(self, ident: Any, code: str, message: str) -> None:
        self.stats.errors[code] += 1
        self._send({"type": "error", "id": ident, "code": code, "message": message})

    def _line(self, line: bytes) -> None:
        try:
            text: str | None = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            text = None
        if text is not None and text.startswith("#"):
            return  # a comment: not a request, not counted
        self._lines += 1
        self.stats.frames += 1
        ident: Any = self._lines
        if text is None:
            return self._error(ident, "bad_line", "line is not UTF-8")
        try:
            doc = _parse_text_values(text)
            if isinstance(doc, dict):
                ident = doc.get("id", ident)
                self._object(doc, ident)
            else:
                self._values(doc, False, ident)
        except LineError as exc:
            self._error(ident, exc.code, str(exc))
        except serial.SerialException:
            raise  # the port failed while replying: reopen it (SerialServer.serve)
        except Exception as exc:  # noqa: BLE001 - one bad line must not stop the server
            log.exception("line %s failed", ident)
            self._error(ident, "infer_failed", f"{type(exc).__name__}: {exc}")

    def _object(self, doc: dict[str, Any], ident: Any) -> None:
        unknown = sorted(set(doc) - self.KEYS)
        if unknown:
            raise LineError("bad_line", f"unknown keys {unknown}; use {sorted(self.KEYS)}")
        raw = doc.get("raw", False)
        if not isinstance(raw, bool):
            raise LineError("bad_line", '"raw" must be true or false')
        svc = self.service
        if "cmd" in doc:
            if doc["cmd"] == "hello":
                if svc.stream:
                    svc.stream.reset()
                info = svc.info(0)
                return self._send(
                    {
                        "type": "info",
                        "id": ident,
                        "version": sp.PROTOCOL_VERSION,
                        "max_line": self.max_line,
                        "inputs": [_desc_json(d) for d in info.inputs],
                        "outputs": [_desc_json(d) for d in info.outputs],
                        "window": info.window,
                        "hop": info.hop,
                        "sample_values": info.sample_values,
                    }
                )
            if doc["cmd"] == "ping":
                return self._send({"type": "pong", "id": ident})
            raise LineError("unknown_command", f'unknown cmd {doc["cmd"]!r}; use "hello" or "ping"')
        if "samples" in doc:
            return self._samples(doc["samples"], raw, ident)
        if "input" in doc:
            return self._values(doc["input"], raw, ident)
        if "inputs" in doc:
            given = doc["inputs"]
            if isinstance(given, dict):
                names = [d.name for d in svc.inputs]
                if sorted(given) != sorted(names):
                    raise LineError("bad_size", f"inputs by name: expected {names}, got {sorted(given)}")
                given = [given[n] for n in names]
            if not isinstance(given, list) or len(given) != len(svc.inputs):
                raise LineError("bad_size", f'"inputs" needs {len(svc.inputs)} arrays, in input order or by name')
            return self._infer(given, raw, ident)
        raise LineError("bad_line", 'an object needs "input", "inputs", "samples" or "cmd"')

    def _values(self, values: Any, raw: bool, ident: Any) -> None:
        if self.service.stream is not None:
            return self._samples(values, raw, ident)
        if len(self.service.inputs) != 1:
            raise LineError("bad_line", 'this model has several inputs: send {"inputs": [[...], ...]}')
        self._infer([values], raw, ident)

    def _infer(self, given: list[Any], raw: bool, ident: Any) -> None:
        svc = self.service
        arrays = []
        for desc, values in zip(svc.inputs, given, strict=True):
            arr = to_tensor_values(desc, values, raw, f"input {desc.name!r}")
            if arr.size != desc.size:
                raise LineError(
                    "bad_size",
                    f"input {desc.name!r} needs {desc.size} values (shape {list(desc.shape)}), got {arr.size}",
                )
            arrays.append(arr.reshape(desc.shape))
        outs, us = svc.infer(arrays)
        self._result(ident, outs, us)

    def _samples(self, values: Any, raw: bool, ident: Any) -> None:
        svc = self.service
        if svc.stream is None:
            raise LineError("bad_state", '"samples" needs a server started with --window')
        arr = to_tensor_values(svc.inputs[0], values, raw, "samples")
        f = svc.stream.sample_values
        if arr.size == 0 or arr.size % f:
            raise LineError("bad_size", f"a line carries whole samples of {f} values; got {arr.size} values")
        for end, outs, us in svc.push_samples(arr):
            self._result(ident, outs, us, end_sample=end)

    def _result(self, ident: Any, outs: list[np.ndarray], us: int, end_sample: int | None = None) -> None:
        doc: dict[str, Any] = {"type": "result", "id": ident}
        if end_sample is not None:
            doc["end_sample"] = end_sample
        doc["infer_us"] = us
        doc["outputs"] = [_tensor_json(d, o) for d, o in zip(self.service.outputs, outs, strict=True)]
        self._send(doc)
        self.stats.reply_ms.append((time.monotonic() - self._t_line) * 1e3)


Session = BinarySession | JsonlSession


# ----------------------------------------------------------------- server ---


def default_max_frame(service: ModelService) -> int:
    need = sp.FRAME_OVERHEAD + sum(t.nbytes for t in service.inputs)
    return min(max(1024, need), sp.PROTOCOL_MAX_FRAME)


class SerialServer:
    """Runs a session over a port, reopening the port when it fails."""

    def __init__(self, session: Session, open_port: Callable[[], Port], name: str = "port"):
        self.session = session
        self.stats = session.stats
        self.open_port = open_port
        self.name = name

    def serve(self, stop: threading.Event) -> Stats:
        delay = BACKOFF_MIN
        while not stop.is_set():
            try:
                port = self.open_port()
            except (serial.SerialException, OSError) as exc:
                log.warning("cannot open %s: %s; retrying in %.1f s", self.name, exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            opened = time.monotonic()
            log.info("listening on %s", self.name)
            try:
                self._pump(port, stop)
            except (serial.SerialException, OSError) as exc:
                self.stats.reconnects += 1
                # A port that keeps failing right after opening backs off;
                # one that worked for a while is retried quickly.
                if time.monotonic() - opened > 10 * BACKOFF_MAX:
                    delay = BACKOFF_MIN
                log.warning("lost %s: %s; reopening in %.1f s", self.name, exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            finally:
                self.session.link_reset()
                try:
                    port.close()
                except Exception:  # noqa: BLE001 - closing a dead port may fail too
                    pass
        return self.stats

    def _pump(self, port: Port, stop: threading.Event) -> None:
        session = self.session

        def send(data: bytes) -> None:
            try:
                port.write(data)
            except serial.SerialTimeoutException:
                # The peer is not reading: drop this reply rather than block
                # forever.  The next frame's leading 0x00 resyncs the peer.
                self.stats.dropped_replies += 1
                log.warning("write timed out on %s: reply dropped", self.name)

        session.send = send
        while not stop.is_set():
            waiting = port.in_waiting
            data = port.read(min(max(waiting, 1), READ_CHUNK))
            now = time.monotonic()
            if data:
                session.feed(data, now)
            else:
                session.tick(now)


def make_session(
    model: Any,
    protocol: str,
    window: int = 0,
    hop: int = 0,
    max_frame: int | None = None,
    frame_timeout: float = 0.5,
    max_line: int | None = None,
    stats: Stats | None = None,
) -> Session:
    """The protocol logic without a port: tests feed it bytes directly."""
    stats = stats or Stats()
    service = ModelService(model, stats, window, hop)
    if protocol == "jsonl":
        values = sum(t.size for t in service.inputs)
        return JsonlSession(service, stats, max_line or max(4096, 32 * values + 1024))
    if protocol != "binary":
        raise ValueError(f"protocol must be 'binary' or 'jsonl', got {protocol!r}")
    mf = max_frame or default_max_frame(service)
    if not sp.MIN_MAX_FRAME <= mf <= sp.PROTOCOL_MAX_FRAME:
        raise ValueError(f"--max-frame must be in [{sp.MIN_MAX_FRAME}, {sp.PROTOCOL_MAX_FRAME}], got {mf}")
    need = sp.FRAME_OVERHEAD + sum(t.nbytes for t in service.inputs)
    if mf < need:
        raise ValueError(f"--max-frame {mf} cannot hold one INFER of this model ({need} bytes)")
    return BinarySession(service, stats, mf, frame_timeout)


def open_serial(url: str, baud: int, write_timeout: float) -> Port:
    return serial.serial_for_url(url, baudrate=baud, timeout=READ_TIMEOUT, write_timeout=write_timeout)  # type: ignore[no-any-return]


# -------------------------------------------------------------------- CLI ---


def add_serial_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("serial server (docs/serial-protocol.md)")
    g.add_argument(
        "--serial",
        metavar="PORT",
        help="serve the model on PORT: a device (/dev/ttyAMA0, /dev/ttyUSB0, "
        "/dev/pts/3) or a pyserial URL (socket://host:port, rfc2217://host:port, loop://)",
    )
    g.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200; ignored by USB-CDC and ptys)")
    g.add_argument(
        "--protocol",
        choices=["binary", "jsonl"],
        default="binary",
        help="binary COBS frames (firmware) or JSON lines (people, scripts); default binary",
    )
    g.add_argument(
        "--window",
        type=int,
        default=0,
        metavar="N",
        help="streaming mode: input is a stream of samples; run on the last N samples",
    )
    g.add_argument(
        "--hop", type=int, default=0, metavar="M", help="streaming mode: run every M new samples (default N)"
    )
    g.add_argument(
        "--max-frame",
        type=int,
        default=0,
        metavar="BYTES",
        help="longest frame accepted, decoded (default: one INFER, at least 1024)",
    )
    g.add_argument(
        "--frame-timeout",
        type=float,
        default=0.5,
        metavar="S",
        help="drop a frame whose bytes stop arriving for S seconds (default 0.5)",
    )
    g.add_argument("--verbose", "-v", action="store_true", help="log every bad frame")


def serve_from_args(model: Any, args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM.  Returns the exit code."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("tinyrt serial: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.hop and not args.window:
        print("error: --hop needs --window", file=sys.stderr)
        return 2
    if args.window < 0 or args.hop < 0 or args.baud <= 0 or args.frame_timeout <= 0:
        print("error: --window, --hop, --baud and --frame-timeout must be positive", file=sys.stderr)
        return 2
    try:
        session = make_session(model, args.protocol, args.window, args.hop, args.max_frame or None, args.frame_timeout)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    svc = session.service
    biggest = sp.wire_size(12 + sum(t.nbytes for t in svc.outputs))
    # A reply must be able to leave at the line rate; beyond that (3x) the
    # peer is not reading and the reply is dropped instead of blocking.
    write_timeout = 1.0 + 3 * biggest * 10 / args.baud
    server = SerialServer(session, lambda: open_serial(args.serial, args.baud, write_timeout), args.serial)
    mode = f"streaming window {svc.stream.window} hop {svc.stream.hop}" if svc.stream else "one tensor per request"
    limit = (
        f"max frame {session.max_frame} bytes"
        if isinstance(session, BinarySession)
        else f"max line {session.max_line} bytes"
    )
    log.info(
        "serving %s on %s at %d baud: %s protocol, %s, %s",
        args.model,
        args.serial,
        args.baud,
        args.protocol,
        mode,
        limit,
    )

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stats = server.serve(stop)
    except ValueError as exc:  # a malformed URL or an unsupported baud rate: not worth retrying
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    print(stats.summary(f" on {args.serial}"), file=sys.stderr, flush=True)
    return 0
