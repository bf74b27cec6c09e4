"""statsd reporting under gunicorn's metric names, over UDP.

Existing gunicorn dashboards keep working: the same names under ``statsd_prefix``
(a trailing dot is added), the same kinds, and ``dogstatsd_tags`` appended as
``|#tags`` to every line:

=================================== ======= ==============================================
``gunicorn.requests``               counter requests that reached the application
``gunicorn.request.status.<code>``  counter the same, by status code
``gunicorn.request.duration``       timer   one sample per request, in milliseconds
``gunicorn.workers``                gauge   worker processes (1 without a supervisor)
``gunicorn.log.<level>``            counter messages at warning, error, critical, and
                                            exceptions
=================================== ======= ==============================================

gunicorn sends a datagram per event from the thread serving the request. Here the
request only records into its thread's shard (see :mod:`waitress_like.metrics`), and
a reporter thread sends, once a second, what changed: counter increments summed, each
request's duration as a timer sample (past 1,000 a second, a random sample of them
with its ``|@rate``), several lines to a datagram. A statsd server adds
counters up over its flush interval either way, so the totals are the same.

Thread contract: :class:`StatsdClient` is used by one thread at a time (the reporter's);
:class:`StatsdReporter` ``start``/``close`` from the thread that owns it. Nothing here
raises into the server: send and lookup errors are logged once and retried.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from typing import Any, Callable, Iterable, Mapping, Optional

from . import metrics_table as table

__all__ = ["StatsdClient", "StatsdReporter", "statsd_lines", "DEFAULT_PORT"]

log = logging.getLogger("waitress_like")

DEFAULT_PORT = 8125
# Fits one Ethernet frame with IP and UDP headers, so no datagram is fragmented.
MAX_DATAGRAM_BYTES = 1432
REPORT_INTERVAL_SECONDS = 1.0
# Timer lines per report at most: past it, a random sample goes with its rate, so that a
# busy server spends a bounded time formatting them.
MAX_TIMER_SAMPLES = 1000


class StatsdClient:
    """UDP datagrams to a statsd server at ``host``:``port``; never blocks, never raises.

    The address is looked up on the first send (so on the reporter's thread, not the
    server's), and again after an error.
    """

    def __init__(self, host: str, port: int, prefix: str = "", tags: str = "") -> None:
        self.host = host
        self.port = port
        self.prefix = prefix.rstrip(".") + "." if prefix.strip(".") else ""
        self.suffix = f"|#{tags}" if tags else ""
        self._socket: Optional[socket.socket] = None
        self._warned = False

    def line(self, name: str, value: Any, kind: str) -> str:
        """One statsd line: ``<prefix><name>:<value>|<kind>[|#tags]``."""
        return f"{self.prefix}{name}:{value}|{kind}{self.suffix}"

    def send(self, lines: Iterable[str]) -> None:
        """Send ``lines``, as few datagrams as fit (newline-separated, as statsd reads them)."""
        batch: list[bytes] = []
        size = 0
        for text in lines:
            data = text.encode("ascii", "replace")
            if batch and size + 1 + len(data) > MAX_DATAGRAM_BYTES:
                self._send_datagram(b"\n".join(batch))
                batch, size = [], 0
            batch.append(data)
            size += len(data) + (1 if len(batch) > 1 else 0)
        if batch:
            self._send_datagram(b"\n".join(batch))

    def _send_datagram(self, data: bytes) -> None:
        sock = self._socket or self._connect()
        if sock is None:
            return
        try:
            sock.send(data)
        except (BlockingIOError, InterruptedError, ConnectionRefusedError):
            pass  # a full buffer or nobody listening (yet): statsd is best effort
        except OSError as error:
            self._warn(f"cannot send to statsd at {self.host}:{self.port}: {error}")
            self.close()  # look the address up again next time

    def _connect(self) -> Optional[socket.socket]:
        try:
            family, kind, protocol, _, address = socket.getaddrinfo(
                self.host, self.port, 0, socket.SOCK_DGRAM
            )[0]
            sock = socket.socket(family, kind, protocol)
        except OSError as error:
            self._warn(f"cannot reach statsd at {self.host}:{self.port}: {error}")
            return None
        try:
            sock.setblocking(False)
            sock.connect(address)
        except OSError as error:
            sock.close()
            self._warn(f"cannot reach statsd at {self.host}:{self.port}: {error}")
            return None
        self._socket = sock
        self._warned = False
        return sock

    def _warn(self, message: str) -> None:
        # Once per outage: a statsd server that is down must not flood the log.
        if not self._warned:
            self._warned = True
            log.warning("%s", message)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def statsd_lines(
    client: StatsdClient,
    snapshot: Mapping[str, Any],
    previous: dict[tuple[str, tuple], float],
    durations_seconds: Iterable[float],
    report_workers: bool,
) -> list[str]:
    """The lines for what changed since ``previous`` (updated in place to ``snapshot``)."""
    counts = {
        (name, tuple(labels)): value
        for name in (table.REQUESTS, table.RESPONSES, table.LOG_MESSAGES)
        for labels, value in snapshot.get("metrics", {}).get(name, ())
    }
    increments: dict[str, float] = {}
    for (name, labels), value in counts.items():
        change = value - previous.get((name, labels), 0)
        previous[(name, labels)] = value
        if change <= 0:
            continue
        for statsd_name in _gunicorn_names(name, labels):
            increments[statsd_name] = increments.get(statsd_name, 0) + change
    lines = [client.line(name, _number(change), "c") for name, change in increments.items()]
    lines += _timer_lines(client, list(durations_seconds))
    if report_workers:
        workers = sum(value for _, value in snapshot.get("metrics", {}).get(table.WORKERS, ()))
        lines.append(client.line("gunicorn.workers", _number(workers), "g"))
    return lines


def _timer_lines(client: StatsdClient, durations_seconds: list[float]) -> list[str]:
    """One timer line per request, or per sampled request past MAX_TIMER_SAMPLES, with
    the sample rate (``|@0.25``) so statsd scales its counts back."""
    kind = "ms"
    if len(durations_seconds) > MAX_TIMER_SAMPLES:
        rate = MAX_TIMER_SAMPLES / len(durations_seconds)
        durations_seconds = random.sample(durations_seconds, MAX_TIMER_SAMPLES)
        kind = f"ms|@{rate:.4g}"
    return [
        client.line("gunicorn.request.duration", _number(seconds * 1000), kind)
        for seconds in durations_seconds
    ]


def _gunicorn_names(name: str, labels: tuple) -> tuple[str, ...]:
    if name == table.REQUESTS:
        return ("gunicorn.requests",)
    if name == table.RESPONSES:
        return (f"gunicorn.request.status.{labels[0]}",)
    return (f"gunicorn.log.{labels[0]}",)


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0")


class StatsdReporter:
    """A thread that sends :func:`statsd_lines` every ``interval_seconds``.

    ``snapshot`` returns the current metrics (plain data), ``drain_samples`` the request
    durations recorded since the last call. :meth:`close` sends a last report.
    """

    def __init__(
        self,
        client: StatsdClient,
        snapshot: Callable[[], Mapping[str, Any]],
        drain_samples: Callable[[], list[float]],
        report_workers: bool = True,
        interval_seconds: float = REPORT_INTERVAL_SECONDS,
    ) -> None:
        self.client = client
        self._snapshot = snapshot
        self._drain_samples = drain_samples
        self._report_workers = report_workers
        self._interval = interval_seconds
        self._previous: dict[tuple[str, tuple], float] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waitress_like-statsd", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.report()

    def report(self) -> None:
        """Send what changed since the last report. Never raises."""
        try:
            lines = statsd_lines(
                self.client, self._snapshot(), self._previous, self._drain_samples(), self._report_workers
            )
            self.client.send(lines)
        except Exception:  # pragma: no cover - a bug; reporting must not stop the server
            log.exception("statsd report failed")

    def close(self) -> None:
        """Stop the thread, send a last report, close the socket. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self.report()
        self.client.close()
