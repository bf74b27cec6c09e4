"""Trusted proxies over real sockets, without nginx: a test client plays the proxy.

The server trusts 127.0.0.2 only; direct clients connect from 127.0.0.1 (see clients.py).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from ..apps import EchoApp
from ..httpclient import Connection
from . import ppv2
from .clients import DIRECT, PROXY, ConnectionFrom, addressing, get, requires_loopback_aliases, seen

pytestmark = requires_loopback_aliases

XFF = "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n"


def start(start_server: Any, app: Any, **settings: Any) -> tuple[str, int]:
    settings.setdefault("trusted_proxy", PROXY)
    server = start_server(app, **settings)
    return server.address


def test_trusted_and_untrusted_clients_share_a_listener(start_server: Any):
    app = EchoApp()
    address = start(
        start_server, app, trusted_proxy_headers="x-forwarded-for x-forwarded-proto x-forwarded-host"
    )
    with ConnectionFrom(PROXY, address) as proxied, ConnectionFrom(DIRECT, address) as direct:
        for _ in range(2):  # interleaved on two open connections, keep-alive
            proxied.send(get(headers=XFF))
            direct.send(get(headers=XFF))
            via_proxy = seen(proxied.read_response())
            from_client = seen(direct.read_response())
            assert addressing(via_proxy) == {
                "REMOTE_ADDR": "192.0.2.1",
                "REMOTE_PORT": None,
                "HTTP_HOST": "example.com",
                "SERVER_NAME": "example.com",
                "SERVER_PORT": "443",
                "wsgi.url_scheme": "https",
            }
            assert addressing(from_client) == {
                "REMOTE_ADDR": DIRECT,
                "REMOTE_PORT": str(direct.local_port),
                "HTTP_HOST": "example.test",
                "SERVER_NAME": "waitress.invalid",
                "SERVER_PORT": str(address[1]),
                "wsgi.url_scheme": "http",
            }
            assert not {key for key in from_client if "FORWARDED" in key}


def test_malformed_header_from_a_trusted_proxy_is_400_and_the_app_is_not_called(start_server: Any):
    app = EchoApp()
    address = start(start_server, app, trusted_proxy_headers="x-forwarded-for")
    with ConnectionFrom(PROXY, address) as conn:
        conn.send(get(headers="X-Forwarded-For: not-an-address\r\n") + get())
        response = conn.read_response()
        assert response.status == 400
        assert response.closes
        assert b"X-Forwarded-For" in response.body
        assert conn.is_closed_by_peer()
    assert app.calls == []


def test_malformed_header_from_an_untrusted_client_is_just_removed(start_server: Any):
    app = EchoApp()
    address = start(start_server, app, trusted_proxy_headers="forwarded")
    with ConnectionFrom(DIRECT, address) as conn:
        conn.send(get(headers='Forwarded: for="unterminated\r\n'))
        report = seen(conn.read_response())
    assert report["REMOTE_ADDR"] == DIRECT and "HTTP_FORWARDED" not in report


def test_forwarded_allow_ips_environment_variable(start_server: Any, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", PROXY)
    app = EchoApp()
    server = start_server(app, trusted_proxy_headers="x-forwarded-for")
    with ConnectionFrom(PROXY, server.address) as proxied, ConnectionFrom(DIRECT, server.address) as direct:
        proxied.send(get(headers=XFF))
        direct.send(get(headers=XFF))
        assert seen(proxied.read_response())["REMOTE_ADDR"] == "192.0.2.1"
        assert seen(direct.read_response())["REMOTE_ADDR"] == DIRECT


def test_unix_socket_peers_are_trusted_as_localhost(start_server: Any, tmp_path: Any):
    app = EchoApp()
    path = str(tmp_path / "s.sock")
    start_server(app, unix_socket=path, trusted_proxy="localhost", trusted_proxy_headers="x-forwarded-for")
    with Connection(path, socket.AF_UNIX) as conn:
        conn.send(get(headers="X-Forwarded-For: 192.0.2.1, 198.51.100.2\r\n"))
        report = seen(conn.read_response())
    assert report["REMOTE_ADDR"] == "198.51.100.2"
    assert report["HTTP_X_FORWARDED_FOR"] == "198.51.100.2"


# -- the PROXY protocol -------------------------------------------------------------------------


def test_v2_header_from_a_trusted_peer(start_server: Any):
    app = EchoApp()
    address = start(start_server, app, proxy_protocol="v2")
    with ConnectionFrom(PROXY, address) as conn:
        conn.send(
            ppv2.v2("203.0.113.7", "127.0.0.1", 51234, address[1], tlvs=((0x02, b"example.com"),)) + get()
        )
        first = seen(conn.read_response())
        conn.send(get("/again"))  # the header names the client for the whole connection
        second = seen(conn.read_response())
    for report in (first, second):
        assert (report["REMOTE_ADDR"], report["REMOTE_PORT"]) == ("203.0.113.7", "51234")
        assert report["HTTP_HOST"] == "example.test" and report["SERVER_PORT"] == str(address[1])


def test_v2_ipv6_and_local_from_a_trusted_peer(start_server: Any):
    app = EchoApp()
    address = start(start_server, app, proxy_protocol="v2")
    with ConnectionFrom(PROXY, address) as conn:
        conn.send(ppv2.v2("2001:db8::7", "2001:db8::1", 4711, 443) + get())
        assert seen(conn.read_response())["REMOTE_ADDR"] == "2001:db8::7"
    with ConnectionFrom(PROXY, address) as conn:
        conn.send(ppv2.v2(command="LOCAL") + get())  # a health check: the real peer
        assert seen(conn.read_response())["REMOTE_ADDR"] == PROXY


@pytest.mark.parametrize("mode", ["v1", "auto"])
def test_v1_header_byte_by_byte(start_server: Any, mode: str):
    app = EchoApp()
    address = start(start_server, app, proxy_protocol=mode)
    with ConnectionFrom(PROXY, address) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in ppv2.v1("198.51.100.9", "127.0.0.1", 1024, 80) + get():
            conn.send(bytes([byte]))
        report = seen(conn.read_response())
    assert (report["REMOTE_ADDR"], report["REMOTE_PORT"]) == ("198.51.100.9", "1024")


def test_header_and_forwarding_headers_together(start_server: Any):
    # HAProxy in HTTP mode can send both: the PROXY header names the client connection,
    # the trusted X-Forwarded-For (from the same trusted peer) the request's client.
    app = EchoApp()
    address = start(start_server, app, proxy_protocol="v1", trusted_proxy_headers="x-forwarded-proto")
    with ConnectionFrom(PROXY, address) as conn:
        conn.send(ppv2.v1("198.51.100.9", "127.0.0.1", 1024, 80) + get(headers=XFF))
        report = seen(conn.read_response())
    assert (report["REMOTE_ADDR"], report["wsgi.url_scheme"]) == ("198.51.100.9", "https")
    assert "HTTP_X_FORWARDED_FOR" not in report  # not trusted: removed


@pytest.mark.parametrize("mode", ["v1", "v2", "auto"])
@pytest.mark.parametrize(
    "header", [ppv2.v1("6.6.6.6", "127.0.0.1", 1, 2), ppv2.v2("6.6.6.6", "127.0.0.1", 1, 2)]
)
def test_header_from_an_untrusted_client_closes_the_connection(start_server: Any, mode: str, header: bytes):
    app = EchoApp()
    address = start(start_server, app, proxy_protocol=mode)
    with ConnectionFrom(DIRECT, address) as conn:
        conn.send(header + get())
        assert conn.read_all() == b""
    assert app.calls == []


@pytest.mark.parametrize("mode", ["v1", "v2", "auto"])
def test_untrusted_clients_still_speak_plain_http(start_server: Any, mode: str):
    app = EchoApp()
    address = start(start_server, app, proxy_protocol=mode)
    with ConnectionFrom(DIRECT, address) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (b"\r\n", b"P", b"OST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"):
            conn.send(piece)  # starts like a v2 signature, then like "PROXY "
        assert seen(conn.read_response())["REMOTE_ADDR"] == DIRECT


@pytest.mark.parametrize(
    "mode, data",
    [
        ("v1", get()),  # required, missing
        ("v2", get()),
        ("v2", ppv2.v1("198.51.100.9", "127.0.0.1", 1024, 80) + get()),  # the wrong version
        ("v1", b"PROXY TCP4 198.51.100.9 127.0.0.1 1024 99999\r\n" + get()),
        ("auto", b"PROXY TCP4 not-an-ip 127.0.0.1 1024 80\r\n" + get()),
        ("auto", ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2, version=3) + get()),
    ],
)
def test_missing_or_malformed_header_from_a_trusted_peer_closes(start_server: Any, mode: str, data: bytes):
    app = EchoApp()
    address = start(start_server, app, proxy_protocol=mode)
    with ConnectionFrom(PROXY, address) as conn:
        conn.send(data)
        assert conn.read_all() == b""
    assert app.calls == []


def test_auto_lets_a_trusted_peer_skip_the_header(start_server: Any):
    app = EchoApp()
    address = start(start_server, app, proxy_protocol="auto")
    with ConnectionFrom(PROXY, address) as conn:
        conn.send(get())
        assert seen(conn.read_response())["REMOTE_ADDR"] == PROXY


def test_a_partial_header_is_bounded_in_time(start_server: Any):
    app = EchoApp()
    address = start(start_server, app, proxy_protocol="v1", request_head_timeout=0.3)
    with ConnectionFrom(PROXY, address) as conn:
        conn.send(b"PROXY TCP4 198.51.")
        assert conn.read_all() == b""  # returns once the server closes
    assert app.calls == []


def test_v1_over_a_unix_socket(start_server: Any, tmp_path: Any):
    app = EchoApp()
    path = str(tmp_path / "s.sock")
    start_server(app, unix_socket=path, trusted_proxy="localhost", proxy_protocol="v1")
    with Connection(path, socket.AF_UNIX) as conn:
        conn.send(ppv2.v1("198.51.100.9", "127.0.0.1", 1024, 80) + get())
        report = seen(conn.read_response())
    assert (report["REMOTE_ADDR"], report["REMOTE_PORT"]) == ("198.51.100.9", "1024")
