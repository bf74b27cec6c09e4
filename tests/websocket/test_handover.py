"""The HTTP channel's part in a WebSocket upgrade, on the fake loop: it hands the socket
over only after the responses queued before the upgrade are sent, with the bytes read
past the upgrade's head; an owner that takes no WebSockets gets the request as HTTP."""

from __future__ import annotations

from typing import Any, Callable

from tests.channelharness import ChannelHarness
from waitress_like.channel import ChannelState

UPGRADE = (
    b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
FRAME = b"\x81\x85\x01\x02\x03\x04" + bytes(b ^ m for b, m in zip(b"hello", b"\x01\x02\x03\x04\x01"))


def hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode()]


def test_the_upgrade_waits_for_the_response_before_it() -> None:
    harness = ChannelHarness(hello_app)
    harness.owner.accepts_websockets = True
    try:
        harness.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + UPGRADE + FRAME)
        assert harness.owner.upgraded == []  # /first is still in service
        harness.serve_next()
        harness.settle()
        assert harness.received().endswith(b"/first")
        ((channel, request, leftover),) = harness.owner.upgraded
        assert channel is harness.channel and harness.state is ChannelState.CLOSED
        assert request.head.path == "/chat" and request.remote_addr == "192.0.2.10"
        assert leftover == FRAME
        assert harness.loop.events_for(harness.channel.socket) == 0  # the socket is not its any more
        assert harness.closed == []  # handed over, not closed
        assert harness.channel.socket.fileno() != -1
    finally:
        harness.client.close()
        harness.channel.socket.close()


def test_a_response_that_closes_the_connection_cancels_the_upgrade() -> None:
    harness = ChannelHarness(hello_app)
    harness.owner.accepts_websockets = True
    try:
        harness.send(b"GET /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + UPGRADE)
        harness.serve_next()
        harness.settle()
        assert harness.owner.upgraded == []
        assert harness.state in (ChannelState.LINGERING, ChannelState.CLOSED)
    finally:
        harness.close()


def test_an_owner_without_websockets_gets_plain_http() -> None:
    harness = ChannelHarness(hello_app)
    try:
        harness.send(UPGRADE)
        harness.serve_next()
        harness.settle()
        assert harness.received().endswith(b"/chat")
        assert harness.owner.upgraded == [] and harness.state is ChannelState.OPEN
    finally:
        harness.close()
