"""The listening sockets of a supervisor's workers, by *slot*.

Without ``reuse_port`` there is one slot: every worker accepts from the same sockets,
which the supervisor keeps open so that connections waiting in the kernel's queue are
never lost when a worker exits. With ``reuse_port`` each slot has sockets of its own on
the same addresses (``SO_REUSEPORT``), bound when first needed, and each worker uses one
slot: a replacement takes its predecessor's slot (and the connections queued on it), and
a slot that no worker wants any more (after TTOU) is closed.

Each listener keeps its TLS flag (``Listener.is_tls``), and a slot's listeners come in
the same order with the same flags, so a worker knows which of its sockets serve TLS
(see ``WorkerBoot.tls_flags``).

Thread contract: the supervisor's thread only.
"""

from __future__ import annotations

from typing import Any, Iterable

from .config import ListenAddress, Settings
from .listeners import Listener, bind_listeners, inherited_sockets

__all__ = ["WorkerSockets"]


class WorkerSockets:
    """Binds the settings' addresses (:meth:`bind`), then hands out slots."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.listening: list[Listener] = []  # the first sockets bound: where we listen
        self._slots: dict[int, list[Listener]] = {}

    def bind(self) -> list[Listener]:
        """Bind (or adopt) the listening sockets, as ``create_server`` does (adopted
        sockets and the unix socket serve TLS when ``certfile`` is set); raises
        BindError. The unix socket's file belongs to these listeners."""
        settings = self.settings
        inherited = inherited_sockets(settings.fd)
        self.listening = bind_listeners(
            settings.listen, ipv4=settings.ipv4, ipv6=settings.ipv6, backlog=settings.backlog,
            unix_socket=settings.unix_socket, unix_socket_perms=settings.unix_socket_perms,
            sockets=(*settings.sockets, *inherited), tls=settings.certfile is not None,
            reuse_port=settings.reuse_port,
        )  # fmt: skip
        self._slots[0] = self.listening
        return self.listening

    def listeners(self, slot: int) -> list[Listener]:
        """The listeners of ``slot``, bound now if they are not yet: one per listening
        address, in the order of :attr:`listening`, with the same TLS flags."""
        if slot not in self._slots:
            # reuse_port goes with TCP addresses only (the settings refuse unix_socket,
            # fd and sockets with it), each bound to one address.
            addresses = [
                ListenAddress(listener.address[0], listener.address[1], tls=listener.is_tls)
                for listener in self.listening
            ]
            self._slots[slot] = bind_listeners(
                addresses, ipv4=True, ipv6=True, backlog=self.settings.backlog, reuse_port=True
            )
        return self._slots[slot]

    def free_slot(self, taken: Iterable[int]) -> int:
        """The slot for a new worker when the current workers hold ``taken``."""
        if not self.settings.reuse_port:
            return 0
        used = set(taken)
        return min(set(range(len(used) + 1)) - used)

    def others(self, slot: int) -> list[Any]:
        """The sockets of every other slot (a forked worker closes them)."""
        return [
            listener.socket
            for index, listeners in self._slots.items()
            if index != slot
            for listener in listeners
        ]

    def close_unused(self, used: Iterable[int], wanted: int) -> None:
        """Close slots that no worker uses once there are more than ``wanted`` slots. A
        slot whose worker died stays while it is wanted: its queued connections wait for
        the replacement."""
        in_use = set(used)
        unused = sorted((index for index in self._slots if index not in in_use), reverse=True)
        for index in unused[: max(0, len(self._slots) - wanted)]:
            for listener in self._slots.pop(index):
                listener.close()

    def close(self) -> None:
        """Close every socket (a unix socket's file is removed)."""
        for listeners in self._slots.values():
            for listener in listeners:
                listener.close()
        self._slots.clear()
