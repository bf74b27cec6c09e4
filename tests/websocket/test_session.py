"""WebSocketSession on a real bridge loop, against a recording transport: the ASGI
messages in order, what send() refuses, the output credit that makes send() wait, and the
batched reports of taken messages."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

import pytest

from tests.websocket.harness import HANDSHAKE, parse_head
from waitress_like.asgi.bridge import BridgeLoop
from waitress_like.asgi.websocket import OUTPUT_HIGH_WATER_BYTES, WebSocketSession
from waitress_like.buffers import ClientDisconnected
from waitress_like.errors import LocalProtocolError
from waitress_like.protocol.ws_handshake import accept_handshake

WAIT = 10.0


class Transport:
    """Records what the session schedules on the "loop" (run at once, on the bridge)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def schedule(self, callback: Callable[..., Any], *args: Any) -> None:
        callback(*args)

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        record.__name__ = name
        return record

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def bridge():
    bridge = BridgeLoop("test-bridge")
    bridge.start()
    yield bridge
    bridge.stop()


def make_session(bridge: BridgeLoop, app: Any, *, max_queue: int = 4) -> tuple[WebSocketSession, Transport]:
    head = parse_head(HANDSHAKE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: chat, v2\r\n\r\n"))
    upgrade = accept_handshake(head.method, head.version, head.headers)
    transport = Transport()
    scope = {"type": "websocket", "path": "/chat"}
    session = WebSocketSession(
        bridge, app, scope, upgrade, transport, transport.schedule, max_queue=max_queue
    )
    return session, transport


def run_app(
    bridge: BridgeLoop, app: Any, **options: Any
) -> tuple[WebSocketSession, Transport, threading.Event]:
    ended = threading.Event()

    async def wrapped(scope: dict, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        finally:
            ended.set()

    session, transport = make_session(bridge, wrapped, **options)
    bridge.call_soon(session.start)
    return session, transport, ended


def on_bridge(bridge: BridgeLoop, callback: Callable[..., Any], *args: Any) -> None:
    done = threading.Event()

    def call() -> None:
        callback(*args)
        done.set()

    bridge.call_soon(call)
    assert done.wait(WAIT)


def test_connect_accept_messages_and_disconnect(bridge: BridgeLoop) -> None:
    received: list[dict] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        received.append(await receive())
        await send({"type": "websocket.accept", "subprotocol": "v2", "headers": [(b"x-one", b"1")]})
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                break
            await send({"type": "websocket.send", "text": message["text"].upper()})
        with pytest.raises(ClientDisconnected):
            await send({"type": "websocket.send", "text": "too late"})
        await send({"type": "websocket.close"})  # nothing left to close: a no-op

    session, transport, ended = run_app(bridge, app)
    on_bridge(bridge, session.deliver, {"type": "websocket.receive", "text": "hi"})
    on_bridge(bridge, session.disconnected, 1001, "bye")
    assert ended.wait(WAIT)
    assert [m["type"] for m in received] == ["websocket.connect", "websocket.receive", "websocket.disconnect"]
    assert received[-1] == {"type": "websocket.disconnect", "code": 1001, "reason": "bye"}
    response = transport.calls[0][1][0]
    assert transport.calls[0][0] == "app_accepted"
    assert b"101 Switching Protocols" in response and b"Sec-WebSocket-Protocol: v2" in response
    assert b"x-one: 1" in response and b"Date: " in response
    assert ("app_sent", ("HI",)) in transport.calls
    assert transport.calls[-1] == ("app_ended", (False,))


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "websocket.send", "text": "x"}], RuntimeError),  # before accept
        ([{"type": "websocket.accept", "subprotocol": "nope"}], LocalProtocolError),
        ([{"type": "websocket.accept"}, {"type": "websocket.send", "text": "a", "bytes": b"b"}], ValueError),
        ([{"type": "websocket.accept"}, {"type": "websocket.send", "text": b"bytes"}], TypeError),
        ([{"type": "websocket.accept"}, {"type": "websocket.close", "code": 1005}], ValueError),
        (
            [
                {"type": "websocket.accept"},
                {"type": "websocket.close"},
                {"type": "websocket.send", "text": "x"},
            ],
            RuntimeError,
        ),
        ([{"type": "websocket.http.response.start", "status": 99}], TypeError),
        (
            [
                {"type": "websocket.http.response.start", "status": 400, "headers": [(b"bad name", b"x")]},
                {"type": "websocket.http.response.body", "body": b""},
            ],
            LocalProtocolError,
        ),
    ],
)
def test_send_refuses_what_the_spec_does_not_allow(bridge: BridgeLoop, messages: list, error: type) -> None:
    raised: list[BaseException] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        try:
            for message in messages:
                await send(message)
        except Exception as exc:
            raised.append(exc)

    _, _, ended = run_app(bridge, app)
    assert ended.wait(WAIT)
    assert len(raised) == 1 and isinstance(raised[0], error), raised


