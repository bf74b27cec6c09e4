"""Production controls: graceful shutdown, keep-alive limits, overload, header controls."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import socket
import threading
import time

import pytest

from tests.apps import BlockingApp, hello
from tests.httpclient import Connection, request
from tests.processes import ServerProcess, python_snippet

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"

SLOW_SERVER = """
import sys, time, threading
from waitress_like import serve
lock = threading.Lock()
def app(environ, start_response):
    with lock:
        sys.stderr.write("started\\n"); sys.stderr.flush()
    time.sleep(float(environ.get("HTTP_X_SECONDS", "1")))   # the slow application
    start_response("200 OK", [("Content-Length", "4")])
    return [b"done"]
serve(app, listen="127.0.0.1:0", threads=50, graceful_timeout=GRACE)
"""


STARTED = re.compile("^started$")
SHUTTING_DOWN = re.compile("Shutting down")


def _slow_server(grace: float) -> ServerProcess:
    return ServerProcess(python_snippet(SLOW_SERVER.replace("GRACE", str(grace))))


def test_sigterm_drains_fifty_slow_requests():
    clients = []
    with _slow_server(grace=20) as server, contextlib.ExitStack() as open_connections:
        address = server.wait_serving()
        process = server.process
        for _ in range(50):
            conn = open_connections.enter_context(Connection(address, timeout=20))
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Seconds: 2\r\n\r\n")
            clients.append(conn)
        for _ in range(50):
            server.wait_line(STARTED)
        signalled_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        server.wait_line(SHUTTING_DOWN)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=5).close()
        for conn in clients:
            response = conn.read_response()
            assert response.status == 200 and response.body == b"done"
            assert response.closes
        assert process.wait(20) == 0
        assert time.monotonic() - signalled_at < 20


def test_second_signal_stops_at_once():
    with _slow_server(grace=60) as server:
        address = server.wait_serving()
        with Connection(address, timeout=20) as conn:
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Seconds: 30\r\n\r\n")
            server.wait_line(STARTED)
            server.process.send_signal(signal.SIGTERM)
            server.wait_line(SHUTTING_DOWN)
            stopped_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(10) is not None
            assert time.monotonic() - stopped_at < 10
            assert conn.read_all() == b""  # cut, not answered


SIGNAL_FROM_A_WORKER = """
import signal, threading
from waitress_like import serve
def app(environ, start_response):
    # The signal hits this worker thread, not the main thread that runs the loop; then
    # the app holds on, so no output wakes the loop either.
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
    threading.Event().wait(60)
serve(app, listen="127.0.0.1:0", cleanup_interval=600, request_head_timeout=600,
      request_min_rate=0, graceful_timeout=0.5)
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")
def test_a_signal_delivered_to_a_worker_thread_wakes_the_loop():
    # The loop sleeps in select() with no timer due for ten minutes: only the signal's
    # wakeup byte can wake it to run the handler.
    with ServerProcess(python_snippet(SIGNAL_FROM_A_WORKER)) as server:
        address = server.wait_serving()
        with Connection(address, timeout=20) as conn:
            conn.send(GET)
            server.wait_line(SHUTTING_DOWN, timeout=15)
            assert conn.read_all() == b""  # the grace period ran out: cut
        assert server.process.wait(20) is not None


