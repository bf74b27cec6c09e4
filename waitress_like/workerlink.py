"""The link between the supervisor and one worker process: small typed messages.

Each worker has one connected stream socket pair with the supervisor (a ``socketpair``:
portable, and on Windows a socket is the only thing ``select()`` can wait on). Either end
closing tells the other that its peer is gone: the supervisor then reaps the worker, a
worker drains and exits, so no worker outlives its supervisor.

Message format
--------------
A message is one JSON object, UTF-8 encoded, on one line ending with ``\\n`` (JSON
escapes line breaks inside strings, so a newline only ever ends a message), at most
:data:`MAX_MESSAGE_BYTES` long. Its ``"kind"`` member names it; the other members are its
fields. A receiver ignores (logging at debug level) a kind or a field it does not know,
so one side can add a kind without breaking the other.

Worker to supervisor:

``ready``          ``{"kind": "ready", "pid": 1234}``: the worker's loop runs and accepts.
``heartbeat``      ``{"kind": "heartbeat", "requests": 120}``: sent by a timer on the
                   worker's *loop* thread, so it stops when the loop is stuck, not when
                   requests take long in worker threads. ``requests``: handed to the
                   application so far.
``recycle``        ``{"kind": "recycle", "requests": 1000}``: ``max_requests`` reached;
                   the supervisor starts a successor, then retires this worker.
``boot_error``     ``{"kind": "boot_error", "reason": "..."}``: the worker could not start
                   (application import, hook, lifespan); one line, for the log and for the
                   supervisor's exit message. The worker exits next.
``metrics``        ``{"kind": "metrics", "snapshot": {...}}``: with ``metrics_listen`` or
                   ``statsd_host``, everything the worker counted since it started (a
                   snapshot of :mod:`waitress_like.metrics`, a few kilobytes), from its
                   loop thread about every second and once more when it stops
                   gracefully. The supervisor keeps the latest per worker and serves
                   the total (:class:`~waitress_like.supervisor_metrics.SupervisorMetrics`).

Supervisor to worker:

``stop``           ``{"kind": "stop", "graceful": true}``: drain within ``graceful_timeout``
                   (``false``: close every connection now) and exit.
``retire``         ``{"kind": "retire"}``: another worker took over: stop accepting, serve
                   what was already accepted, drain, exit.
``reopen_logs``    ``{"kind": "reopen_logs"}``: reopen log files (SIGUSR1).

Adding a kind: add its name below, send it with
:meth:`LinkWriter.send` (in a worker, the writer is ``WorkerView.link``, which hooks get
as ``worker.link``; a loop-thread timer such as the heartbeat's is a good place), and
register a handler for it on the receiving side (``Supervisor.message_handlers`` in the
supervisor, called with the worker's record and the message; ``WorkerControl.handlers``
in a worker). Keep messages small: they share the link with heartbeats.

Thread contract: :class:`LinkWriter` may be used from any thread (sends are serialised
and never block: the socket is non-blocking and what does not fit waits in a bounded
buffer). :class:`MessageReader` belongs to the one thread that reads the socket.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from typing import Any, Optional

__all__ = [
    "BOOT_ERROR",
    "HEARTBEAT",
    "MAX_MESSAGE_BYTES",
    "METRICS",
    "READY",
    "RECYCLE",
    "REOPEN_LOGS",
    "RETIRE",
    "STOP",
    "LinkError",
    "LinkWriter",
    "MessageReader",
    "encode",
    "receive",
]

log = logging.getLogger("waitress_like")

# Worker to supervisor.
READY = "ready"
HEARTBEAT = "heartbeat"
RECYCLE = "recycle"
BOOT_ERROR = "boot_error"
METRICS = "metrics"
# Supervisor to worker.
STOP = "stop"
RETIRE = "retire"
REOPEN_LOGS = "reopen_logs"

MAX_MESSAGE_BYTES = 64 * 1024
# What may wait unsent before new messages are dropped: a peer that reads nothing is
# stuck or gone, and the other side finds that out by other means (EOF, heartbeats).
_MAX_PENDING_BYTES = 256 * 1024
_RECV_BYTES = 64 * 1024


class LinkError(Exception):
    """The peer broke the message format (a line too long, not a JSON object)."""


def encode(kind: str, **fields: Any) -> bytes:
    """One message as the bytes that go on the link."""
    data = json.dumps({"kind": kind, **fields}, separators=(",", ":"), ensure_ascii=True)
    encoded = data.encode("ascii") + b"\n"
    if len(encoded) > MAX_MESSAGE_BYTES:
        raise ValueError(f"a {kind} message of {len(encoded)} bytes is over the link's limit")
    return encoded


class MessageReader:
    """Splits the received byte stream into messages (dicts with a ``kind``)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add received bytes; return the messages they complete. Raises :class:`LinkError`."""
        self._buffer += data
        messages = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            messages.append(_decode(line))
        if len(self._buffer) > MAX_MESSAGE_BYTES:
            raise LinkError(f"a message longer than {MAX_MESSAGE_BYTES} bytes")
        return messages


def _decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as error:
        raise LinkError(f"a message that is not JSON: {error}") from None
    if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
        raise LinkError("a message that is not an object with a kind")
    return message


def receive(sock: socket.socket, reader: MessageReader) -> Optional[list[dict[str, Any]]]:
    """Read what a non-blocking ``sock`` has: its messages, or None once the peer is gone."""
    try:
        data = sock.recv(_RECV_BYTES)
    except (BlockingIOError, InterruptedError):
        return []
    except OSError:
        return None
    if not data:
        return None
    return reader.feed(data)


class LinkWriter:
    """Sends messages on a non-blocking socket without ever blocking the caller."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._broken = False

    def send(self, kind: str, **fields: Any) -> bool:
        """Queue one message and write what the socket takes now. False if it was dropped
        (the peer is gone, or reads nothing and the buffer is full)."""
        data = encode(kind, **fields)
        with self._lock:
            if self._broken or len(self._pending) + len(data) > _MAX_PENDING_BYTES:
                return False
            self._pending += data
            self._flush_locked()
            return not self._broken

    def flush(self) -> bool:
        """Write what waits; True when nothing is left."""
        with self._lock:
            self._flush_locked()
            return not self._pending

    def send_and_wait(self, kind: str, timeout_seconds: float, **fields: Any) -> bool:
        """Send one message and wait (at most ``timeout_seconds``) until it is written:
        for a last word before the process exits."""
        if not self.send(kind, **fields):
            return False
        return self.wait_flushed(timeout_seconds)

    def wait_flushed(self, timeout_seconds: float) -> bool:
        """Wait (at most ``timeout_seconds``) until everything queued is written; False
        if it was not (the peer reads nothing, or is gone). Before a process exits."""
        deadline = time.monotonic() + timeout_seconds
        while not self.flush():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._broken:
                return False
            select.select([], [self.sock], [], remaining)
        return True

    def _flush_locked(self) -> None:
        while self._pending and not self._broken:
            try:
                sent = self.sock.send(self._pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._broken = True
                self._pending.clear()
                return
            del self._pending[:sent]
