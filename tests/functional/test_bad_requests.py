"""Malformed requests over real sockets: a 4xx/5xx with Connection: close, then the
connection closes, the app is never called, and nothing after the bad request is served."""

from __future__ import annotations

import pytest

from tests.apps import EchoApp
from tests.httpclient import Connection

BAD_REQUESTS = {
    "te and cl": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "te not ending in chunked": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        400,
    ),
    "unknown transfer coding": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
    ),
    "repeated content-length": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab",
        400,
    ),
    "plus content-length": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na", 400),
    "underscore content-length": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1_0\r\n\r\n", 400),
    "hex content-length": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x1\r\n\r\n", 400),
    "non-ascii digit length": (
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \u0661\r\n\r\n".encode("utf-8"),
        400,
    ),
    "bad chunk size": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "bad chunk extension": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a b\r\nx\r\n0\r\n\r\n",
        400,
    ),
    "bare lf": (b"GET / HTTP/1.1\nHost: x\n\n", 400),
    "bare cr": (b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
    "obs fold": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    "nul in value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    "bad name byte": (b"GET / HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n", 400),
    "space before colon": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", 400),
    "missing host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "repeated host": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "http/2.0": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_malformed_request_is_refused_and_connection_closed(start_server, name):
    raw, status = BAD_REQUESTS[name]
    app = EchoApp()
    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(raw)
        response = conn.read_response()
        assert response.status == status
        assert response.closes
        assert conn.read_all() == b""
    assert app.calls == []


def test_requests_after_a_bad_one_in_a_pipeline_never_reach_the_app(start_server):
    app = EchoApp()
    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
            b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert conn.read_response().status == 200
        bad = conn.read_response()
        assert bad.status == 400 and bad.closes
        assert conn.read_all() == b""
    assert [call["PATH_INFO"] for call in app.calls] == ["/first"]


def test_header_too_large_gives_431(start_server):
    app = EchoApp()
    server = start_server(app, max_request_header_size=1000)
    with Connection(server.address) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
        response = conn.read_response()
        assert response.status == 431 and response.closes
    assert app.calls == []


def test_body_too_large_gives_413_by_length(start_server):
    app = EchoApp()
    server = start_server(app, max_request_body_size=10)
    with Connection(server.address) as conn:
        conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
        response = conn.read_response()
        assert response.status == 413 and response.closes
    assert app.calls == []


def test_chunked_body_too_large_gives_413_as_bytes_arrive(start_server):
    app = EchoApp()
    server = start_server(app, max_request_body_size=10)
    with Connection(server.address) as conn:
        # No last chunk: the verdict must come from the bytes seen so far.
        conn.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n"
        )
        response = conn.read_response()
        assert response.status == 413 and response.closes
    assert app.calls == []


def test_underscore_headers_are_dropped(start_server):
    app = EchoApp()
    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Auth-User: real\r\nX_Auth_User: forged\r\n\r\n")
        conn.read_response()
    assert app.calls[0]["HTTP_X_AUTH_USER"] == "real"


# (request, status line, a phrase the body must hold): the status line is in HTTP/1.0 for
# a bad head, in the request's version for a bad body, as waitress answers.
SHAPED_ERRORS = {
    "bad head": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "HTTP/1.0 400 Bad Request", b""),
    "chunk size": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n",
        "HTTP/1.1 400 Bad Request",
        b"Invalid chunk size",
    ),
    "chunk extension": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;invalid=\r\nhello\r\n",
        "HTTP/1.1 400 Bad Request",
        b"Invalid chunk extension",
    ),
    "chunk end": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n",
        "HTTP/1.1 400 Bad Request",
        b"Chunk not properly terminated",
    ),
    "chunked too large": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n",
        "HTTP/1.1 413 Request Entity Too Large",
        b"",
    ),
}


@pytest.mark.parametrize("name", sorted(SHAPED_ERRORS))
def test_server_written_errors_are_shaped_as_waitress_shapes_them(start_server, name):
    raw, status_line, phrase = SHAPED_ERRORS[name]
    server = start_server(EchoApp(), max_request_body_size=10)
    with Connection(server.address) as conn:
        conn.send(raw)
        response = conn.read_response()
    assert f"{response.version} {response.status} {response.reason}" == status_line
    assert sorted(name.lower() for name, _ in response.headers) == [
        "connection",
        "content-length",
        "content-type",
        "date",
        "server",
    ]
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.body.startswith(response.reason.encode() + b"\r\n\r\n")
    assert phrase in response.body
    assert response.body.endswith(b"\r\n\r\n(generated by waitress_like)")
