"""A TLS client driven by hand: an SSLObject whose records go over a blocking socket.

Nothing happens by itself, so a test decides exactly when the client sends each flight of
its handshake, and can stop half-way.
"""

from __future__ import annotations

import select
import socket
import ssl


class Client:
    """The client's end: an SSLObject whose records go over a blocking socket (5 s timeout)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        sock.settimeout(5)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.closed_cleanly = False

    def handshake(self) -> bool:
        try:
            self.tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        self.flush()
        return done

    def flush(self) -> None:
        self.sock.sendall(self.outgoing.read())

    def receive(self) -> None:
        data = self.sock.recv(1 << 20)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self.flush()

    def read_available(self) -> bytes:
        """The plaintext that decrypts now; sets :attr:`closed_cleanly` at close_notify."""
        received = b""
        while True:
            try:
                chunk = self.tls.read(1 << 20)
            except ssl.SSLWantReadError:
                return received
            if not chunk:
                self.closed_cleanly = True
                return received
            received += chunk

    def readable(self) -> bool:
        """True if the socket has bytes (or the end of the stream) to read now."""
        return bool(select.select([self.sock], [], [], 0)[0])
