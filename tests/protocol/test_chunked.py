"""The chunked transfer coding (RFC 9112 7.1): sizes, extensions, data, trailers, limits."""

from __future__ import annotations

from typing import Optional

import pytest

from waitress_like.errors import RemoteProtocolError
from waitress_like.protocol import (
    BodyChunk,
    EndOfRequest,
    ParserLimits,
    ParserState,
    RequestHead,
    RequestParser,
)

from .test_request_parser import Outcome, _assert_linear, assert_status, parse, request

HEAD = request("POST /upload HTTP/1.1", "Host: example.com", "Transfer-Encoding: chunked")


def chunked(body: bytes, limits: Optional[ParserLimits] = None) -> Outcome:
    return parse(HEAD + body, limits)


def decoded(body: bytes, limits: Optional[ParserLimits] = None) -> bytes:
    outcome = chunked(body, limits)
    assert outcome.error is None, outcome.error
    assert outcome.events[-1] == EndOfRequest(()), outcome.events
    return outcome.body


def test_chunks_are_decoded() -> None:
    outcome = chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert outcome.head.chunked is True
    assert outcome.body == b"hello world"
    assert outcome.events[-1] == EndOfRequest(())
    assert outcome.state is ParserState.IDLE
    assert outcome.buffered == 0


def test_empty_chunked_body() -> None:
    outcome = chunked(b"0\r\n\r\n")
    assert [type(event) for event in outcome.events] == [RequestHead, EndOfRequest]


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"0005\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5\r\nhello\r\n000\r\n\r\n", b"hello"),
        (b"1e\r\nall your base are belong to us\r\n0\r\n\r\n", b"all your base are belong to us"),
        (b"000000000000000a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),  # 16 digits
        (b"1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", b"\r\n"),  # data is opaque
        (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),
    ],
)
def test_chunk_sizes(body: bytes, expected: bytes) -> None:
    assert decoded(body) == expected


@pytest.mark.parametrize(
    "extension",
    [
        b";a",
        b";a=b",
        b"; some; parameters=stuff",
        b" ;a",
        b"\t; a = b",
        b';foo="bar baz"',
        b';foo="with \\"escaped\\" quote"',
        b';foo=""',
        b';a=b;c="d";e',
        b";!#$%&'*+-.^_`|~09az=!#$%&'*+-.^_`|~09az",
        b';x="\x80\xff\t"',
    ],
)
def test_valid_chunk_extensions_are_ignored(extension: bytes) -> None:
    assert decoded(b"5" + extension + b"\r\nhello\r\n0" + extension + b"\r\n\r\n") == b"hello"


@pytest.mark.parametrize(
    "extension",
    [
        b";",
        b"; ",
        b";=b",
        b";a=",
        b";a=b c",
        b"x",
        b";a b",
        b';a="unterminated',
        b';a="x"y',
        b";a=(b)",
        b";a=b,c",
        b";a\x00",
        b';a="\x00"',
        b';a="\x7f"',
        b" ",
        b"\t",
        b";a ;",
        b";a=b;",
    ],
)
def test_malformed_chunk_extensions_are_400(extension: bytes) -> None:
    assert_status(HEAD + b"5" + extension + b"\r\nhello\r\n0\r\n\r\n", 400)


@pytest.mark.parametrize(
    "size_line",
    [
        b"",
        b" 5",
        b"5 ",
        b"-5",
        b"+5",
        b"0x5",
        b"5_0",
        b"6_0",
        b"g",
        b"5g",
        b"\xd9\xa5",
        b"00000000000000005",
        b"1 0",
        b";a",
    ],
)
def test_malformed_chunk_size_is_400(size_line: bytes) -> None:
    assert_status(HEAD + size_line + b"\r\nhello\r\n0\r\n\r\n", 400)


def test_zero_size_line_must_be_well_formed_too() -> None:
    assert_status(HEAD + b"5\r\nhello\r\n0 \r\n\r\n", 400)
    assert_status(HEAD + b"5\r\nhello\r\n 0\r\n\r\n", 400)


@pytest.mark.parametrize(
    "body",
    [
        b"5\nhello\r\n0\r\n\r\n",
        b"5\n;\r\nhello\r\n0\r\n\r\n",
        b"5\rhello\r\n0\r\n\r\n",
        b"5;ext=val\rue\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\n\r\n",
        b"5\r\nhello\r\n0\r\n\n",
        b"5\r\nhello\r\n0\r\nX: y\n\r\n",
        b"5\r\nhello\r\n0\r\nX: y\r\n\n",
        b"5\r\nhello\r\n0\r\n\rX: y\r\n\r\n",
    ],
)
def test_bare_cr_or_lf_in_chunk_framing_is_400(body: bytes) -> None:
    assert_status(HEAD + body, 400)


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\rX0\r\n\r\n",
        b"5\r\nhello world\r\n0\r\n\r\n",
        b"5\r\nhell\r\n0\r\n\r\n",
        b"5\r\nhello 0\r\n\r\n",
    ],
)
def test_chunk_data_must_end_with_crlf(body: bytes) -> None:
    assert_status(HEAD + body, 400)


def test_missing_pieces_leave_the_request_incomplete() -> None:
    for body in (
        b"5\r\nhel",
        b"5\r\nhello",
        b"5\r\nhello\r",
        b"5\r\nhello\r\n0\r\n",
        b"0\r\n\r",
        b"0\r\nX: y\r\n",
    ):
        outcome = chunked(body)
        assert outcome.error is None
        assert not isinstance(outcome.events[-1], EndOfRequest), body
        assert outcome.state is ParserState.BODY


