"""runtime/serial_server.py: replies, errors, jsonl, loop:// and socket:// links, reopen with backoff."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
import serial
from conftest import model_path

import runtime
from runtime import serial_protocol as sp
from runtime.client import Client, FdPort, NoAnswer, ServerError, loop_pair
from runtime.run import build_parser, main
from runtime.serial_server import SerialServer, Stats, make_session, open_serial


@pytest.fixture(scope="module")
def kws():
    return runtime.load(model_path("kws_ref_model"), backend="c")


@pytest.fixture(scope="module")
def ad01():
    return runtime.load(model_path("ad01_int8"), backend="c")


def rand_input(model, rng):
    (info,) = model.inputs
    return rng.integers(-128, 128, size=info.shape, dtype=np.int8)


def feed(session, data: bytes) -> list[sp.Event]:
    out: list[bytes] = []
    session.send = out.append
    session.feed(data, time.monotonic())
    events = sp.FrameDecoder().feed(b"".join(out))
    assert all(isinstance(e, sp.Frame) for e in events), "the server sent an undecodable frame"
    return events


def error_of(frame: sp.Frame) -> tuple[int, int]:
    assert frame.type == sp.MsgType.ERROR
    return frame.seq, sp.decode_error(frame.payload)[0]


def check_result(model, frame: sp.Frame, seq: int, x: np.ndarray) -> None:
    assert (frame.type, frame.seq) == (sp.MsgType.RESULT, seq)
    _, data = sp.decode_result(frame.payload)
    (want,) = model.run([x])
    assert data == want.tobytes()


def test_hello_info_ping(kws):
    s = make_session(kws, "binary")
    info_frame, pong = feed(s, sp.encode_frame(sp.MsgType.HELLO, 1, b"\x01") + sp.encode_frame(3, 2, b"abc\x00"))
    assert (info_frame.type, info_frame.seq) == (sp.MsgType.INFO, 1)
    info = sp.decode_info(info_frame.payload)
    assert info.max_frame == 1024 and not info.streaming
    assert info.inputs[0].shape == (1, 49, 10, 1) and info.inputs[0].dtype == np.int8
    assert info.inputs[0].scale == pytest.approx(kws.inputs[0].scale, rel=1e-7)
    assert info.outputs[0].zero_point == -128 and info.outputs[0].shape == (1, 12)
    assert (pong.type, pong.seq, pong.payload) == (sp.MsgType.PONG, 2, b"abc\x00")


def test_every_malformed_frame_gets_an_error_and_the_server_goes_on(kws):
    s = make_session(kws, "binary")
    rng = np.random.default_rng(5)
    x = rand_input(kws, rng)
    good = sp.encode_frame(sp.MsgType.INFER, 40, x.tobytes())
    body = bytearray(sp.cobs_decode(good[1:-1]))
    body[100] ^= 0x10
    bad_crc = b"\x00" + sp.cobs_encode(body) + b"\x00"
    cases = [
        (bad_crc, (40, sp.ErrorCode.BAD_CRC)),
        (good[: len(good) // 2], (40, sp.ErrorCode.TRUNCATED)),  # cut short; ended by the next leading 0x00
        (sp.encode_frame(sp.MsgType.INFER, 41, bytes(2000)), (41, sp.ErrorCode.TOO_LONG)),
        (sp.encode_frame(0x7E, 42, b""), (42, sp.ErrorCode.UNKNOWN_TYPE)),
        (sp.encode_frame(sp.MsgType.INFER, 43, x.tobytes()[:-1]), (43, sp.ErrorCode.BAD_SIZE)),
        (sp.encode_frame(sp.MsgType.INFER, 44, b""), (44, sp.ErrorCode.BAD_SIZE)),
        (sp.encode_frame(sp.MsgType.SAMPLES, 45, b"\x01"), (45, sp.ErrorCode.BAD_STATE)),
        (sp.encode_frame(sp.MsgType.HELLO, 46, b"\x02"), (46, sp.ErrorCode.BAD_VERSION)),
        (sp.encode_frame(sp.MsgType.HELLO, 47, b""), (47, sp.ErrorCode.BAD_SIZE)),
        (b"\x00\x01\x00", (sp.NO_SEQ, sp.ErrorCode.TRUNCATED)),  # decodes to 0 bytes
        (b"\x00\x55\x00", (sp.NO_SEQ, sp.ErrorCode.TRUNCATED)),  # a lone noise byte
    ]
    for i, (bad, want) in enumerate(cases):
        err, result = feed(s, bad + good)
        assert error_of(err) == want, i
        check_result(kws, result, 40, x)
    assert s.stats.errors == {
        "bad_crc": 1,
        "truncated": 3,
        "too_long": 1,
        "unknown_type": 1,
        "bad_size": 3,
        "bad_state": 1,
        "bad_version": 1,
    }
    assert s.stats.inferences == len(cases)


def test_replies_are_never_answered(kws):
    s = make_session(kws, "binary")
    frames = b"".join(sp.encode_frame(t, 3, b"xyz") for t in (0x80, 0x81, 0x82, 0x83, 0x84, 0xFF))
    assert feed(s, frames) == []
    assert s.stats.ignored == 6 and s.stats.replies == 0


def test_partial_frame_times_out(kws):
    s = make_session(kws, "binary", frame_timeout=0.5)
    out: list[bytes] = []
    s.send = out.append
    s.feed(sp.encode_frame(sp.MsgType.PING, 77, b"123456")[:6], now=100.0)
    s.tick(100.4)
    assert out == []
    s.tick(100.6)
    (err,) = sp.FrameDecoder().feed(b"".join(out))
    assert error_of(err) == (77, sp.ErrorCode.TRUNCATED)
    assert s.decoder.pending == 0


def test_float_model_over_binary():
    pytest.importorskip("ai_edge_litert")  # the C backend runs int8 models only
    model = runtime.load(model_path("hello_world_float"), backend="tflite")
    s = make_session(model, "binary")
    x = np.array([[1.25]], dtype=np.float32)
    (info,) = feed(s, sp.encode_frame(sp.MsgType.HELLO, 0, b"\x01"))
    assert sp.decode_info(info.payload).inputs[0].dtype == np.float32
    (res,) = feed(s, sp.encode_frame(sp.MsgType.INFER, 1, x.tobytes()))
    _, data = sp.decode_result(res.payload)
    assert np.frombuffer(data, "<f4").tolist() == model.run([x])[0].reshape(-1).tolist()


@contextmanager
def served(session, open_port, name="test"):
    server = SerialServer(session, open_port, name)
    stop = threading.Event()
    t = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    t.start()
    try:
        yield server
    finally:
        stop.set()
        t.join(5)
        assert not t.is_alive()


@pytest.mark.parametrize("name", ["kws_ref_model", "ad01_int8", "hello_world_int8"])
def test_loop_round_trip_is_bit_exact(name):
    model = runtime.load(model_path(name), backend="c")
    server_end, client_end = loop_pair()
    rng = np.random.default_rng(11)
    with served(make_session(model, "binary"), lambda: server_end):
        client = Client(client_end, timeout=5)
        info = client.hello()
        assert [d.shape for d in info.inputs] == [t.shape for t in model.inputs]
        xs = [[rand_input(model, rng)] for _ in range(20)]
        for x in xs[:5]:
            (y,) = client.infer(x)
            assert y.dtype == model.outputs[0].dtype
            np.testing.assert_array_equal(y, model.run(x)[0])
        for x, ys in zip(xs, client.infer_many(xs, depth=3), strict=True):
            np.testing.assert_array_equal(ys[0], model.run(x)[0])
        # floats are quantized on the client exactly as Model.run does
        xf = rng.standard_normal(model.inputs[0].shape).astype(np.float32) * 20
        np.testing.assert_array_equal(client.infer([xf])[0], model.run([xf])[0])
        assert client.ping(b"\x00" * 10) > 0


class FlakyWrites:
    """Corrupts the n-th written frame (one bit): the server reports BAD_CRC."""

    def __init__(self, port, corrupt: set[int]):
        self.port, self.corrupt, self.n = port, corrupt, 0

    @property
    def in_waiting(self):
        return self.port.in_waiting

    def read(self, size=1):
        return self.port.read(size)

    def write(self, data):
        if self.n in self.corrupt:
            data = bytearray(data)
            data[len(data) // 2] ^= 0x04
        self.n += 1
        return self.port.write(bytes(data))

    def close(self):
        pass


def test_client_resends_a_damaged_request(kws):
    server_end, client_end = loop_pair()
    rng = np.random.default_rng(3)
    x = rand_input(kws, rng)
    with served(make_session(kws, "binary"), lambda: server_end) as server:
        client = Client(FlakyWrites(client_end, corrupt={1, 3}), timeout=5, retries=2)
        client.hello()
        np.testing.assert_array_equal(client.infer([x])[0], kws.run([x])[0])  # writes 1 (bad) and 2
        client.retries = 0
        with pytest.raises(NoAnswer):
            client.infer([x])  # write 3 is damaged and there is no retry left
        with pytest.raises(ServerError) as exc:
            client.request(sp.MsgType.INFER, b"short", sp.MsgType.RESULT)
        assert exc.value.code == sp.ErrorCode.BAD_SIZE
    assert server.stats.errors["bad_crc"] == 2


def test_unread_replies_are_dropped_not_blocking(kws):
    class StuckWrites(FlakyWrites):
        def write(self, data):
            raise serial.SerialTimeoutException("write timeout")

    server_end, client_end = loop_pair()
    with served(make_session(kws, "binary"), lambda: StuckWrites(server_end, set())) as server:
        for seq in range(3):
            client_end.write(sp.encode_frame(sp.MsgType.PING, seq))
        deadline = time.monotonic() + 5
        while server.stats.dropped_replies < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert server.stats.dropped_replies == 3


class RecordingStop(threading.Event):
    def __init__(self):
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return self.is_set()


def test_open_failures_back_off_exponentially(kws, caplog):
    attempts = []
    stop = RecordingStop()
    server_end, _ = loop_pair()

    def opener():
        attempts.append(time.monotonic())
        if len(attempts) <= 7:
            raise serial.SerialException("could not open port /dev/ttyUSB0: No such file or directory")
        stop.set()  # the port works; stop right away
        return server_end

    with caplog.at_level(logging.INFO, logger="tinyrt.serial"):
        SerialServer(make_session(kws, "binary"), opener, "/dev/ttyUSB0").serve(stop)
    assert stop.waits == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0]
    assert sum("cannot open /dev/ttyUSB0" in r.message for r in caplog.records) == 7


def test_socket_port_that_drops_is_reopened(kws, caplog):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port_no = listener.getsockname()[1]
    rng = np.random.default_rng(8)
    session = make_session(kws, "binary")
    with caplog.at_level(logging.INFO, logger="tinyrt.serial"):
        url = f"socket://127.0.0.1:{port_no}"
        with served(session, lambda: open_serial(url, 115200, 2.0), url) as server:
            for _ in range(2):
                conn, _ = listener.accept()
                conn.setblocking(False)
                # pyserial flushes its input when it opens the port, so a HELLO
                # sent right after accept() may be lost: retry it quickly.
                client = Client(FdPort(conn.fileno(), close_fd=False), timeout=0.3, retries=20)
                x = rand_input(kws, rng)
                client.hello()
                np.testing.assert_array_equal(client.infer([x])[0], kws.run([x])[0])
                conn.sendall(sp.encode_frame(sp.MsgType.PING, 9)[:5])  # half a frame, then the line drops
                time.sleep(0.05)
                conn.close()
            deadline = time.monotonic() + 5
            while server.stats.reconnects < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
    listener.close()
    assert server.stats.reconnects == 2
    assert any("lost socket://" in r.message for r in caplog.records)
    assert session.decoder.pending == 0  # the half frame did not survive the reconnect


# ------------------------------------------------------------------ jsonl ---


def jsonl(session, *lines: bytes | str) -> list[dict]:
    out: list[bytes] = []
    session.send = out.append
    for line in lines:
        session.feed(line.encode() if isinstance(line, str) else line, time.monotonic())
    text = b"".join(out).decode()
    assert text == "" or text.endswith("\n")
    return [json.loads(x) for x in text.splitlines()]


def test_jsonl_round_trip_real_and_raw(kws):
    s = make_session(kws, "jsonl")
    rng = np.random.default_rng(4)
    x = rand_input(kws, rng)
    xf = rng.uniform(-30, 30, size=(1, 49, 10, 1)).astype(np.float32)
    r1, r2, r3, r4 = jsonl(
        s,
        json.dumps({"input": x.tolist(), "raw": True, "id": "a"}) + "\n",
        json.dumps(xf.reshape(-1).tolist()) + "\r\n",  # a bare array: real values
        ",".join(str(v) for v in xf.reshape(-1).tolist()) + "\r",  # the same as CSV, a lone \r ends it
        json.dumps({"inputs": {"input_1": x.reshape(-1).tolist()}, "raw": True}) + "\n",
    )
    want = kws.run([x])[0]
    assert r1["type"] == "result" and r1["id"] == "a"
    assert r1["outputs"][0]["values"] == want.reshape(-1).tolist()
    assert r1["outputs"][0]["real"] == kws.run([x], dequantize=True)[0].reshape(-1).tolist()
    assert r2["id"] == 2 and r2["outputs"][0]["values"] == kws.run([xf])[0].reshape(-1).tolist()
    # text floats go through float64 -> float32 like the numpy array did
    assert r3["outputs"][0]["values"] == r2["outputs"][0]["values"]
    assert r4["outputs"][0]["values"] == want.reshape(-1).tolist() and r4["infer_us"] >= 0


def test_jsonl_every_bad_line_gets_one_error_and_the_server_goes_on(ad01):
    s = make_session(ad01, "jsonl")
    good = json.dumps({"input": [1] * 640, "raw": True}) + "\n"
    bad = [
        b"\xff\xfe not utf-8\n",
        "hello there\n",
        "[1, 2, 3]\n",
        '{"input": [1, 2], "bogus": 1}\n',
        '{"input": [[1, 2], [3]]}\n',
        '{"input": [1000], "raw": true}\n',
        '{"input": [1.5], "raw": true}\n',
        '{"samples": [1]}\n',
        '{"cmd": "reboot"}\n',
        '{"raw": "yes", "input": [1]}\n',
        "[" * 5000 + "\n",
        "9" * (s.max_line + 10) + "\n",
    ]
    want_codes = [
        "bad_line",
        "bad_line",
        "bad_size",
        "bad_line",
        "bad_value",
        "bad_value",
        "bad_value",
        "bad_state",
        "unknown_command",
        "bad_line",
        "bad_line",
        "line_too_long",
    ]
    replies = jsonl(s, *bad, "\n", "# a comment\n", good, '{"cmd": "ping", "id": [1]}\n')
    assert [r.get("code") for r in replies[:-2]] == want_codes
    assert all(r["type"] == "error" for r in replies[:-2])
    assert [r["id"] for r in replies[:-2]] == list(range(1, 13))
    assert replies[-2]["type"] == "result" and replies[-2]["id"] == 13
    assert replies[-2]["outputs"][0]["values"] == ad01.run([np.ones((1, 640), np.int8)])[0].reshape(-1).tolist()
    assert replies[-1] == {"type": "pong", "id": [1]}


def test_jsonl_hello_describes_the_model(kws):
    (info,) = jsonl(make_session(kws, "jsonl"), '{"cmd":"hello"}\n')
    assert info["type"] == "info" and info["window"] == 0
    assert info["inputs"][0] == {
        "name": "input_1",
        "shape": [1, 49, 10, 1],
        "dtype": "int8",
        "scale": kws.inputs[0].scale,
        "zero_point": 83,
    }


def test_jsonl_long_line_is_bounded_across_reads(kws):
    s = make_session(kws, "jsonl")
    for _ in range(100):  # 100 reads of 4 KiB without a newline
        assert jsonl(s, b"1," * 2048) == []
        assert len(s._buf) <= s.max_line
    (err,) = jsonl(s, "\n")
    assert err["code"] == "line_too_long"


# -------------------------------------------------------------------- CLI ---


def test_run_parser_has_the_serial_options():
    args = build_parser().parse_args(
        ["m.tflite", "--serial", "loop://", "--baud", "921600", "--protocol", "jsonl", "--window", "49", "--hop", "10"]
    )
    assert (args.serial, args.baud, args.protocol, args.window, args.hop) == ("loop://", 921600, "jsonl", 49, 10)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--window", "11"], "does not divide"),
        (["--hop", "3"], "--hop needs --window"),
        (["--max-frame", "100"], "cannot hold one INFER"),
        (["--serial", "nosuch://x"], "error"),
    ],
)
def test_bad_serial_arguments_exit_2(extra, message, capsys):
    argv = [str(model_path("kws_ref_model")), "--backend", "c"]
    if "--serial" not in extra:
        argv += ["--serial", "loop://"]
    assert main(argv + extra) == 2
    assert message in capsys.readouterr().err


def test_stats_summary_lists_errors_and_latency():
    st = Stats()
    st.frames, st.inferences = 3, 2
    st.errors.update({"bad_crc": 2})
    st.infer_ms.extend([1.0, 2.0])
    st.reply_ms.extend([1.5, 2.5])
    text = st.summary(" on loop://")
    assert "frames: 3 received, 2 errors (bad_crc 2)" in text
    assert "inference p50 1.500 ms p99 1.990 ms" in text


def test_client_events_show_every_reply_including_noise(kws):
    server_end, client_end = loop_pair()
    with served(make_session(kws, "binary"), lambda: server_end):
        client = Client(client_end)
        seq = client.send(sp.MsgType.PING, b"p")
        client.port.write(b"\x00\x42\x42\x00")  # noise: one bad run
        events = list(client.events(0.3))
    assert [(e.type, e.seq) for e in events] == [(sp.MsgType.PONG, seq), (sp.MsgType.ERROR, sp.NO_SEQ)]
    assert sp.decode_error(events[1].payload)[0] == sp.ErrorCode.TRUNCATED


def test_client_cli_exit_codes(tmp_path, capsys):
    from runtime.client import main as client_main

    np.save(tmp_path / "x.npy", np.zeros((1, 49, 10, 1), np.int8))
    # a lone loop:// port: the client hears only its own HELLO, never an INFO
    argv = ["loop://", "--input", str(tmp_path / "x.npy"), "--timeout", "0.1", "--retries", "1"]
    assert client_main(argv) == 3
    assert "no answer after 2 attempts" in capsys.readouterr().err
    assert client_main(["loop://", "--input", str(tmp_path / "missing.npy")]) == 2


def test_a_port_failing_mid_reply_is_reopened_not_reported_as_a_bad_request(kws, caplog):
    class DiesOnWrite(FlakyWrites):
        def write(self, data):
            raise serial.SerialException("write failed: [Errno 5] Input/output error")

    server_end, client_end = loop_pair()
    ports = [DiesOnWrite(server_end, set()), server_end]
    with caplog.at_level(logging.INFO, logger="tinyrt.serial"):
        with served(make_session(kws, "binary"), lambda: ports.pop(0) if ports else server_end) as server:
            client_end.write(sp.encode_frame(sp.MsgType.PING, 1, b"a"))  # its PONG dies with the port
            client = Client(client_end, timeout=0.3, retries=10)
            assert client.ping(b"b") > 0  # answered on the reopened port
    assert server.stats.reconnects == 1 and server.stats.errors == {}
    assert not any("failed" in r.message and "request" in r.message for r in caplog.records)
