"""Load generators: wrk for request rates, small raw-socket Python clients for the rest.

Parent side: ``run_wrk``, ``run_upload`` and ``IdleConnections`` each start a separate,
CPU-pinned process and return what it measured. Child side (``python loadgen.py upload
...`` / ``hold ...``) holds the clients; each prints JSON lines on stdout and is bounded in
time, so it stops by itself even if the harness dies. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import errno
import json
import re
import resource
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
WRK_TIMEOUT_SECONDS = 10
SOCKET_TIMEOUT_SECONDS = 60.0
UPLOAD_BLOCK_BYTES = 256 * 1024
MAX_UPLOADS = 200
MIB = 1024 * 1024


class LoadFailed(RuntimeError):
    """The load generator could not run or measured nothing usable."""


def _pinned(command: list[str], cpu: int | None) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu)] + command


# ---------------------------------------------------------------------------------------
# wrk

_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_SIZE_UNITS_BYTES = {"B": 1, "KB": 1024, "MB": MIB, "GB": 1024 * MIB, "TB": 1024 * 1024 * MIB}
_NUMBER_WITH_UNIT = r"([\d.]+)([a-zA-Z]+)"


def parse_wrk(output: str) -> dict[str, Any]:
    """Read request rate, latency percentiles, throughput and errors from ``wrk --latency``.

    Raises LoadFailed when the output has no request rate.
    """
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if rate is None:
        raise LoadFailed(f"wrk printed no Requests/sec: {output.strip()[-300:]}")
    result: dict[str, Any] = {"requests_per_second": float(rate.group(1))}
    for percent, value, unit in re.findall(
        r"^\s+(50|75|90|99)%\s+" + _NUMBER_WITH_UNIT, output, re.MULTILINE
    ):
        result[f"p{percent}_ms"] = float(value) * _TIME_UNITS_MS[unit]
    transfer = re.search(r"^Transfer/sec:\s+" + _NUMBER_WITH_UNIT, output, re.MULTILINE)
    if transfer:
        result["transfer_mib_per_second"] = (
            float(transfer.group(1)) * _SIZE_UNITS_BYTES[transfer.group(2)] / MIB
        )
    total = re.search(r"(\d+) requests in " + _NUMBER_WITH_UNIT, output)
    if total:
        result["requests"] = int(total.group(1))
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "non_2xx_3xx": 0}
    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        for name, count in zip(("connect", "read", "write", "timeout"), socket_errors.groups()):
            errors[name] = int(count)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors["non_2xx_3xx"] = int(non_2xx.group(1))
    result["errors"] = errors
    return result


def run_wrk(
    port: int,
    connections: int,
    duration_seconds: int,
    cpu: int | None,
    *,
    tls: bool = False,
    close_connections: bool = False,
) -> dict[str, Any]:
    """One ``wrk -t1`` run against GET / on ``port``; see ``parse_wrk`` for the result.

    ``tls``: over HTTPS (wrk does not check the certificate). ``close_connections``: each
    request asks ``Connection: close``, so wrk opens a new connection for the next one.
    """
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration_seconds}s", "--latency"]
    if close_connections:
        command += ["-H", "Connection: close"]
    scheme = "https" if tls else "http"
    command += ["--timeout", f"{WRK_TIMEOUT_SECONDS}s", f"{scheme}://{HOST}:{port}/"]
    try:
        completed = subprocess.run(
            _pinned(command, cpu), capture_output=True, text=True, timeout=duration_seconds + 60
        )
    except subprocess.TimeoutExpired as error:
        raise LoadFailed(f"wrk did not finish: {error}") from None
    if completed.returncode != 0:
        raise LoadFailed(f"wrk exited {completed.returncode}: {completed.stderr.strip()[-300:]}")
    return parse_wrk(completed.stdout)


# ---------------------------------------------------------------------------------------
# Parent side of the Python clients


def _client_command(arguments: list[str], cpu: int | None) -> list[str]:
    return _pinned([sys.executable, str(Path(__file__).resolve())] + arguments, cpu)


def run_upload(
    port: int, size_bytes: int, chunked: bool, duration_seconds: float, cpu: int | None
) -> dict[str, Any]:
    """Upload ``size_bytes`` repeatedly for about ``duration_seconds`` (at least once).

    Returns uploads, bytes, seconds, mib_per_second and requests_per_second. Raises
    LoadFailed when any upload fails or is answered with the wrong length.
    """
    arguments = ["upload", "--port", str(port), "--bytes", str(size_bytes)]
    arguments += ["--duration", str(duration_seconds)] + (["--chunked"] if chunked else [])
    try:
        completed = subprocess.run(
            _client_command(arguments, cpu), capture_output=True, text=True, timeout=duration_seconds + 180
        )
    except subprocess.TimeoutExpired:
        raise LoadFailed("upload client did not finish") from None
    if completed.returncode != 0:
        raise LoadFailed(f"upload client failed: {completed.stderr.strip()[-300:]}")
    return json.loads(completed.stdout)


class IdleConnections:
    """A helper process holding ``count`` established, idle HTTP keep-alive connections.

    ``open()`` returns once the helper has set them up (or gave up), ``check()`` asks how
    many the server has not closed since, and ``close()`` (or leaving the ``with`` block)
    drops them all.
    """

    def __init__(self, port: int, count: int, cpu: int | None, setup_seconds: float = 300.0) -> None:
        self._setup_seconds = setup_seconds
        arguments = ["hold", "--port", str(port), "--count", str(count)]
        arguments += ["--setup-seconds", str(setup_seconds)]
        self._process = subprocess.Popen(
            _client_command(arguments, cpu),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _read_line(self, timeout_seconds: float) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout_seconds)
        line = stdout.readline() if ready else ""
        if not line:
            raise LoadFailed("connection holder stopped answering")
        return json.loads(line)

    def _send(self, command: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()

    def open(self) -> dict[str, Any]:
        """Wait for the setup report: established, failed (by reason), setup_seconds."""
        return self._read_line(self._setup_seconds + 30)

    def check(self) -> dict[str, Any]:
        """Count the connections still open (still_open) and closed by the server (closed)."""
        self._send("check")
        return self._read_line(60)

    def close(self) -> None:
        try:
            self._send("close")
        except (BrokenPipeError, ValueError):
            pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> IdleConnections:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# Child side: the raw-socket clients


def _raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        hard = needed  # only root may raise the hard limit; a refusal surfaces below
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _parse_head(buffer: bytes | bytearray) -> tuple[int, dict[str, str], int] | None:
    """(status, lower-cased headers, body offset) once the head is complete, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, end + 4


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Read one response with a Content-Length body from a blocking socket."""
    buffer = bytearray()
    head = None
    while head is None:
        data = sock.recv(65536)
        if not data:
            raise LoadFailed("server closed the connection before answering")
        buffer += data
        head = _parse_head(buffer)
    status, headers, offset = head
    length = int(headers.get("content-length", "0"))
    while len(buffer) < offset + length:
        data = sock.recv(65536)
        if not data:
            raise LoadFailed("server closed the connection mid-body")
        buffer += data
    return status, bytes(buffer[offset : offset + length])


def _send_parts(sock: socket.socket, parts: list[bytes | memoryview]) -> None:
    """sendall() for several buffers in one gathering call each time (no joining copies)."""
    views = [memoryview(part) for part in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


def _upload_once(port: int, size_bytes: int, chunked: bool, block: memoryview) -> float:
    """Send one POST of ``size_bytes`` and check the answer; returns the seconds it took."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size_bytes}"
    head = f"POST /upload HTTP/1.1\r\nHost: {HOST}:{port}\r\n{framing}\r\n"
    head += "Content-Type: application/octet-stream\r\n\r\n"
    started = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_SECONDS) as sock:
        sock.sendall(head.encode("ascii"))
        remaining_bytes = size_bytes
        while remaining_bytes:
            piece = block[: min(len(block), remaining_bytes)]
            if chunked:
                _send_parts(sock, [b"%x\r\n" % len(piece), piece, b"\r\n"])
            else:
                sock.sendall(piece)
            remaining_bytes -= len(piece)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        status, body = _read_response(sock)
    if status != 200 or body != str(size_bytes).encode("ascii"):
        raise LoadFailed(f"upload answered {status} {body[:80]!r}, expected 200 {size_bytes}")
    return time.perf_counter() - started


