"""A real nginx in front of the server: what the application sees, and what a direct
client cannot forge.

nginx connects to the server from 127.0.0.2 (``proxy_bind``), the only trusted address;
clients reach nginx from 127.0.0.3 and the server directly from 127.0.0.1. Every config
here is the one docs/proxy.rst shows, with the test's ports filled in.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from ..apps import EchoApp
from ..httpclient import Connection
from . import ppv2
from .clients import (
    DIRECT,
    PROXY,
    THROUGH_PROXY,
    ConnectionFrom,
    addressing,
    get,
    requires_loopback_aliases,
    seen,
)
from .nginx import Nginx, free_port

pytestmark = requires_loopback_aliases


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6_LOOPBACK = _has_ipv6_loopback()

X_FORWARDED_LOCATION = """
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto https;  # $scheme behind a TLS listener
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Forwarded-Port $server_port;
"""
# Host first: a client's Host cannot then push its own element after the one nginx writes.
# The map puts IPv6 client addresses in brackets (RFC 7239 section 6).
FORWARDED_MAP = """
    map $remote_addr $forwarded_for_address {
        ~:      "[$remote_addr]";
        default $remote_addr;
    }
"""
FORWARDED_LOCATION = """
        proxy_set_header Forwarded "host=\\"$http_host\\";for=\\"$forwarded_for_address:$remote_port\\";proto=https";
"""
FORGED = (
    "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n"
    "X-Forwarded-Port: 1\r\nX-Forwarded-By: 6.6.6.7\r\nForwarded: for=6.6.6.6;host=evil.example;proto=https\r\n"
)
FORWARDING_KEYS = {
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_BY",
}


def http_proxy(listen_port: int, upstream: str, location: str) -> str:
    return f"""
    server {{
        listen 127.0.0.1:{listen_port};
        {f"listen [::1]:{listen_port};" if HAS_IPV6_LOOPBACK else ""}
        location / {{
            proxy_pass {upstream};
            proxy_bind {PROXY};
{location}
        }}
    }}
