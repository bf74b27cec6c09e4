"""Response writers: a response head and body pieces in, framed bytes and one verdict out.

A :class:`ResponseWriter` frames one response to one request, sans I/O (RFC 9112 sections
6 and 7). It is made from what the request said (method, version, whether it allows
another request after it), takes the application's status and headers, and then:

* :meth:`~ResponseWriter.start` picks the framing and returns the head's bytes;
* :meth:`~ResponseWriter.body` frames each piece of the body;
* :meth:`~ResponseWriter.end` adds what ends the body;
* :attr:`~ResponseWriter.keep_alive` is the verdict: may the connection carry another
  request after this response? It only ever turns from True to False.

The framing follows from the request and the head, in this order:

=================  ============================================================
``NO_BODY``        a HEAD request, or a 1xx, 204 or 304 status: the body is dropped
``LENGTH``         the head has a Content-Length: exactly that many bytes go out
``CHUNKED``        HTTP/1.1 without a length: the chunked transfer coding
``UNTIL_CLOSE``    HTTP/1.0 without a length: the body ends when the connection does
=================  ============================================================

What the server adds to every head (Date, Server, configured default headers) is its
policy, given once as a :class:`HeadPolicy`. ``Content-Length`` comes from the
application (or :meth:`~ResponseWriter.set_content_length`); ``Transfer-Encoding`` and
``Connection`` only ever from the writer.

A route answers with the same status and header list again and again, so a
:class:`HeadPolicy` remembers the heads it has checked and framed: a head equal to one
seen before (compared by value, as a tuple) is neither checked nor formatted again.

Thread contract: a writer belongs to the one thread producing its response; a
:class:`HeadPolicy` is shared by all. Its settings are read-only; its two caches are
dicts that any thread reads and fills with single dict operations (atomic in CPython),
and a race only makes the same entry twice.
"""

from __future__ import annotations

import enum
from typing import Any, Hashable, Optional, Sequence

from ..errors import LocalProtocolError
from .response import (
    LAST_CHUNK,
    check_header,
    http_date,
    parse_status,
    simple_response,
)

__all__ = ["CACHED_HEADS", "CACHED_HEAD_MAX_BYTES", "Framing", "HeadPolicy", "ResponseWriter"]

Headers = Sequence[tuple[str, str]]
HeaderList = list[tuple[str, str]]


class Framing(enum.Enum):
    """How the end of a response body is marked (RFC 9112 6.3)."""

    NO_BODY = "no body"
    LENGTH = "content-length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until close"


