"""Hypothesis properties of RequestParser.

(a) However the same bytes are split across ``feed`` calls, the events, the error status,
    the final state and the leftover byte count are the same.
(b) Arbitrary bytes only ever raise RemoteProtocolError, never anything else.
(c) Generated valid requests (pipelined, with Content-Length or chunked bodies, chunk
    extensions and trailers) parse back to exactly what was generated.
(d) (a) and (b) again for the chunked body reader and the trailer section alone: a valid
    chunked head followed by chunk-shaped garbage, so every input reaches the reader.
"""

from __future__ import annotations

from typing import Any, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitress_like.protocol import BodyChunk, EndOfRequest, ParserLimits, RequestHead

from .test_request_parser import Event, Outcome, run_pieces

TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FIELD_VCHAR = "".join(chr(code) for code in [*range(0x21, 0x7F), *range(0x80, 0x100)])
METHOD_CHARS = "".join(char for char in TCHAR if not char.islower())
TARGET_CHARS = "".join(
    chr(code) for code in [*range(0x21, 0x7F), *range(0x80, 0x100)] if chr(code) not in "#?"
)
HOST_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-._~"

INTERPRETED = {"host", "content-length", "transfer-encoding", "connection", "expect", "content-type"}
FORBIDDEN_TRAILERS = INTERPRETED | {
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "authorization",
    "proxy-authorization",
}

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -------------------------------------------------------------------------------

# Pieces of HTTP, good and bad, so that random concatenations reach deep parser states.
FRAGMENTS = [
    b"GET", b"POST", b"OPTIONS", b"CONNECT", b"get", b" ", b"  ", b"\t", b"/", b"/a?b=c", b"*",
    b"http://h/p?q", b"h:80", b"#", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.", b"\r\n", b"\r\n\r\n",
    b"\r", b"\n", b"Host: x", b"Host:", b"Content-Length: ", b"Content-Length: 3",
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked", b"Connection: close",
    b"Connection: keep-alive", b"Expect: 100-continue", b"X-A: b", b": ", b":", b"0", b"1", b"5",
    b"a", b"ff", b";", b";e=v", b'="q"', b"hello", b"\x00", b"\x7f", b"\xff", b"\xc3\xa9",
    b"0\r\n\r\n", b"5\r\nhello\r\n",
]  # fmt: skip

fragment_bytes = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=4)), max_size=40).map(
    b"".join
)
small_limits = st.builds(
    ParserLimits,
    max_header_bytes=st.integers(16, 400),
    max_body_bytes=st.integers(0, 100),
    max_request_line_bytes=st.integers(8, 300),
    max_field_bytes=st.integers(4, 200),
    max_header_count=st.integers(1, 12),
    max_chunk_line_bytes=st.integers(1, 64),
)
any_limits = st.one_of(st.just(ParserLimits()), small_limits)


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    """Cut ``data`` into pieces of the given sizes (cycled), the last piece taking the rest."""
    pieces = []
    position = 0
    index = 0
    while position < len(data):
        size = sizes[index % len(sizes)] if sizes else len(data)
        pieces.append(data[position : position + size])
        position += size
        index += 1
    return pieces


piece_sizes = st.lists(st.integers(1, 16), min_size=1, max_size=20)


def token(max_size: int = 10) -> st.SearchStrategy[str]:
    return st.text(alphabet=TCHAR, min_size=1, max_size=max_size)


def field_value() -> st.SearchStrategy[str]:
    """A field value without leading/trailing whitespace (what the parser returns)."""
    middle = st.text(alphabet=FIELD_VCHAR + " \t", max_size=20)
    vchar = st.sampled_from(FIELD_VCHAR)
    return st.one_of(
        st.just(""),
        vchar,
        st.tuples(vchar, middle, vchar).map("".join),
    )


ows = st.sampled_from(["", " ", "\t", "  ", " \t "])


