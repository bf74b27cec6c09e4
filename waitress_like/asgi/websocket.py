"""One WebSocket connection's ASGI side: the application's task on the bridge loop.

A :class:`WebSocketSession` is the application's ``receive`` and ``send`` for one
``websocket`` scope. The connection's other side, the socket and the framing, lives on
the server's loop thread (:mod:`waitress_like.wschannel`); the two meet only through
their threads' call queues:

* loop -> session: :meth:`~.bridge.BridgeLoop.call_soon` of :meth:`start`,
  :meth:`deliver`, :meth:`disconnected`, :meth:`acknowledge` and :meth:`cancel`;
* session -> loop: ``schedule`` (the loop's ``call_soon_threadsafe``) of the
  :class:`WebSocketTransport` methods.

Back-pressure both ways, by credit rather than by a round trip per message:

* Received messages: the loop stops reading once ``max_queue`` messages are on their way
  to the application; the session tells it how many were taken, in batches of half the
  queue (one call per batch, not per message).
* Sent messages: ``await send()`` returns at once while less than
  :data:`OUTPUT_HIGH_WATER_BYTES` of payload is unacknowledged; beyond that it waits
  until the loop, having written the frames to the socket, acknowledges them. A client
  that reads slowly therefore slows the application down instead of growing the
  server's memory.

Thread contract: every method runs on the bridge loop's thread, except the constructor
(the loop thread builds the session, then schedules :meth:`start`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from http import HTTPStatus
from typing import Any, Callable, Iterable, Mapping, Optional, Protocol, Union

from ..buffers import ClientDisconnected
from ..protocol.response import HOP_BY_HOP_HEADERS, check_header, http_date, simple_response
from ..protocol.ws_events import is_valid_close_code
from ..protocol.ws_handshake import WebSocketUpgrade, upgrade_response
from .bridge import BridgeLoop, Waiters
from .cycle import ASGIApp

__all__ = [
    "OUTPUT_HIGH_WATER_BYTES",
    "WebSocketSession",
    "WebSocketTransport",
    "denial_response",
]

log = logging.getLogger("waitress_like")

#: ``await send()`` waits while more payload than this is sent but not yet acknowledged
#: by the loop (written to the socket, with less than the low-water mark still pending).
OUTPUT_HIGH_WATER_BYTES = 64 * 1024

_MAX_CLOSE_REASON_BYTES = 123  # RFC 6455 5.5: a control payload of 125 less the code
_CONNECT = {"type": "websocket.connect"}


class WebSocketTransport(Protocol):
    """The loop-thread side of a connection, as its session reaches it.

    The session never calls these directly: it schedules them on the loop's thread.
    ``app_accepted``/``app_refused`` carry the complete HTTP response to write
    (``101``, or the refusal); ``app_sent`` one message; ``app_closed`` the
    application's Close; ``messages_taken`` how many received messages the application
    took since the last report; ``app_ended`` that the task is over (``failed``: it
    raised).
    """

    def app_accepted(self, response: bytes) -> None: ...

    def app_refused(self, response: bytes) -> None: ...

    def app_sent(self, message: Union[str, bytes]) -> None: ...

    def app_closed(self, code: int, reason: str) -> None: ...

    def messages_taken(self, count: int) -> None: ...

    def app_ended(self, failed: bool) -> None: ...


class _Stage(enum.Enum):
    """Where the application is in the connection (bridge side)."""

    CONNECTING = "before websocket.accept"
    RESPONDING = "while sending a denial response"
    CONNECTED = "after websocket.accept"
    CLOSED = "after websocket.close or a denial response"


class WebSocketSession:
    """The ASGI side of one WebSocket connection.

    ``upgrade`` is the validated handshake (for the ``101`` response); ``transport``
    the loop-thread side and ``schedule`` the loop's ``call_soon_threadsafe``;
    ``max_queue`` the ``ws_max_queue`` setting; ``server_header`` the ``Server`` value
    of responses the server writes ("" for none) and ``date_header`` whether they carry
    ``Date``.

    ``send`` raises :class:`RuntimeError` for a message out of order, :class:`TypeError`
    or :class:`ValueError` for a malformed one, and
    :class:`~waitress_like.buffers.ClientDisconnected` (an ``OSError``) once the
    connection has closed (ASGI WebSocket spec 2.4).
    """

    __slots__ = (
        "scope",
        "_bridge",
        "_app",
        "_upgrade",
        "_transport",
        "_schedule",
        "_report_every",
        "_server_header",
        "_date_header",
        "_stage",
        "_inbox",
        "_final",
        "_taken",
        "_in_flight",
        "_receive_waiters",
        "_send_waiter",
        "_denial",
        "_task",
    )

    def __init__(
        self,
        bridge: BridgeLoop,
        app: ASGIApp,
        scope: dict[str, Any],
        upgrade: WebSocketUpgrade,
        transport: WebSocketTransport,
        schedule: Callable[..., None],
        *,
        max_queue: int,
        server_header: str = "",
        date_header: bool = True,
    ) -> None:
        self.scope = scope
        self._bridge = bridge
        self._app = app
        self._upgrade = upgrade
        self._transport = transport
        self._schedule = schedule
        # Reports of taken messages go in batches; the loop pauses only at max_queue, so
        # a batch of at most half of it can never leave the loop waiting for a report.
        self._report_every = max(1, max_queue // 2)
        self._server_header = server_header
        self._date_header = date_header
        self._stage = _Stage.CONNECTING
        self._inbox: deque[dict[str, Any]] = deque([_CONNECT])
        self._final: Optional[dict[str, Any]] = None  # the disconnect message, once known
        self._taken = 0  # received messages taken and not yet reported to the loop
        self._in_flight = 0  # payload bytes sent and not yet acknowledged by the loop
        self._receive_waiters = Waiters()
        self._send_waiter: Optional[asyncio.Future[None]] = None
        self._denial: Optional[tuple[int, Any, list[bytes]]] = None
        self._task: Optional[asyncio.Task[None]] = None

    # -- from the loop thread (through bridge.call_soon) -------------------------------

    def start(self) -> None:
        """Run the application's task."""
        self._task = self._bridge.create_task(self._run())

    def deliver(self, message: dict[str, Any]) -> None:
        """A received message (``websocket.receive``) for the application."""
        self._inbox.append(message)
        self._receive_waiters.wake_all()

    def disconnected(self, code: int, reason: str = "") -> None:
        """The connection is over for the application: ``receive`` returns
        ``websocket.disconnect`` once the messages before it are taken, ``send`` raises."""
        if self._final is not None:
            return
        message = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self._final = message
        self._inbox.append(message)
        self._receive_waiters.wake_all()
        self._wake_sender()

    def acknowledge(self, byte_count: int) -> None:
        """The loop wrote ``byte_count`` bytes of payload out: credit for ``send``."""
        self._in_flight -= byte_count
        if self._in_flight <= OUTPUT_HIGH_WATER_BYTES:
            self._wake_sender()

    def cancel(self) -> None:
        """The server stops waiting for this connection: cancel the task."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()

    # -- the task ----------------------------------------------------------------------

    async def _run(self) -> None:
        failed = False
        try:
            await self._app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            pass
        except ClientDisconnected:
            # send() after the connection closed, not caught: the spec's expected end.
            log.debug("ASGI WebSocket application ended on a closed connection (%s)", self.scope["path"])
        except BaseException as error:  # nothing may escape a task; the loop closes 1011
            failed = True
            log.error("Exception in ASGI application (WebSocket %s)", self.scope["path"], exc_info=error)
        finally:
            self._bridge.task_done(self._task)  # None if it ended while starting eagerly
        self._stage = _Stage.CLOSED
        self._schedule(self._transport.app_ended, failed)

    # -- receive -----------------------------------------------------------------------

    async def receive(self) -> Mapping[str, Any]:
        """The application's ``receive``: ``websocket.connect`` first, then received
        messages, then ``websocket.disconnect`` (again on every later call)."""
        inbox = self._inbox
        while not inbox:
            if self._final is not None:
                return self._final
            assert self._bridge.loop is not None
            await self._receive_waiters.wait(self._bridge.loop)
        message = inbox.popleft()
        if message["type"] == "websocket.receive":
            self._taken += 1
            if self._taken >= self._report_every:
                self._schedule(self._transport.messages_taken, self._taken)
                self._taken = 0
        return message

    # -- send --------------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any]) -> None:
        """The application's ``send`` (see the class docstring for what it raises)."""
        kind = message["type"]
        stage = self._stage
        if stage is _Stage.CONNECTED:
            if kind == "websocket.send":
                await self._send_message(message)
                return
            if kind == "websocket.close":
                if self._final is None:
                    code, reason = _close_arguments(message)
                    self._schedule(self._transport.app_closed, code, reason)
                self._stage = _Stage.CLOSED
                return
        elif stage is _Stage.CONNECTING:
            self._send_while_connecting(kind, message)
            return
        elif stage is _Stage.RESPONDING:
            if kind == "websocket.http.response.body":
                self._send_denial_body(message)
                return
        elif kind == "websocket.close":
            return  # closed already: nothing more to close
        if self._final is not None and kind == "websocket.send":
            raise ClientDisconnected("the WebSocket connection is closed")
        raise RuntimeError(f"unexpected ASGI message {kind!r} {stage.value}")

    def _send_while_connecting(self, kind: str, message: Mapping[str, Any]) -> None:
        if self._final is not None and kind != "websocket.close":
            raise ClientDisconnected("the client went away before the WebSocket was accepted")
        if kind == "websocket.accept":
            response = upgrade_response(
                self._upgrade, message.get("subprotocol"), self._accept_headers(message.get("headers", ()))
            )
            self._stage = _Stage.CONNECTED
            self._schedule(self._transport.app_accepted, response)
        elif kind == "websocket.close":
            # ASGI: a close before accept refuses the handshake with 403.
            self._stage = _Stage.CLOSED
            if self._final is None:
                refusal = simple_response(403, "The application refused the WebSocket", self._server_header)
                self._schedule(self._transport.app_refused, refusal)
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
                raise TypeError(f"ASGI response status must be an int between 100 and 599, got {status!r}")
            self._denial = (int(status), message.get("headers", ()), [])
            self._stage = _Stage.RESPONDING
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} {self._stage.value}")

    def _accept_headers(self, headers: Iterable[Any]) -> list[tuple[str, str]]:
        """The application's accept headers as str pairs, plus the server's own."""
        pairs = [(_text(name), _text(value)) for name, value in headers]
        return pairs + self._server_headers({name.lower() for name, _ in pairs})

    def _server_headers(self, given: set[str]) -> list[tuple[str, str]]:
        added = []
        if self._date_header and "date" not in given:
            added.append(("Date", http_date()))
        if self._server_header and "server" not in given:
            added.append(("Server", self._server_header))
        return added

    def _send_denial_body(self, message: Mapping[str, Any]) -> None:
        assert self._denial is not None
        status, headers, parts = self._denial
        parts.append(_body_bytes(message.get("body", b"")))
        if message.get("more_body", False):
            return
        self._stage = _Stage.CLOSED
        if self._final is None:
            given = [(_text(name), _text(value)) for name, value in headers]
            extra = self._server_headers({name.lower() for name, _ in given})
            self._schedule(
                self._transport.app_refused, denial_response(status, given + extra, b"".join(parts))
            )

    async def _send_message(self, message: Mapping[str, Any]) -> None:
        if self._final is not None:
            raise ClientDisconnected("the WebSocket connection is closed")
        payload = _message_payload(message)
        self._in_flight += len(payload)
        self._schedule(self._transport.app_sent, payload)
        while self._in_flight > OUTPUT_HIGH_WATER_BYTES and self._final is None:
            assert self._bridge.loop is not None
            waiter: asyncio.Future[None] = self._bridge.loop.create_future()
            self._send_waiter = waiter
            try:
                await waiter
            finally:
                self._send_waiter = None

    def _wake_sender(self) -> None:
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _text(value: Any) -> str:
    """An ASGI header name or value (bytes) as the latin-1 str the HTTP writers take."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    if isinstance(value, str):
        return value
    raise TypeError(f"ASGI header names and values must be bytes, got {value!r}")


def _body_bytes(body: Any) -> bytes:
    if type(body) is bytes:
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"ASGI response body must be bytes, got {type(body).__name__}")


def _message_payload(message: Mapping[str, Any]) -> Union[str, bytes]:
    """The text or bytes of a ``websocket.send``: exactly one of them, of its type."""
    data = message.get("bytes")
    text = message.get("text")
    if (data is None) == (text is None):
        raise ValueError("an ASGI websocket.send needs exactly one of 'bytes' and 'text'")
    if text is not None:
        if not isinstance(text, str):
            raise TypeError(f"websocket.send 'text' must be a str, got {type(text).__name__}")
        return text
    return _body_bytes(data)


def _close_arguments(message: Mapping[str, Any]) -> tuple[int, str]:
    code = message.get("code")
    code = 1000 if code is None else code
    reason = message.get("reason") or ""
    if not isinstance(code, int) or isinstance(code, bool) or not is_valid_close_code(code):
        raise ValueError(f"invalid WebSocket close code {code!r} (1000-1003, 1007-1014 or 3000-4999)")
    if not isinstance(reason, str):
        raise TypeError(f"websocket.close 'reason' must be a str, got {type(reason).__name__}")
    encoded = reason.encode("utf-8", "replace")
    if len(encoded) > _MAX_CLOSE_REASON_BYTES:
        # The frame cannot carry more; cut at a character boundary rather than fail.
        reason = encoded[:_MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")
    return code, reason


def denial_response(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A complete HTTP/1.1 response refusing the upgrade (the Denial Response extension).

    Framing is the server's: the application's hop-by-hop and ``Content-Length`` fields
    are dropped, and the response has its length and ``Connection: close``. Raises
    :class:`~waitress_like.errors.LocalProtocolError` for a field that could corrupt the
    response (an invalid name, CR or LF in a value).
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""  # RFC 9112 4: the reason phrase may be empty, its space may not
    lines = [f"HTTP/1.1 {status} {phrase}"]
    for name, value in headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP_HEADERS or lowered == "content-length":
            continue
        check_header(name, value)
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
