"""gunicorn's request corpus against the real server, over loopback: the conformance gate.

Every case is sent to a server started by ``start_server`` (so once per selector, with the
fixture's thread and fd leak checks), on one connection in a single write and on another
cut into 1-7 byte writes with TCP_NODELAY. The application reports what it saw (REQUEST_METHOD, RAW_URI,
SERVER_PROTOCOL, the header keys of the environ, the body read from ``wsgi.input``),
filed under the client's REMOTE_ADDR and REMOTE_PORT, so each connection's requests are
told apart and the client a PROXY header names is checked.

* A valid case must reach the application exactly as listed, each pipelined request in
  order, and nothing unlisted may reach it.
* An invalid case must be answered with its 4xx/5xx status and ``Connection: close``,
  the connection must then close, and the application must never be called.

The invalid cases we serve on purpose (ACCEPTED) are checked as valid ones, their request
read off their bytes. The case data and the lists of deliberate differences and
not-applicable cases live in
:mod:`tests.protocol.corpus`; docs/conformance.rst explains them, and
``test_conformance_doc_lists_every_listed_case`` keeps the two in step. The blanket
adaptations (all documented there):

* HTTP/1.1 requests without Host get ``Host: h`` inserted (RFC 9112 3.2 requires one).
* Header fields are compared as the environ carries them: names upper-cased with "-"
  turned into "_", repeated fields joined with ", " ("; " for Cookie), names containing
  "_" dropped (on purpose: "X_Foo" and "X-Foo" would collide), and CONTENT_LENGTH set to
  the decoded length of a chunked body. Trailers are not in the environ; the parser-level
  replay checks them.
* gunicorn's per-line size limits become ``max_request_header_size`` (a head holding a
  line over N bytes is over N bytes), and its ``limit_request_fields`` becomes ours (the
  cases with more fields than gunicorn allows): those cases are refused with 431.
* Incomplete requests (the bytes stop inside a head or body) run with 0.1 s head and body
  timeouts and must be answered 408, without the application being called.
* The PROXY protocol cases run with ``proxy_protocol="auto"`` and ``trusted_proxy``
  127.0.0.1, the client's address. Valid ones must reach the application with the client
  their header names (PROXY_CLIENTS) as REMOTE_ADDR/REMOTE_PORT, or the real peer when
  they have none; after an invalid header the connection must be closed without any
  answer, and a well-formed request sent behind it must never reach the application.
"""

from __future__ import annotations

