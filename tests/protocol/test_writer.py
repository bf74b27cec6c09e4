"""ResponseWriter: framing, the head it writes, the keep-alive verdict, order of calls.

Every response here goes through :func:`respond`, which hands the body to the writer whole,
byte by byte and in seeded random pieces, reads each result back with :func:`read_back` (a
small client of its own, following RFC 9112 6.3 from the receiving side) and insists that
all of them read back alike. The property tests import both from here.
"""

from __future__ import annotations

import random
import re
from typing import NamedTuple, Optional

import pytest

from waitress_like.errors import LocalProtocolError
from waitress_like.protocol import Framing, HeadPolicy, ResponseWriter
from waitress_like.protocol import response as response_module
from waitress_like.protocol import writer as writer_module
from waitress_like.protocol.response import check_header, parse_status
from waitress_like.protocol.writer import CACHED_HEAD_MAX_BYTES, CACHED_HEADS

from .test_request_parser import random_pieces

PLAIN = HeadPolicy(server="", date=False)  # nothing added: heads are exactly predictable

# -- a client's reading, and the three-ways helper ---------------------------------------------


class ReadBack(NamedTuple):
    """What a client makes of a response's bytes."""

    status_line: str
    headers: list[tuple[str, str]]
    body: bytes
    rest: bytes  # bytes after the response; for close-delimited bodies always b""

    def header(self, name: str) -> Optional[str]:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) <= 1, (name, self.headers)
        return values[0] if values else None


def read_back(wire: bytes, method: str = "GET") -> ReadBack:
    """Read one response as a client would (RFC 9112 6.3), with strict syntax checks."""
    head, separator, rest = wire.partition(b"\r\n\r\n")
    assert separator, wire
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert re.fullmatch(r"HTTP/1\.[01] [1-9][0-9][0-9] [^\r\n]*", status_line), status_line
    headers = []
    for line in lines:
        name, colon, value = line.partition(": ")
        assert colon and re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name), line
        headers.append((name, value))
    names = [name.lower() for name, _ in headers]
    assert not ("content-length" in names and "transfer-encoding" in names), headers
    code = int(status_line[9:12])
    if method == "HEAD" or code < 200 or code in (204, 304):
        return ReadBack(status_line, headers, b"", rest)
    result = ReadBack(status_line, headers, b"", b"")
    if result.header("Transfer-Encoding") == "chunked":
        body, rest = _dechunk(rest)
        return result._replace(body=body, rest=rest)
    length = result.header("Content-Length")
    if length is not None:
        assert len(rest) >= int(length), (length, rest)
        return result._replace(body=rest[: int(length)], rest=rest[int(length) :])
    return result._replace(body=rest)  # until close


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    body = b""
    while True:
        size_line, separator, data = data.partition(b"\r\n")
        assert separator and re.fullmatch(rb"[0-9A-F]+", size_line), size_line
        size = int(size_line, 16)
        if size == 0:
            assert data.startswith(b"\r\n"), data  # no trailers
            return body, data[2:]
        assert data[size : size + 2] == b"\r\n", data
        body += data[:size]
        data = data[size + 2 :]


class Framed(NamedTuple):
    """One response framed by one writer."""

    head: bytes
    wire: bytes  # head and body bytes, as they would be sent
    writer: ResponseWriter
    dropped: int  # the sum of what body() returned
    missing: int  # what end() returned

    def read(self) -> ReadBack:
        return read_back(self.wire, self.writer.method)


def frame(
    pieces: list[bytes],
    status: str = "200 OK",
    headers: Optional[list[tuple[str, str]]] = None,
    *,
    method: str = "GET",
    version: tuple[int, int] = (1, 1),
    keep_alive: bool = True,
    last_response: bool = False,
    content_length: Optional[int] = None,
    policy: HeadPolicy = PLAIN,
) -> Framed:
    """Frame a response whose body comes as ``pieces``."""
    writer = ResponseWriter(policy, method, version, keep_alive)
    writer.set_head(status, [] if headers is None else headers)
    if content_length is not None:
        writer.set_content_length(content_length)
    head = writer.start(last_response)
    out: list[bytes] = [head]
    dropped = sum(writer.body(piece, out) for piece in pieces)
    missing = writer.end(out)
    for part in out:
        assert type(part) is bytes and part, out  # no empty pieces for the pipe
    return Framed(head, b"".join(out), writer, dropped, missing)


