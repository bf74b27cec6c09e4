"""Metrics across worker processes: what a worker reports, and what the supervisor serves.

The workers here are real servers in this process, each reporting through the hook a
worker process uses; the supervisor side is the real SupervisorMetrics serving a real
/metrics (tests/workers/test_metrics.py does the same with worker processes). A worker killed without a last
report and its replacement are played out, and the total is read back over HTTP with
prometheus_client's parser.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.httpclient import request
from waitress_like.config import Settings
from waitress_like.listeners import bind_listeners
from waitress_like.server import Server
from waitress_like.server_metrics import ServerMetrics, gauge_values
from waitress_like.supervisor_metrics import SupervisorMetrics, supervisor_metrics_from_settings

REQUESTS = "waitress_like_requests_total"


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


class Worker:
    """A real server whose metrics report the way a worker process's do."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.report_threads: set[str] = set()
        self.reported = threading.Event()
        settings = Settings(listen="127.0.0.1:0", threads=2)
        listeners = bind_listeners(settings.listen, ipv4=True, ipv6=False, backlog=16)
        self.metrics = ServerMetrics(report=self._report, report_interval_seconds=0.05)
        self.server = Server(hello, settings, listeners, metrics=self.metrics)
        self.thread = threading.Thread(target=self.server.run, name="worker-loop", daemon=True)
        self.thread.start()

    def _report(self, snapshot: dict[str, Any]) -> None:
        self.reports.append(snapshot)
        self.report_threads.add(threading.current_thread().name)
        self.reported.set()

    def serve(self, count: int) -> None:
        for _ in range(count):
            raw = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            assert request(self.server.addresses[0][:2], raw).status == 200

    def stop(self) -> dict[str, Any]:
        """Stop gracefully; returns the last report (the final counts)."""
        self.server.close(timeout=2)
        self.thread.join(10)
        return self.reports[-1]


@pytest.fixture
def supervisor() -> Iterator[SupervisorMetrics]:
    settings = Settings(metrics_listen="127.0.0.1:0")
    metrics = supervisor_metrics_from_settings(settings)
    assert metrics is not None
    metrics.start(Server)
    yield metrics
    metrics.close()


def scrape(metrics: SupervisorMetrics) -> dict[tuple[str, tuple], float]:
    host, port = metrics.endpoint_addresses[0][:2]
    response = request((host, port), b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
    assert response.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.body.decode())
        for sample in family.samples
    }


def requests_served(samples: dict[tuple[str, tuple], float]) -> float:
    return samples[(REQUESTS, (("method", "GET"), ("status", "2xx")))]


def test_a_worker_reports_from_its_loop_and_once_more_with_its_final_counts() -> None:
    worker = Worker()
    try:
        assert worker.reported.wait(10)
        worker.serve(3)
    finally:
        final = worker.stop()
    assert worker.report_threads == {"worker-loop"}  # never from another thread
    assert gauge_values(final, REQUESTS) == {("GET", "2xx"): 3}
    assert gauge_values(final, "waitress_like_workers") == {}  # the supervisor says how many
    assert len(worker.reports) >= 2


def test_a_worker_binds_no_metrics_listener() -> None:
    from waitress_like.server_metrics import metrics_from_settings

    recorder = metrics_from_settings(Settings(metrics_listen="127.0.0.1:0"), report=lambda snapshot: None)
    assert recorder.endpoint_addresses == []
    recorder.close()


def test_totals_across_a_worker_killed_and_replaced(supervisor: SupervisorMetrics) -> None:
    first, second = Worker(), Worker()
    try:
        first.serve(5)
        second.serve(3)
        first_report = first.stop()  # stands for its last report before it was killed
        supervisor.worker_reported(1, first_report)
        supervisor.worker_reported(2, second.stop())
        supervisor.set_workers(2)
        assert requests_served(scrape(supervisor)) == 8
        supervisor.worker_exited(1, restart_reason="exited")  # killed; its 5 stay counted
        replacement = Worker()
        replacement.serve(1)
        supervisor.worker_reported(3, replacement.stop())
        supervisor.worker_reported(1, first_report)  # a late message from the dead worker
        samples = scrape(supervisor)
    finally:
        for worker in (first, second):
            worker.server.close(timeout=2)
    assert requests_served(samples) == 9
    assert samples[("waitress_like_request_duration_seconds_count", ())] == 9
    assert samples[("waitress_like_worker_restarts_total", (("reason", "exited"),))] == 1
    assert samples[("waitress_like_workers", ())] == 2
    assert samples[("waitress_like_connections_accepted_total", ())] == 9


def test_a_dead_workers_gauges_are_dropped(supervisor: SupervisorMetrics) -> None:
    alive = {"format": 1, "metrics": {"waitress_like_threads": [[[], 4]], REQUESTS: [[["GET", "2xx"], 2]]}}
    supervisor.worker_reported("a", alive)
    supervisor.worker_reported("b", alive)
    assert gauge_values(supervisor.snapshot(), "waitress_like_threads") == {(): 8}
    supervisor.worker_exited("a", restart_reason="timeout")
    snapshot = supervisor.snapshot()
    assert gauge_values(snapshot, "waitress_like_threads") == {(): 4}
    assert gauge_values(snapshot, REQUESTS) == {("GET", "2xx"): 4}
