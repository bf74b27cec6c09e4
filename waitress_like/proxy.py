"""Trusted proxies: who may tell us the client's address, scheme and host, and what they said.

* :class:`TrustedProxies` is the parsed ``trusted_proxy`` setting (addresses, networks,
  ``localhost`` for unix-socket peers, or ``*``).
* :class:`ProxyPolicy` holds the proxy settings. A channel asks it once, at accept, whether
  its peer is trusted (:meth:`ProxyPolicy.is_trusted`) and for a PROXY protocol reader
  (:meth:`ProxyPolicy.preamble_reader`); the WSGI gateway asks it to rewrite each
  environ (:meth:`ProxyPolicy.apply`).
* :func:`parse_forwarded` reads RFC 7239 ``Forwarded``; the ``X-Forwarded-*`` headers are
  comma-separated lists read with the same hop rule: with ``trusted_proxy_count`` N, the
  value N entries from the right (the one the farthest trusted proxy added) is used, and
  entries to its left, which the client could have written, are never looked at.

Malformed values from a trusted proxy raise :class:`MalformedProxyHeader` (answered 400,
and the application is not called). Forwarding headers from a peer that is not trusted
are removed before the application sees them (``clear_untrusted_proxy_headers``).

Pure functions and value objects: no sockets, no threads, no settings module import.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any, Iterable, Mapping, MutableMapping, Optional, Union

from .errors import ConfigError, RemoteProtocolError
from .haproxy import ProxyProtocolReader
from .protocol.grammar import QUOTED_PAIR_RE, QUOTED_STRING, TOKEN

__all__ = [
    "FORWARDING_HEADERS",
    "ForwardedElement",
    "MalformedProxyHeader",
    "PROXY_PROTOCOL_MODES",
    "ProxyPolicy",
    "TrustedProxies",
    "parse_forwarded",
    "trusted_proxy_from_environment",
]

#: The environment variable gunicorn and uvicorn read their trusted proxies from.
FORWARDED_ALLOW_IPS = "FORWARDED_ALLOW_IPS"

log = logging.getLogger("waitress_like")

#: Setting name (``trusted_proxy_headers``) -> environ key of the header.
FORWARDING_HEADERS = {
    "forwarded": "HTTP_FORWARDED",
    "x-forwarded-for": "HTTP_X_FORWARDED_FOR",
    "x-forwarded-host": "HTTP_X_FORWARDED_HOST",
    "x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
    "x-forwarded-port": "HTTP_X_FORWARDED_PORT",
    "x-forwarded-by": "HTTP_X_FORWARDED_BY",
}
_HEADER_TITLES = {
    key: "-".join(part.capitalize() for part in key[5:].split("_")) for key in FORWARDING_HEADERS.values()
}
_DEFAULT_PORTS = {"http": "80", "https": "443"}

#: Values of the ``proxy_protocol`` setting (see :meth:`ProxyPolicy.preamble_reader`).
PROXY_PROTOCOL_MODES = ("off", "v1", "v2", "auto")


class MalformedProxyHeader(RemoteProtocolError):
    """A trusted proxy sent a forwarding header we cannot read: answer 400, skip the app.

    ``header`` names the header (``"X-Forwarded-For"``), ``value`` is what it held.
    """

    status_hint = 400

    def __init__(self, header: str, reason: str, value: str) -> None:
        super().__init__(f"malformed {header} header: {reason}")
        self.header = header
        self.reason = reason
        self.value = value


# --------------------------------------------------------------------------- trust


class TrustedProxies:
    """The peers whose forwarding information is believed. Immutable.

    Parsed from ``"*"`` (every peer) or from addresses and networks separated by commas
    or spaces (``"127.0.0.1, 10.0.0.0/8, ::1"``), where ``localhost`` stands for peers on
    a unix socket. Host names are refused: resolving them would be I/O at settings time,
    and a peer is only ever known by its address.
    """

    __slots__ = ("any_peer", "unix_peers", "networks")

    any_peer: bool
    unix_peers: bool
    networks: tuple[Union[ipaddress.IPv4Network, ipaddress.IPv6Network], ...]

    def __init__(
        self,
        *,
        any_peer: bool = False,
        unix_peers: bool = False,
        networks: Iterable[Union[ipaddress.IPv4Network, ipaddress.IPv6Network]] = (),
    ) -> None:
        object.__setattr__(self, "any_peer", any_peer)
        object.__setattr__(self, "unix_peers", unix_peers)
        object.__setattr__(self, "networks", tuple(dict.fromkeys(networks)))

    @classmethod
    def parse(cls, value: Any) -> TrustedProxies:
        """Parse the setting's text (or a list of entries); raises ``ValueError``."""
        if isinstance(value, TrustedProxies):
            return value
        if isinstance(value, str):
            entries = [value]
        elif isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
            entries = list(value)
        else:
            raise TypeError("expected addresses or networks separated by commas or spaces, or '*'")
        words = []
        for entry in entries:
            if not isinstance(entry, str):
                raise TypeError(f"expected address strings, got {entry!r}")
            words += entry.replace(",", " ").split()
        if not words:
            raise ValueError("expected at least one address or network, or '*'")
        if "*" in words:
            if len(words) > 1:
                raise ValueError("'*' trusts every peer and cannot be combined with other entries")
            return cls(any_peer=True)
        unix_peers = False
        networks = []
        for word in words:
            if word.lower() == "localhost":
                unix_peers = True
            else:
                networks.append(_parse_network(word))
        return cls(unix_peers=unix_peers, networks=networks)

    def contains(self, peer_host: str, is_unix: bool) -> bool:
        """True if a peer at ``peer_host`` (an IP address text) is trusted."""
        if self.any_peer:
            return True
        if is_unix:
            return self.unix_peers
        try:
            address = ipaddress.ip_address(peer_host.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
        return any(address in network for network in self.networks)

    def __str__(self) -> str:
        if self.any_peer:
            return "*"
        words = ["localhost"] if self.unix_peers else []
        words += [
            str(network) if network.prefixlen != network.max_prefixlen else str(network.network_address)
            for network in self.networks
        ]
        return ", ".join(words)

    def __repr__(self) -> str:
        return f"TrustedProxies({str(self)!r})"

    def _key(self) -> tuple[bool, bool, frozenset[Any]]:
        return self.any_peer, self.unix_peers, frozenset(self.networks)

    def __eq__(self, other: object) -> bool:
        # Equal to the text it was parsed from, so ``settings.trusted_proxy == "*"`` holds
        # as it does with waitress's plain string.
        if isinstance(other, str):
            try:
                other = TrustedProxies.parse(other)
            except (TypeError, ValueError):
                return False
        if not isinstance(other, TrustedProxies):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TrustedProxies is immutable")


def trusted_proxy_from_environment(settings: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``settings`` with ``trusted_proxy`` taken from ``FORWARDED_ALLOW_IPS`` when not given.

    A ``trusted_proxy`` the caller gave, even None or empty, wins over the environment.
    Raises :class:`~waitress_like.errors.ConfigError` naming the variable for a bad value.
    """
    text = environ.get(FORWARDED_ALLOW_IPS, "").strip()
    if "trusted_proxy" in settings or not text:
        return settings
    try:
        TrustedProxies.parse(text)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            "trusted_proxy", text, f"from the {FORWARDED_ALLOW_IPS} environment variable: {error}"
        ) from None
    return {**settings, "trusted_proxy": text}


_BRACKETED_NETWORK = re.compile(r"\[([^\]]*)\](/[0-9]+)?")


def _parse_network(word: str) -> Union[ipaddress.IPv4Network, ipaddress.IPv6Network]:
    bracketed = _BRACKETED_NETWORK.fullmatch(word)
    text = bracketed.group(1) + (bracketed.group(2) or "") if bracketed else word
    try:
        return ipaddress.ip_network(text)
    except ValueError as error:
        if "/" in text and "host bits set" in str(error):
            raise ValueError(
                f"{word!r} has host bits set; did you mean {ipaddress.ip_network(text, strict=False)}?"
            ) from None
        raise ValueError(
            f"{word!r} is not an IP address or network (such as 10.0.0.0/8), 'localhost' or '*'; "
            "host names are not resolved"
        ) from None


class ProxyPolicy:
    """The proxy settings of one server, read-only and shared by every thread.

    ``trusted_proxies`` None trusts no peer. ``protocol`` is the ``proxy_protocol``
    setting: ``off``, ``v1``, ``v2`` or ``auto``.
    """

    __slots__ = (
        "trusted_proxies",
        "trusted_count",
        "trusted_headers",
        "clear_untrusted",
        "log_untrusted",
        "protocol",
        "_untrusted_when_trusted",
    )

    def __init__(
        self,
        trusted_proxies: Optional[TrustedProxies],
        *,
        trusted_count: int = 1,
        trusted_headers: Iterable[str] = (),
        clear_untrusted: bool = True,
        log_untrusted: bool = False,
        protocol: str = "off",
    ) -> None:
        if trusted_count < 1:
            raise ValueError("trusted_count must be at least 1")
        if protocol not in PROXY_PROTOCOL_MODES:
            raise ValueError(f"protocol must be one of {', '.join(PROXY_PROTOCOL_MODES)}, not {protocol!r}")
        self.trusted_proxies = trusted_proxies
        self.trusted_count = trusted_count
        self.trusted_headers = frozenset(trusted_headers)
        unknown = self.trusted_headers - FORWARDING_HEADERS.keys()
        if unknown:
            raise ValueError(f"unknown forwarding headers {sorted(unknown)}")
        self.clear_untrusted = clear_untrusted
        self.log_untrusted = log_untrusted
        self.protocol = protocol
        self._untrusted_when_trusted = tuple(
            key for name, key in FORWARDING_HEADERS.items() if name not in self.trusted_headers
        )

    @classmethod
    def from_settings(cls, settings: Any) -> ProxyPolicy:
        """Build from a :class:`~waitress_like.config.Settings`."""
        trusted = settings.trusted_proxy
        if isinstance(trusted, str):  # tolerate a plain string, as waitress stores it
            trusted = TrustedProxies.parse(trusted)
        return cls(
            trusted,
            trusted_count=settings.trusted_proxy_count,
            trusted_headers=settings.trusted_proxy_headers,
            clear_untrusted=settings.clear_untrusted_proxy_headers,
            log_untrusted=settings.log_untrusted_proxy_headers,
            protocol=settings.proxy_protocol,
        )

    @property
    def rewrites_environ(self) -> bool:
        """False when :meth:`apply` would never change or log anything."""
        return self.trusted_proxies is not None or self.clear_untrusted or self.log_untrusted

    def is_trusted(self, peer_host: str, is_unix: bool) -> bool:
        """Any thread: is a peer at ``peer_host`` (or on a unix socket) a trusted proxy?"""
        return self.trusted_proxies is not None and self.trusted_proxies.contains(peer_host, is_unix)

    def preamble_reader(self, trusted: bool) -> Optional[ProxyProtocolReader]:
        """A reader for the start of a new connection, or None when there is nothing to read.

        A trusted peer must send the header with ``v1``/``v2`` and may with ``auto``. For
        any other peer the reader only spots a header (of either version) so that the
        connection can be closed: only trusted peers may name another client.
        """
        if self.protocol == "off":
            return None
        if trusted:
            return ProxyProtocolReader(self.protocol, required=self.protocol != "auto")
        return ProxyProtocolReader("auto", required=False)

    # -- the environ ---------------------------------------------------------------------

    def apply(self, environ: MutableMapping[str, Any], trusted: bool) -> None:
        """Worker thread: rewrite ``environ`` from the trusted forwarding headers.

        ``trusted`` says whether the connection's peer is a trusted proxy. Sets
        ``REMOTE_ADDR``/``REMOTE_PORT``, ``HTTP_HOST``, ``SERVER_NAME``/``SERVER_PORT`` and
        ``wsgi.url_scheme`` from what the trusted headers say, and removes (and/or logs)
        the forwarding headers that are not trusted. Raises :class:`MalformedProxyHeader`.
        """
        if trusted and self.trusted_proxies is not None:
            _apply_trusted(environ, self.trusted_headers, self.trusted_count)
            untrusted = self._untrusted_when_trusted
        else:
            untrusted = _ALL_HEADER_KEYS
        present = [key for key in untrusted if key in environ]
        if not present:
            return
        if self.log_untrusted:
            log.warning(
                "%s untrusted forwarding headers from %s: %s",
                "removed" if self.clear_untrusted else "received",
                environ.get("REMOTE_ADDR", "?"),
                ", ".join(_HEADER_TITLES[key] for key in present),
            )
        if self.clear_untrusted:
            for key in present:
                del environ[key]


_ALL_HEADER_KEYS = tuple(FORWARDING_HEADERS.values())


# --------------------------------------------------------------------------- applying


class _Forwarded:
    """What the trusted headers say, before it is applied to the environ."""

    __slots__ = ("client", "host", "proto", "port")

    def __init__(self) -> None:
        self.client: Optional[tuple[str, Optional[str]]] = None  # (address, port or None)
        self.host: Optional[str] = None
        self.proto: Optional[str] = None
        self.port: Optional[str] = None


def _apply_trusted(environ: MutableMapping[str, Any], headers: frozenset[str], count: int) -> None:
    said = _Forwarded()
    if "forwarded" in headers:
        _read_forwarded(environ, count, said)
    else:
        _read_x_forwarded(environ, headers, count, said)
    port = said.port
    if said.proto is not None:
        environ["wsgi.url_scheme"] = said.proto
        if port is None:
            port = _DEFAULT_PORTS[said.proto]
    if said.host is not None:
        name, host_port = _split_host(said.host)
        environ["SERVER_NAME"] = name
        if host_port is not None:
            port = host_port  # the port in the host wins over X-Forwarded-Port and the scheme's
            environ["HTTP_HOST"] = said.host
        elif port is None or port == _DEFAULT_PORTS.get(environ["wsgi.url_scheme"]):
            environ["HTTP_HOST"] = said.host
        else:
            environ["HTTP_HOST"] = f"{said.host}:{port}"
    if port is not None:
        environ["SERVER_PORT"] = port
    if said.client is not None:
        address, client_port = said.client
        environ["REMOTE_ADDR"] = address
        if client_port is not None:
            environ["REMOTE_PORT"] = client_port
        else:
            # The peer's port belongs to the proxy's connection, not to this client.
            environ.pop("REMOTE_PORT", None)


def _read_forwarded(environ: MutableMapping[str, Any], count: int, said: _Forwarded) -> None:
    raw = environ.get("HTTP_FORWARDED")
    if raw is None:
        return
    elements = parse_forwarded(raw)[-count:]
    environ["HTTP_FORWARDED"] = ", ".join(element.text for element in elements)
    # Every trusted element is checked; for each parameter the oldest (leftmost) trusted
    # element that has it wins: later proxies may rewrite host and proto on their way in.
    for element in reversed(elements):
        if element.for_ is not None:
            said.client = _parse_node(element.for_, "Forwarded", raw, bare_ipv6=True)
        if element.host is not None:
            said.host = _check_host(element.host, "Forwarded", raw)
        if element.proto is not None:
            said.proto = _check_proto(element.proto, "Forwarded", raw)


def _read_x_forwarded(
    environ: MutableMapping[str, Any], headers: frozenset[str], count: int, said: _Forwarded
) -> None:
    value = _trusted_hop(environ, "x-forwarded-for", headers, count)
    if value is not None:
        said.client = _parse_node(value, "X-Forwarded-For", environ["HTTP_X_FORWARDED_FOR"], bare_ipv6=True)
    value = _trusted_hop(environ, "x-forwarded-host", headers, count)
    if value is not None:
        said.host = _check_host(value, "X-Forwarded-Host", environ["HTTP_X_FORWARDED_HOST"])
    value = _trusted_hop(environ, "x-forwarded-proto", headers, count)
    if value is not None:
        said.proto = _check_proto(value, "X-Forwarded-Proto", environ["HTTP_X_FORWARDED_PROTO"])
    value = _trusted_hop(environ, "x-forwarded-port", headers, count)
    if value is not None:
        said.port = _check_port(value, "X-Forwarded-Port", environ["HTTP_X_FORWARDED_PORT"])


def _trusted_hop(
    environ: MutableMapping[str, Any], name: str, headers: frozenset[str], count: int
) -> Optional[str]:
    """The entry ``count`` hops from the right of a trusted list header, or None.

    The header is cut down to its trusted entries, so the application never reads what
    the client itself wrote on the left. A header with an empty value counts as absent.
    """
    key = FORWARDING_HEADERS[name]
    raw = environ.get(key)
    if name not in headers or raw is None or not raw.strip():
        return None
    entries = [entry.strip(" \t") for entry in raw.split(",")[-count:]]
    if not all(entries):
        raise MalformedProxyHeader(_HEADER_TITLES[key], "empty list entry", raw)
    environ[key] = ", ".join(entries)
    entry = entries[0]
    if entry.startswith('"'):
        if not _QUOTED_STRING.fullmatch(entry):
            raise MalformedProxyHeader(_HEADER_TITLES[key], "unterminated quoted string", raw)
        entry = _unquote(entry)
    return entry


# --------------------------------------------------------------------------- RFC 7239

# RFC 9110 5.6.2 token; 5.6.4 quoted-string (qdtext and quoted-pair, obs-text included).
_QUOTED_STRING = re.compile(QUOTED_STRING)
_PAIR = re.compile(rf"({TOKEN})=({TOKEN}|{QUOTED_STRING})")
_OWS = re.compile(r"[ \t]*")
_QUOTED_PAIR = QUOTED_PAIR_RE


class ForwardedElement:
    """One ``forwarded-element`` of a ``Forwarded`` header (RFC 7239 section 4).

    Parameters are unquoted; absent ones are None. ``text`` is the element as sent, so a
    header can be cut down to its trusted elements. Unknown parameters are kept in
    ``extensions``.
    """

    __slots__ = ("for_", "by", "host", "proto", "extensions", "text")

    def __init__(self, parameters: dict[str, str], text: str) -> None:
        self.for_ = parameters.pop("for", None)
        self.by = parameters.pop("by", None)
        self.host = parameters.pop("host", None)
        self.proto = parameters.pop("proto", None)
        self.extensions = parameters
        self.text = text

    def __repr__(self) -> str:
        return f"ForwardedElement({self.text!r})"


def parse_forwarded(value: str) -> list[ForwardedElement]:
    """Split a ``Forwarded`` value into its elements, left (oldest) to right.

    RFC 7239 section 4: ``1#forwarded-element``, each ``[pair] *(";" [pair])`` with
    ``pair = token "=" (token / quoted-string)``; a parameter may occur once per element
    and names are case-insensitive. Whitespace is allowed around ``,`` (the list rule)
    and, leniently, around ``;``, but not around ``=``. Empty list elements are skipped
    (RFC 9110 5.6.1). One left-to-right pass: linear in the value's length. Raises
    :class:`MalformedProxyHeader`.
    """
    elements: list[ForwardedElement] = []
    parameters: dict[str, str] = {}
    size = len(value)
    position = _skip_ows(value, 0)
    element_start = position
    element_end = position
    while position < size:
        character = value[position]
        if character == "," or character == ";":
            if character == ",":
                if parameters:
                    elements.append(ForwardedElement(parameters, value[element_start:element_end]))
                    parameters = {}
                element_start = _skip_ows(value, position + 1)
            position = _skip_ows(value, position + 1)
            continue
        match = _PAIR.match(value, position)
        if match is None:
            raise MalformedProxyHeader("Forwarded", f"expected name=value at offset {position}", value)
        name = match.group(1).lower()
        if name in parameters:
            raise MalformedProxyHeader("Forwarded", f"parameter {name!r} repeated in one element", value)
        parameters[name] = _unquote(match.group(2))
        element_end = match.end()
        position = _skip_ows(value, element_end)
        if position < size and value[position] not in ",;":
            raise MalformedProxyHeader("Forwarded", f"expected ';' or ',' at offset {position}", value)
    if parameters:
        elements.append(ForwardedElement(parameters, value[element_start:element_end]))
    return elements


def _skip_ows(value: str, position: int) -> int:
    """The position after the spaces and tabs that start at ``position``."""
    match = _OWS.match(value, position)
    return match.end() if match is not None else position


def _unquote(text: str) -> str:
    if text.startswith('"'):
        return _QUOTED_PAIR.sub(r"\1", text[1:-1])
    return text


# --------------------------------------------------------------------------- values

_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
_OBFUSCATED = r"_[A-Za-z0-9._-]+"
# RFC 7239 section 6: node = nodename [":" node-port].
_NODE = re.compile(
    rf"(?P<name>{_IPV4}|\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|unknown|{_OBFUSCATED})"
    rf"(?::(?P<port>[0-9]{{1,5}}|{_OBFUSCATED}))?",
    re.IGNORECASE,
)
# RFC 3986 host (without the list and parameter separators "," and ";") [":" port].
_HOST = re.compile(
    r"(?P<name>\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?:[A-Za-z0-9\-._~!$&'()*+=]|%[0-9A-Fa-f]{2})+)"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_PORT = re.compile(r"[0-9]{1,5}")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return "%" not in text


def _valid_port(text: str) -> bool:
    return 0 < int(text) <= 65535


def _parse_node(text: str, header: str, raw: str, *, bare_ipv6: bool) -> tuple[str, Optional[str]]:
    """``for=`` / X-Forwarded-For entry -> (address, numeric port or None).

    The address keeps obfuscated identifiers (``_hidden``) and ``unknown`` as they are,
    since that is what the proxy knows; brackets around IPv6 are dropped. A bare IPv6
    address (no brackets, so no port) is accepted when ``bare_ipv6``: it is unambiguous,
    and what ``$remote_addr`` gives in a proxy configuration.
    """
    match = _NODE.fullmatch(text)
    if match is not None:
        ipv6 = match.group("ipv6")
        if ipv6 is not None and not _is_ipv6(ipv6):
            raise MalformedProxyHeader(header, f"invalid IPv6 address {ipv6!r}", raw)
        port = match.group("port")
        if port is not None and not port.startswith("_"):
            if not _valid_port(port):
                raise MalformedProxyHeader(header, f"invalid port {port!r}", raw)
        else:
            port = None  # no port, or an obfuscated one: either way not a number to report
        return (ipv6 if ipv6 is not None else match.group("name")), port
    if bare_ipv6 and _is_ipv6(text) and ":" in text:
        return text, None
    raise MalformedProxyHeader(header, f"invalid client address {text!r}", raw)


def _check_host(text: str, header: str, raw: str) -> str:
    match = _HOST.fullmatch(text)
    if match is None:
        raise MalformedProxyHeader(header, f"invalid host {text!r}", raw)
    ipv6 = match.group("ipv6")
    if ipv6 is not None and not _is_ipv6(ipv6):
        raise MalformedProxyHeader(header, f"invalid IPv6 address {ipv6!r}", raw)
    port = match.group("port")
    if port is not None and not _valid_port(port):
        raise MalformedProxyHeader(header, f"invalid port {port!r}", raw)
    return text


def _split_host(host: str) -> tuple[str, Optional[str]]:
    """A checked host -> (name, port or None); IPv6 names keep their brackets."""
    name, colon, port = host.rpartition(":")
    if colon and not port.endswith("]"):
        return name, str(int(port))
    return host, None


def _check_proto(text: str, header: str, raw: str) -> str:
    proto = text.lower()
    if proto not in _DEFAULT_PORTS:
        raise MalformedProxyHeader(header, f"unsupported scheme {text!r}, expected http or https", raw)
    return proto


def _check_port(text: str, header: str, raw: str) -> str:
    if not _PORT.fullmatch(text) or not _valid_port(text):
        raise MalformedProxyHeader(header, f"invalid port {text!r}", raw)
    return str(int(text))