def upload_main(port: int, size_bytes: int, chunked: bool, duration_seconds: float) -> dict[str, Any]:
    block = memoryview(b"u" * UPLOAD_BLOCK_BYTES)
    durations: list[float] = []
    while not durations or (sum(durations) < duration_seconds and len(durations) < MAX_UPLOADS):
        durations.append(_upload_once(port, size_bytes, chunked, block))
    seconds = sum(durations)
    return {
        "uploads": len(durations),
        "bytes": size_bytes * len(durations),
        "seconds": seconds,
        "mib_per_second": size_bytes * len(durations) / seconds / MIB,
        "requests_per_second": len(durations) / seconds,
    }


class _Holder:
    """Opens keep-alive connections with a bounded number in flight; loop state only."""

    def __init__(self, port: int, count: int, parallel: int) -> None:
        self.address = (HOST, port)
        self.request = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode("ascii")
        self.count = count
        self.parallel = parallel
        self.selector = selectors.DefaultSelector()
        self.pending: dict[socket.socket, bytearray] = {}
        self.idle: list[socket.socket] = []
        self.failed: Counter[str] = Counter()
        self.started = 0

    def _drop(self, sock: socket.socket, reason: str) -> None:
        self.failed[reason] += 1
        self.pending.pop(sock, None)
        if sock.fileno() >= 0:
            self.selector.unregister(sock)
        sock.close()

    def _start_one(self) -> None:
        self.started += 1
        sock = socket.socket()
        sock.setblocking(False)
        error = sock.connect_ex(self.address)
        if error not in (0, errno.EINPROGRESS):
            sock.close()
            self.failed[errno.errorcode.get(error, str(error))] += 1
            return
        self.pending[sock] = bytearray()
        self.selector.register(sock, selectors.EVENT_WRITE, "connecting")

    def _on_ready(self, sock: socket.socket, stage: str) -> None:
        if stage == "connecting":
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self._drop(sock, errno.errorcode.get(error, str(error)))
                return
            sock.send(self.request)  # a few dozen bytes always fit an empty send buffer
            self.selector.modify(sock, selectors.EVENT_READ, "answering")
            return
        try:
            data = sock.recv(65536)
        except OSError as error:
            self._drop(sock, type(error).__name__)
            return
        if not data:
            self._drop(sock, "closed before answering")
            return
        buffer = self.pending[sock]
        buffer += data
        head = _parse_head(buffer)
        if head is None:
            return
        status, headers, offset = head
        if len(buffer) < offset + int(headers.get("content-length", "0")):
            return
        if status != 200 or headers.get("connection", "").lower() == "close":
            self._drop(sock, f"status {status} connection {headers.get('connection', '')}")
            return
        self.selector.unregister(sock)
        del self.pending[sock]
        self.idle.append(sock)

    def establish(self, deadline: float) -> None:
        while (self.started < self.count or self.pending) and time.monotonic() < deadline:
            while self.started < self.count and len(self.pending) < self.parallel:
                self._start_one()
            for key, _ in self.selector.select(timeout=0.5):
                self._on_ready(key.fileobj, key.data)  # type: ignore[arg-type]
        for sock in list(self.pending):
            self._drop(sock, "setup timeout")

    def count_open(self) -> dict[str, int]:
        """Peek every idle connection: EOF or an error means the server closed it."""
        poller = select.poll()
        by_descriptor = {sock.fileno(): sock for sock in self.idle}
        for descriptor in by_descriptor:
            poller.register(descriptor, select.POLLIN | select.POLLRDHUP)
        closed = 0
        for descriptor, events in poller.poll(0):
            if events & (select.POLLHUP | select.POLLERR | select.POLLRDHUP):
                closed += 1
                continue
            try:
                if by_descriptor[descriptor].recv(1, socket.MSG_PEEK) == b"":
                    closed += 1
            except OSError:
                closed += 1
        return {"still_open": len(self.idle) - closed, "closed": closed}


