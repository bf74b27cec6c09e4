"""Hostile clients of a TLS listener: handshakes that never finish, floods of them, garbage
instead of a ClientHello, corrupted records. The server keeps serving others, and the
fixture checks afterwards that no descriptor or thread was left behind."""

from __future__ import annotations

import gc
import socket
import ssl
import struct
import threading
from typing import Any, Iterator

import pytest

from tests.apps import hello
from tests.httpclient import Connection, request

from .bioclient import Client

pytestmark = pytest.mark.parametrize("scheme", ["https"])

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _client_hello() -> bytes:
    """The first flight of a real TLS client, without sending it anywhere."""
    context = ssl.create_default_context()
    connection = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="localhost")
    try:
        connection.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def _until_closed(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes; fails if it does not within ``timeout``."""
    sock.settimeout(timeout)
    received = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not piece:
            return received
        received += piece


def _open_channels(server: Any) -> int:
    """How many connections the server holds, counted on its loop thread."""
    counted: dict[str, int] = {}
    done = threading.Event()

    def count() -> None:
        counted["channels"] = len(server.server.channels)
        done.set()

    server.server.loop.call_soon_threadsafe(count)
    assert done.wait(5)
    return counted["channels"]


def _wait_for_channels(server: Any, count: int) -> None:
    for _ in range(100):
        if _open_channels(server) == count:
            return
        threading.Event().wait(0.05)  # the loop notices sockets as it accepts and reads them
    raise AssertionError(f"{_open_channels(server)} connections open, not {count}")


def _wait_for_no_channels(server: Any) -> None:
    _wait_for_channels(server, 0)


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def _connect(server: Any, clients: list[socket.socket]) -> socket.socket:
    sock = socket.create_connection(tuple(server.address), timeout=10)
    clients.append(sock)
    return sock


def test_handshakes_that_never_finish_are_cut_while_others_are_served(start_server, clients):
    server = start_server(hello, request_head_timeout=1)
    client_hello = _client_hello()
    for index in range(30):
        sock = _connect(server, clients)
        if index % 3 == 1:
            sock.sendall(client_hello[:20])  # half a ClientHello
        elif index % 3 == 2:
            sock.sendall(client_hello)  # a whole one, then never the client's Finished
    assert request(server.address, GET).body == b"hello"
    for sock in clients:
        received = _until_closed(sock)
        assert b"HTTP/" not in received  # no 408 in plain text inside a TLS connection
    _wait_for_no_channels(server)


def test_a_flood_of_stalled_handshakes_at_the_connection_limit_does_not_lock_clients_out(
    start_server, clients
):
    server = start_server(hello, connection_limit=8, request_head_timeout=30)
    client_hello = _client_hello()
    for _ in range(24):
        _connect(server, clients).sendall(client_hello[:50])
    # Stalled handshakes give up their slots to newcomers, as slowloris connections do.
    assert request(server.address, GET).body == b"hello"


@pytest.mark.parametrize(
    "garbage",
    [b"\x00" + bytes(range(255)), b"\x16\x03\x01\xff\xff" + b"\x00" * 100, b"SSH-2.0-OpenSSH_9.6\r\n"],
    ids=["binary", "oversized-record", "ssh"],
)
def test_garbage_instead_of_a_client_hello_is_closed_long_before_the_head_deadline(
    start_server, clients, garbage
):
    server = start_server(hello, request_head_timeout=30)
    sock = _connect(server, clients)
    sock.sendall(garbage)
    received = _until_closed(sock, timeout=10)  # 10 s bounds it; the head deadline is 30 s
    assert not received.startswith(b"HTTP/1.1")
    assert request(server.address, GET).body == b"hello"


def test_a_corrupted_record_closes_only_its_own_connection(start_server, https_certificates, clients):
    server = start_server(hello)
    sock = _connect(server, clients)
    client = Client(sock, https_certificates.client_context())
    while not client.handshake():
        client.receive()
    client.tls.write(GET)
    record = bytearray(client.outgoing.read())
    record[-1] ^= 0x01  # the authentication tag no longer matches
    sock.sendall(record)
    _until_closed(sock)
    assert request(server.address, GET).body == b"hello"


def test_a_handshake_flood_with_resets_leaves_nothing_behind(start_server):
    server = start_server(hello)
    client_hello = _client_hello()
    for _ in range(300):
        sock = socket.create_connection(tuple(server.address), timeout=10)
        sock.sendall(client_hello)
        # SO_LINGER 0: close() sends a reset, whether or not the server has answered yet.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert request(server.address, GET).body == b"hello"
    _wait_for_no_channels(server)


def test_closed_connections_free_their_tls_sessions_at_once(start_server):
    # Their deadline timers are still in the loop's heap (30 s away): they must not hold them.
    server = start_server(hello, threads=1, request_head_timeout=30, keepalive_timeout=30)
    for _ in range(20):
        with Connection(server.address) as conn:
            conn.send(GET)
            assert conn.read_response().body == b"hello"
    _wait_for_no_channels(server)
    gc.collect()
    alive = [thing for thing in gc.get_objects() if isinstance(thing, ssl.SSLObject) and thing.server_side]
    # The one worker may still hold its last request (and so that connection) until its next.
    assert len(alive) <= 1


def test_over_the_per_address_cap_a_tls_client_is_closed_without_plain_text(start_server, clients):
    server = start_server(hello, connection_limit_per_address=2)
    for _ in range(2):
        _connect(server, clients)
    _wait_for_channels(server, 2)
    over = _connect(server, clients)
    assert _until_closed(over) == b""  # no "HTTP/1.1 503" a TLS client would choke on
