"""Request heads and trailer sections: grammar, validation, and which error to report.

The parser cuts a complete section out of its buffer and hands it here as latin-1 text
(one character per byte, so lengths in characters are lengths in bytes). The ``parse_*``
functions validate it against RFC 9112 and RFC 9110 and return the result or raise
:class:`~waitress_like.errors.RemoteProtocolError` with the status to answer with.

The ``diagnose_*`` functions exist for one reason: the error a client gets must not depend
on how TCP happened to split its bytes. The parser notices some errors early, on partial
input (a bare LF, a bad request line, a head over the size limit), and others only once the
section is complete. Each such check has a *detection position*: the length of the
shortest prefix of the section in which it can fire. When anything fails, the diagnosis
re-examines the bytes and reports the error with the smallest detection position, which is
exactly the error a reader fed one byte at a time would raise. Diagnosis runs once per
connection at most (the parser then stays in its error state), so its extra pass is free.
"""

from __future__ import annotations

import re
from typing import Union

from ..errors import RemoteProtocolError
from .events import Fields, RequestHead
from .grammar import FIELD_VCHAR, QUOTED_STRING, TCHAR, TOKEN_RE
from .limits import ParserLimits

__all__ = [
    "TCHAR_BYTES",
    "parse_head",
    "parse_request_line",
    "parse_field_block",
    "parse_trailer_block",
    "scan_for_bare_line_break",
    "diagnose_head",
    "diagnose_trailers",
]

Buffer = Union[bytes, bytearray]

# -- grammar (RFC 9110 5.5, 5.6.2; RFC 9112 3, 5; RFC 3986 3.2) ----------------------------
# All patterns are str patterns applied to latin-1 text, so [\x80-\xff] is obs-text.

_TCHAR = TCHAR
_FIELD_VCHAR = FIELD_VCHAR

TCHAR_BYTES = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

_TOKEN_RE = TOKEN_RE
# A method is a token without lower-case letters. RFC 9110 9.1 makes methods
# case-sensitive and every registered method is upper case; a "get" that a front proxy
# reads as GET while the application does not is a way around method-based filters.
_METHOD_CHAR = r"!#$%&'*+\-.^_`|~0-9A-Z"
# Request-target characters: visible ASCII and obs-text (0x80-0xFF, latin-1 decoded for
# WSGI, as clients send raw UTF-8). Controls, SP and DEL are never part of a target.
_TARGET_CHAR = r"\x21-\x7e\x80-\xff"
_TARGET_CHAR_BUT_HASH = r"\x21\x22\x24-\x7e\x80-\xff"
# method SP request-target SP HTTP-version. RFC 9112 3.2 has no fragment in a target, but
# clients do send one: it is accepted and dropped. Group 2 is the whole target as sent,
# group 3 the target without its fragment (the first "#" and all after it), which must
# not be empty.
_REQUEST_LINE_RE = re.compile(
    rf"([{_METHOD_CHAR}]+) (([{_TARGET_CHAR_BUT_HASH}]+)(?:#[{_TARGET_CHAR}]*)?) HTTP/([0-9]\.[0-9])"
)
_VERSION_SYNTAX_RE = re.compile(r"HTTP/[0-9]\.[0-9]")
_TARGET_RE = re.compile(rf"[{_TARGET_CHAR}]+")
_LOWER_CASE_RE = re.compile(r"[a-z]")
_HTTP_11 = (1, 1)
_VERSIONS = {"1.1": _HTTP_11, "1.0": (1, 0)}

# One field line (RFC 9112 5): field-name ":" OWS field-value OWS, where the value holds
# no CTL but HTAB (RFC 9110 5.5). With re.M, "^" anchors each match at a line start, and
# the value cannot contain CR or LF, so every match is exactly one whole line. The value
# must start with a visible character: that keeps the split between the leading OWS and
# the value unambiguous, which keeps a failing match linear (with "[ \t]*[VCHAR \t]*" a
# refused 100 kB line of spaces backtracks quadratically). Trailing OWS is still captured
# and trimmed afterwards, only in the rare head that has any.
_FIELD_LINE_RE = re.compile(rf"^([{_TCHAR}]+):[ \t]*([{_FIELD_VCHAR}][{_FIELD_VCHAR} \t]*|)(?:\r\n|\Z)", re.M)

