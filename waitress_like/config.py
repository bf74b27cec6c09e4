"""The settings table: every setting waitress_like understands, in one place.

:data:`SETTINGS` is the single source of truth. ``serve()``, PasteDeploy, the CLI and the
documentation are all generated from it, so adding a setting means adding one
:class:`Setting` row: how one value is checked lives in the row's converter, and checks
that involve several settings live in :func:`_check_conflicts`.

Names, defaults and string conversions follow waitress 3.x, so a waitress configuration
works unchanged. Every value may be given as a Python object (``serve(app, threads=8)``)
or as a string (PasteDeploy, the command line: ``threads="8"``). Every problem raises
:class:`~waitress_like.errors.ConfigError` naming the setting.

Nothing here does I/O: host names are not resolved and service names are not looked up
(ports are numbers); turning :class:`ListenAddress` values into sockets is the listeners'
job.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
import socket
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, Optional, Union

from .errors import ConfigError, LocalProtocolError
from .importer import AppSpecError, split_spec
from .protocol.response import HOP_BY_HOP_HEADERS, check_header
from .proxy import FORWARDING_HEADERS, PROXY_PROTOCOL_MODES, TrustedProxies

__all__ = [
    "CERT_REQS",
    "DEFAULT_PORT",
    "DEFAULT_TLS12_CIPHERS",
    "INTERFACES",
    "LIFESPAN_MODES",
    "SETTINGS",
    "SETTINGS_BY_NAME",
    "TLS_MINIMUM_VERSIONS",
    "TOPICS",
    "WS_MODES",
    "Converter",
    "ListenAddress",
    "Secret",
    "Setting",
    "Settings",
]

#: The port a bare ``HOST`` in ``listen`` uses (``port`` may not be combined with listen).
DEFAULT_PORT = 8080

#: Topic key -> title, in documentation order.
TOPICS: Mapping[str, str] = {
    "listening": "Listening",
    "tls": "TLS",
    "threads": "Threads",
    "http": "HTTP",
    "websocket": "WebSockets",
    "buffers": "Buffers",
    "timeouts": "Timeouts",
    "proxy": "Proxy",
    "logging": "Logging",
    "metrics": "Metrics",
    "workers": "Worker processes",
    "compat": "Compatibility",
}

#: Values of the ``interface`` setting (the ASGI code checks its arguments against them).
INTERFACES = ("auto", "wsgi", "asgi3", "asgi2")

#: Values of the ``lifespan`` setting.
LIFESPAN_MODES = ("auto", "on", "off")

#: Values of ``cert_reqs``, in the order of :class:`ssl.VerifyMode` (0, 1, 2).
CERT_REQS = ("none", "optional", "required")

#: Values of ``tls_minimum_version``. TLS 1.0 and 1.1 are not offered (RFC 8996).
TLS_MINIMUM_VERSIONS = ("1.2", "1.3")

#: The TLS 1.2 cipher suites offered by default: forward secret (ECDHE) and AEAD only, so
#: no CBC mode, RSA key exchange, SHA-1 MAC or DHE without parameters. TLS 1.3 has its
#: own, always AEAD, suites, which this string does not touch.
DEFAULT_TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)

#: Values of the ``loglevel`` setting (gunicorn's).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

#: The port of ``statsd_host`` when it names none (statsd's own default).
STATSD_PORT = 8125
#: Values of the ``ws`` setting.
WS_MODES = ("auto", "none")


# --------------------------------------------------------------------------- rows


class Converter:
    """A value converter plus what the CLI and the docs need to know about it.

    Calling it turns a Python object or a string into the setting's value. It raises
    ``ValueError`` or ``TypeError`` whose message is the reason; :meth:`Setting.parse`
    adds the setting's name and turns that into a :class:`ConfigError`.
    """

    __slots__ = ("_function", "accepts_text", "is_flag", "metavar", "type_name")

    def __init__(
        self,
        function: Callable[[Any], Any],
        type_name: str,
        metavar: str = "VALUE",
        *,
        is_flag: bool = False,
        accepts_text: bool = True,
    ) -> None:
        self._function = function
        self.type_name = type_name  # shown in the docs' "type" column
        self.metavar = metavar  # shown in CLI help: --threads=INT
        self.is_flag = is_flag  # the CLI offers --name / --no-name
        self.accepts_text = accepts_text  # False: Python API only, no CLI/ini option

    def __call__(self, value: Any) -> Any:
        return self._function(value)

    def __repr__(self) -> str:
        return f"<Converter {self.type_name}>"


class Setting:
    """One row of the settings table.

    ``convert`` is usually a :class:`Converter`; any callable works, and then the CLI
    treats the setting as a plain ``--name=VALUE`` option. ``help`` is one paragraph of
    reStructuredText: plain text apart from double-backquoted literals, which a terminal
    may show as they are or strip. ``deprecated`` is a message: giving the setting emits a
    ``DeprecationWarning`` with it. ``default_text`` overrides how the default is shown.
    """

    __slots__ = (
        "_default_text",
        "convert",
        "default",
        "deprecated",
        "help",
        "metavar",
        "name",
        "topic",
    )

    def __init__(
        self,
        name: str,
        convert: Callable[[Any], Any],
        default: Any,
        help: str,
        topic: str,
        *,
        deprecated: str | None = None,
        metavar: str | None = None,
        default_text: str | None = None,
    ) -> None:
        if topic not in TOPICS:
            raise ValueError(f"setting {name!r}: unknown topic {topic!r}")
        self.name = name
        self.convert = convert
        self.default = default
        self.help = help
        self.topic = topic
        self.deprecated = deprecated
        self.metavar = metavar or getattr(convert, "metavar", "VALUE")
        self._default_text = default_text

    @property
    def type_name(self) -> str:
        return str(getattr(self.convert, "type_name", "value"))

    @property
    def is_flag(self) -> bool:
        """True for booleans: the CLI offers ``--name`` and ``--no-name``."""
        return bool(getattr(self.convert, "is_flag", False))

    @property
    def accepts_text(self) -> bool:
        """False for settings only the Python API can give (e.g. ``sockets``)."""
        return bool(getattr(self.convert, "accepts_text", True))

    @property
    def cli_option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default_text(self) -> str:
        """The default as the docs and CLI help show it."""
        if self._default_text is not None:
            return self._default_text
        if isinstance(self.default, (frozenset, set, tuple, list)) and not self.default:
            return "(empty)"
        return repr(self.default)

    def parse(self, value: Any) -> Any:
        """Convert one given value; raises :class:`ConfigError` naming this setting."""
        try:
            return self.convert(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(self.name, value, str(exc)) from None

    def __repr__(self) -> str:
        return f"<Setting {self.name} default={self.default!r}>"


# --------------------------------------------------------------------------- converters

_TRUE_WORDS = frozenset({"true", "yes", "on", "y", "t", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "n", "f", "0"})
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_HOST_NAME = re.compile(r"[\w.-]+")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError("expected a boolean: true/yes/on/y/t/1 or false/no/off/n/f/0")


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError("expected an integer")


def _parse_number(value: Any) -> int | float:
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value.strip()):
        text = value.strip()
        value = int(text) if _INTEGER_TEXT.fullmatch(text) else float(text)
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("expected a number")


def _integer(minimum: int, maximum: int | None = None, metavar: str = "INT") -> Converter:
    def convert(value: Any) -> int:
        number = _parse_int(value)
        if number < minimum or (maximum is not None and number > maximum):
            raise ValueError(f"must be {bounds}")
        return number

    bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
    return Converter(convert, f"integer, {bounds}", metavar)


def _seconds_above_zero(value: Any) -> int | float:
    number = _parse_number(value)
    if number <= 0:
        raise ValueError("must be a number of seconds > 0")
    return number


def _seconds_or_zero(value: Any) -> int | float:
    number = _parse_number(value)
    if number < 0:
        raise ValueError("must be a number of seconds >= 0 (0 turns it off)")
    return number


# Framing and connection headers describe each response; only the server writes them.
_SERVER_ONLY_HEADERS = HOP_BY_HOP_HEADERS | {"content-length"}


def _parse_header_entry(entry: str) -> tuple[str, str]:
    name, colon, value = entry.partition(":")
    name, value = name.strip(), value.strip()
    if not colon:
        raise ValueError(f"{entry!r} is not a 'Name: value' header")
    if name.lower() in _SERVER_ONLY_HEADERS:
        raise ValueError(f"{name!r} is set by the server for each response, it cannot be a default header")
    try:
        check_header(name, value)  # the rule the application's own headers follow
    except LocalProtocolError as error:
        raise ValueError(str(error)) from None
    return name, value


def _parse_headers(value: Any) -> tuple[tuple[str, str], ...]:
    """Headers as ``"Name: value"`` lines (or a list of such strings or of pairs)."""
    if isinstance(value, str):
        entries: Iterable[Any] = [line for line in value.splitlines() if line.strip()]
    elif isinstance(value, (list, tuple)):
        entries = value
    else:
        raise TypeError("must be 'Name: value' lines or a list of them")
    headers = []
    for entry in entries:
        if isinstance(entry, (tuple, list)) and len(entry) == 2:
            entry = f"{entry[0]}: {entry[1]}"
        if not isinstance(entry, str):
            raise TypeError(f"{entry!r} is not a 'Name: value' header")
        headers.append(_parse_header_entry(entry))
    return tuple(headers)


def _optional(converter: Converter) -> Converter:
    """Also accept None or a blank string, meaning "not set"."""

    def convert(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return converter(value)

    type_name = f"{converter.type_name}; or unset"
    return Converter(convert, type_name, converter.metavar)


def _parse_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    text = value.strip()
    if _CONTROL_CHARACTERS.search(text):
        raise ValueError("must not contain control characters")
    return text


def _parse_header_text(value: Any) -> str:
    """Text that goes into a response header: no controls, and one byte per character."""
    text = _parse_text(value)
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("must be latin-1 text: it is sent in a response header") from None
    return text


def _parse_nonempty_text(value: Any) -> str:
    text = _parse_text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _parse_path(value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _parse_nonempty_text(value)


def _parse_url_scheme(value: Any) -> str:
    text = _parse_text(value)
    if not _URL_SCHEME.fullmatch(text):
        raise ValueError("expected a URL scheme such as 'http' or 'https'")
    return text


def _parse_url_prefix(value: Any) -> str:
    # SCRIPT_NAME: empty for the root, else one leading slash and no trailing slash.
    stripped = _parse_text(value).strip("/")
    return "/" + stripped if stripped else ""


def _parse_octal_permissions(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"(0[oO])?[0-7]{1,4}", value.strip()):
        mode = int(value.strip(), 8)
    elif isinstance(value, int) and not isinstance(value, bool):
        mode = value
    else:
        raise ValueError("expected octal permissions such as '600'")
    if not 0 <= mode <= 0o777:
        hint = f"; did you mean '{value}' as an octal string?" if isinstance(value, int) else ""
        raise ValueError(f"permissions must be between 0 and 0o777{hint}")
    return mode


def _parse_host(text: str) -> str | None:
    """Host part of a listen address: None for '*', IPv6 literals without brackets."""
    if text == "*":
        return None
    if text.startswith("[") and text.endswith("]"):
        return _check_ipv6(text[1:-1])
    if ":" in text:
        return _check_ipv6(text)
    if not _HOST_NAME.fullmatch(text):
        raise ValueError(f"{text!r} is not a host name or IP address")
    return text


def _check_ipv6(text: str) -> str:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv6 address") from None
    return text


def _parse_host_setting(value: Any) -> str:
    text = _parse_nonempty_text(value)
    _parse_host(text)
    return text


def _parse_port_text(text: str) -> int:
    # Digits only: service names would need a lookup, and config does no I/O.
    if not re.fullmatch(r"[0-9]+", text) or not 0 <= int(text) <= 65535:
        raise ValueError("the port must be a number between 0 and 65535")
    return int(text)


# A scheme written before a listen entry; a bare entry is decided by _resolve_listen_tls.
_LISTEN_SCHEMES = {"http://": False, "https://": True}


def _parse_listen_entry(word: str) -> ListenAddress:
    prefix, separator, rest = word.partition("://")
    if not separator:
        return _parse_address_entry(word, None)
    tls = _LISTEN_SCHEMES.get(prefix.lower() + separator)
    if tls is None:
        raise ValueError(f"{word!r}: the scheme must be http:// or https://")
    return _parse_address_entry(rest, tls, word)


def _parse_address_entry(entry: str, tls: bool | None, word: str | None = None) -> ListenAddress:
    """``HOST:PORT`` (or ``[IPV6]:PORT``, ``*:PORT``, ``HOST``); ``word`` is the entry as
    written, scheme included, for messages."""
    shown = word or entry
    try:
        host, port = _split_host_port(entry)
    except ValueError as exc:
        raise ValueError(f"{shown!r}: {exc}") from None
    return ListenAddress(host, port, tls=bool(tls), scheme_given=tls is not None)


def _split_host_port(entry: str) -> tuple[str | None, int]:
    if entry.startswith("["):
        host_text, bracket, rest = entry.partition("]")
        if not bracket:
            raise ValueError("missing ']' after the IPv6 address")
        host_text += bracket
        if rest and not rest.startswith(":"):
            raise ValueError("expected ':PORT' after ']'")
        port = _parse_port_text(rest[1:]) if rest else DEFAULT_PORT
    elif entry.count(":") > 1:
        raise ValueError("write IPv6 addresses in brackets, e.g. [::1]:8080")
    elif ":" in entry:
        host_text, _, port_text = entry.partition(":")
        port = _parse_port_text(port_text)
    else:
        host_text, port = entry, DEFAULT_PORT
    return _parse_host(host_text), port


def _listen_entries(value: Any) -> Iterator[ListenAddress]:
    items = [value] if isinstance(value, (str, ListenAddress)) else value
    if not isinstance(items, Iterable):
        raise TypeError("expected '[https://]HOST:PORT' entries separated by spaces or newlines")
    for item in items:
        if isinstance(item, ListenAddress):
            yield item
        elif isinstance(item, str):
            yield from (_parse_listen_entry(word) for word in item.split())
        else:
            raise TypeError(f"expected 'HOST:PORT' strings, got {item!r}")


def _parse_listen(value: Any) -> tuple[ListenAddress, ...]:
    addresses = tuple(dict.fromkeys(_listen_entries(value)))  # drop repeats, keep order
    if not addresses:
        raise ValueError("expected at least one 'HOST:PORT' entry")
    return addresses


def _parse_proxy_headers(value: Any) -> frozenset[str]:
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, Iterable) or not all(isinstance(w, str) for w in words):
        raise ValueError("expected header names separated by spaces or commas")
    names = frozenset(name.lower() for word in words for name in word.replace(",", " ").split())
    unknown = names - FORWARDING_HEADERS.keys()
    if unknown:
        raise ValueError(
            f"unknown header(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(FORWARDING_HEADERS))}"
        )
    if "forwarded" in names and len(names) > 1:
        raise ValueError("forwarded and x-forwarded-* headers cannot be trusted together")
    return names


def _socket_kind(sock: Any) -> str:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"expected socket objects, got {sock!r}")
    if sock.fileno() == -1:
        raise ValueError(f"{sock!r} is closed")
    if sock.type == socket.SOCK_STREAM and sock.family in (
        socket.AF_INET,
        socket.AF_INET6,
    ):
        return "internet"
    if sock.type == socket.SOCK_STREAM and sock.family == getattr(socket, "AF_UNIX", None):
        return "unix"
    raise ValueError("only TCP (IPv4/IPv6) or Unix stream sockets can be used")


def _parse_sockets(value: Any) -> tuple[socket.socket, ...]:
    if isinstance(value, (str, bytes)):
        raise TypeError("sockets can only be given from Python, as a list of sockets")
    if not isinstance(value, Iterable):
        raise TypeError("expected a list of sockets")
    sockets = tuple(value)
    if len({_socket_kind(sock) for sock in sockets}) > 1:
        raise ValueError("internet and Unix sockets cannot be mixed")
    return sockets


def _parse_file_descriptors(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        items: Any = value.replace(",", " ").split()
    elif isinstance(value, int):
        items = [value]
    else:
        items = value
    if not isinstance(items, Iterable):
        raise TypeError("expected file descriptor numbers separated by spaces, e.g. '3 4'")
    numbers = []
    for item in items:
        try:
            number = _parse_int(item)
        except (TypeError, ValueError):
            raise ValueError(f"{item!r} is not a file descriptor number") from None
        if number < 0:
            raise ValueError(f"{item!r} is not a file descriptor number")
        numbers.append(number)
    return tuple(dict.fromkeys(numbers))  # drop repeats, keep order


_bool = Converter(_parse_bool, "boolean", is_flag=True)
_text = Converter(_parse_text, "string", "STR")
_name = Converter(_parse_nonempty_text, "string", "STR")
_optional_text = _optional(_text)
_optional_header_text = _optional(Converter(_parse_header_text, "string", "STR"))
_host = Converter(_parse_host_setting, "host name or IP address", "HOST")
_port = _integer(0, 65535, "PORT")
_listen = Converter(_parse_listen, "list of HOST:PORT", "HOST:PORT")
_sockets = Converter(_parse_sockets, "list of sockets (Python only)", accepts_text=False)
_file_descriptors = Converter(_parse_file_descriptors, "list of file descriptors", "FD")
_path = _optional(Converter(_parse_path, "path", "PATH"))
_permissions = Converter(_parse_octal_permissions, "octal permissions", "PERMS")
_url_scheme = Converter(_parse_url_scheme, "URL scheme", "SCHEME")
_url_prefix = Converter(_parse_url_prefix, "URL path", "PATH")
_seconds = Converter(_seconds_above_zero, "seconds, > 0", "SECONDS")
_proxy_headers = Converter(_parse_proxy_headers, "set of header names", "HEADERS")
_trusted_proxy = _optional(Converter(TrustedProxies.parse, "list of addresses and networks", "ADDRS"))
_at_least_zero = _integer(0)
_at_least_one = _integer(1)
_optional_seconds = Converter(_seconds_or_zero, "seconds, 0 = off", "SECONDS")
_headers = Converter(_parse_headers, "list of 'Name: value' headers", "HEADERS")


def _choice(*choices: str) -> Converter:
    """One of ``choices``, case-insensitive, given as a string."""

    def convert(value: Any) -> str:
        word = value.strip().lower() if isinstance(value, str) else None
        if word not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return word

    return Converter(convert, " | ".join(choices), "|".join(choices).upper())


def _parse_cert_reqs(value: Any) -> str:
    # ssl.CERT_NONE/OPTIONAL/REQUIRED are 0/1/2 (an IntEnum), as gunicorn's setting takes.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(CERT_REQS):
        return CERT_REQS[value]
    word = value.strip().lower() if isinstance(value, str) else None
    if word is not None and word.startswith("cert_"):
        word = word[len("cert_") :]
    if word not in CERT_REQS:
        raise ValueError(f"expected one of {', '.join(CERT_REQS)}")
    return word


def _parse_tls_version(value: Any) -> str:
    # "1.2", "TLSv1.2", "tls1.2", 1.2 or ssl.TLSVersion.TLSv1_2 (its name) all mean 1.2.
    text = getattr(value, "name", value)
    if isinstance(text, float):
        text = str(text)
    word = text.strip().lower().replace("_", ".") if isinstance(text, str) else ""
    for prefix in ("tlsv", "tls"):
        if word.startswith(prefix):
            word = word[len(prefix) :].strip()
            break
    if word in ("1", "1.0", "1.1"):
        raise ValueError("TLS 1.0 and 1.1 are not offered (deprecated by RFC 8996); use 1.2 or 1.3")
    if word not in TLS_MINIMUM_VERSIONS:
        raise ValueError(f"expected one of {', '.join(TLS_MINIMUM_VERSIONS)}")
    return word


def _parse_ciphers(value: Any) -> str:
    # Whether OpenSSL knows the names is checked when the context is built (tls.py).
    return _parse_nonempty_text(value)


def _parse_secret(value: Any) -> Secret:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return Secret(value)


def _parse_hook(value: Any) -> Any:
    """A callable, or ``MODULE:FUNCTION`` text that tls.py imports when it builds the context."""
    if callable(value):
        return value
    if isinstance(value, str):
        try:
            module_name, object_name = split_spec(value.strip())
        except AppSpecError:
            raise ValueError(
                "expected a callable or 'MODULE:FUNCTION', e.g. myproject.tls:ssl_context"
            ) from None
        return f"{module_name}:{object_name}"
    raise TypeError("expected a callable or 'MODULE:FUNCTION'")


_interface = _choice(*INTERFACES)
_lifespan = _choice(*LIFESPAN_MODES)
_ws = _choice(*WS_MODES)
_proxy_protocol = _choice(*PROXY_PROTOCOL_MODES)
_cert_reqs = Converter(_parse_cert_reqs, " | ".join(CERT_REQS), "|".join(CERT_REQS).upper())
_tls_version = Converter(_parse_tls_version, " | ".join(TLS_MINIMUM_VERSIONS), "VERSION")
_ciphers = Converter(_parse_ciphers, "OpenSSL cipher list", "CIPHERS")
_secret = _optional(Converter(_parse_secret, "string (hidden)", "PASSWORD"))
_hook = _optional(Converter(_parse_hook, "callable or MODULE:FUNCTION", "MODULE:FUNCTION"))
_log_level = _optional(_choice(*LOG_LEVELS))


def _parse_statsd_host(value: Any) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPV6]:PORT``; the port defaults to statsd's 8125."""
    entry = _parse_nonempty_text(value)
    if entry.startswith("["):
        has_port = entry.rpartition("]")[2].startswith(":")
    elif entry.count(":") > 1:
        raise ValueError(f"{entry!r}: write IPv6 addresses in brackets, e.g. [::1]:8125")
    else:
        has_port = ":" in entry
    address = _parse_listen_entry(entry if has_port else f"{entry}:{STATSD_PORT}")
    if address.host is None or address.port == 0:
        raise ValueError(f"{entry!r}: name one host, and a port other than 0")
    return address.host, address.port


