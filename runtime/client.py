"""python -m runtime.client PORT --input FILE: run inferences on a tinyrt serial server.

Speaks the binary protocol (docs/serial-protocol.md).  As a library:

    from runtime.client import Client
    with Client("/dev/ttyUSB0", baud=921600) as c:
        info = c.hello()                 # inputs/outputs, max frame, streaming
        (y,) = c.infer([x])              # raw output tensors, like Model.run
        ys = c.infer_many(batch)         # pipelined, in order
        c.send_samples(chunk)            # streaming servers (--window)
        for r in c.stream_results(n): ...

Exit codes: 0 ok, 2 bad arguments or input, 3 the server answered an error
or did not answer, 1 internal error.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import select
import struct
import sys
import termios
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import serial

from . import serial_protocol as sp

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_SERVER = 0, 1, 2, 3
POLL = 0.02  # port read timeout: the granularity of the client's deadlines


class ServerError(RuntimeError):
    """The server answered a request with ERROR."""

    def __init__(self, seq: int, code: int, message: str):
        try:
            name = sp.ErrorCode(code).name
        except ValueError:
            name = f"code {code}"
        super().__init__(f"server error {name} (seq {seq}): {message}")
        self.seq, self.code, self.message = seq, code, message


class NoAnswer(TimeoutError):
    """No reply within the timeout, after all retries."""


@dataclass(frozen=True)
class StreamResult:
    seq: int  # of the SAMPLES frame that completed the window
    end_sample: int
    infer_us: int
    outputs: list[np.ndarray]


class FdPort:
    """A minimal pyserial-like port over a file descriptor: the master side of
    a pseudo-terminal (os.openpty) or a socket.  Raises SerialException when
    the other end has gone, as pyserial does."""

    def __init__(self, fd: int, timeout: float = POLL, write_timeout: float | None = 10.0, close_fd: bool = True):
        self.fd = fd
        self.timeout = timeout
        self.write_timeout = write_timeout
        self._close_fd = close_fd
        self.is_open = True

    @property
    def in_waiting(self) -> int:
        buf = fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", buf)[0])

    def read(self, size: int = 1) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], self.timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, size)
        except OSError as exc:  # EIO: the pty's other side closed
            raise serial.SerialException(f"read failed: {exc}") from exc
        if not data:
            raise serial.SerialException("the other end closed the connection")
        return data

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        deadline = None if self.write_timeout is None else time.monotonic() + self.write_timeout
        while view:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            _, ready, _ = select.select([], [self.fd], [], left)
            if not ready:
                raise serial.SerialTimeoutException("write timeout")
            try:
                n = os.write(self.fd, view)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    continue
                raise serial.SerialException(f"write failed: {exc}") from exc
            view = view[n:]
        return len(data)

    def close(self) -> None:
        if self.is_open and self._close_fd:
            os.close(self.fd)
        self.is_open = False


class CrossedPort:
    """One end of an in-process serial link: reads one pyserial port, writes
    another.  See loop_pair()."""

    def __init__(self, rx: Any, tx: Any):
        self.rx, self.tx = rx, tx

    @property
    def in_waiting(self) -> int:
        return int(self.rx.in_waiting)

    def read(self, size: int = 1) -> bytes:
        return bytes(self.rx.read(size))

    def write(self, data: bytes) -> int:
        return int(self.tx.write(data))

    def close(self) -> None:
        """Both loops stay open: the other end may still use them."""


def loop_pair(timeout: float = POLL) -> tuple[CrossedPort, CrossedPort]:
    """Two connected ends of an in-process serial line made of two pyserial
    loop:// ports (a single loop:// echoes a port's writes back to itself),
    for testing a server and a client without hardware."""
    a = serial.serial_for_url("loop://", timeout=timeout)
    b = serial.serial_for_url("loop://", timeout=timeout)
    return CrossedPort(a, b), CrossedPort(b, a)


def _to_tensor(desc: sp.TensorDesc, value: Any) -> np.ndarray:
    """An input value -> the tensor's dtype and shape, as Model.run would
    take it: integer data of the right type is raw, floats are quantized."""
    arr = np.asarray(value)
    if arr.dtype != desc.dtype:
        if arr.dtype.kind == "f" and desc.quantized:
            from .model import TensorInfo

            arr = TensorInfo(desc.name, desc.shape, desc.dtype, desc.scale, desc.zero_point).quantize(arr)
        elif arr.dtype.kind in "fiu" and desc.dtype.kind == "f":
            arr = arr.astype(desc.dtype)
        else:
            raise ValueError(f"input {desc.name!r}: expected {desc.dtype} (or float to be quantized), got {arr.dtype}")
    if arr.size != desc.size:
        raise ValueError(f"input {desc.name!r}: needs {desc.size} values (shape {list(desc.shape)}), got {arr.size}")
    return arr.reshape(desc.shape)


class Client:
    """A connection to a tinyrt serial server (binary protocol).

    port: a device path or pyserial URL, or an open port object (pyserial
    Serial, FdPort).  Requests that get no answer within `timeout` seconds,
    or whose frame the server reports damaged (BAD_CRC, TRUNCATED), are sent
    again up to `retries` times, each time with a new sequence number so a
    late answer to the old one is recognised and dropped."""

    def __init__(
        self,
        port: str | Any,
        baud: int = 115200,
        timeout: float = 2.0,
        retries: int = 2,
        max_frame: int = sp.PROTOCOL_MAX_FRAME,
    ):
        if isinstance(port, str):
            port = serial.serial_for_url(port, baudrate=baud, timeout=POLL, write_timeout=max(10.0, timeout))
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.decoder = sp.FrameDecoder(max_frame)
        self.info: sp.ServerInfo | None = None
        self.last_infer_us = 0
        self.frame_errors = 0  # ERRORs about frames that were not ours (e.g. line noise)
        self.stale = 0  # replies to requests already answered or given up
        self._seq = 0
        self._inbox: deque[sp.Frame | sp.FrameError] = deque()
        # Stream results that arrived while waiting for something else; bounded.
        self._stream: deque[StreamResult] = deque(maxlen=65536)

    # -- plumbing -------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.port.close()

    def send(self, msg_type: int, payload: bytes = b"") -> int:
        """Send one frame; returns its sequence number."""
        seq = self._seq
        self._seq = sp.next_seq(seq)
        self.port.write(sp.encode_frame(msg_type, seq, payload))
        return seq

    def events(self, timeout: float) -> Iterator[sp.Frame | sp.FrameError]:
        """Decoder events (frames and frame errors) as they arrive; ends once
        `timeout` seconds pass without one.  The low-level view the tests use
        to see every reply, duplicates and noise included."""
        deadline = time.monotonic() + timeout
        while True:
            while self._inbox:
                yield self._inbox.popleft()
                deadline = time.monotonic() + timeout
            if time.monotonic() >= deadline:
                return
            waiting = self.port.in_waiting
            data = self.port.read(min(max(waiting, 1), 65536))
            if data:
                self._inbox.extend(self.decoder.feed(data))

    def _next(self, deadline: float) -> sp.Frame | None:
        """The next intact frame before the deadline (frame errors counted)."""
        while True:
            if self._inbox:
                ev = self._inbox.popleft()
                if isinstance(ev, sp.Frame):
                    return ev
                continue  # our own receive side saw noise: nothing to answer
            if time.monotonic() >= deadline:
                return None
            data = self.port.read(min(max(self.port.in_waiting, 1), 65536))
            if data:
                self._inbox.extend(self.decoder.feed(data))

    def _keep_stream(self, frame: sp.Frame) -> bool:
        if frame.type != sp.MsgType.STREAM_RESULT or self.info is None:
            return False
        end, us, data = sp.decode_stream_result(frame.payload)
        self._stream.append(StreamResult(frame.seq, end, us, sp.unpack_tensors(self.info.outputs, data)))
        return True

    def request(self, msg_type: int, payload: bytes, reply_type: int) -> sp.Frame:
        """Send a request and wait for its reply, with retries."""
        return self._pipeline([(msg_type, payload)], reply_type, depth=1)[0]

    def _pipeline(self, requests: Sequence[tuple[int, bytes]], reply_type: int, depth: int) -> list[sp.Frame]:
        """Send requests with at most `depth` unanswered; replies in request order."""
        replies: list[sp.Frame | None] = [None] * len(requests)
        pending: dict[int, tuple[int, int, float]] = {}  # seq -> (index, attempt, sent at)
        nxt = 0
        done = 0

        def submit(index: int, attempt: int) -> None:
            msg_type, payload = requests[index]
            seq = self.send(msg_type, payload)
            pending[seq] = (index, attempt, time.monotonic())

        def retry(seq: int, why: str) -> None:
            index, attempt, _ = pending.pop(seq)
            if attempt >= self.retries:
                raise NoAnswer(f"request {index} (seq {seq}): {why} after {attempt + 1} attempts")
            submit(index, attempt + 1)

        while done < len(requests):
            while nxt < len(requests) and len(pending) < depth:
                submit(nxt, 0)
                nxt += 1
            oldest = min(pending, key=lambda s: pending[s][2])
            frame = self._next(pending[oldest][2] + self.timeout)
            if frame is None:
                retry(oldest, "no answer")
                continue
            if self._keep_stream(frame):
                continue
            if frame.seq not in pending:
                if frame.type == sp.MsgType.ERROR and sp.decode_error(frame.payload)[0] <= sp.ErrorCode.TOO_LONG:
                    self.frame_errors += 1
                else:
                    self.stale += 1
                continue
            if frame.type == sp.MsgType.ERROR:
                code, text = sp.decode_error(frame.payload)
                if code in (sp.ErrorCode.BAD_CRC, sp.ErrorCode.TRUNCATED):
                    retry(frame.seq, f"frame damaged on the way ({text})")
                    continue
                raise ServerError(frame.seq, code, text)
            if frame.type != reply_type:
                self.stale += 1
                continue
            index, _, _ = pending.pop(frame.seq)
            replies[index] = frame
            done += 1
        return [r for r in replies if r is not None]

    # -- API --------------------------------------------------------------------

    def hello(self) -> sp.ServerInfo:
        """Start a session: the server resets its sample stream and describes its model."""
        frame = self.request(sp.MsgType.HELLO, bytes([sp.PROTOCOL_VERSION]), sp.MsgType.INFO)
        self.info = sp.decode_info(frame.payload)
        return self.info

    def ping(self, payload: bytes = b"") -> float:
        """Round-trip time in seconds."""
        t0 = time.perf_counter()
        frame = self.request(sp.MsgType.PING, payload, sp.MsgType.PONG)
        if frame.payload != payload:
            raise sp.ProtocolError("PONG does not echo the PING payload")
        return time.perf_counter() - t0

    def _info(self) -> sp.ServerInfo:
        return self.info or self.hello()

    def encode_inputs(self, inputs: Sequence[Any] | np.ndarray) -> bytes:
        info = self._info()
        values = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        if len(values) != len(info.inputs):
            raise ValueError(f"the model takes {len(info.inputs)} input(s), got {len(values)}")
        payload = sp.pack_tensors(info.inputs, [_to_tensor(d, v) for d, v in zip(info.inputs, values, strict=True)])
        if len(payload) + sp.FRAME_OVERHEAD > info.max_frame:
            raise ValueError(f"INFER of {len(payload)} bytes exceeds the server's max frame {info.max_frame}")
        return payload

    def _outputs(self, frame: sp.Frame) -> list[np.ndarray]:
        us, data = sp.decode_result(frame.payload)
        self.last_infer_us = us
        return sp.unpack_tensors(self._info().outputs, data)

    def infer(self, inputs: Sequence[Any] | np.ndarray) -> list[np.ndarray]:
        """One inference: the raw output tensors, as Model.run returns them."""
        frame = self.request(sp.MsgType.INFER, self.encode_inputs(inputs), sp.MsgType.RESULT)
        return self._outputs(frame)

    def infer_many(self, batch: Iterable[Sequence[Any] | np.ndarray], depth: int = 4) -> list[list[np.ndarray]]:
        """Several inferences with up to `depth` requests in flight (hides the
        line's round trip); results in order.  Keep depth * reply size under
        a few KiB so neither side's OS buffer fills while the other writes."""
        payloads = [(int(sp.MsgType.INFER), self.encode_inputs(x)) for x in batch]
        return [self._outputs(f) for f in self._pipeline(payloads, sp.MsgType.RESULT, depth)]

    def send_samples(self, samples: np.ndarray) -> int:
        """Streaming servers: send samples (raw input-dtype values, or floats
        to quantize); a whole number of samples, at most one frame's worth."""
        info = self._info()
        if not info.streaming:
            raise ValueError("the server is not in streaming mode (start it with --window)")
        desc = info.inputs[0]
        flat = np.asarray(samples).reshape(-1)
        if flat.size % info.sample_values:
            raise ValueError(f"{flat.size} values is not a whole number of {info.sample_values}-value samples")
        one = sp.TensorDesc(desc.name, (flat.size,), desc.dtype, desc.scale, desc.zero_point)
        payload = sp.pack_tensors([one], [_to_tensor(one, flat)])
        if len(payload) + sp.FRAME_OVERHEAD > info.max_frame:
            raise ValueError(f"SAMPLES of {len(payload)} bytes exceeds the server's max frame {info.max_frame}")
        seq = self.send(sp.MsgType.SAMPLES, payload)
        self._drain()
        return seq

    def _drain(self) -> None:
        """Take in what has arrived without waiting, so a long stream of
        SAMPLES never leaves the server blocked writing results to us."""
        while self.port.in_waiting:
            self._inbox.extend(self.decoder.feed(self.port.read(min(self.port.in_waiting, 65536))))
        kept: deque[sp.Frame | sp.FrameError] = deque()
        while self._inbox:
            ev = self._inbox.popleft()
            if not (isinstance(ev, sp.Frame) and self._keep_stream(ev)):
                kept.append(ev)
        self._inbox = kept

    def stream_results(self, count: int, timeout: float | None = None) -> list[StreamResult]:
        """Wait for `count` stream results (those already received count)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out: list[StreamResult] = []
        while len(out) < count:
            if self._stream:
                out.append(self._stream.popleft())
                continue
            frame = self._next(deadline)
            if frame is None:
                raise NoAnswer(f"{len(out)} of {count} stream results before the timeout")
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            if self._keep_stream(frame):
                continue
            if frame.type == sp.MsgType.ERROR:
                code, text = sp.decode_error(frame.payload)
                if code > sp.ErrorCode.TOO_LONG:
                    raise ServerError(frame.seq, code, text)
                self.frame_errors += 1
            else:
                self.stale += 1
        return out


def expected_stream_results(samples: int, window: int, hop: int) -> int:
    """Windows completed by `samples` samples from a fresh stream."""
    return 0 if samples < window else 1 + (samples - window) // hop


# -------------------------------------------------------------------- CLI ---


def _load_file(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.keys()}
    if suffix == ".json":
        return np.asarray(json.loads(path.read_text()), dtype=np.float64)
    if suffix in (".csv", ".txt"):
        rows = [r for r in path.read_text().splitlines() if r.strip() and not r.lstrip().startswith("#")]
        return np.array([[float(v) for v in r.replace(";", ",").split(",") if v.strip()] for r in rows])
    raise ValueError(f"unknown input format {suffix!r}: use .npy, .npz, .json or .csv")


def batch_inputs(info: sp.ServerInfo, data: np.ndarray | dict[str, np.ndarray]) -> tuple[list[list[np.ndarray]], bool]:
    """One input set or a batch of them (a leading axis).  Returns the list
    of input lists and whether it was a batch."""
    if isinstance(data, dict):
        names = [d.name for d in info.inputs]
        arrays = [data[n] for n in names] if all(n in data for n in names) else list(data.values())
        if len(arrays) != len(info.inputs):
            raise ValueError(f"the .npz has {sorted(data)}; the model's inputs are {names}")
    else:
        if len(info.inputs) != 1:
            raise ValueError("this model has several inputs: give an .npz file")
        arrays = [data]
    first, d0 = arrays[0], info.inputs[0]
    if first.size == d0.size:
        return [arrays], False
    # A CSV of one row per inference reads as (B, values).
    if first.size % d0.size == 0:
        n = first.size // d0.size
        return [[np.asarray(a).reshape(n, -1)[i] for a in arrays] for i in range(n)], True
    raise ValueError(
        f"input {d0.name!r} needs {d0.size} values (shape {list(d0.shape)}) or a batch of them, got {first.size}"
    )


def _describe(desc: sp.TensorDesc, raw: np.ndarray) -> str:
    flat = raw.reshape(-1)
    if desc.quantized:
        real = desc.scale * (flat.astype(np.float64) - desc.zero_point)
    else:
        real = flat.astype(np.float64)
    if 2 <= flat.size <= 10000 and raw.size == raw.shape[-1]:
        k = int(np.argmax(real))
        return f"{desc.name}: class {k} score {real[k]:.4f}"
    with np.printoptions(threshold=8, edgeitems=3, precision=4, suppress=True):
        return f"{desc.name}: {np.array2string(real, separator=' ')}"


def _write_outputs(
    path: Path, info: sp.ServerInfo, results: list[list[np.ndarray]], batch: bool, dequantize: bool
) -> None:
    def value(desc: sp.TensorDesc, a: np.ndarray) -> np.ndarray:
        if dequantize and desc.quantized:
            return (desc.scale * (a.astype(np.float64) - desc.zero_point)).astype(np.float32)
        return a

    per_output = [[value(d, r[i]) for r in results] for i, d in enumerate(info.outputs)]
    stacked = [np.stack(vals) if batch else vals[0] for vals in per_output]
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, stacked[0])
    elif suffix == ".npz":
        arrays = {d.name: v for d, v in zip(info.outputs, stacked, strict=True)}
        np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub confuses ** with allow_pickle
    elif suffix == ".json":
        doc = {
            "outputs": [
                {
                    "name": d.name,
                    "shape": list(v.shape),
                    "dtype": str(v.dtype),
                    "scale": d.scale,
                    "zero_point": d.zero_point,
                    "values": v.tolist(),
                }
                for d, v in zip(info.outputs, stacked, strict=True)
            ]
        }
        path.write_text(json.dumps(doc))
    else:
        raise ValueError(f"unknown output format {suffix!r}: use .npy, .npz or .json")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.client", description=__doc__.splitlines()[0])
    p.add_argument("port", help="device path or pyserial URL (socket://host:port, rfc2217://...)")
    p.add_argument(
        "--input",
        required=True,
        help=".npy/.npz/.json/.csv: one input, or a batch along a leading axis (CSV: one row each); "
        "with --stream, the sample stream",
    )
    p.add_argument("--output", help="write outputs to FILE.npy (first output), .npz or .json (stacked for a batch)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply (default 2)")
    p.add_argument("--retries", type=int, default=2, help="resend a request this often (default 2)")
    p.add_argument("--depth", type=int, default=1, help="requests in flight for a batch (default 1)")
    p.add_argument("--stream", action="store_true", help="send the input as a sample stream (server has --window)")
    p.add_argument("--chunk", type=int, default=0, help="samples per SAMPLES frame with --stream (default: hop)")
    p.add_argument("--dequantize", action="store_true", help="write float outputs")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        data = _load_file(Path(args.input))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.input!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with Client(args.port, baud=args.baud, timeout=args.timeout, retries=args.retries) as client:
            info = client.hello()
            t0 = time.perf_counter()
            if args.stream:
                if not info.streaming:
                    raise ValueError("the server is not in streaming mode (start it with --window)")
                if isinstance(data, dict):
                    raise ValueError("--stream takes one array of samples, not an .npz")
                flat = np.asarray(data).reshape(-1)
                f = info.sample_values
                per = max(1, args.chunk or info.hop)
                total = flat.size // f
                for start in range(0, total, per):
                    client.send_samples(flat[start * f : min(total, start + per) * f])
                n = expected_stream_results(total, info.window, info.hop)
                stream = client.stream_results(n)
                results = [r.outputs for r in stream]
                for r in stream if not args.quiet else []:
                    print(
                        f"end sample {r.end_sample}: "
                        + "; ".join(_describe(d, o) for d, o in zip(info.outputs, r.outputs, strict=True))
                        + f"  ({r.infer_us / 1e3:.2f} ms)"
                    )
                batch = True
            else:
                sets, batch = batch_inputs(info, data)
                results = client.infer_many(sets, depth=max(1, args.depth))
                for i, outs in enumerate(results if not args.quiet else []):
                    print(f"#{i}: " + "; ".join(_describe(d, o) for d, o in zip(info.outputs, outs, strict=True)))
            dt = time.perf_counter() - t0
            print(
                f"{len(results)} inference(s) in {dt:.3f} s over {args.port}"
                + (f" ({client.frame_errors} frame errors seen)" if client.frame_errors else "")
            )
            if args.output and results:
                _write_outputs(Path(args.output), info, results, batch, args.dequantize)
                print(f"outputs written to {args.output}")
        return EXIT_OK
    except (ServerError, NoAnswer) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SERVER
    except (ValueError, serial.SerialException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the documented exit code 1
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