_UNRESERVED_OR_SUB_DELIM = r"A-Za-z0-9\-._~!$&'()*+,;="
_REG_NAME_CHAR = rf"(?:[{_UNRESERVED_OR_SUB_DELIM}]|%[0-9A-Fa-f]{{2}})"
_IP_LITERAL = rf"\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[{_UNRESERVED_OR_SUB_DELIM}:]+)\]"
_HOST = rf"(?:{_IP_LITERAL}|{_REG_NAME_CHAR}+)"
# Host = uri-host [ ":" port ]; it may be empty when the target URI has no authority.
_HOST_FIELD_RE = re.compile(rf"(?:{_IP_LITERAL}|{_REG_NAME_CHAR}*)(?::[0-9]*)?")
_AUTHORITY_FORM_RE = re.compile(rf"{_HOST}:[0-9]+")
# Only absolute URIs with an authority ("scheme://host..."). The bare "scheme:rest" shape is
# an absolute-URI too, but then "example.com:443" would pass as one, and no HTTP server can
# route a URI without a host (RFC 9110 4.2.1 makes an empty http host invalid).
_ABSOLUTE_FORM_RE = re.compile(
    rf"[A-Za-z][A-Za-z0-9+.\-]*://"
    rf"(?:(?:[{_UNRESERVED_OR_SUB_DELIM}:]|%[0-9A-Fa-f]{{2}})*@)?"
    rf"{_HOST}(?::[0-9]*)?"
    r"(/[^?]*)?(?:\?(.*))?"
)

# transfer-coding = token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )
_QUOTED_STRING = QUOTED_STRING
_TRANSFER_CODING_RE = re.compile(
    rf"[{_TCHAR}]+(?:[ \t]*;[ \t]*[{_TCHAR}]+[ \t]*=[ \t]*(?:[{_TCHAR}]+|{_QUOTED_STRING}))*"
)

# A CR not followed by LF, or an LF not preceded by CR (RFC 9112 2.2: we do not accept a
# bare LF as a line terminator, and a bare CR is always invalid).
_BARE_LINE_BREAK_RE = re.compile(rb"\r(?!\n)|(?<!\r)\n")

# Fields the head interprets, by lower-cased name.
_HOST_FIELD, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _EXPECT, _CONTENT_TYPE = range(6)
_INTERPRETED_FIELDS = {
    "host": _HOST_FIELD,
    "content-length": _CONTENT_LENGTH,
    "transfer-encoding": _TRANSFER_ENCODING,
    "connection": _CONNECTION,
    "expect": _EXPECT,
    "content-type": _CONTENT_TYPE,
}

# RFC 9110 6.5.1: fields needed before the content can be processed must not arrive as
# trailers. We refuse those for framing, routing, connection control, expectations and
# authentication: a trailer must never override what the head said about them (e.g. in the
# WSGI environ). Content metadata (Content-Type, ...) is let through, as clients send it.
_FORBIDDEN_TRAILERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "authorization",
        "proxy-authorization",
    }
)


def _error(message: str, status: int = 400) -> RemoteProtocolError:
    return RemoteProtocolError(message, status)


def _name(token: str) -> str:
    """A field name or coding for an error message. Tokens hold no quote, space or angle
    bracket, but they can be long, and messages may end up in a response body."""
    return repr(token if len(token) <= 40 else token[:40] + "...")


# -- complete sections ---------------------------------------------------------------------


