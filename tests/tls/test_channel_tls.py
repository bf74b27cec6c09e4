"""One TLS channel on a fake loop and a fake clock: the handshake, its deadline, plain HTTP
on the TLS port, a PROXY header before the handshake, and how the connection ends.

The client is driven by hand (:mod:`tests.tls.bioclient`), so each test says exactly which
flight of the handshake is sent, and when the clock moves.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any, Callable

import pytest

from tests.apps import EchoApp, hello
from tests.channelharness import ChannelHarness
from waitress_like.channel import ChannelState
from waitress_like.config import Settings
from waitress_like.tls import build_server_tls
from waitress_like.tlsinfo import PLAINTEXT_HTTP_DETAIL

from .bioclient import Client
from .conftest import CertificateFiles

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def _harness(files: CertificateFiles, app: Callable[..., Any] = hello, **settings: Any) -> ChannelHarness:
    server_tls = build_server_tls(Settings(certfile=files.cert, keyfile=files.key))
    return ChannelHarness(app, tls=server_tls, **settings)


@pytest.fixture
def make(files: CertificateFiles):
    made: list[ChannelHarness] = []

    def make(app: Callable[..., Any] = hello, **settings: Any) -> tuple[ChannelHarness, Client]:
        harness = _harness(files, app, **settings)
        made.append(harness)
        return harness, Client(harness.client, files.client_context())

    yield make
    for harness in made:
        harness.close()


def _handshake(harness: ChannelHarness, client: Client) -> None:
    assert not client.handshake()  # ClientHello
    harness.pump()  # ServerHello .. server Finished
    client.receive()
    assert client.handshake()  # client Finished
    harness.pump()
    assert harness.channel.transport is not harness.channel.socket


def _read(harness: ChannelHarness, client: Client, until: Callable[[bytes], bool]) -> bytes:
    """Run the loop and read what decrypts until ``until(received)`` (bounded)."""
    received = b""
    for _ in range(2000):
        harness.settle()
        if client.readable():
            client.receive()
            try:
                received += client.read_available()
            except ssl.SSLEOFError:  # closed without close_notify
                return received
            if until(received) or client.closed_cleanly:
                return received
    raise AssertionError(f"not received: {received[:200]!r}")


def _complete_response(data: bytes) -> bool:
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def test_a_request_over_tls_is_served_with_the_connections_tls_facts(make: Any):
    app = EchoApp()
    harness, client = make(app)
    _handshake(harness, client)
    client.send(b"GET /path HTTP/1.1\r\nHost: x\r\n\r\n")
    harness.pump()
    request = harness.submitted[0][0]
    assert request.tls is not None and request.tls.protocol == "TLSv1.3"
    harness.serve_next()
    response = _read(harness, client, _complete_response)
    seen = json.loads(response.partition(b"\r\n\r\n")[2])
    assert seen["wsgi.url_scheme"] == "https" and seen["HTTPS"] == "on"
    assert seen["SSL_PROTOCOL"] == "TLSv1.3" and seen["SSL_CLIENT_VERIFY"] == "NONE"
    assert "SSL_CLIENT_CERT" not in seen
    assert harness.state is ChannelState.OPEN


def test_a_request_sent_with_the_clients_finished_is_read_at_once(make: Any):
    harness, client = make()
    assert not client.handshake()
    harness.pump()
    client.receive()
    client.tls.do_handshake()
    client.tls.write(GET)
    client.flush()  # Finished and the request in one write: nothing more will come
    harness.pump()
    assert len(harness.submitted) == 1
    harness.serve_next()
    assert _read(harness, client, _complete_response).endswith(b"\r\n\r\nhello")


def test_keep_alive_and_pipelining_over_tls(make: Any):
    harness, client = make()
    _handshake(harness, client)
    client.send(GET * 3)
    received = b""
    for _ in range(3):
        harness.pump()
        harness.serve_next()
        received += _read(harness, client, lambda data: data.endswith(b"hello"))
    assert received.count(b"HTTP/1.1 200 OK") == 3


def test_a_client_that_sends_nothing_is_closed_at_the_head_deadline_without_a_response(make: Any):
    harness, client = make(request_head_timeout=5)
    assert harness.deadline_timer() == harness.loop.now + 5
    harness.loop.advance(4.9)
    assert harness.state is ChannelState.OPEN
    harness.loop.advance(0.1)
    assert harness.state is ChannelState.CLOSED
    assert harness.received() == b"<EOF>"  # no 408: there is no TLS session to answer in


def test_a_handshake_that_stalls_midway_is_closed_at_the_deadline_from_accept(make: Any):
    harness, client = make(request_head_timeout=5)
    harness.loop.advance(2)
    client.handshake()  # ClientHello, then nothing more
    harness.pump()
    assert harness.state is ChannelState.OPEN
    harness.loop.advance(2.9)  # the handshake's bytes did not move the deadline
    assert harness.state is ChannelState.OPEN
    harness.loop.advance(0.1)
    assert harness.state is ChannelState.CLOSED
    received = harness.received()
    assert received.endswith(b"<EOF>") and b"HTTP/" not in received
    assert received[:1] == b"\x16"  # only the server's handshake flight was sent


def test_the_min_rate_grace_bounds_a_handshake_too(make: Any):
    harness, _ = make(request_head_timeout=60, request_min_rate=500, request_min_rate_grace=3)
    harness.loop.advance(3)
    assert harness.state is ChannelState.CLOSED


def test_plain_http_on_the_tls_port_is_answered_400_in_plain_text(make: Any):
    harness, _ = make()
    harness.send(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n")
    received = harness.received()
    assert received.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert PLAINTEXT_HTTP_DETAIL.encode() in received and b"Connection: close\r\n" in received
    assert harness.submitted == []
    assert harness.state is ChannelState.LINGERING  # then closed, as after any 400


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02\x03" * 64,
        b"\x16\x03\x01\x00\x20" + b"\xff" * 32,
        b"\x80\x2e\x01\x03\x01" + b"\x00" * 60,
    ],
    ids=["binary", "bad-record", "sslv2-hello"],
)
def test_garbage_instead_of_a_client_hello_is_closed_at_once(make: Any, garbage: bytes):
    harness, _ = make()
    harness.send(garbage)
    assert harness.state is ChannelState.CLOSED
    received = harness.received()
    assert b"HTTP/" not in received and received.endswith(b"<EOF>")
    assert harness.submitted == []


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "header-first"])
def test_a_proxy_protocol_header_comes_before_the_handshake(make: Any, split: bool):
    harness, client = make(trusted_proxy="192.0.2.10", proxy_protocol="v1")
    header = b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 443\r\n"
    try:
        client.tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello_bytes = client.outgoing.read()
    if split:
        harness.send(header)
        assert harness.state is ChannelState.OPEN
        harness.send(hello_bytes)
    else:
        harness.send(header + hello_bytes)
    client.receive()
    assert client.handshake()
    client.send(GET)
    harness.pump()
    request = harness.submitted[0][0]
    assert request.remote_addr == "203.0.113.7" and request.tls is not None


def test_an_untrusted_proxy_header_on_a_tls_port_is_refused(make: Any):
    harness, _ = make(trusted_proxy="192.0.2.99", proxy_protocol="v1")
    harness.send(b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 443\r\n")
    assert harness.state is ChannelState.CLOSED


def test_an_idle_connection_ends_with_close_notify(make: Any):
    harness, client = make(keepalive_timeout=5)
    _handshake(harness, client)
    client.send(GET)
    harness.pump()
    harness.serve_next()
    _read(harness, client, _complete_response)
    harness.loop.advance(5)
    assert harness.state is ChannelState.LINGERING
    _read(harness, client, lambda data: False)
    assert client.closed_cleanly


def test_a_large_closing_response_is_sent_whole_before_close_notify(make: Any):
    body = bytes(range(256)) * 8426  # 2 MiB and almost a block: far more than the socket buffers

    def big(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    harness, client = make(big)
    # Smaller than a block of records, so the last block still waits when the pipe is done.
    harness.channel.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    _handshake(harness, client)
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    harness.pump()
    harness.serve_next()
    harness.settle()
    # The worker's part is done, but records still wait for the client to read them.
    assert harness.channel._tls is not None and harness.channel._tls.wants_write
    received = _read(harness, client, lambda data: False)
    assert received.partition(b"\r\n\r\n")[2] == body
    assert client.closed_cleanly


def test_a_client_that_stops_reading_is_cut_at_the_send_deadline(make: Any):
    harness, client = make(send_timeout=10)
    _handshake(harness, client)
    client.send(GET)
    harness.pump()
    _request, pipe = harness.submitted.pop(0)
    body = b"x" * (4 << 20)  # more than the socket pair holds; the client reads none of it
    pipe.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body, finish=True)
    harness.settle()
    assert pipe.pending_bytes > 0
    harness.loop.advance(9.9)
    assert harness.state is ChannelState.OPEN
    harness.loop.advance(0.1)
    assert harness.state is ChannelState.CLOSED
    assert pipe.aborted
