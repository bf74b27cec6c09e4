"""The parser against gunicorn's request corpus (:mod:`tests.protocol.corpus`).

Each case's bytes go through the three-ways helper (whole, byte by byte, random splits).
Valid cases must yield exactly the listed requests; invalid ones must be refused with the
status their error class implies. Where we differ from gunicorn the case is listed in
:mod:`tests.protocol.corpus` with the reason (and in docs/conformance.rst), and the
difference is asserted, not skipped, unless the case needs a gunicorn feature that does
not live in a request parser at all (PARSER_NOT_APPLICABLE).

The PROXY protocol cases (PROXY_CASES) are fed, split the same three ways, to a
``ProxyProtocolReader`` first, as the channel does under ``proxy_protocol="auto"`` for a
trusted peer; the header's ``leftover`` and everything after it go to the parser. Valid
ones must name the listed client and then yield the listed requests; invalid ones must
make the reader raise ProxyProtocolError, before any byte reaches the parser.

One adaptation applies to many cases: RFC 9112 3.2 makes a Host field mandatory in
HTTP/1.1 (400 without one) and gunicorn does not check, so over fifty cases omit it. For
those the test inserts ``Host: h`` right after the request line and expects it
as the first field; ``test_http11_cases_without_host_are_refused`` checks the unmodified
bytes really are refused.
"""

from __future__ import annotations

import random
import re
from typing import Any, NamedTuple, Optional

import pytest

from waitress_like.haproxy import ProxyHeader, ProxyProtocolError, ProxyProtocolReader
from waitress_like.protocol import BodyChunk, EndOfRequest, ParserLimits, ParserState, RequestHead

from .corpus import (
    ACCEPTED,
    CASES,
    DELIBERATE,
    ERROR_STATUS,
    GUNICORN_FIELD_COUNT_LIMIT,
    GUNICORN_FIELD_SIZE_LIMIT,
    GUNICORN_LINE_LIMIT,
    INCOMPLETE_ERRORS,
    PARSER_NOT_APPLICABLE,
    PROXY_CASES,
    PROXY_CLIENTS,
    PROXY_ERRORS,
    SERVER_NOT_APPLICABLE,
    STATUS_DIFFERENCES,
    STATUS_OVERRIDES,
    as_valid,
    body_of,
    check_settings,
    needs_host,
    our_proxy_settings,
    raw_bytes,
    with_host_for_invalid,
    with_host_for_valid,
)
from .test_request_parser import Outcome, parse, random_pieces, run_pieces

NOT_APPLICABLE = PARSER_NOT_APPLICABLE


def gunicorn_limits(settings: dict[str, Any]) -> ParserLimits:
    """gunicorn's limits (its defaults unless the case sets them) as ParserLimits."""
    # 0 means gunicorn's default
    field_size = settings.get("limit_request_field_size") or GUNICORN_FIELD_SIZE_LIMIT
    return ParserLimits(
        max_request_line_bytes=settings.get("limit_request_line", GUNICORN_LINE_LIMIT),
        max_header_count=settings.get("limit_request_fields", GUNICORN_FIELD_COUNT_LIMIT),
        # gunicorn counts a field line's CRLF, we do not
        max_field_bytes=field_size - 2,
    )


def expected_headers(expected: dict[str, Any]) -> list[tuple[str, str]]:
    headers = [(name, value) for name, value in expected["headers"]]
    if needs_host(expected):
        headers.insert(0, ("HOST", "h"))
    return headers


def requests_of(outcome: Outcome) -> list[dict[str, Any]]:
    """Group events into requests: head, body, trailers (None while unfinished)."""
    found: list[dict[str, Any]] = []
    for event in outcome.events:
        if isinstance(event, RequestHead):
            found.append({"head": event, "body": b"", "trailers": None})
        elif isinstance(event, BodyChunk):
            found[-1]["body"] += event.data
        else:
            assert isinstance(event, EndOfRequest)
            found[-1]["trailers"] = event.trailers
    return found


# -- the PROXY protocol reader in front of the parser ---------------------------------------------


