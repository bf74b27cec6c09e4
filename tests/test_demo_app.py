"""The bundled demo app: through WebTest (WSGI level, no sockets) and served over a socket."""

from __future__ import annotations

import html
import warnings

import pytest

with warnings.catch_warnings():
    # WebOb 1.8 (under WebTest) imports the stdlib ``cgi`` module, deprecated since Python
    # 3.11; not our code.
    warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
    from webtest import TestApp

from tests.httpclient import Connection
from waitress_like.demo import app


def row(name: str, value: object) -> str:
    """A table row exactly as the demo page renders one."""
    return f"<tr><td>{html.escape(name)}</td><td><code>{html.escape(repr(value))}</code></td></tr>"


def body_heading(length: int) -> str:
    return f"<h2>Body ({length} bytes)</h2>"


@pytest.fixture
def demo() -> TestApp:
    return TestApp(app)


def test_get_shows_method_path_and_query(demo):
    response = demo.get("/some/where", params={"colour": "blue", "size": "10"})
    assert response.status_int == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    assert row("method", "GET") in page
    assert row("path", "/some/where") in page
    assert row("query", "colour=blue&size=10") in page
    assert row("script name", "") in page
    assert body_heading(0) in page


def test_get_escapes_what_it_shows(demo):
    response = demo.get("/<script>", params={"q": "<b>&"})
    page = response.text
    assert "<script>" not in page
    assert row("path", "/<script>") in page
    assert row("query", "q=%3Cb%3E%26") in page


def test_post_form_shows_body_and_its_length(demo):
    response = demo.post("/", params={"greeting": "hello & welcome", "name": "Zoë"})
    page = response.text
    sent = "greeting=hello+%26+welcome&name=Zo%C3%AB"
    assert row("method", "POST") in page
    assert row("CONTENT_TYPE", "application/x-www-form-urlencoded") in page
    assert body_heading(len(sent)) in page
    assert f"<pre>{html.escape(sent)}</pre>" in page


def test_post_upload_shows_body_length(demo):
    content = b"<uploaded> & shown\n" * 100
    response = demo.post(
        "/", params={"greeting": "hello"}, upload_files=[("upload", "notes.txt", content, "text/plain")]
    )
    page = response.text
    sent_length = int(response.request.headers["Content-Length"])
    assert sent_length > len(content)
    assert body_heading(sent_length) in page
    assert row("CONTENT_LENGTH", str(sent_length)) in page
    assert 'filename="notes.txt"' in html.unescape(page)
    assert html.escape("<uploaded> & shown\n" * 3) in page


def test_post_shows_only_the_first_4096_bytes_of_a_large_body(demo):
    body = b"a" * 4096 + b"b" * 1000
    response = demo.post("/", params=body, content_type="application/octet-stream")
    page = response.text
    assert body_heading(len(body)) in page
    assert f"<pre>{'a' * 4096}</pre>" in page


def test_served_over_a_real_socket(start_server):
    server = start_server(app)
    host, port = server.address
    with Connection(server.address) as conn:
        conn.send(f"GET /demo/page?x=1&y=%20 HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii"))
        response = conn.read_response()
        assert response.status == 200
        assert response.header("Content-Type") == "text/html; charset=utf-8"
        page = response.body.decode("utf-8")
        assert page.startswith("<!doctype html>")
        assert page.rstrip().endswith("</html>")
        assert row("method", "GET") in page
        assert row("path", "/demo/page") in page
        assert row("query", "x=1&y=%20") in page
        assert row("protocol", "HTTP/1.1") in page
        assert row("scheme", "http") in page
        client_port = conn.sock.getsockname()[1]
        assert row("client", f"127.0.0.1:{client_port}") in page

        # Same connection: a POST body is read and counted.
        conn.send(
            f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/plain\r\n"
            "Content-Length: 11\r\n\r\nhello there".encode("ascii")
        )
        response = conn.read_response()
        assert response.status == 200
        page = response.body.decode("utf-8")
        assert body_heading(11) in page
        assert "<pre>hello there</pre>" in page
