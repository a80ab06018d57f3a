"""Streaming mode: the ring buffer (runtime/serial_stream.py) and --window/--hop over both protocols."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import model_path
from hypothesis import given, settings
from hypothesis import strategies as st

import runtime
from runtime import serial_protocol as sp
from runtime.client import Client, expected_stream_results, loop_pair
from runtime.serial_server import SerialServer, make_session
from runtime.serial_stream import SampleWindow, values_per_sample


def collect(win: SampleWindow, chunks) -> list[tuple[int, list]]:
    return [(end, w.copy().tolist()) for chunk in chunks for end, w in win.push(np.asarray(chunk))]


def test_windows_end_exactly_at_the_hops():
    win = SampleWindow(window=4, hop=2, sample_values=1, dtype=np.int32)
    got = collect(win, [[i] for i in range(11)])
    assert got == [
        (4, [[0], [1], [2], [3]]),
        (6, [[2], [3], [4], [5]]),
        (8, [[4], [5], [6], [7]]),
        (10, [[6], [7], [8], [9]]),
    ]
    assert win.count == 11


def test_hop_longer_than_window_skips_samples():
    win = SampleWindow(window=3, hop=5, sample_values=2, dtype=np.int8)
    stream = np.arange(40, dtype=np.int8).reshape(20, 2)
    got = collect(win, [stream])
    assert [e for e, _ in got] == [3, 8, 13, 18]
    assert got[1][1] == stream[5:8].tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 15),
    st.integers(1, 3),
    st.lists(st.integers(0, 30), min_size=1, max_size=20),
)
def test_any_chunking_gives_the_same_windows(window, hop, f, sizes):
    total = sum(sizes)
    stream = np.arange(total * f, dtype=np.int32).reshape(total, f)
    chunks, pos = [], 0
    for n in sizes:
        chunks.append(stream[pos : pos + n])
        pos += n
    got = collect(SampleWindow(window, hop, f, np.int32), chunks)
    ends = [window + k * hop for k in range(expected_stream_results(total, window, hop))]
    assert [e for e, _ in got] == ends
    assert all(w == stream[e - window : e].tolist() for e, w in got)


def test_values_per_sample():
    assert values_per_sample((1, 49, 10, 1), 49) == 10
    assert values_per_sample((1, 640), 640) == 1
    assert values_per_sample((1, 640), 5) == 128
    with pytest.raises(ValueError, match="does not divide"):
        values_per_sample((1, 640), 7)


def test_reset_starts_over():
    win = SampleWindow(2, 1, 1, np.int8)
    assert [e for e, _ in win.push(np.array([1, 2, 3], np.int8))] == [2, 3]
    win.reset()
    assert [e for e, _ in win.push(np.array([4], np.int8))] == []
    assert [(e, w.ravel().tolist()) for e, w in win.push(np.array([5], np.int8))] == [(2, [4, 5])]


# ------------------------------------------------------------- over a link ---


@pytest.fixture(scope="module")
def kws():
    return runtime.load(model_path("kws_ref_model"), backend="c")


def test_binary_stream_yields_inferences_exactly_at_the_hops(kws):
    # A known stream of 130 MFCC frames (10 values each), window 49, hop 10:
    # inferences after 49, 59, ..., 129 samples, each equal to Model.run on
    # the last 49 frames.
    rng = np.random.default_rng(21)
    stream = rng.integers(-128, 128, size=(130, 10), dtype=np.int8)
    server_end, client_end = loop_pair()
    session = make_session(kws, "binary", window=49, hop=10)
    server = SerialServer(session, lambda: server_end)
    stop = threading.Event()
    t = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    t.start()
    try:
        client = Client(client_end, timeout=5)
        info = client.hello()
        assert (info.streaming, info.window, info.hop, info.sample_values) == (True, 49, 10, 10)
        pos, seqs = 0, []
        for n in [1, 7, 30, 11, 0, 23, 58]:  # uneven SAMPLES frames, one of them empty
            seqs.append(client.send_samples(stream[pos : pos + n]))
            pos += n
        assert pos == 130
        results = client.stream_results(expected_stream_results(130, 49, 10))
        assert [r.end_sample for r in results] == [49, 59, 69, 79, 89, 99, 109, 119, 129]
        for r in results:
            window = stream[r.end_sample - 49 : r.end_sample].reshape(1, 49, 10, 1)
            np.testing.assert_array_equal(r.outputs[0], kws.run([window])[0])
        # each result names the SAMPLES frame that completed its window
        assert [r.seq for r in results] == [seqs[3]] + [seqs[5]] * 2 + [seqs[6]] * 6
        with pytest.raises(TimeoutError):
            client.stream_results(1, timeout=0.2)  # and no more than those
        # HELLO starts the stream over
        client.hello()
        client.send_samples(stream[:49])
        (r,) = client.stream_results(1)
        assert r.end_sample == 49
        np.testing.assert_array_equal(r.outputs[0], kws.run([stream[:49].reshape(1, 49, 10, 1)])[0])
    finally:
        stop.set()
        t.join(5)


def test_binary_stream_errors_and_gaps(kws):
    s = make_session(kws, "binary", window=49, hop=49)
    out: list[bytes] = []
    s.send = out.append
    s.feed(sp.encode_frame(sp.MsgType.SAMPLES, 0, bytes(10)), time.monotonic())
    s.feed(sp.encode_frame(sp.MsgType.SAMPLES, 1, bytes(15)), time.monotonic())  # 1.5 samples
    s.feed(sp.encode_frame(sp.MsgType.SAMPLES, 5, bytes(20)), time.monotonic())  # seq 2..4 lost
    (err,) = sp.FrameDecoder().feed(b"".join(out))
    assert (err.seq, sp.decode_error(err.payload)[0]) == (1, sp.ErrorCode.BAD_SIZE)
    assert s.stats.stream_gaps == 1
    assert s.service.stream.count == 3


def test_jsonl_stream_one_number_per_line():
    # Anomaly detection on a scalar stream: window 640, hop 128, one real
    # value per line, quantized with the input's scale like Model.run.
    model = runtime.load(model_path("ad01_int8"), backend="c")
    s = make_session(model, "jsonl", window=640, hop=128)
    out: list[bytes] = []
    s.send = out.append
    rng = np.random.default_rng(2)
    values = rng.uniform(-40, 40, size=1000).astype(np.float32)
    text = "".join(f"{float(v)!r}\n" for v in values)
    for i in range(0, len(text), 997):  # arbitrary read boundaries
        s.feed(text[i : i + 997].encode(), time.monotonic())
    replies = [json.loads(x) for x in b"".join(out).decode().splitlines()]
    assert [r["end_sample"] for r in replies] == [640, 768, 896]
    assert [r["id"] for r in replies] == [640, 768, 896]  # the line that completed each window
    for r in replies:
        window = values[r["end_sample"] - 640 : r["end_sample"]].reshape(1, 640)
        assert r["outputs"][0]["values"] == model.run([window])[0].reshape(-1).tolist()
    # rows of several samples per line work too; a partial sample does not
    s2 = make_session(model, "jsonl", window=5, hop=5)  # a sample = 128 values
    s2.send = out.append
    out.clear()
    s2.feed((json.dumps({"samples": values[: 128 * 5].tolist()}) + "\n").encode(), time.monotonic())
    s2.feed(b"1, 2, 3\n", time.monotonic())
    ok, err = [json.loads(x) for x in b"".join(out).decode().splitlines()]
    assert ok["end_sample"] == 5
    assert ok["outputs"][0]["values"] == model.run([values[:640].reshape(1, 640)])[0].reshape(-1).tolist()
    assert err["code"] == "bad_size"


class SumModel:
    """A stand-in model whose output is the sum of its window: easy to check."""

    inputs = [runtime.TensorInfo("x", (1, 4), np.dtype(np.int8), 0.5, 0)]
    outputs = [runtime.TensorInfo("sum", (1, 1), np.dtype(np.int32), 0.0, 0)]

    def run(self, arrays):
        return [np.array([[int(arrays[0].astype(np.int32).sum())]], np.int32)]


def test_jsonl_mixed_lines_in_one_read_keep_order_and_ids():
    s = make_session(SumModel(), "jsonl", window=4, hop=1)
    out: list[bytes] = []
    s.send = out.append
    s.feed(b'0.5\n1\r\n1.5\n2\noops\n2.5\n# note\n{"cmd":"ping"}\n\n3, 3.5\n[4]\n', time.monotonic())
    replies = [json.loads(x) for x in b"".join(out).decode().splitlines()]
    # values are quantized with scale 0.5: 0.5 -> 1, 1 -> 2, ... 4 -> 8
    assert [(r["type"], r["id"], r.get("end_sample"), r.get("outputs", [{}])[0].get("values")) for r in replies] == [
        ("result", 4, 4, [1 + 2 + 3 + 4]),
        ("error", 5, None, None),
        ("result", 6, 5, [2 + 3 + 4 + 5]),
        ("pong", 7, None, None),
        ("result", 8, 6, [3 + 4 + 5 + 6]),
        ("result", 8, 7, [4 + 5 + 6 + 7]),
        ("result", 9, 8, [5 + 6 + 7 + 8]),
    ]
    assert replies[1]["code"] == "bad_line"
