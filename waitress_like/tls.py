"""The server's TLS context: built from the settings, checked at start-up, reloadable.

:func:`create_context_holder` is what the server calls once, before it binds: it returns
None when no listener serves TLS, else a :class:`TLSContextHolder` whose
:meth:`~TLSContextHolder.current` is the :class:`ServerTLS` to start new connections
with. :meth:`~TLSContextHolder.reload` reads the certificate files again (a certbot or
ACME renewal) and swaps the context for new connections; open connections keep theirs.

The default context (:func:`default_context`) is a ``PROTOCOL_TLS_SERVER`` context with
``tls_minimum_version`` (TLS 1.2 unless set), the ``ciphers`` list, no compression, the
server's cipher order, no renegotiation, ALPN ``http/1.1``, the certificate chain and key,
and, with ``cert_reqs``, the client-certificate authorities. The ``ssl_context`` hook may
then adjust or replace it, with gunicorn's signature::

    def ssl_context(settings, default_ssl_context_factory):
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context

Every failure is a :class:`~waitress_like.errors.ConfigError` that names the setting and
the file: a missing or unreadable file, a file that holds no certificate or no key, a
key that does not match the certificate, a missing or wrong ``keyfile_password``,
unknown ``ciphers``, a hook that cannot be imported, raises or returns no server context.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, Optional

from .errors import ConfigError, describe_exception
from .importer import AppLoadError, AppNotCallableError, load_application
from .tlsinfo import SSLConnection, TLSConnectionInfo, cipher_suite_ids, connection_info

if TYPE_CHECKING:
    from .config import Settings

__all__ = [
    "ALPN_PROTOCOLS",
    "ContextHook",
    "ServerTLS",
    "TLSContextHolder",
    "build_server_tls",
    "create_context_holder",
    "default_context",
    "load_context_hook",
]

#: Offered in ALPN, most preferred first; "h2" goes in front once HTTP/2 is served.
ALPN_PROTOCOLS = ("http/1.1",)

#: ``ssl_context(settings, default_ssl_context_factory) -> ssl.SSLContext``
ContextHook = Callable[["Settings", Callable[[], ssl.SSLContext]], ssl.SSLContext]

_MINIMUM_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_VERIFY_MODES = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}

# Compression invites CRIME; the server's cipher order keeps the strongest suite first;
# fresh (EC)DH keys per handshake; renegotiation (TLS <= 1.2) is a cheap CPU attack and
# has no use for HTTP/1.1 here. OP_NO_RENEGOTIATION needs OpenSSL 1.1.0h.
_HARDENING_OPTIONS = (
    ssl.OP_NO_COMPRESSION
    | ssl.OP_CIPHER_SERVER_PREFERENCE
    | ssl.OP_SINGLE_DH_USE
    | ssl.OP_SINGLE_ECDH_USE
    | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
)

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----.+?-----END (?:TRUSTED |X509 )?CERTIFICATE-----", re.S
)
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(.+?)-----END", re.S)


class _NoPassword(Exception):
    """Raised from the password callback so OpenSSL never prompts on the terminal."""


# --------------------------------------------------------------------------- files


def _fail(setting: str, value: Any, reason: str) -> NoReturn:
    raise ConfigError(setting, value, reason)


def _read_file(setting: str, path: str) -> bytes:
    """The whole file, or a ConfigError naming the setting, the file and the reason."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        _fail(setting, path, f"no such file: {path}")
    except IsADirectoryError:
        _fail(setting, path, f"{path} is a directory, not a PEM file")
    except PermissionError:
        _fail(setting, path, f"cannot read {path}: permission denied (for user id {_user_id()})")
    except OSError as error:
        _fail(setting, path, f"cannot read {path}: {error.strerror or describe_exception(error)}")


def _user_id() -> str:
    getuid = getattr(os, "getuid", None)
    return str(getuid()) if getuid is not None else "this user"


def _certificate_blocks(path: str, data: bytes) -> list[bytes]:
    """The PEM certificates in ``certfile``, each checked to parse; raises ConfigError."""
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        hint = ""
        if _PEM_PRIVATE_KEY.search(data):
            hint = ": it holds a private key; certfile must hold the certificate (the key goes in keyfile)"
        elif data[:1] == b"\x30":
            hint = ": it looks like DER; convert it with 'openssl x509 -inform der -in FILE -out FILE.pem'"
        _fail("certfile", path, f"{path} holds no PEM certificate{hint}")
    try:
        # Parses every certificate (a throw-away trust store); load_cert_chain would only
        # say "PEM lib" for a damaged one.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
            cadata=b"\n".join(blocks).decode("ascii")
        )
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as error:
        _fail("certfile", path, f"a certificate in {path} cannot be read: {_reason(error)}")
    return blocks