"""


def through(port: int, request: bytes) -> dict[str, Any]:
    with ConnectionFrom(THROUGH_PROXY, ("127.0.0.1", port)) as conn:
        conn.send(request)
        report = seen(conn.read_response())
    report["client_port"] = str(conn.local_port)
    return report


def direct(address: Any, request: bytes) -> dict[str, Any]:
    with ConnectionFrom(DIRECT, address) as conn:
        conn.send(request)
        report = seen(conn.read_response())
    report["client_port"] = str(conn.local_port)
    return report


def assert_direct_is_unchanged(address: Any) -> None:
    """The same forged headers sent straight to the server change nothing."""
    report = direct(address, get(host="example.test", headers=FORGED))
    assert addressing(report) == {
        "REMOTE_ADDR": DIRECT,
        "REMOTE_PORT": report["client_port"],
        "HTTP_HOST": "example.test",
        "SERVER_NAME": "waitress.invalid",
        "SERVER_PORT": str(address[1]),
        "wsgi.url_scheme": "http",
    }
    assert not FORWARDING_KEYS & set(report)


# -- HTTP proxying ------------------------------------------------------------------------------


def test_x_forwarded_headers(start_server: Any, nginx: Nginx):
    app = EchoApp()
    server = start_server(
        app,
        trusted_proxy=PROXY,
        trusted_proxy_headers="x-forwarded-for x-forwarded-proto x-forwarded-host x-forwarded-port",
    )
    port = free_port()
    nginx.start(
        http=http_proxy(port, f"http://127.0.0.1:{server.address[1]}", X_FORWARDED_LOCATION), ports=(port,)
    )
    expected = {
        "REMOTE_ADDR": THROUGH_PROXY,
        "REMOTE_PORT": None,  # X-Forwarded-For carries no port; nginx's own would mislead
        "HTTP_HOST": f"example.test:{port}",
        "SERVER_NAME": "example.test",
        "SERVER_PORT": str(port),
        "wsgi.url_scheme": "https",
    }
    report = through(port, get(host="example.test"))
    assert addressing(report) == expected
    # Forged headers through nginx: it appends to X-Forwarded-For (one hop trusted, so the
    # client's entry is cut off) and overwrites the rest; Forwarded is not trusted here.
    forged = through(port, get(host="example.test", headers=FORGED))
    assert addressing(forged) == expected
    assert forged["HTTP_X_FORWARDED_FOR"] == THROUGH_PROXY
    assert FORWARDING_KEYS & set(forged) == {
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_PORT",
    }
    assert_direct_is_unchanged(server.address)


def test_forwarded_header(start_server: Any, nginx: Nginx):
    app = EchoApp()
    server = start_server(app, trusted_proxy=PROXY, trusted_proxy_headers="forwarded")
    port = free_port()
    nginx.start(
        http=FORWARDED_MAP + http_proxy(port, f"http://127.0.0.1:{server.address[1]}", FORWARDED_LOCATION),
        ports=(port,),
    )
    for headers in ("", FORGED):
        report = through(port, get(host="example.test:8443", headers=headers))
        assert addressing(report) == {
            "REMOTE_ADDR": THROUGH_PROXY,
            "REMOTE_PORT": report["client_port"],
            "HTTP_HOST": "example.test:8443",
            "SERVER_NAME": "example.test",
            "SERVER_PORT": "8443",
            "wsgi.url_scheme": "https",
        }
        assert FORWARDING_KEYS & set(report) == {"HTTP_FORWARDED"}
    assert_direct_is_unchanged(server.address)


@pytest.mark.skipif(not HAS_IPV6_LOOPBACK, reason="needs IPv6 on the loopback interface")
def test_forwarded_header_from_an_ipv6_client(start_server: Any, nginx: Nginx):
    app = EchoApp()
    server = start_server(app, trusted_proxy=PROXY, trusted_proxy_headers="forwarded")
    port = free_port()
    nginx.start(
        http=FORWARDED_MAP + http_proxy(port, f"http://127.0.0.1:{server.address[1]}", FORWARDED_LOCATION),
        ports=(port,),
    )
    with Connection(("::1", port), socket.AF_INET6) as conn:
        conn.send(get(host="[2001:db8::5]:8443"))
        report = seen(conn.read_response())
        client_port = str(conn.sock.getsockname()[1])
    assert addressing(report) == {
        "REMOTE_ADDR": "::1",
        "REMOTE_PORT": client_port,
        "HTTP_HOST": "[2001:db8::5]:8443",
        "SERVER_NAME": "[2001:db8::5]",
        "SERVER_PORT": "8443",
        "wsgi.url_scheme": "https",
    }


@pytest.mark.parametrize(
    "hostile_host, status",
    [
        # nginx passes '"', ',' and '\\' in Host through to $http_host.
        ('x",for="6.6.6.6', 400),  # a second "for" in nginx's element: refused
        ('x",for="6.6.6.6",host="y', 200),  # whole elements: the last one is still nginx's
        ("x\\", 400),  # escapes nginx's closing quote: the rest no longer parses
    ],
)
def test_forwarded_header_resists_a_hostile_host(
    start_server: Any, nginx: Nginx, hostile_host: str, status: int
):
    app = EchoApp()
    server = start_server(app, trusted_proxy=PROXY, trusted_proxy_headers="forwarded")
    port = free_port()
    nginx.start(
        http=FORWARDED_MAP + http_proxy(port, f"http://127.0.0.1:{server.address[1]}", FORWARDED_LOCATION),
        ports=(port,),
    )
    with ConnectionFrom(THROUGH_PROXY, ("127.0.0.1", port)) as conn:
        conn.send(get(host=hostile_host))
        response = conn.read_response()
    assert response.status == status
    assert [call["REMOTE_ADDR"] for call in app.calls] == ([THROUGH_PROXY] if status == 200 else [])


def test_chain_of_two_proxies_with_trusted_proxy_count(start_server: Any, nginx: Nginx):
    # client -> nginx "edge" -> nginx "inner" -> server. Only the inner one talks to the
    # server; trusted_proxy_count=2 says the edge's X-Forwarded-For entry is trusted too.
    app = EchoApp()
    server = start_server(
        app, trusted_proxy=PROXY, trusted_proxy_count=2, trusted_proxy_headers="x-forwarded-for"
    )
    edge, inner = free_port(), free_port()
    location = "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
    nginx.start(
        http=http_proxy(edge, f"http://127.0.0.1:{inner}", location).replace(
            f"proxy_bind {PROXY}", "proxy_bind 127.0.0.4"
        )
        + http_proxy(inner, f"http://127.0.0.1:{server.address[1]}", location),
        ports=(edge, inner),
    )
    report = through(edge, get(headers="X-Forwarded-For: 6.6.6.6\r\n"))
    assert report["REMOTE_ADDR"] == THROUGH_PROXY
    assert report["HTTP_X_FORWARDED_FOR"] == f"{THROUGH_PROXY}, 127.0.0.4"


def test_unix_socket_upstream(start_server: Any, nginx: Nginx, tmp_path: Path):
    app = EchoApp()
    path = tmp_path / "app.sock"
    start_server(
        app,
        unix_socket=str(path),
        trusted_proxy="localhost",
        trusted_proxy_headers="x-forwarded-for x-forwarded-proto x-forwarded-host x-forwarded-port",
    )
    port = free_port()
    config = http_proxy(port, f"http://unix:{path}:", X_FORWARDED_LOCATION).replace(
        f"proxy_bind {PROXY};", ""
    )
    nginx.start(http=config, ports=(port,))
    report = through(port, get(host="example.test"))
    assert addressing(report) == {
        "REMOTE_ADDR": THROUGH_PROXY,
        "REMOTE_PORT": None,
        "HTTP_HOST": f"example.test:{port}",
        "SERVER_NAME": "example.test",
        "SERVER_PORT": str(port),
        "wsgi.url_scheme": "https",
    }


# -- the PROXY protocol (nginx's stream module) ---------------------------------------------------


def stream_proxy(listen_port: int, upstream: str, bind: bool = True) -> str:
    return f"""
    server {{
        listen 127.0.0.1:{listen_port};
        proxy_pass {upstream};
        proxy_protocol on;
        {f"proxy_bind {PROXY};" if bind else ""}
    }}
