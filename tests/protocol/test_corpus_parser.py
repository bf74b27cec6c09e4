"""The parser against gunicorn's request corpus (../shared/corpora/gunicorn-requests).

Each case's bytes go through the three-ways helper (whole, byte by byte, random splits).
Valid cases must yield exactly the listed requests; invalid ones must be refused with the
status their error class implies. Where we differ from gunicorn the case is listed below
with the reason, and the difference is asserted, not skipped, unless the case needs a
gunicorn feature that does not live in a request parser at all (NOT_APPLICABLE).

One adaptation applies to many cases: RFC 9112 3.2 makes a Host field mandatory in
HTTP/1.1 (400 without one) and gunicorn does not check, so over fifty cases omit it. For
those the test inserts ``Host: h`` right after the request line and expects it
as the first field; ``test_http11_cases_without_host_are_refused`` checks the unmodified
bytes really are refused.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any, Optional

import pytest

from waitress_like.protocol import BodyChunk, EndOfRequest, ParserLimits, ParserState, RequestHead

from .test_request_parser import Outcome, parse

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "gunicorn-requests" / "corpus.json"

if not CORPUS.exists():
    pytest.skip(f"request corpus not found at {CORPUS}", allow_module_level=True)

CASES: dict[str, dict[str, Any]] = {case["name"]: case for case in json.loads(CORPUS.read_text())}

# Cases that exercise a gunicorn feature outside any request parser: skipped, with why.
NOT_APPLICABLE = {
    "valid/pp_01": "PROXY protocol v1 header: read by the proxy layer before HTTP parsing starts",
    "valid/pp_02": "PROXY protocol v1 header: read by the proxy layer before HTTP parsing starts",
    "valid/pp_04": "PROXY protocol v2 header: read by the proxy layer before HTTP parsing starts",
    "valid/pp_05": "PROXY protocol v2 header: read by the proxy layer before HTTP parsing starts",
    "valid/031compat": "casefold_http_method is a gunicorn switch; methods are case-sensitive (RFC 9110 9.1)",
    "valid/040": "gunicorn drops field names with '_' by default (header_map); the parser keeps every "
    "field, since '_' is a tchar, and the WSGI gateway decides what reaches the environ",
    "invalid/040": "header_map='refuse' is a gunicorn option about environ mapping, not HTTP syntax",
    "invalid/chunked_07": "header_map='refuse' is a gunicorn option about environ mapping, not HTTP syntax",
    "invalid/019": "X-Forwarded-Proto vs X-Forwarded-Ssl from a trusted proxy is judged by the proxy layer",
}

# Cases where our RFC rules give another answer than gunicorn: name -> (our status, why).
# None means we parse the request successfully.
DELIBERATE = {
    "valid/005": (400, "a '#' fragment in the request-target is refused (RFC 9112 3.2: never sent)"),
    "valid/009": (400, "Transfer-Encoding together with Content-Length is refused (RFC 9112 6.1)"),
    "valid/025": (501, "only 'chunked' is supported as a transfer coding; gzip is not"),
    "valid/025_line": (501, "only 'chunked' is supported as a transfer coding; gzip is not"),
    "valid/rfc9112_smuggle_gzip_chunked_01": (501, "only 'chunked' is supported as a transfer coding"),
    "valid/029": (501, "'identity' is not a transfer coding any more (RFC 9112 7); only chunked is accepted"),
    "valid/030": (501, "'identity' is not a transfer coding any more (RFC 9112 7); only chunked is accepted"),
    "valid/rfc9112_smuggle_te_identity_chunked_01": (501, "'identity' is not a transfer coding (RFC 9112 7)"),
    "valid/027": (400, "the request-target must be visible ASCII; raw UTF-8 bytes in it are refused"),
    "valid/028": (400, "whitespace before a field's colon is refused (RFC 9112 5.1); no strip_header_spaces"),
    "valid/compat_obs_fold": (
        400,
        "obsolete line folding is refused (RFC 9112 5.2); no permit_obsolete_folding",
    ),
    "valid/compat_obs_fold_huge": (400, "obsolete line folding is refused (RFC 9112 5.2)"),
    "invalid/013": (400, "obsolete line folding is refused (400) before the field size limit is reached"),
    "invalid/003c": (None, "'-bl' is a valid token method; gunicorn's default refuses lowercase methods"),
}

# gunicorn settings we translate into ParserLimits; every other setting a case uses must be
# harmless to us (IGNORED_SETTINGS) or the case must be listed above.
LIMIT_SETTINGS = {"limit_request_line", "limit_request_fields", "limit_request_field_size"}
# setting -> the values that describe what we do anyway
IGNORED_SETTINGS: dict[str, set[Any]] = {
    "permit_unconventional_http_method": {True},  # any token is a method, case kept
    "header_map": {"dangerous"},  # every field is passed on as received
    # A connection without a PROXY header parses as usual; a PROXY line reaching the
    # parser is not HTTP and is refused.
    "proxy_protocol": {"auto"},
}

ERROR_STATUS = {
    "InvalidRequestLine": 400,
    "InvalidRequestMethod": 400,
    "InvalidHTTPVersion": 400,
    "InvalidHeader": 400,
    "InvalidHeaderName": 400,
    "InvalidChunkSize": 400,
    "InvalidChunkExtension": 400,
    "ObsoleteFolding": 400,
    "InvalidProxyLine": 400,  # without PROXY support a PROXY line is simply not HTTP
    "LimitRequestLine": 414,
    "LimitRequestHeaders": 431,
    "UnsupportedTransferCoding": 501,
}
# The bytes stop in the middle of a request: the parser waits for more, the server's
# read timeout or EOF handling ends it.
INCOMPLETE_ERRORS = {"NoMoreData", "ChunkMissingTerminator"}
STATUS_OVERRIDES = {"invalid/version_02": 505}  # HTTP/2.0: well-formed, unsupported (RFC 9110 15.6.6)

# Short, so that it stays within the small field size limits some cases set.
INSERTED_HOST = b"Host: h\r\n"
_REQUEST_LINE_11 = re.compile(rb"(?:\r\n)*[^\r\n]* HTTP/1\.1\r\n")


def gunicorn_limits(settings: dict[str, Any]) -> ParserLimits:
    """gunicorn's limits (its defaults unless the case sets them) as ParserLimits."""
    field_size = settings.get("limit_request_field_size", 8190) or 8190  # 0 means its default
    return ParserLimits(
        max_request_line_bytes=settings.get("limit_request_line", 4094),
        max_header_count=settings.get("limit_request_fields", 100),
        # gunicorn counts a field line's CRLF, we do not
        max_field_bytes=field_size - 2,
    )