def test_close_with_grace_finishes_requests_in_flight(start_server):
    started = threading.Semaphore(0)
    release = threading.Event()

    def slow(environ, start_response):
        started.release()
        release.wait(10)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]

    server = start_server(slow)
    idle = Connection(server.address)
    idle.send(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")  # answered below, after release
    busy = Connection(server.address)
    try:
        assert started.acquire(timeout=5)
        busy.send(GET)
        # Both requests are in the application before the drain begins.
        assert started.acquire(timeout=5)
        closer = threading.Thread(target=server.server.close, kwargs={"timeout": 10})
        closer.start()
        release.set()
        assert idle.read_response().status == 200
        assert busy.read_response().status == 200
        # Whether or not the heads were built before the drain began, both connections
        # close after their response.
        assert idle.read_all() == b"" and busy.read_all() == b""
        closer.join(15)
        assert not closer.is_alive()
        assert server.server.drained_cleanly
    finally:
        idle.close()
        busy.close()


def test_grace_period_over_cuts_what_is_left(start_server):
    started = threading.Event()
    release = threading.Event()

    def stuck(environ, start_response):
        started.set()
        release.wait(20)
        start_response("200 OK", [])
        return [b""]

    server = start_server(stuck)
    try:
        with Connection(server.address) as conn:
            conn.send(GET)
            assert started.wait(5)
            begun = time.monotonic()
            server.server.close(timeout=0.5)
            assert time.monotonic() - begun < 5
            assert not server.server.drained_cleanly
            assert conn.read_all() == b""
    finally:
        release.set()


def test_keepalive_timeout_closes_idle_connections(start_server):
    server = start_server(hello, keepalive_timeout=0.5, channel_timeout=120)
    with Connection(server.address) as conn:
        conn.send(GET)
        assert conn.read_response().status == 200
        begun = time.monotonic()
        assert conn.read_all() == b""
        assert time.monotonic() - begun < 5


def test_max_requests_per_connection(start_server):
    server = start_server(hello, max_requests_per_connection=3)
    with Connection(server.address) as conn:
        for index in range(3):
            conn.send(GET)
            response = conn.read_response()
            assert response.closes == (index == 2)
        assert conn.read_all() == b""


def test_max_connection_age(start_server):
    server = start_server(hello, max_connection_age=0.3)
    with Connection(server.address) as conn:
        conn.send(GET)
        assert not conn.read_response().closes
        # Once the age is past, the idle connection is closed without a request...
        assert conn.read_all() == b""
    with Connection(server.address) as conn:
        conn.send(GET)
        conn.read_response()
        threading.Event().wait(0.4)  # let the connection age past its limit
        conn.send(GET)  # ...or, if a request comes first, its response says close.
        data = conn.read_all()
        assert data == b"" or b"Connection: close" in data


def test_concurrency_limit_answers_503_at_once(start_server):
    started = threading.Event()
    release = threading.Event()

    def slow(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            started.set()
            release.wait(10)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = start_server(slow, threads=1, concurrency_limit=1, retry_after=7)
    with Connection(server.address) as blocked:
        blocked.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert started.wait(5)
        with Connection(server.address) as refused:
            refused.send(GET)
            response = refused.read_response()
            assert response.status == 503
            assert response.header("Retry-After") == "7"
            assert not response.closes
            release.set()
            assert blocked.read_response().status == 200
            refused.send(GET)  # the same connection is served once there is room
            assert refused.read_response().status == 200


class _LogFlag(logging.Handler):
    """Sets ``seen`` when a record containing ``text`` is logged (from any thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


def test_task_queue_warning_is_rate_limited(start_server, caplog):
    app = BlockingApp()
    release = app.release
    server = start_server(app, threads=1)
    handler = _LogFlag("Task queue depth")
    logging.getLogger("waitress_like").addHandler(handler)
    clients = [Connection(server.address) for _ in range(6)]
    try:
        for conn in clients:
            conn.send(GET)
        # Release only once requests queue behind the one the single worker holds.
        assert handler.seen.wait(10)
        release.set()
        for conn in clients:
            assert conn.read_response().status == 200
    finally:
        logging.getLogger("waitress_like").removeHandler(handler)
        for conn in clients:
            conn.close()
    warnings = [r for r in caplog.records if "Task queue depth" in r.getMessage()]
    assert len(warnings) == 1


def test_header_controls(start_server):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2"), ("X-Frame-Options", "SAMEORIGIN")])
        return [b"ok"]

    server = start_server(
        app,
        server_header=False,
        date_header=False,
        default_headers="X-Frame-Options: DENY\nX-Content-Type-Options: nosniff",
    )
    response = request(server.address, GET)
    assert response.header("Server") is None
    assert response.header("Date") is None
    assert response.header_list("X-Frame-Options") == ["SAMEORIGIN"]  # the app's wins
    assert response.header("X-Content-Type-Options") == "nosniff"


def test_pool_grows_under_queued_load_and_shrinks_back(start_server):
    blocking = BlockingApp()
    running, release = blocking.running, blocking.release
    server = start_server(blocking, threads=2, max_threads=6, thread_idle_timeout=0.5)
    pool = server.server.pool
    clients = [Connection(server.address) for _ in range(6)]
    try:
        # Each request arrives while all earlier ones still run: from the third on, it
        # finds no idle worker and the pool grows for it. (A burst that arrives before any
        # worker wakes may grow a little later, on the next request: the idle count
        # is a hint read without a lock.)
        for conn in clients:
            conn.send(GET)
            assert running.acquire(timeout=10)
        assert pool.thread_count == 6
        extra = [t for t in threading.enumerate() if t.name.endswith("-extra")]
        assert len(extra) == 4
        release.set()
        for conn in clients:
            assert conn.read_response().status == 200
    finally:
        release.set()
        for conn in clients:
            conn.close()
    # The extra workers retire after thread_idle_timeout; the permanent two stay.
    for thread in extra:
        thread.join(10)
        assert not thread.is_alive()
    assert pool.thread_count == 2


def test_fixed_pool_does_not_grow(start_server):
    blocking = BlockingApp()
    running, release = blocking.running, blocking.release
    server = start_server(blocking, threads=2)
    clients = [Connection(server.address) for _ in range(4)]
    try:
        for conn in clients:
            conn.send(GET)
        assert running.acquire(timeout=10) and running.acquire(timeout=10)
        assert not running.acquire(timeout=0.5)  # negative check: no third worker
        assert server.server.pool.thread_count == 2
    finally:
        release.set()
        for conn in clients:
            assert conn.read_response().status == 200
            conn.close()


def test_application_date_and_server_headers_win(start_server):
    def app(environ, start_response):
        start_response(
            "200 OK",
            [("Content-Length", "2"), ("Server", "my-app"), ("Date", "Thu, 01 Jan 1970 00:00:00 GMT")],
        )
        return [b"ok"]

    server = start_server(app)
    response = request(server.address, GET)
    assert response.header_list("Server") == ["my-app"]
    assert response.header_list("Date") == ["Thu, 01 Jan 1970 00:00:00 GMT"]
