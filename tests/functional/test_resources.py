"""Bounded resources: back-pressure on slow readers, and many open connections."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import selectors
import socket
import threading
from typing import Iterator

import pytest

from tests.conftest import OVER_TLS_TOO
from tests.httpclient import Connection
from tests.processes import ServerProcess, python_snippet

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
CHUNK = b"z" * 65536
TOTAL_CHUNKS = 1024  # 64 MiB


@OVER_TLS_TOO
def test_worker_waits_when_a_client_does_not_read(start_server):
    produced = {"bytes": 0}
    progressed = threading.Condition()
    watermark = 1024 * 1024
    # Loopback socket buffers can hold several MiB, so the bound allows for them too.
    bound = watermark + 16 * 1024 * 1024

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(CHUNK) * TOTAL_CHUNKS))])

        def body():
            for _ in range(TOTAL_CHUNKS):
                yield CHUNK
                with progressed:
                    produced["bytes"] += len(CHUNK)
                    progressed.notify_all()

        return body()

    server = start_server(app, outbuf_overflow=256 * 1024, outbuf_high_watermark=watermark)
    with Connection(server.address) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        conn.send(GET)
        with progressed:
            # Negative check: the producer must not get past the bound while we don't read.
            overran = progressed.wait_for(lambda: produced["bytes"] > bound, timeout=2)
        assert not overran, f"produced {produced['bytes']} bytes for a client that reads nothing"
        assert produced["bytes"] < len(CHUNK) * TOTAL_CHUNKS
        response = conn.read_response()
        assert len(response.body) == len(CHUNK) * TOTAL_CHUNKS
        assert response.body == CHUNK * TOTAL_CHUNKS


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@contextlib.contextmanager
def closing_all() -> Iterator[list[socket.socket]]:
    """A list for client sockets, all closed on the way out, whatever happened."""
    sockets: list[socket.socket] = []
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


SERVER_CODE = """
import resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 12000), hard))
from waitress_like import serve
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
serve(app, listen="127.0.0.1:0", connection_limit=10100, backlog=2048, threads=4)
"""


def test_holds_ten_thousand_connections():
    """No select() ceiling: epoll/kqueue hold 10,000 clients at once and serve them all."""
    if selectors.DefaultSelector is selectors.SelectSelector:
        pytest.skip("select() is limited to FD_SETSIZE descriptors by design")
    count = 10_000
    _raise_fd_limit(count + 500)
    with ServerProcess(python_snippet(SERVER_CODE)) as server, closing_all() as clients:
        address = server.wait_serving()
        for _ in range(count):
            clients.append(socket.create_connection(address))
        # Each client is served while all the others stay open.
        for sock in clients:
            sock.sendall(GET)
        for sock in clients:
            sock.settimeout(20)
            data = b""
            while not data.endswith(b"ok"):
                piece = sock.recv(4096)
                assert piece, "the server closed a connection it should hold"
                data += piece
            assert data.startswith(b"HTTP/1.1 200 OK")
        assert server.process.poll() is None


EMFILE_SERVER_CODE = """
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, (48, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from waitress_like import serve
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
serve(app, listen="127.0.0.1:0", connection_limit=1000, threads=2)
"""


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_running_out_of_descriptors_backs_off_instead_of_spinning():
    with ServerProcess(python_snippet(EMFILE_SERVER_CODE)) as server, closing_all() as clients:
        address = server.wait_serving()
        # More clients than the server has descriptors: accept() fails with EMFILE.
        for _ in range(80):
            clients.append(socket.create_connection(address))
        server.wait_line(re.compile("pausing new connections"))
        cpu_before = _cpu_seconds(server.process.pid)
        threading.Event().wait(1.0)  # a measurement window, not a wait for an event
        assert _cpu_seconds(server.process.pid) - cpu_before < 0.5, "the server spins on accept()"
        for sock in clients:
            sock.close()
        clients.clear()
        # Once descriptors are free again, new clients are served.
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(GET)
            data = b""
            while not data.endswith(b"ok"):
                piece = sock.recv(4096)
                assert piece
                data += piece
        assert data.startswith(b"HTTP/1.1 200 OK")


def test_writes_larger_than_the_watermark_do_not_hang(start_server):
    """Each write alone is above outbuf_high_watermark: the producer must still wake up
    after every drain (a lost wake-up here hangs the worker)."""
    chunk = b"y" * 65536

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(chunk) * 200))])
        return (chunk for _ in range(200))

    server = start_server(app, outbuf_overflow=32768, outbuf_high_watermark=32768)
    with Connection(server.address) as conn:
        # 12.5 MiB is more than the socket buffers hold, so the producer waits many times.
        for _ in range(3):
            conn.send(GET)
            assert conn.read_response().body == chunk * 200
