"""The events and errors of a WebSocket connection (RFC 6455 5.5, 5.6, 7.4).

:class:`~waitress_like.protocol.websocket.WebSocketConnection` produces the events: whole
messages and control frames. Like the HTTP events they are small value objects, equal
when their fields are equal, and never mutated once built.
"""

from __future__ import annotations

import enum
from typing import Union

from ..errors import WaitressLikeError
from .events import Event

__all__ = [
    "BytesMessage",
    "Close",
    "CloseCode",
    "Ping",
    "Pong",
    "TextMessage",
    "WebSocketEvent",
    "WebSocketProtocolError",
    "is_valid_close_code",
]


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 7.4.1, IANA registry); plain ints compare equal."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent: reported when a Close carries no code
    ABNORMAL = 1006  # never sent: the connection dropped without a Close
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


def is_valid_close_code(code: int) -> bool:
    """May ``code`` appear in a Close frame? (RFC 6455 7.4; 1012-1014 are IANA-registered.)"""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class WebSocketProtocolError(WaitressLikeError):
    """The peer broke RFC 6455/7692: fail the connection (RFC 6455 7.1.7).

    Send a Close with ``close_code`` (1002 protocol error, 1007 invalid payload data,
    1009 message too big) and ``reason`` (at most 123 UTF-8 bytes), if no Close was sent
    yet, then close the TCP connection without waiting for the peer's Close.
    """

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(f"{reason} (close code {close_code})")
        self.close_code = close_code
        self.reason = reason


class TextMessage(Event):
    """A whole text message, decoded from strict UTF-8."""

    __slots__ = ("text",)
    _fields = __slots__

    def __init__(self, text: str) -> None:
        self.text = text


class BytesMessage(Event):
    """A whole binary message."""

    __slots__ = ("data",)
    _fields = __slots__

    def __init__(self, data: bytes) -> None:
        self.data = data


class Ping(Event):
    """A Ping (at most 125 bytes of payload); answer with a Pong carrying the same payload."""

    __slots__ = ("payload",)
    _fields = __slots__

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Pong(Event):
    """A Pong: the answer to one of our Pings, or an unsolicited heartbeat."""

    __slots__ = ("payload",)
    _fields = __slots__

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Close(Event):
    """The peer's Close. ``code`` is 1005 (NO_STATUS) when the frame carried none."""

    __slots__ = ("code", "reason")
    _fields = __slots__

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


WebSocketEvent = Union[TextMessage, BytesMessage, Ping, Pong, Close]