def _parse_dogstatsd_tags(value: Any) -> str:
    text = _parse_text(value)
    if any(character in text for character in "|#\n"):
        raise ValueError("tags are 'name:value' pairs separated by commas, without '|' or '#'")
    return ",".join(tag.strip() for tag in text.split(",") if tag.strip())


def _parse_error_log(value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _parse_nonempty_text(value)


def _parse_json_object(value: Any) -> dict[str, Any]:
    """A mapping, or its JSON text (as an ini file or the command line gives it)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise ValueError(f"not valid JSON: {error}") from None
    if not isinstance(value, Mapping):
        raise TypeError("expected a dictionary (or its JSON text)")
    return dict(value)


_statsd_host = _optional(Converter(_parse_statsd_host, "HOST:PORT (UDP)", "HOST:PORT"))
_dogstatsd_tags = Converter(_parse_dogstatsd_tags, "comma-separated tags", "TAGS")
_error_log = _optional(Converter(_parse_error_log, "'-' or a path", "FILE"))
_log_config_dict = _optional(Converter(_parse_json_object, "dictionary (or JSON text)", "JSON"))

# For the help of trusted_proxy_headers, from the one list of names.
_X_FORWARDED_NAMES = ", ".join(f"``{name}``" for name in FORWARDING_HEADERS if name != "forwarded")


# --------------------------------------------------------------------------- the table

SETTINGS: tuple[Setting, ...] = (
    # listening
    Setting("host", _host, "0.0.0.0",
            "Host name or IP address to listen on when ``listen`` is not given. "
            "``0.0.0.0`` means every IPv4 address, ``*`` every address of every enabled "
            "family.",
            "listening"),
    Setting("port", _port, DEFAULT_PORT,
            "TCP port to listen on when ``listen`` is not given; ``0`` lets the OS choose.",
            "listening"),
    Setting("listen", _listen, None,
            "Addresses to listen on, separated by spaces or newlines: ``HOST:PORT``, "
            "``[IPV6]:PORT``, ``*:PORT`` (every interface of every enabled family) or a "
            "bare ``HOST`` (port 8080). Write ``https://`` before an entry to serve TLS "
            "on it (``*:8080 https://*:8443``); entries without it are then plain HTTP. "
            "When no entry says ``https://`` and ``certfile`` is set, every entry is TLS. "
            "Cannot be combined with ``host`` or ``port``.",
            "listening", default_text="host:port"),
    Setting("ipv4", _bool, True,
            "Listen on IPv4; decides what ``*`` expands to.", "listening"),
    Setting("ipv6", _bool, True,
            "Listen on IPv6; decides what ``*`` expands to.", "listening"),
    Setting("unix_socket", _path, None,
            "Path of a Unix domain socket to listen on instead of TCP. Cannot be combined "
            "with ``host``, ``port``, ``listen`` or ``sockets``. Not available on Windows.",
            "listening"),
    Setting("unix_socket_perms", _permissions, 0o600,
            "Permissions of the Unix domain socket file, as an octal string such as "
            "``600``.",
            "listening", default_text="600"),
    Setting("sockets", _sockets, (),
            "Already bound listening sockets to accept connections on, e.g. from socket "
            "activation; all TCP or all Unix. Python API only. Cannot be combined with "
            "``host``, ``port``, ``listen`` or ``unix_socket``.",
            "listening"),
    Setting("fd", _file_descriptors, (),
            "Listening sockets inherited from the parent process, by file descriptor "
            "number, separated by spaces (``3`` or ``3 4``); the server adopts and "
            "eventually closes them. Under systemd socket activation (``LISTEN_FDS`` and "
            "``LISTEN_PID`` naming this process) the passed sockets are used without "
            "this setting. Cannot be combined with ``host``, ``port``, ``listen`` or "
            "``unix_socket``. Not available on Windows.",
            "listening"),
    Setting("backlog", _at_least_zero, 1024,
            "How many connections the OS may queue before the server accepts them "
            "(the argument of ``listen()``).",
            "listening"),
    Setting("connection_limit", _at_least_one, 100,
            "The most connections open at once. At the limit a new connection takes the "
            "place of the open one that has made the least progress and is not being "
            "served (an idle keep-alive connection first, then the slowest request head "
            "or body); only when every connection is being served does the server stop "
            "accepting until one closes. Each connection uses a file descriptor, plus one "
            "per buffer spilled to a temporary file.",
            "listening"),
    Setting("connection_limit_per_address", _at_least_zero, 0,
            "The most connections open at once from one peer address (0: no cap). A "
            "connection over the cap is answered 503 and closed. The address is the TCP "
            "peer's, before any PROXY header or forwarding field, so leave this at 0 "
            "behind a proxy or load balancer, where every client shares its address.",
            "listening"),
    # tls
    Setting("certfile", _path, None,
            "PEM file with the server's certificate followed by its intermediate "
            "certificates (a full chain, such as certbot's ``fullchain.pem``); it may also "
            "hold the private key. Setting it serves TLS: on the ``https://`` entries of "
            "``listen`` when there are any, else on every listener (``host``/``port``, "
            "``listen``, ``unix_socket``, ``sockets``, ``fd``).",
            "tls"),
    Setting("keyfile", _path, None,
            "PEM file with the private key of ``certfile``; unset: the key is read from "
            "``certfile``.",
            "tls"),
    Setting("keyfile_password", _secret, None,
            "Password of an encrypted ``keyfile``. Never shown in logs or settings "
            "listings.",
            "tls", default_text="(none)"),
    Setting("ca_certs", _path, None,
            "PEM file of the certificate authorities that client certificates are "
            "checked against (or a directory of them, named by hash as ``openssl "
            "rehash`` makes it). Requires ``cert_reqs`` ``optional`` or ``required``.",
            "tls"),
    Setting("cert_reqs", _cert_reqs, "none",
            "Client certificates: ``none`` (not asked for), ``optional`` (asked for and "
            "verified when sent) or ``required`` (a connection without a valid one fails "
            "its handshake). ``optional`` and ``required`` need ``ca_certs``.",
            "tls"),
    Setting("ciphers", _ciphers, DEFAULT_TLS12_CIPHERS,
            "TLS 1.2 cipher suites to offer, in OpenSSL's cipher list format, most "
            "preferred first (the server's order wins). The default offers only forward "
            "secret AEAD suites (ECDHE with AES-GCM or ChaCha20-Poly1305). TLS 1.3 suites "
            "are not affected.",
            "tls", default_text="ECDHE with AES-GCM or ChaCha20-Poly1305"),
    Setting("tls_minimum_version", _tls_version, "1.2",
            "Oldest TLS version accepted: ``1.2`` or ``1.3``. TLS 1.0 and 1.1 are never "
            "offered.",
            "tls"),
    Setting("ssl_context", _hook, None,
            "Adjusts or replaces the TLS context, as gunicorn's hook: a callable "
            "``ssl_context(settings, default_ssl_context_factory)`` returning an "
            "``ssl.SSLContext``, where the factory returns a new context built from the "
            "settings above. From the command line or an ini file, name it "
            "``MODULE:FUNCTION``. Called at start-up and on each certificate reload.",
            "tls"),
    # threads
    Setting("threads", _at_least_one, 4,
            "Number of worker threads that run the application.", "threads"),
    Setting("max_threads", _at_least_zero, 0,
            "Upper bound for a growing pool: above ``threads``, workers are added while "
            "requests wait in the queue and retired after ``thread_idle_timeout`` without "
            "work. 0 keeps the pool fixed at ``threads``.", "threads"),
    Setting("thread_idle_timeout", _seconds, 60,
            "Seconds an extra worker (above ``threads``) may stay idle before it stops.",
            "threads"),
    Setting("concurrency_limit", _at_least_zero, 0,
            "Most requests running or waiting for a worker at once; a request beyond it "
            "is answered 503 with ``Retry-After`` at once instead of queueing. 0: no limit "
            "(requests queue, as in waitress).", "threads"),
    Setting("retry_after", _at_least_zero, 1,
            "Seconds sent in the ``Retry-After`` header of 503 answers from "
            "``concurrency_limit``.", "threads"),
    Setting("channel_request_lookahead", _at_least_zero, 0,
            "How many more requests a connection may read and queue while one is being "
            "processed. Above 0 the server notices a client that disconnects while its "
            "request runs.",
            "threads"),
    # http
    Setting("url_scheme", _url_scheme, "http",
            "``wsgi.url_scheme`` of requests, unless a trusted proxy says otherwise.",
            "http"),
    Setting("url_prefix", _url_prefix, "",
            "Where the application is mounted: it becomes ``SCRIPT_NAME`` and is removed "
            "from the start of ``PATH_INFO``. A leading ``/`` is added and trailing ones "
            "are removed, so ``/`` is the same as the empty string.",
            "http"),
    Setting("server_name", _name, "waitress.invalid",
            "``SERVER_NAME`` of requests that carry no ``Host`` header.", "http"),
    Setting("ident", _optional_header_text, "waitress_like",
            "Value of the ``Server`` response header; empty sends none.", "http"),
    Setting("server_header", _bool, True,
            "Send the ``Server`` header (with the value of ``ident``).", "http"),
    Setting("date_header", _bool, True,
            "Send the ``Date`` header.", "http"),
    Setting("default_headers", _headers, (),
            "Headers added to every response unless the application sets the same name, "
            "one ``Name: value`` per line (e.g. ``X-Frame-Options: DENY``). Headers the "
            "server frames responses with (``Content-Length``, ``Connection``, "
            "``Transfer-Encoding`` and the other hop-by-hop headers) are refused.", "http",
            default_text="(none)"),
    Setting("max_requests_per_connection", _at_least_zero, 0,
            "Close a keep-alive connection after this many requests (the last response "
            "says ``Connection: close``). 0: no limit.", "http"),
    Setting("max_request_header_size", _at_least_one, 262144,
            "Largest total size in bytes of a request's headers; larger requests are "
            "rejected.",
            "http"),
    Setting("max_request_body_size", _at_least_zero, 1073741824,
            "Largest request body in bytes; larger requests are rejected.", "http"),
    Setting("limit_request_fields", _at_least_one, 1000,
            "Most header field lines in a request head, and in the trailer section of a "
            "chunked body; a request with more is answered 431. It bounds what a flood of "
            "tiny fields costs, which ``max_request_header_size`` in bytes does not (the "
            "name is gunicorn's; its default is 100).",
            "http"),
    Setting("expose_tracebacks", _bool, False,
            "Send the traceback of an unhandled application error to the client. For "
            "debugging only: it can reveal secrets.",
            "http"),
    Setting("interface", _interface, "auto",
            "How the application is called: ``wsgi``, ``asgi3``, ``asgi2``, or ``auto``, "
            "which picks ``asgi3`` for a coroutine function (or an object with an async "
            "``__call__``) taking ``(scope, receive, send)`` and ``wsgi`` otherwise. ASGI "
            "applications run on one background event loop (see the ASGI page).",
            "http"),
    Setting("lifespan", _lifespan, "auto",
            "The ASGI lifespan protocol: ``auto`` runs startup before serving and shutdown "
            "after, unless the application does not support it; ``on`` also refuses to "
            "serve an application whose startup does not complete; ``off`` never sends "
            "it. Ignored for WSGI applications, except that ``on`` is then an error.",
            "http"),
    # websocket
    Setting("ws", _ws, "auto",
            "WebSockets for ASGI applications: ``auto`` serves a request with "
            "``Upgrade: websocket`` as a ``websocket`` scope; ``none`` passes it to the "
            "application as plain HTTP. WSGI applications never get WebSockets.",
            "websocket"),
    Setting("ws_max_size", _at_least_one, 16777216,
            "Largest WebSocket message in bytes the server accepts from a client (after "
            "decompression); a larger one closes the connection with code 1009.",
            "websocket"),
    Setting("ws_max_queue", _at_least_one, 32,
            "Received WebSocket messages held for the application before the server stops "
            "reading from that client until the application takes some.",
            "websocket"),
    Setting("ws_ping_interval", _optional_seconds, 20,
            "Seconds between two Pings the server sends on an open WebSocket, to keep "
            "idle connections alive through proxies and to find dead peers (0: none).",
            "websocket"),
    Setting("ws_ping_timeout", _optional_seconds, 20,
            "Seconds a client has to answer a Ping with a Pong before the connection is "
            "closed as dead (0: wait for ever).",
            "websocket"),
    Setting("ws_per_message_deflate", _bool, True,
            "Offer permessage-deflate compression (RFC 7692) to clients that ask for it.",
            "websocket"),
    # buffers
    Setting("recv_bytes", _at_least_one, 8192,
            "Bytes to read from a socket per ``recv()`` call.", "buffers"),
    Setting("inbuf_overflow", _at_least_zero, 524288,
            "A request body larger than this many bytes is kept in a temporary file "
            "instead of memory.",
            "buffers"),
    Setting("outbuf_overflow", _at_least_zero, 1048576,
            "Response output waiting to be sent is kept in a temporary file once it is "
            "larger than this many bytes.",
            "buffers"),
    Setting("outbuf_high_watermark", _at_least_one, 16777216,
            "The application's response iterator is paused while more than this many "
            "bytes wait to be sent, and resumed when they drain below it.",
            "buffers"),
    # timeouts
    Setting("channel_timeout", _seconds, 120,
            "Seconds a connection may stay inactive (nothing received, nothing sent) "
            "before it is closed.",
            "timeouts"),
    Setting("cleanup_interval", _seconds, 30,
            "Seconds between two searches for inactive connections to close.",
            "timeouts"),
    Setting("request_head_timeout", _seconds, 30,
            "Seconds a client has to send a complete request head (request line and "
            "header fields), counted from accept for a connection's first request and "
            "from the head's first byte for later ones; on expiry it is answered 408 "
            "and the connection is closed. Protects against slowloris clients.",
            "timeouts"),
    Setting("request_min_rate", _at_least_zero, 500,
            "Bytes per second a request head or body must average, from its start, once "
            "it has been arriving for request_min_rate_grace seconds (0: no minimum); "
            "below it the client is answered 408 and the connection is closed, as with "
            "Apache's mod_reqtimeout MinRate. One byte every few seconds then no longer "
            "keeps a connection alive.",
            "timeouts"),
    Setting("request_min_rate_grace", _seconds, 10,
            "Seconds a request head or body may take before request_min_rate applies; "
            "after that, every request_min_rate bytes received earn one more second.",
            "timeouts"),
    Setting("request_body_timeout", _seconds, 60,
            "Seconds a request body may stall (no byte received) before the connection "
            "is closed. The application only runs once the whole body is in, so a slow "
            "upload never holds a worker thread.",
            "timeouts"),
    Setting("keepalive_timeout", _seconds, 30,
            "Seconds an idle keep-alive connection waits for its next request before it is "
            "closed (shorter than ``channel_timeout``, which covers every other wait).",
            "timeouts"),
    Setting("max_connection_age", _optional_seconds, 0,
            "Seconds after which a connection is closed once its current response is done "
            "(that response says ``Connection: close``). 0: no limit.", "timeouts"),
    Setting("graceful_timeout", _seconds, 30,
            "On SIGTERM, SIGINT or ``close()``: seconds requests in flight may take to "
            "finish while nothing new is accepted; what is left is then closed.",
            "timeouts"),
    Setting("send_timeout", _seconds, 60,
            "Seconds a response may stall because the client does not read (no byte "
            "accepted by the socket) before the connection is closed and the worker "
            "producing the response is freed.",
            "timeouts"),
    # proxy
    Setting("trusted_proxy", _trusted_proxy, None,
            "Peers whose forwarding headers (and PROXY protocol header) are trusted: "
            "addresses and networks separated by commas or spaces "
            "(``127.0.0.1, 10.0.0.0/8, ::1``), ``localhost`` for peers on a unix socket, "
            "or ``*`` for every peer. Unset: the ``FORWARDED_ALLOW_IPS`` environment "
            "variable when it is set, else no peer is trusted.",
            "proxy", metavar="ADDRS"),
    Setting("trusted_proxy_count", _optional(_at_least_one), None,
            "How many proxies in a chain are trusted when reading ``Forwarded`` or "
            "``X-Forwarded-For``; unset means 1. Requires ``trusted_proxy``.",
            "proxy"),
    Setting("trusted_proxy_headers", _proxy_headers, frozenset(),
            "Forwarding headers trusted from the proxy, separated by spaces or commas: "
            f"``forwarded``, or any of {_X_FORWARDED_NAMES}. Requires "
            "``trusted_proxy``; left empty while ``trusted_proxy`` is set, "
            "``x-forwarded-proto`` is trusted (deprecated).",
            "proxy"),
    Setting("proxy_protocol", _proxy_protocol, "off",
            "Read a HAProxy PROXY protocol header at the start of each connection from a "
            "trusted peer and take the client's address from it: ``v1`` (text) or ``v2`` "
            "(binary) require it, ``auto`` accepts either or none. A PROXY header from any "
            "other peer, or a malformed one, closes the connection. Requires "
            "``trusted_proxy``.",
            "proxy"),
    Setting("clear_untrusted_proxy_headers", _bool, True,
            "Remove forwarding headers that are not trusted before the application sees "
            "them.",
            "proxy"),
    # logging
    Setting("log_socket_errors", _bool, True,
            "Log socket errors, such as a client disconnecting early.", "logging"),
    Setting("log_untrusted_proxy_headers", _bool, False,
            "Log forwarding headers that arrive but are not trusted.", "logging"),
    Setting("access_log", _optional_text, None,
            "Where to write the access log: ``-`` for standard output or a file path "
            "(reopened when it is moved, for log rotation). Unset: no access log, unless a "
            "logging configuration sets the ``waitress_like.access`` logger's level to INFO.",
            "logging"),
    Setting("access_log_format", _text,
            '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
            "Access log line format, with gunicorn's atoms (h l u t r m U q H s B b f a T "
            "M D L p, ``{header}i``, ``{header}o``, ``{variable}e``); or ``json`` for one "
            "JSON object per request, with a field per atom.", "logging"),
    Setting("loglevel", _log_level, None,
            "Level of the server's own log (the ``waitress_like`` logger): ``debug``, "
            "``info``, ``warning``, ``error`` or ``critical``. Unset: ``info``, unless a "
            "logging configuration set that logger's level.",
            "logging", default_text="info"),
    Setting("errorlog", _error_log, None,
            "Where the server's own log goes: ``-`` for standard error or a file path "
            "(reopened on SIGUSR1, and when it is moved). Unset: standard error, through "
            "the root logger, so the application's log records go there too.",
            "logging"),
    Setting("logconfig", _path, None,
            "An ini file for ``logging.config.fileConfig``, read at start-up.", "logging"),
    Setting("logconfig_dict", _log_config_dict, None,
            "A dictionary for ``logging.config.dictConfig`` (from Python or a config "
            "file; as JSON text in an ini file or on the command line).", "logging"),
    Setting("logconfig_json", _path, None,
            "A JSON file holding a ``logging.config.dictConfig`` dictionary, read at "
            "start-up.", "logging"),
    # metrics
    Setting("metrics_listen", _optional(_listen), None,
            "Serve Prometheus metrics at ``/metrics`` on these addresses (``HOST:PORT``, "
            "as ``listen``), on a listener of their own, never the application's. Unset: "
            "no metrics endpoint.",
            "metrics", metavar="HOST:PORT"),
    Setting("statsd_host", _statsd_host, None,
            "Send metrics to this statsd server over UDP, under gunicorn's names "
            "(``HOST:PORT``; the port defaults to 8125). Unset: no statsd.",
            "metrics"),
    Setting("statsd_prefix", _text, "",
            "Prefix of every statsd metric name (a trailing ``.`` is added).", "metrics"),
    Setting("dogstatsd_tags", _dogstatsd_tags, "",
            "Datadog (dogstatsd) tags added to every statsd line, separated by commas "
            "(``env:prod,service:shop``).", "metrics"),
    # workers: supervised worker processes (supervisor.py); workers = 1 is one process
    Setting("workers", _at_least_one, 1,
            "Worker processes, each a complete server (a loop thread and ``threads`` "
            "worker threads) on the same listening sockets, started and supervised by a "
            "parent process: a worker that dies is replaced, SIGHUP restarts them all "
            "without failing a request (see the worker processes page). 1 serves in the one "
            "process, as waitress does. On the command line the default is the "
            "``WEB_CONCURRENCY`` environment variable when it is set.",
            "workers"),
    Setting("reuse_port", _bool, False,
            "Give each worker a listening socket of its own (``SO_REUSEPORT``), so the "
            "kernel spreads connections evenly over the workers, instead of one socket "
            "they all accept from. TCP addresses only; not on Windows.",
            "workers"),
    Setting("preload_app", _bool, False,
            "Import the application in the supervisor before the workers are forked, so "
            "they share its memory and a broken application fails before any worker "
            "starts. The application's code is then not reloaded by SIGHUP. Not on "
            "Windows, where every worker imports the application itself.",
            "workers"),
    Setting("worker_timeout", _optional_seconds, 30,
            "Seconds a worker's loop thread may go without reporting to the supervisor "
            "before the worker is killed and replaced (gunicorn's ``timeout``). Requests "
            "that take long in the worker threads do not count: only a stuck loop does. "
            "Applies while a worker starts too. 0 turns it off.",
            "workers"),
    Setting("max_requests", _at_least_zero, 0,
            "Replace a worker after it has served about this many requests: a new worker "
            "starts, then the old one finishes its requests and exits, so a leak in the "
            "application stays bounded. 0: never.",
            "workers"),
    Setting("max_requests_jitter", _at_least_zero, 0,
            "Add a random 0 to this many requests to each worker's ``max_requests``, so "
            "the workers are not all replaced at the same moment.",
            "workers"),
    Setting("pidfile", _path, None,
            "Write the server's process id to this file while it runs (the supervisor's "
            "when there are workers); refused if the file names a running process.",
            "workers"),
    Setting("proc_name", _optional_text, None,
            "Name shown in process titles (``ps``, ``top``), e.g. ``waitress_like: worker "
            "[NAME]``. Needs the ``setproctitle`` package (the ``setproctitle`` extra); "
            "unset: the application's name.",
            "workers"),
    Setting("user", _optional_text, None,
            "Run the workers as this user (name or number) once the sockets are bound, "
            "so that a server started as root can listen on port 80 and serve without "
            "privileges. Unix only; the server must start as root.",
            "workers"),
    Setting("group", _optional_text, None,
            "Run the workers with this group (name or number); default: the group of "
            "``user``. Unix only; the server must start as root.",
            "workers"),
    Setting("umask", _optional(_permissions), None,
            "File mode creation mask of the server's processes, as an octal string such "
            "as ``027``; unset leaves it as inherited. Unix only.",
            "workers", default_text="(inherited)"),
    Setting("chdir", _path, None,
            "Change to this directory before loading the application (it then becomes "
            "the importable current directory).",
            "workers"),
    # compat: accepted and checked so that waitress configurations load; no effect.
    Setting("asyncore_loop_timeout", _seconds, 1,
            "Accepted for waitress compatibility; has no effect: the event loop sleeps "
            "until a socket is ready or its next timer is due, not for a fixed interval.",
            "compat"),
    Setting("send_bytes", _at_least_one, 1,
            "Accepted for waitress compatibility; has no effect: responses go out in "
            "pieces as large as the socket accepts.", "compat",
            deprecated="send_bytes has no effect and will be removed in a future release"),
    Setting("asyncore_use_poll", _bool, False,
            "Accepted for waitress compatibility; has no effect: the event loop uses the "
            "best mechanism of the platform (epoll, kqueue, or select on Windows).",
            "compat"),
)  # fmt: skip

SETTINGS_BY_NAME: Mapping[str, Setting] = {setting.name: setting for setting in SETTINGS}


# --------------------------------------------------------------------------- values


class ListenAddress:
    """One TCP address to listen on, plain HTTP or TLS. Immutable.

    ``host`` is a host name or an IP address (IPv6 without brackets), or None for every
    interface of every enabled address family (written ``*``). It is not resolved here.
    ``tls`` says whether connections to it speak TLS. ``scheme_given`` records whether
    the entry was written with ``http://`` or ``https://``: a bare entry's ``tls`` is
    decided from ``certfile`` when the settings are validated (see :func:`_resolve_listen_tls`),
    so it takes no part in equality.
    """

    __slots__ = ("host", "port", "tls", "scheme_given")

    host: str | None
    port: int
    tls: bool
    scheme_given: bool

    def __init__(self, host: str | None, port: int, *, tls: bool = False, scheme_given: bool = False) -> None:
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "tls", tls)
        object.__setattr__(self, "scheme_given", scheme_given)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ListenAddress is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("ListenAddress is immutable")

    def with_tls(self, tls: bool) -> ListenAddress:
        """The same address, plain or TLS, as written (``scheme_given`` is kept)."""
        return ListenAddress(self.host, self.port, tls=tls, scheme_given=self.scheme_given)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ListenAddress):
            return NotImplemented
        return (self.host, self.port, self.tls) == (other.host, other.port, other.tls)

    def __hash__(self) -> int:
        return hash((self.host, self.port, self.tls))

    def __repr__(self) -> str:
        tls = ", tls=True" if self.tls else ""
        return f"ListenAddress({self.host!r}, {self.port!r}{tls})"

    def __str__(self) -> str:
        """The ``listen`` syntax: ``*:8080``, ``[::1]:8080``, ``https://127.0.0.1:8443``.

        TLS addresses carry ``https://``, so the text parses back to the same address
        whatever ``certfile`` is.
        """
        return ("https://" if self.tls else "") + self.host_port

    @property
    def host_port(self) -> str:
        """``HOST:PORT`` without the scheme, IPv6 hosts in brackets, ``*`` for every host."""
        if self.host is None:
            return f"*:{self.port}"
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


class Secret(str):
    """A string setting whose value must not show in logs: its ``repr`` hides it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<hidden>'"


class Settings:
    """Validated settings; one read-only attribute per table row, named as the setting.

    ``listen`` is derived and always filled in: the ``listen`` setting if given, else
    ``host``/``port``; empty when ``sockets`` or ``unix_socket`` is used instead.
    ``trusted_proxy_count`` is resolved to 1 when unset, as in waitress.

    The annotations below declare each setting's validated type, so a type checker checks
    every use; a test keeps them and :data:`SETTINGS` naming the same settings. Durations
    are ``float`` (an int is a valid float), and the values are read from the validated
    mapping, not stored as attributes.
    """

    __slots__ = ("_values",)
    _values: dict[str, Any]  # setting name -> validated value, in table order

    # listening
    host: str
    port: int
    listen: tuple[ListenAddress, ...]
    ipv4: bool
    ipv6: bool
    unix_socket: Optional[str]
    unix_socket_perms: int
    sockets: tuple[socket.socket, ...]
    fd: tuple[int, ...]
    backlog: int
    connection_limit: int
    connection_limit_per_address: int
    # tls
    certfile: Optional[str]
    keyfile: Optional[str]
    keyfile_password: Optional[Secret]
    ca_certs: Optional[str]
    cert_reqs: str
    ciphers: str
    tls_minimum_version: str
    ssl_context: Optional[Union[str, Callable[..., Any]]]
    # threads
    threads: int
    max_threads: int
    thread_idle_timeout: float
    concurrency_limit: int
    retry_after: int
    channel_request_lookahead: int
    # http
    url_scheme: str
    url_prefix: str
    server_name: str
    ident: Optional[str]
    server_header: bool
    date_header: bool
    default_headers: tuple[tuple[str, str], ...]
    max_requests_per_connection: int
    max_request_header_size: int
    max_request_body_size: int
    limit_request_fields: int
    expose_tracebacks: bool
    interface: str
    lifespan: str
    # websocket
    ws: str
    ws_max_size: int
    ws_max_queue: int
    ws_ping_interval: float
    ws_ping_timeout: float
    ws_per_message_deflate: bool
    # buffers
    recv_bytes: int
    inbuf_overflow: int
    outbuf_overflow: int
    outbuf_high_watermark: int
    # timeouts
    channel_timeout: float
    cleanup_interval: float
    request_head_timeout: float
    request_min_rate: int
    request_min_rate_grace: float
    request_body_timeout: float
    keepalive_timeout: float
    max_connection_age: float
    graceful_timeout: float
    send_timeout: float
    # proxy
    trusted_proxy: Optional[TrustedProxies]
    trusted_proxy_count: int
    trusted_proxy_headers: frozenset[str]
    proxy_protocol: str
    clear_untrusted_proxy_headers: bool
    # logging
    log_socket_errors: bool
    log_untrusted_proxy_headers: bool
    access_log: Optional[str]
    access_log_format: str
    loglevel: Optional[str]
    errorlog: Optional[str]
    logconfig: Optional[str]
    logconfig_dict: Optional[dict[str, Any]]
    logconfig_json: Optional[str]
    # metrics
    metrics_listen: Optional[tuple[ListenAddress, ...]]
    statsd_host: Optional[tuple[str, int]]
    statsd_prefix: str
    dogstatsd_tags: str
    # workers
    workers: int
    reuse_port: bool
    preload_app: bool
    worker_timeout: float
    max_requests: int
    max_requests_jitter: int
    pidfile: Optional[str]
    proc_name: Optional[str]
    user: Optional[str]
    group: Optional[str]
    umask: Optional[int]
    chdir: Optional[str]
    # compat
    asyncore_loop_timeout: float
    send_bytes: int
    asyncore_use_poll: bool

    def __init__(self, **values: Any) -> None:
        """Same as :meth:`from_mapping`; raises :class:`ConfigError`."""
        object.__setattr__(self, "_values", _validate(values))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Validate ``values`` (Python objects or strings); raises :class:`ConfigError`.

        Settings left out take their defaults. Emits ``DeprecationWarning`` for
        deprecated settings that are given.
        """
        settings = cls.__new__(cls)
        object.__setattr__(settings, "_values", _validate(values))
        return settings

    def as_dict(self) -> dict[str, Any]:
        """Every setting's validated value in table order (``listen`` as derived)."""
        return dict(self._values)

    if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt setting is an error

        def __getattr__(self, name: str) -> Any:
            # Only called when normal lookup fails: the annotations make no attributes.
            if not name.startswith("_"):
                try:
                    return self._values[name]
                except KeyError:
                    pass
            raise AttributeError(f"no setting {name!r}{_did_you_mean(name)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Settings are read-only; build new ones with from_mapping()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Settings are read-only")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(SETTINGS_BY_NAME))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settings):
            return NotImplemented
        return bool(self._values == other._values)

    def __repr__(self) -> str:
        changed = [
            f"{name}={value!r}"
            for name, value in self._values.items()
            if name == "listen" or value != SETTINGS_BY_NAME[name].default
        ]
        return f"Settings({', '.join(changed)})"


