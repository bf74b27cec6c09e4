"""A TLS client and a server ``SSLObject`` joined by memory BIOs: real handshakes, no sockets.

Nothing runs by itself: :meth:`MemoryPair.handshake` moves the bytes each side wrote to
the other until both are done, so every test is deterministic and needs no server.
"""

from __future__ import annotations

import ssl
from typing import Optional

from waitress_like.tls import ServerTLS


class HandshakeFailed(Exception):
    """One side's handshake raised; ``side`` is ``"server"`` or ``"client"``."""

    def __init__(self, side: str, error: ssl.SSLError) -> None:
        super().__init__(f"{side}: {error}")
        self.side = side
        self.error = error


class MemoryPair:
    """One connection: ``server`` made by the server's context, ``client`` by the test's."""

    def __init__(
        self, server_tls: ServerTLS, client_context: ssl.SSLContext, hostname: str = "localhost"
    ) -> None:
        self._to_server, self._from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._to_client, self._from_client = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.server = server_tls.wrap_bio(self._to_server, self._from_server)
        self.client = client_context.wrap_bio(self._to_client, self._from_client, server_hostname=hostname)

    def first_client_bytes(self) -> bytes:
        """Start the client's handshake and return what it sends first (the ClientHello),
        without passing it on."""
        self._step("client", self.client)
        return self._from_client.read()

    def handshake(self, max_rounds: int = 20) -> None:
        """Run both handshakes to the end; raises :class:`HandshakeFailed`."""
        done = {"server": False, "client": False}
        for _ in range(max_rounds):
            for side, connection in (("client", self.client), ("server", self.server)):
                if not done[side]:
                    done[side] = self._step(side, connection)
            moved = self._move()
            if all(done.values()) and not moved:
                return
        raise AssertionError(f"handshake did not finish in {max_rounds} rounds: {done}")

    @staticmethod
    def _step(side: str, connection: ssl.SSLObject) -> bool:
        try:
            connection.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as error:
            raise HandshakeFailed(side, error) from error
        return True

    def _move(self) -> bool:
        to_server, to_client = self._from_client.read(), self._from_server.read()
        self._to_server.write(to_server)
        self._to_client.write(to_client)
        return bool(to_server or to_client)

    def client_sends(self, data: bytes) -> bytes:
        """The client writes ``data``; return what the server reads of it."""
        self.client.write(data)
        self._move()
        return self._read_all(self.server)

    def server_sends(self, data: bytes) -> bytes:
        """The server writes ``data``; return what the client reads of it."""
        self.server.write(data)
        self._move()
        return self._read_all(self.client)

    @staticmethod
    def _read_all(connection: ssl.SSLObject) -> bytes:
        received = b""
        while True:
            try:
                chunk: Optional[bytes] = connection.read(65536)
            except ssl.SSLWantReadError:
                return received
            if not chunk:
                return received
            received += chunk
