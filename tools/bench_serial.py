"""Serial link benchmark: frames/s and round-trip p50/p99 of the binary protocol over a pty.

    python tools/bench_serial.py [--model tests/models/kws_ref_model.tflite] [--bauds 115200,921600,0]
    python tools/bench_serial.py --link [--link-baud 115200]   # just two linked ptys, no socat needed

For each line rate the server runs as its own process
(`python -m runtime.run MODEL --serial /dev/pts/N`) and the client
(runtime.client.Client) talks to it over pseudo-terminals.  A pty ignores the
baud rate, so for a given rate a relay process sits between two pty pairs and
paces each direction to baud / 10 bytes per second (8N1: start + 8 data +
stop bits): the numbers are what a UART at that rate allows, without USB or
driver latency.  Rate 0 means unthrottled: the client on the pty master
directly, no relay.

Columns: request and reply bytes on the wire (protocol overhead in
parentheses: type, seq, CRC, COBS, delimiters, and RESULT's 4-byte timing
word), frames/s with one request in flight and with --depth in flight,
round-trip p50/p99 with one in flight, the server's own inference p50 (from
its shutdown summary), and the bounds the wire alone imposes: one in flight
waits for request then reply; with several in flight both directions of the
full-duplex line are busy at once.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runtime  # noqa: E402
from runtime import serial_protocol as sp  # noqa: E402
from runtime.client import Client, FdPort  # noqa: E402


def _pace(src: int, dst: int, baud: int) -> None:
    """Copy src -> dst no faster than a UART at `baud` would deliver."""
    byte_time = 10.0 / baud
    line_free = time.monotonic()
    while True:
        if not select.select([src], [], [], 0.5)[0]:
            continue
        try:
            # Small slices, so a receiver sees bytes about when the last of
            # them would have arrived on a real wire.
            data = os.read(src, 256)
        except OSError:
            time.sleep(0.01)  # the slave is not open yet
            continue
        line_free = max(time.monotonic(), line_free) + len(data) * byte_time
        delay = line_free - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view) :]


def _relay_main(a: int, b: int, baud: int) -> None:
    for src, dst in ((a, b), (b, a)):
        threading.Thread(target=_pace, args=(src, dst, baud), daemon=True).start()
    signal.sigwait({signal.SIGTERM})


def link(baud: int) -> int:
    """Two linked ptys, like `socat pty pty`, optionally paced to a baud rate."""
    m1, _s1, n1 = _pty()
    m2, _s2, n2 = _pty()
    rate = f"paced to {baud} baud" if baud else "unthrottled"
    print(f"{n1} <-> {n2} ({rate}); Ctrl-C to stop", flush=True)
    for src, dst in ((m1, m2), (m2, m1)):
        threading.Thread(target=_pace, args=(src, dst, baud or 10**12), daemon=True).start()
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass
    return 0


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)  # before the server opens it: no echo, no CR/LF translation
    return master, slave, os.ttyname(slave)


def bench_one(model_path: Path, baud: int, frames: int, depth: int, seed: int) -> dict[str, float | int | str]:
    model = runtime.load(model_path, backend="c")
    rng = np.random.default_rng(seed)
    inputs = [
        [
            rng.integers(np.iinfo(t.dtype).min, np.iinfo(t.dtype).max + 1, size=t.shape, dtype=t.dtype)
            for t in model.inputs
        ]
        for _ in range(frames)
    ]
    expected = [model.run(x) for x in inputs]
    fds: list[int] = []
    m_srv, s_srv, srv_name = _pty()
    fds += [m_srv, s_srv]
    relay = None
    if baud:
        m_cli, s_cli, cli_name = _pty()
        fds += [m_cli, s_cli]
        relay = multiprocessing.get_context("fork").Process(target=_relay_main, args=(m_srv, m_cli, baud), daemon=True)
        relay.start()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.run",
            str(model_path),
            "--backend",
            "c",
            "--serial",
            srv_name,
            "--baud",
            str(baud or 115200),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        while "listening on" not in Path(log.name).read_text():
            if server.poll() is not None:
                raise RuntimeError(f"server exited: {Path(log.name).read_text()}")
            time.sleep(0.05)
        port = (
            Client(cli_name, baud=baud, timeout=0.5, retries=30)
            if baud
            else Client(FdPort(m_srv, close_fd=False), timeout=0.5, retries=30)
        )
        port.hello()
        port.timeout, port.retries = 30.0, 0
        # warm up, then one request in flight
        for x in inputs[: min(5, frames)]:
            port.infer(x)
        rtt = []
        t0 = time.perf_counter()
        for x, want in zip(inputs, expected, strict=True):
            t = time.perf_counter()
            got = port.infer(x)
            rtt.append(time.perf_counter() - t)
            if any(not np.array_equal(g, w) for g, w in zip(got, want, strict=True)):
                raise AssertionError("a result differs from Model.run")
        serial_fps = frames / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        got_many = port.infer_many(inputs, depth=depth)
        piped_fps = frames / (time.perf_counter() - t0)
        if any(not np.array_equal(g[0], w[0]) for g, w in zip(got_many, expected, strict=True)):
            raise AssertionError("a pipelined result differs from Model.run")
        port.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
        summary = Path(log.name).read_text()
        os.unlink(log.name)
        if relay is not None:
            relay.terminate()
            relay.join(5)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
    in_bytes = sum(t.dtype.itemsize * int(np.prod(t.shape)) for t in model.inputs)
    out_bytes = sum(t.dtype.itemsize * int(np.prod(t.shape)) for t in model.outputs)
    req = np.mean(
        [len(sp.encode_frame(sp.MsgType.INFER, i, b"".join(a.tobytes() for a in x))) for i, x in enumerate(inputs)]
    )
    rep = np.mean(
        [
            len(sp.encode_frame(sp.MsgType.RESULT, i, sp.encode_result(1000, b"".join(o.tobytes() for o in y))))
            for i, y in enumerate(expected)
        ]
    )
    m = re.search(r"inference p50 ([0-9.]+) ms", summary)
    ms = np.array(rtt) * 1e3
    return {
        "link": f"pty @ {baud} baud (paced)" if baud else "pty, unthrottled",
        "frames": frames,
        "req_bytes": float(req),
        "req_overhead": float(req - in_bytes),
        "reply_bytes": float(rep),
        "reply_overhead": float(rep - out_bytes),
        "fps": serial_fps,
        "fps_piped": piped_fps,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "infer_p50_ms": float(m.group(1)) if m else float("nan"),
        # one in flight: request then reply; several: both directions at once
        "wire_bound_fps": float(baud / 10 / (req + rep)) if baud else float("inf"),
        "wire_bound_piped_fps": float(baud / 10 / max(req, rep)) if baud else float("inf"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "tests" / "models" / "kws_ref_model.tflite")
    p.add_argument("--bauds", default="115200,921600,0", help="comma-separated; 0 = unthrottled pty")
    p.add_argument("--frames", type=int, default=0, help="requests per rate (default: about 5 s of traffic each)")
    p.add_argument("--depth", type=int, default=4, help="requests in flight for the pipelined column")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--link", action="store_true", help="only link two new ptys and print their names")
    p.add_argument("--link-baud", type=int, default=0, help="pace --link to this baud rate (default: unthrottled)")
    args = p.parse_args(argv)
    if args.link:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        return link(args.link_baud)
    rows = []
    for baud in (int(b) for b in args.bauds.split(",")):
        frames = args.frames or (max(50, min(2000, int(5 * baud / 10 / 600))) if baud else 2000)
        print(f"... {baud or 'unthrottled'}: {frames} frames", file=sys.stderr, flush=True)
        rows.append(bench_one(args.model, baud, frames, args.depth, args.seed))
    print(
        f"model {args.model.name}; server: python -m runtime.run --serial (separate process); "
        f"client: runtime.client.Client; {os.cpu_count()} CPUs\n"
    )
    print(
        "| link | frames | request B (overhead) | reply B (overhead) | frames/s, 1 in flight | "
        f"frames/s, {args.depth} in flight | RTT p50 ms | RTT p99 ms | server inference p50 ms | "
        "wire-bound frames/s, 1 / many in flight |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        bound = (
            "∞"
            if r["wire_bound_fps"] == float("inf")
            else f"{r['wire_bound_fps']:.1f} / {r['wire_bound_piped_fps']:.1f}"
        )
        print(
            f"| {r['link']} | {r['frames']} | {r['req_bytes']:.1f} ({r['req_overhead']:.1f}) | "
            f"{r['reply_bytes']:.1f} ({r['reply_overhead']:.1f}) | {r['fps']:.1f} | {r['fps_piped']:.1f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['infer_p50_ms']:.3f} | {bound} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
