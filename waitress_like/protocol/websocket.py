"""The sans-I/O WebSocket connection, server side (RFC 6455 5-7, RFC 7692 6-7).

Usage, by the one thread that owns the connection (after the handshake, see
:mod:`waitress_like.protocol.ws_handshake`)::

    connection = WebSocketConnection(max_size=16 * 1024 * 1024, deflate=upgrade.deflate)
    connection.receive_data(received_bytes)
    try:
        while (event := connection.next_event()) is not None:
            send(connection.reply_to(event))  # a Pong for a Ping, the answering Close
            ...                               # TextMessage, BytesMessage, Ping, Pong, Close
    except WebSocketProtocolError as error:
        if not connection.close_sent:
            send(connection.send_close(error.close_code, error.reason))
        ...  # then close the TCP connection
    send(connection.send_text("hello"))

Events (defined in :mod:`~waitress_like.protocol.ws_events`, re-exported here) are whole
messages (fragments are joined, compressed ones inflated, text checked as strict UTF-8)
and control frames. Bytes after a received Close are discarded. Once
``state`` is CLOSED, a server closes the TCP connection first (RFC 6455 7.1.1).

The object is not thread-safe and never does I/O. Received payloads are processed as
they arrive (unmasked, inflated, UTF-8 checked), so an error inside a large frame is
found without waiting for its end, and the work is linear in the bytes received however
they are split.
"""

from __future__ import annotations

import codecs
import enum
import struct
import zlib

from ..errors import LocalProtocolError
from .ws_deflate import DeflateParameters, MessageCompressor, MessageDecompressor
from .ws_events import (
    BytesMessage,
    Close,
    CloseCode,
    Ping,
    Pong,
    TextMessage,
    WebSocketEvent,
    WebSocketProtocolError,
    is_valid_close_code,
)

__all__ = [
    "Close",
    "CloseCode",
    "BytesMessage",
    "Ping",
    "Pong",
    "TextMessage",
    "WebSocketConnection",
    "WebSocketEvent",
    "WebSocketProtocolError",
    "WebSocketState",
    "unmask",
]


class WebSocketState(enum.Enum):
    """The closing handshake (RFC 6455 7). Updated by ``next_event`` and ``send_close``."""

    OPEN = "OPEN"  # messages flow both ways
    LOCAL_CLOSING = "LOCAL_CLOSING"  # we sent a Close and wait for the peer's
    REMOTE_CLOSING = "REMOTE_CLOSING"  # the peer sent a Close; ours is still to be sent
    CLOSED = "CLOSED"  # both Closes went: close the TCP connection
    FAILED = "FAILED"  # the peer broke the protocol (a WebSocketProtocolError was raised)


_OPEN = WebSocketState.OPEN
_LOCAL_CLOSING = WebSocketState.LOCAL_CLOSING
_REMOTE_CLOSING = WebSocketState.REMOTE_CLOSING
_CLOSED = WebSocketState.CLOSED
_FAILED = WebSocketState.FAILED

_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_FIN = 0x80
_RSV1 = 0x40
_MAX_CONTROL_PAYLOAD = 125
_MAX_CLOSE_REASON = 123  # a control payload less the 2-byte code

# -- unmasking ---------------------------------------------------------------------------------

# XOR tables for bytes.translate, one per mask byte value: 64 KiB, built once.
_XOR_TABLES = [bytes(value ^ key for value in range(256)) for key in range(256)]
# Below this size one big-integer XOR is fastest; above it, four translate() calls over
# the strided quarters of the payload are (both measured on CPython 3.11: about 0.5 us for
# 125 bytes, 60 us for 64 KiB and 17 ms for 16 MiB with the faster of the two).
_TRANSLATE_FROM = 4096


def unmask(data: bytes | bytearray, mask: bytes) -> bytes | bytearray:
    """XOR ``data`` with the 4-byte ``mask`` repeated (RFC 6455 5.3)."""
    length = len(data)
    if length < _TRANSLATE_FROM:
        if not length:
            return b""
        key = mask * (length >> 2) + mask[: length & 3]
        return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")
    output = bytearray(length)
    tables = _XOR_TABLES
    output[0::4] = data[0::4].translate(tables[mask[0]])
    output[1::4] = data[1::4].translate(tables[mask[1]])
    output[2::4] = data[2::4].translate(tables[mask[2]])
    output[3::4] = data[3::4].translate(tables[mask[3]])
    return output