def parse_head(text: str, limits: ParserLimits) -> RequestHead:
    """Validate a complete head and build its event.

    ``text`` is the latin-1 decoded head from the request line up to, not including, the
    CRLF CRLF that ends it. Raises RemoteProtocolError: 400 for bad syntax or conflicting
    framing, 414 for a request line over ``max_request_line_bytes``, 431 for too many or
    too long field lines, 413 for a Content-Length over ``max_body_bytes``, 501 for a
    transfer coding other than chunked, 505 for an HTTP major version other than 1.
    HTTP/1.2 to HTTP/1.9 are processed as HTTP/1.1 (RFC 9110 2.5).
    """
    line_end = text.find("\r\n")
    if line_end < 0:
        method, target, path, query, version = parse_request_line(text, limits)
        headers: Fields = ()
    else:
        method, target, path, query, version = parse_request_line(text[:line_end], limits)
        headers = parse_field_block(text, limits, line_end + 2)
    return _interpret_fields(method, target, path, query, version, headers, limits)


def parse_request_line(line: str, limits: ParserLimits) -> tuple[str, str, str, str, tuple[int, int]]:
    """Validate a request line (RFC 9112 3); return ``(method, target, path, query, version)``."""
    if len(line) > limits.max_request_line_bytes:
        raise _error(f"request line longer than {limits.max_request_line_bytes} bytes", 414)
    match = _REQUEST_LINE_RE.fullmatch(line)
    if match is None:
        raise _request_line_error(line)
    method, target, without_fragment, version_text = match.groups()
    version = _VERSIONS.get(version_text)
    if version is None:
        if version_text[0] != "1":
            raise _error(f"HTTP version {version_text} is not supported", 505)
        # RFC 9110 2.5: a higher minor version (1.2 - 1.9) is processed as the highest
        # minor version implemented, and answered in it.
        version = _HTTP_11
    if without_fragment[0] == "/" and method != "CONNECT":
        path, _, query = without_fragment.partition("?")
    else:
        has_fragment = len(without_fragment) != len(target)
        if has_fragment and (method == "CONNECT" or without_fragment == "*"):
            # Only URIs have fragments: "*" and CONNECT's host:port are complete as they are.
            raise _error("a fragment ('#') is only allowed in origin-form and absolute-form targets")
        path, query = _parse_other_target_form(method, without_fragment)
    return method, target, path, query, version


def _parse_other_target_form(method: str, target: str) -> tuple[str, str]:
    """Path and query of a target that is not origin-form (RFC 9112 3.2.2 - 3.2.4)."""
    if method == "CONNECT":
        if _AUTHORITY_FORM_RE.fullmatch(target) is None:
            raise _error("CONNECT needs an authority-form target (host:port)")
        return "", ""
    if target == "*":
        if method != "OPTIONS":
            raise _error("the asterisk-form target is only allowed for OPTIONS")
        return "*", ""
    match = _ABSOLUTE_FORM_RE.fullmatch(target)
    if match is None:
        raise _error("request-target is neither origin-form nor absolute-form")
    path, query = match.groups()
    return path or "/", query or ""


def _request_line_error(line: str) -> RemoteProtocolError:
    """Name what is wrong with a request line the fast regular expression refused."""
    if "\r" in line or "\n" in line:
        return _error("bare CR or LF in the request line")
    parts = line.split(" ")
    if len(parts) != 3:
        return _error("request line is not 'method SP target SP version' with single spaces")
    method, target, version = parts
    if _TOKEN_RE.fullmatch(method) is None:
        return _error("request method is not a token")
    if _LOWER_CASE_RE.search(method) is not None:
        return _error(f"request method {_name(method)} has a lower-case letter (methods are upper case)")
    if _TARGET_RE.fullmatch(target) is None:
        return _error("request-target contains a control character, space or DEL")
    if target[0] == "#":
        return _error("request-target is only a fragment ('#')")
    if _VERSION_SYNTAX_RE.fullmatch(version) is None:
        return _error("malformed HTTP version")
    return _error("malformed request line")


