"""One server-side TLS connection on a non-blocking socket, through memory BIOs.

:class:`TLSStream` lets a channel treat a TLS connection much like its plain socket:
``recv`` returns plaintext, ``send``/``sendmsg`` take plaintext, and both raise
``BlockingIOError`` when they would block, so the output pipe's loop works unchanged. The
bytes on the wire stay plain socket I/O, which is why this uses ``ssl.MemoryBIO`` rather
than ``SSLContext.wrap_socket``:

* ``recv`` reads the socket once and returns everything that decrypts, so no plaintext is
  left inside OpenSSL where the selector cannot see it (``SSLSocket.pending()``'s trap);
* ``send`` encrypts :data:`PLAINTEXT_BLOCK_BYTES` at a time and sends the records for as
  long as the socket takes them, and returns the plaintext it took; the records the
  socket did not take wait in :attr:`TLSStream.wants_write`, sent by
  :meth:`TLSStream.flush`. While records wait, ``send`` takes nothing more:
  back-pressure is the same as on a plain socket, with at most one block of records
  buffered per connection. (``SSLSocket.send`` instead sends a whole buffer or raises,
  and must be retried with the same bytes.)
* bytes received before the handshake (after a PROXY protocol header, say) are simply
  fed in.

There is no ``sendfile`` through TLS, nor ``TCP_NOTSENT_LOWAT`` pacing (the kernel would
count records, not the plaintext the output pipe tracks): file ranges are read and sent
as bytes (see :mod:`waitress_like.buffers`).

Loop thread only; nothing here blocks or sleeps.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from typing import Optional, Union

from .tls import ServerTLS
from .tlsinfo import TLSConnectionInfo, looks_like_plaintext_http

__all__ = ["PLAINTEXT_BLOCK_BYTES", "PlainHTTPOnTLSPort", "TLSStream"]

#: Plaintext encrypted per ``send``: four full TLS records (16 KiB each, RFC 8446 5.1).
PLAINTEXT_BLOCK_BYTES = 4 * 16384

# Ciphertext read from the socket per recv during the handshake.
_HANDSHAKE_RECV_BYTES = 16384

Buffer = Union[bytes, bytearray, memoryview]


class PlainHTTPOnTLSPort(Exception):
    """The client started with plain HTTP: answer it 400 in plain text and close."""


class TLSStream:
    """A server-side TLS connection over ``sock`` (non-blocking, already accepted).

    Call :meth:`handshake` whenever the socket is readable (or writable while
    :attr:`wants_write`) until it returns True; then :attr:`info` is set and
    :meth:`recv`, :meth:`send` and :meth:`sendmsg` carry the application's bytes. Keep
    write interest while :attr:`wants_write`. Errors are ``ssl.SSLError`` (an ``OSError``)
    or the socket's own ``OSError``; both mean the connection is lost.
    """

    __slots__ = ("_sock", "_server", "_incoming", "_outgoing", "_object", "_records", "_received", "info")

    def __init__(self, sock: socket.socket, server: ServerTLS, received: bytes = b"") -> None:
        """``received`` holds bytes already read from ``sock`` (after a PROXY header);
        :meth:`handshake` takes them first."""
        self._sock = sock
        self._server = server
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._object = server.wrap_bio(self._incoming, self._outgoing)
        self._records = memoryview(b"")  # encrypted bytes the socket has not taken yet
        self._received: Optional[bytes] = received  # None once the first byte was checked
        self.info: Optional[TLSConnectionInfo] = None

    @property
    def wants_write(self) -> bool:
        """Encrypted bytes are waiting for the socket to become writable."""
        return bool(self._records)

    @property
    def unsent_bytes(self) -> int:
        """How many encrypted bytes wait for the socket (0 when none do)."""
        return len(self._records)

    def fileno(self) -> int:
        return self._sock.fileno()

    # -- handshake -------------------------------------------------------------------------

    def handshake(self) -> bool:
        """Advance the handshake as far as it goes; True once it is complete.

        Raises :class:`PlainHTTPOnTLSPort` when the first byte is plain HTTP,
        ``ConnectionResetError`` when the client closed, ``ssl.SSLError`` when the
        handshake failed (bad version, no shared cipher, a refused client certificate).
        """
        if self.info is not None:
            return True
        data = self._received
        if not data:
            try:
                data = self._sock.recv(_HANDSHAKE_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                data = None
            if data == b"":
                raise ConnectionResetError("the client closed the connection during the TLS handshake")
        if data:
            if self._received is not None and looks_like_plaintext_http(data):
                raise PlainHTTPOnTLSPort(data)
            self._received = None
            self._incoming.write(data)
        try:
            self._object.do_handshake()
        except ssl.SSLWantReadError:
            self._queue_records()
            return False
        except ssl.SSLError:
            self._send_alert()
            raise
        self._queue_records()
        self.info = self._server.connection_info(self._object)
        return True

    def _send_alert(self) -> None:
        """Best effort: the alert OpenSSL queued for a failed handshake (protocol_version,
        handshake_failure...) tells the client why, instead of a bare close."""
        try:
            self._queue_records()
        except OSError:
            pass

    # -- reading -------------------------------------------------------------------------------

    def recv(self, size: int) -> bytes:
        """Plaintext: what is already decrypted or buffered, else what decrypts after one
        read of the socket (up to ``size`` bytes); ``b""`` at the end of the stream
        (close_notify or a closed socket).

        Call it as soon as :meth:`handshake` returns True: the client's first request may
        have come with its last handshake message. Raises ``BlockingIOError`` when no
        whole record has arrived yet.
        """
        plaintext = self._decrypt()
        if plaintext is None:
            data = self._sock.recv(size)
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()
            plaintext = self._decrypt()
        if plaintext is None:
            raise BlockingIOError("no complete TLS record yet")
        return plaintext

    def _decrypt(self) -> Optional[bytes]:
        """All the plaintext the buffered records hold, b"" at the end, None for none."""
        chunks = []
        ended = False
        while True:
            try:
                chunk = self._object.read(PLAINTEXT_BLOCK_BYTES)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                ended = True  # close_notify, or a plain close (common, and harmless for HTTP)
                break
            if not chunk:
                ended = True
                break
            chunks.append(chunk)
        self._queue_records()  # TLS 1.3 may answer (a KeyUpdate)
        if chunks:
            return b"".join(chunks)
        return b"" if ended else None

    # -- writing -------------------------------------------------------------------------------

    def send(self, data: Buffer) -> int:
        """Encrypt ``data`` a block (:data:`PLAINTEXT_BLOCK_BYTES`) at a time while the
        socket takes the records; return how many bytes of it were taken (at least one
        block unless ``data`` is empty). Raises ``BlockingIOError`` while earlier records
        still wait, as a full socket does."""
        if self._records and not self.flush():
            raise BlockingIOError("earlier TLS records are still being sent")
        view = memoryview(data).cast("B")
        total = len(view)
        taken = 0
        while taken < total and not self._records:
            taken += self._object.write(view[taken : taken + PLAINTEXT_BLOCK_BYTES])
            self._queue_records()
        return taken

    def sendmsg(self, buffers: Sequence[Buffer]) -> int:
        """As :meth:`send`, for the leading buffers joined (up to one block): a response
        head and a small body go out in one record."""
        joined = bytearray()
        for buffer in buffers:
            joined += memoryview(buffer)[: PLAINTEXT_BLOCK_BYTES - len(joined)]
            if len(joined) >= PLAINTEXT_BLOCK_BYTES:
                break
        return self.send(joined)

    def flush(self) -> bool:
        """Send waiting records as far as the socket takes them; True when none wait."""
        while self._records:
            try:
                sent = self._sock.send(self._records)
            except (BlockingIOError, InterruptedError):
                return False
            self._records = self._records[sent:]
        return True

    def _queue_records(self) -> None:
        produced = self._outgoing.read()
        if produced:
            self._records = (
                memoryview(bytes(self._records) + produced) if self._records else memoryview(produced)
            )
        self.flush()

    # -- closing -------------------------------------------------------------------------------

    def close_notify(self) -> bool:
        """Queue a close_notify alert and try to send it; True when nothing waits.

        The client's own close_notify is not waited for (RFC 8446 6.1 allows this), so
        the channel may shut the socket down as soon as this returns True.
        """
        try:
            self._object.unwrap()
        except ssl.SSLWantReadError:
            pass  # ours is queued; theirs is not awaited
        except (ssl.SSLError, ValueError):
            pass  # the handshake never finished: nothing to close
        self._queue_records()
        return not self._records
