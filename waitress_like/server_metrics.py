"""The recorder the hot path calls, and what serves and reports its numbers.

The metrics are those of :data:`~waitress_like.metrics_table.METRICS`. The server, its
channels and its gateway call one
:class:`MetricsRecorder` method per event, one line per site. With no metrics
configured that is :data:`NO_METRICS`, whose methods do nothing; otherwise a
:class:`ServerMetrics` records into the calling thread's shard of a
:class:`~waitress_like.metrics.Registry`, so counting a request takes no lock shared
with another thread. Values that are a state rather than a count (connections by state,
requests waiting for a worker, busy threads) are read when a snapshot is taken, and so
are the bytes of open connections: each connection counts its own, and hands its
totals over once, when it leaves (see :meth:`MetricsRecorder.bytes_transferred`).

A ``ServerMetrics`` also runs what reads the numbers: the ``/metrics`` listener
(``metrics_listen``), the statsd reporter (``statsd_host``), and a handler counting the
server's log messages by level (``waitress_like_log_messages_total``, gunicorn's
``gunicorn.log.*``). :meth:`ServerMetrics.start` starts them on the loop thread when
the server runs; :meth:`ServerMetrics.close` stops them.

Thread contract, per method: "loop" methods on the server's loop thread, "worker" ones
on the thread that served the request; :meth:`ServerMetrics.snapshot` on any thread.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from typing import Any, Callable, Iterable, Mapping, Optional, Protocol, Sequence

from .config import Settings
from .listeners import Listener, bind_listeners
from .metrics import HISTOGRAM, MetricSpec, Registry, render_text
from .metrics_endpoint import MetricsEndpoint
from .metrics_table import (
    ACCEPTED,
    CONNECTION_STATES,
    CONNECTIONS,
    DURATION,
    DURATION_BUCKETS,
    EVICTED,
    IN_SERVICE,
    KNOWN_METHODS,
    LOG_MESSAGES,
    METRICS,
    QUEUED,
    RECEIVED,
    REJECTED,
    REJECTION_REASONS,
    REQUESTS,
    RESPONSES,
    RESTARTS,
    SENT,
    SLOW_CLIENTS,
    THREADS,
    THREADS_BUSY,
    WORKERS,
)
from .statsd import REPORT_INTERVAL_SECONDS, StatsdClient, StatsdReporter

__all__ = [
    "NO_METRICS",
    "GaugeSource",
    "MetricsRecorder",
    "ServerMetrics",
    "metrics_from_settings",
]

log = logging.getLogger("waitress_like")

_STATUS_TEXT = {code: str(code) for code in range(100, 1000)}
# Internal: one histogram of durations per (method, status text), the only thing a request
# records. The request and response counters and the duration histogram are sums of
# these cells, made when a snapshot is taken (see _expand_request_cells).
_CELLS = "waitress_like_request_cells"
_CELLS_SPEC = MetricSpec(_CELLS, HISTOGRAM, "internal", ("method", "status"), DURATION_BUCKETS)
_CellKey = tuple[str, tuple[str, str]]
# method -> status -> the cell's key, filled as they are met. Bounded: known methods
# only (a client may send any), and statuses 100-999.
_CELL_KEYS: dict[str, dict[int, _CellKey]] = {method: {} for method in KNOWN_METHODS}
_OTHER_METHOD_CELL_KEYS: dict[int, _CellKey] = {}


def _cell_key(method: str, status: int) -> _CellKey:
    """The key of a request's cell, remembered for the next one like it."""
    known = method in KNOWN_METHODS
    key = (_CELLS, (method if known else "other", _STATUS_TEXT.get(status, "other")))
    if status in _STATUS_TEXT:
        (_CELL_KEYS[method] if known else _OTHER_METHOD_CELL_KEYS)[status] = key
    return key


def _expand_request_cells(metrics: dict[str, Any]) -> None:
    """Replace the cells in a snapshot's ``metrics`` by the families made of them."""
    requests: dict[tuple[str, str], float] = {}
    responses: dict[str, float] = {}
    durations: list[float] = []
    for (method, status_text), cell in metrics.pop(_CELLS, ()):
        count = sum(cell[:-1])
        status_class = "other" if status_text == "other" else status_text[0] + "xx"
        requests[(method, status_class)] = requests.get((method, status_class), 0) + count
        responses[status_text] = responses.get(status_text, 0) + count
        durations = list(cell) if not durations else [a + b for a, b in zip(durations, cell)]
    metrics[REQUESTS] = [[list(labels), count] for labels, count in requests.items()]
    metrics[RESPONSES] = [[[status_text], count] for status_text, count in responses.items()]
    metrics[DURATION] = [[[], durations]] if durations else []