def parse_field_block(text: str, limits: ParserLimits, start: int = 0) -> Fields:
    """Validate the field lines in ``text[start:]``; return ``(name, value)`` pairs.

    The lines are joined by CRLF, without a final CRLF, and ``start`` is 0 or just after
    a CRLF (an offset rather than a slice saves copying the block). Raises 431 for more
    than ``max_header_count`` lines or a line over ``max_field_bytes``, 400 for any syntax
    error (RFC 9112 5: no whitespace before the colon, no obs-fold, no CTL except HTAB in
    a value, CRLF line ends only).
    """
    # Count LFs, not CRLFs: "^" (re.M) starts a line after every LF, and a line only
    # matches if CRLF or the end follows it, so a bare LF leaves a line without a match.
    line_count = text.count("\n", start) + 1
    if line_count > limits.max_header_count:
        raise _error(f"more than {limits.max_header_count} header fields", 431)
    max_field_bytes = limits.max_field_bytes
    # A block shorter than the limit cannot hold a line longer than it: skip the split.
    if len(text) - start > max_field_bytes and max(map(len, text[start:].split("\r\n"))) > max_field_bytes:
        raise _error(f"a header field line is longer than {max_field_bytes} bytes", 431)
    fields = _FIELD_LINE_RE.findall(text, start)
    # Each match is one whole line, so one match per line means every line is valid.
    if len(fields) != line_count:
        raise _field_block_error(text[start:])
    if text.find(" \r\n", start) >= 0 or text.find("\t\r\n", start) >= 0 or text.endswith((" ", "\t")):
        return tuple([(name, value.rstrip(" \t")) for name, value in fields])
    return tuple(fields)


def _field_block_error(block: str) -> RemoteProtocolError:
    """Name the first bad field line of a block the fast regular expression refused."""
    for line in block.split("\r\n"):
        if line[:1] in (" ", "\t"):
            return _error("obsolete line folding (a field line starting with whitespace)")
        name, colon, value = line.partition(":")
        if not colon:
            if "\r" in line or "\n" in line:
                return _error("bare CR or LF in a field line")
            return _error("field line without a colon")
        if name[-1:] in (" ", "\t"):
            return _error("whitespace between a field name and its colon")
        if _TOKEN_RE.fullmatch(name) is None:
            return _error("field name is not a token")
        if "\r" in value or "\n" in value:
            return _error("bare CR or LF in a field value")
        if _FIELD_LINE_RE.fullmatch(line) is None:
            return _error(f"field {_name(name)} has a control character in its value")
    return _error("malformed field section")


def parse_trailer_block(block: str, limits: ParserLimits) -> Fields:
    """Like :func:`parse_field_block`, and also refuse fields not allowed as trailers (400)."""
    fields = parse_field_block(block, limits)
    for name, _ in fields:
        if name.lower() in _FORBIDDEN_TRAILERS:
            raise _error(f"{_name(name)} is not allowed in a trailer section")
    return fields


def _interpret_fields(
    method: str,
    target: str,
    path: str,
    query: str,
    version: tuple[int, int],
    headers: Fields,
    limits: ParserLimits,
) -> RequestHead:
    """Apply the framing and connection rules of RFC 9112 6, 7 and 9 to the fields."""
    host, content_length_text, codings, connection, expect_continue = _scan_fields(headers)
    http11 = version == _HTTP_11
    if host is None:
        if http11:
            raise _error("HTTP/1.1 request without a Host field")
    elif _HOST_FIELD_RE.fullmatch(host) is None:
        raise _error("invalid Host field value")
    content_length = _body_length(content_length_text, codings, http11, limits)

    # RFC 9112 9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
    if connection is None:
        keep_alive = http11
    else:
        options = connection.lower()
        tokens = {token.strip(" \t") for token in options.split(",")} if "," in options else {options}
        keep_alive = "close" not in tokens and (http11 or "keep-alive" in tokens)

    # Positional: keyword arguments cost a third of a microsecond here, on every request.
    return RequestHead(
        method,
        target,
        path,
        query,
        version,
        headers,
        content_length,
        codings is not None,
        keep_alive,
        expect_continue and http11,
    )


_ScannedFields = tuple["str | None", "str | None", "list[str] | None", "str | None", bool]


