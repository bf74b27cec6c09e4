"""The sans-I/O HTTP/1.1 core: bytes in, events out, and no sockets, threads or settings.

Requests: feed received bytes to a :class:`RequestParser` and take :class:`RequestHead`,
:class:`BodyChunk` and :class:`EndOfRequest` events from it. Bad input raises
:class:`~waitress_like.errors.RemoteProtocolError` carrying the status to answer with.

Responses: a :class:`ResponseWriter` per request turns the application's status, headers
and body pieces into framed bytes, and says whether the connection may carry another
request after it. What the application may not send raises
:class:`~waitress_like.errors.LocalProtocolError`.
"""

from __future__ import annotations

from .events import BodyChunk, EndOfRequest, Event, RequestHead
from .limits import ParserLimits
from .request import ParserState, RequestEvent, RequestParser
from .writer import Framing, HeadPolicy, ResponseWriter

__all__ = [
    "BodyChunk",
    "EndOfRequest",
    "Event",
    "Framing",
    "HeadPolicy",
    "ParserLimits",
    "ParserState",
    "RequestEvent",
    "RequestHead",
    "RequestParser",
    "ResponseWriter",
]
