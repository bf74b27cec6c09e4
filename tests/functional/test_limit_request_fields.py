"""``limit_request_fields``: the most field lines a request head (or trailer section) may
have, over real sockets; one over is answered 431 and the application is not called."""

from __future__ import annotations

import pytest

from tests.apps import EchoApp
from tests.httpclient import request
from waitress_like.config import Settings
from waitress_like.errors import ConfigError


def head_with_fields(count: int) -> bytes:
    fields = ["Host: x"] + [f"X-Field-{index}: {index}" for index in range(count - 1)]
    return ("GET / HTTP/1.1\r\n" + "".join(field + "\r\n" for field in fields) + "\r\n").encode()


def chunked_with_trailers(count: int) -> bytes:
    trailers = "".join(f"X-Trailer-{index}: {index}\r\n" for index in range(count))
    return (
        f"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n{trailers}\r\n"
    ).encode()


def test_the_default_is_1000():
    assert Settings().limit_request_fields == 1000


def test_a_head_at_the_limit_is_served_one_over_is_431(start_server):
    echo = EchoApp()
    server = start_server(echo, limit_request_fields=5)
    assert request(server.address, head_with_fields(5)).status == 200
    response = request(server.address, head_with_fields(6))
    assert response.status == 431 and response.closes
    assert len(echo.calls) == 1


def test_the_limit_applies_to_trailers_too(start_server):
    echo = EchoApp()
    server = start_server(echo, limit_request_fields=3)
    assert request(server.address, chunked_with_trailers(3), "POST").status == 200
    response = request(server.address, chunked_with_trailers(4), "POST")
    assert response.status == 431 and response.closes
    assert len(echo.calls) == 1


def test_the_default_allows_many_more_fields_than_gunicorns_100(start_server):
    server = start_server(EchoApp())
    assert request(server.address, head_with_fields(1000)).status == 200
    assert request(server.address, head_with_fields(1001)).status == 431


@pytest.mark.parametrize("value", [0, -1, "many"])
def test_a_bad_value_names_the_setting(value):
    with pytest.raises(ConfigError) as info:
        Settings(limit_request_fields=value)
    assert info.value.setting == "limit_request_fields"
    assert "unknown setting" not in info.value.reason
