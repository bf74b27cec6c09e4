"""Turn listen settings into bound, listening, non-blocking sockets.

This is the only module that resolves names (``getaddrinfo``) or touches the file system
for unix sockets; config only parses. Everything here runs before the loop starts, on the
thread that creates the server.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Any, Iterable, MutableMapping

__all__ = ["Listener", "bind_listeners", "BindError", "inherited_sockets", "systemd_listen_fds"]

_WINDOWS = os.name == "nt"


class BindError(OSError):
    """A listening socket could not be created; the message names the address."""


class Listener:
    """One listening socket and what channels accepted from it need to know.

    ``server_port`` is the port as the environ's SERVER_PORT string; ``display`` is how the
    address is shown to people (``http://127.0.0.1:8080``, ``https://[::1]:8443``,
    ``unix:/run/app.sock``, ``unix:/run/app.sock (TLS)``). ``is_tls`` says whether
    connections accepted here must complete a TLS handshake before HTTP.
    """

    __slots__ = ("socket", "family", "address", "server_port", "display", "is_unix", "unix_path", "is_tls")

    def __init__(self, sock: socket.socket, unix_path: str | None = None, *, is_tls: bool = False) -> None:
        self.socket = sock
        self.family = sock.family
        self.address: Any = sock.getsockname()
        self.unix_path = unix_path
        self.is_tls = is_tls
        self.is_unix = getattr(socket, "AF_UNIX", None) is not None and sock.family == getattr(
            socket, "AF_UNIX", None
        )
        if self.is_unix:
            self.server_port = ""
            self.display = f"unix:{self.address}" + (" (TLS)" if is_tls else "")
        else:
            host, port = self.address[0], self.address[1]
            self.server_port = str(port)
            shown = f"[{host}]" if ":" in host else host
            self.display = f"{'https' if is_tls else 'http'}://{shown}:{port}"

    def close(self) -> None:
        self.socket.close()
        if self.unix_path:
            try:
                if stat.S_ISSOCK(os.stat(self.unix_path).st_mode):
                    os.unlink(self.unix_path)
            except OSError:
                pass


def _tcp_socket(family: int, sockaddr: Any, backlog: int, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if reuse_port:
            # One socket per worker process on the same address; the kernel spreads
            # connections over them. Every socket of the group must set it before bind.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if _WINDOWS:
            # On Windows SO_REUSEADDR lets another process steal the port; this refuses.
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", 0), 1)
        else:
            # Restarting must not fail while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # One socket per family, so "*" binds 0.0.0.0 and :: side by side everywhere.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _families(ipv4: bool, ipv6: bool) -> int:
    if ipv4 and ipv6:
        return socket.AF_UNSPEC
    return socket.AF_INET if ipv4 else socket.AF_INET6


def bind_listeners(
    listen: Iterable[Any],
    *,
    ipv4: bool,
    ipv6: bool,
    backlog: int,
    unix_socket: str | None = None,
    unix_socket_perms: int = 0o600,
    sockets: Iterable[socket.socket] = (),
    tls: bool = False,
    reuse_port: bool = False,
) -> list[Listener]:
    """Bind every address; on any failure close what was bound and raise :class:`BindError`.

    ``listen`` holds objects with ``host`` (None for all interfaces), ``port`` and
    optionally ``tls`` (see :class:`~waitress_like.config.ListenAddress`). ``sockets`` are
    already bound by the caller: they are put in listening, non-blocking mode and adopted
    as they are. ``tls`` marks the ``sockets`` and the ``unix_socket`` listeners as TLS
    (one choice for all of them: they carry no scheme of their own). ``reuse_port`` sets
    ``SO_REUSEPORT`` on the TCP sockets bound here, so that more sockets can be bound to
    the same addresses later.
    """
    listeners: list[Listener] = []
    try:
        for sock in sockets:
            sock.listen(backlog)
            sock.setblocking(False)
            listeners.append(Listener(sock, is_tls=tls))
        for address in listen:
            bound = _bind_address(
                address.host, address.port, ipv4, ipv6, backlog, getattr(address, "tls", False), reuse_port
            )
            listeners.extend(bound)
        if unix_socket:
            listeners.append(_bind_unix(unix_socket, unix_socket_perms, backlog, tls))
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    return listeners


def _bind_address(
    host: str | None,
    port: int,
    ipv4: bool,
    ipv6: bool,
    backlog: int,
    tls: bool = False,
    reuse_port: bool = False,
) -> list[Listener]:
    try:
        infos = socket.getaddrinfo(
            host, port, _families(ipv4, ipv6), socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise BindError(
            error.errno, f"cannot resolve listen address {host or '*'}:{port}: {error.strerror}"
        ) from None
    bound: list[Listener] = []
    seen = set()
    try:
        for family, _type, _proto, _name, sockaddr in infos:
            key = (family, sockaddr[:2])
            if key in seen or family not in (socket.AF_INET, socket.AF_INET6):
                continue
            seen.add(key)
            try:
                bound.append(Listener(_tcp_socket(family, sockaddr, backlog, reuse_port), is_tls=tls))
            except OSError as error:
                if host is None and error.errno == errno.EAFNOSUPPORT:
                    continue  # "*" on a host without IPv6: serve the families it has
                shown = f"[{sockaddr[0]!s}]" if family == socket.AF_INET6 else str(sockaddr[0])
                raise BindError(
                    error.errno, f"cannot listen on {shown}:{sockaddr[1]!s}: {error.strerror}"
                ) from None
    except BaseException:
        for listener in bound:
            listener.close()
        raise
    if not bound:
        raise BindError(errno.EADDRNOTAVAIL, f"no usable address for {host or '*'}:{port}")
    return bound


def _bind_unix(path: str, perms: int, backlog: int, tls: bool = False) -> Listener:
    unix_family = getattr(socket, "AF_UNIX", None)
    if unix_family is None:  # pragma: no cover - Windows builds without AF_UNIX
        raise BindError(errno.EAFNOSUPPORT, "unix sockets are not supported on this platform")
    try:
        # A stale socket file from a previous run would make bind fail; only remove sockets.
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(unix_family, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, perms)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise BindError(error.errno, f"cannot listen on unix:{path}: {error.strerror}") from None
    return Listener(sock, unix_path=path, is_tls=tls)


# --------------------------------------------------------------------------- inherited sockets

#: The first descriptor systemd passes (after stdin, stdout and stderr), see sd_listen_fds(3).
SYSTEMD_FIRST_FD = 3
_SYSTEMD_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def systemd_listen_fds(environ: MutableMapping[str, str]) -> list[int]:
    """The descriptors systemd socket activation passed to this process, or ``[]``.

    They count only when ``LISTEN_PID`` is our pid: the variables are inherited by
    children, which must not take their parent's sockets. When they are ours, the
    variables are removed from ``environ`` (as ``sd_listen_fds(1)`` does), so a second
    server in this process or a child does not adopt the same descriptors again.
    Malformed values are treated as absent.
    """
    try:
        ours = int(environ.get("LISTEN_PID", "")) == os.getpid()
        count = int(environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    if not ours or count <= 0:
        return []
    for name in _SYSTEMD_VARIABLES:
        environ.pop(name, None)
    return list(range(SYSTEMD_FIRST_FD, SYSTEMD_FIRST_FD + count))


def inherited_sockets(fds: Iterable[int]) -> list[socket.socket]:
    """Wrap already open, bound stream sockets given by descriptor number.

    The returned sockets own their descriptors (closing them closes the descriptor) and
    are not inherited by child processes. Raises :class:`BindError` naming the
    descriptor when one is not open, not a socket, not a TCP or Unix stream socket, or
    not bound; then none of the descriptors is taken over.
    """
    adopted: list[socket.socket] = []
    try:
        for fd in fds:
            adopted.append(_adopt_fd(fd))
    except BaseException:
        for sock in adopted:
            sock.detach()  # leave the descriptor as the caller gave it
        raise
    for sock in adopted:
        sock.set_inheritable(False)
    return adopted


def _adopt_fd(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as error:
        reason = {errno.EBADF: "it is not open", errno.ENOTSOCK: "it is not a socket"}.get(
            error.errno or 0, error.strerror
        )
        raise BindError(error.errno, f"cannot use inherited fd {fd}: {reason}") from None
    unix_family = getattr(socket, "AF_UNIX", None)
    try:
        families = (socket.AF_INET, socket.AF_INET6, unix_family)
        if sock.type != socket.SOCK_STREAM or sock.family not in families:
            raise BindError(errno.EINVAL, f"cannot use inherited fd {fd}: not a TCP or Unix stream socket")
        if sock.family != unix_family and sock.getsockname()[1] == 0:
            raise BindError(errno.EINVAL, f"cannot use inherited fd {fd}: the socket is not bound")
    except BaseException:
        sock.detach()
        raise
    return sock
