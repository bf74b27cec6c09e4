"""The sans-I/O HTTP/1.x request parser: bytes in, events out.

Usage, by the one thread that owns the connection::

    parser = RequestParser(ParserLimits(max_header_bytes=..., max_body_bytes=...))
    parser.feed(received_bytes)
    while (event := parser.next_event()) is not None:
        ...   # RequestHead, then BodyChunk*, then EndOfRequest, per request

The parser never does I/O, never blocks and never reads settings; it is not thread-safe.
Every input is handled in time linear in the bytes received, however they are split.
"""

from __future__ import annotations

import enum
import re
from typing import Union

from ..errors import RemoteProtocolError
from .body import END_OF_REQUEST, ChunkedReader, ContentLengthReader
from .events import BodyChunk, EndOfRequest, RequestHead
from .head import TCHAR_BYTES, diagnose_head, parse_head, parse_request_line, scan_for_bare_line_break
from .limits import ParserLimits

__all__ = ["ParserState", "RequestParser"]

RequestEvent = Union[RequestHead, BodyChunk, EndOfRequest]

_LEADING_EMPTY_LINES_RE = re.compile(rb"(?:\r\n)*")

# Heads already parsed, by their exact bytes, for each ParserLimits in use: a client on a
# keep-alive connection (a load balancer's probe, an API client, a poller, a load
# generator) often sends the same head again and again, and a RequestHead is immutable,
# so the same one can be returned. Only short heads are kept, a bounded number per limits
# object and for a bounded number of limits objects; each bound, once reached, empties
# its cache, which costs nothing but the next heads' parsing. Bad heads are never kept.
_CACHED_HEAD_MAX_BYTES = 1024
_CACHED_HEADS_PER_LIMITS = 256
_CACHED_LIMITS = 16
# id(limits) -> (limits, its heads); the limits object is kept so its id stays its own.
_HEAD_CACHES: dict[int, tuple[ParserLimits, dict[bytes, RequestHead]]] = {}


def _head_cache(limits: ParserLimits) -> dict[bytes, RequestHead]:
    """The cache of parsed heads shared by every parser using ``limits``."""
    entry = _HEAD_CACHES.get(id(limits))
    if entry is None or entry[0] is not limits:
        if len(_HEAD_CACHES) >= _CACHED_LIMITS:
            _HEAD_CACHES.clear()
        entry = _HEAD_CACHES[id(limits)] = (limits, {})
    return entry[1]


class ParserState(enum.Enum):
    """Where the parser is in the request stream; updated by ``next_event`` only."""

    IDLE = "IDLE"  # between requests: nothing of the next one seen (blank lines aside)
    HEAD = "HEAD"  # part of a request head is buffered
    BODY = "BODY"  # the head was returned; body events and EndOfRequest come next
    DONE = "DONE"  # the last request asked to close: later bytes are discarded
    ERROR = "ERROR"  # bad input was reported: no more events, ever


_IDLE = ParserState.IDLE
_HEAD = ParserState.HEAD
_BODY = ParserState.BODY
_DONE = ParserState.DONE
_ERROR = ParserState.ERROR


