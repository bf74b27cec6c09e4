"""The WebSocket load client: echo round trips over raw sockets (loopback only).

Parent side: ``run_ws_echo`` starts this module as a separate, CPU-pinned process and
returns what it measured. Child side (``python wsload.py echo --port P --connections N
--bytes B --duration S``): opens N WebSocket connections to ``/``, then on each one sends
a binary message of B bytes, waits for the server to send it back, checks it, and sends
the next, until the time is up; it prints one JSON line. Frames are built once (the
client's masking key is zero, which RFC 6455 allows: the key only has to be
unpredictable to hostile scripts, and a benchmark is not one) and the client offers no
extension, so every server echoes uncompressed frames and the client spends as little
time as it can.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SOCKET_TIMEOUT_SECONDS = 30.0
MIB = 1024 * 1024


class WebSocketLoadFailed(RuntimeError):
    """The client could not connect, or a message came back wrong."""


# ---------------------------------------------------------------------------------------
# Parent side


def run_ws_echo(
    port: int, connections: int, message_bytes: int, duration_seconds: float, cpu: int | None
) -> dict[str, Any]:
    """Echo ``message_bytes`` messages over ``connections`` connections for about
    ``duration_seconds``; returns round_trips_per_second, mib_per_second (payload echoed,
    counted once) and the totals. Raises WebSocketLoadFailed."""
    command = [sys.executable, str(Path(__file__).resolve()), "echo", "--port", str(port)]
    command += ["--connections", str(connections), "--bytes", str(message_bytes)]
    command += ["--duration", str(duration_seconds)]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu)] + command
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=duration_seconds + 120)
    except subprocess.TimeoutExpired:
        raise WebSocketLoadFailed("WebSocket client did not finish") from None
    if completed.returncode != 0:
        raise WebSocketLoadFailed(f"WebSocket client failed: {completed.stderr.strip()[-300:]}")
    return json.loads(completed.stdout)


# ---------------------------------------------------------------------------------------
# Child side


def client_frame(payload: bytes) -> bytes:
    """A masked binary frame with a zero masking key (so the payload goes as it is)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x82, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x82, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x82, 0x80 | 127, length)
    return header + b"\0\0\0\0" + payload


def _handshake(port: int) -> socket.socket:
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    request = (
        f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock = socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_SECONDS)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(request.encode("ascii"))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise WebSocketLoadFailed("the server closed the connection during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101 "):
        raise WebSocketLoadFailed(f"handshake answered {head[:60]!r}")
    if head.index(b"\r\n\r\n") + 4 != len(head):
        raise WebSocketLoadFailed("frames arrived with the handshake answer")
    sock.setblocking(False)
    return sock


class _Echoer:
    """One connection's side of the exchange: send, then collect the echo."""

    __slots__ = ("sock", "frame", "expected", "received", "round_trips")

    def __init__(self, sock: socket.socket, frame: bytes, message_bytes: int) -> None:
        self.sock = sock
        self.frame = frame
        # The server's frame: unmasked, same payload; its header length by payload size.
        header = 2 if message_bytes < 126 else 4 if message_bytes < 65536 else 10
        self.expected = header + message_bytes
        self.received = 0
        self.round_trips = 0

    def send(self) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(self.frame)
        self.sock.setblocking(False)
        self.received = 0

    def on_readable(self) -> bool:
        """Read what is there; True when the whole echo has arrived."""
        try:
            chunk = self.sock.recv(max(65536, self.expected - self.received))
        except BlockingIOError:
            return False
        if not chunk:
            raise WebSocketLoadFailed("the server closed a connection")
        if not self.received and chunk[0] != 0x82:
            raise WebSocketLoadFailed(f"unexpected frame start {chunk[:2]!r}")
        self.received += len(chunk)
        if self.received > self.expected:
            raise WebSocketLoadFailed("more bytes than one echo")
        return self.received == self.expected


def echo_main(port: int, connections: int, message_bytes: int, duration_seconds: float) -> dict[str, Any]:
    frame = client_frame(b"e" * message_bytes)
    echoers = [_Echoer(_handshake(port), frame, message_bytes) for _ in range(connections)]
    selector = selectors.DefaultSelector()
    for echoer in echoers:
        selector.register(echoer.sock, selectors.EVENT_READ, echoer)
    started = time.perf_counter()
    deadline = started + duration_seconds
    for echoer in echoers:
        echoer.send()
    while time.perf_counter() < deadline:
        for key, _ in selector.select(SOCKET_TIMEOUT_SECONDS) or [(None, 0)]:
            if key is None:
                raise WebSocketLoadFailed("no echo within the socket timeout")
            echoer = key.data
            if echoer.on_readable():
                echoer.round_trips += 1
                echoer.send()
    seconds = time.perf_counter() - started
    for echoer in echoers:
        echoer.sock.close()
    round_trips = sum(echoer.round_trips for echoer in echoers)
    return {
        "round_trips": round_trips,
        "seconds": seconds,
        "round_trips_per_second": round_trips / seconds,
        "mib_per_second": round_trips * message_bytes / seconds / MIB,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="WebSocket echo load client (loopback only).")
    commands = parser.add_subparsers(dest="command", required=True)
    echo = commands.add_parser("echo", help="echo round trips; prints one JSON line")
    echo.add_argument("--port", type=int, required=True)
    echo.add_argument("--connections", type=int, default=1)
    echo.add_argument("--bytes", type=int, default=32)
    echo.add_argument("--duration", type=float, default=2.0)
    echo.add_argument("--max-seconds", type=int, default=600, help="exit by itself after this long")
    args = parser.parse_args(argv)
    signal.alarm(args.max_seconds)  # SIGALRM's default action ends the process
    print(json.dumps(echo_main(args.port, args.connections, args.bytes, args.duration)), flush=True)


if __name__ == "__main__":
    main()
