"""PEP 3333 behaviour over real sockets: environ, start_response, errors, file_wrapper."""

from __future__ import annotations

import sys
import threading

import pytest

from tests.apps import EchoApp
from tests.httpclient import Connection, request

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def test_environ_is_complete(start_server):
    app = EchoApp()
    server = start_server(app)
    request(
        server.address,
        b"POST /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 4\r\nX-Multi: one\r\nX-Multi: two\r\nCookie: a=1\r\nCookie: b=2\r\n\r\nbody",
    )
    seen = app.calls[0]
    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["SCRIPT_NAME"] == ""
    assert seen["PATH_INFO"] == "/a b/c"
    assert seen["QUERY_STRING"] == "x=1&y=%20"
    assert seen["CONTENT_TYPE"] == "text/plain"
    assert seen["CONTENT_LENGTH"] == "4"
    assert seen["SERVER_NAME"] == "waitress.invalid"
    assert seen["SERVER_PORT"] == str(server.address[1])
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["REMOTE_PORT"].isdigit()
    assert seen["HTTP_HOST"] == "example.com:8080"
    assert seen["HTTP_X_MULTI"] == "one, two"
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_CONTENT_LENGTH" not in seen and "HTTP_CONTENT_TYPE" not in seen
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["wsgi.version"] == (1, 0)
    assert seen["wsgi.multithread"] is True
    assert seen["wsgi.multiprocess"] is False
    assert seen["wsgi.run_once"] is False
    assert seen["wsgi.input_terminated"] is True
    assert seen["body"] == "body"
    assert seen["read_after_end"] == ""


def test_path_is_latin1_decoded(start_server):
    app = EchoApp()
    server = start_server(app)
    request(server.address, b"GET /caf%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert app.calls[0]["PATH_INFO"] == "/caf\u00c3\u00a9"


@pytest.mark.parametrize(
    ("path", "script_name", "path_info"),
    [("/app/x", "/app", "/x"), ("/app", "/app", ""), ("/application", "/app", "/application")],
)
def test_url_prefix(start_server, path, script_name, path_info):
    app = EchoApp()
    server = start_server(app, url_prefix="/app/")
    request(server.address, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    assert (app.calls[0]["SCRIPT_NAME"], app.calls[0]["PATH_INFO"]) == (script_name, path_info)


def test_app_error_gives_500_and_server_keeps_serving(start_server, caplog):
    def broken(environ, start_response):
        raise RuntimeError("boom")

    server = start_server(broken)
    for _ in range(2):
        response = request(server.address, GET)
        assert response.status == 500
        assert b"boom" not in response.body
    assert "boom" in caplog.text


def test_expose_tracebacks(start_server):
    def broken(environ, start_response):
        raise RuntimeError("boom-visible")

    server = start_server(broken, expose_tracebacks=True)
    assert b"boom-visible" in request(server.address, GET).body


def test_error_after_headers_closes_connection(start_server):
    def fails_midway(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial"
        raise RuntimeError("midway")

    server = start_server(fails_midway)
    with Connection(server.address) as conn:
        conn.send(GET)
        data = conn.read_all()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"partial" in data
    assert not data.endswith(b"0\r\n\r\n")  # no clean end: the client knows it was cut


@pytest.mark.parametrize("body", [b"abc", b"abcdefghij"], ids=["short", "long"])
def test_wrong_content_length_from_app_never_corrupts_next_response(start_server, body):
    def lying(environ, start_response):
        start_response("200 OK", [("Content-Length", "5")])
        return iter([body])

    server = start_server(lying)
    with Connection(server.address) as conn:
        conn.send(GET + GET)
        data = conn.read_all()
    assert data.count(b"HTTP/1.1 200") == 1
    assert data.endswith(body[:5])


def test_app_iter_close_is_always_called(start_server):
    closed = threading.Event()

    class Body:
        def __iter__(self):
            yield b"x"
            raise RuntimeError("iteration failed")

        def close(self):
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(GET)
        conn.read_all()
    assert closed.wait(5)


def test_write_callable(start_server):
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"from write;")
        return [b"from iterable"]

    server = start_server(app)
    assert request(server.address, GET).body == b"from write;from iterable"


def test_start_response_twice_without_exc_info_is_an_error(start_server):
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]

    server = start_server(app)
    assert request(server.address, GET).status == 500


def test_start_response_with_exc_info_replaces_headers(start_server):
    def app(environ, start_response):
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("oops")
        except ValueError:
            start_response("503 Service Unavailable", [("X-Second", "2")], sys.exc_info())
        return [b"sorry"]

    server = start_server(app)
    response = request(server.address, GET)
    assert response.status == 503
    assert response.header("X-First") is None and response.header("X-Second") == "2"


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Bad", "a\r\nSet-Cookie: evil=1")],
        [("X-Bad", "a\nb")],
        [("X-Bad", "a\x00b")],
        [("Bad Name", "x")],
        [("Connection", "close")],
        [("Transfer-Encoding", "chunked")],
        [("X-Bytes", b"x")],
    ],
    ids=["crlf", "lf", "nul", "bad-name", "connection", "transfer-encoding", "bytes-value"],
)
def test_bad_app_headers_give_500(start_server, headers):
    def app(environ, start_response):
        start_response("200 OK", headers)
        return [b"never sent"]

    server = start_server(app)
    response = request(server.address, GET)
    assert response.status == 500
    assert b"never sent" not in response.body
    assert response.header("Set-Cookie") is None


