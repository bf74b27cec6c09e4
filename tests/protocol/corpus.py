"""gunicorn's request corpus and our policy towards it.

One copy of the case data and of the lists of cases where we answer otherwise, shared by
the parser-level replay (``test_corpus_parser.py``) and the server-level replay
(``tests/functional/test_corpus_server.py``). ``docs/conformance.rst`` explains every list
and a test keeps it in step with the names here.

The data is gunicorn's ``tests/requests`` folder, read from gunicorn's source distribution
(pinned version and SHA-256 in :mod:`tests.sdists`), which is downloaded from the package
index at collection time and cached. gunicorn is MIT licensed (``LICENSE`` and ``NOTICE``
at the top of the unpacked sdist); nothing of it is copied into this repository, and
gunicorn itself is not installed or imported. :mod:`tests.protocol.gunicorn_requests`
turns the files into case dicts. When the download fails, collection fails with pip's
output: the gate must not pass, or skip, on a machine that cannot reach the index.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.sdists import GUNICORN, fetch_sdist

from .gunicorn_requests import REQUESTS_FOLDER, load_cases

CORPUS_ROOT = fetch_sdist(GUNICORN)
CORPUS = CORPUS_ROOT / REQUESTS_FOLDER  # where the cases come from, for messages
CASES: dict[str, dict[str, Any]] = {case["name"]: case for case in load_cases(CORPUS_ROOT)}

# -- cases where our verdict differs on purpose ------------------------------------------------

_OBS_FOLD = "obsolete line folding is refused (RFC 9112 5.2); there is no permit_obsolete_folding"
_GZIP = "only 'chunked' is a supported transfer coding; gzip before chunked is 501 (RFC 9112 6.1)"
_IDENTITY = (
    "'identity' is no transfer coding since RFC 2616 (RFC 9112 7 has none): 501, only chunked is accepted"
)
_LOWER_METHOD = (
    "a method with a lower-case letter is refused: methods are case-sensitive (RFC 9110 9.1), "
    "every registered one is upper case, and a 'get' a front proxy reads as GET while the "
    "application does not is a filter bypass; there is no permit_unconventional_http_method "
    "or casefold_http_method"
)

# Valid cases (gunicorn accepts them, possibly behind a compatibility switch) that we
# refuse: name -> (our status, why). Asserted at both levels, never skipped.
DELIBERATE: dict[str, tuple[int, str]] = {
    "valid/025": (501, _GZIP),
    "valid/025_line": (501, _GZIP),
    "valid/rfc9112_smuggle_gzip_chunked_01": (501, _GZIP),
    "valid/029": (501, _IDENTITY),
    "valid/030": (501, _IDENTITY),
    "valid/rfc9112_smuggle_te_identity_chunked_01": (501, _IDENTITY),
    "valid/028": (400, "whitespace between a field name and its colon is refused (RFC 9112 5.1); "
                  "there is no strip_header_spaces"),
    "valid/compat_obs_fold": (400, _OBS_FOLD),
    "valid/compat_obs_fold_huge": (400, _OBS_FOLD),
    "valid/031compat": (400, _LOWER_METHOD),
    "valid/031compat2": (400, _LOWER_METHOD),
}  # fmt: skip

_OBS_TEXT_TARGET = (
    "bytes 0x80-0xFF (obs-text) in the request-target are accepted, as in waitress: clients "
    "send raw UTF-8 paths, and PEP 3333 carries them latin-1 decoded in PATH_INFO and RAW_URI. "
    "RFC 9112 3.2 allows 400 or a redirect here; gunicorn answers 400"
)

# Invalid cases (gunicorn refuses them) that we serve: name -> why. Asserted at both
# levels, never skipped: the request must reach the application with its target as sent
# (ACCEPTED_REQUEST gives it in a valid case's form).
ACCEPTED: dict[str, str] = {
    "invalid/rfc9112_target_non_ascii_01": _OBS_TEXT_TARGET,
    "invalid/rfc9112_target_non_ascii_02": _OBS_TEXT_TARGET,
}


# The DELIBERATE cases gunicorn itself refuses unless a non-default compatibility switch
# is on (strip_header_spaces, permit_obsolete_folding, permit_unconventional_http_method,
# casefold_http_method). We have no such switches: they are not policy differences from
# gunicorn's defaults, and the docs list them apart.
COMPAT_SWITCH_CASES = frozenset(
    name for name in DELIBERATE if CASES[name]["gunicorn_settings"] if name.startswith("valid/")
)

# Invalid cases we also refuse, but with another status, at the parser level only (the
# server level maps the case's size limit onto max_request_header_size and gets 431).
STATUS_DIFFERENCES: dict[str, tuple[int, str]] = {
    "invalid/013": (
        400,
        "with permit_obsolete_folding gunicorn unfolds the line and then finds it over "
        "limit_request_field_size (431); we never unfold, so the fold itself is the error (400)",
    ),
}

# -- cases that test something other than HTTP parsing ------------------------------------------

_HEADER_MAP_REFUSE = "header_map='refuse' is a gunicorn option about environ mapping, not HTTP syntax"
_FORWARDED_SSL = (
    "X-Forwarded-Proto: https with X-Forwarded-Ssl: off from a trusted proxy: gunicorn refuses the "
    "contradiction, but we do not read X-Forwarded-Ssl (it is no trusted_proxy_headers choice), so "
    "there is none to find: the trusted X-Forwarded-Proto alone decides the scheme"
)

# Skipped by the parser-level replay, with why.
PARSER_NOT_APPLICABLE = {
    "valid/040": "gunicorn drops field names with '_' by default (header_map); the parser keeps every "
    "field, since '_' is a tchar, and the WSGI gateway decides what reaches the environ",
    "invalid/040": _HEADER_MAP_REFUSE,
    "invalid/chunked_07": _HEADER_MAP_REFUSE,
    "invalid/019": _FORWARDED_SSL,
}

# Skipped by the server-level replay, with why.
SERVER_NOT_APPLICABLE = {
    "invalid/019": _FORWARDED_SSL,
    "invalid/040": _HEADER_MAP_REFUSE,
    "invalid/chunked_07": _HEADER_MAP_REFUSE,
}

# -- the PROXY protocol cases -----------------------------------------------------------------

# The cases that set gunicorn's proxy_protocol. Their bytes go through the PROXY protocol
# reader first (ProxyProtocolReader at the parser level, the channel at the server level),
# and only what follows the header reaches the HTTP parser.
PROXY_CASES = frozenset(name for name, case in CASES.items() if "proxy_protocol" in case["gunicorn_settings"])
# gunicorn's proxy_protocol value -> our settings. gunicorn reads the header only from
# its proxy_allow_ips, which by default allow 127.0.0.1: the address the server-level
# replay connects from. (proxy_protocol needs trusted_proxy, see docs/proxy.rst.)
PROXY_PROTOCOL_SETTINGS: dict[str, dict[str, str]] = {
    "auto": {"proxy_protocol": "auto", "trusted_proxy": "127.0.0.1"},
}
# (REMOTE_ADDR, REMOTE_PORT) named by the PROXY header of each valid case, read off the
# bytes by hand: the corpus lists only the requests. A valid PROXY case missing here
# (valid/pp_03) has no header, and its requests keep the real peer's address.
PROXY_CLIENTS: dict[str, tuple[str, str]] = {
    "valid/pp_01": ("192.168.0.1", "56324"),  # v1 TCP4
    "valid/pp_02": ("192.168.0.1", "56324"),  # v1 TCP4
    "valid/pp_04": ("192.168.1.10", "12345"),  # v2 INET, STREAM
    "valid/pp_05": ("2001:db8::1", "54321"),  # v2 INET6, STREAM
}
# Error classes of a malformed PROXY header: the reader raises ProxyProtocolError and the
# connection is closed without an answer ("The PROXY protocol", 2.1: the receiver must
# "abort the connection"), not answered with a 4xx.
PROXY_ERRORS = {"InvalidProxyLine"}


def our_proxy_settings(gunicorn_settings: dict[str, Any]) -> dict[str, str]:
    """Our proxy settings for a case's gunicorn settings (empty without proxy_protocol)."""
    value = gunicorn_settings.get("proxy_protocol")
    return {} if value is None else PROXY_PROTOCOL_SETTINGS[value]