def respond(body: bytes, *args: object, seed: int = 0, **kwargs: object) -> Framed:
    """Frame ``body`` whole, byte by byte and in random pieces; all must read back alike.

    Returns the whole-body framing. Content-Length and close-delimited bodies must give
    identical bytes however they are split; chunked ones the same body and head.
    """
    whole = frame([body], *args, **kwargs)  # type: ignore[arg-type]
    rng = random.Random(seed)
    splittings = [[body[index : index + 1] for index in range(len(body))]]
    splittings += [random_pieces(body, rng) for _ in range(2)]
    splittings.append([b"", *random_pieces(body, rng), b""])  # empty pieces change nothing
    for pieces in splittings:
        other = frame(pieces, *args, **kwargs)  # type: ignore[arg-type]
        assert other.head == whole.head
        assert other.read() == whole.read()
        assert (other.writer.keep_alive, other.writer.body_bytes) == (
            whole.writer.keep_alive,
            whole.writer.body_bytes,
        )
        assert (other.dropped, other.missing) == (whole.dropped, whole.missing)
        if whole.writer.framing is not Framing.CHUNKED:
            assert other.wire == whole.wire
    return whole


# -- framing ------------------------------------------------------------------------------------


def test_content_length_body() -> None:
    framed = respond(b"hello", headers=[("Content-Type", "text/plain"), ("Content-Length", "5")])
    assert framed.wire == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    assert framed.writer.framing is Framing.LENGTH
    assert framed.writer.keep_alive is True
    assert framed.writer.body_bytes == 5


def test_http11_without_a_length_is_chunked_in_upper_case_hex() -> None:
    framed = frame([b"x" * 10, b"y" * 255], headers=[("Content-Type", "text/plain")])
    assert framed.wire == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"A\r\nxxxxxxxxxx\r\nFF\r\n" + b"y" * 255 + b"\r\n0\r\n\r\n"
    )
    assert framed.writer.framing is Framing.CHUNKED
    assert framed.writer.keep_alive is True
    assert framed.writer.body_bytes == 265


def test_a_large_chunk_is_not_copied() -> None:
    data = b"z" * 100_000
    writer = ResponseWriter(PLAIN, "GET", (1, 1), True)
    writer.set_head("200 OK", [])
    writer.start()
    out: list[bytes] = []
    writer.body(data, out)
    assert out == [b"186A0\r\n", data, b"\r\n"]
    assert out[1] is data


def test_a_small_chunk_is_one_piece() -> None:
    writer = ResponseWriter(PLAIN, "GET", (1, 1), True)
    writer.set_head("200 OK", [])
    writer.start()
    out: list[bytes] = []
    writer.body(b"abc", out)
    assert out == [b"3\r\nabc\r\n"]


