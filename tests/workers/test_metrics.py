"""Metrics with real worker processes: the supervisor serves ``metrics_listen`` with the
total of what its workers report over their links, keeps a killed worker's counts
once, counts restarts by reason, and statsd gets each worker's requests and the
supervisor's worker count."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.httpclient import request

from .harness import APP, Supervised, get_pid, open_fds, wait_until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses fork, signals and /proc")

METRICS_LINE = re.compile(r"Serving metrics on http://127\.0\.0\.1:(\d+)/metrics")
REQUESTS = ("waitress_like_requests_total", (("method", "GET"), ("status", "2xx")))
WORKERS = ("waitress_like_workers", ())
Samples = dict[tuple[str, tuple], float]


def restarts(reason: str) -> tuple[str, tuple]:
    return ("waitress_like_worker_restarts_total", (("reason", reason),))


class Scraper:
    """Scrapes ``/metrics``, parsed with prometheus_client; checks at every scrape that
    no counter went down since the previous one."""

    def __init__(self, port: int) -> None:
        self.address = ("127.0.0.1", port)
        self.last: Samples = {}

    def scrape(self) -> Samples:
        response = request(self.address, b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        assert response.status == 200
        samples: Samples = {}
        for family in text_string_to_metric_families(response.body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
                if family.type in ("counter", "histogram"):
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    assert sample.value >= self.last.get(key, 0), f"{key} went down"
        self.last = samples
        return samples

    def wait_for(self, key: tuple[str, tuple], value: float) -> Samples:
        """Scrape until ``key`` reaches ``value`` (workers report about every second); it
        must then be exactly ``value``."""
        wait_until(lambda: self.scrape().get(key, 0) >= value, f"{key} to reach {value}")
        assert self.last[key] == value, self.last[key]
        return self.last


def _serve(server: Supervised, count: int) -> dict[int, int]:
    """``count`` requests; how many each worker (by pid) answered."""
    served: dict[int, int] = {}
    for _ in range(count):
        pid = get_pid(server.address)
        served[pid] = served.get(pid, 0) + 1
    return served


def _listening_inode(port: int) -> str:
    """The socket inode of the TCP socket listening on 127.0.0.1:``port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # LISTEN
            return fields[9]
    raise AssertionError(f"nothing listens on port {port}")


def test_the_supervisor_serves_its_workers_total_across_kills_and_reloads():
    with Supervised(["-w", "2", "--graceful-timeout=5", "--metrics-listen=127.0.0.1:0", APP]) as server:
        port = int(METRICS_LINE.search(server.wait_event(METRICS_LINE)).group(1))  # type: ignore[union-attr]
        workers = server.wait_ready(2)
        metrics = Scraper(port)
        # The workers bind no metrics listener and hold no copy of the supervisor's.
        inode = _listening_inode(port)
        assert f"socket:[{inode}]" in open_fds(server.pid)
        assert all(f"socket:[{inode}]" not in open_fds(pid) for pid in workers)

        served = _serve(server, 20)
        samples = metrics.wait_for(REQUESTS, 20)  # every worker's traffic was reported
        wait_until(lambda: metrics.scrape()[WORKERS] == 2, "the worker count")
        assert samples[restarts("exited")] == 0

        # SIGKILL: no last report, but what it reported stays counted, once.
        victim = max(served, key=served.__getitem__)
        os.kill(victim, signal.SIGKILL)
        assert server.wait_exited(1) == [victim]
        server.wait_ready(1)
        samples = metrics.scrape()
        assert samples[REQUESTS] == 20
        assert samples[restarts("exited")] == 1
        _serve(server, 10)
        metrics.wait_for(REQUESTS, 30)

        # A reload: the old workers retire and send their final counts as they go, so
        # requests served just before are counted at once (not after the next report).
        _serve(server, 5)
        server.send(signal.SIGHUP)
        server.wait_ready(2)
        server.wait_exited(2)
        samples = metrics.scrape()
        assert samples[REQUESTS] == 35
        assert samples[restarts("reload")] == 2
        assert samples[restarts("exited")] == 1
        assert samples[("waitress_like_request_duration_seconds_count", ())] == 35
        # TTOU: one worker fewer is no restart.
        server.send(signal.SIGTTOU)
        server.wait_exited(1)
        wait_until(lambda: metrics.scrape()[WORKERS] == 1, "the worker count to drop")
        assert metrics.last[restarts("reload")] == 2 and metrics.last[restarts("exited")] == 1
        assert server.stop() == 0


def test_max_requests_and_timeout_restarts_are_counted_by_reason():
    arguments = ["-w", "1", "--max-requests=5", "--worker-timeout=2", "--metrics-listen=127.0.0.1:0", APP]
    with Supervised([*arguments]) as server:
        port = int(METRICS_LINE.search(server.wait_event(METRICS_LINE)).group(1))  # type: ignore[union-attr]
        server.wait_ready(1)
        metrics = Scraper(port)
        _serve(server, 5)
        server.wait_ready(1)  # the successor
        server.wait_exited(1)  # the recycled worker, which said goodbye with its counts
        assert metrics.scrape()[restarts("max_requests")] == 1
        assert metrics.last[REQUESTS] == 5
        # A worker whose loop is stuck: SIGABRT, then replaced.
        with socket.create_connection(server.address, timeout=10) as sock:
            sock.sendall(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
            server.wait_exited(1)
        server.wait_ready(1)
        assert metrics.scrape()[restarts("timeout")] == 1
        assert server.stop() == 0


class StatsdServer:
    """A UDP socket standing for statsd: collects the lines it is sent."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []

    def receive(self) -> list[str]:
        """Every line that came so far (reads until the socket has nothing more)."""
        try:
            while True:
                self.lines += self.sock.recv(65536).decode().splitlines()
        except TimeoutError:
            return self.lines

    def counted(self, name: str) -> int:
        return sum(
            int(line.split(":")[1].split("|")[0]) for line in self.lines if line.startswith(name + ":")
        )


@pytest.fixture
def statsd() -> Any:
    server = StatsdServer()
    yield server
    server.sock.close()


def test_statsd_gets_each_workers_requests_and_the_supervisors_worker_count(statsd: StatsdServer):
    arguments = ["-w", "2", "--graceful-timeout=5", f"--statsd-host=127.0.0.1:{statsd.port}", APP]
    with Supervised(arguments) as server:
        server.wait_ready(2)
        _serve(server, 10)
        wait_until(lambda: statsd.receive() and statsd.counted("gunicorn.requests") >= 10, "10 requests")
        wait_until(lambda: "gunicorn.workers:2|g" in statsd.receive(), "the worker count")
        first = statsd.lines.index("gunicorn.workers:2|g")
        # Two reports more from the supervisor (one a second): the workers, reporting
        # as often, would have said "1" in between if they sent a worker count.
        wait_until(lambda: statsd.receive().count("gunicorn.workers:2|g") >= 3, "more reports")
        assert server.stop() == 0
    statsd.receive()  # the workers' last reports
    assert "gunicorn.workers:1|g" not in statsd.lines[first:]
    # Each request once: the workers send them, the supervisor does not add them up again.
    assert statsd.counted("gunicorn.requests") == 10
    assert statsd.counted("gunicorn.request.status.200") == 10