def _key_is_encrypted(setting: str, path: str, data: bytes) -> bool:
    """Whether the PEM private key in ``data`` is encrypted; raises ConfigError without one."""
    match = _PEM_PRIVATE_KEY.search(data)
    if match is None:
        hint = "; set keyfile to the file that holds it" if setting == "certfile" else ""
        _fail(setting, path, f"{path} holds no PEM private key{hint}")
    return b"ENCRYPTED" in match.group(1) or b"Proc-Type: 4,ENCRYPTED" in match.group(2)


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason).replace("_", " ").lower() if reason else describe_exception(error)


# --------------------------------------------------------------------------- the context


def default_context(settings: Settings) -> ssl.SSLContext:
    """A new server context from the TLS settings (see the module docstring).

    Reads ``certfile``, ``keyfile`` and ``ca_certs`` each time it is called. Raises
    :class:`ConfigError` naming the setting and the file. Any thread.
    """
    certfile = settings.certfile
    if certfile is None:
        _fail("certfile", None, "TLS needs certfile")
    key_setting, key_path = ("keyfile", settings.keyfile) if settings.keyfile else ("certfile", certfile)
    certificate_data = _read_file("certfile", certfile)
    _certificate_blocks(certfile, certificate_data)
    key_data = certificate_data if key_path == certfile else _read_file(key_setting, key_path)
    encrypted = _key_is_encrypted(key_setting, key_path, key_data)
    if encrypted and settings.keyfile_password is None:
        _fail("keyfile_password", None, f"the private key in {key_path} is encrypted: set keyfile_password")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MINIMUM_VERSIONS[settings.tls_minimum_version]
    context.options |= _HARDENING_OPTIONS
    try:
        context.set_ciphers(settings.ciphers)
    except ssl.SSLError:
        _fail("ciphers", settings.ciphers, "OpenSSL offers none of these cipher suites")
    _load_chain(context, settings, key_setting, key_path, encrypted)
    _load_client_authorities(context, settings)
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return context


def _load_chain(
    context: ssl.SSLContext, settings: Settings, key_setting: str, key_path: str, encrypted: bool
) -> None:
    certfile = settings.certfile
    password = settings.keyfile_password

    def give_password() -> str:
        if password is None:
            raise _NoPassword
        return str(password)

    try:
        context.load_cert_chain(certfile, settings.keyfile, password=give_password)  # type: ignore[arg-type]
    except _NoPassword:
        _fail("keyfile_password", None, f"the private key in {key_path} is encrypted: set keyfile_password")
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            _fail(
                key_setting,
                key_path,
                f"the private key in {key_path} does not match the certificate in {certfile}",
            )
        if encrypted:
            _fail(
                "keyfile_password",
                password,
                f"wrong password for the private key in {key_path} (or the key is damaged)",
            )
        _fail(key_setting, key_path, f"cannot load the private key in {key_path}: {_reason(error)}")
    except OSError as error:  # a file replaced between our read and OpenSSL's
        _fail("certfile", certfile, f"cannot load {certfile} with {key_path}: {describe_exception(error)}")


def _load_client_authorities(context: ssl.SSLContext, settings: Settings) -> None:
    context.verify_mode = _VERIFY_MODES[settings.cert_reqs]
    path = settings.ca_certs
    if path is None:
        return
    try:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            _read_file("ca_certs", path)  # for the clear missing/unreadable messages
            context.load_verify_locations(cafile=path)
    except ssl.SSLError as error:
        _fail("ca_certs", path, f"{path} holds no usable PEM certificate: {_reason(error)}")
    except OSError as error:
        _fail("ca_certs", path, f"cannot read {path}: {describe_exception(error)}")


# --------------------------------------------------------------------------- the hook


def load_context_hook(spec: Any) -> Optional[ContextHook]:
    """The ``ssl_context`` setting as a callable: itself, or imported from
    ``MODULE:FUNCTION``. None stays None. Raises :class:`ConfigError` naming the hook."""
    if spec is None or callable(spec):
        return spec
    try:
        hook = load_application(str(spec))
    except AppNotCallableError:
        _fail("ssl_context", spec, f"{spec} is not callable")
    except AppLoadError as error:
        raise ConfigError("ssl_context", spec, error.message) from error
    return hook