def _frame_header(first_byte: int, length: int) -> bytes:
    """A server frame's header: never masked (RFC 6455 5.1), minimal length encoding."""
    if length < 126:
        return bytes((first_byte, length))
    if length < 65536:
        return struct.pack("!BBH", first_byte, 126, length)
    return struct.pack("!BBQ", first_byte, 127, length)


def _payload_length(buffer: bytearray, available: int) -> tuple[int, int] | None:
    """``(payload length, header length with the mask)`` of the frame starting ``buffer``,
    or None until the extended length has arrived (RFC 6455 5.2)."""
    length = buffer[1] & 0x7F
    if length < 126:
        return length, 6
    if length == 126:
        if available < 4:
            return None
        return (buffer[2] << 8) | buffer[3], 8
    if available < 10:
        return None
    length = int.from_bytes(buffer[2:10], "big")
    if length >> 63:
        raise _error(1002, "frame length with its most significant bit set")
    return length, 14


def _error(close_code: int, reason: str) -> WebSocketProtocolError:
    return WebSocketProtocolError(close_code, reason)


_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class WebSocketConnection:
    """One server-side WebSocket connection: bytes in, events out; messages in, bytes out.

    ``max_size`` bounds a received message, after inflating (1009 beyond it); frames are
    checked against it as soon as their header arrives, before any payload is taken.
    ``deflate`` is the negotiated permessage-deflate (``WebSocketUpgrade.deflate``) or None.

    ``state``, ``close_sent`` and ``close_received`` are for reading only: ``next_event``
    and ``send_close`` keep them (RFC 6455 7.1.2-7.1.4: the Close we sent, the one we got).

    Only the thread that owns the connection may call its methods. ``receive_data`` never
    raises; ``next_event`` raises :class:`WebSocketProtocolError` when the peer broke the
    protocol, and then again on every later call (``state`` is FAILED). The ``send_*``
    methods return the bytes to write, or raise
    :class:`~waitress_like.errors.LocalProtocolError` when the call itself breaks the
    protocol (data after our Close, a control payload over 125 bytes, a bad close code).
    """

    __slots__ = (
        "state",
        "close_sent",
        "close_received",
        "_max_size",
        "_buffer",
        "_error",
        "_compressor",
        "_decompressor",
        "_in_payload",
        "_frame_fin",
        "_frame_mask",
        "_frame_offset",
        "_frame_remaining",
        "_message_opcode",
        "_message_compressed",
        "_message_size",
        "_parts",
        "_decoder",
    )

    def __init__(self, *, max_size: int = 16 * 1024 * 1024, deflate: DeflateParameters | None = None) -> None:
        """Raises TypeError for a non-int ``max_size``, ValueError for one below 1."""
        if type(max_size) is not int:
            raise TypeError(f"max_size must be an int, not {type(max_size).__name__}")
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self.state = _OPEN
        self.close_sent = False
        self.close_received = False
        self._max_size = max_size
        self._buffer = bytearray()
        self._error: WebSocketProtocolError | None = None
        self._compressor: MessageCompressor | None = None
        self._decompressor: MessageDecompressor | None = None
        if deflate is not None:
            self._compressor = MessageCompressor(deflate)
            self._decompressor = MessageDecompressor(deflate)
        self._in_payload = False  # a data frame's header was read, its payload is due
        self._frame_fin = False
        self._frame_mask = b""
        self._frame_offset = 0  # payload bytes of the current frame already taken
        self._frame_remaining = 0
        self._message_opcode = 0  # _TEXT or _BINARY while a message is open, else 0
        self._message_compressed = False
        self._message_size = 0  # payload bytes of the open message, after inflating
        self._parts: list[bytes | bytearray | str] = []
        self._decoder = _Utf8Decoder("strict")

    # -- receiving ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Append received bytes. Ignored after a Close was received or an error raised."""
        if self.close_received or self.state is _FAILED:
            return
        self._buffer += data

    def buffered_byte_count(self) -> int:
        """Bytes received but not yet taken by ``next_event``."""
        return len(self._buffer)

    def next_event(self) -> WebSocketEvent | None:
        """The next event, or None when more bytes are needed (or a Close was received)."""
        if self._error is not None:
            raise _error(self._error.close_code, self._error.reason)
        if self.close_received:
            return None
        try:
            return self._next_event()
        except WebSocketProtocolError as error:
            self._fail(error)
            raise

    def events(self) -> list[WebSocketEvent]:
        """Every event the buffered bytes make, in order.

        Raises like ``next_event``, and then the events before the error are lost: a caller
        that must still deliver those calls ``next_event`` itself.
        """
        found = []
        while (event := self.next_event()) is not None:
            found.append(event)
        return found

    def _fail(self, error: WebSocketProtocolError) -> None:
        self.state = _FAILED
        self._error = error
        self._buffer = bytearray()
        self._parts = []

    def _next_event(self) -> WebSocketEvent | None:
        while True:
            if self._in_payload:
                event = self._read_payload()
                if event is not None or self._in_payload:
                    return event
                continue
            event = self._read_frame_start()
            if event is not None or not self._in_payload:
                return event

    def _read_frame_start(self) -> WebSocketEvent | None:
        """Read a frame header; return the event of a whole control frame, if any.

        Leaves ``_in_payload`` set when a data frame's header was taken. Every check runs
        as soon as the bytes it needs are buffered, so the error (and where in the stream
        it is raised) is the same for every split of the input.
        """
        buffer = self._buffer
        available = len(buffer)
        if available < 2:
            return None
        first = buffer[0]
        opcode = first & 0x0F
        self._check_frame_start(first, buffer[1], opcode)
        sized = _payload_length(buffer, available)
        if sized is None:
            return None
        length, header_length = sized
        if opcode >= _CLOSE:
            if available < header_length + length:
                return None
            mask = bytes(buffer[header_length - 4 : header_length])
            payload = bytes(unmask(buffer[header_length : header_length + length], mask))
            del buffer[: header_length + length]
            return self._control_event(opcode, payload)
        self._check_frame_size(length, opcode, first)
        if available >= header_length:
            self._start_data_frame(first, opcode, length, header_length)
        return None

    def _start_data_frame(self, first: int, opcode: int, length: int, header_length: int) -> None:
        buffer = self._buffer
        self._frame_mask = bytes(buffer[header_length - 4 : header_length])
        del buffer[:header_length]
        if opcode != _CONTINUATION:
            self._message_opcode = opcode
            self._message_compressed = bool(first & _RSV1)
        self._frame_fin = bool(first & _FIN)
        self._frame_offset = 0
        self._frame_remaining = length
        self._in_payload = True

    def _check_frame_start(self, first: int, second: int, opcode: int) -> None:
        """The rules the first two bytes of a frame decide (RFC 6455 5.2, 5.4, 5.5)."""
        if not second & 0x80:
            raise _error(1002, "client frames must be masked")
        if opcode >= _CLOSE:
            if opcode > _PONG:
                raise _error(1002, f"reserved opcode {opcode}")
            if not first & _FIN:
                raise _error(1002, "fragmented control frame")
            if (second & 0x7F) > _MAX_CONTROL_PAYLOAD:
                raise _error(1002, "control frame payload over 125 bytes")
        elif opcode == _CONTINUATION:
            if not self._message_opcode:
                raise _error(1002, "continuation frame without a message to continue")
        elif opcode > _BINARY:
            raise _error(1002, f"reserved opcode {opcode}")
        elif self._message_opcode:
            raise _error(1002, "new data frame before the fragmented message ended")
        reserved = first & 0x70
        if reserved:
            # RFC 7692 6: RSV1 marks a compressed message, on its first frame only.
            if reserved != _RSV1 or self._decompressor is None:
                raise _error(1002, "reserved bits set without a negotiated extension")
            if opcode != _TEXT and opcode != _BINARY:
                raise _error(1002, "RSV1 set on a control or continuation frame")

    def _check_frame_size(self, length: int, opcode: int, first: int) -> None:
        """Refuse a data frame that cannot fit in ``max_size``, before taking its payload."""
        if opcode == _CONTINUATION:
            compressed = self._message_compressed
            so_far = self._message_size
        else:
            compressed = bool(first & _RSV1)
            so_far = 0
        if compressed:
            # The inflated size is checked as it grows; this only bounds a frame that no
            # message within the limit could compress to (zlib's compressBound).
            limit = self._max_size
            if length > limit + (limit >> 12) + (limit >> 14) + (limit >> 25) + 13:
                raise _error(1009, f"compressed frame over the {limit}-byte message limit")
        elif so_far + length > self._max_size:
            raise _error(1009, f"message over {self._max_size} bytes")

    def _read_payload(self) -> WebSocketEvent | None:
        """Take what is buffered of a data frame's payload; the message's event at its end."""
        remaining = self._frame_remaining
        if remaining:
            buffer = self._buffer
            available = len(buffer)
            if not available:
                return None
            if available <= remaining:
                chunk = buffer
                self._buffer = bytearray()  # hand the whole buffer over: no copy
            else:
                chunk = buffer[:remaining]
                del buffer[:remaining]
            taken = len(chunk)
            mask = self._frame_mask
            shift = self._frame_offset & 3
            if shift:
                mask = mask[shift:] + mask[:shift]
            self._frame_offset += taken
            self._frame_remaining = remaining = remaining - taken
            self._take(unmask(chunk, mask))
            if remaining:
                return None
        self._in_payload = False
        if not self._frame_fin:
            return None
        return self._end_message()

    def _take(self, data: bytes | bytearray) -> None:
        """Add payload bytes to the open message: inflate, bound, check UTF-8, keep."""
        if self._message_compressed:
            data = self._inflate(data)
            self._message_size += len(data)
        else:
            self._message_size += len(data)  # within max_size: checked at the frame header
        if self._message_opcode == _TEXT:
            self._decode(data, False)
        elif data:
            self._parts.append(data)

    def _inflate(self, data: bytes | bytearray, *, final: bool = False) -> bytes:
        decompressor = self._decompressor
        assert decompressor is not None
        allowed = self._max_size - self._message_size
        try:
            if final:
                output = decompressor.finish(allowed + 1)
            else:
                output = decompressor.feed(data, allowed + 1)
        except zlib.error:
            raise _error(1007, "invalid compressed data") from None
        if len(output) > allowed:
            # The same error as a byte-at-a-time reader: bad UTF-8 before the limit first.
            if self._message_opcode == _TEXT:
                self._decode(output[:allowed], False)
            raise _error(1009, f"message over {self._max_size} bytes once inflated")
        return output

    def _decode(self, data: bytes | bytearray, final: bool) -> None:
        decoder = self._decoder
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError:
            raise _error(1007, "invalid UTF-8 in a text message") from None
        if text:
            self._parts.append(text)
        if not final and data and data[-1] >= 0x80:
            # CPython keeps a truncated surrogate (ED A0..BF) pending instead of refusing
            # it at once, which is the only prefix it does not fail fast on.
            pending = decoder.getstate()[0]
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise _error(1007, "invalid UTF-8 in a text message (a surrogate)")

    def _end_message(self) -> TextMessage | BytesMessage:
        if self._message_compressed:
            self._take_tail()
        parts = self._parts
        self._parts = []
        self._message_size = 0
        if self._message_opcode == _TEXT:
            self._message_opcode = 0
            try:
                self._decoder.decode(b"", True)
            except UnicodeDecodeError:
                raise _error(1007, "text message ends inside a UTF-8 sequence") from None
            finally:
                self._decoder.reset()
            return TextMessage("".join(parts))  # type: ignore[arg-type]
        self._message_opcode = 0
        return BytesMessage(b"".join(parts))  # type: ignore[arg-type]

    def _take_tail(self) -> None:
        output = self._inflate(b"", final=True)
        self._message_size += len(output)
        if self._message_opcode == _TEXT:
            self._decode(output, False)
        elif output:
            self._parts.append(output)

    def _control_event(self, opcode: int, payload: bytes) -> Ping | Pong | Close:
        if opcode == _PING:
            return Ping(payload)
        if opcode == _PONG:
            return Pong(payload)
        code, reason = self._parse_close(payload)
        self.close_received = True
        self.state = _CLOSED if self.close_sent else _REMOTE_CLOSING
        self._buffer = bytearray()  # RFC 6455 5.5.1: nothing after a Close is read
        self._parts = []
        return Close(code, reason)

    @staticmethod
    def _parse_close(payload: bytes) -> tuple[int, str]:
        """RFC 6455 5.5.1, 7.4: an optional 2-byte code, then an optional UTF-8 reason."""
        if not payload:
            return 1005, ""  # NO_STATUS: reported, never sent
        if len(payload) == 1:
            raise _error(1002, "Close payload of 1 byte (a code takes 2)")
        code = (payload[0] << 8) | payload[1]
        if not is_valid_close_code(code):
            raise _error(1002, f"invalid close code {code}")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise _error(1007, "invalid UTF-8 in a close reason") from None
        return code, reason

    # -- sending -----------------------------------------------------------------------

    def send_text(self, text: str) -> bytes:
        """The frame(s) carrying a text message; compressed when permessage-deflate is on."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise LocalProtocolError("text message has a lone surrogate (not valid UTF-8)") from None
        return self._data_frame(_TEXT, data)

    def send_bytes(self, data: bytes | bytearray | memoryview) -> bytes:
        """The frame(s) carrying a binary message; compressed when permessage-deflate is on."""
        return self._data_frame(_BINARY, bytes(data))

    def _data_frame(self, opcode: int, data: bytes) -> bytes:
        if self.close_sent:
            raise LocalProtocolError("cannot send a message after sending a Close")
        first = _FIN | opcode
        compressor = self._compressor
        if compressor is not None and compressor.enabled:
            data = compressor.compress(data)
            first |= _RSV1
        return _frame_header(first, len(data)) + data

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A Ping frame (payload at most 125 bytes)."""
        return self._control_frame(_PING, payload)

    def send_pong(self, payload: bytes = b"") -> bytes:
        """A Pong frame (payload at most 125 bytes)."""
        return self._control_frame(_PONG, payload)

    def _control_frame(self, opcode: int, payload: bytes) -> bytes:
        if self.close_sent:
            raise LocalProtocolError("cannot send a frame after sending a Close")
        payload = bytes(payload)
        if len(payload) > _MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError(f"control frame payload of {len(payload)} bytes (at most 125)")
        return _frame_header(_FIN | opcode, len(payload)) + payload

    def send_close(self, code: int = CloseCode.NORMAL, reason: str = "") -> bytes:
        """The Close frame; afterwards nothing else may be sent.

        ``code`` 1005 (NO_STATUS) sends a Close without a code (and then ``reason`` must be
        empty), which is how to answer a Close that had none. Other codes must be valid on
        the wire: 1000-1003, 1007-1014, 3000-4999. ``reason`` is at most 123 UTF-8 bytes.
        """
        if self.close_sent:
            raise LocalProtocolError("a Close was already sent")
        payload = self._close_payload(code, reason)
        self.close_sent = True
        if self.state is _OPEN:
            self.state = _LOCAL_CLOSING
        elif self.state is _REMOTE_CLOSING:
            self.state = _CLOSED
        return _frame_header(_FIN | _CLOSE, len(payload)) + payload

    @staticmethod
    def _close_payload(code: int, reason: str) -> bytes:
        if code == CloseCode.NO_STATUS:
            if reason:
                raise LocalProtocolError("a Close without a code cannot have a reason")
            return b""
        if type(code) is not int and not isinstance(code, CloseCode):
            raise LocalProtocolError(f"close code must be an int, not {type(code).__name__}")
        if not is_valid_close_code(code):
            raise LocalProtocolError(f"close code {code} may not be sent")
        try:
            encoded = reason.encode("utf-8")
        except UnicodeEncodeError:
            raise LocalProtocolError("close reason has a lone surrogate (not valid UTF-8)") from None
        if len(encoded) > _MAX_CLOSE_REASON:
            raise LocalProtocolError(f"close reason of {len(encoded)} bytes (at most 123 in UTF-8)")
        return struct.pack("!H", code) + encoded

    def reply_to(self, event: WebSocketEvent) -> bytes:
        """The frame RFC 6455 requires in answer to ``event``, or b"" if none is due.

        A Ping gets a Pong with its payload; a Close gets our Close echoing its code
        (without a reason) unless we sent one already. Nothing is due after our Close.
        """
        if self.close_sent:
            return b""
        if type(event) is Ping:
            return self.send_pong(event.payload)
        if type(event) is Close:
            return self.send_close(event.code)
        return b""
