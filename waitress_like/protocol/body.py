"""Body readers: a fixed Content-Length, and the chunked transfer coding (RFC 9112 6, 7.1).

A reader is created by the parser for one request and consumes bytes from the front of the
parser's shared ``bytearray`` (deleting a prefix of a bytearray is cheap in CPython, it
only moves the start offset). ``read`` returns the next event, or None when it needs more
bytes, and raises :class:`~waitress_like.errors.RemoteProtocolError` on bad input.
"""

from __future__ import annotations

import enum
import re

from ..errors import RemoteProtocolError
from .events import BodyChunk, EndOfRequest
from .grammar import QUOTED_STRING_BYTES, TOKEN_BYTES
from .head import diagnose_trailers, parse_trailer_block, scan_for_bare_line_break
from .limits import ParserLimits

__all__ = ["ContentLengthReader", "ChunkedReader", "END_OF_REQUEST"]

# Events are never mutated, so the common trailer-less end can be one shared object.
END_OF_REQUEST = EndOfRequest(())

_TOKEN = TOKEN_BYTES
_QUOTED_STRING = QUOTED_STRING_BYTES
# chunk-size [ chunk-ext ], chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ).
# At most 16 hex digits: enough for any size a 64-bit peer can mean, and int() stays cheap.
_CHUNK_LINE_RE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED_STRING + rb"))?)*"
)


def take_bytes(buffer: bytearray, count: int) -> bytes:
    """Remove and return the first ``count`` bytes of ``buffer`` (all if it holds fewer)."""
    if count >= len(buffer):
        data = bytes(buffer)
        del buffer[:]
        return data
    with memoryview(buffer) as view:  # one copy, not a bytearray slice and then bytes()
        data = bytes(view[:count])
    del buffer[:count]
    return data


class ContentLengthReader:
    """Reads exactly ``remaining`` body bytes (``remaining`` > 0)."""

    __slots__ = ("remaining",)

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def read(self, buffer: bytearray) -> BodyChunk | EndOfRequest | None:
        if not self.remaining:
            return END_OF_REQUEST
        if not buffer:
            return None
        data = take_bytes(buffer, self.remaining)
        self.remaining -= len(data)
        return BodyChunk(data)


class _Step(enum.Enum):
    SIZE_LINE = "chunk-size line"
    DATA = "chunk data"
    DATA_END = "CRLF after chunk data"
    TRAILERS = "trailer section"
    FINISHED = "finished"


