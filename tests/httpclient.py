"""A deliberately small raw-HTTP client for the functional tests.

It writes exactly the bytes a test gives and parses responses itself, so the tests see
what the server really sent (no client library normalising it away). An address with an
``ssl_context`` attribute (``tests.conftest.TLSAddress``) is spoken to over TLS.
"""

from __future__ import annotations

import socket
from typing import Optional


class Response:
    """One parsed response: ``status`` (int), ``reason``, ``version``, ``headers``
    (list of (name, value) as sent), ``body`` (de-chunked bytes), ``raw_head``."""

    def __init__(self, version: str, status: int, reason: str, headers: list[tuple[str, str]], body: bytes):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        values = self.header_list(name)
        return ", ".join(values) if values else None

    def header_list(self, name: str) -> list[str]:
        lowered = name.lower()
        return [v for k, v in self.headers if k.lower() == lowered]

    @property
    def closes(self) -> bool:
        return "close" in (self.header("Connection") or "").lower()

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers!r} {self.body[:80]!r}>"


class Connection:
    """A client socket with a read buffer, so pipelined responses can be read one by one."""

    def __init__(self, address, family: int = socket.AF_INET, timeout: float = 10.0):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        context = getattr(address, "ssl_context", None)
        if context is not None:  # an HTTPS server (tests.conftest.TLSAddress)
            self.sock = context.wrap_socket(self.sock, server_hostname=address.server_hostname)
        self.buffer = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buffer += data
        return True

    def _read_line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                break
            if not self._fill():
                raise EOFError("connection closed while reading a line")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def _read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError(f"connection closed with {len(self.buffer)} of {size} bytes")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_response(self, method: str = "GET") -> Response:
        """Read one response (skipping 1xx interim responses unless it is the only one)."""
        while True:
            response = self._read_one(method)
            if response.status >= 200 or response.status == 101:
                return response

    def read_interim_or_final(self, method: str = "GET") -> Response:
        return self._read_one(method)

    def _read_one(self, method: str) -> Response:
        status_line = self._read_line().decode("latin-1")
        version, status, reason = (status_line.split(" ", 2) + [""])[:3]
        headers = []
        while True:
            line = self._read_line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name, value.strip()))
        response = Response(version, int(status), reason, headers, b"")
        code = int(status)
        if method == "HEAD" or code < 200 or code in (204, 304):
            return response
        encoding = (response.header("Transfer-Encoding") or "").lower()
        if "chunked" in encoding:
            chunks = []
            while True:
                size = int(self._read_line().split(b";")[0], 16)
                if size == 0:
                    while self._read_line():
                        pass
                    break
                chunks.append(self._read_exact(size))
                if self._read_exact(2) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
            response.body = b"".join(chunks)
        elif response.header("Content-Length") is not None:
            response.body = self._read_exact(int(response.header("Content-Length")))
        else:
            while self._fill():
                pass
            response.body, self.buffer = bytes(self.buffer), bytearray()
        return response

    def is_closed_by_peer(self) -> bool:
        """True if the server has closed: EOF (or reset) with nothing more to read."""
        if self.buffer:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def read_all(self) -> bytes:
        while True:
            try:
                if not self._fill():
                    break
            except ConnectionResetError:
                break
        data, self.buffer = bytes(self.buffer), bytearray()
        return data


def request(address, raw: bytes, method: str = "GET", family: int = socket.AF_INET) -> Response:
    """Open a connection, send ``raw``, read one response, close."""
    with Connection(address, family) as conn:
        conn.send(raw)
        return conn.read_response(method)
