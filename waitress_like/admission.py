"""Accepting connections: which ones a server holds open, and which one makes room.

At ``connection_limit`` a server that simply stops accepting is at the mercy of slow
clients: a few hundred slowloris connections fill every slot and real clients wait in the
backlog for the whole attack. So at the limit a newcomer takes the place of the open
connection that has made the least progress and is not being served (the channel ranks
itself: see :meth:`waitress_like.channel.Channel.eviction_rank`), as nginx reuses idle
keep-alive connections. Only when every connection is being served does the server stop
accepting.

:class:`Acceptor` runs the listening sockets: it accepts within the table's limits,
backs off when the system runs out of descriptors, and pauses while nobody can make room.

Thread contract: loop thread only.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

from .listeners import Listener
from .loop import EVENT_READ, EventLoop

__all__ = ["Acceptor", "ConnectionTable", "Evictable"]

log = logging.getLogger("waitress_like")

# accept() errors that say "the system is out of something": retrying at once would spin.
_RESOURCE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM") if hasattr(errno, name)
)
_ACCEPT_BACKOFF_SECONDS = 0.5
# At the limit with every connection being served, look again this often for one that
# can make room (a connection becoming idle does not tell anyone).
_FULL_RETRY_SECONDS = 0.25
_ACCEPTS_PER_WAKE = 64
# Worker processes that share one listening socket are all woken for each connection;
# the first to wake would take a whole burst and leave its siblings idle (measured with
# two workers: 2:1 CPU, 1.24x one worker). Taking one per wake lets the others share it.
_SHARED_ACCEPTS_PER_WAKE = 1

# The most connections looked at to choose whom to close, oldest first: enough to find
# the attackers, who are the long-lived ones, while a limit of thousands of connections
# does not make every accept at the limit a scan of thousands.
_MAX_EXAMINED = 512


class Evictable(Protocol):
    def eviction_rank(self, now: float) -> Optional[tuple[float, ...]]: ...

    def evict(self) -> None: ...


class ConnectionTable:
    """Open connections in accept order, with a count per peer address.

    ``limit`` is ``connection_limit``; ``per_address_limit`` is
    ``connection_limit_per_address`` (0: none).
    """

    __slots__ = ("limit", "per_address_limit", "_open", "_per_address")

    def __init__(self, limit: int, per_address_limit: int = 0) -> None:
        self.limit = limit
        self.per_address_limit = per_address_limit
        self._open: dict[Any, str] = {}  # connection -> peer address; dicts keep order
        self._per_address: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._open))

    def __contains__(self, connection: object) -> bool:
        return connection in self._open

    @property
    def full(self) -> bool:
        return len(self._open) >= self.limit

    def address_full(self, address: str) -> bool:
        """True if ``address`` already holds its share (never with no per-address cap)."""
        return bool(self.per_address_limit) and self._per_address.get(address, 0) >= self.per_address_limit

    def add(self, connection: Any, address: str) -> None:
        self._open[connection] = address
        if self.per_address_limit:
            self._per_address[address] = self._per_address.get(address, 0) + 1

    def replace(self, old: Any, new: Any) -> None:
        """``new`` takes the place of ``old`` (an HTTP connection that switched protocols):
        the same peer address, counted once."""
        self._open[new] = self._open.pop(old)

    def discard(self, connection: Any) -> None:
        address = self._open.pop(connection, None)
        if address is not None and self.per_address_limit:
            left = self._per_address[address] - 1
            if left:
                self._per_address[address] = left
            else:
                del self._per_address[address]

    def victim(self, now: float) -> Optional[Evictable]:
        """The connection to close for a newcomer, or None if all are being served."""
        best: Optional[Evictable] = None
        best_rank: Optional[tuple[float, ...]] = None
        for examined, connection in enumerate(self._open):
            if examined == _MAX_EXAMINED:
                break
            rank = connection.eviction_rank(now)
            if rank is not None and (best_rank is None or rank < best_rank):
                best, best_rank = connection, rank
                if rank[0] == 0.0:
                    break  # already closing: nothing ranks lower
        return best


class _ListenerHandler:
    """The loop's handler for one listening socket."""

    __slots__ = ("acceptor", "listener")

    def __init__(self, acceptor: Acceptor, listener: Listener) -> None:
        self.acceptor = acceptor
        self.listener = listener

    def handle_event(self, mask: int) -> None:
        self.acceptor.accept_from(self.listener)


OpenConnection = Callable[[socket.socket, Any, Listener], None]


class Acceptor:
    """Accepts from every listener into ``table``; ``open_connection(sock, peer,
    listener)`` makes the connection (and adds it to the table).

    Paused, new clients wait in the kernel's backlog. Once :meth:`close` has run it
    never accepts again.
    """

    def __init__(
        self,
        loop: EventLoop,
        listeners: Sequence[Listener],
        table: ConnectionTable,
        open_connection: OpenConnection,
        *,
        shared: bool = False,
    ) -> None:
        """``shared``: other processes accept from the same listening sockets."""
        self._loop = loop
        self._listeners = list(listeners)
        self._handlers = [_ListenerHandler(self, listener) for listener in listeners]
        self._table = table
        self._open_connection = open_connection
        self._accepts_per_wake = _SHARED_ACCEPTS_PER_WAKE if shared else _ACCEPTS_PER_WAKE
        self._registered = False
        self._closed = False
        self._paused_until = 0.0

    def resume(self) -> None:
        """Accept again, unless closed or within a back-off after running out of descriptors."""
        if self._registered or self._closed or self._loop.time() < self._paused_until:
            return
        self._registered = True
        for handler in self._handlers:
            self._loop.register(handler.listener.socket, EVENT_READ, handler)

    def pause(self) -> None:
        if not self._registered:
            return
        self._registered = False
        for handler in self._handlers:
            self._loop.unregister(handler.listener.socket)

    def close(self) -> None:
        """Stop for good and close the listening sockets (new clients are refused)."""
        self.pause()
        self._closed = True
        for listener in self._listeners:
            listener.close()

    def connection_closed(self) -> None:
        """A connection left the table: if accepting was paused for room, resume."""
        if not self._table.full:
            self.resume()

    def accept_from(self, listener: Listener) -> None:
        for _ in range(self._accepts_per_wake):
            victim = None
            if self._table.full:
                victim = self._table.victim(self._loop.time())
                if victim is None:
                    self._pause_for(_FULL_RETRY_SECONDS)
                    return
            try:
                sock, peer = listener.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in _RESOURCE_ERRNOS:
                    log.warning(
                        "accept failed (%s); pausing new connections for %.1fs",
                        error,
                        _ACCEPT_BACKOFF_SECONDS,
                    )
                    self._paused_until = self._loop.time() + _ACCEPT_BACKOFF_SECONDS
                    self._pause_for(_ACCEPT_BACKOFF_SECONDS)
                    return
                continue  # ECONNABORTED and friends: that one client gave up; take the next
            if victim is not None:
                victim.evict()
            self._open_connection(sock, peer, listener)

    def _pause_for(self, seconds: float) -> None:
        self.pause()
        self._loop.call_later(seconds, self.resume)