@st.composite
def fields(draw: Any, forbidden: set[str], max_size: int = 5) -> list[tuple[str, str, str, str]]:
    """(name, value, whitespace before, whitespace after) with names outside ``forbidden``."""
    name = token(12).filter(lambda candidate: candidate.lower() not in forbidden)
    drawn: list[tuple[str, str, str, str]] = draw(
        st.lists(st.tuples(name, field_value(), ows, ows), max_size=max_size)
    )
    return drawn


@st.composite
def chunk_extension(draw: Any) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 2))):
        text = draw(ows) + ";" + draw(ows) + draw(token(5))
        if draw(st.booleans()):
            quoted = '"' + draw(st.text(alphabet="abc ,;=\t", max_size=5)) + '"'
            text += draw(ows) + "=" + draw(ows) + draw(st.one_of(token(5), st.just(quoted)))
        parts.append(text)
    return "".join(parts)


@st.composite
def valid_request(draw: Any, last: bool) -> tuple[bytes, list[Event]]:
    """One valid request and the events it must produce. Only ``last`` may close."""
    method = draw(st.text(alphabet=METHOD_CHARS, min_size=1, max_size=8).filter(lambda m: m != "CONNECT"))
    path = "/" + draw(st.text(alphabet=TARGET_CHARS, max_size=12))
    query = draw(st.one_of(st.none(), st.text(alphabet=TARGET_CHARS + "?", max_size=12)))
    fragment = draw(st.one_of(st.none(), st.text(alphabet=TARGET_CHARS + "?#", max_size=8)))
    target = path if query is None else f"{path}?{query}"
    if fragment is not None:
        target += "#" + fragment  # sent, kept in the target, dropped from path and query
    version = draw(st.sampled_from([(1, 0), (1, 1)]))
    generated = draw(fields(INTERPRETED))
    lines = [(name, value, before, after) for name, value, before, after in generated]
    if version == (1, 1) or draw(st.booleans()):
        host = draw(st.text(alphabet=HOST_CHARS, max_size=10))
        port = draw(st.one_of(st.just(""), st.integers(0, 65535).map(lambda number: f":{number}")))
        lines.insert(draw(st.integers(0, len(lines))), ("Host", host + port, draw(ows), draw(ows)))
    keep_alive = not last or draw(st.booleans())
    if version == (1, 0) and keep_alive:
        lines.append(("Connection", "keep-alive", " ", ""))
    elif version == (1, 1) and not keep_alive:
        lines.append(("Connection", "close", " ", ""))

    body_kind = draw(
        st.sampled_from(["none", "length", "chunked"] if version == (1, 1) else ["none", "length"])
    )
    body = draw(st.binary(max_size=40)) if body_kind != "none" else b""
    encoded_body = b""
    trailers: tuple[tuple[str, str], ...] = ()
    content_length: Optional[int] = None
    if body_kind == "length":
        content_length = len(body)
        lines.append(("Content-Length", str(len(body)), " ", ""))
        encoded_body = body
    elif body_kind == "chunked":
        lines.append(("Transfer-Encoding", draw(st.sampled_from(["chunked", "Chunked"])), " ", ""))
        encoded_body = encode_chunked(draw, body)
        trailer_fields = draw(fields(FORBIDDEN_TRAILERS, max_size=3))
        for name, value, before, after in trailer_fields:
            encoded_body += f"{name}:{before}{value}{after}\r\n".encode("latin-1")
        encoded_body += b"\r\n"
        trailers = tuple((name, value) for name, value, _, _ in trailer_fields)

    head_text = f"{method} {target} HTTP/{version[0]}.{version[1]}\r\n"
    head_text += "".join(f"{name}:{before}{value}{after}\r\n" for name, value, before, after in lines)
    data = draw(st.sampled_from([b"", b"\r\n"])) + head_text.encode("latin-1") + b"\r\n" + encoded_body
    head = RequestHead(
        method=method,
        target=target,
        path=path,
        query=query or "",
        version=version,
        headers=tuple((name, value) for name, value, _, _ in lines),
        content_length=content_length,
        chunked=body_kind == "chunked",
        keep_alive=keep_alive,
        expect_continue=False,
    )
    events: list[Event] = [head]
    if body:
        events.append(BodyChunk(body))
    events.append(EndOfRequest(trailers))
    return data, events


