"""HTTP/1.1 behaviour of the real server over loopback: persistence, pipelining, framing."""

from __future__ import annotations

import json
import socket

import pytest

from tests.apps import EchoApp, hello, status_app, streaming
from tests.conftest import OVER_TLS_TOO, PLAIN_ONLY
from tests.httpclient import Connection, request

pytestmark = OVER_TLS_TOO

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def test_hello_world_has_date_server_and_length(start_server):
    server = start_server(hello)
    response = request(server.address, GET)
    assert response.status == 200
    assert response.body == b"hello"
    assert response.header("Content-Length") == "5"
    assert response.header("Server") == "waitress_like"
    assert response.header("Date").endswith(" GMT")
    assert not response.closes


def test_keep_alive_serves_many_requests_on_one_connection(start_server):
    server = start_server(hello)
    with Connection(server.address) as conn:
        for _ in range(20):
            conn.send(GET)
            assert conn.read_response().body == b"hello"


def test_http10_closes_unless_keep_alive_asked(start_server):
    server = start_server(hello)
    with Connection(server.address) as conn:
        conn.send(b"GET / HTTP/1.0\r\n\r\n")
        response = conn.read_response()
        assert response.version == "HTTP/1.0"
        assert response.closes
        assert conn.is_closed_by_peer()
    with Connection(server.address) as conn:
        for _ in range(3):
            conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = conn.read_response()
            assert response.header("Connection") == "Keep-Alive"  # waitress's spelling
            assert response.body == b"hello"


def test_connection_close_is_honoured(start_server):
    server = start_server(hello)
    with Connection(server.address) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert conn.read_response().closes
        assert conn.is_closed_by_peer()


def test_pipelined_requests_are_answered_in_order(start_server):
    app = EchoApp()
    server = start_server(app, threads=4)
    with Connection(server.address) as conn:
        conn.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10)))
        paths = [json.loads(conn.read_response().body)["PATH_INFO"] for _ in range(10)]
    assert paths == ["/%d" % i for i in range(10)]


def test_streamed_response_is_chunked_and_connection_stays_open(start_server):
    server = start_server(streaming)
    with Connection(server.address) as conn:
        for _ in range(2):
            conn.send(GET)
            response = conn.read_response()
            assert response.header("Transfer-Encoding") == "chunked"
            assert response.header("Content-Length") is None
            assert response.body == b"part0;part1;part2;part3;part4;"
            assert not response.closes


def test_streamed_response_to_http10_is_close_delimited(start_server):
    server = start_server(streaming)
    with Connection(server.address) as conn:
        conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = conn.read_response()
        assert response.header("Transfer-Encoding") is None
        assert response.closes
        assert response.body == b"part0;part1;part2;part3;part4;"


def test_head_has_headers_but_no_body(start_server):
    server = start_server(hello)
    with Connection(server.address) as conn:
        conn.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = conn.read_response("HEAD")
        assert response.header("Content-Length") == "5"
        conn.send(GET)  # a stray body would be read as this response's status line
        assert conn.read_response().body == b"hello"


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_bodyless_statuses_send_no_body(start_server, status):
    server = start_server(status_app(status, b"should not be sent"))
    with Connection(server.address) as conn:
        conn.send(GET)
        response = conn.read_response()
        assert response.status == int(status[:3])
        assert response.header("Transfer-Encoding") is None
        conn.send(GET)
        assert conn.read_response().status == int(status[:3])


def test_expect_100_continue(start_server):
    app = EchoApp()
    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = conn.read_interim_or_final()
        assert interim.status == 100
        conn.send(b"hello")
        response = conn.read_response()
        assert json.loads(response.body)["body"] == "hello"


def test_expect_100_continue_is_sent_even_when_the_body_came_with_the_head(start_server):
    """RFC 9110 10.1.1 lets a server skip the 100 then; waitress sends it, and so do we,
    each in order with the pipelined responses around it."""
    app = EchoApp()
    server = start_server(app)
    expecting = b"POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"
    with Connection(server.address) as conn:
        conn.send(expecting % 1 + GET + expecting % 2)
        responses = [conn.read_interim_or_final() for _ in range(5)]
    assert [response.status for response in responses] == [100, 200, 200, 100, 200]
    finals = [json.loads(response.body) for response in responses if response.status == 200]
    assert [(seen["PATH_INFO"], seen["body"]) for seen in finals] == [
        ("/1", "hello"),
        ("/", ""),
        ("/2", "hello"),
    ]


def test_chunk_sizes_are_written_in_upper_case_hex(start_server):
    """As waitress writes them (RFC 9112 7.1 allows either case)."""

    def app(environ, start_response):
        start_response("200 OK", [])
        return iter([b"x" * 26, b"y" * 255])

    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = conn.read_all()
    assert data.endswith(b"\r\n\r\n1A\r\n" + b"x" * 26 + b"\r\nFF\r\n" + b"y" * 255 + b"\r\n0\r\n\r\n")


def test_chunked_request_body_reaches_app_with_length(start_server):
    app = EchoApp()
    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        seen = json.loads(conn.read_response().body)
    assert seen["body"] == "hello world"
    assert seen["CONTENT_LENGTH"] == "11"
    assert seen["read_after_end"] == ""


@PLAIN_ONLY
def test_ipv6_listener(start_server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    server = start_server(hello, listen="[::1]:0")
    host, port = server.server.addresses[0][:2]
    assert host == "::1"
    response = request((host, port), GET, family=socket.AF_INET6)
    assert response.body == b"hello"


@PLAIN_ONLY
def test_unix_socket(start_server, tmp_path):
    path = str(tmp_path / "server.sock")
    app = EchoApp()
    server = start_server(app, unix_socket=path, unix_socket_perms="600")
    assert server.server.addresses == [path]
    response = request(path, GET, family=socket.AF_UNIX)
    assert json.loads(response.body)["REMOTE_ADDR"] == "localhost"
