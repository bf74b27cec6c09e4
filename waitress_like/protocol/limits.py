"""Size and count limits for the request parser, as plain values.

The protocol modules take a :class:`ParserLimits` instead of reading settings; the server
builds one from its settings (``waitress_like.server``). This module imports nothing of
the parser's, so every protocol module may import it.
"""

from __future__ import annotations

__all__ = ["ParserLimits"]


class ParserLimits:
    """Size limits for one connection's requests; all in bytes except ``max_header_count``.

    * ``max_header_bytes`` - request line + header fields + blank line, per request; the
      same budget applies again to a chunked body's trailer section (431 when exceeded).
    * ``max_body_bytes`` - decoded body bytes (413).
    * ``max_request_line_bytes`` - the request line without its CRLF (414).
    * ``max_field_bytes`` - one field line without its CRLF (431).
    * ``max_header_count`` - field lines per head or trailer section (431).
    * ``max_chunk_line_bytes`` - one chunk-size line with its extensions, without CRLF (400).

    The per-line defaults equal ``max_header_bytes``'s default, so out of the box a line is
    bounded only by the head as a whole, as in waitress; lower them to cap single lines.
    The count and chunk-line defaults guard against floods of tiny fields and endless
    chunk extensions, which cost far more Python objects or scanning than their bytes.
    """

    __slots__ = (
        "max_header_bytes",
        "max_body_bytes",
        "max_request_line_bytes",
        "max_field_bytes",
        "max_header_count",
        "max_chunk_line_bytes",
    )
    max_header_bytes: int
    max_body_bytes: int
    max_request_line_bytes: int
    max_field_bytes: int
    max_header_count: int
    max_chunk_line_bytes: int

    def __init__(
        self,
        *,
        max_header_bytes: int = 262144,
        max_body_bytes: int = 1073741824,
        max_request_line_bytes: int = 262144,
        max_field_bytes: int = 262144,
        max_header_count: int = 1000,
        max_chunk_line_bytes: int = 4096,
    ) -> None:
        """Raises TypeError for a non-int, ValueError for a value below its minimum."""
        self.max_header_bytes = _checked("max_header_bytes", max_header_bytes, 1)
        self.max_body_bytes = _checked("max_body_bytes", max_body_bytes, 0)
        self.max_request_line_bytes = _checked("max_request_line_bytes", max_request_line_bytes, 1)
        self.max_field_bytes = _checked("max_field_bytes", max_field_bytes, 1)
        self.max_header_count = _checked("max_header_count", max_header_count, 1)
        self.max_chunk_line_bytes = _checked("max_chunk_line_bytes", max_chunk_line_bytes, 1)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)}" for name in self.__slots__)
        return f"ParserLimits({shown})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not ParserLimits:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


def _checked(name: str, value: int, minimum: int) -> int:
    if type(value) is not int:  # bool is an int subclass, and not a size
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value
