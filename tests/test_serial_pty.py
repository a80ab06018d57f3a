"""The server as its own process on a real pseudo-terminal: `python -m runtime.run MODEL --serial /dev/pts/N`."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import model_path

import runtime
from runtime import serial_protocol as sp
from runtime.client import Client, FdPort

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")


@contextmanager
def pty_pair() -> Iterator[tuple[int, str]]:
    """(master fd, slave path).  The slave is put in raw mode before the
    server opens it (no echo of bytes sent early) and a slave fd is held open
    so the master never reads EIO while the server is still starting."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        for fd in (master, slave):
            try:
                os.close(fd)
            except OSError:
                pass


class ServerProcess:
    def __init__(self, model: str, port: str, tmp: Path, *extra: str):
        self.log = tmp / f"server-{os.getpid()}-{time.monotonic_ns()}.log"
        cmd = [sys.executable, "-m", "runtime.run", str(model_path(model)), "--backend", "c", "--serial", port, *extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log.open("w"))

    def stderr(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            assert self.proc.poll() is None, f"server exited: {self.stderr()}"
            assert time.monotonic() < deadline, f"no {text!r} in: {self.stderr()}"
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        code = self.proc.wait(15)
        return code, self.stderr()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def server(model: str, port: str, tmp: Path, *extra: str) -> Iterator[ServerProcess]:
    sp_ = ServerProcess(model, port, tmp, *extra)
    try:
        sp_.wait_for("listening on")
        yield sp_
    finally:
        sp_.kill()


def connect(master: int) -> Client:
    # pyserial flushes input when the server opens the port: retry HELLO quickly.
    client = Client(FdPort(master, close_fd=False), timeout=0.5, retries=20)
    client.hello()
    client.timeout, client.retries = 10.0, 1
    return client


@pytest.fixture(scope="module")
def kws():
    return runtime.load(model_path("kws_ref_model"), backend="c")


def test_round_trip_bit_exact_and_clean_sigterm(kws, tmp_path):
    rng = np.random.default_rng(31)
    xs = [[rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)] for _ in range(40)]
    with pty_pair() as (master, slave), server("kws_ref_model", slave, tmp_path) as srv:
        client = connect(master)
        assert client.info.inputs[0].shape == (1, 49, 10, 1)
        for x in xs[:10]:
            np.testing.assert_array_equal(client.infer(x)[0], kws.run(x)[0])
            assert client.last_infer_us > 0
        for x, ys in zip(xs, client.infer_many(xs, depth=4), strict=True):
            np.testing.assert_array_equal(ys[0], kws.run(x)[0])
        # a malformed frame between valid ones: ERROR, and the server goes on
        os.write(master, sp.encode_frame(sp.MsgType.INFER, 999, b"too short"))
        np.testing.assert_array_equal(client.infer(xs[0])[0], kws.run(xs[0])[0])
        code, err = srv.stop(signal.SIGTERM)
    assert code == 0, err
    assert "tinyrt serial: stopped after" in err
    assert "frames: " in err and " received, 1 errors (bad_size 1)" in err
    assert "inferences: 51" in err
    assert "inference p50" in err and "p99" in err


def test_jsonl_over_pty_and_clean_sigint(kws, tmp_path):
    rng = np.random.default_rng(32)
    x = rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
    with pty_pair() as (master, slave), server("kws_ref_model", slave, tmp_path, "--protocol", "jsonl") as srv:
        port = FdPort(master, close_fd=False, timeout=10)
        buf = b""
        deadline = time.monotonic() + 15
        while b"\n" not in buf and time.monotonic() < deadline:
            port.write(b'{"cmd": "ping", "id": "p"}\n')  # until the server has opened the port
            if select.select([master], [], [], 0.3)[0]:
                buf += os.read(master, 4096)
        assert json.loads(buf.splitlines()[0]) == {"type": "pong", "id": "p"}
        port.write(json.dumps({"input": x.reshape(-1).tolist(), "raw": True, "id": 1}).encode() + b"\r\n")
        port.write(b"not a number\n")
        lines: list[bytes] = []
        buf = b"".join(buf.splitlines(keepends=True)[1:])
        while len(lines) < 2:
            buf += port.read(65536)
            *done, buf = buf.split(b"\n")
            lines += [d for d in done if b'"pong"' not in d]
        result, error = (json.loads(v) for v in lines)
        assert result["id"] == 1 and result["outputs"][0]["values"] == kws.run([x])[0].reshape(-1).tolist()
        assert error["type"] == "error" and error["code"] == "bad_line"
        code, err = srv.stop(signal.SIGINT)
    assert code == 0 and "stopped after" in err and "bad_line 1" in err


