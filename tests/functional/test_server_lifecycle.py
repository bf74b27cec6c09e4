"""The server as a whole: limits, idle sweeping, closing, the public API."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest

import waitress_like
from tests.apps import BlockingApp, hello
from tests.httpclient import Connection, request

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_create_server_reports_bound_port(start_server):
    server = start_server(hello)
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    assert server.server.effective_port == port
    assert server.server.effective_host == "127.0.0.1"


def test_several_listeners(start_server):
    server = start_server(hello, listen="127.0.0.1:0 127.0.0.2:0")
    addresses = server.server.addresses
    assert [a[0] for a in addresses] == ["127.0.0.1", "127.0.0.2"]
    for address in addresses:
        assert request(address, GET).body == b"hello"


def test_at_the_connection_limit_a_newcomer_replaces_the_longest_idle_connection(start_server):
    server = start_server(hello, connection_limit=2)
    first = Connection(server.address)
    second = Connection(server.address)
    try:
        for conn in (first, second):
            conn.send(GET)
            assert conn.read_response().status == 200
        # Both are idle keep-alive connections: a third client is served at once, in the
        # place of the one idle the longest.
        with Connection(server.address) as third:
            third.send(GET)
            assert third.read_response().status == 200
        assert first.read_all() == b""
        second.send(GET)
        assert second.read_response().status == 200
    finally:
        first.close()
        second.close()


def test_at_the_connection_limit_with_every_connection_served_newcomers_wait(start_server):
    app = BlockingApp()
    server = start_server(app, connection_limit=2)
    busy = [Connection(server.address) for _ in range(2)]
    try:
        for conn in busy:
            conn.send(GET)
        for _ in busy:
            assert app.running.acquire(timeout=10)
        # A third client connects (the kernel backlog holds it) but is not served yet:
        # nobody can make room.
        third = Connection(server.address, timeout=0.5)
        third.send(GET)
        with pytest.raises(socket.timeout):
            third.read_response()
        app.release.set()
        third.sock.settimeout(10)
        assert third.read_response().status == 200
        third.close()
        for conn in busy:
            assert conn.read_response().status == 200
    finally:
        app.release.set()
        for conn in busy:
            conn.close()


def test_connections_over_the_per_address_cap_are_answered_503(start_server):
    server = start_server(hello, connection_limit_per_address=2)
    held = [Connection(server.address) for _ in range(2)]
    try:
        for conn in held:
            conn.send(GET)
            assert conn.read_response().status == 200
        with Connection(server.address) as third:
            response = third.read_response()
            assert response.status == 503
            assert response.closes
    finally:
        for conn in held:
            conn.close()


def test_idle_channels_are_closed_after_channel_timeout(start_server):
    server = start_server(hello, channel_timeout=1, cleanup_interval=1)
    with Connection(server.address) as conn:
        conn.send(GET)
        conn.read_response()
        conn.sock.settimeout(10)
        assert conn.read_all() == b""  # closed by the sweep, not by us


def test_request_in_service_is_not_cut_by_the_sweep(start_server):
    release = threading.Event()
    started = threading.Event()

    def slow(environ, start_response):
        started.set()
        release.wait(10)
        start_response("200 OK", [])
        return [b"done"]

    server = start_server(slow, channel_timeout=1, cleanup_interval=1)
    with Connection(server.address) as conn:
        conn.send(GET)
        assert started.wait(5)
        # Let the sweep run at least twice while the request is in service.
        swept = threading.Event()
        server.server.loop.call_soon_threadsafe(lambda: server.server.loop.call_later(2.5, swept.set))
        assert swept.wait(10)
        release.set()
        assert conn.read_response().body == b"done"


def test_close_while_clients_are_connected_leaves_nothing(start_server):
    server = start_server(hello)
    clients = [Connection(server.address) for _ in range(5)]
    for conn in clients[:3]:
        conn.send(GET)
        conn.read_response()
    server.close()
    for conn in clients:
        conn.sock.settimeout(10)
        assert conn.read_all() == b""
        conn.close()
    # The fixture then checks that no thread or descriptor is left behind.


def test_serve_logs_its_address_and_stops_on_ctrl_c():
    code = (
        "from waitress_like import serve\n"
        "from tests.apps import hello\n"
        "serve(hello, host='127.0.0.1', port=0, threads=2)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        line = process.stderr.readline()
        match = re.search(r"Serving on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert request(("127.0.0.1", int(match.group(1))), GET).body == b"hello"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        process.kill()
        process.wait()
        process.stderr.close()


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"threads": "many"}, "threads"),
        ({"no_such_thing": 1}, "no_such_thing"),
        ({"listen": "*:80", "port": 81}, "listen"),
    ],
)
def test_bad_settings_name_the_setting(settings, name):
    with pytest.raises(waitress_like.ConfigError) as caught:
        waitress_like.create_server(hello, **settings)
    assert name in str(caught.value)