class HeadPolicy:
    """The headers the server adds to every response head it frames.

    ``server`` is the Server header's value ("" for none), ``date`` whether to send Date;
    an application's own Date or Server wins over ours. ``default_headers`` are sent
    unless the application set a header of the same name (compared case-insensitively).

    ``checked_heads`` maps ``(status, header tuple)`` to what :meth:`ResponseWriter.set_head`
    found in it; ``framed_heads`` maps that key and the framing to the bytes
    :meth:`ResponseWriter.start` returns. Each holds at most :data:`CACHED_HEADS` entries
    of at most :data:`CACHED_HEAD_MAX_BYTES` of header text, and is emptied when full, so
    heads that never repeat cost only their own checking.
    """

    __slots__ = ("server", "date", "default_headers", "_default_names", "checked_heads", "framed_heads")

    def __init__(
        self, server: str = "", date: bool = True, default_headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.server = server
        self.date = date
        self.default_headers = default_headers
        self._default_names = frozenset(name.lower() for name, _ in default_headers)
        self.checked_heads: dict[Hashable, tuple[int, Optional[int], bool, bool]] = {}
        self.framed_heads: dict[Hashable, bytes] = {}

    def default_lines(self, headers: Headers) -> str:
        """The default header lines for a response whose own headers are ``headers``."""
        names = self._default_names
        given = {name.lower() for name, _ in headers if name.lower() in names}
        return "".join(
            f"{name}: {value}\r\n" for name, value in self.default_headers if name.lower() not in given
        )


#: How many heads each cache of a :class:`HeadPolicy` keeps (then it starts again), and
#: the largest header list (names and values) remembered: so the caches hold at most a
#: few megabytes, whatever the application sends.
CACHED_HEADS = 256
CACHED_HEAD_MAX_BYTES = 4096


def _text_bytes(headers: HeaderList) -> int:
    return sum(len(name) + len(value) for name, value in headers)


def _remember(cache: dict[Hashable, Any], key: Hashable, value: Any) -> None:
    if len(cache) >= CACHED_HEADS:
        cache.clear()
    cache[key] = value


# Chunks smaller than this are framed as one new bytes object (a copy), larger ones as three
# pieces around the application's own object.
_JOIN_CHUNKS_BELOW_BYTES = 8 * 1024

# The headers of a writer without a head yet. Shared, so never changed in place (nothing
# here changes a header list in place: a new Content-Length makes a new list).
_NO_HEADERS: HeaderList = []


def _head_key(status: object, headers: object) -> Optional[Hashable]:
    """``(status, headers as a tuple)``, or None for a head that cannot be a key (it is
    then checked every time, and refused if malformed); the key may still hold an
    unhashable item. A key equal to a checked one has the same text, so what is sent is
    the same; only a str or tuple subclass in it is not refused as a first sight would
    refuse it."""
    if type(status) is not str or type(headers) is not list:
        return None
    return (status, tuple(headers))


class ResponseWriter:
    """Frames one response to one request; see the module docstring.

    Calls come in this order: :meth:`set_head` (again, to replace the head, until
    :meth:`start`), :meth:`set_content_length` if the caller knows the body's real length,
    :meth:`start`, any number of :meth:`body` or :meth:`body_from_file`, :meth:`end`. Or,
    instead of :meth:`start`, :meth:`error_response`. Out-of-order calls raise
    :class:`LocalProtocolError`. Methods raise nothing else.

    Readable after the calls that set them: ``status``, ``status_code``, ``headers``
    (the application's list, or a copy with the Content-Length replaced),
    ``content_length``, ``framing``, ``body_bytes`` (body bytes put on the wire, framing
    excluded) and the verdict ``keep_alive``.
    """

    __slots__ = (
        "policy",
        "method",
        "version",
        "keep_alive",
        "status",
        "status_code",
        "headers",
        "content_length",
        "framing",
        "body_bytes",
        "finished",
        "_app_date",
        "_app_server",
        "_head_key",
    )

    def __init__(self, policy: HeadPolicy, method: str, version: tuple[int, int], keep_alive: bool) -> None:
        self.policy = policy
        self.method = method
        self.version = version
        self.keep_alive = keep_alive
        self.status = ""
        self.status_code = 0
        self.headers: HeaderList = _NO_HEADERS
        self.content_length: Optional[int] = None
        self.framing: Optional[Framing] = None  # decided by start()
        self.body_bytes = 0
        self.finished = False
        self._app_date = False
        self._app_server = False
        self._head_key: Optional[Hashable] = None  # the head as a cache key; None: uncached

    # -- the head ----------------------------------------------------------------------

    def set_head(self, status: object, headers: object) -> None:
        """Take the application's status (``"200 OK"``) and header list as the head.

        Raises :class:`LocalProtocolError`, keeping any head set before, for a bad
        status, a headers object that is not a list of ``(str, str)`` tuples, a field the
        application may not send (see :func:`~.response.check_header`), or an invalid
        Content-Length.
        """
        if self.framing is not None or self.finished:
            raise LocalProtocolError("the response head is already out")
        key = _head_key(status, headers)
        checked = None
        if key is not None:
            try:
                checked = self.policy.checked_heads.get(key)
            except TypeError:  # an unhashable item (a list, say): checked, and refused, below
                key = None
        if checked is None:
            checked = self._check_head(status, headers)
            if key is not None and _text_bytes(headers) <= CACHED_HEAD_MAX_BYTES:  # type: ignore[arg-type]
                _remember(self.policy.checked_heads, key, checked)
            else:
                key = None
        self.status = status  # type: ignore[assignment]  # checked: it is a str
        self.headers = headers  # type: ignore[assignment]  # checked: a list of tuples
        self.status_code, self.content_length, self._app_date, self._app_server = checked
        self._head_key = key

    @staticmethod
    def _check_head(status: object, headers: object) -> tuple[int, Optional[int], bool, bool]:
        """Check a head (see :meth:`set_head`); return its status code, Content-Length and
        whether it carries its own Date and Server."""
        status_code = parse_status(status)
        if type(headers) is not list:
            raise LocalProtocolError(f"headers must be a list, got {type(headers).__name__}")
        content_length = None
        app_date = app_server = False
        for item in headers:
            if type(item) is not tuple or len(item) != 2:
                raise LocalProtocolError(f"each header must be a (name, value) tuple, got {item!r}")
            name, value = item
            lowered = check_header(name, value)
            if lowered == "content-length":
                if not value.isdigit() or not value.isascii():
                    raise LocalProtocolError(f"invalid Content-Length {value!r}")
                content_length = int(value)
            elif lowered == "date":
                app_date = True  # the application's own value wins over ours
            elif lowered == "server":
                app_server = True
        return status_code, content_length, app_date, app_server

    def set_content_length(self, length: int) -> None:
        """Say the body is ``length`` bytes, replacing the application's Content-Length.

        For a caller that knows the real length (a list body, a file's size). The
        application's header list is left untouched: the writer keeps a copy.
        """
        if self.framing is not None or self.finished:
            raise LocalProtocolError("the response head is already out")
        header = ("Content-Length", str(length))
        if self.content_length is None:
            self.headers = [*self.headers, header]
        else:
            headers = [item for item in self.headers if item[0].lower() != "content-length"]
            headers.append(header)
            self.headers = headers
        self.content_length = length
        if self._head_key is not None:  # the same head and length give the same headers
            self._head_key = (self._head_key, length)

    def start(self, last_response: bool = False) -> bytes:
        """Decide the framing and return the status line and header section.

        ``last_response``: the connection reads nothing after this response (limits, or
        the server is stopping), so the head says ``Connection: close``.
        """
        if self.framing is not None or self.finished or not self.status:
            raise LocalProtocolError("start() needs a head set, and comes once")
        version = self.version
        status_code = self.status_code
        # RFC 9110 6.4.1: 1xx, 204 and 304 responses never carry content.
        if self.method == "HEAD" or status_code < 200 or status_code == 204 or status_code == 304:
            framing = Framing.NO_BODY
        elif self.content_length is not None:
            framing = Framing.LENGTH
        elif version >= (1, 1):
            framing = Framing.CHUNKED
        else:
            framing = Framing.UNTIL_CLOSE
        keep_alive = self.keep_alive and not last_response and framing is not Framing.UNTIL_CLOSE
        policy = self.policy
        date = http_date() if policy.date and not self._app_date else ""
        if self._head_key is None:
            head = self._frame_head(framing, keep_alive, date)
        else:
            key = (self._head_key, version, framing, keep_alive, date)
            cached = policy.framed_heads.get(key)
            if cached is None:
                cached = self._frame_head(framing, keep_alive, date)
                _remember(policy.framed_heads, key, cached)
            head = cached
        self.framing = framing  # only now: a start() that raised has changed nothing
        self.keep_alive = keep_alive
        return head

    def _frame_head(self, framing: Framing, keep_alive: bool, date: str) -> bytes:
        """The status line and header section; ``date`` is the Date value ("" for none)."""
        version = self.version
        policy = self.policy
        # One str grown in place (CPython does for +=): cheaper than joining a list of lines.
        text = "HTTP/%d.%d %s\r\n" % (version[0], version[1], self.status)
        for name, value in self.headers:
            text += f"{name}: {value}\r\n"
        if policy.default_headers:
            text += policy.default_lines(self.headers)
        if framing is Framing.CHUNKED:
            text += "Transfer-Encoding: chunked\r\n"
        if date:
            text += f"Date: {date}\r\n"
        if policy.server and not self._app_server:
            text += f"Server: {policy.server}\r\n"
        if not keep_alive:
            text += "Connection: close\r\n\r\n"
        elif version < (1, 1):
            # waitress's spelling; the token is case-insensitive (RFC 9110 7.6.1), but
            # HTTP/1.0 clients and tests written against waitress compare it.
            text += "Connection: Keep-Alive\r\n\r\n"
        else:
            text += "\r\n"
        return text.encode("latin-1")

    def error_response(self, status_code: int, detail: str) -> bytes:
        """A whole response the server gives instead of the application's (which may have
        set a head, but not started it): ``status_code`` with a text/plain ``detail``, in
        the request's version, without its body for HEAD, and the verdict is close.
        """
        if self.framing is not None or self.finished:
            raise LocalProtocolError("the response head is already out")
        self.finished = True
        self.keep_alive = False
        self.status_code = status_code
        data = simple_response(status_code, detail, self.policy.server, close=True, version=self.version)
        if self.method == "HEAD":
            return data[: data.index(b"\r\n\r\n") + 4]
        return data

    # -- the body ----------------------------------------------------------------------

    def body(self, data: bytes, out: list[bytes]) -> int:
        """Append the bytes that carry ``data`` to ``out``; return the bytes dropped.

        Pieces are appended, never joined, so a large body is not copied. With
        Content-Length framing, bytes past the length are dropped (so the connection
        stays usable, as in waitress); the return value says how many, to warn about.
        Without a body, everything is dropped silently (a HEAD response): 0.
        """
        if self.finished:
            raise LocalProtocolError("body() after end()")
        if not data:
            return 0  # an empty chunk would end a chunked body
        framing = self.framing
        if framing is Framing.LENGTH:
            room = self.content_length - self.body_bytes  # type: ignore[operator]
            size = len(data)
            if size > room:
                data = data[:room]
                self.body_bytes += room
                if room:
                    out.append(data)
                return size - room
            self.body_bytes += size
            out.append(data)
        elif framing is Framing.CHUNKED:
            size = len(data)
            self.body_bytes += size
            # Upper-case hex, as waitress writes it (RFC 9112 7.1 allows either case). A
            # small chunk goes out in one piece, which is cheaper than three; a large one
            # is not copied.
            if size < _JOIN_CHUNKS_BELOW_BYTES:
                out.append(b"%X\r\n%b\r\n" % (size, data))
            else:
                out += (b"%X\r\n" % size, data, b"\r\n")
        elif framing is Framing.UNTIL_CLOSE:
            self.body_bytes += len(data)
            out.append(data)
        elif framing is None:
            raise LocalProtocolError("body() before start()")
        return 0

    def body_from_file(self, count: int) -> int:
        """The caller sends up to ``count`` body bytes itself (from a file, with sendfile):
        return how many of them it may send. As :meth:`body` does, without the data: not
        past the Content-Length, nothing without a body. A chunked body cannot be sent
        this way (LocalProtocolError).
        """
        framing = self.framing
        if self.finished or framing is None or framing is Framing.CHUNKED:
            raise LocalProtocolError(f"no file body here (framing {framing}, finished {self.finished})")
        if framing is Framing.NO_BODY:
            return 0
        if framing is Framing.LENGTH:
            count = min(count, self.content_length - self.body_bytes)  # type: ignore[operator]
        self.body_bytes += count
        return count

    def end(self, out: list[bytes]) -> int:
        """Append what ends the body to ``out``; return how many promised bytes are missing.

        A body shorter than its Content-Length leaves the client waiting for bytes that
        never come, so the verdict becomes close: closing is the only way to tell it, and
        keeps the next response from being read as the rest of this one.
        """
        framing = self.framing
        if framing is None or self.finished:
            raise LocalProtocolError("end() needs start() first, once")
        self.finished = True
        if framing is Framing.CHUNKED:
            out.append(LAST_CHUNK)
        elif framing is Framing.LENGTH:
            missing = self.content_length - self.body_bytes  # type: ignore[operator]
            if missing:
                self.keep_alive = False
            return missing
        return 0

    def abort(self) -> None:
        """The response stops short of what its framing promised (the application failed
        after the head went out, or the client left): the verdict is close."""
        self.finished = True
        self.keep_alive = False