def _scan_fields(headers: Fields) -> _ScannedFields:
    """Pick out the fields the head interprets: ``(host, content_length_text, codings,
    connection, expect_continue)``; refuse the repeats that make a request ambiguous."""
    host: str | None = None
    content_length_text: str | None = None
    codings: list[str] | None = None
    connection: str | None = None
    expect_continue = False
    content_type_seen = False
    for name, value in headers:
        kind = _INTERPRETED_FIELDS.get(name.lower())
        if kind is None:
            continue
        if kind == _HOST_FIELD:
            # RFC 9112 3.2: never more than one Host, in any version.
            if host is not None:
                raise _error("more than one Host field")
            host = value
        elif kind == _CONTENT_LENGTH:
            if content_length_text is not None:
                raise _error("more than one Content-Length field")
            content_length_text = value
        elif kind == _TRANSFER_ENCODING:
            if codings is None:
                codings = [value]
            else:
                codings.append(value)
        elif kind == _CONNECTION:
            connection = value if connection is None else f"{connection},{value}"
        elif kind == _EXPECT:
            expect_continue = expect_continue or value.lower() == "100-continue"
        elif content_type_seen:
            # Not a framing rule, but two media types make the body ambiguous and the WSGI
            # environ can carry only one CONTENT_TYPE.
            raise _error("more than one Content-Type field")
        else:
            content_type_seen = True
    return host, content_length_text, codings, connection, expect_continue


def _body_length(
    content_length_text: str | None, codings: list[str] | None, http11: bool, limits: ParserLimits
) -> int | None:
    """The body's declared length (None: chunked, or no body); RFC 9112 6.1 and 6.3."""
    if codings is not None:
        # RFC 9112 6.1: TE plus CL is a smuggling vector; HTTP/1.0 has no chunked coding.
        if content_length_text is not None:
            raise _error("both Transfer-Encoding and Content-Length")
        if not http11:
            raise _error("Transfer-Encoding in an HTTP/1.0 request")
        _check_transfer_codings(codings)
        return None
    if content_length_text is not None:
        return _parse_content_length(content_length_text, limits)
    return None


def _parse_content_length(text: str, limits: ParserLimits) -> int:
    """RFC 9112 6.3: 1*DIGIT. 400 if malformed, 413 if over ``max_body_bytes``."""
    # isdigit() alone accepts "²" and Arabic-Indic digits, int() accepts "+1", " 1" and
    # "1_0"; ASCII digits only leaves exactly 1*DIGIT.
    if not (text.isdigit() and text.isascii()):
        raise _error("Content-Length is not a decimal number")
    digits = text.lstrip("0")
    # Cap the length before int(): a 5000-digit value must be cheap to refuse, and must not
    # hit Python's int-from-string digit limit (a ValueError, not a protocol error).
    if len(digits) > 20 or int(digits or "0") > limits.max_body_bytes:
        raise _error(f"Content-Length over the limit of {limits.max_body_bytes} bytes", 413)
    return int(digits or "0")


def _check_transfer_codings(values: list[str]) -> None:
    """Accept exactly one ``chunked`` (RFC 9112 6.1, 7); 400 if malformed, 501 if unknown."""
    names = []
    for element in ",".join(values).split(","):
        element = element.strip(" \t")
        if not element:
            raise _error("empty element in Transfer-Encoding")
        if _TRANSFER_CODING_RE.fullmatch(element) is None:
            raise _error("malformed Transfer-Encoding element")
        name = element.split(";", 1)[0].rstrip(" \t").lower()
        if name == "chunked" and name != element.lower():
            raise _error("the chunked transfer coding takes no parameters")
        names.append(name)
    if names.count("chunked") > 1:
        raise _error("chunked applied more than once")
    if names[-1] != "chunked":
        raise _error("chunked is not the final transfer coding")
    if len(names) > 1:
        raise _error(f"unsupported transfer coding {_name(names[0])}", 501)


# -- partial sections and error diagnosis ---------------------------------------------------


