"""RequestParser: request heads, Content-Length bodies, pipelining, limits, error state.

Every input goes through :func:`parse`, which feeds it whole, byte by byte and at seeded
random split points and insists that all three give the same events, error status, state
and leftover byte count. The other test modules of this package import it from here.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, NamedTuple, Optional, Union

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

Event = Union[RequestHead, BodyChunk, EndOfRequest]


# -- the three-ways helper --------------------------------------------------------------------


class Outcome(NamedTuple):
    """What a parser made of some bytes. Adjacent BodyChunks are merged: their boundaries
    follow the reads, not the request."""

    events: list[Event]
    status: Optional[int]  # status_hint of the RemoteProtocolError raised, if any
    state: ParserState
    buffered: int
    error: Optional[RemoteProtocolError]

    def comparable(self) -> tuple[Any, ...]:
        return (self.events, self.status, self.state, self.buffered)

    @property
    def heads(self) -> list[RequestHead]:
        return [event for event in self.events if isinstance(event, RequestHead)]

    @property
    def head(self) -> RequestHead:
        (head,) = self.heads
        return head

    @property
    def body(self) -> bytes:
        return b"".join(event.data for event in self.events if isinstance(event, BodyChunk))


def run_pieces(pieces: list[bytes], limits: Optional[ParserLimits] = None) -> Outcome:
    """Feed ``pieces`` one ``feed`` at a time, draining events after each."""
    parser = RequestParser(limits if limits is not None else ParserLimits())
    events: list[Event] = []
    error: Optional[RemoteProtocolError] = None
    for piece in pieces:
        parser.feed(piece)
        try:
            while True:
                event = parser.next_event()
                if event is None:
                    break
                if isinstance(event, BodyChunk):
                    assert event.data, "a BodyChunk must never be empty"
                    if events and isinstance(events[-1], BodyChunk):
                        events[-1] = BodyChunk(events[-1].data + event.data)
                        continue
                events.append(event)
        except RemoteProtocolError as raised:
            error = raised
            break
    if error is not None:
        _check_error_state(parser, error)
    return Outcome(
        events, error.status_hint if error else None, parser.state, parser.buffered_byte_count(), error
    )


def _check_error_state(parser: RequestParser, error: RemoteProtocolError) -> None:
    """After an error the parser stays in ERROR: feed is ignored, next_event raises again."""
    assert parser.state is ParserState.ERROR
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as again:
            parser.next_event()
        assert again.value.status_hint == error.status_hint
    assert parser.state is ParserState.ERROR


def random_pieces(data: bytes, rng: random.Random) -> list[bytes]:
    pieces = []
    position = 0
    while position < len(data):
        size = rng.choice((1, 2, 3, 5, 8, 13, 64, rng.randint(1, max(1, len(data) // 2))))
        pieces.append(data[position : position + size])
        position += size
    return pieces


def parse(
    data: bytes, limits: Optional[ParserLimits] = None, *, seed: int = 0, random_runs: int = 2
) -> Outcome:
    """Parse ``data`` whole, byte by byte and at random splits; all must agree."""
    whole = run_pieces([data], limits)
    splittings = [[data[index : index + 1] for index in range(len(data))]]
    rng = random.Random(seed)
    splittings += [random_pieces(data, rng) for _ in range(random_runs)]
    for pieces in splittings:
        other = run_pieces(pieces, limits)
        assert other.comparable() == whole.comparable(), (
            f"split {[len(piece) for piece in pieces][:20]}... gave {other.comparable()} "
            f"instead of {whole.comparable()} (error {other.error!r} vs {whole.error!r})"
        )
    return whole


def parse_error(data: bytes, limits: Optional[ParserLimits] = None) -> RemoteProtocolError:
    outcome = parse(data, limits)
    assert outcome.error is not None, f"expected an error, got {outcome.events}"
    return outcome.error


def assert_status(data: bytes, status: int, limits: Optional[ParserLimits] = None) -> RemoteProtocolError:
    error = parse_error(data, limits)
    assert error.status_hint == status, f"{error!r} has status {error.status_hint}, expected {status}"
    return error


def request(*lines: str, body: bytes = b"") -> bytes:
    """Build request bytes from lines (each + CRLF, then a blank line) and a body.

    Characters up to U+00FF become one byte each; a line with any beyond is sent as UTF-8.
    """
    encoded = []
    for line in lines:
        try:
            encoded.append(line.encode("latin-1"))
        except UnicodeEncodeError:
            encoded.append(line.encode("utf-8"))
    return b"".join(line + b"\r\n" for line in encoded) + b"\r\n" + body


def single_head(data: bytes, limits: Optional[ParserLimits] = None) -> RequestHead:
    outcome = parse(data, limits)
    assert outcome.error is None, outcome.error
    return outcome.head


# -- the happy path ---------------------------------------------------------------------------


def test_simple_get_yields_head_then_end() -> None:
    outcome = parse(b"GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: wrk\r\n\r\n")
    assert outcome.events == [
        RequestHead(
            method="GET",
            target="/index.html?a=1&b=2",
            path="/index.html",
            query="a=1&b=2",
            version=(1, 1),
            headers=(("Host", "example.com"), ("User-Agent", "wrk")),
            content_length=None,
            chunked=False,
            keep_alive=True,
            expect_continue=False,
        ),
        EndOfRequest(()),
    ]
    assert outcome.state is ParserState.IDLE
    assert outcome.buffered == 0


def test_nothing_fed_means_no_event() -> None:
    parser = RequestParser(ParserLimits())
    assert parser.next_event() is None
    assert parser.state is ParserState.IDLE
    parser.feed(b"")
    assert parser.next_event() is None


def test_any_token_without_lower_case_letters_is_a_method() -> None:
    assert single_head(request("PROPFIND /a HTTP/1.1", "Host: x")).method == "PROPFIND"
    assert single_head(request("M-SEARCH /a HTTP/1.1", "Host: x")).method == "M-SEARCH"
    assert single_head(request("-X~!#$%&'*+.^_`|09 /a HTTP/1.1", "Host: x")).method == "-X~!#$%&'*+.^_`|09"


@pytest.mark.parametrize("method", ["get", "Get", "gET", "-bl", "M-search", "x", "PROPFINd"])
def test_method_with_a_lower_case_letter_is_400(method: str) -> None:
    # Methods are case-sensitive (RFC 9110 9.1) and all registered ones are upper case: a
    # "get" that a front proxy treats as GET but the application does not is refused.
    error = assert_status(request(f"{method} / HTTP/1.1", "Host: x"), 400)
    assert "lower-case" in str(error)


def test_lower_case_method_error_does_not_depend_on_the_rest_of_the_head() -> None:
    # Refused when the request line ends, before the head is complete.
    parser = RequestParser(ParserLimits())
    parser.feed(b"get / HTTP/1.1\r\n")
    with pytest.raises(RemoteProtocolError) as raised:
        parser.next_event()
    assert raised.value.status_hint == 400


@pytest.mark.parametrize(
    "target, path, query",
    [
        ("/", "/", ""),
        ("/a/b%20c", "/a/b%20c", ""),
        ("/a?", "/a", ""),
        ("/a?b?c=d", "/a", "b?c=d"),
        ("//double//slashes", "//double//slashes", ""),
        ('/with_"quotes"?foo="bar"', '/with_"quotes"', 'foo="bar"'),
        ("/%7Euser?x=%20", "/%7Euser", "x=%20"),
    ],
)
def test_origin_form_target(target: str, path: str, query: str) -> None:
    head = single_head(request(f"GET {target} HTTP/1.1", "Host: x"))
    assert (head.target, head.path, head.query) == (target, path, query)


@pytest.mark.parametrize(
    "target, path, query",
    [
        ("http://example.com/foo?q=1", "/foo", "q=1"),
        ("https://example.com", "/", ""),
        ("http://example.com?q", "/", "q"),
        ("http://example.com:8080/a/b", "/a/b", ""),
        ("http://[::1]:8080/foo", "/foo", ""),
        ("http://user:pass@example.com:8080/foo?q=1", "/foo", "q=1"),
        ("http://a%20b.example/x", "/x", ""),
        ("HTTP://EXAMPLE.COM/X", "/X", ""),
        ("git+ssh://h/p", "/p", ""),
    ],
)
def test_absolute_form_target(target: str, path: str, query: str) -> None:
    head = single_head(request(f"GET {target} HTTP/1.1", "Host: x"))
    assert (head.target, head.path, head.query) == (target, path, query)


@pytest.mark.parametrize(
    "target, path, query",
    [
        ("/a#frag", "/a", ""),
        ("/a?b#frag", "/a", "b"),
        ("/a?b=c#", "/a", "b=c"),
        ("/#", "/", ""),
        ("/a#f?g", "/a", ""),  # a "?" after the "#" belongs to the fragment
        ("/a#f#g", "/a", ""),
        ("/forums/1/topics/2375?page=1#posts-17408", "/forums/1/topics/2375", "page=1"),
        ("/a%23b#c", "/a%23b", ""),  # an encoded "#" is part of the path
        ("http://h/p?q#f", "/p", "q"),
        ("http://h#f", "/", ""),
    ],
)
def test_fragment_is_accepted_and_dropped(target: str, path: str, query: str) -> None:
    # RFC 9112 3.2 has no fragment in a request-target, but clients send one; dropping it
    # is harmless. The target stays as sent; path and query never see the fragment.
    head = single_head(request(f"GET {target} HTTP/1.1", "Host: x"))
    assert (head.target, head.path, head.query) == (target, path, query)


@pytest.mark.parametrize(
    "line",
    [
        "GET # HTTP/1.1",  # nothing but a fragment
        "GET #a HTTP/1.1",
        "OPTIONS *#a HTTP/1.1",  # the asterisk form is exactly "*"
        "CONNECT h:443#a HTTP/1.1",  # the authority form has no fragment
        "GET /a#b c HTTP/1.1",  # a fragment is no excuse for a space
        "GET /a#b\x00 HTTP/1.1",
        "GET /a#\x7f HTTP/1.1",
    ],
)
def test_fragment_only_after_an_origin_or_absolute_form_target(line: str) -> None:
    assert_status(request(line, "Host: x"), 400)


@pytest.mark.parametrize(
    "target, path, query",
    [
        ("/caf\xe9", "/caf\xe9", ""),
        ("/\xc3\xa0%20k", "/\xc3\xa0%20k", ""),  # raw UTF-8, latin-1 decoded
        ("/\x80\xff?\xfe=\x81", "/\x80\xff", "\xfe=\x81"),
        ("/a#\xe9", "/a", ""),
        ("http://h/\xe9?\xe9", "/\xe9", "\xe9"),
    ],
)
def test_obs_text_bytes_are_allowed_in_the_target(target: str, path: str, query: str) -> None:
    data = b"GET " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    head = single_head(data)
    assert (head.target, head.path, head.query) == (target, path, query)


@pytest.mark.parametrize("byte", [*range(0x00, 0x21), 0x7F])
def test_controls_space_and_del_in_the_target_are_400(byte: int) -> None:
    # (CR and LF are refused as bare line breaks, the rest as bad target characters.)
    assert_status(b"GET /a" + bytes([byte]) + b"b HTTP/1.1\r\nHost: x\r\n\r\n", 400)


def test_obs_text_in_the_host_of_an_absolute_target_is_400() -> None:
    assert_status(b"GET http://h\xe9/ HTTP/1.1\r\nHost: x\r\n\r\n", 400)


def test_asterisk_form_only_for_options() -> None:
    head = single_head(request("OPTIONS * HTTP/1.1", "Host: x"))
    assert (head.target, head.path, head.query) == ("*", "*", "")
    assert_status(request("GET * HTTP/1.1", "Host: x"), 400)
    assert_status(request("options * HTTP/1.1", "Host: x"), 400)  # methods are case-sensitive


@pytest.mark.parametrize("target", ["example.com:443", "[::1]:443", "10.0.0.1:8080"])
def test_authority_form_only_for_connect(target: str) -> None:
    head = single_head(request(f"CONNECT {target} HTTP/1.1", f"Host: {target}"))
    assert (head.target, head.path, head.query) == (target, "", "")
    assert_status(request(f"GET {target} HTTP/1.1", "Host: x"), 400)


@pytest.mark.parametrize(
    "line",
    [
        "CONNECT /path HTTP/1.1",  # CONNECT takes only the authority form
        "CONNECT example.com HTTP/1.1",  # port required
        "CONNECT http://example.com:443/ HTTP/1.1",
        "GET foo/bar HTTP/1.1",  # relative reference
        "GET ?q HTTP/1.1",
        "GET http:/x HTTP/1.1",
        "GET http:// HTTP/1.1",  # empty host
        "GET http:///p HTTP/1.1",
        "PUT s://]ufd/: HTTP/1.1",
        "GET 1http://h/ HTTP/1.1",  # a scheme starts with a letter
        "GET http://h:x/ HTTP/1.1",  # port is digits
        "GET http://a@b@c/ HTTP/1.1",
        "GET mailto:someone HTTP/1.1",
        "GET ** HTTP/1.1",
    ],
)
def test_other_target_forms_are_refused(line: str) -> None:
    assert_status(request(line, "Host: x"), 400)


@pytest.mark.parametrize(
    "version, parsed",
    # RFC 9110 2.5: a higher minor version is processed as the highest one implemented.
    [("HTTP/1.1", (1, 1)), ("HTTP/1.0", (1, 0)), ("HTTP/1.2", (1, 1)), ("HTTP/1.9", (1, 1))],
)
def test_versions(version: str, parsed: tuple[int, int]) -> None:
    assert single_head(request(f"GET / {version}", "Host: x")).version == parsed


def test_a_higher_minor_version_follows_the_rules_of_http11() -> None:
    assert_status(request("GET / HTTP/1.2"), 400)  # no Host
    head = single_head(request("POST / HTTP/1.2", "Host: x", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"))
    assert head.chunked and head.keep_alive


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9", "HTTP/0.0"])
def test_well_formed_but_unsupported_version_is_505(version: str) -> None:
    assert_status(request(f"GET / {version}", "Host: x"), 505)


@pytest.mark.parametrize(
    "version",
    [
        "HTTP/1.10",
        "HTTP/01.1",
        "HTTP/1",
        "HTTP/1.",
        "HTTP/.1",
        "http/1.1",
        "HTTP/1,1",
        "HTTPS/1.1",
        "FTP/1.1",
        "HTTP/0.99",
        "HTTP/111",
        "HTTP/1.1.1",
        "HTTP/١.١",
        "HTTP/².1",
    ],
)
def test_malformed_version_is_400(version: str) -> None:
    assert_status(request(f"GET / {version}", "Host: x"), 400)


@pytest.mark.parametrize(
    "line",
    [
        "GET  / HTTP/1.1",  # two spaces
        "GET /  HTTP/1.1",
        "GET / HTTP/1.1 ",  # trailing space
        " GET / HTTP/1.1",  # leading space
        "GET\t/ HTTP/1.1",
        "GET /\tHTTP/1.1",
        "GET / HTTP/1.1\t",
        "GET /",
        "GET",
        "GET HTTP/1.1",
        "/ HTTP/1.1",
        "GE(T / HTTP/1.1",  # "(" is not a tchar
        "GET: / HTTP/1.1",
        "G\x00T / HTTP/1.1",
        "GET\xc3\x9f / HTTP/1.1",
        "GET /a\x00b HTTP/1.1",
        "GET /a\x7fb HTTP/1.1",
        "GET # HTTP/1.1",
    ],
)
def test_malformed_request_line_is_400(line: str) -> None:
    assert_status(request(line, "Host: x"), 400)


# -- line ends --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\rHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\r\n\r\n",
        b"GET\n/\nHTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\nContent-Length: 26\r\nHost: x\r\n\r\n",
    ],
)
def test_bare_cr_or_lf_in_the_head_is_400(data: bytes) -> None:
    assert_status(data, 400)


def test_bare_lf_is_refused_before_the_head_ends() -> None:
    parser = RequestParser(ParserLimits())
    parser.feed(b"GET / HTTP/1.1\nHost: x")
    with pytest.raises(RemoteProtocolError) as raised:
        parser.next_event()
    assert raised.value.status_hint == 400


def test_junk_is_refused_at_the_first_byte() -> None:
    parser = RequestParser(ParserLimits())
    parser.feed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a TLS ClientHello
    with pytest.raises(RemoteProtocolError) as raised:
        parser.next_event()
    assert raised.value.status_hint == 400


def test_leading_empty_lines_are_skipped() -> None:
    outcome = parse(b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert outcome.head.target == "/"
    outcome = parse(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [head.target for head in outcome.heads] == ["/1", "/2"]


def test_only_empty_lines_leave_the_parser_idle() -> None:
    outcome = parse(b"\r\n\r\n\r")
    assert outcome.events == [] and outcome.error is None
    assert outcome.state is ParserState.IDLE
    assert outcome.buffered == 1


@pytest.mark.parametrize(
    "data", [b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\rGET / HTTP/1.1\r\n\r\n", b"\r\n\n"]
)
def test_leading_bare_line_breaks_are_400(data: bytes) -> None:
    assert_status(data, 400)


def test_leading_empty_lines_count_against_the_head_limit() -> None:
    limits = ParserLimits(max_header_bytes=64)
    assert_status(b"\r\n" * 32, 431, limits)
    assert_status(b"\r\n" * 20 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 431, limits)
    assert single_head(b"\r\n" * 10 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", limits).target == "/"


# -- header fields ----------------------------------------------------------------------------


def test_fields_keep_order_duplicates_and_received_names() -> None:
    head = single_head(request("GET / HTTP/1.1", "host: x", "X-A: 1", "x-a: 2", "Cookie: a=b", "X-A: 3"))
    assert head.headers == (("host", "x"), ("X-A", "1"), ("x-a", "2"), ("Cookie", "a=b"), ("X-A", "3"))


@pytest.mark.parametrize(
    "line, value",
    [
        ("X:value", "value"),
        ("X: value", "value"),
        ("X: \t value \t ", "value"),
        ("X:\tabc\t", "abc"),
        ("X:", ""),
        ("X:    ", ""),
        ("X: a  b\tc", "a  b\tc"),
        ("X: caf\xc3\xa9", "caf\xc3\xa9"),  # obs-text, latin-1 decoded
        ("X: \x80\xff", "\x80\xff"),
        ('X: "quoted", (comment); q=1', '"quoted", (comment); q=1'),
    ],
)
def test_field_values_are_trimmed_and_latin1(line: str, value: str) -> None:
    head = single_head(request("GET / HTTP/1.1", "Host: x", line))
    assert head.headers[1] == ("X", value)


def test_field_name_characters() -> None:
    head = single_head(
        request("GET / HTTP/1.1", "Host: x", "X.Custom|Pipe: ok", "a_b: c", "!#$%&'*+-.^_`|~09az: v")
    )
    assert [name for name, _ in head.headers] == ["Host", "X.Custom|Pipe", "a_b", "!#$%&'*+-.^_`|~09az"]


@pytest.mark.parametrize(
    "line",
    [
        "X : value",  # whitespace before the colon
        "X\t: value",
        " X: value",
        "X value",  # no colon
        ": value",  # empty name
        "X(y): value",
        "X@: value",
        "Caf\xe9: value",
        "X\x00: value",
        "X: a\x00b",
        "X: a\x7fb",
        "X: a\x07b",
        "X: a\x1bb",
        "X: \x0b",
        "X: \x0c",
        "[X]: v",
    ],
)
def test_malformed_field_line_is_400(line: str) -> None:
    assert_status(request("GET / HTTP/1.1", "Host: x", line), 400)


@pytest.mark.parametrize("fold", [" folded", "\tfolded", "  "])
def test_obs_fold_is_400(fold: str) -> None:
    assert_status(request("GET / HTTP/1.1", "Host: x", "Long: one", fold), 400)


def test_host_is_required_once_in_http11() -> None:
    assert_status(request("GET / HTTP/1.1"), 400)
    assert_status(request("GET / HTTP/1.1", "X: y"), 400)
    assert_status(request("GET / HTTP/1.1", "Host: a", "Host: b"), 400)
    assert_status(request("GET / HTTP/1.1", "Host: a", "HOST: a"), 400)
    assert single_head(request("GET / HTTP/1.0")).headers == ()
    assert_status(request("GET / HTTP/1.0", "Host: a", "Host: b"), 400)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "example.com",
        "example.com:8080",
        "0.0.0.0=5000",
        "[::1]",
        "[::1]:80",
        "a_b.c-d~e:1",
        "%41.example",
        "[v1.x]",
        "example.com:",
    ],
)
def test_valid_host_values(host: str) -> None:
    head = single_head(request("GET / HTTP/1.1", f"Host: {host}"))
    assert head.headers == (("Host", host),)


@pytest.mark.parametrize(
    "host", ["a b", "a/b", "a@b", "[::1", "::1", "a:b", "a:1:2", "h%zz", "caf\xe9", 'a"b']
)
def test_invalid_host_values_are_400(host: str) -> None:
    assert_status(request("GET / HTTP/1.1", f"Host: {host}"), 400)


def test_two_content_types_are_400() -> None:
    assert_status(request("GET / HTTP/1.1", "Host: x", "Content-Type: a/b", "content-type: c/d"), 400)


# -- connection management --------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, connection, keep_alive",
    [
        ("1.1", None, True),
        ("1.1", "close", False),
        ("1.1", "Close", False),
        ("1.1", "keep-alive, CLOSE", False),
        ("1.1", "Upgrade,close", False),
        ("1.1", "keep-alive", True),
        ("1.1", "closed", True),
        ("1.1", "Upgrade", True),
        ("1.0", None, False),
        ("1.0", "keep-alive", True),
        ("1.0", "Keep-Alive", True),
        ("1.0", " foo , keep-alive ", True),
        ("1.0", "keep-alive, close", False),
        ("1.0", "close", False),
        ("1.0", "keepalive", False),
    ],
)
def test_keep_alive(version: str, connection: Optional[str], keep_alive: bool) -> None:
    lines = [f"GET / HTTP/{version}", "Host: x"]
    if connection is not None:
        lines.append(f"Connection: {connection}")
    assert single_head(request(*lines)).keep_alive is keep_alive


def test_connection_fields_combine() -> None:
    head = single_head(request("GET / HTTP/1.1", "Host: x", "Connection: keep-alive", "Connection: close"))
    assert head.keep_alive is False


@pytest.mark.parametrize(
    "version, expect, expected",
    [
        ("1.1", "100-continue", True),
        ("1.1", "100-Continue", True),
        ("1.1", "  100-continue ", True),
        ("1.1", "100-continue-later", False),
        ("1.1", "200-ok", False),
        ("1.0", "100-continue", False),
    ],
)
def test_expect_continue(version: str, expect: str, expected: bool) -> None:
    head = single_head(request(f"POST / HTTP/{version}", "Host: x", f"Expect: {expect}", "Content-Length: 0"))
    assert head.expect_continue is expected


def test_requests_are_pipelined() -> None:
    data = (
        request("GET /1 HTTP/1.1", "Host: x")
        + request("POST /2 HTTP/1.1", "Host: x", "Content-Length: 5", body=b"hello")
        + request("GET /3 HTTP/1.0", "Connection: keep-alive")
        + request("GET /4 HTTP/1.1", "Host: x")
    )
    outcome = parse(data)
    assert [head.target for head in outcome.heads] == ["/1", "/2", "/3", "/4"]
    assert [type(event).__name__ for event in outcome.events] == [
        "RequestHead", "EndOfRequest",
        "RequestHead", "BodyChunk", "EndOfRequest",
        "RequestHead", "EndOfRequest",
        "RequestHead", "EndOfRequest",
    ]  # fmt: skip
    assert outcome.body == b"hello"
    assert outcome.state is ParserState.IDLE


@pytest.mark.parametrize(
    "first",
    [
        request("GET /first HTTP/1.1", "Host: x", "Connection: close"),
        request("GET /first HTTP/1.0"),
        request("POST /first HTTP/1.0", "Content-Length: 3", body=b"abc"),
        request(
            "POST /first HTTP/1.1",
            "Host: x",
            "Connection: close",
            "Transfer-Encoding: chunked",
            body=b"0\r\n\r\n",
        ),
    ],
)
def test_nothing_after_a_closing_request_becomes_a_request(first: bytes) -> None:
    outcome = parse(first + request("GET /second HTTP/1.1", "Host: x") + b"\x00garbage\n")
    assert [head.target for head in outcome.heads] == ["/first"]
    assert isinstance(outcome.events[-1], EndOfRequest)
    assert outcome.state is ParserState.DONE
    assert outcome.buffered == 0
    assert outcome.error is None


def test_done_parser_discards_later_feeds() -> None:
    parser = RequestParser(ParserLimits())
    parser.feed(request("GET / HTTP/1.0"))
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.state is ParserState.BODY
    assert isinstance(parser.next_event(), EndOfRequest)
    assert parser.state in (ParserState.DONE,)  # "in": mypy narrowed the state to BODY above
    parser.feed(request("GET / HTTP/1.1", "Host: x"))
    assert parser.buffered_byte_count() == 0
    assert parser.next_event() is None
    assert parser.state in (ParserState.DONE,)


def test_states_through_a_request() -> None:
    parser = RequestParser(ParserLimits())
    seen = [parser.state]
    parser.feed(b"\r\n")
    assert parser.next_event() is None
    seen.append(parser.state)
    parser.feed(b"POST / HTTP/1.1\r\nHost: x\r\n")
    assert parser.next_event() is None
    seen.append(parser.state)
    parser.feed(b"Content-Length: 2\r\n\r\na")
    assert isinstance(parser.next_event(), RequestHead)
    seen.append(parser.state)
    assert parser.next_event() == BodyChunk(b"a")
    assert parser.next_event() is None
    parser.feed(b"b")
    assert parser.next_event() == BodyChunk(b"b")
    assert parser.next_event() == EndOfRequest(())
    seen.append(parser.state)
    assert seen == [ParserState.IDLE, ParserState.IDLE, ParserState.HEAD, ParserState.BODY, ParserState.IDLE]


def test_buffered_byte_count_tracks_unconsumed_bytes() -> None:
    parser = RequestParser(ParserLimits())
    first = request("GET /1 HTTP/1.1", "Host: x")
    second = request("GET /2 HTTP/1.1", "Host: x")
    parser.feed(first + second[:10])
    assert parser.buffered_byte_count() == len(first) + 10
    assert isinstance(parser.next_event(), RequestHead)
    assert parser.buffered_byte_count() == 10
    assert isinstance(parser.next_event(), EndOfRequest)
    assert parser.next_event() is None
    assert parser.buffered_byte_count() == 10


# -- Content-Length ---------------------------------------------------------------------------


def test_content_length_body() -> None:
    outcome = parse(request("POST /p HTTP/1.1", "Host: x", "Content-Length: 11", body=b"hello world"))
    assert outcome.head.content_length == 11
    assert outcome.head.chunked is False
    assert outcome.body == b"hello world"
    assert isinstance(outcome.events[-1], EndOfRequest)


def test_content_length_body_waits_for_all_bytes() -> None:
    outcome = parse(request("POST /p HTTP/1.1", "Host: x", "Content-Length: 10", body=b"12345"))
    assert outcome.body == b"12345"
    assert not isinstance(outcome.events[-1], EndOfRequest)
    assert outcome.state is ParserState.BODY


def test_body_bytes_are_opaque() -> None:
    body = b"GET / HTTP/1.1\r\n\r\n\n\r\x00" + bytes(range(256))
    outcome = parse(request("POST / HTTP/1.0", f"Content-Length: {len(body)}", body=body))
    assert outcome.body == body
    assert outcome.state is ParserState.DONE


@pytest.mark.parametrize(
    "value, length", [("0", 0), ("000", 0), ("007", 7), (" 3 ", 3), ("0" * 5000 + "1", 1)]
)
def test_content_length_values(value: str, length: int) -> None:
    body = b"x" * length
    outcome = parse(request("POST / HTTP/1.1", "Host: x", f"Content-Length: {value}", body=body))
    assert outcome.head.content_length == length
    assert outcome.body == body
    assert outcome.events[-1] == EndOfRequest(())


@pytest.mark.parametrize(
    "value",
    [
        b"-1",
        b"-0",
        b"+1",
        b"1_0",
        b"0x10",
        b"1 0",
        b"0 1",
        b"1.0",
        b"1e3",
        b"",
        b"5, 5",
        b"5,5",
        b"abc",
        "\u0661".encode(),
        "\u0661\u0662".encode(),
        b"\xb2",
        b"\xb9",
        b"\xbd",
        b"1\x00",
        b"\xef\xbc\x91",
    ],
)
def test_malformed_content_length_is_400(value: bytes) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n"
    assert_status(head, 400)


def test_repeated_content_length_is_400_even_when_equal() -> None:
    assert_status(
        request("POST / HTTP/1.1", "Host: x", "Content-Length: 3", "Content-Length: 3", body=b"abc"), 400
    )
    assert_status(
        request("POST / HTTP/1.1", "Host: x", "Content-Length: 3", "content-length: 2", body=b"abc"), 400
    )


def test_content_length_over_the_limit_is_413_at_the_head() -> None:
    limits = ParserLimits(max_body_bytes=100)
    assert (
        single_head(request("POST / HTTP/1.1", "Host: x", "Content-Length: 100"), limits).content_length
        == 100
    )
    assert_status(request("POST / HTTP/1.1", "Host: x", "Content-Length: 101"), 413, limits)
    assert_status(request("POST / HTTP/1.1", "Host: x", "Content-Length: " + "9" * 5000), 413)
    assert_status(request("POST / HTTP/1.1", "Host: x", "Content-Length: 18446744073709551616"), 413)


# -- Transfer-Encoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        ["Transfer-Encoding: chunked"],
        ["transfer-encoding: CHUNKED"],
        ["Transfer-Encoding:  \tchunked\t "],
        ["Transfer-Encoding: Chunked"],
    ],
)
def test_chunked_is_accepted(fields: list[str]) -> None:
    outcome = parse(request("POST / HTTP/1.1", "Host: x", *fields, body=b"3\r\nabc\r\n0\r\n\r\n"))
    assert outcome.head.chunked is True
    assert outcome.head.content_length is None
    assert outcome.body == b"abc"


@pytest.mark.parametrize(
    "fields, status",
    [
        (["Transfer-Encoding: gzip, chunked"], 501),
        (["Transfer-Encoding: identity, chunked"], 501),
        (["Transfer-Encoding: deflate,chunked"], 501),
        (["Transfer-Encoding: x-unknown ; a=b , chunked"], 501),
        (['Transfer-Encoding: gzip;q="1", chunked'], 501),
        (["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"], 501),
        (["Transfer-Encoding: identity"], 400),
        (["Transfer-Encoding: gzip"], 400),
        (["Transfer-Encoding: chunked, gzip"], 400),
        (["Transfer-Encoding: chunked", "Transfer-Encoding: identity"], 400),
        (["Transfer-Encoding: chunked, chunked"], 400),
        (["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], 400),
        (["Transfer-Encoding: identity, chunked, identity, chunked"], 400),
        (["Transfer-Encoding: , chunked"], 400),
        (["Transfer-Encoding: chunked,"], 400),
        (["Transfer-Encoding: gzip,,chunked"], 400),
        (["Transfer-Encoding:"], 400),
        (["Transfer-Encoding: chu nked"], 400),
        (['Transfer-Encoding: "chunked"'], 400),
        (["Transfer-Encoding: chunked;x=1"], 400),
        (["Transfer-Encoding: gzip;q, chunked"], 400),
        (["Transfer-Encoding: chunked", "Content-Length: 3"], 400),
        (["Content-Length: 3", "Transfer-Encoding: chunked"], 400),
        (["Content-Length: 3", "Transfer-Encoding: gzip, chunked"], 400),
    ],
)
def test_transfer_encoding_rules(fields: list[str], status: int) -> None:
    assert_status(request("POST / HTTP/1.1", "Host: x", *fields, body=b"3\r\nabc\r\n0\r\n\r\n"), status)


def test_transfer_encoding_in_http10_is_400() -> None:
    assert_status(request("POST / HTTP/1.0", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400)


# -- limits -----------------------------------------------------------------------------------


def _head_of_size(size: int) -> bytes:
    base = request("GET / HTTP/1.1", "Host: x", "X: ")
    return request("GET / HTTP/1.1", "Host: x", "X: " + "a" * (size - len(base)))


def test_head_exactly_at_the_limit_is_accepted() -> None:
    limits = ParserLimits(max_header_bytes=300)
    data = _head_of_size(300)
    assert len(data) == 300
    assert single_head(data, limits).headers[1] == (
        "X",
        "a" * (300 - len(request("GET / HTTP/1.1", "Host: x", "X: "))),
    )
    assert_status(_head_of_size(301), 431, limits)


def test_oversized_head_is_refused_before_it_ends() -> None:
    limits = ParserLimits(max_header_bytes=1000)
    parser = RequestParser(limits)
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 980)
    with pytest.raises(RemoteProtocolError) as raised:
        parser.next_event()
    assert raised.value.status_hint == 431
    # and decided by the prefix alone, whatever the split
    assert_status(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 980, 431, limits)


def test_default_head_limit_allows_a_200_kb_field() -> None:
    value = "v" * 200_000
    head = single_head(request("GET / HTTP/1.1", "Host: x", f"Big: {value}"))
    assert head.headers[1] == ("Big", value)


def test_request_line_limit_is_414() -> None:
    limits = ParserLimits(max_request_line_bytes=100)
    line = "GET /" + "a" * 86 + " HTTP/1.1"
    assert len(line) == 100
    assert single_head(request(line, "Host: x"), limits).target == "/" + "a" * 86
    assert_status(request("GET /" + "a" * 87 + " HTTP/1.1", "Host: x"), 414, limits)
    parser = RequestParser(limits)
    parser.feed(b"GET /" + b"a" * 200)  # refused before the line ends
    with pytest.raises(RemoteProtocolError) as raised:
        parser.next_event()
    assert raised.value.status_hint == 414


def test_field_line_limit_is_431() -> None:
    limits = ParserLimits(max_field_bytes=20)
    assert single_head(request("GET / HTTP/1.1", "Host: x", "X: " + "a" * 17), limits)
    assert_status(request("GET / HTTP/1.1", "Host: x", "X: " + "a" * 18), 431, limits)


def test_field_count_limit_is_431() -> None:
    limits = ParserLimits(max_header_count=3)
    assert len(single_head(request("GET / HTTP/1.1", "Host: x", "A: 1", "B: 2"), limits).headers) == 3
    assert_status(request("GET / HTTP/1.1", "Host: x", "A: 1", "B: 2", "C: 3"), 431, limits)


def test_the_earliest_error_wins_whatever_the_split() -> None:
    # A bare LF early in an oversized head: a byte-at-a-time reader sees the LF first.
    limits = ParserLimits(max_header_bytes=100)
    assert_status(b"GET / HTTP/1.1\r\nA: b\nC: " + b"d" * 200 + b"\r\n\r\n", 400, limits)
    # An oversized head whose bad request line ends after the limit.
    assert_status(b"GET /" + b"a" * 200 + b" HTTP/9.9\r\n\r\n", 431, limits)
    # A bad request line inside the limit, the end of the head beyond it.
    assert_status(b"GET / HTTP/9.9\r\nX: " + b"a" * 200 + b"\r\n\r\n", 505, limits)


# -- parser contract --------------------------------------------------------------------------


def test_error_state_is_sticky() -> None:
    parser = RequestParser(ParserLimits())
    parser.feed(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as first:
        parser.next_event()
    assert first.value.status_hint == 505
    assert parser.state is ParserState.ERROR
    assert parser.buffered_byte_count() == 0
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert parser.buffered_byte_count() == 0
    with pytest.raises(RemoteProtocolError) as second:
        parser.next_event()
    assert second.value.status_hint == 505
    assert str(second.value) == str(first.value)


def test_an_error_after_good_requests_keeps_their_events() -> None:
    outcome = parse(
        request("GET /ok HTTP/1.1", "Host: x") + b"GET /bad HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"
    )
    assert [head.target for head in outcome.heads] == ["/ok"]
    assert outcome.events[-1] == EndOfRequest(())
    assert outcome.status == 400


def test_parser_limits() -> None:
    limits = ParserLimits()
    assert limits.max_header_bytes == 262144
    assert limits.max_body_bytes == 1073741824
    assert limits == ParserLimits()
    assert ParserLimits(max_body_bytes=0).max_body_bytes == 0
    assert "max_header_bytes=262144" in repr(limits)
    with pytest.raises(TypeError):
        ParserLimits(262144)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ParserLimits(max_header_bytes="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ParserLimits(max_header_bytes=True)
    with pytest.raises(ValueError):
        ParserLimits(max_header_bytes=0)
    with pytest.raises(ValueError):
        ParserLimits(max_body_bytes=-1)
    with pytest.raises(AttributeError):
        limits.other = 1  # type: ignore[attr-defined]


def test_events_compare_by_value() -> None:
    assert BodyChunk(b"a") == BodyChunk(b"a")
    assert BodyChunk(b"a") != BodyChunk(b"b")
    assert EndOfRequest() == EndOfRequest(())
    assert EndOfRequest(()) != BodyChunk(b"")
    assert hash(BodyChunk(b"a")) == hash(BodyChunk(b"a"))
    assert repr(EndOfRequest((("a", "b"),))) == "EndOfRequest(trailers=(('a', 'b'),))"


# -- linear time ------------------------------------------------------------------------------


def _best_seconds(action: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def _assert_linear(make_pieces: Callable[[int], list[bytes]], small: int, limits: ParserLimits) -> None:
    """Quadrupling the input must not take anything like 16 times as long."""

    def timed(size: int) -> float:
        pieces = make_pieces(size)
        return _best_seconds(lambda: run_pieces(pieces, limits))

    small_seconds = timed(small)
    large_seconds = timed(small * 4)
    assert large_seconds < 9 * small_seconds + 0.05, (small_seconds, large_seconds)


def test_head_fed_byte_by_byte_is_linear() -> None:
    def pieces(size: int) -> list[bytes]:
        data = request("GET / HTTP/1.1", "Host: x", *["X-Field: value"] * (size // 16))
        return [data[index : index + 1] for index in range(len(data))]

    _assert_linear(pieces, 12_000, ParserLimits(max_header_count=100_000))


def test_long_field_fed_in_small_pieces_is_linear() -> None:
    def pieces(size: int) -> list[bytes]:
        data = request("GET / HTTP/1.1", "Host: x", "Big: " + "a " * (size // 2))
        return [data[index : index + 7] for index in range(0, len(data), 7)]

    _assert_linear(pieces, 50_000, ParserLimits())


def test_refused_line_of_spaces_is_linear() -> None:
    # A failing match must not backtrack quadratically over a long whitespace run.
    def pieces(size: int) -> list[bytes]:
        return [b"GET / HTTP/1.1\r\nHost: x\r\nX:" + b" " * size + b"\x00\r\n\r\n"]

    _assert_linear(pieces, 50_000, ParserLimits())


def test_body_fed_byte_by_byte_is_linear() -> None:
    def pieces(size: int) -> list[bytes]:
        head = request("POST / HTTP/1.1", "Host: x", f"Content-Length: {size}")
        return [head] + [b"x"] * size

    _assert_linear(pieces, 20_000, ParserLimits())


def test_pipelined_flood_in_one_feed_is_linear() -> None:
    one = request("GET / HTTP/1.1", "Host: x")

    def pieces(size: int) -> list[bytes]:
        return [one * size]

    _assert_linear(pieces, 2_000, ParserLimits())


# -- heads parsed once, returned again ---------------------------------------------------


def _heads_of(data: bytes, limits: ParserLimits) -> list[RequestHead]:
    parser = RequestParser(limits)
    parser.feed(data)
    heads = []
    while (event := parser.next_event()) is not None:
        if isinstance(event, RequestHead):
            heads.append(event)
    return heads


def test_a_repeated_head_is_the_same_immutable_head() -> None:
    """A keep-alive client repeating its head exactly gets the head parsed the first time,
    on this connection or another with the same limits."""
    limits = ParserLimits()
    data = request("GET /cached HTTP/1.1", "Host: example.com", "X-A: 1")
    first, second = _heads_of(data + data, limits)
    assert first is second
    assert _heads_of(data, limits)[0] is first
    assert first.path == "/cached" and first.headers == (("Host", "example.com"), ("X-A", "1"))


def test_heads_differing_in_any_byte_are_parsed_apart() -> None:
    limits = ParserLimits()
    heads = _heads_of(
        request("GET /a HTTP/1.1", "Host: h")
        + request("GET /a HTTP/1.1", "Host: H")
        + request("GET /a HTTP/1.1", "Host: h", "Connection: close"),
        limits,
    )
    assert [head.headers[0][1] for head in heads] == ["h", "H", "h"]
    assert [head.keep_alive for head in heads] == [True, True, False]


def test_a_head_accepted_under_some_limits_is_refused_under_stricter_ones() -> None:
    """The parsed heads are kept per limits object: what passed one server's limits is
    checked again against another's."""
    data = request("GET / HTTP/1.1", "Host: h", "X-Long: " + "v" * 100)
    assert _heads_of(data, ParserLimits())[0].path == "/"
    assert_status(data, 431, ParserLimits(max_field_bytes=50))
    assert_status(data, 414, ParserLimits(max_request_line_bytes=5))


def test_a_bad_head_is_refused_every_time() -> None:
    data = request("GET / HTTP/1.1", "Host: h", "Bad Name: x")
    for _ in range(3):
        assert_status(data, 400)


def test_many_distinct_and_long_heads_stay_correct() -> None:
    """Past the cache's bounds (entries, head size) heads are still parsed right."""
    limits = ParserLimits()
    for index in range(600):
        data = request(f"GET /{index} HTTP/1.1", "Host: h")
        assert _heads_of(data, limits)[0].path == f"/{index}"
    long_head = request("GET /long HTTP/1.1", "Host: h", "X-Big: " + "b" * 2000)
    first, second = _heads_of(long_head + long_head, limits)
    assert first == second and first.headers[1][1] == "b" * 2000
