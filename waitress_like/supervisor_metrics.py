"""A supervisor's metrics: its workers' counts added up, served at ``metrics_listen``.

Each worker process runs a :class:`~waitress_like.server_metrics.ServerMetrics` made with
``report=``: every second (and once more when it stops) it hands the supervisor a
snapshot of everything it counted since it started. The supervisor passes each one to
:meth:`SupervisorMetrics.worker_reported` and tells :meth:`SupervisorMetrics.worker_exited`
when a worker is gone; ``/metrics`` then shows the total. No shared directory: the
numbers travel over the pipe the supervisor already has to each worker.

When a worker is replaced its counters are kept once (see
:class:`~waitress_like.metrics.Aggregate`), so totals never go down and nothing is
counted twice. The supervisor counts the restarts itself, by reason, and sets the worker
count. Workers send statsd themselves (statsd adds up what each sends); the supervisor's
statsd reporter sends ``gunicorn.workers`` only.

Thread contract: the ``worker_*`` methods and :meth:`SupervisorMetrics.set_workers` on the
supervisor's thread; :meth:`SupervisorMetrics.snapshot` on any thread (the endpoint's
worker calls it); ``start``/``close`` on the supervisor's thread.
"""

from __future__ import annotations

import threading
from typing import Any, Hashable, Mapping, Optional, Sequence

from .config import Settings
from .listeners import Listener
from .metrics import Aggregate, Registry, render_text
from .metrics_endpoint import MetricsEndpoint
from .metrics_table import GAUGE_NAMES, METRICS, RESTARTS, WORKERS
from .server_metrics import reporting_from_settings
from .statsd import StatsdClient, StatsdReporter

__all__ = ["SupervisorMetrics", "supervisor_metrics_from_settings"]


class SupervisorMetrics:
    """The total of the workers' snapshots plus the supervisor's own counts."""

    def __init__(
        self, endpoint_listeners: Sequence[Listener] = (), statsd: Optional[StatsdClient] = None
    ) -> None:
        self._own = Registry(METRICS)
        self._aggregate = Aggregate(GAUGE_NAMES)
        self._lock = threading.Lock()  # the supervisor writes, the endpoint's thread reads
        self._workers = 0
        self._endpoint_listeners = list(endpoint_listeners)
        self.endpoint_addresses = [listener.address for listener in self._endpoint_listeners]
        self._statsd = statsd
        self._endpoint: Optional[MetricsEndpoint] = None
        self._reporter: Optional[StatsdReporter] = None

    def worker_reported(self, worker: Hashable, snapshot: Mapping[str, Any]) -> None:
        """A worker's latest snapshot (cumulative). ``worker`` is unique for the
        supervisor's lifetime, e.g. its spawn number, not its pid. Ignored once it exited."""
        with self._lock:
            self._aggregate.update(worker, snapshot)

    def worker_exited(self, worker: Hashable, restart_reason: Optional[str] = None) -> None:
        """``worker`` is gone; its last counts are kept. ``restart_reason`` (``exited``,
        ``timeout``, ``max_requests``, ``reload``...) counts a restart: None when it is
        not replaced (the supervisor is stopping)."""
        with self._lock:
            self._aggregate.retire(worker)
        if restart_reason:
            self._own.shard().add(RESTARTS, (restart_reason,))

    def set_workers(self, count: int) -> None:
        """How many workers serve now."""
        self._workers = count

    def snapshot(self) -> dict[str, Any]:
        """Any thread: the workers' total and the supervisor's own counts."""
        own = self._own.snapshot({WORKERS: {(): self._workers}})
        with self._lock:
            return self._aggregate.snapshot(own)

    def exposition(self) -> bytes:
        return render_text(METRICS, self.snapshot()).encode("utf-8")

    def start(self, server_class: Any) -> None:
        """Serve ``/metrics`` with a ``server_class`` server, and start statsd reporting."""
        if self._endpoint_listeners:
            self._endpoint = MetricsEndpoint(self._endpoint_listeners, self.exposition, server_class)
            self._endpoint.start()
        if self._statsd is not None:
            self._reporter = StatsdReporter(
                self._statsd, lambda: self._own.snapshot({WORKERS: {(): self._workers}}), lambda: []
            )
            self._reporter.start()

    def inherited_resources(self) -> list[Any]:
        """What a forked worker must close, having copies of them: the endpoint's
        listening sockets and loop, and the statsd socket (objects with ``close()``,
        which in the child closes only its copies). Their threads did not survive the fork.
        """
        resources: list[Any] = [listener.socket for listener in self._endpoint_listeners]
        if self._endpoint is not None:
            resources.append(self._endpoint.loop)
        if self._statsd is not None:
            resources.append(self._statsd)
        return resources

    def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None
        else:
            for listener in self._endpoint_listeners:
                listener.close()
        self._endpoint_listeners = []
        if self._reporter is not None:
            self._reporter.close()
            self._reporter = None
        elif self._statsd is not None:
            self._statsd.close()


def supervisor_metrics_from_settings(settings: Settings) -> Optional[SupervisorMetrics]:
    """None unless ``metrics_listen`` or ``statsd_host`` is set; binds ``metrics_listen``
    (raises :class:`~waitress_like.listeners.BindError`)."""
    if settings.metrics_listen is None and settings.statsd_host is None:
        return None
    return SupervisorMetrics(*reporting_from_settings(settings))
