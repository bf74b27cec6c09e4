"""The access log: one line per request, in gunicorn's format language.

Records go to the ``waitress_like.access`` logger at INFO level, so logging configuration
can route them. The ``access_log`` setting adds a handler for standard output (``-``) or
a file that is reopened when it is moved (log rotation, as ``WatchedFileHandler`` does),
and then stops the records from propagating: the setting names where the lines go, and
the root logger's handlers (stderr, once the command has called ``basicConfig``) must
not get a second copy.

Thread contract: :meth:`AccessLog.record` is called on the worker thread that served the
request, after its response is complete: never on the loop thread, so a slow disk never
stalls other connections.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import logging.handlers
import os
import re
import sys
import time
from typing import Any, Mapping, Optional

__all__ = ["AccessLog", "escape"]

LOGGER_NAME = "waitress_like.access"
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that went away mid-request

# Control characters (C0, DEL, C1), quotes and backslashes: a client must not be able to
# forge extra log lines or break out of a quoted field (log injection).
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')


def _escape_character(match: re.Match[str]) -> str:
    character = match.group()
    if character in '"\\':
        return "\\" + character
    return f"\\x{ord(character):02x}"


def escape(value: str) -> str:
    """Make a client-supplied value safe to put in a log line."""
    return _UNSAFE.sub(_escape_character, value)


class _Atoms(Mapping[str, str]):
    """The values a format string may name, each computed only when it is used."""

    def __init__(
        self,
        environ: Mapping[str, Any],
        status: int,
        response_headers: list[tuple[str, str]],
        body_bytes: int,
        started: float,
        duration_seconds: float,
    ) -> None:
        self.environ = environ
        self.status = status
        self.response_headers = response_headers
        self.body_bytes = body_bytes
        self.started = started
        self.duration = duration_seconds

    def __getitem__(self, key: str) -> str:
        if key.startswith("{") and len(key) > 3 and key[-2] == "}":
            name, kind = key[1:-2], key[-1]
            if kind == "i":
                value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
                if value is None and name.lower() in ("content-type", "content-length"):
                    value = self.environ.get(name.upper().replace("-", "_"))
                return escape(value) if value else "-"
            if kind == "o":
                lowered = name.lower()
                values = [v for k, v in self.response_headers if k.lower() == lowered]
                return escape(", ".join(values)) if values else "-"
            if kind == "e":
                value = self.environ.get(name)
                return escape(str(value)) if value is not None else "-"
            raise KeyError(key)
        atom = _ATOMS.get(key)
        if atom is None:
            raise KeyError(key)
        return atom(self)

    def __iter__(self) -> Any:
        return iter(_ATOMS)

    def __len__(self) -> int:
        return len(_ATOMS)

    def _request_line(self) -> str:
        environ = self.environ
        target = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
        return escape(f"{environ.get('REQUEST_METHOD', '-')} {target} {environ.get('SERVER_PROTOCOL', '-')}")

    def _user(self) -> str:
        user = self.environ.get("REMOTE_USER") or _basic_user(self.environ)
        return escape(user) if user else "-"


def _date(atoms: _Atoms) -> str:
    return time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(atoms.started))


def _header_or_dash(name: str) -> Any:
    return lambda atoms: escape(atoms.environ.get(name) or "-")


_ATOMS: dict[str, Any] = {
    "h": lambda a: escape(a.environ.get("REMOTE_ADDR") or "-"),
    "l": lambda a: "-",
    "u": _Atoms._user,
    "t": _date,
    "r": _Atoms._request_line,
    "m": lambda a: escape(a.environ.get("REQUEST_METHOD", "-")),
    "U": lambda a: escape(a.environ.get("SCRIPT_NAME", "") + a.environ.get("PATH_INFO", "")),
    "q": lambda a: escape(a.environ.get("QUERY_STRING", "")),
    "H": lambda a: escape(a.environ.get("SERVER_PROTOCOL", "-")),
    "s": lambda a: str(a.status),
    "B": lambda a: str(a.body_bytes),
    "b": lambda a: str(a.body_bytes) if a.body_bytes else "-",
    "f": _header_or_dash("HTTP_REFERER"),
    "a": _header_or_dash("HTTP_USER_AGENT"),
    "T": lambda a: str(int(a.duration)),
    "M": lambda a: str(int(a.duration * 1000)),
    "D": lambda a: str(int(a.duration * 1_000_000)),
    "L": lambda a: f"{a.duration:.6f}",
    "p": lambda a: f"<{os.getpid()}>",
}


#: ``access_log_format = json``: one JSON object per request, a field per atom (the
#: atom in the comment). Texts are the client's own (JSON escapes them), numbers are
#: numbers, a missing value is null.
JSON_FORMAT = "json"
_JSON_FIELDS: tuple[tuple[str, Any], ...] = (
    ("remote_addr", lambda a: a.environ.get("REMOTE_ADDR")),  # h
    ("user", lambda a: a.environ.get("REMOTE_USER") or _basic_user(a.environ)),  # u
    ("time", lambda a: _iso_time(a.started)),  # t
    ("request", lambda a: _raw_request_line(a.environ)),  # r
    ("method", lambda a: a.environ.get("REQUEST_METHOD")),  # m
    ("path", lambda a: a.environ.get("SCRIPT_NAME", "") + a.environ.get("PATH_INFO", "")),  # U
    ("query", lambda a: a.environ.get("QUERY_STRING", "")),  # q
    ("protocol", lambda a: a.environ.get("SERVER_PROTOCOL")),  # H
    ("status", lambda a: a.status),  # s
    ("body_bytes", lambda a: a.body_bytes),  # B, b
    ("referer", lambda a: a.environ.get("HTTP_REFERER")),  # f
    ("user_agent", lambda a: a.environ.get("HTTP_USER_AGENT")),  # a
    ("duration_seconds", lambda a: round(a.duration, 6)),  # L (T, M, D in other units)
    ("pid", lambda a: os.getpid()),  # p
)


def _iso_time(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="milliseconds")


def _raw_request_line(environ: Mapping[str, Any]) -> str:
    target = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    return f"{environ.get('REQUEST_METHOD', '-')} {target} {environ.get('SERVER_PROTOCOL', '-')}"


def _basic_user(environ: Mapping[str, Any]) -> Optional[str]:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(":")[0] or None


def json_line(atoms: _Atoms) -> str:
    """One access record as a JSON object on one line (control characters escaped)."""
    return json.dumps({name: value(atoms) for name, value in _JSON_FIELDS}, separators=(",", ":"))


class AccessLog:
    """Formats and emits one record per request.

    Built once per server; :meth:`close` removes the handler it added, so servers created
    and closed in one process (tests, reloads) do not pile up handlers.
    """

    def __init__(self, format_string: str, target: Optional[str]) -> None:
        self.format = format_string
        self.json = format_string.strip().lower() == JSON_FORMAT
        self.logger = logging.getLogger(LOGGER_NAME)
        self.handler: Optional[logging.Handler] = None
        self._previous_level: Optional[int] = None
        self._previous_propagate: Optional[bool] = None
        if target:
            if target == "-":
                self.handler = logging.StreamHandler(sys.stdout)
            else:
                self.handler = logging.handlers.WatchedFileHandler(target, encoding="utf-8")
            self.handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(self.handler)
            self._previous_propagate = self.logger.propagate
            self.logger.propagate = False
            if self.logger.level == logging.NOTSET or self.logger.level > logging.INFO:
                self._previous_level = self.logger.level
                self.logger.setLevel(logging.INFO)
        # Checked once: a server without an access log pays nothing per request. Without
        # the setting, only a logging configuration that sets this logger's own level
        # turns it on: an inherited level (serve() sets INFO on "waitress_like" for its
        # start-up lines) must not, or the log would be on by default.
        explicit_level = self.logger.level != logging.NOTSET and self.logger.level <= logging.INFO
        self.enabled = self.handler is not None or (explicit_level and self.logger.hasHandlers())

    def record(
        self,
        environ: Mapping[str, Any],
        status: int,
        response_headers: list[tuple[str, str]],
        body_bytes: int,
        started: float,
        duration_seconds: float,
    ) -> None:
        """Worker thread: emit the line for one finished (or abandoned) request."""
        atoms = _Atoms(environ, status, response_headers, body_bytes, started, duration_seconds)
        if self.json:
            self.logger.info(json_line(atoms))
            return
        try:
            line = self.format % atoms
        except (KeyError, TypeError, ValueError) as error:
            line = f"access_log_format error ({error!r}): " + _ATOMS["r"](atoms)
        self.logger.info(line)

    def close(self) -> None:
        """Remove what this log added to the shared logger (handler, level, propagation)."""
        if self.handler is not None:
            self.logger.removeHandler(self.handler)
            self.handler.close()
            self.handler = None
        if self._previous_propagate is not None:
            self.logger.propagate = self._previous_propagate
            self._previous_propagate = None
        if self._previous_level is not None:
            self.logger.setLevel(self._previous_level)
            self._previous_level = None
