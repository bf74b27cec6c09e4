"""permessage-deflate (RFC 7692): negotiating it in the handshake and (de)compressing messages.

The server side only. :func:`negotiate_deflate` reads the client's offers from its
``Sec-WebSocket-Extensions`` fields and returns the :class:`DeflateParameters` to answer
with, or None to run without compression. A connection then compresses what it sends
with a :class:`MessageCompressor` and inflates what it receives with a
:class:`MessageDecompressor`, both built from those parameters.

Memory: per connection, zlib's deflate state takes about ``2 ** (window_bits + 2) +
2 ** (mem_level + 9)`` bytes and inflate ``2 ** window_bits``; :class:`DeflateOptions`
defaults to a 4 KiB window and memLevel 5 (about 36 KiB in all) rather than zlib's 32 KiB
window and memLevel 8 (about 290 KiB), trading a little compression for many more
connections per process.

Nothing here does I/O. Objects are not thread-safe: a connection's thread owns them.
"""

from __future__ import annotations

import re
import zlib
from typing import Iterable, Optional

from .grammar import TCHAR, TOKEN_RE

__all__ = [
    "DeflateOptions",
    "DeflateParameters",
    "MessageCompressor",
    "MessageDecompressor",
    "negotiate_deflate",
    "parse_extensions",
]

EXTENSION_NAME = "permessage-deflate"

# RFC 7692 7.2.1, 7.2.2: the sender removes the empty stored block a flush ends with, and
# the receiver appends it back before inflating.
_TAIL = b"\x00\x00\xff\xff"

# RFC 6455 9.1: extension = token *( ";" param ), param = token [ "=" (token / quoted-string) ],
# separated by optional whitespace; elements of the list are separated by commas.
_EXTENSION_RE = re.compile(rf"[ \t]*([{TCHAR}]+)")
_PARAM_RE = re.compile(
    rf'[ \t]*;[ \t]*([{TCHAR}]+)(?:[ \t]*=[ \t]*(?:([{TCHAR}]+)|"((?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*)"))?'
)
_LIST_SEPARATOR_RE = re.compile(r"[ \t]*(?:,|\Z)")
_EMPTY_ELEMENT_RE = re.compile(r"[ \t]*,")
_BLANK_REST_RE = re.compile(r"[ \t]*\Z")
_TOKEN_RE = TOKEN_RE
_QUOTED_PAIR_RE = re.compile(r"\\(.)")
# RFC 7692 7.1.2: a decimal integer 8..15 without leading zeros.
_WINDOW_BITS_RE = re.compile(r"[89]|1[0-5]")

Params = list[tuple[str, Optional[str]]]


def parse_extensions(values: Iterable[str]) -> list[tuple[str, Params]] | None:
    """Parse ``Sec-WebSocket-Extensions`` field values into ``(name, params)`` pairs.

    Names and parameter names are lower-cased (extension tokens are case-insensitive);
    a parameter value is None when absent, and a quoted value is unescaped. Returns None
    when the syntax is broken anywhere, including a quoted value that is not a token once
    unescaped (RFC 6455 9.1).
    """
    text = ",".join(values)
    extensions: list[tuple[str, Params]] = []
    position = 0
    length = len(text)
    while position < length:
        empty = _EMPTY_ELEMENT_RE.match(text, position)
        if empty is not None:  # RFC 9110 5.6.1: recipients accept empty list elements
            position = empty.end()
            continue
        if _BLANK_REST_RE.match(text, position) is not None:
            break
        match = _EXTENSION_RE.match(text, position)
        if match is None:
            return None
        parsed = _parse_params(text, match.end())
        if parsed is None:
            return None
        params, position = parsed
        separator = _LIST_SEPARATOR_RE.match(text, position)
        if separator is None:
            return None
        position = separator.end()
        extensions.append((match.group(1).lower(), params))
    return extensions


def _parse_params(text: str, position: int) -> tuple[Params, int] | None:
    """The ``; name[=value]`` parameters from ``position``, and where they end."""
    params: Params = []
    while (param := _PARAM_RE.match(text, position)) is not None:
        name, token, quoted = param.groups()
        value = token
        if quoted is not None:
            value = _QUOTED_PAIR_RE.sub(r"\1", quoted)
            if _TOKEN_RE.fullmatch(value) is None:
                return None
        params.append((name.lower(), value))
        position = param.end()
    return params, position