def test_port_that_disappears_is_retried_not_a_crash(tmp_path):
    with pty_pair() as (master, slave), server("hello_world_int8", slave, tmp_path) as srv:
        connect(master).ping()
        os.close(master)  # unplugged: the pts device goes away
        srv.wait_for("lost " + slave)
        srv.wait_for("cannot open " + slave)
        srv.wait_for("retrying in 0.2 s")  # backing off
        assert srv.proc.poll() is None
        code, err = srv.stop(signal.SIGTERM)
    assert code == 0 and "reconnects: 1" in err


def _relay(a: int, b: int, stop: threading.Event) -> None:
    """Join two pty masters: what one slave's user writes, the other's reads."""
    while not stop.is_set():
        ready, _, _ = select.select([a, b], [], [], 0.05)
        for src in ready:
            try:
                data = os.read(src, 65536)
            except OSError:
                continue  # the slave side is not open (yet / any more)
            dst = b if src == a else a
            view = memoryview(data)
            while view:
                view = view[os.write(dst, view) :]


def test_client_cli_over_two_ptys(kws, tmp_path):
    # The server streams (--window 49 --hop 10) and still takes whole INFERs.
    rng = np.random.default_rng(33)
    batch = rng.integers(-128, 128, size=(3, 1, 49, 10, 1), dtype=np.int8)
    stream = rng.integers(-128, 128, size=(130, 10), dtype=np.int8)
    np.save(tmp_path / "x.npy", batch)
    np.save(tmp_path / "s.npy", stream)
    stop = threading.Event()

    def client(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "runtime.client", s_cli, "--timeout", "1", "--retries", "5", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    with pty_pair() as (m_srv, s_srv), pty_pair() as (m_cli, s_cli):
        relay = threading.Thread(target=_relay, args=(m_srv, m_cli, stop), daemon=True)
        relay.start()
        try:
            with server("kws_ref_model", s_srv, tmp_path, "--window", "49", "--hop", "10") as srv:
                time.sleep(0.2)  # the server flushes its input on open
                text = client("--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"), "--depth", "2")
                assert "3 inference(s)" in text and text.count("class ") == 3
                text = client("--input", str(tmp_path / "s.npy"), "--stream", "--output", str(tmp_path / "z.npy"))
                assert "9 inference(s)" in text
                assert [int(v) for v in re.findall(r"end sample (\d+):", text)] == list(range(49, 130, 10))
                srv.stop()
        finally:
            stop.set()
            relay.join(2)
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 1, 12) and y.dtype == np.int8
    for i in range(3):
        np.testing.assert_array_equal(y[i], kws.run([batch[i]])[0])
    z = np.load(tmp_path / "z.npy")
    assert z.shape == (9, 1, 12)
    for i, end in enumerate(range(49, 130, 10)):
        np.testing.assert_array_equal(z[i], kws.run([stream[end - 49 : end].reshape(1, 49, 10, 1)])[0])


def test_soak_over_pty_against_server_process(tmp_path):
    # 10,000 anomaly-detection INFERs (640 bytes each) with garbage between
    # them, to a server process: each answered exactly once, in order, exact.
    model = runtime.load(model_path("ad01_int8"), backend="c")
    n = 10_000
    rng = np.random.default_rng(34)
    pool = rng.integers(-128, 128, size=(64, 1, 640), dtype=np.int8)
    want = [model.run([x])[0].tobytes() for x in pool]
    which = rng.integers(0, len(pool), size=n)
    with pty_pair() as (master, slave), server("ad01_int8", slave, tmp_path, "--frame-timeout", "5") as srv:
        client = connect(master)
        results: list[sp.Frame] = []
        errors: list[sp.Frame] = []
        done = threading.Event()

        def reader() -> None:
            decoder = client.decoder
            deadline = time.monotonic() + 120
            while len(results) < n and time.monotonic() < deadline:
                if select.select([master], [], [], 0.1)[0]:
                    for ev in decoder.feed(os.read(master, 65536)):
                        assert isinstance(ev, sp.Frame)
                        (results if ev.type == sp.MsgType.RESULT else errors).append(ev)
            done.set()

        rd = threading.Thread(target=reader, daemon=True)
        rd.start()
        garbage = 0
        t0 = time.monotonic()
        out = bytearray()
        for seq in range(n):
            if rng.random() < 0.3:
                out += rng.bytes(int(rng.integers(1, 64)))
                garbage += 1
            out += sp.encode_frame(sp.MsgType.INFER, seq, pool[which[seq]].tobytes())
            if len(out) > 16384 or seq == n - 1:
                client.port.write(bytes(out))
                out.clear()
        assert done.wait(120)
        elapsed = time.monotonic() - t0
        time.sleep(0.2)  # room for a (wrong) duplicate to show up
        code, err = srv.stop()
    assert [f.seq for f in results] == list(range(n))
    assert [f.seq for f in results if sp.decode_result(f.payload)[1] != want[which[f.seq]]] == []
    assert garbage <= len(errors) <= 3 * garbage
    assert code == 0 and "inferences: 10000" in err
    print(f"pty soak: {n} frames + {garbage} garbage runs in {elapsed:.1f} s")