_SAMPLE_LIMIT = 10_000  # statsd timer samples kept per thread between two flushes
_GAUGE_WAIT_SECONDS = 2.0


class MetricsRecorder:
    """The events the server reports; this base class records nothing (:data:`NO_METRICS`).

    Every method returns at once and never raises.
    """

    #: Where ``/metrics`` is served (bound addresses; empty when it is not).
    endpoint_addresses: list[Any] = []

    def connection_opened(self) -> None:
        """Loop: a connection was accepted."""

    def bytes_transferred(self, received: int, sent: int) -> None:
        """Loop: a connection left the server (closed, or handed over to a WebSocket
        connection) having received and sent these bytes. While open, its
        ``received_bytes`` and ``sent_bytes`` are read with the gauges."""

    def request_rejected(self, status: int, reason: str = "") -> None:
        """Loop: the server answered ``status`` itself; ``reason`` names the cause of a 503."""

    def slow_client_cut(self, deadline: str) -> None:
        """Loop: a connection was closed for missing ``deadline`` (see :data:`DEADLINES`)."""

    def connection_evicted(self) -> None:
        """Loop: a connection was closed to make room at connection_limit."""

    def request_done(self, method: str, status: int, duration_seconds: float) -> None:
        """Worker: a request that reached the application is complete."""

    def worker_restarted(self, reason: str) -> None:
        """Supervisor: a worker process was replaced (see :data:`RESTART_REASONS`)."""

    def start(self, server: GaugeSource) -> None:
        """Loop: the server runs; start serving and reporting the numbers."""

    def close(self) -> None:
        """Any thread, once the server stopped: stop reporting; idempotent."""


NO_METRICS = MetricsRecorder()


class _Pool(Protocol):
    @property
    def queued_count(self) -> int: ...

    @property
    def idle_count(self) -> int: ...

    @property
    def thread_count(self) -> int: ...


class _Loop(Protocol):
    def in_loop_thread(self) -> bool: ...

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None: ...

    def call_later(self, delay_seconds: float, callback: Callable[[], Any]) -> Any: ...


class GaugeSource(Protocol):
    """What a snapshot reads of the server: its loop, pool, channels and requests."""

    @property
    def loop(self) -> _Loop: ...

    @property
    def pool(self) -> _Pool: ...

    @property
    def requests_in_service(self) -> int: ...

    @property
    def channels(self) -> Iterable[Any]: ...  # with metrics_state(), received_bytes, sent_bytes


