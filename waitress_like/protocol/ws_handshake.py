"""The WebSocket opening handshake, server side (RFC 6455 4.2), sans I/O.

Usage, by the thread that parsed the request::

    if is_websocket_upgrade(head.version, head.headers):
        try:
            upgrade = accept_handshake(head.method, head.version, head.headers, deflate=DeflateOptions())
        except HandshakeError as error:
            ...  # answer error.status_hint with error.headers, then close
        # ... the application accepts, choosing one of upgrade.subprotocols or None ...
        send(upgrade_response(upgrade, subprotocol, extra_headers))
        connection = WebSocketConnection(max_size=..., deflate=upgrade.deflate)

Header names and values are ``str`` (latin-1 decoded, as :class:`RequestHead` has them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Iterable

from ..errors import LocalProtocolError, RemoteProtocolError
from .grammar import TOKEN_RE
from .response import check_field
from .ws_deflate import DeflateOptions, DeflateParameters, negotiate_deflate

__all__ = [
    "HandshakeError",
    "WebSocketUpgrade",
    "accept_handshake",
    "accept_key",
    "is_websocket_upgrade",
    "upgrade_response",
]

Headers = Iterable[tuple[str, str]]

# RFC 6455 1.3: the GUID the server appends to the client's key before hashing.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_VERSION = "13"
_VERSION_HEADER = (("Sec-WebSocket-Version", _VERSION),)

_TOKEN_RE = TOKEN_RE

# Fields of the 101 response that only upgrade_response may write: the handshake itself,
# and framing or connection fields that a 101 must not carry (RFC 9110 8.6, 7.6.1).
_RESERVED_RESPONSE_FIELDS = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-version",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "te",
        "trailer",
    }
)


class HandshakeError(RemoteProtocolError):
    """The upgrade request is not a valid WebSocket handshake.

    Answer ``status_hint`` (400, or 426 for an unsupported version) with ``headers``
    added (``Sec-WebSocket-Version: 13`` where RFC 6455 4.4 asks for it), then close.
    """

    def __init__(
        self, message: str, status_hint: int = 400, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message, status_hint)
        self.headers = headers


class WebSocketUpgrade:
    """A valid handshake request, and what the server needs to accept it.

    * ``accept`` - the ``Sec-WebSocket-Accept`` value.
    * ``subprotocols`` - the client's ``Sec-WebSocket-Protocol`` offers, in order.
    * ``deflate`` - the negotiated permessage-deflate parameters, or None.
    """

    __slots__ = ("accept", "subprotocols", "deflate")

    def __init__(self, accept: str, subprotocols: tuple[str, ...], deflate: DeflateParameters | None) -> None:
        self.accept = accept
        self.subprotocols = subprotocols
        self.deflate = deflate

    def __repr__(self) -> str:
        return f"WebSocketUpgrade(accept={self.accept!r}, subprotocols={self.subprotocols!r}, deflate={self.deflate!r})"


def _tokens(headers: Headers, wanted: str) -> list[str]:
    """The lower-cased comma-separated elements of every field named ``wanted``."""
    tokens: list[str] = []
    for name, value in headers:
        if name.lower() == wanted:
            tokens.extend(element.strip(" \t").lower() for element in value.split(","))
    return tokens


def is_websocket_upgrade(version: tuple[int, int], headers: Headers) -> bool:
    """Whether a request asks to switch to WebSocket.

    True when ``Connection`` lists the ``upgrade`` option and ``Upgrade`` lists
    ``websocket`` (both case-insensitive token lists). Always False for HTTP/1.0:
    RFC 9110 7.8 makes servers ignore ``Upgrade`` there.
    """
    if version < (1, 1):
        return False
    return "upgrade" in _tokens(headers, "connection") and "websocket" in _tokens(headers, "upgrade")


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1(key.encode("latin-1") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def accept_handshake(
    method: str,
    version: tuple[int, int],
    headers: Headers,
    *,
    deflate: DeflateOptions | None = None,
) -> WebSocketUpgrade:
    """Validate an upgrade request (RFC 6455 4.2.1) and negotiate its extensions.

    Call it for a request :func:`is_websocket_upgrade` said yes to. ``deflate`` enables
    permessage-deflate within those options; None leaves every offer declined. Raises
    :class:`HandshakeError`: 426 with ``Sec-WebSocket-Version: 13`` for another version,
    400 for anything else malformed (not GET over HTTP/1.1, missing or repeated key, a key
    that is not 16 base64-encoded bytes, a missing version, a request body, a
    subprotocol that is not a token).
    """
    headers = tuple(headers)
    if method != "GET":
        raise HandshakeError(f"a WebSocket handshake must be a GET request, not {method[:20]}")
    if version < (1, 1) or not is_websocket_upgrade(version, headers):
        raise HandshakeError("not a WebSocket upgrade (Connection: upgrade, Upgrade: websocket, HTTP/1.1)")
    fields = _handshake_fields(headers)
    _check_version(fields.get("sec-websocket-version", []))
    key = _single(fields, "sec-websocket-key")
    if not _is_valid_key(key):
        raise HandshakeError("Sec-WebSocket-Key is not 16 bytes in base64")
    # The bytes after the head are frames: a body would be read as one (RFC 6455 4.1).
    if "transfer-encoding" in fields or any(value.strip("0") for value in fields.get("content-length", [])):
        raise HandshakeError("a WebSocket handshake request cannot have a body")
    subprotocols = _subprotocols(fields.get("sec-websocket-protocol", []))
    parameters = None
    if deflate is not None and "sec-websocket-extensions" in fields:
        parameters = negotiate_deflate(fields["sec-websocket-extensions"], deflate)
    return WebSocketUpgrade(accept_key(key), subprotocols, parameters)


_HANDSHAKE_FIELDS = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
    }
)


def _handshake_fields(headers: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    """The values of the fields the handshake reads, by lower-cased name, in order."""
    fields: dict[str, list[str]] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered in _HANDSHAKE_FIELDS:
            fields.setdefault(lowered, []).append(value)
    return fields


def _single(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name, [])
    if len(values) != 1:
        raise HandshakeError(f"{'no' if not values else 'more than one'} {name} field")
    return values[0]


def _check_version(values: list[str]) -> None:
    if not values:
        raise HandshakeError("no Sec-WebSocket-Version field", 400, _VERSION_HEADER)
    # Clients send one version; a list means the client speaks several, and 13 may be one.
    offered = [element.strip(" \t") for value in values for element in value.split(",")]
    if _VERSION not in offered:
        raise HandshakeError(
            f"unsupported WebSocket version {', '.join(offered)[:40]!r} (only 13)", 426, _VERSION_HEADER
        )


def _is_valid_key(key: str) -> bool:
    if len(key) != 24:  # base64 of 16 bytes, padding included
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _subprotocols(values: list[str]) -> tuple[str, ...]:
    offered = []
    for value in values:
        for element in value.split(","):
            element = element.strip(" \t")
            if not element:
                continue  # RFC 9110 5.6.1: empty list elements are ignored
            if _TOKEN_RE.fullmatch(element) is None:
                raise HandshakeError("a Sec-WebSocket-Protocol element is not a token")
            offered.append(element)
    return tuple(offered)


def upgrade_response(
    upgrade: WebSocketUpgrade,
    subprotocol: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The ``101 Switching Protocols`` response head that accepts ``upgrade``.

    ``subprotocol`` must be None or one of ``upgrade.subprotocols`` (RFC 6455 4.2.2: the
    server picks from the client's list). ``extra_headers`` are ``(name, value)`` str
    pairs from the application (``Set-Cookie``, ``Server``, ``Date``...). Raises
    :class:`LocalProtocolError` for a subprotocol the client did not offer, a name that
    is not a token, a value with CR, LF or another control character, or a field that
    only the handshake may set (``Upgrade``, ``Connection``, ``Sec-WebSocket-*``, framing).
    """
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {upgrade.accept}",
    ]
    if subprotocol is not None:
        if subprotocol not in upgrade.subprotocols:
            raise LocalProtocolError(f"subprotocol {subprotocol!r} was not offered by the client")
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    if upgrade.deflate is not None:
        lines.append(f"Sec-WebSocket-Extensions: {upgrade.deflate.header_value()}")
    for name, value in extra_headers:
        _check_extra_header(name, value)
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _check_extra_header(name: object, value: object) -> None:
    if check_field(name, value) in _RESERVED_RESPONSE_FIELDS:
        raise LocalProtocolError(f"{name!r} is set by the WebSocket handshake itself")