class ChunkedReader:
    """Decodes a chunked body (RFC 9112 7.1), trailers included.

    Errors: 400 for a malformed chunk-size line (also one longer than
    ``max_chunk_line_bytes``), for chunk data not followed by CRLF and for bad trailers;
    413 as soon as a chunk-size line would take the decoded body over ``max_body_bytes``;
    431 for a trailer section over ``max_header_bytes`` (or too many / too long fields).
    """

    __slots__ = ("_limits", "_step", "_chunk_remaining", "_body_bytes", "_scan_from", "_bare_scan_from")

    def __init__(self, limits: ParserLimits) -> None:
        self._limits = limits
        self._step = _Step.SIZE_LINE
        self._chunk_remaining = 0
        self._body_bytes = 0
        # Where the search for a line or section end resumes, so that bytes arriving one at
        # a time are each looked at a bounded number of times.
        self._scan_from = 0
        self._bare_scan_from = 0

    def read(self, buffer: bytearray) -> BodyChunk | EndOfRequest | None:
        while True:
            step = self._step
            if step is _Step.DATA:
                return self._read_data(buffer)
            if step is _Step.SIZE_LINE:
                if not self._read_size_line(buffer):
                    return None
            elif step is _Step.DATA_END:
                if not self._read_data_end(buffer):
                    return None
            elif step is _Step.TRAILERS:
                return self._read_trailers(buffer)
            else:
                return None

    def _read_size_line(self, buffer: bytearray) -> bool:
        max_line = self._limits.max_chunk_line_bytes
        line_end = buffer.find(b"\r\n", self._scan_from)
        if line_end < 0:
            length = len(buffer)
            if length >= max_line + 2:
                raise RemoteProtocolError(f"chunk-size line longer than {max_line} bytes")
            # No CRLF from _scan_from on, so any LF there is bare, and so is any CR that
            # is not the last byte.
            if (
                buffer.find(b"\n", self._scan_from) >= 0
                or buffer.find(b"\r", self._scan_from, length - 1) >= 0
            ):
                raise RemoteProtocolError("bare CR or LF in a chunk-size line")
            self._scan_from = max(0, length - 1)
            return False
        if line_end > max_line:
            raise RemoteProtocolError(f"chunk-size line longer than {max_line} bytes")
        match = _CHUNK_LINE_RE.fullmatch(buffer, 0, line_end)
        if match is None:
            raise self._size_line_error(bytes(buffer[:line_end]))
        size = int(match.group(1), 16)
        del buffer[: line_end + 2]
        self._scan_from = 0
        if size == 0:
            self._step = _Step.TRAILERS
            return True
        if self._body_bytes + size > self._limits.max_body_bytes:
            # Refuse on the announcement: the bytes that would exceed the limit are coming.
            raise RemoteProtocolError(
                f"request body over the limit of {self._limits.max_body_bytes} bytes", 413
            )
        self._chunk_remaining = size
        self._step = _Step.DATA
        return True

    @staticmethod
    def _size_line_error(line: bytes) -> RemoteProtocolError:
        # The messages begin as waitress's do ("Invalid chunk size", "Invalid chunk
        # extension"), so that people and tests that know waitress recognise them.
        if b"\r" in line or b"\n" in line:
            return RemoteProtocolError("bare CR or LF in a chunk-size line")
        digits = len(line) - len(line.lstrip(b"0123456789ABCDEFabcdef"))
        if digits == 0:
            return RemoteProtocolError(
                "Invalid chunk size: the chunk-size line does not start with hex digits"
            )
        if digits > 16:
            return RemoteProtocolError("Invalid chunk size: more than 16 hex digits")
        if line[digits : digits + 1] not in (b";", b" ", b"\t"):
            return RemoteProtocolError(
                "Invalid chunk size: the hex digits are followed by neither ';' nor the line end"
            )
        return RemoteProtocolError("Invalid chunk extension")

    def _read_data(self, buffer: bytearray) -> BodyChunk | None:
        if not buffer:
            return None
        data = take_bytes(buffer, self._chunk_remaining)
        self._chunk_remaining -= len(data)
        self._body_bytes += len(data)
        if not self._chunk_remaining:
            self._step = _Step.DATA_END
        return BodyChunk(data)

    def _read_data_end(self, buffer: bytearray) -> bool:
        length = len(buffer)
        if not length:
            return False
        if buffer[0] != 13 or (length > 1 and buffer[1] != 10):
            raise RemoteProtocolError("Chunk not properly terminated: chunk data not followed by CRLF")
        if length == 1:
            return False
        del buffer[:2]
        self._step = _Step.SIZE_LINE
        return True

    def _read_trailers(self, buffer: bytearray) -> EndOfRequest | None:
        length = len(buffer)
        if length < 2:
            if length == 1 and buffer[0] == 10:
                raise RemoteProtocolError("bare LF (line ends must be CRLF)")
            return None
        if buffer[0] == 13 and buffer[1] == 10:
            # The common case: no trailer fields, the last-chunk line is followed by CRLF.
            del buffer[:2]
            self._step = _Step.FINISHED
            return END_OF_REQUEST
        limits = self._limits
        end = buffer.find(b"\r\n\r\n", self._scan_from)
        if end < 0:
            self._bare_scan_from = scan_for_bare_line_break(buffer, self._bare_scan_from)
            if self._bare_scan_from < 0 or length >= limits.max_header_bytes:
                raise diagnose_trailers(buffer, length, complete=False, limits=limits)
            self._scan_from = max(0, length - 3)
            return None
        section_length = end + 4
        if section_length > limits.max_header_bytes:
            raise diagnose_trailers(buffer, section_length, complete=True, limits=limits)
        try:
            trailers = parse_trailer_block(buffer[:end].decode("latin-1"), limits)
        except RemoteProtocolError:
            raise diagnose_trailers(buffer, section_length, complete=True, limits=limits) from None
        del buffer[:section_length]
        self._step = _Step.FINISHED
        return EndOfRequest(trailers)
