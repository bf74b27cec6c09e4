"""One real :class:`~waitress_like.channel.Channel` on a :class:`~tests.fakeloop.FakeLoop`.

The channel gets the server side of a real socket pair; the test holds the client side.
Nothing runs by itself: :meth:`ChannelHarness.pump` reports the socket readable to the
channel, requests the channel submits are kept in :attr:`ChannelHarness.submitted`
until the test runs them (on its own thread) with :meth:`ChannelHarness.serve_next`, and
the fake loop's queued calls and timers run only when the test says so. Every ordering of
the worker's writes and the loop's sends, and every deadline, is then a script.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Optional

from tests.fakeloop import FakeLoop
from waitress_like.buffers import OutputPipe
from waitress_like.channel import Channel, ChannelState
from waitress_like.channel_policy import ChannelPolicy
from waitress_like.config import Settings
from waitress_like.loop import EVENT_READ, EVENT_WRITE
from waitress_like.server_metrics import NO_METRICS, MetricsRecorder
from waitress_like.tls import ServerTLS
from waitress_like.wsgi import WSGIGateway, WSGIRequest


class _Listener:
    """What a channel reads of its listener."""

    is_unix = False
    server_port = "80"


class _Owner:
    """The ChannelOwner side, recording what the channel asks of it."""

    def __init__(self, loop: FakeLoop) -> None:
        self.loop = loop
        self.metrics: MetricsRecorder = NO_METRICS
        self.draining = False
        self.capacity_left: Optional[int] = None  # None: no concurrency_limit
        self.submitted: list[tuple[WSGIRequest, OutputPipe]] = []
        self.in_service = 0
        self.closed: list[Channel] = []
        self.accepts_websockets = False
        self.upgraded: list[tuple[Channel, WSGIRequest, bytes]] = []  # WebSocket hand-overs

    def at_capacity(self) -> bool:
        return self.capacity_left is not None and self.in_service >= self.capacity_left

    def submit(self, request: WSGIRequest, pipe: OutputPipe) -> None:
        self.in_service += 1
        self.submitted.append((request, pipe))

    def request_done(self) -> None:
        self.in_service -= 1

    def channel_closed(self, channel: Channel) -> None:
        self.closed.append(channel)

    def upgrade_to_websocket(self, channel: Channel, request: WSGIRequest, leftover: bytes) -> None:
        self.upgraded.append((channel, request, leftover))


class ChannelHarness:
    def __init__(
        self,
        app: Callable[..., Any],
        peer: str = "192.0.2.10",
        tls: Optional[ServerTLS] = None,
        **settings: Any,
    ) -> None:
        """``tls``: the channel serves a TLS listener's connection with this context."""
        self.loop = FakeLoop()
        self.settings = Settings.from_mapping({"host": "127.0.0.1", "port": 0, **settings})
        self.policy = ChannelPolicy.from_settings(self.settings)
        self.owner = _Owner(self.loop)
        self.gateway = WSGIGateway(
            app,
            server_name="localhost",
            url_scheme="http",
            url_prefix="",
            ident="waitress_like",
            expose_tracebacks=False,
        )
        self.submitted = self.owner.submitted
        self.closed = self.owner.closed
        self.client, server_side = socket.socketpair()
        server_side.setblocking(False)
        self.client.settimeout(5)
        self.channel = Channel(self.policy, self.owner, server_side, (peer, 40000), _Listener(), tls)

    def close(self) -> None:
        self.channel.close()
        self.client.close()

    # -- driving ----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """The client sends ``data``; the channel reads it all, as its loop would."""
        self.client.sendall(data)
        self.pump()

    def pump(self) -> None:
        """Report the channel's socket ready for whatever it waits on, until it stops."""
        sock = self.channel.socket
        for _ in range(1000):
            if self.channel.state is ChannelState.CLOSED:
                return
            mask = self.loop.events_for(sock) & (EVENT_READ | EVENT_WRITE)
            if mask & EVENT_READ and not _readable(sock):
                mask &= ~EVENT_READ
            if not mask or not self.loop.deliver(sock, mask):
                return
            self.loop.run_calls()

    def serve_next(self) -> None:
        """Run the oldest submitted request through the gateway, on this thread."""
        request, pipe = self.submitted.pop(0)
        self.gateway.run(request, pipe)

    def settle(self) -> None:
        """Let the loop run everything the worker asked of it, and all sockets drain."""
        for _ in range(100):
            ran = self.loop.run_calls()
            self.pump()
            if not ran and not self.loop.calls:
                return

    def received(self) -> bytes:
        """What the client can read now without waiting (b"" once closed)."""
        data = b""
        self.client.setblocking(False)
        try:
            while True:
                chunk = self.client.recv(65536)
                if not chunk:
                    return data + b"<EOF>"
                data += chunk
        except BlockingIOError:
            return data
        finally:
            self.client.settimeout(5)

    @property
    def state(self) -> ChannelState:
        return self.channel.state

    def deadline_timer(self) -> Optional[float]:
        timers = self.loop.pending_timers()
        return timers[0] if timers else None


def _readable(sock: socket.socket) -> bool:
    """True if a recv would not block: data, end of stream, or an error to report."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True