def raw_bytes(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["raw_b64"])


def with_host_for_valid(case: dict[str, Any]) -> bytes:
    """Insert a Host field into each listed HTTP/1.1 request that lacks one."""
    data = raw_bytes(case)
    cursor = 0
    for expected in case["requests"]:
        major, minor = expected["version"]
        line_bytes = f"{expected['method']} {expected['target']} HTTP/{major}.{minor}\r\n".encode("latin-1")
        start = data.index(line_bytes, cursor)
        cursor = start + len(line_bytes)
        if expected["version"] == [1, 1] and not any(name == "HOST" for name, _ in expected["headers"]):
            data = data[:cursor] + INSERTED_HOST + data[cursor:]
            cursor += len(INSERTED_HOST)
    return data


def with_host_for_invalid(data: bytes) -> bytes:
    """Insert a Host field after a leading HTTP/1.1 request line if its head has none."""
    match = _REQUEST_LINE_11.match(data)
    head = data.split(b"\r\n\r\n", 1)[0]
    if match is None or re.search(rb"\r\nhost:", head, re.IGNORECASE):
        return data
    return data[: match.end()] + INSERTED_HOST + data[match.end() :]


def expected_headers(expected: dict[str, Any]) -> list[tuple[str, str]]:
    headers = [(name, value) for name, value in expected["headers"]]
    if expected["version"] == [1, 1] and not any(name == "HOST" for name, _ in headers):
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


def check_settings(name: str, settings: dict[str, Any]) -> None:
    if name in DELIBERATE:
        return
    for setting, value in settings.items():
        assert setting in LIMIT_SETTINGS or value in IGNORED_SETTINGS.get(setting, ()), (
            f"{name} uses gunicorn setting {setting!r}: translate it or list the case with a reason"
        )


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
    outcome = parse(with_host_for_valid(case), limits)
    assert outcome.error is None, outcome.error
    found = requests_of(outcome)
    assert len(found) == len(case["requests"])
    for expected, got in zip(case["requests"], found):
        head: RequestHead = got["head"]
        assert head.method == expected["method"]
        assert head.target == expected["target"]
        assert list(head.version) == expected["version"]
        assert [(name.upper(), value) for name, value in head.headers] == expected_headers(expected)
        assert got["body"] == base64.b64decode(expected["body_b64"])
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
    outcome = parse(with_host_for_invalid(raw_bytes(case)), limits)
    if name in DELIBERATE:
        status: Optional[int] = DELIBERATE[name][0]
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
        outcome = parse(original, gunicorn_limits(case["gunicorn_settings"]), random_runs=0)
        assert outcome.status == 400, name
        assert outcome.error is not None and "Host" in str(outcome.error), name
        refused += 1
    assert refused >= 10  # the adaptation really is exercised


def test_listed_cases_exist_and_lists_stay_short() -> None:
    assert set(NOT_APPLICABLE) <= set(CASES)
    assert set(DELIBERATE) <= set(CASES)
    assert not set(NOT_APPLICABLE) & set(DELIBERATE)
    assert len(NOT_APPLICABLE) <= 10
