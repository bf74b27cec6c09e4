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
from typing import Any, Iterable

__all__ = ["Listener", "bind_listeners", "BindError"]

_WINDOWS = os.name == "nt"


class BindError(OSError):
    """A listening socket could not be created; the message names the address."""


class Listener:
    """One listening socket and what channels accepted from it need to know.

    ``server_port`` is the port as the environ's SERVER_PORT string; ``display`` is how the
    address is shown to people (``http://127.0.0.1:8080``, ``unix:/run/app.sock``).
    """

    __slots__ = ("socket", "family", "address", "server_port", "display", "is_unix", "unix_path")

    def __init__(self, sock: socket.socket, unix_path: str | None = None) -> None:
        self.socket = sock
        self.family = sock.family
        self.address: Any = sock.getsockname()
        self.unix_path = unix_path
        self.is_unix = getattr(socket, "AF_UNIX", None) is not None and sock.family == getattr(
            socket, "AF_UNIX", None
        )
        if self.is_unix:
            self.server_port = ""
            self.display = f"unix:{self.address}"
        else:
            host, port = self.address[0], self.address[1]
            self.server_port = str(port)
            shown = f"[{host}]" if ":" in host else host
            self.display = f"http://{shown}:{port}"

    def close(self) -> None:
        self.socket.close()
        if self.unix_path:
            try:
                if stat.S_ISSOCK(os.stat(self.unix_path).st_mode):
                    os.unlink(self.unix_path)
            except OSError:
                pass


def _tcp_socket(family: int, sockaddr: Any, backlog: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
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
) -> list[Listener]:
    """Bind every address; on any failure close what was bound and raise :class:`BindError`.

    ``listen`` holds objects with ``host`` (None for all interfaces) and ``port``.
    ``sockets`` are already bound by the caller: they are put in listening, non-blocking
    mode and adopted as they are.
    """
    listeners: list[Listener] = []
    try:
        for sock in sockets:
            sock.listen(backlog)
            sock.setblocking(False)
            listeners.append(Listener(sock))
        for address in listen:
            listeners.extend(_bind_address(address.host, address.port, ipv4, ipv6, backlog))
        if unix_socket:
            listeners.append(_bind_unix(unix_socket, unix_socket_perms, backlog))
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    return listeners


def _bind_address(host: str | None, port: int, ipv4: bool, ipv6: bool, backlog: int) -> list[Listener]:
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
                bound.append(Listener(_tcp_socket(family, sockaddr, backlog)))
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


def _bind_unix(path: str, perms: int, backlog: int) -> Listener:
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
    return Listener(sock, unix_path=path)
