"""Which connections a server holds open, and which one makes room at the limit.

At ``connection_limit`` a server that simply stops accepting is at the mercy of slow
clients: a few hundred slowloris connections fill every slot and real clients wait in the
backlog for the whole attack. So at the limit a newcomer takes the place of the open
connection that has made the least progress and is not being served (the channel ranks
itself: see :meth:`waitress_like.channel.Channel.eviction_rank`), as nginx reuses idle
keep-alive connections. Only when every connection is being served does the server stop
accepting.

Thread contract: loop thread only.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Protocol

__all__ = ["ConnectionTable", "Evictable"]

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