def encode_chunked(draw: Any, body: bytes) -> bytes:
    """``body`` as random chunks with random extensions, up to and including the last-chunk."""
    encoded = b""
    position = 0
    while position < len(body):
        size: int = draw(st.integers(1, len(body) - position))
        digits: str = draw(st.sampled_from(["{:x}", "{:X}", "{:04x}"])).format(size)
        extension: str = draw(chunk_extension())
        encoded += f"{digits}{extension}\r\n".encode("latin-1")
        encoded += body[position : position + size] + b"\r\n"
        position += size
    last: str = draw(st.sampled_from(["0", "000"]))
    extension = draw(chunk_extension())
    return encoded + f"{last}{extension}\r\n".encode("latin-1")


@st.composite
def valid_requests(draw: Any) -> tuple[bytes, list[Event]]:
    count = draw(st.integers(1, 3))
    data = b""
    events: list[Event] = []
    for index in range(count):
        request_data, request_events = draw(valid_request(last=index == count - 1))
        data += request_data
        events += request_events
    return data, events


@st.composite
def mutated_requests(draw: Any) -> bytes:
    """A valid request with a few bytes inserted, replaced or deleted."""
    data = bytearray(draw(valid_requests())[0])
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "replace", "delete"]))
        new = draw(st.sampled_from([b"\r", b"\n", b" ", b"\t", b"\x00", b":", b"#", b"\xff", b"0", b"\r\n"]))
        if action == "insert" or position == len(data):
            data[position:position] = new
        elif action == "replace":
            data[position : position + 1] = new
        else:
            del data[position]
    return bytes(data)


interesting_bytes = st.one_of(st.binary(max_size=200), fragment_bytes, mutated_requests())


def assert_same_outcome(data: bytes, sizes: list[int], limits: ParserLimits) -> Outcome:
    whole = run_pieces([data], limits)
    for pieces in (split(data, sizes), split(data, [1])):
        other = run_pieces(pieces, limits)
        assert other.comparable() == whole.comparable(), (whole.error, other.error)
    return whole


# -- the properties ---------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=interesting_bytes, sizes=piece_sizes, limits=any_limits)
def test_any_split_gives_the_same_outcome(data: bytes, sizes: list[int], limits: ParserLimits) -> None:
    assert_same_outcome(data, sizes, limits)


@PROPERTY_SETTINGS
@given(request=valid_requests(), sizes=piece_sizes, limits=small_limits)
def test_any_split_gives_the_same_outcome_near_the_limits(
    request: tuple[bytes, list[Event]], sizes: list[int], limits: ParserLimits
) -> None:
    assert_same_outcome(request[0], sizes, limits)


@PROPERTY_SETTINGS
@given(data=interesting_bytes, sizes=piece_sizes, limits=any_limits)
def test_arbitrary_bytes_raise_only_remote_protocol_errors(
    data: bytes, sizes: list[int], limits: ParserLimits
) -> None:
    # run_pieces catches RemoteProtocolError and nothing else: any other exception fails.
    for pieces in ([data], split(data, sizes)):
        outcome = run_pieces(pieces, limits)
        if outcome.error is not None:
            assert outcome.status in (400, 413, 414, 431, 501, 505)
            assert str(outcome.error)


@PROPERTY_SETTINGS
@given(request=valid_requests(), sizes=piece_sizes)
def test_valid_requests_round_trip(request: tuple[bytes, list[Event]], sizes: list[int]) -> None:
    data, expected = request
    outcome = assert_same_outcome(data, sizes, ParserLimits())
    assert outcome.error is None, outcome.error
    assert outcome.events == expected
    assert outcome.buffered == 0


# -- the chunked reader and trailers on their own ----------------------------------------------

CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
# Pieces of chunked bodies and trailer sections, good and bad.
CHUNK_FRAGMENTS = [
    b"0", b"1", b"5", b"a", b"F", b"ff", b"00000000000000001", b"fffffffffffffffff", b"-1", b"+1", b"0x1",
    b"\r\n", b"\r\n\r\n", b"\r", b"\n", b" ", b"\t", b";", b";e", b";e=v", b';e="q\\"x"', b'"', b"=",
    b"hello", b"\x00", b"\xff", b"0\r\n\r\n", b"5\r\nhello\r\n", b"0\r\nX: y\r\n\r\n", b"X-T: v",
    b"Content-Length: 1", b"Host: h", b"X : y", b" folded", b":", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
]  # fmt: skip

chunked_bodies = st.lists(
    st.one_of(st.sampled_from(CHUNK_FRAGMENTS), st.binary(max_size=4)), max_size=40
).map(b"".join)


@st.composite
def mutated_chunked_bodies(draw: Any) -> bytes:
    """A valid chunked body with trailers, then a few bytes inserted, replaced or deleted."""
    body = draw(st.binary(max_size=40))
    data = bytearray(encode_chunked(draw, body))
    for name, value, before, after in draw(fields(FORBIDDEN_TRAILERS, max_size=3)):
        data += f"{name}:{before}{value}{after}\r\n".encode("latin-1")
    data += b"\r\n"
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(data)))
        new = draw(st.sampled_from([b"\r", b"\n", b" ", b";", b"=", b"\x00", b":", b"0", b"f", b"\r\n"]))
        if position == len(data) or draw(st.booleans()):
            data[position:position] = new
        else:
            data[position : position + 1] = new
    return bytes(data)


chunked_inputs = st.one_of(chunked_bodies, mutated_chunked_bodies())
# Small body, chunk-line and trailer limits, with room for CHUNKED_HEAD (56 bytes, its
# longest field line 26), so the reader is reached and its limits are hit.
chunked_limits = st.one_of(
    st.just(ParserLimits()),
    st.builds(
        ParserLimits,
        max_header_bytes=st.integers(len(CHUNKED_HEAD), 300),
        max_body_bytes=st.integers(0, 100),
        max_field_bytes=st.integers(26, 100),
        max_header_count=st.integers(2, 6),
        max_chunk_line_bytes=st.integers(1, 64),
    ),
)


@PROPERTY_SETTINGS
@given(body=chunked_inputs, sizes=piece_sizes, limits=chunked_limits)
def test_chunked_reader_any_split_gives_the_same_outcome(
    body: bytes, sizes: list[int], limits: ParserLimits
) -> None:
    outcome = assert_same_outcome(CHUNKED_HEAD + body, sizes, limits)
    if outcome.error is not None:
        assert outcome.status in (400, 413, 414, 431, 501, 505)


@PROPERTY_SETTINGS
@given(body=chunked_inputs, sizes=piece_sizes, limits=chunked_limits)
def test_chunked_reader_raises_only_remote_protocol_errors(
    body: bytes, sizes: list[int], limits: ParserLimits
) -> None:
    for pieces in ([CHUNKED_HEAD + body], [CHUNKED_HEAD, *split(body, sizes)]):
        outcome = run_pieces(pieces, limits)
        if outcome.error is not None:
            assert str(outcome.error)
        elif outcome.events and isinstance(outcome.events[-1], EndOfRequest):
            # A finished body decodes to at most the bytes that were sent.
            decoded = sum(len(event.data) for event in outcome.events if isinstance(event, BodyChunk))
            assert decoded <= len(body)


@PROPERTY_SETTINGS
@given(
    trailers=st.lists(st.one_of(st.sampled_from(CHUNK_FRAGMENTS), st.binary(max_size=4)), max_size=30).map(
        b"".join
    ),
    sizes=piece_sizes,
    limits=chunked_limits,
)
def test_trailer_section_any_split_gives_the_same_outcome(
    trailers: bytes, sizes: list[int], limits: ParserLimits
) -> None:
    # Straight to the trailer section: the last-chunk line, then arbitrary bytes.
    assert_same_outcome(CHUNKED_HEAD + b"0\r\n" + trailers, sizes, limits)
