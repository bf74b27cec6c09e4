"""The events :class:`~waitress_like.protocol.RequestParser` produces.

One request is always the sequence ``RequestHead``, zero or more ``BodyChunk``,
``EndOfRequest``. Events are small value objects: they compare equal when their fields are
equal, and nothing in the package mutates one after building it (treat them as immutable;
they are not frozen, because freezing costs a slow ``object.__setattr__`` per field on the
hot path).

Everything textual is latin-1 decoded, so every received byte maps to exactly one
character and ``text.encode("latin-1")`` gives the bytes back (PEP 3333 "native strings").
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["Event", "RequestHead", "BodyChunk", "EndOfRequest"]

Fields = tuple[tuple[str, str], ...]


class Event:
    """Base class: equality, hashing and ``repr`` from the ``_fields`` each subclass names."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Event)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"


class RequestHead(Event):
    """A request line plus header section, validated (RFC 9112 sections 3 and 5).

    * ``method`` - a token without lower-case letters (``"GET"``, ``"M-SEARCH"``).
    * ``target`` - the request-target exactly as sent, a ``"#"`` fragment included.
      Bytes 0x80-0xFF are allowed in it (latin-1 decoded, as everywhere).
    * ``path`` - the path of the target, still percent-encoded: ``"/p"`` for origin-form and
      for ``"http://h/p?q"`` (an empty absolute path becomes ``"/"``), ``"*"`` for the
      asterisk form, ``""`` for the authority form of CONNECT.
    * ``query`` - the text after the first ``"?"``, or ``""``.
    * ``path`` and ``query`` never include a fragment: a client should not send one
      (RFC 9112 3.2), and when it does, everything from the first ``"#"`` is dropped.
    * ``version`` - ``(1, 1)`` or ``(1, 0)``: the version the request is processed as, so
      ``(1, 1)`` for a higher minor version such as HTTP/1.2 (RFC 9110 2.5).
    * ``headers`` - ``(name, value)`` pairs in arrival order, duplicates kept, names as
      received, values without leading or trailing SP/HTAB.
    * ``content_length`` - the declared body length, or None (always None when chunked).
    * ``chunked`` - the body uses the chunked transfer coding.
    * ``keep_alive`` - another request may follow on this connection (RFC 9112 9.3).
    * ``expect_continue`` - the client waits for ``100 Continue`` before sending the body.
    """

    __slots__ = (
        "method",
        "target",
        "path",
        "query",
        "version",
        "headers",
        "content_length",
        "chunked",
        "keep_alive",
        "expect_continue",
    )
    _fields = __slots__

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        query: str,
        version: tuple[int, int],
        headers: Fields,
        content_length: int | None,
        chunked: bool,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue


class BodyChunk(Event):
    """A piece of the decoded body; ``data`` is never empty.

    Chunk boundaries carry no meaning: they follow how the bytes happened to arrive.
    """

    __slots__ = ("data",)
    _fields = __slots__

    def __init__(self, data: bytes) -> None:
        self.data = data


class EndOfRequest(Event):
    """The body is complete. ``trailers`` holds chunked trailer fields, else ``()``."""

    __slots__ = ("trailers",)
    _fields = __slots__

    def __init__(self, trailers: Fields = ()) -> None:
        self.trailers = trailers