def scan_for_bare_line_break(buffer: Buffer, start: int) -> int:
    """Look for a CR or LF that is not half of a CRLF in ``buffer[start:]``.

    Returns -1 if there is one; otherwise the offset to resume from when more bytes have
    arrived (a final CR is looked at again, because its LF may still come). Each byte is
    examined a bounded number of times, so scanning a section fed byte by byte stays linear.
    """
    length = len(buffer)
    match = _BARE_LINE_BREAK_RE.search(buffer, start)
    if match is not None:
        at = match.start()
        if buffer[at] == 10 or at < length - 1:
            return -1
    return length - 1 if length and buffer[length - 1] == 13 else length


# A found error: (detection position, tie-break rank, the error).
_Finding = tuple[int, int, RemoteProtocolError]


def _first_bare_line_break(data: Buffer, length: int) -> _Finding | None:
    match = _BARE_LINE_BREAK_RE.search(data, 0, length)
    if match is None:
        return None
    at = match.start()
    if data[at] == 10:
        return (at + 1, 1, _error("bare LF (line ends must be CRLF)"))
    if at + 1 >= length:
        return None  # a final CR: not yet known to be bare
    return (at + 2, 1, _error("bare CR"))


def _section_limit_finding(length: int, complete: bool, limit: int, message: str) -> _Finding | None:
    # Without a terminator within the first `limit` bytes the section must be longer.
    if length > limit or (length == limit and not complete):
        return (limit, 3, _error(message, 431))
    return None


def diagnose_head(
    data: Buffer, length: int, *, complete: bool, head_limit: int, limits: ParserLimits
) -> RemoteProtocolError:
    """The error a byte-at-a-time reader would raise first for the head in ``data[:length]``.

    ``complete`` says ``data[:length]`` ends with the first CRLF CRLF; ``head_limit`` is
    the size budget left for the head (``max_header_bytes`` minus skipped empty lines).
    Call it only when some check failed: it always returns an error.
    """
    findings: list[_Finding] = []
    if length and data[0] not in TCHAR_BYTES:
        findings.append((1, 0, _error("request line does not start with a method token")))
    bare = _first_bare_line_break(data, length)
    if bare is not None:
        findings.append(bare)
    line_limit = limits.max_request_line_bytes
    line_end = data.find(b"\r\n", 0, min(length, line_limit + 2))
    if line_end >= 0:
        try:
            parse_request_line(data[:line_end].decode("latin-1"), limits)
        except RemoteProtocolError as error:
            findings.append((line_end + 2, 2, error))
    elif length >= line_limit + 2:
        findings.append((line_limit + 2, 2, _error(f"request line longer than {line_limit} bytes", 414)))
    too_large = _section_limit_finding(
        length, complete, head_limit, f"request head larger than {limits.max_header_bytes} bytes"
    )
    if too_large is not None:
        findings.append(too_large)
    elif complete:
        try:
            parse_head(data[: length - 4].decode("latin-1"), limits)
        except RemoteProtocolError as error:
            findings.append((length, 4, error))
    if not findings:
        return _error("malformed request head")
    return min(findings, key=lambda finding: finding[:2])[2]


def diagnose_trailers(
    data: Buffer, length: int, *, complete: bool, limits: ParserLimits
) -> RemoteProtocolError:
    """Like :func:`diagnose_head`, for a trailer section (limit: ``max_header_bytes``)."""
    findings: list[_Finding] = []
    bare = _first_bare_line_break(data, length)
    if bare is not None:
        findings.append(bare)
    too_large = _section_limit_finding(
        length,
        complete,
        limits.max_header_bytes,
        f"trailer section larger than {limits.max_header_bytes} bytes",
    )
    if too_large is not None:
        findings.append(too_large)
    elif complete:
        try:
            parse_trailer_block(data[: length - 4].decode("latin-1"), limits)
        except RemoteProtocolError as error:
            findings.append((length, 4, error))
    if not findings:
        return _error("malformed trailer section")
    return min(findings, key=lambda finding: finding[:2])[2]
