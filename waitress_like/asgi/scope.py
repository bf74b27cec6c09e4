"""The ASGI HTTP connection scope, built from a PEP 3333 environ.

Thread contract: :func:`build_http_scope` is a pure function, called on the worker thread
that serves the request; the module-level name cache is shared by every worker (a race
only computes the same entry twice).

Everything comes from the environ, so whatever the server did to it first (trusted-proxy
handling of ``REMOTE_ADDR``, ``wsgi.url_scheme``, ``SERVER_NAME``...) is what the ASGI
application sees, exactly as a WSGI application would.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional
from urllib.parse import quote_from_bytes

from ..tlsinfo import TLS_ENVIRON_KEY

__all__ = [
    "ASGI_VERSION",
    "HTTP_SPEC_VERSION",
    "WEBSOCKET_SPEC_VERSION",
    "build_http_scope",
    "build_websocket_scope",
    "wsgi_text_to_str",
]

ASGI_VERSION = "3.0"
#: The version of the ASGI HTTP spec the bridge implements. Below 2.4, so a ``send()``
#: after the client has gone is a no-op rather than an error, and frameworks listen for
#: ``http.disconnect`` instead.
HTTP_SPEC_VERSION = "2.3"
#: The version of the ASGI WebSocket spec the server implements: 2.4, so ``send()`` on a
#: closed connection raises an ``OSError`` (``ClientDisconnected``), as under uvicorn.
WEBSOCKET_SPEC_VERSION = "2.4"
#: Schemes of the websocket scope, by the request's ``wsgi.url_scheme``.
_WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}

# environ key -> header name as ASGI wants it (lower-case bytes). Bounded, so a client
# sending many random header names cannot grow it without end.
_HEADER_NAMES: dict[str, bytes] = {}
_HEADER_NAMES_MAX = 2048
# Characters left as they are when a raw path has to be rebuilt from PATH_INFO
# (RFC 3986 pchar plus "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def wsgi_text_to_str(text: str) -> str:
    """Undo PEP 3333's latin-1 decoding: the bytes were UTF-8 (ASGI wants real text).

    Bytes that are not valid UTF-8 become U+FFFD, as ``urllib.parse.unquote`` does;
    ``raw_path`` keeps the exact bytes for applications that care.
    """
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # not a PEP 3333 "bytes as latin-1" string: keep it
        return text


def _header_name(key: str) -> bytes:
    name = _HEADER_NAMES.get(key)
    if name is None:
        name = key[5:].replace("_", "-").lower().encode("latin-1")
        if len(_HEADER_NAMES) < _HEADER_NAMES_MAX:
            _HEADER_NAMES[key] = name
    return name


def _headers(environ: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    """Request headers in the order the environ holds them (the order they arrived in).

    The body the application receives is already de-chunked, and our server always gives
    its decoded length as ``CONTENT_LENGTH``; so when both are present,
    ``Transfer-Encoding`` is left out rather than contradict ``Content-Length``.
    """
    has_length = bool(environ.get("CONTENT_LENGTH"))
    headers: list[tuple[bytes, bytes]] = []
    append = headers.append
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key == "HTTP_CONTENT_LENGTH" or key == "HTTP_CONTENT_TYPE":
                continue  # not PEP 3333 keys; the real ones follow
            if key == "HTTP_TRANSFER_ENCODING" and has_length:
                continue
            append((_header_name(key), value.encode("latin-1")))
        elif (key == "CONTENT_TYPE" or key == "CONTENT_LENGTH") and value:
            append((b"content-type" if key == "CONTENT_TYPE" else b"content-length", value.encode("latin-1")))
    return headers


def _raw_path(environ: Mapping[str, Any], full_path: str) -> bytes:
    """The path as the client sent it: from ``RAW_URI``/``REQUEST_URI`` when the server
    gives one, else rebuilt (percent-encoded) from ``SCRIPT_NAME`` + ``PATH_INFO``."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target:
        path = target.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/"):
            # absolute-form (RFC 9112 3.2.2): http://host/path -> /path
            _, _, rest = path.partition("://")
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else "/"
        try:
            return path.encode("latin-1")
        except UnicodeEncodeError:
            pass
    try:
        return quote_from_bytes(full_path.encode("latin-1"), safe=_PATH_SAFE).encode("ascii")
    except UnicodeEncodeError:
        return quote_from_bytes(full_path.encode("utf-8"), safe=_PATH_SAFE).encode("ascii")


def _port(value: Any) -> Optional[int]:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value)
    return None


def _http_version(protocol: str) -> str:
    if protocol == "HTTP/1.1":
        return "1.1"
    if protocol == "HTTP/1.0":
        return "1.0"
    return protocol[5:] if protocol.startswith("HTTP/") else "1.0"


def build_http_scope(environ: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    """The ``http`` scope for the request described by ``environ``.

    ``path`` is the full path, ``root_path`` (``SCRIPT_NAME``) included, as the ASGI
    spec's WSGI-compatibility section says; ``state`` is a shallow copy of ``state``
    (the lifespan state). ``client`` is None when the environ has no remote port (Unix
    sockets); ``server`` has None as port then. On a TLS connection ``extensions`` holds
    the ASGI ``tls`` extension (absent on plain connections).
    """
    script_name = environ.get("SCRIPT_NAME", "")
    full_path = script_name + environ.get("PATH_INFO", "")
    remote_port = _port(environ.get("REMOTE_PORT"))
    remote_addr = environ.get("REMOTE_ADDR")
    scope = {
        "type": "http",
        "asgi": {"version": ASGI_VERSION, "spec_version": HTTP_SPEC_VERSION},
        "http_version": _http_version(environ.get("SERVER_PROTOCOL", "HTTP/1.0")),
        "method": environ["REQUEST_METHOD"],
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": wsgi_text_to_str(full_path),
        "raw_path": _raw_path(environ, full_path),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": wsgi_text_to_str(script_name),
        "headers": _headers(environ),
        "client": (remote_addr, remote_port) if remote_addr and remote_port is not None else None,
        "server": (environ.get("SERVER_NAME", ""), _port(environ.get("SERVER_PORT"))),
        "state": dict(state),
    }
    tls = environ.get(TLS_ENVIRON_KEY)
    if tls is not None:
        scope["extensions"] = {"tls": tls.asgi_extension()}
    return scope


def build_websocket_scope(
    environ: Mapping[str, Any], state: Mapping[str, Any], subprotocols: Iterable[str]
) -> dict[str, Any]:
    """The ``websocket`` scope for the upgrade request described by ``environ``.

    As :func:`build_http_scope`, without ``method``; ``scheme`` is ``ws`` or ``wss``
    (from ``wsgi.url_scheme``, so after trusted-proxy handling), ``subprotocols`` the
    client's offers in order, and ``extensions`` offers the WebSocket Denial Response
    (``websocket.http.response``).
    """
    scope = build_http_scope(environ, state)
    del scope["method"]
    scope["type"] = "websocket"
    scope["asgi"] = {"version": ASGI_VERSION, "spec_version": WEBSOCKET_SPEC_VERSION}
    scope["scheme"] = _WEBSOCKET_SCHEMES.get(scope["scheme"], scope["scheme"])
    scope["subprotocols"] = list(subprotocols)
    scope.setdefault("extensions", {})["websocket.http.response"] = {}
    return scope
