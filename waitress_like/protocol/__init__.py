"""The sans-I/O HTTP/1.1 core: bytes in, events out, and no sockets, threads or settings.

Requests: feed received bytes to a :class:`RequestParser` and take :class:`RequestHead`,
:class:`BodyChunk` and :class:`EndOfRequest` events from it. Bad input raises
:class:`~waitress_like.errors.RemoteProtocolError` carrying the status to answer with.
"""

from __future__ import annotations

from .events import BodyChunk, EndOfRequest, Event, RequestHead
from .limits import ParserLimits
from .request import ParserState, RequestEvent, RequestParser

__all__ = [
    "BodyChunk",
    "EndOfRequest",
    "Event",
    "ParserLimits",
    "ParserState",
    "RequestEvent",
    "RequestHead",
    "RequestParser",
]