class DeflateOptions:
    """What the server is willing to use; the client's offer decides within these bounds.

    * ``server_max_window_bits`` - the largest LZ77 window (9..15) we compress with. When
      the client's offer asks for less we use the smaller value; if it asks for 8, which
      zlib cannot produce for raw deflate, we accept but send every message uncompressed.
    * ``client_max_window_bits`` - the window (8..15) we ask the client to compress with,
      when its offer says it can take that parameter; smaller saves our inflate memory.
    * ``server_no_context_takeover`` - compress every message on its own (no shared
      history between messages), even if the client did not ask for it.
    * ``client_no_context_takeover`` - ask the client to do the same, so we can drop the
      inflate history between messages.
    * ``compress_level`` (0..9, or -1 for zlib's default) and ``mem_level`` (1..9) tune
      our compressor and are not negotiated.

    Raises TypeError or ValueError (naming the option) for a value out of range.
    """

    __slots__ = (
        "server_max_window_bits",
        "client_max_window_bits",
        "server_no_context_takeover",
        "client_no_context_takeover",
        "compress_level",
        "mem_level",
    )

    def __init__(
        self,
        *,
        server_max_window_bits: int = 12,
        client_max_window_bits: int = 12,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        compress_level: int = -1,
        mem_level: int = 5,
    ) -> None:
        self.server_max_window_bits = _checked_int("server_max_window_bits", server_max_window_bits, 9, 15)
        self.client_max_window_bits = _checked_int("client_max_window_bits", client_max_window_bits, 8, 15)
        self.server_no_context_takeover = bool(server_no_context_takeover)
        self.client_no_context_takeover = bool(client_no_context_takeover)
        self.compress_level = _checked_int("compress_level", compress_level, -1, 9)
        self.mem_level = _checked_int("mem_level", mem_level, 1, 9)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"DeflateOptions({shown})"


def _checked_int(name: str, value: int, low: int, high: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


class DeflateParameters:
    """The negotiated permessage-deflate parameters of one connection (RFC 7692 7.1).

    ``server_max_window_bits`` / ``client_max_window_bits`` are None when the response
    leaves them out (the sender may then use up to 15). ``header_value()`` is the
    ``Sec-WebSocket-Extensions`` value to answer with. ``compress_level`` and ``mem_level``
    are our compressor settings, carried along from :class:`DeflateOptions`.
    """

    __slots__ = (
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
        "compress_level",
        "mem_level",
    )

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | None = None,
        compress_level: int = -1,
        mem_level: int = 5,
    ) -> None:
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_level = compress_level
        self.mem_level = mem_level

    def header_value(self) -> str:
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)

    def __eq__(self, other: object) -> bool:
        if type(other) is not DeflateParameters:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"DeflateParameters({shown})"


def negotiate_deflate(header_values: Iterable[str], options: DeflateOptions) -> DeflateParameters | None:
    """Accept the first acceptable permessage-deflate offer, or return None.

    ``header_values`` are the values of every ``Sec-WebSocket-Extensions`` field of the
    request, in order. RFC 7692 5: an offer with an unknown parameter, a parameter given
    twice or an invalid value is declined (the next offer is tried), never an error; a
    field that is not even syntactically valid declines every offer in it. Other
    extensions are ignored: this server implements no other.
    """
    extensions = parse_extensions(header_values)
    if not extensions:
        return None
    for name, params in extensions:
        if name == EXTENSION_NAME:
            accepted = _accept_offer(params, options)
            if accepted is not None:
                return accepted
    return None


_FLAG_PARAMS = ("server_no_context_takeover", "client_no_context_takeover")