class Proxied(NamedTuple):
    """What a PROXY reader, then a parser, made of a connection's bytes."""

    header: Optional[ProxyHeader]  # None after an error, or while the header is incomplete
    error: Optional[ProxyProtocolError]
    http: Optional[Outcome]  # the parser's outcome for the bytes after the header

    def comparable(self) -> tuple[Any, ...]:
        # Everything but the leftover, which depends on where the bytes were split.
        header = (
            None
            if self.header is None
            else tuple(getattr(self.header, slot) for slot in ProxyHeader.__slots__ if slot != "leftover")
        )
        error = None if self.error is None else (type(self.error), str(self.error))
        return header, error, None if self.http is None else self.http.comparable()


def proxy_reader(settings: dict[str, Any]) -> ProxyProtocolReader:
    """The reader the server gives a trusted peer (``ProxyPolicy.preamble_reader``) under
    our proxy_protocol for the case: with "auto", a header of either version, or none."""
    protocol = our_proxy_settings(settings)["proxy_protocol"]
    return ProxyProtocolReader(protocol, required=protocol != "auto")


def run_behind_proxy_reader(pieces: list[bytes], settings: dict[str, Any], limits: ParserLimits) -> Proxied:
    """Feed ``pieces`` to a PROXY reader until it has the header, then its leftover and
    the remaining pieces to a parser, as the channel does."""
    reader = proxy_reader(settings)
    for index, piece in enumerate(pieces):
        try:
            header = reader.feed(piece)
        except ProxyProtocolError as error:
            return Proxied(None, error, None)
        if isinstance(header, ProxyHeader):
            return Proxied(header, None, run_pieces([header.leftover, *pieces[index + 1 :]], limits))
    return Proxied(None, None, None)


def parse_proxied(
    data: bytes, settings: dict[str, Any], limits: ParserLimits, *, seed: int = 0, random_runs: int = 2
) -> Proxied:
    """:func:`run_behind_proxy_reader` whole, byte by byte and at random splits; all must agree."""
    whole = run_behind_proxy_reader([data], settings, limits)
    splittings = [[data[index : index + 1] for index in range(len(data))]]
    rng = random.Random(seed)
    splittings += [random_pieces(data, rng) for _ in range(random_runs)]
    for pieces in splittings:
        other = run_behind_proxy_reader(pieces, settings, limits)
        assert other.comparable() == whole.comparable(), (
            f"split {[len(piece) for piece in pieces][:20]}... gave {other.comparable()} "
            f"instead of {whole.comparable()}"
        )
    return whole


def parse_case(name: str, data: bytes, limits: ParserLimits, *, random_runs: int = 2) -> Outcome:
    """The parser's outcome for a valid case's bytes. A PROXY case's bytes go through the
    PROXY reader first, which must accept them and name the listed client."""
    if name not in PROXY_CASES:
        return parse(data, limits, random_runs=random_runs)
    proxied = parse_proxied(data, CASES[name]["gunicorn_settings"], limits, random_runs=random_runs)
    assert proxied.error is None, proxied.error
    assert proxied.header is not None and proxied.http is not None
    assert proxied.header.client_address() == PROXY_CLIENTS.get(name), proxied.header
    return proxied.http


# -- the cases ------------------------------------------------------------------------------


def case_params(kind: str) -> list[Any]:
    params = []
    for name, case in CASES.items():
        if case["kind"] != kind:
            continue
        marks = [pytest.mark.skip(reason=NOT_APPLICABLE[name])] if name in NOT_APPLICABLE else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", case_params("valid"))
def test_valid_case(name: str) -> None:
    case = CASES[name]
    check_settings(name, case["gunicorn_settings"])
    limits = gunicorn_limits(case["gunicorn_settings"])
    if name in DELIBERATE:
        status, _ = DELIBERATE[name]
        assert parse(with_host_for_invalid(raw_bytes(case)), limits).status == status
        return
    assert_parsed_as_listed(name, case, limits)