class ServerMetrics(MetricsRecorder):
    """Records into a :class:`~waitress_like.metrics.Registry` of :data:`METRICS`.

    ``endpoint_listeners`` are the bound ``metrics_listen`` sockets (none: no
    ``/metrics``); ``statsd`` is the client to report to.

    In a worker process run by a supervisor, ``report`` is given instead of listeners:
    it is called on the loop thread with a :meth:`snapshot` every
    ``report_interval_seconds`` while the server runs, and once more with the final
    counts when it stops (after its workers have finished). It must not block: hand the
    snapshot to the supervisor's pipe without waiting. The supervisor then serves the
    total (see :class:`~waitress_like.supervisor_metrics.SupervisorMetrics`) and reports
    the worker count.
    """

    def __init__(
        self,
        endpoint_listeners: Sequence[Listener] = (),
        statsd: Optional[StatsdClient] = None,
        report: Optional[Callable[[dict[str, Any]], None]] = None,
        report_interval_seconds: float = REPORT_INTERVAL_SECONDS,
    ) -> None:
        self.registry = Registry(
            (*METRICS, _CELLS_SPEC), sample_limit=_SAMPLE_LIMIT if statsd is not None else 0
        )
        self._timings = statsd is not None
        self._endpoint_listeners = list(endpoint_listeners)
        self.endpoint_addresses = [listener.address for listener in self._endpoint_listeners]
        self._statsd = statsd
        self._report = report
        self._report_interval = report_interval_seconds
        self._standalone = report is None
        self._source: Optional[GaugeSource] = None
        self._last_gauges: dict[str, dict[tuple, float]] = {}
        self._endpoint: Optional[MetricsEndpoint] = None
        self._reporter: Optional[StatsdReporter] = None
        self._log_counter = _LogLevelCounter(self)
        self._closed = False
        # Loop thread only: the bytes of the connections that have left (received, sent).
        self._bytes_of_closed = [0, 0]

    # -- recording: one shard per thread ---------------------------------------------------

    def connection_opened(self) -> None:
        self.registry.shard().add(ACCEPTED)

    def bytes_transferred(self, received: int, sent: int) -> None:
        totals = self._bytes_of_closed
        totals[0] += received
        totals[1] += sent

    def request_rejected(self, status: int, reason: str = "") -> None:
        reason = reason or REJECTION_REASONS.get(status, "other")
        self.registry.shard().add(REJECTED, (_STATUS_TEXT.get(status, "other"), reason))

    def slow_client_cut(self, deadline: str) -> None:
        self.registry.shard().add(SLOW_CLIENTS, (deadline,))

    def connection_evicted(self) -> None:
        self.registry.shard().add(EVICTED)

    def request_done(self, method: str, status: int, duration_seconds: float) -> None:
        # Runs for every request: one histogram cell (Shard.observe inlined), whose key is
        # made once per (method, status); the counters are derived from the cells.
        key = _CELL_KEYS.get(method, _OTHER_METHOD_CELL_KEYS).get(status) or _cell_key(method, status)
        shard = self.registry.shard()
        cell = shard.histograms.get(key)
        if cell is None:
            cell = shard.histograms[key] = [0] * (len(DURATION_BUCKETS) + 1) + [0.0]
        cell[bisect_left(DURATION_BUCKETS, duration_seconds)] += 1
        cell[-1] += duration_seconds
        if self._timings:
            shard.samples.append(duration_seconds)  # type: ignore[union-attr]

    def worker_restarted(self, reason: str) -> None:
        self.registry.shard().add(RESTARTS, (reason,))

    def log_message(self, level: str) -> None:
        """Any thread: the server logged a message at ``level`` (see :data:`LOG_LEVELS`)."""
        self.registry.shard().add(LOG_MESSAGES, (level,))

    # -- reading ---------------------------------------------------------------------------

    def snapshot(self, read_server: bool = True) -> dict[str, Any]:
        """Any thread: every metric now, as plain data (see :mod:`waitress_like.metrics`).

        Gauges that only the loop thread may read are read there: from another thread
        this waits for the loop (at most a couple of seconds, then the last values read).
        ``read_server=False`` leaves them out, and the byte counters with them while the
        server runs (the other counters are all there); once it has stopped, every
        connection has handed its bytes over and they are complete.
        """
        if self._source is None:
            gauges = self._byte_totals(())
        else:
            gauges = self._read_gauges() if read_server else {}
        if self._standalone:
            gauges[WORKERS] = {(): 1}
        snapshot = self.registry.snapshot(gauges)
        _expand_request_cells(snapshot["metrics"])
        return snapshot

    def _counters(self) -> dict[str, Any]:
        return self.snapshot(read_server=False)

    def _read_gauges(self) -> dict[str, dict[tuple, float]]:
        source = self._source
        if source is None:
            return {}
        if source.loop.in_loop_thread():
            self._last_gauges = self._gauges_of(source)
            return dict(self._last_gauges)
        done = threading.Event()

        def read_on_loop() -> None:
            self._last_gauges = self._gauges_of(source)
            done.set()

        source.loop.call_soon_threadsafe(read_on_loop)
        done.wait(_GAUGE_WAIT_SECONDS)
        return dict(self._last_gauges)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, server: GaugeSource) -> None:
        self._source = server
        logging.getLogger("waitress_like").addHandler(self._log_counter)
        if self._report is not None:
            server.loop.call_later(self._report_interval, self._report_now)
        if self._endpoint_listeners:
            self._endpoint = MetricsEndpoint(self._endpoint_listeners, self.exposition, type(server))
            self._endpoint.start()
        if self._statsd is not None:
            self._reporter = StatsdReporter(
                # statsd reports counters and timers only: no need to wake the loop.
                self._statsd,
                self._counters,
                self.registry.drain_samples,
                report_workers=self._standalone,
            )
            self._reporter.start()

    def _report_now(self) -> None:
        """Loop thread (a timer): send the snapshot to the supervisor, and again later."""
        if self._closed or self._source is None:
            return
        self._send_report(self.snapshot())
        self._source.loop.call_later(self._report_interval, self._report_now)

    def _send_report(self, snapshot: dict[str, Any]) -> None:
        try:
            self._report(snapshot)  # type: ignore[misc]
        except Exception:  # the server must keep serving whatever the pipe does
            log.exception("cannot report metrics to the supervisor")

    def exposition(self) -> bytes:
        """Any thread: the Prometheus text format of :meth:`snapshot`."""
        return render_text(METRICS, self.snapshot()).encode("utf-8")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._source = None  # from now on a snapshot reads no gauge from the loop
        logging.getLogger("waitress_like").removeHandler(self._log_counter)
        if self._endpoint is not None:
            self._endpoint.close()
        else:
            for listener in self._endpoint_listeners:  # never started
                listener.close()
        if self._report is not None:
            self._send_report(self.snapshot(read_server=False))  # the final counts
        if self._reporter is not None:
            self._reporter.close()  # sends what is left
        elif self._statsd is not None:
            self._statsd.close()

    def _gauges_of(self, source: GaugeSource) -> dict[str, dict[tuple, float]]:
        """Loop thread: the gauges read from the server as it is now, and the byte
        counters (read here too, so that a connection closing between two reads is
        counted once: either open or closed)."""
        states = dict.fromkeys(CONNECTION_STATES, 0)
        channels = list(source.channels)
        for channel in channels:
            state = channel.metrics_state()
            states[state] = states.get(state, 0) + 1
        pool = source.pool
        idle = pool.idle_count
        return {
            CONNECTIONS: {(state,): count for state, count in states.items()},
            IN_SERVICE: {(): source.requests_in_service},
            QUEUED: {(): max(0, pool.queued_count - idle)},
            THREADS: {(): pool.thread_count},
            THREADS_BUSY: {(): max(0, pool.thread_count - idle)},
            **self._byte_totals(channels),
        }

    def _byte_totals(self, open_channels: Iterable[Any]) -> dict[str, dict[tuple, float]]:
        """Loop thread (or once the server has stopped): bytes of the closed connections
        and of ``open_channels``."""
        received, sent = self._bytes_of_closed
        for channel in open_channels:
            received += channel.received_bytes
            sent += channel.sent_bytes
        return {RECEIVED: {(): received}, SENT: {(): sent}}


