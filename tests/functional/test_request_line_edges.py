"""Request lines at the edges of the grammar, over real sockets: ``OPTIONS *`` and
HTTP/1.x versions above 1.1."""

from __future__ import annotations

import json
from wsgiref.validate import validator

import pytest

from tests.apps import EchoApp
from tests.httpclient import Connection, request


class Recorder:
    """Keeps the string values of each environ it is called with; answers 200."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    def __call__(self, environ, start_response):
        self.calls.append({key: value for key, value in environ.items() if isinstance(value, str)})
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]


def test_options_asterisk_passes_wsgiref_validate(start_server):
    """PEP 3333: PATH_INFO is empty or starts with "/"; the asterisk-form target names the
    server as a whole, so PATH_INFO is empty and RAW_URI keeps the "*"."""
    recorder = Recorder()
    server = start_server(validator(recorder))
    response = request(
        server.address, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "OPTIONS"
    )
    assert response.status == 200, response
    (seen,) = recorder.calls
    assert (seen["REQUEST_METHOD"], seen["PATH_INFO"], seen["RAW_URI"]) == ("OPTIONS", "", "*")
    assert seen["SCRIPT_NAME"] == "" and seen["QUERY_STRING"] == ""


def test_options_asterisk_under_a_url_prefix(start_server):
    echo = EchoApp()
    server = start_server(echo, url_prefix="/app")
    response = request(
        server.address, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "OPTIONS"
    )
    assert response.status == 200, response
    seen = json.loads(response.body)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"], seen["RAW_URI"]) == ("/app", "", "*")


def test_a_higher_minor_version_is_served_as_http11(start_server):
    """RFC 9110 2.5: HTTP/1.2 is processed as HTTP/1.1, the highest 1.x we implement; the
    response carries HTTP/1.1 (the version we speak), and so does the environ."""
    echo = EchoApp()
    server = start_server(echo)
    with Connection(server.address) as connection:
        for path in ("/first", "/second"):  # persistent by default, as in HTTP/1.1
            connection.send(f"GET {path} HTTP/1.2\r\nHost: x\r\n\r\n".encode())
            response = connection.read_response()
            assert (response.version, response.status) == ("HTTP/1.1", 200), response
            assert not response.closes
    assert [(call["PATH_INFO"], call["SERVER_PROTOCOL"]) for call in echo.calls] == [
        ("/first", "HTTP/1.1"),
        ("/second", "HTTP/1.1"),
    ]


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9", "HTTP/3.1"])
def test_other_major_versions_are_505(start_server, version: str):
    echo = EchoApp()
    server = start_server(echo)
    response = request(server.address, f"GET / {version}\r\nHost: x\r\n\r\n".encode())
    assert response.status == 505 and response.closes
    assert not echo.calls
