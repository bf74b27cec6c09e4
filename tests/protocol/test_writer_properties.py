"""Hypothesis properties of ResponseWriter.

(a) Any response, however its body is split into pieces, reads back (by a client following
    RFC 9112 6.3) as the application meant it: its status and headers first and unchanged,
    the body cut to its Content-Length or framed whole, nothing left over for the next
    response to be misread with, and the verdict following the rules.
(b) Arbitrary status and header text is either refused with LocalProtocolError or reads
    back exactly as given: nothing an application sends can split or add a header.
"""

from __future__ import annotations

from typing import Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitress_like.errors import LocalProtocolError
from waitress_like.protocol import Framing, HeadPolicy, ResponseWriter

from .test_writer import PLAIN, frame, read_back

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Names the writer or the checks treat specially are chosen on purpose, not generated.
SPECIAL = {"content-length", "date", "server", "connection", "transfer-encoding", "keep-alive", "te"}
SPECIAL |= {"trailer", "trailers", "upgrade", "proxy-authenticate", "proxy-authorization"}
SPECIAL |= {"proxy-connection"}

names = st.text(TCHAR, min_size=1, max_size=12).filter(lambda name: name.lower() not in SPECIAL)
values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=20
)
statuses = st.sampled_from(
    ["100 Continue", "200 OK", "204 No Content", "304 Not Modified", "404 Not Found", "599 x"]
) | st.builds("{} {}".format, st.integers(100, 999), values)


@st.composite
def responses(draw: st.DrawFn) -> dict:
    headers = draw(st.lists(st.tuples(names, values), max_size=4))
    content_length = draw(st.none() | st.integers(0, 40))
    if content_length is not None:
        position = draw(st.integers(0, len(headers)))
        headers.insert(
            position, (draw(st.sampled_from(["Content-Length", "content-length"])), str(content_length))
        )
    return {
        "pieces": draw(st.lists(st.binary(max_size=30), max_size=5)),
        "status": draw(statuses),
        "headers": headers,
        "method": draw(st.sampled_from(["GET", "HEAD", "POST"])),
        "version": draw(st.sampled_from([(1, 0), (1, 1)])),
        "keep_alive": draw(st.booleans()),
        "last_response": draw(st.booleans()),
        "content_length": draw(st.none() | st.integers(0, 40)),
        "policy": draw(st.sampled_from([PLAIN, HeadPolicy(server="srv", date=False)])),
    }


def declared_length(case: dict) -> Optional[int]:
    """The length the head says: a known length wins over the application's."""
    if case["content_length"] is not None:
        return case["content_length"]
    given = [int(value) for name, value in case["headers"] if name.lower() == "content-length"]
    return given[-1] if given else None


@PROPERTY_SETTINGS
@given(responses(), st.randoms(use_true_random=False))
def test_any_response_reads_back_as_meant(case: dict, rng) -> None:
    framed = frame(**case)
    writer = framed.writer
    body = b"".join(case["pieces"])
    length = declared_length(case)
    code = int(case["status"][:3])
    no_body = case["method"] == "HEAD" or code < 200 or code in (204, 304)
    short = not no_body and length is not None and len(body) < length
    head_says_keep = case["keep_alive"] and not case["last_response"]
    if not no_body and length is None and case["version"] == (1, 0):
        head_says_keep = False  # delimited by closing
    head = read_back(framed.head, "HEAD")
    assert head.status_line == "HTTP/%d.%d %s" % (*case["version"], case["status"])
    expected_headers = case["headers"]
    if case["content_length"] is not None:
        expected_headers = [item for item in expected_headers if item[0].lower() != "content-length"]
        expected_headers.append(("Content-Length", str(case["content_length"])))
    assert head.headers[: len(expected_headers)] == expected_headers
    assert (head.header("Connection") == "close") is not head_says_keep
    assert writer.keep_alive is (head_says_keep and not short)
    if short:
        assert framed.missing == length - len(body)
        assert framed.wire == framed.head + body
        return
    response = framed.read()
    assert response.rest == b""  # the next response on the connection is framed right
    if no_body:
        assert response.body == b""
    elif length is not None:
        assert response.body == body[:length]
        assert framed.dropped == max(0, len(body) - length)
    else:
        assert response.body == body
        assert writer.framing is (Framing.CHUNKED if case["version"] == (1, 1) else Framing.UNTIL_CLOSE)
    assert writer.body_bytes == len(response.body)
    # However the same body is split, it reads back alike.
    pieces = []
    position = 0
    while position < len(body):
        size = rng.randint(1, len(body) - position)
        pieces.append(body[position : position + size])
        position += size
        if rng.random() < 0.2:
            pieces.append(b"")
    assert frame(**{**case, "pieces": pieces}).read() == response


@PROPERTY_SETTINGS
@given(
    st.text(max_size=20),
    st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)), max_size=3),
)
def test_arbitrary_head_text_is_refused_or_reads_back_exactly(status: str, headers: list) -> None:
    writer = ResponseWriter(PLAIN, "GET", (1, 1), True)
    try:
        writer.set_head(status, headers)
    except LocalProtocolError:
        return
    response = read_back(writer.start(), "HEAD")  # the head alone
    assert response.status_line == "HTTP/1.1 " + status
    assert response.headers[: len(headers)] == headers


# (c) A head framed from a policy's caches is the head framed afresh.

SHARED_POLICY = HeadPolicy(server="srv", date=False)  # fills its caches across examples


@PROPERTY_SETTINGS
@given(responses(), st.integers(0, 2))
def test_a_remembered_head_is_the_head_framed_afresh(case: dict, repeats: int) -> None:
    case["pieces"] = [b"body"]
    fresh = frame(**{**case, "policy": HeadPolicy(server="srv", date=False)})
    for _ in range(1 + repeats):
        again = frame(**{**case, "policy": SHARED_POLICY, "headers": list(case["headers"])})
        assert (again.head, again.wire, again.writer.keep_alive) == (
            fresh.head,
            fresh.wire,
            fresh.writer.keep_alive,
        )
        assert (again.writer.status_code, again.writer.content_length, again.writer.framing) == (
            fresh.writer.status_code,
            fresh.writer.content_length,
            fresh.writer.framing,
        )