def _accept_offer(params: Params, options: DeflateOptions) -> DeflateParameters | None:
    """The response to one offer (RFC 7692 7.1.1, 7.1.2), or None to decline it."""
    offered: dict[str, str | None] = {}
    for name, value in params:
        if name in offered:
            return None
        if name in _FLAG_PARAMS:
            if value is not None:
                return None
        elif name == "server_max_window_bits":
            if value is None or _WINDOW_BITS_RE.fullmatch(value) is None:
                return None
        elif name == "client_max_window_bits":
            if value is not None and _WINDOW_BITS_RE.fullmatch(value) is None:
                return None
        else:
            return None
        offered[name] = value
    server_bits = options.server_max_window_bits
    requested = offered.get("server_max_window_bits")
    if requested is not None:
        server_bits = min(server_bits, int(requested))
    client_bits: int | None = None
    if "client_max_window_bits" in offered:
        # Only a client that names the parameter may be sent it (7.1.2.2).
        limit = offered["client_max_window_bits"]
        client_bits = min(options.client_max_window_bits, int(limit) if limit is not None else 15)
    return DeflateParameters(
        server_no_context_takeover=options.server_no_context_takeover
        or "server_no_context_takeover" in offered,
        client_no_context_takeover=options.client_no_context_takeover
        or "client_no_context_takeover" in offered,
        server_max_window_bits=server_bits if server_bits < 15 or requested is not None else None,
        client_max_window_bits=client_bits if client_bits is not None and client_bits < 15 else None,
        compress_level=options.compress_level,
        mem_level=options.mem_level,
    )


class MessageCompressor:
    """Compresses outgoing messages (RFC 7692 7.2.1).

    ``enabled`` is False when the negotiated window is 8 bits: zlib (1.2.9 and later)
    refuses to build a raw deflate stream with a 256-byte window and older versions quietly
    use 512 bytes, which the peer would reject; a sender may always leave a message
    uncompressed (RSV1 clear), so we do that for every message instead.
    """

    __slots__ = ("enabled", "_compressor", "_flush_mode")

    def __init__(self, parameters: DeflateParameters) -> None:
        bits = parameters.server_max_window_bits or 15
        self.enabled = bits >= 9
        self._compressor = (
            zlib.compressobj(parameters.compress_level, zlib.DEFLATED, -bits, parameters.mem_level)
            if self.enabled
            else None
        )
        # Without context takeover each message must decompress on its own. A full flush
        # ends the message like a sync flush and also forgets the history, which spares
        # building a new compressor (and its buffers) per message.
        self._flush_mode = zlib.Z_FULL_FLUSH if parameters.server_no_context_takeover else zlib.Z_SYNC_FLUSH

    def compress(self, data: bytes) -> bytes:
        """The compressed payload of one whole message (the trailing empty block removed)."""
        compressor = self._compressor
        assert compressor is not None, "compress() needs enabled to be True"
        output = compressor.compress(data) + compressor.flush(self._flush_mode)
        # A flush always ends with an empty stored block: 00 00 ff ff (RFC 7692 7.2.1).
        return output[:-4]


class MessageDecompressor:
    """Inflates incoming messages piece by piece, never producing more than asked for.

    Per message: :meth:`feed` each received payload piece, then :meth:`finish`. Both take
    ``max_length``, the most output bytes wanted (at least 1), and return at most that
    many: a caller that gets exactly ``max_length`` bytes while it allowed only
    ``max_length - 1`` knows the message is too big, having inflated one byte more than
    its limit and no further (a decompression bomb never expands in memory). Corrupt data
    raises ``zlib.error``.
    """

    __slots__ = ("_bits", "_reset_per_message", "_inflater", "_finished")

    def __init__(self, parameters: DeflateParameters) -> None:
        # zlib-based clients asked for 8 bits compress with 9 (see MessageCompressor), and
        # a 512-byte window costs nothing worth saving, so inflate with at least 9.
        self._bits = max(9, parameters.client_max_window_bits or 15)
        self._reset_per_message = parameters.client_no_context_takeover
        self._inflater = zlib.decompressobj(-self._bits)
        self._finished = False

    def feed(self, data: bytes | bytearray, max_length: int) -> bytes:
        if self._finished:
            # The peer ended its deflate stream (BFINAL) inside this message; data after
            # that is not part of any stream.
            if data:
                raise zlib.error("data after the final deflate block")
            return b""
        inflater = self._inflater
        output = inflater.decompress(data, max_length)
        if inflater.eof:
            self._finished = True
            if inflater.unused_data:
                raise zlib.error("data after the final deflate block")
        return output

    def finish(self, max_length: int) -> bytes:
        """Inflate the end of the message; the next :meth:`feed` starts a new one."""
        output = b"" if self._finished else self._inflater.decompress(_TAIL, max_length)
        if self._finished or self._reset_per_message:
            # A stream that ended (BFINAL) cannot continue: the next message starts anew.
            self._inflater = zlib.decompressobj(-self._bits)
            self._finished = False
        return output