# -- gunicorn settings and error classes ----------------------------------------------------

# gunicorn settings we translate: the limits (into ParserLimits at the parser level; at
# the server level into limit_request_fields, the same setting, or the head size limit)
# and proxy_protocol (PROXY_PROTOCOL_SETTINGS above). Every other setting a case uses must
# be harmless to us (IGNORED_SETTINGS) or the case must be listed above.
LIMIT_SETTINGS = {"limit_request_line", "limit_request_fields", "limit_request_field_size"}
# setting -> the values that describe what we do anyway
IGNORED_SETTINGS: dict[str, set[Any]] = {
    # Field names with "_" are kept by the parser and dropped by the WSGI gateway.
    "header_map": {"dangerous"},
}

# gunicorn's defaults for its per-line limits (0 means the default).
GUNICORN_LINE_LIMIT = 4094
GUNICORN_FIELD_SIZE_LIMIT = 8190
GUNICORN_FIELD_COUNT_LIMIT = 100

ERROR_STATUS = {
    "InvalidRequestLine": 400,
    "InvalidRequestMethod": 400,
    "InvalidHTTPVersion": 400,
    "InvalidHeader": 400,
    "InvalidHeaderName": 400,
    "InvalidChunkSize": 400,
    "InvalidChunkExtension": 400,
    "ObsoleteFolding": 400,
    "LimitRequestLine": 414,
    "LimitRequestHeaders": 431,
    "UnsupportedTransferCoding": 501,
}
# Errors about a line over a size limit (the server level maps them, see below).
SIZE_LIMIT_ERRORS = {"LimitRequestLine", "LimitRequestHeaders"}
# The bytes stop in the middle of a request: the parser waits for more, the server's
# read timeout or EOF handling ends it.
INCOMPLETE_ERRORS = {"NoMoreData", "ChunkMissingTerminator"}
STATUS_OVERRIDES = {"invalid/version_02": 505}  # HTTP/2.0: well-formed, unsupported (RFC 9110 15.6.6)