def hold_main(port: int, count: int, parallel: int, setup_seconds: float, stdin: IO[str]) -> None:
    holder = _Holder(port, count, parallel)
    started = time.monotonic()
    holder.establish(started + setup_seconds)
    report = {"established": len(holder.idle), "failed": dict(holder.failed)}
    report["setup_seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(report), flush=True)
    for line in stdin:
        if line.strip() != "check":
            break
        print(json.dumps(holder.count_open()), flush=True)
    for sock in holder.idle:
        sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Raw-socket load clients (loopback only).")
    commands = parser.add_subparsers(dest="command", required=True)
    upload = commands.add_parser("upload", help="POST a large body repeatedly; prints one JSON line")
    upload.add_argument("--port", type=int, required=True)
    upload.add_argument("--bytes", type=int, required=True)
    upload.add_argument("--duration", type=float, default=2.0)
    upload.add_argument("--chunked", action="store_true")
    hold = commands.add_parser("hold", help="hold idle keep-alive connections; 'check' on stdin counts them")
    hold.add_argument("--port", type=int, required=True)
    hold.add_argument("--count", type=int, required=True)
    hold.add_argument("--parallel", type=int, default=200)
    hold.add_argument("--setup-seconds", type=float, default=300.0)
    hold.add_argument("--max-seconds", type=int, default=900, help="exit by itself after this long")
    args = parser.parse_args(argv)
    if args.command == "upload":
        print(json.dumps(upload_main(args.port, args.bytes, args.chunked, args.duration)), flush=True)
        return
    signal.alarm(args.max_seconds)  # SIGALRM's default action ends the process
    _raise_open_file_limit(args.count + 64)
    hold_main(args.port, args.count, args.parallel, args.setup_seconds, sys.stdin)


if __name__ == "__main__":
    main()