def assert_parsed_as_listed(name: str, case: dict[str, Any], limits: ParserLimits) -> None:
    """The case's bytes (with Host inserted where needed) give exactly its listed requests."""
    outcome = parse_case(name, with_host_for_valid(case), limits)
    assert outcome.error is None, outcome.error
    found = requests_of(outcome)
    assert len(found) == len(case["requests"])
    for expected, got in zip(case["requests"], found):
        head: RequestHead = got["head"]
        assert head.method == expected["method"]
        assert head.target == expected["target"]
        assert list(head.version) == expected["version"]
        assert [(name.upper(), value) for name, value in head.headers] == expected_headers(expected)
        assert got["body"] == body_of(expected)
        if got["trailers"] is None:
            # valid/099 lists a body cut short of its Content-Length: that request stays open.
            assert got is found[-1]
            assert head.content_length is not None and len(got["body"]) < head.content_length
            assert outcome.state is ParserState.BODY
        else:
            trailers = [(name.upper(), value) for name, value in got["trailers"]]
            assert trailers == [tuple(pair) for pair in expected.get("trailers") or []]
    if len(found) < _request_lines_in(case):
        # The bytes hold a request the corpus does not list: it must never be parsed.
        assert outcome.state is ParserState.DONE


def _request_lines_in(case: dict[str, Any]) -> int:
    return len(re.findall(rb"(?:^|\r\n)[A-Z]+ /\S* HTTP/1\.[01]\r\n", raw_bytes(case)))


@pytest.mark.parametrize("name", case_params("invalid"))
def test_invalid_case(name: str) -> None:
    case = CASES[name]
    check_settings(name, case["gunicorn_settings"])
    limits = gunicorn_limits(case["gunicorn_settings"])
    if name in PROXY_CASES:
        assert case["error"] in PROXY_ERRORS
        proxied = parse_proxied(raw_bytes(case), case["gunicorn_settings"], limits)
        assert isinstance(proxied.error, ProxyProtocolError), proxied
        return
    if name in ACCEPTED:
        assert_parsed_as_listed(name, as_valid(case), limits)
        return
    outcome = parse(with_host_for_invalid(raw_bytes(case)), limits)
    status: Optional[int]
    if name in STATUS_DIFFERENCES:
        status = STATUS_DIFFERENCES[name][0]
    elif case["error"] in INCOMPLETE_ERRORS:
        assert outcome.error is None
        assert outcome.state in (ParserState.HEAD, ParserState.BODY)
        assert not outcome.events or not isinstance(outcome.events[-1], EndOfRequest)
        return
    else:
        status = STATUS_OVERRIDES.get(name, ERROR_STATUS[case["error"]])
    assert outcome.status == status, f"{case['error']}: {outcome.error!r}"


def test_http11_cases_without_host_are_refused() -> None:
    refused = 0
    for name, case in CASES.items():
        if case["kind"] != "valid" or name in NOT_APPLICABLE or name in DELIBERATE:
            continue
        original = raw_bytes(case)
        if with_host_for_valid(case) == original:
            continue
        outcome = parse_case(name, original, gunicorn_limits(case["gunicorn_settings"]), random_runs=0)
        assert outcome.status == 400, name
        assert outcome.error is not None and "Host" in str(outcome.error), name
        refused += 1
    assert refused >= 10  # the adaptation really is exercised


def test_listed_cases_exist_and_lists_stay_short() -> None:
    assert set(NOT_APPLICABLE) <= set(CASES)
    assert set(DELIBERATE) | set(STATUS_DIFFERENCES) | set(ACCEPTED) <= set(CASES)
    assert all(name.startswith("valid/") for name in DELIBERATE)
    assert all(name.startswith("invalid/") for name in [*STATUS_DIFFERENCES, *ACCEPTED])
    assert not set(STATUS_DIFFERENCES) & set(ACCEPTED)
    assert not set(NOT_APPLICABLE) & (set(DELIBERATE) | set(STATUS_DIFFERENCES) | set(ACCEPTED))
    assert len(NOT_APPLICABLE) <= 10


def test_proxy_cases_are_the_pp_cases_and_all_run() -> None:
    assert {name for name in CASES if name.split("/")[1].startswith("pp_")} == PROXY_CASES
    assert set(PROXY_CLIENTS) <= {name for name in PROXY_CASES if name.startswith("valid/")}
    listed = set(NOT_APPLICABLE) | set(SERVER_NOT_APPLICABLE) | set(DELIBERATE) | set(STATUS_DIFFERENCES)
    assert not PROXY_CASES & listed
    assert all(CASES[name]["error"] in PROXY_ERRORS for name in PROXY_CASES if name.startswith("invalid/"))
