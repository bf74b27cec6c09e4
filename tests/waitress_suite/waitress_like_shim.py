"""A pytest plugin that points waitress's functional suite at waitress_like.

Loaded by the gate (:mod:`tests.waitress_suite.test_waitress_functional`) into a child
pytest that runs ``tests/test_functional.py`` from the pinned waitress sdist. It changes
exactly three things and nothing else in the suite:

1. **Which server is started.** The suite's fixture server classes
   (``FixtureTcpWSGIServer``, ``FixtureUnixWSGIServer``) subclass waitress's servers; the
   test base classes find them through a ``server`` class attribute, which this plugin
   points at :class:`TcpServerUnderTest` and :class:`UnixServerUnderTest`. Those build a
   waitress_like server with :func:`waitress_like.create_server` on the same address the
   originals use, report it through the same queue, and serve with ``run()``.
2. **``ident="waitress"``**, because the tests check the ``Server`` header.
3. **A ``Host`` field in HTTP/1.1 requests that lack one.** waitress_like refuses such
   requests with 400 (RFC 9112 section 3.2: a server MUST); waitress serves them. The
   sockets the tests create add ``Host: localhost`` after the request line of an
   HTTP/1.1 request head sent without one. ``http.client`` and ``urllib`` add the field
   themselves, so only raw-socket requests are touched.

The plugin is loaded as a top-level module (the child's ``tests`` package is waitress's),
so it imports nothing from this repository's ``tests`` package.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from typing import Any

from waitress_like import create_server

SUITE_MODULE = "tests.test_functional"
IDENT = "waitress"
HOST_FIELD = b"Host: localhost\r\n"

# An HTTP/1.1 request line at the start of what one send() call carries (RFC 9112 3).
_HTTP11_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [^ \r\n]+ HTTP/1\.1\r\n")
_HOST_LINE = re.compile(rb"\r\nhost[ \t]*:", re.IGNORECASE)


def add_host_field(data: bytes) -> bytes:
    """``data`` with a ``Host`` field after its request line, if it begins an HTTP/1.1
    request head that has none; otherwise ``data`` unchanged.

    Works on one ``send()`` worth of bytes: the suite sends each request head whole (its
    pipelined batches are HTTP/1.0), and body pieces sent later never start with a request
    line.
    """
    match = _HTTP11_REQUEST_LINE.match(data)
    if match is None:
        return data
    end_of_head = data.find(b"\r\n\r\n")
    head = data if end_of_head < 0 else data[: end_of_head + 2]
    if _HOST_LINE.search(head, match.end() - 2):
        return data
    return data[: match.end()] + HOST_FIELD + data[match.end() :]


class HostAddingSocket(socket.socket):
    """A client socket whose ``send``/``sendall`` apply :func:`add_host_field`."""

    def send(self, data: Any, flags: int = 0) -> int:
        return super().send(add_host_field(bytes(data)), flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        super().sendall(add_host_field(bytes(data)), flags)


def _create_socket(test: Any) -> socket.socket:
    return HostAddingSocket(test.server.family, socket.SOCK_STREAM)


class _ServerUnderTest:
    """Constructed in the suite's forked server process as ``server(app, queue, **kw)``."""

    family: int

    def __init__(self, application: Any, queue: Any, **settings: Any) -> None:
        # waitress's start_server silences the "waitress" logger; ours has its own name.
        logging.getLogger("waitress_like").addHandler(logging.NullHandler())
        self.server = create_server(application, ident=IDENT, **self.address_settings(), **settings)
        queue.put(self.bound_to())

    def address_settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def bound_to(self) -> Any:
        return self.server.addresses[0]

    def run(self) -> None:
        self.server.run()


class TcpServerUnderTest(_ServerUnderTest):
    """The suite's ``FixtureTcpWSGIServer``: IPv4 loopback, any free port."""

    family = socket.AF_INET

    def address_settings(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": 0}

    def bound_to(self) -> Any:
        host, port = self.server.addresses[0][:2]
        return host, port


class UnixServerUnderTest(_ServerUnderTest):
    """The suite's ``FixtureUnixWSGIServer``: a unix socket named after the process."""

    family = getattr(socket, "AF_UNIX", -1)

    def address_settings(self) -> dict[str, Any]:
        return {"unix_socket": "/tmp/waitress.test-%d.sock" % os.getpid()}


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """Once the suite is imported: swap its servers and its client sockets for ours."""
    suite = sys.modules[SUITE_MODULE]
    suite.TcpTests.server = TcpServerUnderTest
    if hasattr(suite, "UnixTests"):
        suite.UnixTests.server = UnixServerUnderTest
    suite.SubprocessTests.create_socket = _create_socket
    ours = (TcpServerUnderTest, UnixServerUnderTest)
    for item in items:
        server = getattr(item.cls, "server", None)
        if server is not None and server not in ours:
            raise RuntimeError(f"{item.nodeid} would start {server.__name__}, not waitress_like")
