"""``metrics_listen``: a real server, real traffic, a real scrape read by prometheus_client.

Each test makes known traffic on the application's port, then scrapes ``/metrics`` on the
metrics port over HTTP and checks names, labels and values with prometheus_client's own
text parser. Gauges (connections by state, busy threads) are read at the moment of the
scrape, so they are checked while requests are held inside the application.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apps import BlockingApp
from tests.httpclient import Connection, request
from waitress_like import create_server
from waitress_like.listeners import BindError
from waitress_like.metrics import CONTENT_TYPE
from waitress_like.metrics_table import CONNECTION_STATES as METRIC_CONNECTION_STATES
from waitress_like.metrics_table import METRICS
from waitress_like.server_metrics import NO_METRICS

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class RoutingApp:
    """``/`` 200, ``/missing`` 404, ``/boom`` raises, ``/block`` waits, ``/metrics`` is the app's own."""

    def __init__(self) -> None:
        self.blocking = BlockingApp()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        if path == "/block":
            return self.blocking(environ, start_response)
        if path == "/boom":
            raise RuntimeError("the application failed")
        status = "404 Not Found" if path == "/missing" else "200 OK"
        body = b"app:" + path.encode()
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]


def scrape_text(server: Any) -> str:
    host, port = server.server.metrics.endpoint_addresses[0][:2]
    response = request((host, port), b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
    assert response.status == 200
    assert response.header("Content-Type") == CONTENT_TYPE
    return response.body.decode("utf-8")


def requests_counted(count: int) -> Callable[[Samples], bool]:
    return lambda samples: value(samples, "waitress_like_request_duration_seconds_count") == count


def scrape(server: Any) -> Samples:
    """Every sample of a scrape: {(sample name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape_text(server))
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def scrape_until(server: Any, condition: Callable[[Samples], bool], timeout: float = 10.0) -> Samples:
    """Scrape until ``condition`` holds (at most ``timeout`` seconds), for what no client
    can see happen: a worker counts its request just after the response's last byte is
    queued, so a client can have the whole response before it is counted."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(server)
        if condition(samples) or time.monotonic() > deadline:
            return samples


def get(address: tuple[str, int], path: str, method: str = "GET", body: bytes = b"") -> tuple[bytes, bytes]:
    """One request on its own connection; returns (bytes sent, bytes received)."""
    raw = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    sent = raw.encode() + body
    with Connection(address) as connection:
        connection.send(sent)
        return sent, connection.read_all()


@pytest.fixture
def app() -> RoutingApp:
    return RoutingApp()


def _open_connections(samples: Samples) -> float:
    return sum(value(samples, "waitress_like_connections", state=state) for state in METRIC_CONNECTION_STATES)


def test_an_open_connection_counts_its_bytes_then_hands_them_over_once(
    start_server: Any, app: RoutingApp
) -> None:
    """Bytes of an open connection are read with the gauges; when it closes they move
    to the closed totals: the counters neither drop nor count them twice."""
    server = start_server(app, metrics_listen="127.0.0.1:0")
    raw = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(raw)
        response = b""
        while not response.endswith(b"app:/"):
            chunk = sock.recv(4096)
            assert chunk, response
            response += chunk
        open_samples = scrape_until(server, requests_counted(1))
        assert _open_connections(open_samples) == 1
    closed_samples = scrape_until(server, lambda samples: _open_connections(samples) == 0)
    for samples in (open_samples, closed_samples):
        assert value(samples, "waitress_like_received_bytes_total") == len(raw)
        assert value(samples, "waitress_like_sent_bytes_total") == len(response)


def test_requests_bytes_and_connections_after_known_traffic(start_server: Any, app: RoutingApp) -> None:
    server = start_server(app, metrics_listen="127.0.0.1:0")
    sent = received = 0
    for method, path in [("GET", "/"), ("GET", "/"), ("GET", "/"), ("POST", "/missing"), ("GET", "/boom")]:
        request_bytes, response_bytes = get(server.address, path, method, b"x" if method == "POST" else b"")
        sent, received = sent + len(request_bytes), received + len(response_bytes)
    samples = scrape_until(server, requests_counted(5))
    assert value(samples, "waitress_like_requests_total", method="GET", status="2xx") == 3
    assert value(samples, "waitress_like_requests_total", method="POST", status="4xx") == 1
    assert value(samples, "waitress_like_requests_total", method="GET", status="5xx") == 1
    assert value(samples, "waitress_like_responses_total", code="200") == 3
    assert value(samples, "waitress_like_responses_total", code="404") == 1
    assert value(samples, "waitress_like_responses_total", code="500") == 1
    assert value(samples, "waitress_like_request_duration_seconds_count") == 5
    assert value(samples, "waitress_like_request_duration_seconds_bucket", le="+Inf") == 5
    assert value(samples, "waitress_like_received_bytes_total") == sent
    assert value(samples, "waitress_like_sent_bytes_total") == received
    assert value(samples, "waitress_like_connections_accepted_total") == 5
    assert value(samples, "waitress_like_log_messages_total", level="exception") == 1  # /boom
    assert value(samples, "waitress_like_workers") == 1
    assert value(samples, "waitress_like_worker_restarts_total", reason="exited") == 0


def test_every_metric_of_the_table_is_exposed_and_scrapes_are_not_counted(
    start_server: Any, app: RoutingApp
) -> None:
    server = start_server(app, metrics_listen="127.0.0.1:0")
    get(server.address, "/")
    scrape_until(server, requests_counted(1))
    families = {family.name: family for family in text_string_to_metric_families(scrape_text(server))}
    for spec in METRICS:
        family_name = spec.name[: -len("_total")] if spec.name.endswith("_total") else spec.name
        assert families[family_name].type == spec.kind
        assert families[family_name].documentation == spec.help
    for _ in range(3):
        samples = scrape(server)
    assert value(samples, "waitress_like_requests_total", method="GET", status="2xx") == 1
    assert value(samples, "waitress_like_connections_accepted_total") == 1


def test_the_metrics_listener_is_not_the_applications(start_server: Any, app: RoutingApp) -> None:
    server = start_server(app, metrics_listen="127.0.0.1:0")
    metrics_address = server.server.metrics.endpoint_addresses[0][:2]
    assert metrics_address != server.address
    _, answer = get(server.address, "/metrics")
    assert answer.endswith(b"app:/metrics")  # the application's own /metrics
    assert request(metrics_address, b"GET / HTTP/1.1\r\nHost: m\r\n\r\n").status == 404
    assert (
        request(metrics_address, b"POST /metrics HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n").status
        == 405
    )


def test_gauges_while_requests_are_inside_the_application(start_server: Any, app: RoutingApp) -> None:
    server = start_server(app, metrics_listen="127.0.0.1:0", threads=3)
    held = []
    try:
        for _ in range(2):
            connection = Connection(server.address)
            connection.send(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
            held.append(connection)
            assert app.blocking.running.acquire(timeout=10)
        idle = Connection(server.address)
        held.append(idle)
        idle.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert idle.read_response().status == 200  # now idle, kept alive
        partial = Connection(server.address)
        held.append(partial)
        partial.send(b"GET / HTTP/1.1\r\nHo")  # a head on its way
        held.append(Connection(server.address))  # connected, nothing sent yet
        samples = scrape(server)
        assert value(samples, "waitress_like_connections", state="in_service") == 2
        assert value(samples, "waitress_like_connections", state="idle") == 1
        assert value(samples, "waitress_like_connections", state="reading") == 2
        assert value(samples, "waitress_like_connections", state="websocket") == 0
        assert value(samples, "waitress_like_requests_in_service") == 2
        assert value(samples, "waitress_like_threads") == 3
        assert value(samples, "waitress_like_threads_busy") == 2
        assert value(samples, "waitress_like_requests_queued") == 0
        for _ in range(2):  # the last worker, then one request more than the workers
            connection = Connection(server.address)
            connection.send(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
            held.append(connection)
        assert app.blocking.running.acquire(timeout=10)
        # Nothing the client sees says when the loop has queued it: look until it has.
        samples = scrape_until(server, lambda s: value(s, "waitress_like_requests_queued") == 1)
        assert value(samples, "waitress_like_requests_queued") == 1
        assert value(samples, "waitress_like_requests_in_service") == 4
        assert value(samples, "waitress_like_threads_busy") == 3
    finally:
        app.blocking.release.set()
        for connection in held:
            connection.close()


def test_refusals_by_reason(start_server: Any, app: RoutingApp) -> None:
    server = start_server(
        app, metrics_listen="127.0.0.1:0", max_request_body_size=10, max_request_header_size=2048
    )
    assert request(server.address, b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n").status == 400
    too_big = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n" + b"x" * 11
    assert request(server.address, too_big).status == 413
    long_head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Long: " + b"a" * 4096 + b"\r\n\r\n"
    assert request(server.address, long_head).status == 431
    samples = scrape(server)
    assert value(samples, "waitress_like_requests_rejected_total", status="400", reason="bad_request") == 1
    assert value(samples, "waitress_like_requests_rejected_total", status="413", reason="body_too_large") == 1
    assert (
        value(samples, "waitress_like_requests_rejected_total", status="431", reason="headers_too_large") == 1
    )
    assert value(samples, "waitress_like_requests_rejected_total", status="503", reason="overload") == 0
    assert ("waitress_like_requests_total", (("method", "GET"), ("status", "4xx"))) not in samples


def test_overload_and_the_per_address_cap(start_server: Any, app: RoutingApp) -> None:
    server = start_server(
        app, metrics_listen="127.0.0.1:0", threads=1, concurrency_limit=1, connection_limit_per_address=2
    )
    with Connection(server.address) as holder:
        holder.send(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
        assert app.blocking.running.acquire(timeout=10)
        with Connection(server.address) as second:
            second.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert second.read_response().status == 503  # concurrency_limit
            over_cap = request(server.address, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert over_cap.status == 503  # a third connection from this address
        app.blocking.release.set()
        assert holder.read_response().status == 200
    samples = scrape(server)
    assert value(samples, "waitress_like_requests_rejected_total", status="503", reason="overload") == 1
    assert value(samples, "waitress_like_requests_rejected_total", status="503", reason="address_limit") == 1


def test_slow_clients_cut_by_deadline(start_server: Any, app: RoutingApp) -> None:
    server = start_server(
        app, metrics_listen="127.0.0.1:0", request_head_timeout=0.3, request_body_timeout=0.3
    )
    with Connection(server.address) as slow_head:
        slow_head.send(b"GET / HTTP/1.1\r\nHost")
        assert slow_head.read_response().status == 408
    with Connection(server.address) as slow_body:
        slow_body.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
        assert slow_body.read_response().status == 408
    samples = scrape(server)
    assert value(samples, "waitress_like_slow_clients_cut_total", deadline="head") == 1
    assert value(samples, "waitress_like_slow_clients_cut_total", deadline="body") == 1
    assert value(samples, "waitress_like_slow_clients_cut_total", deadline="send") == 0
    assert value(samples, "waitress_like_requests_rejected_total", status="408", reason="timeout") == 2


def test_a_connection_evicted_at_the_limit(start_server: Any, app: RoutingApp) -> None:
    server = start_server(app, metrics_listen="127.0.0.1:0", connection_limit=1)
    with Connection(server.address) as idle:
        idle.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert idle.read_response().status == 200
        _, answer = get(server.address, "/")  # takes the idle one's place
        assert answer.startswith(b"HTTP/1.1 200")
        assert idle.is_closed_by_peer()
    assert value(scrape(server), "waitress_like_connections_evicted_total") == 1


def test_a_server_without_metrics_records_nothing_and_opens_nothing(
    start_server: Any, app: RoutingApp
) -> None:
    server = start_server(app)
    assert server.server.metrics is NO_METRICS
    assert get(server.address, "/")[1].startswith(b"HTTP/1.1 200")


def test_the_metrics_port_closes_with_the_server(start_server: Any, app: RoutingApp) -> None:
    server = start_server(app, metrics_listen="127.0.0.1:0")
    address = server.server.metrics.endpoint_addresses[0][:2]
    scrape(server)
    server.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()


def test_an_address_in_use_is_reported_and_nothing_is_left_open(app: RoutingApp) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BindError, match=str(port)):
            create_server(app, listen="127.0.0.1:0", metrics_listen=f"127.0.0.1:{port}")


def test_a_scrape_waits_for_no_busy_worker_of_the_application(start_server: Any, app: RoutingApp) -> None:
    server = start_server(app, metrics_listen="127.0.0.1:0", threads=1)
    with Connection(server.address) as holder:
        holder.send(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
        assert app.blocking.running.acquire(timeout=10)
        done = threading.Event()
        results: list[Samples] = []
        scraper = threading.Thread(target=lambda: (results.append(scrape(server)), done.set()))
        scraper.start()
        try:
            assert done.wait(10), "the scrape waited for the application's only worker"
        finally:
            app.blocking.release.set()
            scraper.join(10)
        assert value(results[0], "waitress_like_threads_busy") == 1