# --------------------------------------------------------------------------- validation


def _validate(values: Mapping[str, Any]) -> dict[str, Any]:
    _reject_unknown_names(values)
    resolved: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in values:
            if setting.deprecated:
                warnings.warn(setting.deprecated, DeprecationWarning, stacklevel=3)
            resolved[setting.name] = setting.parse(values[setting.name])
        else:
            resolved[setting.name] = setting.default
    resolved["listen"] = _resolve_listen_tls(
        _derive_listen(values, resolved), resolved["certfile"] is not None
    )
    _check_conflicts(values, resolved)
    _check_tls(values, resolved)
    _apply_proxy_fallbacks(resolved)
    return resolved


def _did_you_mean(name: str) -> str:
    candidate = name.strip().lower().replace("-", "_")
    if candidate in SETTINGS_BY_NAME:
        return f"; did you mean {candidate!r}?"
    matches = difflib.get_close_matches(candidate, list(SETTINGS_BY_NAME), n=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _reject_unknown_names(values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if not isinstance(name, str):
            raise ConfigError(repr(name), value, "setting names must be strings")
        if name not in SETTINGS_BY_NAME:
            raise ConfigError(name, value, "unknown setting" + _did_you_mean(name))


def _derive_listen(given: Mapping[str, Any], resolved: Mapping[str, Any]) -> tuple[ListenAddress, ...]:
    if "listen" in given:
        addresses: tuple[ListenAddress, ...] = resolved["listen"]
        return addresses
    if resolved["sockets"] or resolved["fd"] or resolved["unix_socket"] is not None:
        return ()
    return (ListenAddress(_parse_host(resolved["host"]), resolved["port"]),)


def _resolve_listen_tls(
    addresses: tuple[ListenAddress, ...], has_certificate: bool
) -> tuple[ListenAddress, ...]:
    """Decide the bare entries: TLS when there is a certificate and no entry is written
    ``https://`` (gunicorn and uvicorn make every listener TLS when given a certificate),
    plain HTTP otherwise. Entries with a scheme keep it."""
    if not has_certificate or any(address.tls for address in addresses):
        return addresses
    return tuple(address if address.scheme_given else address.with_tls(True) for address in addresses)


def _check_tls(given: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
    """Checks between the TLS settings and the listeners; none of them reads a file."""
    name = "listen" if "listen" in given else "host"
    if resolved["certfile"] is None:
        tls_entries = [str(address) for address in resolved["listen"] if address.tls]
        if tls_entries:
            raise ConfigError(
                name, " ".join(tls_entries), "https:// listeners need certfile (and keyfile) to be set"
            )
        for other in (
            "keyfile",
            "keyfile_password",
            "ca_certs",
            "ciphers",
            "tls_minimum_version",
            "ssl_context",
        ):
            if other in given and resolved[other] is not None:
                raise ConfigError(other, given[other], "has no meaning without certfile")
        if resolved["cert_reqs"] != "none":
            raise ConfigError("cert_reqs", given["cert_reqs"], "has no meaning without certfile")
        return
    if resolved["listen"] and not any(address.tls for address in resolved["listen"]):
        raise ConfigError(
            "certfile", resolved["certfile"], f"no listener uses TLS: every {name} entry is written http://"
        )
    _check_duplicate_ports(name, resolved["listen"])
    _check_client_certificates(given, resolved)


def _check_duplicate_ports(name: str, addresses: Iterable[ListenAddress]) -> None:
    seen: dict[str, ListenAddress] = {}
    for address in addresses:
        if address.port == 0:
            continue  # each gets a port of its own
        earlier = seen.setdefault(address.host_port, address)
        if earlier is not address:
            raise ConfigError(
                name,
                f"{earlier} {address}",
                f"{address.host_port} is listed both as plain HTTP and as https://",
            )


def _check_client_certificates(given: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
    verifying = resolved["cert_reqs"] != "none"
    if verifying and resolved["ca_certs"] is None and resolved["ssl_context"] is None:
        raise ConfigError(
            "cert_reqs",
            resolved["cert_reqs"],
            "client certificates can only be verified against ca_certs; set ca_certs "
            "(or load the authorities in an ssl_context hook)",
        )
    if resolved["ca_certs"] is not None and not verifying:
        raise ConfigError(
            "ca_certs",
            resolved["ca_certs"],
            "has no effect while cert_reqs is none; set cert_reqs to optional or required",
        )


def _check_conflicts(given: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
    """Checks that involve more than one setting. ``given`` holds what the caller
    passed (an explicitly given default still counts), ``resolved`` every value."""
    tcp_given = [name for name in ("listen", "host", "port") if name in given]

    def fail(name: str, reason: str) -> NoReturn:
        raise ConfigError(name, given.get(name, resolved[name]), reason)

    if "listen" in given and len(tcp_given) > 1:
        fail("listen", "cannot be combined with host or port; give HOST:PORT entries")
    if resolved["sockets"] and (tcp_given or resolved["unix_socket"] is not None):
        others = tcp_given + (["unix_socket"] if resolved["unix_socket"] else [])
        fail("sockets", f"cannot be combined with {', '.join(others)}")
    if resolved["fd"] and (tcp_given or resolved["unix_socket"] is not None):
        others = tcp_given + (["unix_socket"] if resolved["unix_socket"] else [])
        fail("fd", f"inherited sockets (fd, systemd) cannot be combined with {', '.join(others)}")
    if resolved["unix_socket"] is not None and tcp_given:
        fail("unix_socket", f"cannot be combined with {', '.join(tcp_given)}")
    if not resolved["ipv4"] and not resolved["ipv6"]:
        fail("ipv4", "ipv4 and ipv6 cannot both be disabled")
    _check_address_families(given, resolved, fail)
    if resolved["trusted_proxy_count"] is not None and resolved["trusted_proxy"] is None:
        fail("trusted_proxy_count", "has no meaning without trusted_proxy")
    if resolved["trusted_proxy_headers"] and resolved["trusted_proxy"] is None:
        fail("trusted_proxy_headers", "has no meaning without trusted_proxy")
    if resolved["proxy_protocol"] != "off" and resolved["trusted_proxy"] is None:
        fail("proxy_protocol", "has no meaning without trusted_proxy")
    _check_logging_sources(resolved, fail)
    _check_worker_settings(resolved, fail)


def _check_logging_sources(resolved: Mapping[str, Any], fail: Callable[[str, str], NoReturn]) -> None:
    """One logging configuration at most, and errorlog only without one."""
    configurations = [name for name in ("logconfig", "logconfig_dict", "logconfig_json") if resolved[name]]
    if len(configurations) > 1:
        fail(
            configurations[1], f"cannot be combined with {configurations[0]}: give one logging configuration"
        )
    if configurations and resolved["errorlog"] is not None:
        fail("errorlog", f"cannot be combined with {configurations[0]}, which says where the log goes")


def _check_worker_settings(resolved: Mapping[str, Any], fail: Callable[[str, str], NoReturn]) -> None:
    """Settings of the worker processes that need a platform feature or TCP listeners."""
    if resolved["reuse_port"]:
        if not hasattr(socket, "SO_REUSEPORT"):
            fail("reuse_port", "SO_REUSEPORT is not available on this platform")
        for other in ("unix_socket", "fd", "sockets"):
            if resolved[other]:
                fail("reuse_port", f"cannot be combined with {other}: it binds a new socket per worker")
    if os.name == "nt":
        for name in ("user", "group", "umask", "preload_app"):
            if resolved[name] is not None and resolved[name] is not False:
                fail(name, "is not available on Windows")


def _check_address_families(
    given: Mapping[str, Any],
    resolved: Mapping[str, Any],
    fail: Callable[[str, str], NoReturn],
) -> None:
    name = "listen" if "listen" in given else "host"
    for address in resolved["listen"]:
        try:
            version = ipaddress.ip_address(address.host or "").version
        except ValueError:
            continue  # '*' or a host name: the listeners resolve it per enabled family
        if not resolved[f"ipv{version}"]:
            fail(
                name,
                f"{address} is an IPv{version} address but ipv{version} is disabled",
            )


def _apply_proxy_fallbacks(resolved: dict[str, Any]) -> None:
    # waitress resolves these the same way; the proxy code relies on the results.
    if resolved["trusted_proxy_count"] is None:
        resolved["trusted_proxy_count"] = 1
    # Not with the PROXY protocol: an L4 proxy relays the client's own headers untouched.
    if (
        resolved["trusted_proxy"] is not None
        and not resolved["trusted_proxy_headers"]
        and resolved["proxy_protocol"] == "off"
    ):
        warnings.warn(
            "trusted_proxy is set but trusted_proxy_headers is empty: trusting "
            "x-forwarded-proto only, for compatibility; set trusted_proxy_headers "
            "explicitly, this fallback will be removed",
            DeprecationWarning,
            stacklevel=4,
        )
        resolved["trusted_proxy_headers"] = frozenset({"x-forwarded-proto"})
