"""Request lines at the edges of the grammar, over real sockets: ``OPTIONS *`` and
HTTP/1.x versions above 1.1."""

from __future__ import annotations

import json
from wsgiref.validate import validator

from tests.apps import EchoApp
from tests.httpclient import request


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