class RequestParser:
    """Turns the bytes of one connection into request events (RFC 9112).

    ``feed`` appends bytes and never raises. ``next_event`` returns the next event, or None
    when it needs more bytes or the connection can carry no more requests (``state`` is
    ``DONE``). It raises :class:`~waitress_like.errors.RemoteProtocolError` (with
    ``status_hint``) on bad input; the parser is then in ``ERROR`` and every later call
    raises again. Pipelined requests are parsed one after another from the buffered bytes;
    after a request with ``keep_alive`` False nothing more is parsed, ever.

    The error for given bytes does not depend on how they were split across ``feed`` calls
    (see :mod:`waitress_like.protocol.head`).
    """

    __slots__ = (
        "state",
        "_limits",
        "_buffer",
        "_reader",
        "_keep_alive",
        "_error",
        "_skipped_bytes",
        "_head_scan_from",
        "_bare_scan_from",
        "_line_scan_from",
        "_line_checked",
        "_head_scanned",
        "_heads",
    )

    def __init__(self, limits: ParserLimits) -> None:
        self.state = _IDLE
        self._limits = limits
        self._buffer = bytearray()
        self._reader: ContentLengthReader | ChunkedReader | None = None
        self._keep_alive = True
        self._error: RemoteProtocolError | None = None
        self._heads = _head_cache(limits)
        self._reset_head_scan()

    def _reset_head_scan(self) -> None:
        # Per-head progress of the incremental checks, so each byte is scanned a bounded
        # number of times however the head is split (see _check_partial_head).
        self._head_scanned = False  # any of the below may differ from its initial value
        self._skipped_bytes = 0  # empty lines skipped before the request line
        self._head_scan_from = 0  # where to resume looking for CRLF CRLF
        self._bare_scan_from = 0  # where to resume looking for a bare CR or LF
        self._line_scan_from = 0  # where to resume looking for the request line's CRLF
        self._line_checked = False  # the request line was complete and valid

    def feed(self, data: bytes) -> None:
        """Append received bytes. Ignored once the state is DONE or ERROR."""
        if self.state is _DONE or self.state is _ERROR:
            return
        self._buffer += data

    def buffered_byte_count(self) -> int:
        """Bytes fed but not yet consumed by an event."""
        return len(self._buffer)

    def take_unparsed_bytes(self) -> bytes:
        """Hand over the bytes fed but not consumed by an event, and stop parsing.

        For a connection that switches protocols after a head (RFC 9110 7.8: a WebSocket
        upgrade): what follows the head belongs to the new protocol. Afterwards the
        state is DONE, so later ``feed`` calls are ignored and ``next_event`` returns None.
        """
        data = bytes(self._buffer)
        self._buffer = bytearray()
        self._reader = None
        self.state = _DONE
        return data

    def next_event(self) -> RequestEvent | None:
        """The next event, or None if more bytes are needed (or the state is DONE)."""
        state = self.state
        try:
            if state is _BODY:
                return self._next_body_event()
            if state is _IDLE or state is _HEAD:
                return self._next_head()
        except RemoteProtocolError as error:
            self.state = _ERROR
            self._error = error
            self._buffer = bytearray()
            raise
        if state is _ERROR:
            assert self._error is not None
            raise RemoteProtocolError(str(self._error), self._error.status_hint)
        return None

    # -- body ------------------------------------------------------------------------------

    def _next_body_event(self) -> BodyChunk | EndOfRequest | None:
        reader = self._reader
        if reader is None:
            event: BodyChunk | EndOfRequest | None = END_OF_REQUEST
        else:
            event = reader.read(self._buffer)
            if event is None or type(event) is BodyChunk:
                return event
        self._reader = None
        if self._keep_alive:
            self.state = _IDLE
        else:
            # RFC 9112 9.6: nothing after a request that closes may be treated as a request.
            self.state = _DONE
            self._buffer = bytearray()
        return event

    # -- head ------------------------------------------------------------------------------

    def _next_head(self) -> RequestHead | None:
        buffer = self._buffer
        if not buffer:
            return None
        if self.state is _IDLE:
            first = buffer[0]
            if (first == 13 or first == 10) and not self._skip_empty_lines(buffer):
                return None
            self.state = _HEAD
        limits = self._limits
        end = buffer.find(b"\r\n\r\n", self._head_scan_from)
        if end < 0:
            self._check_partial_head(buffer)
            return None
        length = end + 4
        head_limit = limits.max_header_bytes - self._skipped_bytes
        if length > head_limit:
            raise diagnose_head(buffer, length, complete=True, head_limit=head_limit, limits=limits)
        if length <= _CACHED_HEAD_MAX_BYTES:
            key = bytes(buffer[:end])
            head = self._heads.get(key)
            if head is None:
                head = self._parse_head(key, length, head_limit)
                heads = self._heads
                if len(heads) >= _CACHED_HEADS_PER_LIMITS:
                    heads.clear()
                heads[key] = head
        else:
            head = self._parse_head(buffer[:end], length, head_limit)
        del buffer[:length]
        if self._head_scanned:
            self._reset_head_scan()
        if head.chunked:
            self._reader = ChunkedReader(limits)
        elif head.content_length:
            self._reader = ContentLengthReader(head.content_length)
        else:
            self._reader = None
        self._keep_alive = head.keep_alive
        self.state = _BODY
        return head

    def _parse_head(self, data: bytes | bytearray, length: int, head_limit: int) -> RequestHead:
        """Parse the complete head ``data`` (without its final CRLF CRLF), or raise the
        error a byte-at-a-time reader would have raised first."""
        limits = self._limits
        try:
            return parse_head(data.decode("latin-1"), limits)
        except RemoteProtocolError:
            raise diagnose_head(
                self._buffer, length, complete=True, head_limit=head_limit, limits=limits
            ) from None

    def _skip_empty_lines(self, buffer: bytearray) -> bool:
        """RFC 9112 2.2: skip CRLFs before a request line; False if more bytes are needed.

        They count against ``max_header_bytes``, or a client could send them forever.
        """
        skipped = _LEADING_EMPTY_LINES_RE.match(buffer).end()  # type: ignore[union-attr]
        if skipped:
            self._head_scanned = True
            del buffer[:skipped]
            self._skipped_bytes += skipped
            if self._skipped_bytes >= self._limits.max_header_bytes:
                raise RemoteProtocolError(
                    f"request head larger than {self._limits.max_header_bytes} bytes", 431
                )
        if not buffer:
            return False
        first = buffer[0]
        if first == 10:
            raise RemoteProtocolError("bare LF (line ends must be CRLF)")
        if first == 13:
            if len(buffer) == 1:
                return False  # its LF may still come
            raise RemoteProtocolError("bare CR")
        return True

    def _check_partial_head(self, buffer: bytearray) -> None:
        """Raise if the incomplete head in ``buffer`` is already certain to be bad.

        Checks exactly the errors :func:`diagnose_head` can detect before the end of a
        head, each over only the bytes not looked at before, so the error for a given
        input is the same for every split and the work stays linear.
        """
        limits = self._limits
        length = len(buffer)
        self._head_scanned = True
        failed = buffer[0] not in TCHAR_BYTES
        if not failed:
            self._bare_scan_from = scan_for_bare_line_break(buffer, self._bare_scan_from)
            failed = self._bare_scan_from < 0
        if not failed and not self._line_checked:
            line_limit = limits.max_request_line_bytes
            line_end = buffer.find(b"\r\n", self._line_scan_from, line_limit + 2)
            if line_end >= 0:
                try:
                    parse_request_line(buffer[:line_end].decode("latin-1"), limits)
                    self._line_checked = True
                except RemoteProtocolError:
                    failed = True
            elif length >= line_limit + 2:
                failed = True
            else:
                self._line_scan_from = max(0, length - 1)
        head_limit = limits.max_header_bytes - self._skipped_bytes
        if failed or length >= head_limit:
            raise diagnose_head(buffer, length, complete=False, head_limit=head_limit, limits=limits)
        self._head_scan_from = max(0, length - 3)