def _call_hook(hook: ContextHook, settings: Settings) -> tuple[ssl.SSLContext, bool]:
    """Run the hook; the context, and whether it is one the default factory made."""
    made: list[ssl.SSLContext] = []

    def default_ssl_context_factory() -> ssl.SSLContext:
        context = default_context(settings)
        made.append(context)
        return context

    try:
        context = hook(settings, default_ssl_context_factory)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(
            "ssl_context", settings.ssl_context, f"the hook raised {describe_exception(error)}"
        ) from error
    if not isinstance(context, ssl.SSLContext):
        _fail(
            "ssl_context",
            settings.ssl_context,
            f"the hook returned a {type(context).__name__}, not an ssl.SSLContext",
        )
    if context.protocol == ssl.PROTOCOL_TLS_CLIENT:
        _fail(
            "ssl_context",
            settings.ssl_context,
            "the hook returned a client context; use ssl.PROTOCOL_TLS_SERVER",
        )
    return context, any(context is mine for mine in made)


# --------------------------------------------------------------------------- built contexts


class ServerTLS:
    """One built server context and what connections started with it report.

    Immutable; any thread may read it. ``generation`` counts reloads (0 at start-up).
    ``server_cert_pem`` is the first certificate of ``certfile``, or None when the
    ``ssl_context`` hook returned a context of its own (then the server cannot tell which
    certificate it sends).
    """

    __slots__ = ("context", "server_cert_pem", "generation", "_cipher_ids")

    def __init__(self, context: ssl.SSLContext, server_cert_pem: Optional[str], generation: int = 0) -> None:
        self.context = context
        self.server_cert_pem = server_cert_pem
        self.generation = generation
        self._cipher_ids = cipher_suite_ids(context)

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO) -> ssl.SSLObject:
        """A server-side ``SSLObject`` for one connection; its handshake has not started."""
        return self.context.wrap_bio(incoming, outgoing, server_side=True)

    def connection_info(self, connection: SSLConnection) -> TLSConnectionInfo:
        """What a connection made with this context tells the application, read once its
        handshake is complete (see :func:`waitress_like.tlsinfo.connection_info`)."""
        if connection.context is not self.context:  # an SNI callback switched contexts
            return connection_info(connection)
        return connection_info(connection, server_cert_pem=self.server_cert_pem, cipher_ids=self._cipher_ids)

    def __repr__(self) -> str:
        return f"<ServerTLS generation={self.generation}>"


def build_server_tls(
    settings: Settings, hook: Optional[ContextHook] = None, generation: int = 0
) -> ServerTLS:
    """The default context, passed through ``hook`` when there is one. Raises ConfigError."""
    if hook is None:
        context, ours = default_context(settings), True
    else:
        context, ours = _call_hook(hook, settings)
    server_cert = None
    if ours and settings.certfile is not None:
        first = _PEM_CERTIFICATE.search(_read_file("certfile", settings.certfile))
        if first is not None:
            server_cert = ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(first.group().decode("ascii")))
    return ServerTLS(context, server_cert, generation)


class TLSContextHolder:
    """The context new connections start with, replaced whole by :meth:`reload`.

    :meth:`current` is for the loop thread, once per accepted TLS connection: one
    attribute read, so it never waits for a reload. :meth:`reload` may be called from
    any thread (a signal handler, an admin endpoint); reloads run one at a time.
    Connections keep the context they started with.
    """

    def __init__(self, settings: Settings) -> None:
        """Import the hook and build the first context; raises :class:`ConfigError`."""
        self._settings = settings
        self._hook = load_context_hook(settings.ssl_context)
        self._reload_lock = threading.Lock()
        self._current = build_server_tls(settings, self._hook)

    def current(self) -> ServerTLS:
        return self._current

    def reload(self) -> ServerTLS:
        """Build a new context from the same settings (the files are read again) and use
        it for new connections; return it.

        On failure raises :class:`ConfigError` naming the setting and the file, and the
        previous context stays in use.
        """
        with self._reload_lock:
            fresh = build_server_tls(self._settings, self._hook, self._current.generation + 1)
            self._current = fresh
        return fresh


def create_context_holder(settings: Settings) -> Optional[TLSContextHolder]:
    """The server's holder, or None when ``certfile`` is unset (no listener serves TLS).

    Call it before binding, so that a bad certificate fails start-up without touching a
    port. Raises :class:`ConfigError`.
    """
    if settings.certfile is None:
        return None
    return TLSContextHolder(settings)