def test_file_wrapper_sends_file(start_server, tmp_path):
    content = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "data.bin"
    path.write_bytes(content)

    def app(environ, start_response):
        handle = open(path, "rb")
        handle.seek(10)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](handle, 8192)

    server = start_server(app)
    with Connection(server.address) as conn:
        for _ in range(2):
            conn.send(GET)
            response = conn.read_response()
            assert response.header("Content-Length") == str(len(content) - 10)
            assert response.body == content[10:]


def test_file_wrapper_with_non_file_object_iterates(start_server):
    import io

    def app(environ, start_response):
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory"), 4)

    server = start_server(app)
    assert request(server.address, GET).body == b"in memory"


def test_request_body_spills_to_temp_file(start_server):
    seen = {}

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        seen["type"] = type(stream).__name__
        data = stream.read()
        seen["length"] = len(data)
        start_response("200 OK", [])
        return [b"%d" % len(data)]

    server = start_server(app, inbuf_overflow=1024)
    body = b"x" * 100_000
    response = request(
        server.address, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    assert response.body == b"100000"
    assert seen["type"] != "BytesIO"


def test_large_response_spills_and_arrives_intact(start_server):
    chunk = bytes(range(256)) * 256  # 64 KiB

    def app(environ, start_response):
        start_response("200 OK", [])
        return (chunk for _ in range(64))  # 4 MiB, streamed

    server = start_server(app, outbuf_overflow=100_000, outbuf_high_watermark=1_000_000)
    with Connection(server.address) as conn:
        conn.send(GET)
        assert conn.read_response().body == chunk * 64


def test_client_going_away_mid_response_frees_the_worker(start_server):
    closed = threading.Event()
    state = {"chunks": 0}

    class Endless:
        def __init__(self, environ):
            self.disconnected = environ["waitress_like.client_disconnected"]

        def __iter__(self):
            for _ in range(100_000):
                state["chunks"] += 1
                yield b"x" * 65536

        def close(self):
            state["disconnected"] = self.disconnected()
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [])
        if environ["PATH_INFO"] == "/ok":
            return [b"ok"]
        return Endless(environ)

    server = start_server(app, threads=1, outbuf_overflow=65536, outbuf_high_watermark=262144)
    conn = Connection(server.address)
    conn.send(GET)
    conn.sock.recv(1000)
    conn.close()
    assert closed.wait(10)
    assert state["disconnected"] is True
    assert state["chunks"] < 100_000
    # The only worker is free again.
    assert request(server.address, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").body == b"ok"


def test_file_wrapper_bigger_than_socket_buffers_with_a_slow_start(start_server, tmp_path):
    """A file far larger than the socket buffers, so sendfile blocks many times; the
    pipe's pending count must stay exact for the loop to keep waiting for writability."""
    content = bytes(range(256)) * (64 * 1024)  # 16 MiB
    path = tmp_path / "big.bin"
    path.write_bytes(content)

    def app(environ, start_response):
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](open(path, "rb"))

    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(GET)
        response = conn.read_response()
        assert len(response.body) == len(content) and response.body == content
        conn.send(GET)
        assert len(conn.read_response().body) == len(content)
