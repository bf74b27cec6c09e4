"""Soak test: minutes of mixed, partly hostile traffic against one waitress_like server.

Not a CI test: it runs for minutes (``--seconds``, default 180) and reports numbers to
read, not a verdict. It starts ONE server as a subprocess on 127.0.0.1 (pinned to CPU 0
when there are two CPUs or more, the clients to CPU 1, as the benchmark harness does),
with ``TMPDIR`` pointing at a fresh directory and small buffer limits so bodies spill to
temp files, then runs several client threads, each picking scenarios at random until the
time is up:

* ``keepalive``: 5-30 GETs one after another on one connection;
* ``pipelined``: 2-20 GETs in a single write, then their responses;
* ``upload_length`` / ``upload_chunked``: POSTs of 0 B to 2 MB checked by length and
  CRC-32, with Content-Length or in random-sized chunks (over ``inbuf_overflow`` they go
  to temp files);
* ``aborted_download``: a 64 MiB response (spilling to a temp file past
  ``outbuf_overflow``) that the client drops after up to 1 MiB, half the time with a reset;
* ``malformed``: a request the server must refuse (4xx/5xx) before closing;
* ``connect_reset``: connect, maybe send part of a request, then reset the connection.

At the start and the end (once the server has had time to close what the clients left)
it prints the server's open fds (``/proc/PID/fd``), sockets, threads
(``/proc/PID/status``), RSS, open temp files (fds on deleted files or under its TMPDIR)
and the entries in its TMPDIR, plus progress lines while it runs, request counts per
scenario as the clients saw them and as the application counted them, and every
unexpected outcome (an "error"). After SIGTERM it also checks the server exited cleanly
and left its TMPDIR empty.

    python benchmarks/soak.py                     # 180 s, 8 client threads
    python benchmarks/soak.py --seconds 600 --clients 16

Linux only (it reads /proc). All traffic stays on loopback; everything is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
HOST = "127.0.0.1"

# Server settings: small buffers so that bodies and responses spill to temp files.
SERVER_THREADS = 4
INBUF_OVERFLOW_BYTES = 64 * 1024
OUTBUF_OVERFLOW_BYTES = 256 * 1024
OUTBUF_HIGH_WATERMARK_BYTES = 2 * 1024 * 1024
MAX_REQUEST_HEADER_BYTES = 64 * 1024

BLOCK_BYTES = 64 * 1024
DOWNLOAD_BYTES = 64 * 1024 * 1024
UPLOAD_SIZES = (0, 1, 1000, 60_000, 300_000, 2_000_000)
SOCKET_TIMEOUT_SECONDS = 15.0
READY_TIMEOUT_SECONDS = 30.0
SETTLE_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0
MAX_ERROR_SAMPLES = 5


# ---------------------------------------------------------------------------------------
# Server side: the application and the process that serves it


class SoakApp:
    """Routes: /hello, /large?bytes=N (streamed), /upload (length + CRC-32 of the body),
    /stats (the counters below, as JSON). Runs in the server process.

    ``in_app`` counts the requests inside the application right now, a streamed response
    until the server closes its iterator: once the clients are gone it must fall back to
    zero (the /stats request itself aside), or a worker thread is stuck.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def count(self, name: str, amount: int = 1) -> None:
        with self.lock:
            self.counters[name] += amount

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.count("requests")
        self.count("in_app")
        path = environ["PATH_INFO"]
        if path == "/large":
            size = int(parse_qs(environ["QUERY_STRING"]).get("bytes", ["0"])[0])
            start_response(
                "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
            )
            return self._stream(size)  # leaves in_app when the server closes it
        try:
            if path == "/hello":
                return self._respond(start_response, b"Hello, World!")
            if path == "/upload":
                return self._upload(environ, start_response)
            if path == "/stats":
                with self.lock:
                    data = json.dumps(dict(self.counters)).encode()
                return self._respond(start_response, data)
            return self._respond(start_response, b"not found", "404 Not Found")
        finally:
            self.count("in_app", -1)

    @staticmethod
    def _respond(start_response: Callable[..., Any], body: bytes, status: str = "200 OK") -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    def _upload(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        stream = environ["wsgi.input"]
        length = 0
        crc = 0
        while True:
            block = stream.read(BLOCK_BYTES)
            if not block:
                break
            length += len(block)
            crc = zlib.crc32(block, crc)
        self.count("uploads")
        self.count("upload_bytes", length)
        return self._respond(start_response, f"{length} {crc}".encode())

    def _stream(self, size: int) -> Iterator[bytes]:
        block = b"x" * BLOCK_BYTES
        sent = 0
        try:
            while sent < size:
                piece = block[: size - sent]
                sent += len(piece)
                yield piece
        finally:
            # close() before the end: the client went away and the server noticed.
            self.count("downloads_completed" if sent >= size else "downloads_aborted")
            self.count("in_app", -1)


app = SoakApp()


def serve_main(threads: int) -> None:
    """The server process: print the bound port as JSON, serve until SIGTERM."""
    sys.path.insert(0, str(REPO_DIR))
    from waitress_like import create_server
    from waitress_like.server import run_until_signalled

    server = create_server(
        app,
        host=HOST,
        port=0,
        threads=threads,
        inbuf_overflow=INBUF_OVERFLOW_BYTES,
        outbuf_overflow=OUTBUF_OVERFLOW_BYTES,
        outbuf_high_watermark=OUTBUF_HIGH_WATERMARK_BYTES,
        max_request_header_size=MAX_REQUEST_HEADER_BYTES,
        channel_timeout=30,
    )
    print(json.dumps({"port": server.addresses[0][1]}), flush=True)
    try:
        run_until_signalled(server)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


# ---------------------------------------------------------------------------------------
# Watching the server process


def server_sample(pid: int, tmpdir: str) -> dict[str, int]:
    """Open fds, sockets, threads, RSS and temp files of process ``pid`` right now."""
    fd_dir = f"/proc/{pid}/fd"
    fds = sockets = temp_files = 0
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue  # closed while we looked
        fds += 1
        if target.startswith("socket:"):
            sockets += 1
        elif target.endswith(" (deleted)") or target.startswith(tmpdir):
            temp_files += 1
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return {
        "fds": fds,
        "sockets": sockets,
        "threads": int(status["Threads"]),
        "rss_kib": int(status["VmRSS"].split()[0]),
        "temp_fds": temp_files,
        "tmpdir_entries": len(os.listdir(tmpdir)),
    }


def format_sample(sample: dict[str, int]) -> str:
    return (
        f"fds {sample['fds']:4d} (sockets {sample['sockets']:3d}, temp files {sample['temp_fds']:2d}), "
        f"threads {sample['threads']:2d}, RSS {sample['rss_kib'] / 1024:6.1f} MiB, "
        f"TMPDIR entries {sample['tmpdir_entries']}"
    )


# ---------------------------------------------------------------------------------------
# Client side


class SoakError(Exception):
    """The server did something a scenario did not expect."""


class Client:
    """One connection with a read buffer; parses Content-Length responses only."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_SECONDS)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def close(self, reset: bool = False) -> None:
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(256 * 1024)
        self.buffer += data
        return bool(data)

    def read_head(self) -> tuple[int, dict[str, str]]:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if not self._fill():
                raise SoakError(f"connection closed before a response head ({bytes(self.buffer[:60])!r})")
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def read_body(self, headers: dict[str, str], limit: int | None = None) -> bytes:
        """The body (Content-Length framing), or its first ``limit`` bytes."""
        size = int(headers.get("content-length", "0"))
        wanted = size if limit is None else min(size, limit)
        while len(self.buffer) < wanted:
            if not self._fill():
                raise SoakError(f"connection closed after {len(self.buffer)} of {size} body bytes")
        body = bytes(self.buffer[:wanted])
        del self.buffer[:wanted]
        return body

    def read_response(self) -> tuple[int, dict[str, str], bytes]:
        status, headers = self.read_head()
        return status, headers, self.read_body(headers)

    def closed_by_server(self) -> bool:
        """True if the server closes (EOF or reset) with nothing more to read."""
        if self.buffer:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: soak\r\n\r\n".encode()


def expect_hello(client: Client) -> None:
    status, _, body = client.read_response()
    if status != 200 or body != b"Hello, World!":
        raise SoakError(f"/hello answered {status} {body[:40]!r}")


def keepalive(port: int, rng: random.Random, payload: bytes) -> int:
    count = rng.randint(5, 30)
    with Client(port) as client:
        for _ in range(count):
            client.send(get("/hello"))
            expect_hello(client)
    return count


def pipelined(port: int, rng: random.Random, payload: bytes) -> int:
    count = rng.randint(2, 20)
    with Client(port) as client:
        client.send(b"".join(get("/hello") for _ in range(count)))
        for _ in range(count):
            expect_hello(client)
    return count


def _upload(port: int, rng: random.Random, payload: bytes, chunked: bool) -> int:
    size = rng.choice(UPLOAD_SIZES)
    start = rng.randrange(len(payload) - size + 1)
    body = payload[start : start + size]
    with Client(port) as client:
        if chunked:
            client.send(b"POST /upload HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n")
            position = 0
            while position < size:
                piece = body[position : position + rng.randint(1, 256 * 1024)]
                client.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                position += len(piece)
            client.send(b"0\r\n\r\n")
        else:
            client.send(b"POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n" % size)
            client.send(body)
        status, _, answer = client.read_response()
    expected = f"{size} {zlib.crc32(body)}".encode()
    if status != 200 or answer != expected:
        raise SoakError(f"upload of {size} bytes answered {status} {answer!r}, expected {expected!r}")
    return 1


def upload_length(port: int, rng: random.Random, payload: bytes) -> int:
    return _upload(port, rng, payload, chunked=False)


def upload_chunked(port: int, rng: random.Random, payload: bytes) -> int:
    return _upload(port, rng, payload, chunked=True)


def aborted_download(port: int, rng: random.Random, payload: bytes) -> int:
    client = Client(port)
    try:
        client.send(get(f"/large?bytes={DOWNLOAD_BYTES}"))
        status, headers = client.read_head()
        if status != 200 or int(headers.get("content-length", "0")) != DOWNLOAD_BYTES:
            raise SoakError(f"/large answered {status} {headers}")
        client.read_body(headers, limit=rng.randint(0, 1024 * 1024))
    finally:
        client.close(reset=rng.random() < 0.5)
    return 1


MALFORMED = [
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"get / HTTP/1.1\r\nHost: soak\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: soak\n\n", 400),
    (b"GET / HTTP/1.1\r\nHost: soak\r\nX: a\r\n b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: soak\r\nX : a\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: soak\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (
        b"POST / HTTP/1.1\r\nHost: soak\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (b"POST / HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST /upload HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: soak\r\n\r\n", 505),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    (
        b"GET / HTTP/1.1\r\nHost: soak\r\nX-Big: " + b"a" * (MAX_REQUEST_HEADER_BYTES + 1000) + b"\r\n\r\n",
        431,
    ),
]


def malformed(port: int, rng: random.Random, payload: bytes) -> int:
    data, expected = rng.choice(MALFORMED)
    with Client(port) as client:
        client.send(data)
        status, headers, _ = client.read_response()
        if status != expected or "close" not in headers.get("connection", ""):
            raise SoakError(f"{data[:40]!r} answered {status} {headers}, expected {expected} and close")
        if not client.closed_by_server():
            raise SoakError(f"{data[:40]!r}: connection still open after the error response")
    return 0


def connect_reset(port: int, rng: random.Random, payload: bytes) -> int:
    partial = rng.choice(
        [
            b"",
            b"GET /hel",
            b"GET /hello HTTP/1.1\r\nHost: soak\r\n",
            b"POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: 100000\r\n\r\n" + payload[:5000],
            b"POST /upload HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n"
            + payload[:100],
        ]
    )
    client = Client(port)
    try:
        if partial:
            client.send(partial)
    finally:
        client.close(reset=True)
    return 0


SCENARIOS: dict[str, tuple[Callable[[int, random.Random, bytes], int], int]] = {
    "keepalive": (keepalive, 25),
    "pipelined": (pipelined, 15),
    "upload_length": (upload_length, 12),
    "upload_chunked": (upload_chunked, 12),
    "aborted_download": (aborted_download, 10),
    "malformed": (malformed, 13),
    "connect_reset": (connect_reset, 13),
}


class Tally:
    """Runs, requests served and errors per scenario, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = defaultdict(list)

    def record(self, scenario: str, requests: int, error: BaseException | None) -> None:
        with self.lock:
            self.runs[scenario] += 1
            self.requests[scenario] += requests
            if error is not None:
                self.errors[scenario] += 1
                if len(self.samples[scenario]) < MAX_ERROR_SAMPLES:
                    self.samples[scenario].append(f"{type(error).__name__}: {error}")


def client_thread(port: int, seed: int, deadline: float, payload: bytes, tally: Tally) -> None:
    rng = random.Random(seed)
    names = list(SCENARIOS)
    weights = [SCENARIOS[name][1] for name in names]
    while time.monotonic() < deadline:
        name = rng.choices(names, weights)[0]
        try:
            requests = SCENARIOS[name][0](port, rng, payload)
        except (SoakError, OSError) as error:
            tally.record(name, 0, error)
        else:
            tally.record(name, requests, None)


# ---------------------------------------------------------------------------------------
# The run


def start_server(
    tmpdir: Path, log_path: Path, threads: int, cpu: int | None
) -> tuple[subprocess.Popen[bytes], int]:
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", "--threads", str(threads)]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu)] + command
    environment = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO_DIR))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, env=environment, start_new_session=True
        )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(READY_TIMEOUT_SECONDS):
            stop_server(process)
            raise SystemExit(
                f"the server printed no port within {READY_TIMEOUT_SECONDS:.0f} s; see {log_path}"
            )
    line = process.stdout.readline()
    if not line:
        stop_server(process)
        raise SystemExit(f"the server exited before listening: {log_path.read_text()[-2000:]}")
    return process, json.loads(line)["port"]