def test_send_waits_for_credit_past_the_high_water_mark(bridge: BridgeLoop) -> None:
    sent_count = [0]
    blocked = threading.Event()
    half = OUTPUT_HIGH_WATER_BYTES // 2

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(4):
            loop = asyncio.get_running_loop()
            loop.call_soon(blocked.set)  # runs only if this send() yields to the loop
            await send({"type": "websocket.send", "bytes": b"z" * half})
            blocked.clear()
            sent_count[0] += 1

    session, transport, ended = run_app(bridge, app)
    assert blocked.wait(WAIT)
    # 3 halves are in flight (over the mark): the third send() waits.
    on_bridge(bridge, lambda: None)
    assert sent_count[0] == 2 and not ended.is_set()
    on_bridge(bridge, session.acknowledge, 3 * half)
    assert ended.wait(WAIT)
    assert sent_count[0] == 4


def test_taken_messages_are_reported_in_batches(bridge: BridgeLoop) -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(5):
            await receive()

    session, transport, ended = run_app(bridge, app, max_queue=4)
    for number in range(5):
        on_bridge(bridge, session.deliver, {"type": "websocket.receive", "text": str(number)})
    assert ended.wait(WAIT)
    assert [args for name, args in transport.calls if name == "messages_taken"] == [(2,), (2,)]


def test_a_denial_response_and_a_close_before_accept(bridge: BridgeLoop) -> None:
    async def deny(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {"type": "websocket.http.response.start", "status": 401, "headers": [(b"content-length", b"9")]}
        )
        await send({"type": "websocket.http.response.body", "body": b"go ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"away"})

    _, transport, ended = run_app(bridge, deny)
    assert ended.wait(WAIT)
    name, (response,) = transport.calls[0]
    assert name == "app_refused"
    assert response.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b"content-length: 9" not in response and b"Content-Length: 7\r\n" in response
    assert response.endswith(b"\r\n\r\ngo away")

    async def refuse(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 4000})

    _, transport, ended = run_app(bridge, refuse)
    assert ended.wait(WAIT)
    assert transport.calls[0][0] == "app_refused" and transport.calls[0][1][0].startswith(b"HTTP/1.1 403 ")


def test_an_application_error_is_reported_as_failed(bridge: BridgeLoop, caplog) -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        raise KeyError("oops")

    _, transport, ended = run_app(bridge, app)
    assert ended.wait(WAIT)
    on_bridge(bridge, lambda: None)
    assert transport.calls == [("app_ended", (True,))]
    assert "Exception in ASGI application (WebSocket /chat)" in caplog.text


def test_cancel_ends_a_waiting_application(bridge: BridgeLoop) -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # waits for ever

    session, transport, ended = run_app(bridge, app)
    on_bridge(bridge, lambda: None)
    on_bridge(bridge, session.cancel)
    assert ended.wait(WAIT)
    on_bridge(bridge, lambda: None)
    assert transport.calls[-1] == ("app_ended", (False,))
