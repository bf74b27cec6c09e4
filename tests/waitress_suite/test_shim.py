"""The shim's one change to what the suite sends: a Host field for HTTP/1.1 heads."""

from __future__ import annotations

import socket

import pytest

from tests.waitress_suite.waitress_like_shim import HostAddingSocket, add_host_field


@pytest.mark.parametrize(
    "sent, expected",
    [
        (b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        (
            b"GET /x HTTP/1.1\r\nContent-Length: 1\r\n\r\nab",
            b"GET /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\nab",
        ),
        # A head that is not complete in this send still gets the field.
        (b"GET / HTTP/1.1\r\nX-A: 1\r\n", b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n"),
    ],
)
def test_http11_heads_without_host_get_one(sent: bytes, expected: bytes) -> None:
    assert add_host_field(sent) == expected


@pytest.mark.parametrize(
    "sent",
    [
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-A: 1\r\nhOsT : example\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",  # HTTP/1.0 does not need Host
        b"GET / HTTP/1.0\r\n Host: 0\r\n\r\n",
        b"20\r\nThis string has 32 characters.\r\n",  # a body piece sent on its own
        b"0\r\n\r\n",
        b"",
    ],
)
def test_everything_else_is_sent_unchanged(sent: bytes) -> None:
    assert add_host_field(sent) == sent


def test_a_host_in_the_body_does_not_count() -> None:
    sent = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n\r\nHost: x\r\n"
    assert add_host_field(sent).startswith(b"POST / HTTP/1.1\r\nHost: localhost\r\n")


def test_the_socket_sends_the_adapted_bytes() -> None:
    left, right = socket.socketpair()
    with left, right:
        client = HostAddingSocket(fileno=left.detach())
        with client:
            client.send(b"GET / HTTP/1.1\r\n\r\n")
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            client.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := right.recv(4096):
                received += chunk
    assert received == b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 2