import random
import re
import socket
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.httpclient import Connection
from tests.protocol.corpus import (
    ACCEPTED,
    CASES,
    COMPAT_SWITCH_CASES,
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
    SIZE_LIMIT_ERRORS,
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

CONFORMANCE_DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.rst"
MODES = ["whole", "split"]
# Whenever a timeout fires, the answer to an incomplete request is 408: short is safe.
INCOMPLETE_TIMEOUT_SECONDS = 0.1
CLIENT_TIMEOUT_SECONDS = 5.0
# Sent after an invalid PROXY header: proof that nothing behind it is ever served.
REQUEST_AFTER_BAD_PROXY_HEADER = b"GET /after/the/header HTTP/1.1\r\nHost: h\r\n\r\n"

Client = tuple[str, str]  # (REMOTE_ADDR, REMOTE_PORT)


class Seen(NamedTuple):
    """One request as the application saw it."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes


class ReportingApp:
    """Files what each request looked like under the client (REMOTE_ADDR, REMOTE_PORT)
    it came from, as the environ says."""

    def __init__(self) -> None:
        self.seen: dict[Client, list[Seen]] = defaultdict(list)
        self.call_count = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        headers = {
            key: value
            for key, value in environ.items()
            if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")
        }
        seen = Seen(environ["REQUEST_METHOD"], environ["RAW_URI"], environ["SERVER_PROTOCOL"], headers, body)
        client = (environ["REMOTE_ADDR"], environ.get("REMOTE_PORT", ""))
        with self.lock:
            self.seen[client].append(seen)
            self.call_count += 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    def calls(self) -> int:
        with self.lock:
            return self.call_count

    def take(self, client: Client) -> list[Seen]:
        """The requests filed under ``client`` so far, forgotten here: the PROXY cases
        name the same client on every connection."""
        with self.lock:
            return self.seen.pop(client, [])


# -- what to send, what to expect ---------------------------------------------------------------


def is_incomplete(case: dict[str, Any]) -> bool:
    """The bytes stop inside a request: a listed body shorter than its Content-Length
    (valid/099) or an error class that means "more bytes were expected"."""
    if case["kind"] == "invalid":
        return case["error"] in INCOMPLETE_ERRORS
    last = case["requests"][-1]
    lengths = [value for name, value in last["headers"] if name == "CONTENT-LENGTH"]
    return bool(lengths) and int(lengths[0]) > len(body_of(last))


def server_settings(case: dict[str, Any]) -> dict[str, Any]:
    """Our settings for a case: proxy_protocol mapped onto ours (PROXY_PROTOCOL_SETTINGS),
    gunicorn's line limits onto the head limit."""
    proxy = our_proxy_settings(case["gunicorn_settings"])
    if proxy:
        return dict(proxy)  # the PROXY cases set nothing else
    if is_incomplete(case):
        return {
            "request_head_timeout": INCOMPLETE_TIMEOUT_SECONDS,
            "request_body_timeout": INCOMPLETE_TIMEOUT_SECONDS,
        }
    error = case.get("error")
    if error in SIZE_LIMIT_ERRORS:
        gunicorn = case["gunicorn_settings"]
        count_limit = gunicorn.get("limit_request_fields", GUNICORN_FIELD_COUNT_LIMIT)
        if error == "LimitRequestHeaders" and field_count(case) > count_limit:
            return {"limit_request_fields": count_limit}
        if error == "LimitRequestLine":
            limit = gunicorn.get("limit_request_line") or GUNICORN_LINE_LIMIT
        else:
            limit = gunicorn.get("limit_request_field_size") or GUNICORN_FIELD_SIZE_LIMIT
        return {"max_request_header_size": limit}
    # Valid cases that raise gunicorn's limits (valid/024, valid/026) fit our default
    # head limit; every other case runs with the defaults.
    return {}


def field_count(case: dict[str, Any]) -> int:
    """The field lines in the head of an invalid case's bytes, as sent."""
    head = with_host_for_invalid(raw_bytes(case)).split(b"\r\n\r\n", 1)[0]
    return head.count(b"\r\n")


def expected_status(name: str, case: dict[str, Any]) -> int:
    if name in DELIBERATE:
        return DELIBERATE[name][0]
    if is_incomplete(case):
        return 408
    if case["error"] in SIZE_LIMIT_ERRORS:
        return 431
    return STATUS_OVERRIDES.get(name, ERROR_STATUS[case["error"]])


def expected_seen(expected: dict[str, Any]) -> Seen:
    """A listed request as the environ must carry it (see the module docstring)."""
    major, minor = expected["version"]
    fields = [(name, value) for name, value in expected["headers"]]
    if needs_host(expected):
        fields.insert(0, ("HOST", "h"))
    body = body_of(expected)
    headers: dict[str, str] = {}
    for name, value in fields:
        if "_" in name:
            continue  # dropped by the gateway on purpose
        key = name.replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key not in headers:
            headers[key] = value
        elif key != "CONTENT_LENGTH":
            headers[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
    if any(name == "TRANSFER-ENCODING" for name, _ in fields):
        # Only chunked bodies get this far; the environ gives their decoded length.
        headers["CONTENT_LENGTH"] = str(len(body))
    return Seen(expected["method"], expected["target"], f"HTTP/{major}.{minor}", headers, body)


# -- the client side --------------------------------------------------------------------------


def connect(address: tuple[str, int]) -> tuple[Connection, Client]:
    """A connection and the client it is, as REMOTE_ADDR and REMOTE_PORT give it."""
    connection = Connection(address, timeout=CLIENT_TIMEOUT_SECONDS)
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    host, port = connection.sock.getsockname()[:2]
    return connection, (host, str(port))


def send(connection: Connection, data: bytes, mode: str, seed: str, *, may_be_refused: bool) -> None:
    """Send ``data`` whole or in 1-7 byte writes. A server refusing a request may answer
    and close before all of it is written: then a failed write ends the sending, and the
    caller checks the response."""
    if mode == "whole":
        pieces = [data]
    else:
        rng = random.Random(seed)
        pieces = []
        position = 0
        while position < len(data):
            size = rng.randint(1, 7)
            pieces.append(data[position : position + size])
            position += size
    for piece in pieces:
        try:
            connection.send(piece)
        except OSError:
            if not may_be_refused:
                raise
            return


def read_until_closed(connection: Connection) -> bytes:
    """Everything the server still sends before it closes (a reset counts as closed)."""
    try:
        return connection.read_all()
    except ConnectionError:
        return bytes(connection.buffer)


# -- the tests --------------------------------------------------------------------------------


def case_params(kind: str) -> list[Any]:
    params = []
    for name, case in CASES.items():
        if case["kind"] != kind:
            continue
        marks = (
            [pytest.mark.skip(reason=SERVER_NOT_APPLICABLE[name])] if name in SERVER_NOT_APPLICABLE else []
        )
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", case_params("valid"))
def test_valid_case_reaches_the_app_as_listed(start_server: Any, name: str) -> None:
    case = CASES[name]
    check_settings(name, case["gunicorn_settings"])
    app = ReportingApp()
    server = start_server(app, **server_settings(case))
    for mode in MODES:
        if name in DELIBERATE or is_incomplete(case):
            assert_refused(server.address, app, name, case, with_host_for_invalid(raw_bytes(case)), mode)
        else:
            assert_served_as_listed(server.address, app, name, case, mode)


@pytest.mark.parametrize("name", case_params("invalid"))
def test_invalid_case_is_refused_and_closed(start_server: Any, name: str) -> None:
    case = CASES[name]
    check_settings(name, case["gunicorn_settings"])
    app = ReportingApp()
    server = start_server(app, **server_settings(case))
    for mode in MODES:
        if name in ACCEPTED:
            assert_served_as_listed(server.address, app, name, as_valid(case), mode)
        elif name in PROXY_CASES:
            assert_aborted(server.address, app, name, case, mode)
        else:
            assert_refused(server.address, app, name, case, with_host_for_invalid(raw_bytes(case)), mode)


def assert_served_as_listed(
    address: tuple[str, int], app: ReportingApp, name: str, case: dict[str, Any], mode: str
) -> None:
    expected = [expected_seen(request) for request in case["requests"]]
    calls_before = app.calls()
    connection, peer = connect(address)
    with connection:
        send(connection, with_host_for_valid(case), mode, f"{name} {mode}", may_be_refused=False)
        for request in expected:
            response = connection.read_response(request.method)
            assert response.status == 200, (mode, response)
        # Whatever follows the listed requests (nothing, a partial request, or requests
        # after one that closed) must not reach the application.
        connection.sock.shutdown(socket.SHUT_WR)
        assert read_until_closed(connection) == b"", mode
    # A PROXY header names the client; without one it is the real peer.
    assert app.take(PROXY_CLIENTS.get(name, peer)) == expected, mode
    assert app.calls() - calls_before == len(expected), mode


def assert_refused(
    address: tuple[str, int], app: ReportingApp, name: str, case: dict[str, Any], data: bytes, mode: str
) -> None:
    if case.get("error") in SIZE_LIMIT_ERRORS:
        # The mapping only means something if the head really is over the limit.
        settings = server_settings(case)
        if "limit_request_fields" in settings:
            assert field_count(case) > settings["limit_request_fields"]
        else:
            assert len(data.split(b"\r\n\r\n", 1)[0]) > settings["max_request_header_size"]
    connection, _ = connect(address)
    with connection:
        send(connection, data, mode, f"{name} {mode}", may_be_refused=True)
        response = connection.read_response()
        assert response.status == expected_status(name, case), (mode, response)
        assert response.closes, (mode, response)
        assert read_until_closed(connection) == b"", mode
    assert app.calls() == 0, mode


def assert_aborted(
    address: tuple[str, int], app: ReportingApp, name: str, case: dict[str, Any], mode: str
) -> None:
    """An invalid PROXY header: the connection is closed without a single byte of answer
    ("The PROXY protocol", 2.1: abort), and the request sent behind it is never served."""
    assert case["error"] in PROXY_ERRORS
    connection, _ = connect(address)
    with connection:
        data = raw_bytes(case) + REQUEST_AFTER_BAD_PROXY_HEADER
        send(connection, data, mode, f"{name} {mode}", may_be_refused=True)
        assert read_until_closed(connection) == b"", mode
    assert app.calls() == 0, mode


def test_conformance_doc_lists_every_listed_case() -> None:
    """docs/conformance.rst names every case we treat specially, and no other."""
    text = CONFORMANCE_DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"``((?:valid|invalid)/[\w]+)``", text))
    listed = (
        set(DELIBERATE)
        | set(ACCEPTED)
        | set(STATUS_DIFFERENCES)
        | set(SERVER_NOT_APPLICABLE)
        | set(PARSER_NOT_APPLICABLE)
    )
    assert documented == listed
    assert set(listed) <= set(CASES)


def test_at_most_ten_deliberate_differences_from_gunicorns_defaults() -> None:
    differences = (set(DELIBERATE) - COMPAT_SWITCH_CASES) | set(ACCEPTED)
    assert len(differences) <= 10, sorted(differences)
    assert {
        "valid/028",
        "valid/compat_obs_fold",
        "valid/compat_obs_fold_huge",
        "valid/031compat",
        "valid/031compat2",
    } == COMPAT_SWITCH_CASES
