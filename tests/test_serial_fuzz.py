"""Fuzz and soak: the server survives anything and answers every valid frame exactly once, in order."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import model_path

import runtime
from runtime import serial_protocol as sp
from runtime.client import loop_pair
from runtime.serial_server import SerialServer, make_session


@pytest.fixture(scope="module")
def ad01():
    return runtime.load(model_path("ad01_int8"), backend="c")


def mutate(rng: np.random.Generator, frame: bytes) -> bytes:
    b = bytearray(frame)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(6))
        if kind == 0 and b:
            b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            b = b[: int(rng.integers(len(b) + 1))]
        elif kind == 2 and b:
            del b[int(rng.integers(len(b)))]
        elif kind == 3:
            i = int(rng.integers(len(b) + 1))
            b[i:i] = rng.bytes(int(rng.integers(1, 16)))
        elif kind == 4 and b:
            i = int(rng.integers(len(b)))
            b[i:i] = b[i : i + int(rng.integers(1, 40))]
        else:
            b.insert(int(rng.integers(len(b) + 1)), 0)
    return bytes(b)


def expected_replies(chunk: bytes, max_frame: int) -> int:
    """One reply per non-empty run between delimiters, except intact frames
    of a reply type, which are never answered."""
    n = 0
    for ev in sp.FrameDecoder(max_frame).feed(b"\x00" + chunk + b"\x00"):
        n += not (isinstance(ev, sp.Frame) and ev.type & sp.REPLY_BIT)
    return n


def test_fuzz_10000_random_and_mutated_frames(ad01):
    rng = np.random.default_rng(1)
    session = make_session(ad01, "binary", max_frame=1024, frame_timeout=0.5)
    out: list[bytes] = []
    session.send = out.append
    client_dec = sp.FrameDecoder()
    x = rng.integers(-128, 128, size=(1, 640), dtype=np.int8)
    valid = [
        sp.encode_frame(sp.MsgType.INFER, 7, x.tobytes()),
        sp.encode_frame(sp.MsgType.HELLO, 8, b"\x01"),
        sp.encode_frame(sp.MsgType.PING, 9, rng.bytes(50)),
        sp.encode_frame(sp.MsgType.SAMPLES, 10, rng.bytes(3)),
        sp.encode_frame(sp.MsgType.RESULT, 11, rng.bytes(20)),
        sp.encode_frame(0x42, 12, b""),
    ]
    kinds = {"random": 0, "mutated": 0}
    now = 1000.0
    for i in range(10_000):
        if i % 2:
            chunk = rng.bytes(int(rng.integers(0, 400)))
            if rng.random() < 0.5:
                chunk = chunk.replace(b"\x00", b"")  # long runs without a delimiter
            kinds["random"] += 1
        else:
            chunk = mutate(rng, valid[int(rng.integers(len(valid)))])
            kinds["mutated"] += 1
        out.clear()
        # Delimited, as if there were a quiet gap: exactly one reply per run.
        session.feed(b"\x00" + chunk + b"\x00", now)
        replies = client_dec.feed(b"".join(out))
        assert all(isinstance(r, sp.Frame) for r in replies), i
        assert len(replies) == expected_replies(chunk, 1024), (i, chunk)
        assert session.decoder.pending == 0
        if i % 1000 == 999:  # and a chunk left open, to time out
            out.clear()
            session.feed(chunk.replace(b"\x00", b"") + b"\x01", now)
            now += 1.0
            session.tick(now)
            replies = client_dec.feed(b"".join(out))
            assert [sp.decode_error(r.payload)[0] for r in replies] == [sp.ErrorCode.TRUNCATED]
    assert kinds == {"random": 5000, "mutated": 5000}
    assert sum(session.stats.errors.values()) > 8000
    # still answers a valid INFER correctly
    out.clear()
    session.feed(sp.encode_frame(sp.MsgType.INFER, 123, x.tobytes()), now)
    (res,) = client_dec.feed(b"".join(out))
    assert (res.type, res.seq) == (sp.MsgType.RESULT, 123)
    assert sp.decode_result(res.payload)[1] == ad01.run([x])[0].tobytes()


def test_fuzz_undelimited_byte_soup_keeps_memory_bounded(ad01):
    rng = np.random.default_rng(2)
    session = make_session(ad01, "binary", max_frame=1024)
    out: list[bytes] = []
    session.send = out.append
    frames = [sp.encode_frame(sp.MsgType.PING, i, rng.bytes(int(rng.integers(0, 900)))) for i in range(50)]
    soup = b"".join(
        mutate(rng, f) if rng.random() < 0.7 else rng.bytes(int(rng.integers(1, 3000))) for f in frames * 20
    )
    limit = 1024 + 1024 // 254 + 8
    for i in range(0, len(soup), 333):
        session.feed(soup[i : i + 333], 0.0)
        assert session.decoder.pending <= limit
    out.clear()
    x = np.zeros((1, 640), np.int8)
    session.feed(sp.encode_frame(sp.MsgType.INFER, 5, x.tobytes()), 0.0)
    events = sp.FrameDecoder().feed(b"".join(out))
    assert events[-1].type == sp.MsgType.RESULT and events[-1].seq == 5
    assert sp.decode_result(events[-1].payload)[1] == ad01.run([x])[0].tobytes()


def test_fuzz_jsonl_lines(ad01):
    rng = np.random.default_rng(3)
    session = make_session(ad01, "jsonl")
    out: list[bytes] = []
    session.send = out.append
    alphabet = np.frombuffer(b'[]{}",:0123456789.-eE truefalsnul\\"#' + bytes(range(256)), np.uint8)
    for i in range(2000):
        line = alphabet[rng.integers(0, len(alphabet), size=int(rng.integers(1, 120)))].tobytes()
        line = line.replace(b"\n", b" ").replace(b"\r", b" ")
        out.clear()
        session.feed(line + b"\n", 0.0)
        # The documented rule: blank lines and UTF-8 lines starting with '#'
        # get no reply, every other line exactly one.
        try:
            comment = line.decode("utf-8").strip().startswith("#")
        except UnicodeDecodeError:
            comment = False
        want = 0 if not line.strip() or comment else 1
        replies = [json.loads(r) for r in b"".join(out).splitlines()]
        assert len(replies) == want, (i, line)
        assert all(r["type"] in ("error", "result") for r in replies)
    out.clear()
    session.feed(json.dumps({"input": [3] * 640, "raw": True}).encode() + b"\n", 0.0)
    (r,) = [json.loads(x) for x in b"".join(out).splitlines()]
    assert r["outputs"][0]["values"] == ad01.run([np.full((1, 640), 3, np.int8)])[0].reshape(-1).tolist()


def test_soak_infers_with_interleaved_garbage_over_loop():
    # hello_world's one-byte input keeps the byte-at-a-time loop:// queues busy
    # with framing rather than payload;
    # its 256 possible inputs are all precomputed.
    model = runtime.load(model_path("hello_world_int8"), backend="c")
    table = {v: model.run([np.array([[v]], np.int8)])[0].tobytes() for v in range(-128, 128)}
    rng = np.random.default_rng(4)
    # loop:// moves one byte per queue operation, so this in-process soak is
    # 3,000 frames; the 10,000-frame soak runs over a pty (test_serial_pty.py).
    n = 3_000
    inputs = rng.integers(-128, 128, size=n, dtype=np.int8)
    server_end, client_end = loop_pair()
    server = SerialServer(make_session(model, "binary", frame_timeout=5.0), lambda: server_end, "loop")
    stop = threading.Event()
    srv = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    srv.start()

    results: list[sp.Frame] = []
    errors: list[sp.Frame] = []
    decoder = sp.FrameDecoder()
    done = threading.Event()

    def reader() -> None:
        deadline = time.monotonic() + 60
        while len(results) < n and time.monotonic() < deadline:
            data = client_end.read(max(1, client_end.in_waiting))
            for ev in decoder.feed(data):
                assert isinstance(ev, sp.Frame)
                (results if ev.type == sp.MsgType.RESULT else errors).append(ev)
        done.set()

    rd = threading.Thread(target=reader, daemon=True)
    rd.start()
    garbage_runs = 0
    t0 = time.monotonic()
    for seq in range(n):
        if rng.random() < 0.5:
            junk = rng.bytes(int(rng.integers(1, 40)))
            garbage_runs += 1
            client_end.write(junk)
        client_end.write(sp.encode_frame(sp.MsgType.INFER, seq, inputs[seq].tobytes()))
    done.wait(60)
    # let any late (duplicate) answer arrive before judging "exactly once"
    time.sleep(0.2)
    stop.set()
    srv.join(5)
    elapsed = time.monotonic() - t0
    assert [f.seq for f in results] == list(range(n)), "every valid frame answered exactly once, in order"
    mismatches = [f.seq for f in results if sp.decode_result(f.payload)[1] != table[int(inputs[f.seq])]]
    assert mismatches == []
    assert all(f.type == sp.MsgType.ERROR and sp.decode_error(f.payload)[0] <= sp.ErrorCode.TOO_LONG for f in errors)
    # garbage ended by a frame's leading 0x00 is one bad run each (unless it held zeros itself)
    assert garbage_runs <= len(errors) <= garbage_runs * 3
    assert server.stats.inferences == n
    print(f"soak: {n} frames, {garbage_runs} garbage runs, {len(errors)} errors in {elapsed:.1f} s")