class _LogLevelCounter(logging.Handler):
    """Counts the server's log records at WARNING and above, by level (no I/O, no lock)."""

    def __init__(self, metrics: ServerMetrics) -> None:
        super().__init__(logging.WARNING)
        self._metrics = metrics

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: counting writes only the calling thread's shard.
        if record.levelno < self.level:
            return False
        if record.exc_info and record.levelno == logging.ERROR:
            level = "exception"  # log.exception(), as gunicorn counts it apart
        elif record.levelno >= logging.CRITICAL:
            level = "critical"
        elif record.levelno >= logging.ERROR:
            level = "error"
        else:
            level = "warning"
        self._metrics.log_message(level)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        pass


def metrics_from_settings(
    settings: Settings, report: Optional[Callable[[dict[str, Any]], None]] = None
) -> MetricsRecorder:
    """The recorder ``settings`` ask for: :data:`NO_METRICS` unless ``metrics_listen`` or
    ``statsd_host`` is set. Binds the ``metrics_listen`` socket now, so an address in use
    is reported before serving (raises :class:`~waitress_like.listeners.BindError`).

    A worker process of a supervisor passes ``report`` (see :class:`ServerMetrics`): it
    binds nothing, the supervisor serves ``metrics_listen``.
    """
    if settings.metrics_listen is None and settings.statsd_host is None:
        return NO_METRICS
    listeners, statsd = reporting_from_settings(settings, bind=report is None)
    return ServerMetrics(listeners, statsd, report=report)


def reporting_from_settings(
    settings: Settings, bind: bool = True
) -> tuple[list[Listener], Optional[StatsdClient]]:
    """The bound ``metrics_listen`` sockets (with ``bind``) and the statsd client, as set."""
    listeners: list[Listener] = []
    if bind and settings.metrics_listen is not None:
        listeners = bind_listeners(
            settings.metrics_listen, ipv4=settings.ipv4, ipv6=settings.ipv6, backlog=64
        )
    statsd = None
    if settings.statsd_host is not None:
        host, port = settings.statsd_host
        statsd = StatsdClient(host, port, prefix=settings.statsd_prefix, tags=settings.dogstatsd_tags)
    return listeners, statsd


def gauge_values(snapshot: Mapping[str, Any], name: str) -> dict[tuple, Any]:
    """The series of ``name`` in ``snapshot`` as ``{label values: value}`` (for tests, tools)."""
    return {tuple(labels): value for labels, value in snapshot.get("metrics", {}).get(name, ())}
