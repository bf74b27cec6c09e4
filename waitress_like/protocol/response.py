"""The pieces of a response head (RFC 9112 section 4), sans I/O.

These functions check what an application gives (a status line, header pairs) and refuse
anything that would let it corrupt the stream: a status or header with CR, LF or NUL, an
invalid field name, or a hop-by-hop header (PEP 3333: framing is the server's job). They
also make the Date value and the small responses the server answers by itself. Framing a
response is :mod:`.writer`'s job.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate

from ..errors import LocalProtocolError
from .grammar import FIELD_VALUE_RE, TOKEN_RE

__all__ = [
    "HOP_BY_HOP_HEADERS",
    "LAST_CHUNK",
    "parse_status",
    "check_header",
    "http_date",
    "simple_response",
]

# RFC 9110 7.6.1 connection-specific fields, plus the PEP 3333 list.
HOP_BY_HOP_HEADERS = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    )
)

LAST_CHUNK = b"0\r\n\r\n"

_TOKEN = TOKEN_RE
_FIELD_VALUE = FIELD_VALUE_RE
_STATUS = re.compile(r"([1-9][0-9][0-9]) [\t\x20-\x7e\x80-\xff]*\Z")

# Status lines and field names already found valid -> their code / lower-cased name. An
# application sends the same few for every response, and a hit costs one dict look-up
# instead of regular expressions. Bounded: an application may echo names it received.
_VALID_STATUSES: dict[str, int] = {}
_VALID_NAMES: dict[str, str] = {}
_VALID_MAX = 1024


def parse_status(status: object) -> int:
    """Return the code of a PEP 3333 status string like ``"200 OK"``.

    Raises :class:`LocalProtocolError` for anything else (not a str, no reason phrase
    separator, control characters that could split the response).
    """
    if type(status) is not str:
        raise LocalProtocolError(f"status must be a str, got {status!r}")
    code = _VALID_STATUSES.get(status)
    if code is not None:
        return code
    match = _STATUS.match(status)
    if match is None:
        raise LocalProtocolError(f"invalid status line {status!r}")
    code = int(match.group(1))
    if len(_VALID_STATUSES) < _VALID_MAX:
        _VALID_STATUSES[status] = code  # threads may race here: both store the same
    return code


def check_header(name: object, value: object) -> str:
    """Validate one application header; return the lower-cased name.

    Raises :class:`LocalProtocolError` for non-str items, an invalid name, a value with
    CR, LF, NUL or another control character, or a hop-by-hop header.
    """
    if type(name) is str and type(value) is str:
        lowered = _VALID_NAMES.get(name)
        if lowered is not None and _FIELD_VALUE.fullmatch(value) is not None:
            return lowered  # the common case: a name seen before, a clean value
    check_field(name, value)  # raises for anything malformed
    return _allowed_name(name)  # type: ignore[arg-type]  # check_field made it a str


def check_field(name: object, value: object) -> str:
    """Validate a response field's name (a token) and value (RFC 9110 5.1, 5.5); return
    the name lower-cased. Raises :class:`LocalProtocolError` as :func:`check_header`
    does, but allows every name: callers that reserve names check them themselves."""
    if type(name) is not str or type(value) is not str:
        raise LocalProtocolError(f"header name and value must be str: {name!r}: {value!r}")
    if _TOKEN.fullmatch(name) is None:
        raise LocalProtocolError(f"invalid header name {name!r}")
    if _FIELD_VALUE.fullmatch(value) is None:
        raise LocalProtocolError(f"invalid character in value of header {name!r}: {value!r}")
    return name.lower()


def _allowed_name(name: str) -> str:
    """The lower-cased form of the valid ``name``, if an application may send it."""
    lowered = name.lower()
    if lowered in HOP_BY_HOP_HEADERS:
        raise LocalProtocolError(
            f"{name!r} is a hop-by-hop header; a WSGI application may not set it (PEP 3333)"
        )
    if len(_VALID_NAMES) < _VALID_MAX:
        _VALID_NAMES[name] = lowered
    return lowered


_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    """The current IMF-fixdate for the Date header, computed at most once a second.

    Safe from any thread: a race only computes the same string twice.
    """
    global _date_cache
    now = int(time.time())
    cached_second, cached_value = _date_cache
    if cached_second != now:
        cached_value = formatdate(now, usegmt=True)
        _date_cache = (now, cached_value)
    return cached_value


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    # RFC 9110 renamed 413 "Content Too Large"; clients ignore reason phrases (RFC 9112 4),
    # and waitress, whose tests and users may compare it, says the older name.
    413: "Request Entity Too Large",
    414: "URI Too Long",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def simple_response(
    status_code: int,
    detail: str,
    ident: str,
    close: bool = True,
    extra_headers: tuple[tuple[str, str], ...] = (),
    version: tuple[int, int] = (1, 1),
) -> bytes:
    """A complete small text/plain response, for errors the server answers itself.

    Shaped as waitress shapes its own, so that clients and tests written against waitress
    read it alike: the status line says ``version`` (the caller passes the request's
    version, or 1.0 when the request head was bad, as waitress does), and the UTF-8 body is
    the reason phrase, a blank line, ``detail``, a blank line and
    ``(generated by <ident>)``.
    """
    reason = _REASONS.get(status_code, "Error")
    text = f"{reason}\r\n\r\n{detail}\r\n\r\n(generated by {ident or 'server'})"
    body = text.encode("utf-8", "replace")
    lines = [
        "HTTP/%d.%d %d %s" % (version[0], version[1], status_code, reason),
        f"Content-Length: {len(body)}",
        "Content-Type: text/plain; charset=utf-8",
        f"Date: {http_date()}",
    ]
    if ident:
        lines.append(f"Server: {ident}")
    lines.extend(f"{name}: {value}" for name, value in extra_headers)
    if close:
        lines.append("Connection: close")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + body
