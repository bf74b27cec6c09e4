"""TLSStream on a real socket pair: the server side non-blocking, the client driven by hand."""

from __future__ import annotations

import socket
import ssl
from typing import Any, Iterator

import pytest

from waitress_like.config import Settings
from waitress_like.tls import ServerTLS, build_server_tls
from waitress_like.tlsio import PLAINTEXT_BLOCK_BYTES, PlainHTTPOnTLSPort, TLSStream

from .bioclient import Client
from .conftest import CertificateFiles


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    server_side, client_side = socket.socketpair()
    server_side.setblocking(False)
    yield server_side, client_side
    server_side.close()
    client_side.close()


def _server(files: CertificateFiles, **settings: Any) -> ServerTLS:
    return build_server_tls(Settings(certfile=files.cert, keyfile=files.key, **settings))


def _connect(
    files: CertificateFiles, sockets: Any, client_context: Any = None, **settings: Any
) -> tuple[Any, Any]:
    server_side, client_side = sockets
    stream = TLSStream(server_side, _server(files, **settings))
    client = Client(client_side, client_context or files.client_context())
    for _ in range(10):
        client_done = client.handshake()
        if stream.handshake() and client_done:
            return stream, client
        client.receive()
    raise AssertionError("the handshake did not finish")


def test_a_request_sent_with_the_last_handshake_message_is_read_at_once(
    files: CertificateFiles, sockets: Any
):
    server_side, client_side = sockets
    stream = TLSStream(server_side, _server(files))
    client = Client(client_side, files.client_context())
    assert not client.handshake()  # ClientHello sent
    assert not stream.handshake()  # ServerHello .. Finished sent
    client.receive()
    client.tls.do_handshake()  # TLS 1.3: the client is done and may send at once
    client.tls.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    client.flush()  # Finished and the request, in one write
    assert stream.handshake()
    assert stream.info is not None and stream.info.protocol == "TLSv1.3"
    assert stream.recv(65536) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with pytest.raises(BlockingIOError):
        stream.recv(65536)


def test_a_large_response_is_sent_with_back_pressure(files: CertificateFiles, sockets: Any):
    server_side, client_side = sockets
    server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    stream, client = _connect(files, sockets)
    payload = bytes(range(256)) * 8192  # 2 MiB
    offset, received, blocked = 0, b"", 0
    while len(received) < len(payload):
        try:
            taken = stream.send(payload[offset:]) if offset < len(payload) else 0
            # However much it took, at most one block of records waits for the socket.
            assert stream.unsent_bytes <= PLAINTEXT_BLOCK_BYTES + 4 * 256
            offset += taken
            if offset == len(payload):
                stream.flush()
        except BlockingIOError:
            blocked += 1
            assert stream.wants_write
        if blocked or offset == len(payload):
            client.receive()
            received += client.read_available()
    assert received == payload
    assert blocked > 0  # the socket filled up and send stopped taking bytes


def test_sendmsg_joins_the_leading_buffers(files: CertificateFiles, sockets: Any):
    stream, client = _connect(files, sockets)
    assert stream.sendmsg([b"HTTP/1.1 200 OK\r\n", memoryview(b"Content-Length: 0\r\n\r\n")]) == 38
    client.receive()
    assert client.read_available() == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    big = [b"x" * PLAINTEXT_BLOCK_BYTES, b"y"]
    assert stream.sendmsg(big) == PLAINTEXT_BLOCK_BYTES


def test_plain_http_on_the_tls_port_is_recognised(files: CertificateFiles, sockets: Any):
    server_side, client_side = sockets
    stream = TLSStream(server_side, _server(files))
    client_side.sendall(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n")
    with pytest.raises(PlainHTTPOnTLSPort):
        stream.handshake()


def test_bytes_read_before_the_stream_are_taken_first(files: CertificateFiles, sockets: Any):
    # As after a PROXY protocol header: the ClientHello came with it.
    server_side, client_side = sockets
    client = Client(client_side, files.client_context())
    try:
        client.tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = client.outgoing.read()
    stream = TLSStream(server_side, _server(files), received=hello)
    assert not stream.handshake()
    client.receive()
    assert client.handshake()
    assert stream.handshake()
    with pytest.raises(PlainHTTPOnTLSPort):
        TLSStream(server_side, _server(files), received=b"GET /").handshake()


def test_a_client_that_closes_during_the_handshake(files: CertificateFiles, sockets: Any):
    server_side, client_side = sockets
    stream = TLSStream(server_side, _server(files))
    client_side.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionResetError):
        stream.handshake()


def test_a_failed_handshake_raises_and_sends_the_alert(files: CertificateFiles, sockets: Any):
    server_side, client_side = sockets
    context = files.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    stream = TLSStream(server_side, _server(files, tls_minimum_version="1.3"))
    client = Client(client_side, context)
    client.handshake()
    with pytest.raises(ssl.SSLError) as info:
        stream.handshake()
    assert info.value.reason == "UNSUPPORTED_PROTOCOL"


def test_close_notify_is_sent_and_received(files: CertificateFiles, sockets: Any):
    stream, client = _connect(files, sockets)
    assert stream.close_notify()
    client.receive()
    # b"" is a clean close; a socket closed without close_notify raises SSLEOFError.
    assert client.tls.read(1) == b""


def test_the_clients_close_notify_ends_the_stream(files: CertificateFiles, sockets: Any):
    stream, client = _connect(files, sockets)
    try:
        client.tls.unwrap()
    except ssl.SSLWantReadError:
        pass
    client.flush()
    assert stream.recv(65536) == b""


def test_a_closed_socket_without_close_notify_ends_the_stream(files: CertificateFiles, sockets: Any):
    stream, client = _connect(files, sockets)
    client.sock.shutdown(socket.SHUT_WR)
    assert stream.recv(65536) == b""


def test_half_a_record_is_not_yet_readable(files: CertificateFiles, sockets: Any):
    stream, client = _connect(files, sockets)
    client.tls.write(b"GET / HTTP/1.1\r\n\r\n")
    record = client.outgoing.read()
    client.sock.sendall(record[:10])
    with pytest.raises(BlockingIOError):
        stream.recv(65536)
    client.sock.sendall(record[10:])
    assert stream.recv(65536) == b"GET / HTTP/1.1\r\n\r\n"


def test_send_goes_on_while_the_socket_takes_the_records(files: CertificateFiles, sockets: Any):
    sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    stream, client = _connect(files, sockets)
    payload = b"y" * (3 * PLAINTEXT_BLOCK_BYTES + 5)  # fits the socket pair's buffers
    assert stream.send(payload) == len(payload) and not stream.wants_write
    received = b""
    while len(received) < len(payload):
        client.receive()
        received += client.read_available()
    assert received == payload