def test_chunk_size_line_limit() -> None:
    limits = ParserLimits(max_chunk_line_bytes=40)
    line = b"5;" + b"e" * 38
    assert decoded(line + b"\r\nhello\r\n0\r\n\r\n", limits) == b"hello"
    assert_status(HEAD + line + b"e\r\nhello\r\n0\r\n\r\n", 400, limits)


def test_endless_chunk_extension_is_refused_before_its_line_ends() -> None:
    parser = RequestParser(ParserLimits())
    parser.feed(HEAD + b"5" + b";a=b" * 1025)
    assert isinstance(parser.next_event(), RequestHead)
    with pytest.raises(RemoteProtocolError) as raised:
        parser.next_event()
    assert raised.value.status_hint == 400


def test_trailers() -> None:
    outcome = chunked(
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nVary: *\r\nContent-MD5:  abc \r\nX-A: 1\r\nx-a: 2\r\n"
        b"Content-Type: text/plain\r\n\r\n"
    )
    assert outcome.body == b"hello world"
    assert outcome.events[-1] == EndOfRequest(
        (("Vary", "*"), ("Content-MD5", "abc"), ("X-A", "1"), ("x-a", "2"), ("Content-Type", "text/plain"))
    )
    assert outcome.state is ParserState.IDLE


@pytest.mark.parametrize(
    "name",
    [
        "Content-Length",
        "Transfer-Encoding",
        "Host",
        "host",
        "Connection",
        "TE",
        "Trailer",
        "Upgrade",
        "Expect",
        "Authorization",
        "Proxy-Authorization",
        "Keep-Alive",
    ],
)
def test_forbidden_trailer_fields_are_400(name: str) -> None:
    assert_status(HEAD + b"5\r\nhello\r\n0\r\n" + name.encode() + b": 1\r\n\r\n", 400)


@pytest.mark.parametrize(
    "trailer",
    [b"X : y", b" X: y", b"X: y\r\n z", b"X", b": y", b"X: a\x00b", b"X(: y", b"X: \x7f"],
)
def test_malformed_trailers_are_400(trailer: bytes) -> None:
    assert_status(HEAD + b"0\r\n" + trailer + b"\r\n\r\n", 400)


def test_trailer_section_limit_is_431() -> None:
    limits = ParserLimits(max_header_bytes=200)
    fits = b"X: " + b"a" * (200 - 7) + b"\r\n\r\n"
    assert len(fits) == 200 - 7 + 7
    outcome = parse(HEAD + b"0\r\n" + fits, limits)
    assert outcome.events[-1] == EndOfRequest((("X", "a" * 193),))
    assert_status(HEAD + b"0\r\nX: " + b"a" * 194 + b"\r\n\r\n", 431, limits)
    # decided before the section ends
    assert_status(HEAD + b"0\r\nX: " + b"a" * 300, 431, limits)


def test_trailer_count_and_field_limits_are_431() -> None:
    assert_status(HEAD + b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, ParserLimits(max_header_count=2))
    assert_status(HEAD + b"0\r\nA: 12345\r\n\r\n", 431, ParserLimits(max_field_bytes=7))


def test_body_limit_counts_decoded_bytes() -> None:
    limits = ParserLimits(max_body_bytes=10)
    assert decoded(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limits) == b"helloworld"
    # chunk-size digits and extensions do not count
    assert (
        decoded(b"000000005;" + b"x" * 50 + b"\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limits) == b"helloworld"
    )
    assert_status(HEAD + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 413, limits)
    assert_status(HEAD + b"ffffffffffffffff\r\n", 413, limits)


def test_body_limit_is_enforced_before_the_body_ends() -> None:
    limits = ParserLimits(max_body_bytes=10)
    outcome = chunked(b"5\r\nhello\r\n6\r\n wor", limits)  # the 11th byte is announced, not all sent
    assert outcome.status == 413
    assert outcome.body == b"hello"


def test_chunked_then_pipelined_request() -> None:
    outcome = chunked(b"5\r\nhello\r\n000\r\n\r\n" + request("GET /second HTTP/1.1", "Host: x"))
    assert [head.target for head in outcome.heads] == ["/upload", "/second"]
    assert outcome.body == b"hello"
    assert outcome.events[-1] == EndOfRequest(())


def test_chunked_request_that_closes_ignores_the_rest() -> None:
    data = request("POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Connection: close")
    outcome = parse(data + b"1\r\na\r\n0\r\n\r\n" + request("GET /second HTTP/1.1", "Host: x"))
    assert len(outcome.heads) == 1
    assert outcome.state is ParserState.DONE


def test_events_come_as_data_arrives() -> None:
    parser = RequestParser(ParserLimits())
    parser.feed(HEAD + b"b\r\nhel")
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.next_event() == BodyChunk(b"hel")
    assert parser.next_event() is None
    parser.feed(b"lo worl")
    assert parser.next_event() == BodyChunk(b"lo worl")
    assert parser.next_event() is None
    parser.feed(b"d\r\n0\r\n\r\n")
    assert parser.next_event() == BodyChunk(b"d")
    assert parser.next_event() == EndOfRequest(())
    assert parser.next_event() is None


def test_many_one_byte_chunks_are_linear() -> None:
    def pieces(count: int) -> list[bytes]:
        return [HEAD + b"1\r\nx\r\n" * count + b"0\r\n\r\n"]

    _assert_linear(pieces, 25_000, ParserLimits())


def test_one_hundred_thousand_one_byte_chunks() -> None:
    outcome = chunked(b"1\r\nx\r\n" * 100_000 + b"0\r\n\r\n")
    assert outcome.body == b"x" * 100_000