def test_empty_pieces_do_not_end_a_chunked_body() -> None:
    framed = frame([b"", b"ab", b"", b"c"])
    assert framed.wire.endswith(b"\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
    assert framed.read().body == b"abc"


def test_http10_without_a_length_is_delimited_by_closing() -> None:
    framed = respond(b"hello", version=(1, 0))
    assert framed.wire == b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nhello"
    assert framed.writer.framing is Framing.UNTIL_CLOSE
    assert framed.writer.keep_alive is False


def test_http10_keep_alive_with_a_length_says_so_in_waitress_spelling() -> None:
    framed = respond(b"hi", headers=[("Content-Length", "2")], version=(1, 0))
    assert framed.wire == b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\nhi"
    assert framed.writer.keep_alive is True


def test_http10_without_keep_alive_closes() -> None:
    framed = respond(b"hi", headers=[("Content-Length", "2")], version=(1, 0), keep_alive=False)
    assert framed.wire == b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    assert framed.writer.keep_alive is False


@pytest.mark.parametrize(
    "headers",
    [[("Content-Length", "5")], []],
    ids=["with a length", "without"],
)
def test_a_head_request_gets_the_head_only(headers: list[tuple[str, str]]) -> None:
    framed = respond(b"hello", headers=headers, method="HEAD")
    assert framed.writer.framing is Framing.NO_BODY
    assert framed.wire == framed.head
    assert b"Transfer-Encoding" not in framed.head  # no framing header where none was given
    assert framed.writer.keep_alive is True
    assert framed.writer.body_bytes == 0
    assert (framed.dropped, framed.missing) == (0, 0)


@pytest.mark.parametrize(
    "status", ["100 Continue", "101 Switching Protocols", "204 No Content", "304 Not Modified"]
)
def test_statuses_without_content_drop_the_body(status: str) -> None:
    framed = respond(b"ignored", status)
    assert framed.wire == f"HTTP/1.1 {status}\r\n\r\n".encode()
    assert framed.writer.framing is Framing.NO_BODY
    assert framed.writer.keep_alive is True


def test_a_request_that_asked_to_close_gets_connection_close() -> None:
    framed = respond(b"hi", headers=[("Content-Length", "2")], keep_alive=False)
    assert framed.wire == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    assert framed.writer.keep_alive is False


def test_the_last_response_says_connection_close() -> None:
    framed = respond(b"hi", headers=[("Content-Length", "2")], last_response=True)
    assert framed.read().header("Connection") == "close"
    assert framed.writer.keep_alive is False


# -- lengths that do not match the body ------------------------------------------------------


def test_bytes_past_the_content_length_are_dropped_and_the_connection_kept() -> None:
    framed = respond(b"hello world", headers=[("Content-Length", "5")])
    assert framed.read().body == b"hello"
    assert framed.read().rest == b""
    assert framed.dropped == 6
    assert framed.writer.body_bytes == 5
    assert framed.writer.keep_alive is True


def test_a_body_shorter_than_its_content_length_closes() -> None:
    framed = frame([b"hel"], headers=[("Content-Length", "5")])
    assert framed.wire.endswith(b"\r\n\r\nhel")
    assert b"Connection" not in framed.head  # the head went out before anyone knew
    assert framed.missing == 2
    assert framed.writer.keep_alive is False


def test_a_known_length_is_added_when_the_application_gave_none() -> None:
    headers = [("Content-Type", "text/plain")]
    framed = respond(b"hello", headers=headers, content_length=5)
    assert framed.wire == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    assert headers == [("Content-Type", "text/plain")]  # the application's list is untouched


def test_a_known_length_replaces_the_applications() -> None:
    headers = [("content-length", "9"), ("Content-Type", "text/plain")]
    framed = respond(b"hello", headers=headers, content_length=5)
    assert framed.read().headers == [("Content-Type", "text/plain"), ("Content-Length", "5")]
    assert framed.writer.keep_alive is True
    assert headers[0] == ("content-length", "9")


# -- what the server adds --------------------------------------------------------------------


def test_date_and_server_come_after_the_applications_headers() -> None:
    policy = HeadPolicy(server="waitress_like", date=True)
    # Framed once: heads framed a second apart would differ in their Date.
    framed = frame([b""], headers=[("X-A", "1")], policy=policy, version=(1, 0))
    names = [name for name, _ in framed.read().headers]
    assert names == ["X-A", "Date", "Server", "Connection"]
    date = framed.read().header("Date")
    assert date is not None
    assert re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", date)
    assert framed.read().header("Server") == "waitress_like"


def test_the_applications_date_and_server_win() -> None:
    policy = HeadPolicy(server="waitress_like", date=True)
    headers = [("date", "Thu, 01 Jan 1970 00:00:00 GMT"), ("SERVER", "mine")]
    framed = respond(b"", headers=headers, policy=policy)
    assert framed.read().headers[:2] == headers
    assert [name.lower() for name, _ in framed.read().headers].count("date") == 1
    assert [name.lower() for name, _ in framed.read().headers].count("server") == 1


def test_default_headers_unless_the_application_set_them() -> None:
    policy = HeadPolicy(
        date=False, default_headers=(("X-Frame-Options", "DENY"), ("Cache-Control", "no-store"))
    )
    framed = respond(b"x", headers=[("cache-control", "max-age=5")], policy=policy)
    assert framed.head == (
        b"HTTP/1.1 200 OK\r\ncache-control: max-age=5\r\nX-Frame-Options: DENY\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )


# -- heads the policy remembers -----------------------------------------------------------------


def test_a_repeated_head_is_checked_and_framed_once() -> None:
    policy = HeadPolicy(server="srv", date=False)
    heads = [frame([b"hi"], headers=[("Content-Type", "text/plain")], policy=policy).head for _ in range(3)]
    assert heads[0] == heads[1] == heads[2]
    assert len(policy.checked_heads) == 1
    assert len(policy.framed_heads) == 1


def test_a_head_differing_in_one_value_is_framed_anew() -> None:
    policy = HeadPolicy(date=False)
    first = frame([b""], "302 Found", [("Location", "/a")], policy=policy)
    second = frame([b""], "302 Found", [("Location", "/b")], policy=policy)
    assert first.read().header("Location") == "/a"
    assert second.read().header("Location") == "/b"


def test_a_remembered_head_takes_the_length_it_is_given() -> None:
    policy = HeadPolicy(date=False)
    for length in (3, 5, 3):
        framed = frame([b"x" * length], headers=[("X-A", "1")], content_length=length, policy=policy)
        assert framed.read().header("Content-Length") == str(length)
        assert framed.read().body == b"x" * length


@pytest.mark.skipif(
    not writer_module.__file__ or not writer_module.__file__.endswith(".py"),
    reason="a compiled writer calls http_date directly: monkeypatching the module cannot reach it",
)
def test_a_remembered_head_takes_the_date_of_its_second(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = HeadPolicy(date=True)
    for date in ("Mon, 01 Jan 2024 00:00:00 GMT", "Mon, 01 Jan 2024 00:00:01 GMT"):
        monkeypatch.setattr(writer_module, "http_date", lambda date=date: date)
        assert frame([b""], headers=[("X-A", "1")], policy=policy).read().header("Date") == date


def test_a_large_head_is_not_remembered() -> None:
    policy = HeadPolicy(date=False)
    value = "x" * CACHED_HEAD_MAX_BYTES
    for _ in range(2):
        framed = frame([b""], headers=[("Content-Security-Policy", value)], policy=policy)
        assert framed.read().header("Content-Security-Policy") == value
    assert policy.checked_heads == {} and policy.framed_heads == {}


def test_the_policys_caches_stay_bounded() -> None:
    policy = HeadPolicy(date=False)
    for index in range(CACHED_HEADS * 2 + 7):
        frame([b""], headers=[("X-Request", str(index))], policy=policy)
        assert len(policy.checked_heads) <= CACHED_HEADS
        assert len(policy.framed_heads) <= CACHED_HEADS


@pytest.mark.parametrize(
    "headers",
    [
        [["Content-Type", "text/plain"]],  # a list, not a tuple: unhashable too
        [("Content-Type", ["text/plain"])],
        [("X-A", "1\r\nX-Injected: 1")],
    ],
)
def test_a_bad_head_is_refused_even_beside_a_remembered_one(headers: list) -> None:
    policy = HeadPolicy(date=False)
    frame([b""], headers=[("Content-Type", "text/plain"), ("X-A", "1")], policy=policy)
    writer = ResponseWriter(policy, "GET", (1, 1), True)
    with pytest.raises(LocalProtocolError):
        writer.set_head("200 OK", headers)
    assert writer.status == "" and writer._head_key is None


# -- the head the application gives ------------------------------------------------------------


@pytest.mark.parametrize(
    "status, headers",
    [
        ("200", []),
        ("200 OK\r\nX-Injected: 1", []),
        ("99 Low", []),
        (b"200 OK", []),
        ("200 OK", ()),
        ("200 OK", [["X-A", "1"]]),
        ("200 OK", [("X-A", "1", "2")]),
        ("200 OK", [("X-A", b"1")]),
        ("200 OK", [("X A", "1")]),
        ("200 OK", [("X-A", "1\r\nX-Injected: 2")]),
        ("200 OK", [("X-A", "nul\x00")]),
        ("200 OK", [("Connection", "close")]),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200 OK", [("Content-Length", "-1")]),
        ("200 OK", [("Content-Length", "1 2")]),
        ("200 OK", [("Content-Length", "\u0661")]),  # a digit, but not an ASCII one
    ],
)
def test_a_bad_head_is_refused_and_the_previous_one_kept(status: object, headers: object) -> None:
    writer = ResponseWriter(PLAIN, "GET", (1, 1), True)
    writer.set_head("404 Not Found", [("X-Kept", "yes")])
    with pytest.raises(LocalProtocolError):
        writer.set_head(status, headers)
    assert (writer.status, writer.status_code, writer.headers) == ("404 Not Found", 404, [("X-Kept", "yes")])
    assert writer.start() == b"HTTP/1.1 404 Not Found\r\nX-Kept: yes\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_head_may_be_replaced_until_it_starts() -> None:
    writer = ResponseWriter(PLAIN, "GET", (1, 1), True)
    writer.set_head("200 OK", [("Content-Length", "3")])
    writer.set_head("500 Internal Server Error", [("Content-Length", "1")])
    assert writer.start() == b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1\r\n\r\n"
    with pytest.raises(LocalProtocolError):
        writer.set_head("200 OK", [])
    with pytest.raises(LocalProtocolError):
        writer.set_content_length(3)


def test_the_name_cache_never_skips_the_value_check() -> None:
    assert check_header("X-Cached", "fine") == "x-cached"
    assert check_header("X-Cached", "fine") == "x-cached"
    with pytest.raises(LocalProtocolError):
        check_header("X-Cached", "not\r\nfine")
    with pytest.raises(LocalProtocolError):
        check_header("X-Cached", 1)


def test_the_validity_caches_are_bounded() -> None:
    for number in range(response_module._VALID_MAX + 10):
        check_header(f"X-Many-{number}", "v")
        parse_status(f"{200 + number % 700} Reason {number}")
    assert len(response_module._VALID_NAMES) <= response_module._VALID_MAX
    assert len(response_module._VALID_STATUSES) <= response_module._VALID_MAX
    assert check_header("X-Many-5000", "v") == "x-many-5000"  # past the bound, still checked
    with pytest.raises(LocalProtocolError):
        check_header("Bad Name", "v")


# -- responses the server gives instead ----------------------------------------------------------


def test_an_error_response_in_the_request_version_closes() -> None:
    writer = ResponseWriter(HeadPolicy(server="srv"), "GET", (1, 0), True)
    writer.set_head("200 OK", [])  # set, but never started: the error replaces it
    data = writer.error_response(500, "boom")
    response = read_back(data)
    assert response.status_line == "HTTP/1.0 500 Internal Server Error"
    assert response.header("Connection") == "close"
    assert response.body == b"Internal Server Error\r\n\r\nboom\r\n\r\n(generated by srv)"
    assert response.rest == b""
    assert writer.keep_alive is False
    assert writer.status_code == 500
    with pytest.raises(LocalProtocolError):
        writer.start()


def test_an_error_response_to_head_has_no_body() -> None:
    writer = ResponseWriter(PLAIN, "HEAD", (1, 1), True)
    data = writer.error_response(400, "bad")
    assert data.endswith(b"\r\n\r\n")
    assert read_back(data, "HEAD").header("Content-Length") == str(
        len("Bad Request\r\n\r\nbad\r\n\r\n(generated by server)")
    )


def test_an_error_response_after_the_head_went_out_is_refused() -> None:
    writer = ResponseWriter(PLAIN, "GET", (1, 1), True)
    writer.set_head("200 OK", [])
    writer.start()
    with pytest.raises(LocalProtocolError):
        writer.error_response(500, "too late")
    assert writer.keep_alive is True


def test_abort_closes() -> None:
    writer = ResponseWriter(PLAIN, "GET", (1, 1), True)
    writer.set_head("200 OK", [])
    writer.start()
    writer.abort()
    assert writer.keep_alive is False
    with pytest.raises(LocalProtocolError):
        writer.body(b"more", [])


# -- bodies sent from a file ------------------------------------------------------------------


def _started(
    headers: list[tuple[str, str]], method: str = "GET", version: tuple[int, int] = (1, 1)
) -> ResponseWriter:
    writer = ResponseWriter(PLAIN, method, version, True)
    writer.set_head("200 OK", headers)
    writer.start()
    return writer


def test_a_file_body_is_bounded_by_the_content_length() -> None:
    writer = _started([("Content-Length", "10")])
    assert writer.body_from_file(4) == 4
    assert writer.body_from_file(100) == 6
    assert writer.body_bytes == 10
    assert writer.end([]) == 0
    assert writer.keep_alive is True


def test_a_file_body_without_a_body_sends_nothing() -> None:
    writer = _started([("Content-Length", "10")], method="HEAD")
    assert writer.body_from_file(10) == 0
    assert writer.end([]) == 0
    assert writer.body_bytes == 0


def test_a_file_body_until_close_is_sent_whole() -> None:
    writer = _started([], version=(1, 0))
    assert writer.body_from_file(1000) == 1000
    assert writer.keep_alive is False


def test_a_file_body_cannot_be_chunked() -> None:
    writer = _started([])
    with pytest.raises(LocalProtocolError):
        writer.body_from_file(10)


# -- order of calls -------------------------------------------------------------------------


def test_calls_out_of_order_are_refused() -> None:
    writer = ResponseWriter(PLAIN, "GET", (1, 1), True)
    for call in (
        writer.start,
        lambda: writer.body(b"x", []),
        lambda: writer.end([]),
        lambda: writer.body_from_file(1),
    ):
        with pytest.raises(LocalProtocolError):
            call()
    writer.set_head("200 OK", [("Content-Length", "1")])
    writer.start()
    with pytest.raises(LocalProtocolError):
        writer.start()
    writer.body(b"x", [])
    writer.end([])
    for call in (lambda: writer.body(b"x", []), lambda: writer.end([]), lambda: writer.body_from_file(1)):
        with pytest.raises(LocalProtocolError):
            call()
    assert writer.keep_alive is True


# -- the verdict ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [(1, 0), (1, 1)])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("length", [None, 2, 5], ids=["no length", "length", "short"])
@pytest.mark.parametrize("last_response", [False, True])
def test_the_verdict(
    version: tuple[int, int], keep_alive: bool, length: Optional[int], last_response: bool
) -> None:
    headers = [] if length is None else [("Content-Length", str(length))]
    framed = frame(
        [b"hi"], headers=headers, version=version, keep_alive=keep_alive, last_response=last_response
    )
    expected = keep_alive and not last_response and length == 2
    if length is None and version == (1, 1):
        expected = keep_alive and not last_response  # chunked
    assert framed.writer.keep_alive is expected
    connection = read_back(framed.head, "HEAD").header("Connection")  # a short body is never read
    if not keep_alive or last_response or (length is None and version == (1, 0)):
        assert connection == "close"
    elif version == (1, 0):
        assert connection == "Keep-Alive"
    else:
        assert connection is None