"""


@pytest.mark.parametrize("mode", ["v1", "auto"])
def test_proxy_protocol_v1(start_server: Any, nginx_stream: Nginx, mode: str):
    app = EchoApp()
    server = start_server(app, trusted_proxy=PROXY, proxy_protocol=mode)
    port = free_port()
    nginx_stream.start(stream=stream_proxy(port, f"127.0.0.1:{server.address[1]}"), ports=(port,))
    with ConnectionFrom(THROUGH_PROXY, ("127.0.0.1", port)) as conn:
        for path in ("/first", "/second"):  # one PROXY header names the client of the connection
            conn.send(get(path, host="example.test", headers=FORGED))
            report = seen(conn.read_response())
            assert addressing(report) == {
                "REMOTE_ADDR": THROUGH_PROXY,
                "REMOTE_PORT": str(conn.local_port),
                "HTTP_HOST": "example.test",
                "SERVER_NAME": "waitress.invalid",
                "SERVER_PORT": str(server.address[1]),
                "wsgi.url_scheme": "http",
            }
            # nginx relays bytes in stream mode: the client's headers are untrusted.
            assert not FORWARDING_KEYS & set(report)
    assert_direct_is_unchanged(server.address)
    # A direct client that writes its own PROXY header is cut off.
    with ConnectionFrom(DIRECT, server.address) as conn:
        conn.send(ppv2.v1("6.6.6.6", "127.0.0.1", 1, server.address[1]) + get())
        assert conn.read_all() == b""
    assert all(call["REMOTE_ADDR"] != "6.6.6.6" for call in app.calls)


def test_nginx_sends_v1_only(start_server: Any, nginx_stream: Nginx):
    # nginx has no setting for version 2; a server that requires v2 refuses its header.
    # (Version 2 from a trusted peer is tested with hand-built headers in test_server_proxy.)
    app = EchoApp()
    server = start_server(app, trusted_proxy=PROXY, proxy_protocol="v2")
    port = free_port()
    nginx_stream.start(stream=stream_proxy(port, f"127.0.0.1:{server.address[1]}"), ports=(port,))
    with ConnectionFrom(THROUGH_PROXY, ("127.0.0.1", port)) as conn:
        conn.send(get())
        assert conn.read_all() == b""
    assert app.calls == []


def test_proxy_protocol_over_a_unix_socket(start_server: Any, nginx_stream: Nginx, tmp_path: Path):
    app = EchoApp()
    path = tmp_path / "app.sock"
    start_server(app, unix_socket=str(path), trusted_proxy="localhost", proxy_protocol="v1")
    port = free_port()
    nginx_stream.start(stream=stream_proxy(port, f"unix:{path}", bind=False), ports=(port,))
    with ConnectionFrom(THROUGH_PROXY, ("127.0.0.1", port)) as conn:
        conn.send(get())
        report = seen(conn.read_response())
    assert (report["REMOTE_ADDR"], report["REMOTE_PORT"]) == (THROUGH_PROXY, str(conn.local_port))


def test_proxy_protocol_from_an_untrusted_nginx_closes(start_server: Any, nginx_stream: Nginx):
    # nginx connects from 127.0.0.1 here, which is not trusted: its header is refused.
    app = EchoApp()
    server = start_server(app, trusted_proxy=PROXY, proxy_protocol="auto")
    port = free_port()
    nginx_stream.start(stream=stream_proxy(port, f"127.0.0.1:{server.address[1]}", bind=False), ports=(port,))
    with ConnectionFrom(THROUGH_PROXY, ("127.0.0.1", port)) as conn:
        conn.send(get())
        assert conn.read_all() == b""
    assert app.calls == []


def test_free_port_helper_gives_a_bindable_port():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
