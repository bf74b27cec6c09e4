"""Loopback addresses for the proxy tests, and a client that connects from a chosen one.

On Linux all of 127.0.0.0/8 reaches this machine, so three "hosts" can be told apart by
address: direct clients come from 127.0.0.1, the proxy (nginx, or a test acting as one)
from 127.0.0.2, and clients talking through nginx from 127.0.0.3. The server trusts only
127.0.0.2.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from ..httpclient import Connection

DIRECT = "127.0.0.1"
PROXY = "127.0.0.2"
THROUGH_PROXY = "127.0.0.3"


def _can_bind(host: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, 0))
        except OSError:
            return False
    return True


requires_loopback_aliases = pytest.mark.skipif(
    not (_can_bind(PROXY) and _can_bind(THROUGH_PROXY)),
    reason="needs 127.0.0.2 and 127.0.0.3 to be local addresses (Linux loopback)",
)


class ConnectionFrom(Connection):
    """A :class:`~tests.httpclient.Connection` whose socket is bound to ``source_host``."""

    def __init__(self, source_host: str, address: Any, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.bind((source_host, 0))
            self.sock.connect(address)
            self.local_port = int(self.sock.getsockname()[1])
        except BaseException:
            self.sock.close()
            raise
        self.buffer = bytearray()


def get(path: str = "/", host: str = "example.test", headers: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: {host}\r\n{headers}\r\n".encode("latin-1")


def seen(response: Any) -> dict[str, Any]:
    """What the EchoApp reported, for an answered request."""
    assert response.status == 200, response
    report: dict[str, Any] = json.loads(response.body)
    return report


ADDRESSING = ("REMOTE_ADDR", "REMOTE_PORT", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "wsgi.url_scheme")


def addressing(report: dict[str, Any]) -> dict[str, Any]:
    """The part of the environ a proxy may change."""
    return {key: report.get(key) for key in ADDRESSING}