# -- the Host adaptation --------------------------------------------------------------------

# RFC 9112 3.2 makes Host mandatory in HTTP/1.1 and gunicorn does not check, so many cases
# omit it. This short field (it must fit the small field limits some cases set) is
# inserted right after the request line of each HTTP/1.1 request without one.
INSERTED_HOST = b"Host: h\r\n"
_REQUEST_LINE_11 = re.compile(rb"(?:\r\n)*[^\r\n]* HTTP/1\.1\r\n")


def raw_bytes(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["raw_b64"])


def body_of(expected: dict[str, Any]) -> bytes:
    return base64.b64decode(expected["body_b64"])


def needs_host(expected: dict[str, Any]) -> bool:
    return expected["version"] == [1, 1] and not any(name == "HOST" for name, _ in expected["headers"])


def with_host_for_valid(case: dict[str, Any]) -> bytes:
    """Insert a Host field into each listed HTTP/1.1 request that lacks one."""
    data = raw_bytes(case)
    cursor = 0
    for expected in case["requests"]:
        major, minor = expected["version"]
        line_bytes = f"{expected['method']} {expected['target']} HTTP/{major}.{minor}\r\n".encode("latin-1")
        start = data.index(line_bytes, cursor)
        cursor = start + len(line_bytes)
        if needs_host(expected):
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


def as_valid(case: dict[str, Any]) -> dict[str, Any]:
    """An ACCEPTED case as a valid one: its ``requests`` read off its bytes by hand (each
    is a lone head without a body, the only shape this is written for)."""
    head, rest = raw_bytes(case).decode("latin-1").split("\r\n\r\n", 1)
    assert rest == "", case["name"]
    request_line, *field_lines = head.split("\r\n")
    method, target, version = request_line.split(" ")
    major, minor = version[len("HTTP/") :].split(".")
    fields = [line.split(":", 1) for line in field_lines]
    request = {
        "method": method,
        "target": target,
        "version": [int(major), int(minor)],
        "headers": [[name.upper(), value.strip()] for name, value in fields],
        "body_b64": "",
    }
    return {**case, "kind": "valid", "requests": [request]}


def check_settings(name: str, settings: dict[str, Any]) -> None:
    """Fail for a gunicorn setting nobody decided about (a new corpus case, say)."""
    if name in DELIBERATE or name in STATUS_DIFFERENCES:
        return
    for setting, value in settings.items():
        translated = setting in LIMIT_SETTINGS or (
            setting == "proxy_protocol" and value in PROXY_PROTOCOL_SETTINGS
        )
        assert translated or value in IGNORED_SETTINGS.get(setting, ()), (
            f"{name} uses gunicorn setting {setting!r}: translate it or list the case with a reason"
        )
