"""What one TLS connection tells the application, and how its first bytes are told apart.

After a handshake the channel calls :func:`connection_info` once (loop thread) and keeps
the :class:`TLSConnectionInfo` for every request of the connection:

* :attr:`TLSConnectionInfo.environ` holds the WSGI environ keys, named as Apache's
  mod_ssl names them (``HTTPS``, ``SSL_PROTOCOL``, ``SSL_CLIENT_CERT``...), plus
  ``wsgi.url_scheme`` = ``https``. Trusted-proxy rules are applied after these.
* :meth:`TLSConnectionInfo.asgi_extension` is the ``tls`` entry of an ASGI scope's
  ``extensions``, as the ASGI TLS extension (version 0.2) defines it.

Distinguished names are written as RFC 4514 (RFC 2253) strings, most specific part
first (``CN=alice,O=Example,C=SE``): the format mod_ssl uses since 2.3.11 and the one
the ASGI extension asks for.

:func:`looks_like_plaintext_http` decides from a connection's first byte whether a
client spoke plain HTTP to a TLS listener, so the channel can answer it at once.

Nothing here does I/O: the functions read an ``ssl.SSLObject``/``ssl.SSLSocket`` whose
handshake is complete, or bytes already received.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

__all__ = [
    "PLAINTEXT_HTTP_DETAIL",
    "TLS_ENVIRON_KEY",
    "TLS_VERSION_NUMBERS",
    "TLSConnectionInfo",
    "cipher_suite_ids",
    "connection_info",
    "distinguished_name",
    "looks_like_plaintext_http",
    "looks_like_tls_handshake",
]

#: Protocol names as ``SSLObject.version()`` gives them -> the numbers of the TLS RFCs.
TLS_VERSION_NUMBERS: Mapping[str, int] = {
    "TLSv1": 0x0301,
    "TLSv1.1": 0x0302,
    "TLSv1.2": 0x0303,
    "TLSv1.3": 0x0304,
}

#: The environ key under which a TLS request carries its :class:`TLSConnectionInfo`
#: (the ASGI adapter builds ``scope["extensions"]["tls"]`` from it).
TLS_ENVIRON_KEY = "waitress_like.tls"

#: The body of the 400 answer to plain HTTP on a TLS listener (nginx answers the same).
PLAINTEXT_HTTP_DETAIL = "The plain HTTP request was sent to an HTTPS port."

# RFC 8446 section 5.1: every TLS client starts with a handshake record (content type 22).
_HANDSHAKE_RECORD = 0x16
# The first byte of an HTTP/1.x request: a method's token character (RFC 9110 section
# 5.6.2), or the CR/LF that RFC 9112 section 2.2 lets a client send before it.
_HTTP_FIRST_BYTES = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\r\n"
)

# OpenSSL's long attribute names (what getpeercert() gives) -> the short names of RFC
# 4514 section 3 and of OpenSSL's RFC 2253 output; other names are written as given.
_SHORT_NAMES: Mapping[str, str] = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
    "surname": "SN",
    "givenName": "GN",
}

# RFC 4514 section 2.4: characters escaped with a backslash anywhere in a value.
_ESCAPED = frozenset(',+"\\<>;')

SSLConnection = Union[ssl.SSLObject, ssl.SSLSocket]


def looks_like_plaintext_http(first_bytes: bytes) -> bool:
    """True when a connection to a TLS listener starts as plain HTTP does.

    One byte decides: a TLS client's first byte is always 0x16, which no request line
    starts with. Empty input (nothing received yet) is False.
    """
    return bool(first_bytes) and first_bytes[0] in _HTTP_FIRST_BYTES


def looks_like_tls_handshake(first_bytes: bytes) -> bool:
    """True when the first byte is that of a TLS handshake record (a ClientHello)."""
    return bool(first_bytes) and first_bytes[0] == _HANDSHAKE_RECORD


def distinguished_name(rdns: Sequence[Sequence[tuple[str, str]]]) -> str:
    """An X.509 name as ``getpeercert()`` gives it (``subject``/``issuer``) -> RFC 4514.

    The relative names are written in reverse order (most specific first), separated by
    commas; the parts of a multi-valued one are joined with ``+``. Values are escaped as
    RFC 4514 section 2.4 says, control characters as ``\\XX`` hex pairs of their UTF-8.
    """
    return ",".join(
        "+".join(f"{_SHORT_NAMES.get(name, name)}={_escape_value(value)}" for name, value in rdn)
        for rdn in reversed(rdns)
    )


def _escape_value(value: str) -> str:
    parts = []
    for character in value:
        if character in _ESCAPED:
            parts.append("\\" + character)
        elif character < " " or character == "\x7f":
            parts.append("".join(f"\\{byte:02X}" for byte in character.encode()))
        else:
            parts.append(character)
    if parts and parts[0] in (" ", "#"):
        parts[0] = "\\" + parts[0]
    if len(value) > 1 and parts[-1] == " ":
        parts[-1] = "\\ "
    return "".join(parts)


def cipher_suite_ids(context: ssl.SSLContext) -> dict[str, int]:
    """OpenSSL cipher name -> IANA cipher suite number, for the suites ``context`` offers.

    OpenSSL reports each suite's id with 0x0300 in the upper bytes; the low 16 bits are
    the two bytes of the TLS registry (``TLS_AES_128_GCM_SHA256`` -> 0x1301).
    """
    return {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}


class TLSConnectionInfo:
    """The facts of one finished handshake. Immutable; any thread may read it.

    ``environ`` is shared by every request of the connection: copy it into the environ
    (``environ.update(info.environ)``), never change it.
    """

    __slots__ = (
        "protocol",
        "cipher",
        "cipher_bits",
        "cipher_suite",
        "alpn_protocol",
        "server_cert_pem",
        "client_cert_chain",
        "client_subject",
        "client_issuer",
        "environ",
    )

    def __init__(
        self,
        *,
        protocol: str,
        cipher: str,
        cipher_bits: int,
        cipher_suite: Optional[int],
        alpn_protocol: Optional[str],
        server_cert_pem: Optional[str],
        client_cert_chain: tuple[str, ...],
        client_subject: Optional[str],
        client_issuer: Optional[str],
        client_fields: Mapping[str, str],
    ) -> None:
        self.protocol = protocol
        self.cipher = cipher
        self.cipher_bits = cipher_bits
        self.cipher_suite = cipher_suite
        self.alpn_protocol = alpn_protocol
        self.server_cert_pem = server_cert_pem
        self.client_cert_chain = client_cert_chain
        self.client_subject = client_subject
        self.client_issuer = client_issuer
        self.environ: Mapping[str, str] = self._environ(client_fields)

    @property
    def tls_version(self) -> Optional[int]:
        """The protocol as its RFC numbers it (0x0303 for TLS 1.2), None if unknown."""
        return TLS_VERSION_NUMBERS.get(self.protocol)

    def _environ(self, client_fields: Mapping[str, str]) -> dict[str, str]:
        environ = {
            "wsgi.url_scheme": "https",
            "HTTPS": "on",
            "SSL_PROTOCOL": self.protocol,
            "SSL_CIPHER": self.cipher,
            "SSL_CIPHER_USEKEYSIZE": str(self.cipher_bits),
            "SSL_CLIENT_VERIFY": "SUCCESS" if self.client_subject is not None else "NONE",
        }
        if self.client_cert_chain:
            environ["SSL_CLIENT_CERT"] = self.client_cert_chain[0]
            for index, pem in enumerate(self.client_cert_chain[1:]):
                environ[f"SSL_CLIENT_CERT_CHAIN_{index}"] = pem
        if self.client_subject is not None:
            environ["SSL_CLIENT_S_DN"] = self.client_subject
        if self.client_issuer is not None:
            environ["SSL_CLIENT_I_DN"] = self.client_issuer
        environ.update(client_fields)
        return environ

    def asgi_extension(self) -> dict[str, Any]:
        """A new ``scope["extensions"]["tls"]`` dict (the application may change it)."""
        return {
            "server_cert": self.server_cert_pem,
            "client_cert_chain": list(self.client_cert_chain),
            "client_cert_name": self.client_subject,
            # A certificate that fails verification fails the handshake (the ssl module
            # has no "verify but continue" mode), so a connection never carries an error.
            "client_cert_error": None,
            "tls_version": self.tls_version,
            "cipher_suite": self.cipher_suite,
        }

    def __repr__(self) -> str:
        client = f" client={self.client_subject!r}" if self.client_subject is not None else ""
        return f"<TLSConnectionInfo {self.protocol} {self.cipher}{client}>"


def connection_info(
    connection: SSLConnection,
    *,
    server_cert_pem: Optional[str] = None,
    cipher_ids: Optional[Mapping[str, int]] = None,
) -> TLSConnectionInfo:
    """Read what the application may see from a connection whose handshake is complete.

    ``server_cert_pem`` is the certificate the server sent, when the caller knows it (the
    ssl module cannot tell); ``cipher_ids`` maps cipher names to suite numbers (from
    :func:`cipher_suite_ids`), else they are read from the connection's context.
    Loop thread; no I/O.
    """
    cipher, _protocol, bits = connection.cipher() or ("", "", 0)
    if cipher_ids is None:
        cipher_ids = cipher_suite_ids(connection.context)
    chain = _client_chain(connection)
    # getpeercert() is only filled in for a verified certificate.
    details: Optional[dict[str, Any]] = connection.getpeercert() if chain else None
    return TLSConnectionInfo(
        protocol=connection.version() or "",
        cipher=cipher,
        cipher_bits=bits or 0,
        cipher_suite=cipher_ids.get(cipher),
        alpn_protocol=connection.selected_alpn_protocol(),
        server_cert_pem=server_cert_pem,
        client_cert_chain=chain,
        client_subject=distinguished_name(details["subject"]) if details else None,
        client_issuer=distinguished_name(details["issuer"]) if details else None,
        client_fields=_client_fields(details) if details else {},
    )


def _client_fields(details: Mapping[str, Any]) -> dict[str, str]:
    # mod_ssl's names; OpenSSL writes the times as mod_ssl does ("Jan  1 00:00:00 2030 GMT").
    fields = {
        "SSL_CLIENT_M_SERIAL": details.get("serialNumber"),
        "SSL_CLIENT_M_VERSION": str(details["version"]) if "version" in details else None,
        "SSL_CLIENT_V_START": details.get("notBefore"),
        "SSL_CLIENT_V_END": details.get("notAfter"),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _client_chain(connection: SSLConnection) -> tuple[str, ...]:
    """The client's certificate and the chain it sent, as PEM; empty without one."""
    leaf = connection.getpeercert(binary_form=True)
    if not leaf:
        return ()
    sent = [_as_der(certificate) for certificate in _unverified_chain(connection)]
    # OpenSSL leaves the client's own certificate out of the chain a server sees.
    if not sent or sent[0] != leaf:
        sent.insert(0, leaf)
    return tuple(ssl.DER_cert_to_PEM_cert(der) for der in sent)


def _unverified_chain(connection: SSLConnection) -> list[Any]:
    # Public from Python 3.13 (DER bytes); on 3.10-3.12 the same method is on the private
    # _sslobj (Certificate objects). Without either, only the client's own certificate.
    method = getattr(connection, "get_unverified_chain", None)
    if method is None:
        method = getattr(getattr(connection, "_sslobj", None), "get_unverified_chain", None)
    return list(method() or ()) if method is not None else []


def _as_der(certificate: Any) -> bytes:
    if isinstance(certificate, bytes):
        return certificate
    return bytes(certificate.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