def stop_server(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM (a graceful close), then SIGKILL if it lingers. Returns the exit status."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            return process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            continue
    return None


def fetch_stats(port: int) -> dict[str, int]:
    with Client(port) as client:
        client.send(get("/stats"))
        status, _, body = client.read_response()
    if status != 200:
        raise SoakError(f"/stats answered {status}")
    stats: dict[str, int] = json.loads(body)
    return stats


def settle_app(port: int) -> dict[str, int]:
    """The application's counters once no request but /stats is inside it (bounded wait)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        stats = fetch_stats(port)
        if stats.get("in_app", 0) <= 1 or time.monotonic() > deadline:
            return stats
        time.sleep(0.25)


def settle(pid: int, tmpdir: str, baseline: dict[str, int]) -> dict[str, int]:
    """Wait (bounded) until the server is back to its starting fds, threads and temp files."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        sample = server_sample(pid, tmpdir)
        settled = all(
            sample[key] <= baseline[key] for key in ("fds", "threads", "temp_fds", "tmpdir_entries")
        )
        if settled or time.monotonic() > deadline:
            return sample
        time.sleep(0.25)


def pin_cpus(no_pin: bool) -> tuple[int | None, int | None]:
    if no_pin or (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return None, None
    return 0, 1


def run(seconds: float, clients: int, threads: int, no_pin: bool, report_seconds: float, seed: int) -> int:
    server_cpu, client_cpu = pin_cpus(no_pin)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    workdir = Path(tempfile.mkdtemp(prefix="waitress-like-soak-"))
    tmpdir = workdir / "server-tmp"
    tmpdir.mkdir()
    log_path = workdir / "server.log"
    process, port = start_server(tmpdir, log_path, threads, server_cpu)
    exit_status: int | None = None
    delta: dict[str, int] = {}
    total_errors = stuck = 0
    leftovers: list[str] = []
    try:
        pinning = (
            "unpinned" if server_cpu is None else f"server on CPU {server_cpu}, clients on CPU {client_cpu}"
        )
        print(f"server pid {process.pid} on {HOST}:{port}, TMPDIR={tmpdir}, {pinning}")
        print(
            f"settings: threads={threads} inbuf_overflow={INBUF_OVERFLOW_BYTES} "
            f"outbuf_overflow={OUTBUF_OVERFLOW_BYTES} outbuf_high_watermark={OUTBUF_HIGH_WATERMARK_BYTES} "
            f"max_request_header_size={MAX_REQUEST_HEADER_BYTES}"
        )
        with Client(port) as client:  # warm up: imports done, one request served
            client.send(get("/hello"))
            expect_hello(client)
        time.sleep(0.5)
        start = server_sample(process.pid, str(tmpdir))
        print(f"start: {format_sample(start)}")

        payload = random.Random(seed).randbytes(max(UPLOAD_SIZES) + 1)
        tally = Tally()
        began = time.monotonic()
        deadline = began + seconds
        workers = [
            threading.Thread(
                target=client_thread, args=(port, seed + index, deadline, payload, tally), daemon=True
            )
            for index in range(clients)
        ]
        for worker in workers:
            worker.start()
        peak = dict(start)
        next_report = began + report_seconds
        give_up_at = deadline + 2 * SOCKET_TIMEOUT_SECONDS  # every socket call is bounded
        while any(worker.is_alive() for worker in workers):
            time.sleep(1.0)
            sample = server_sample(process.pid, str(tmpdir))
            peak = {key: max(peak[key], sample[key]) for key in peak}
            now = time.monotonic()
            if now >= next_report:
                next_report += report_seconds
                with tally.lock:
                    done, failed = sum(tally.runs.values()), sum(tally.errors.values())
                print(f"{now - began:6.0f} s: {done} scenario runs, {failed} errors; {format_sample(sample)}")
            if now > give_up_at:
                print("client threads still running long after their deadline: giving up on them")
                break
        elapsed = time.monotonic() - began

        end = settle(process.pid, str(tmpdir), start)
        stats = settle_app(port)
        stuck = stats.get("in_app", 0) - 1  # the /stats request itself is inside the app
        end = settle(process.pid, str(tmpdir), start)
        print(f"end:   {format_sample(end)}")
        print(f"peak:  {format_sample(peak)}")
        delta = {key: end[key] - start[key] for key in start}
        print("delta: " + ", ".join(f"{key} {value:+d}" for key, value in delta.items()))

        print(f"\n{elapsed:.0f} s, {clients} client threads")
        print(f"{'scenario':18s} {'runs':>8s} {'requests':>9s} {'errors':>7s}")
        for name in SCENARIOS:
            print(f"{name:18s} {tally.runs[name]:8d} {tally.requests[name]:9d} {tally.errors[name]:7d}")
        total_requests = sum(tally.requests.values())
        total_errors = sum(tally.errors.values())
        print(f"{'total':18s} {sum(tally.runs.values()):8d} {total_requests:9d} {total_errors:7d}")
        print(f"requests per second (answered by the app, client view): {total_requests / elapsed:.0f}")
        print(f"application counters: {json.dumps(stats, sort_keys=True)}")
        print(f"requests still inside the application after {SETTLE_TIMEOUT_SECONDS:.0f} s: {stuck}")
        for name, samples in tally.samples.items():
            print(f"errors in {name}:")
            for text in samples:
                print(f"  {text}")
    finally:
        exit_status = stop_server(process)
        leftovers = sorted(os.listdir(tmpdir))
        print(f"server exit status after SIGTERM: {exit_status}; TMPDIR entries after exit: {len(leftovers)}")
        log_lines = log_path.read_text(errors="replace").strip().splitlines()
        # The pool's queue-depth warnings are expected under this load: count them only.
        queue_warnings = sum(1 for line in log_lines if "Task queue depth" in line)
        other = [line for line in log_lines if "Task queue depth" not in line]
        print(f"server log: {queue_warnings} 'Task queue depth' warnings, {len(other)} other lines")
        if other:
            print("  " + "\n  ".join(other[-10:]))
        shutil.rmtree(workdir, ignore_errors=True)
    leaked = any(delta.get(key, 0) > 0 for key in ("fds", "threads", "temp_fds", "tmpdir_entries"))
    return 1 if total_errors or stuck or leaked or exit_status != 0 or leftovers else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long the clients run (default 180)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument(
        "--threads", type=int, default=SERVER_THREADS, help="server worker threads (default 4)"
    )
    parser.add_argument(
        "--report-seconds", type=float, default=15.0, help="progress line interval (default 15)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the clients (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and clients to CPUs")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server process
    options = parser.parse_args(argv)
    if options.serve:
        serve_main(options.threads)
        return 0
    if not Path("/proc/self/fd").exists():
        parser.error("the soak test reads /proc: Linux only")
    return run(
        options.seconds,
        options.clients,
        options.threads,
        options.no_pin,
        options.report_seconds,
        options.seed,
    )


if __name__ == "__main__":
    sys.exit(main())
