"""One WebSocket connection on the loop thread, after its HTTP channel handed it over.

When a :class:`~waitress_like.channel.Channel` reads a WebSocket upgrade request for an
ASGI application, it finishes the responses queued before it and gives its socket, the
request and the bytes read past its head to the server, which makes a
:class:`WebSocketChannel` and puts it in the channel's place in the connection table.
From then on the socket is this object's:

* it validates the handshake (a bad one is answered 400 or 426 and the application is
  never called), builds the ``websocket`` scope and starts the application's
  :class:`~waitress_like.asgi.websocket.WebSocketSession` on the bridge loop;
* it writes the application's answer (``101``, ``403``, a denial response, or ``500``),
  then frames messages both ways with the sans-I/O
  :class:`~waitress_like.protocol.websocket.WebSocketConnection`, answers Pings, sends
  its own, and runs the closing handshake;
* it keeps the deadlines of an open WebSocket: ``send_timeout`` for a client that does
  not read, ``ws_ping_timeout`` for one that does not answer a Ping, and a close timeout
  for the closing handshake. The HTTP keep-alive and head deadlines do not apply.

It stays in the connection table, never evictable, until both the socket is closed and
the application's task has ended, so a graceful drain waits for the application.

Thread contract: every method runs on the loop thread. The session reaches it only
through the loop's ``call_soon_threadsafe`` (the ``app_*`` methods and
``messages_taken``), and it reaches the session only through the bridge's ``call_soon``.
"""

from __future__ import annotations

import enum
import logging
import socket
import time
from collections import deque
from typing import Any, Callable, NamedTuple, Optional, Protocol, Union

from .accesslog import CLIENT_CLOSED_REQUEST
from .asgi.adapter import ASGIAdapter
from .asgi.scope import build_websocket_scope
from .asgi.websocket import OUTPUT_HIGH_WATER_BYTES, WebSocketSession
from .config import Settings
from .errors import LocalProtocolError, RemoteProtocolError
from .loop import EVENT_READ, EVENT_WRITE, LoopServices, TimerHandle
from .protocol.response import simple_response
from .protocol.websocket import (
    BytesMessage,
    Ping,
    Pong,
    TextMessage,
    WebSocketConnection,
    WebSocketEvent,
    WebSocketProtocolError,
    WebSocketState,
)
from .protocol.ws_deflate import DeflateOptions
from .protocol.ws_handshake import WebSocketUpgrade, accept_handshake
from .tlsio import TLSStream
from .wsgi import WSGIGateway, WSGIRequest

__all__ = ["WebSocketChannel", "WebSocketOwner", "WebSocketPhase", "WebSocketPolicy", "WebSocketService"]

log = logging.getLogger("waitress_like")

#: After our Close, how long the client has to answer with its own before the TCP
#: connection is closed anyway (RFC 6455 7.1.1 lets the server close first).
CLOSE_TIMEOUT_SECONDS = 10.0
#: The loop acknowledges sent payload to the session once the socket's pending output is
#: at most this (see :data:`~waitress_like.asgi.websocket.OUTPUT_HIGH_WATER_BYTES`).
OUTPUT_LOW_WATER_BYTES = 16 * 1024
# Bytes a client may send after its upgrade request before the application accepted:
# kept for the connection, then reading pauses until the answer.
_EARLY_BYTES_MAX = 64 * 1024
# A read that fills recv_bytes is followed by reads this large (a big message is
# arriving); a short read goes back to recv_bytes.
_BIG_RECV_BYTES = 256 * 1024
# After refusing an upgrade with an HTTP response, as the HTTP channel does: discard what
# the client still sends for a while so the response is not destroyed by a TCP reset.
_LINGER_SECONDS = 2.0
_LINGER_MAX_BYTES = 256 * 1024

_CLOSED_STATES = (WebSocketState.CLOSED, WebSocketState.FAILED)


class WebSocketPolicy(NamedTuple):
    """The fixed rules of every WebSocket of a server, from its settings."""

    max_size: int
    max_queue: int
    ping_interval: float  # 0: no pings
    ping_timeout: float  # 0: wait for a Pong for ever
    deflate: Optional[DeflateOptions]  # None: decline permessage-deflate
    send_timeout: float
    recv_bytes: int
    server_header: str  # "" for none
    date_header: bool
    log_socket_errors: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> WebSocketPolicy:
        return cls(
            max_size=settings.ws_max_size,
            max_queue=settings.ws_max_queue,
            ping_interval=settings.ws_ping_interval,
            ping_timeout=settings.ws_ping_timeout,
            deflate=DeflateOptions() if settings.ws_per_message_deflate else None,
            send_timeout=settings.send_timeout,
            recv_bytes=settings.recv_bytes,
            server_header=(settings.ident or "") if settings.server_header else "",
            date_header=settings.date_header,
            log_socket_errors=settings.log_socket_errors,
        )


class WebSocketOwner(Protocol):
    """The server as a WebSocket connection sees it (loop thread only): the loop,
    whether it drains, and ``channel_closed()``, called once when the connection has
    closed and its application has ended (or the server stopped waiting for it)."""

    @property
    def loop(self) -> LoopServices: ...

    def channel_closed(self, channel: Any) -> None: ...


class WebSocketService:
    """What a server needs to take WebSockets: its ASGI adapter (the application and
    the bridge loop), its gateway (the environ, so trusted-proxy handling and
    ``url_prefix`` apply as for HTTP) and the policy. Loop thread only."""

    def __init__(self, adapter: ASGIAdapter, gateway: WSGIGateway, policy: WebSocketPolicy) -> None:
        self.adapter = adapter
        self.gateway = gateway
        self.policy = policy

    @classmethod
    def for_application(
        cls, app: Any, settings: Settings, gateway: WSGIGateway
    ) -> Optional[WebSocketService]:
        """The service for ``app`` (what ``resolve_application`` returned), or None when
        it takes no WebSockets: a WSGI application, or ``ws=none``."""
        if settings.ws == "none" or not isinstance(app, ASGIAdapter):
            return None
        return cls(app, gateway, WebSocketPolicy.from_settings(settings))

    def open(
        self,
        owner: WebSocketOwner,
        sock: socket.socket,
        request: WSGIRequest,
        leftover: bytes,
        transport: Any = None,
    ) -> WebSocketChannel:
        """A connection for the upgrade ``request``; call its ``start()`` once it is in
        the connection table. ``transport`` is the HTTP channel's: the socket itself, or
        the connection's :class:`~waitress_like.tlsio.TLSStream` over it."""
        return WebSocketChannel(self, owner, sock, request, leftover, transport)

    def environ(self, request: WSGIRequest) -> dict[str, Any]:
        """The request's environ, as a WSGI application would get it. Raises
        :class:`~waitress_like.proxy.MalformedProxyHeader` (a 400) for a forwarding header
        a trusted proxy garbled."""
        return self.gateway.build_environ(request)

    def open_session(
        self, channel: WebSocketChannel, environ: dict[str, Any], upgrade: WebSocketUpgrade
    ) -> WebSocketSession:
        """The application's session for ``channel`` (not started yet)."""
        scope = build_websocket_scope(environ, self.adapter.state, upgrade.subprotocols)
        return WebSocketSession(
            self.adapter.bridge,
            self.adapter.app,
            scope,
            upgrade,
            channel,
            channel.schedule,
            max_queue=self.policy.max_queue,
            server_header=self.policy.server_header,
            date_header=self.policy.date_header,
        )

    def log_handshake(
        self, request: WSGIRequest, environ: Optional[dict[str, Any]], status: int, started: float
    ) -> None:
        """The access-log line of an upgrade request, once answered (101, or a refusal;
        499 when the client left first). ``started`` is the ``time.time()`` it arrived."""
        access_log = self.gateway.access_log
        if access_log is None:
            return
        if environ is None:  # refused before there was one: what the request said
            head = request.head
            environ = {
                "REMOTE_ADDR": request.remote_addr,
                "REQUEST_METHOD": head.method,
                "RAW_URI": head.target,
                "SERVER_PROTOCOL": "HTTP/%d.%d" % head.version,
            }
        access_log.record(environ, status, [], 0, started, time.time() - started)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> bool:
        """Run ``callback(*args)`` on the bridge loop; False (and dropped) when the bridge
        is not running (it stopped, and its tasks with it)."""
        try:
            self.adapter.bridge.call_soon(callback, *args)
        except RuntimeError:
            return False
        return True


class WebSocketPhase(enum.Enum):
    """Where a WebSocket connection is, on the loop thread."""

    HANDSHAKE = "waiting for the application to accept"
    OPEN = "open"
    CLOSING = "closing handshake"  # our Close is sent; waiting for the client's
    REFUSING = "refusing"  # writing an HTTP response instead of 101, then lingering
    LINGERING = "lingering"  # our side is shut; discarding what the client still sends
    CLOSED = "closed"  # the socket is closed


class _Timeout(enum.Enum):
    SEND = "send"
    PING = "ping interval"
    PONG = "ping timeout"
    CLOSE = "closing handshake"
    LINGER = "linger"


class WebSocketChannel:
    """One WebSocket connection's socket, framing and deadlines (loop thread)."""

    __slots__ = (
        "_service",
        "_policy",
        "_owner",
        "_loop",
        "socket",
        "transport",
        "_tls",
        "_request",
        "_environ",
        "_arrived_at",
        "_remote_addr",
        "_leftover",
        "phase",
        "_connection",
        "_session",
        "_app_done",
        "_reported",
        "_told_disconnect",
        "_peer_eof",
        "_interest",
        "_output",
        "_output_bytes",
        "_recv_size",
        "_queued",
        "_unacked",
        "_timer",
        "_ping_payload",
        "_ping_count",
        "_ping_sent_at",
        "_phase_started_at",
        "_linger_bytes",
        "_last_sent_at",
        "last_activity",
        "received_bytes",
        "sent_bytes",
    )

    def __init__(
        self,
        service: WebSocketService,
        owner: WebSocketOwner,
        sock: socket.socket,
        request: WSGIRequest,
        leftover: bytes,
        transport: Any = None,
    ) -> None:
        self._service = service
        self._policy = service.policy
        self._owner = owner
        self._loop = owner.loop
        self.socket = sock  # registered with the loop; bytes go through the transport
        self.transport: Any = sock if transport is None else transport
        self._tls: Optional[TLSStream] = transport if isinstance(transport, TLSStream) else None
        self._request = request
        self._environ: Optional[dict[str, Any]] = None  # kept for the access log until answered
        self._arrived_at = time.time()  # wall clock, for the access log; 0.0 once logged
        self._remote_addr = request.remote_addr
        self._leftover = leftover
        self.phase = WebSocketPhase.HANDSHAKE
        self._connection: Optional[WebSocketConnection] = None
        self._session: Optional[WebSocketSession] = None
        self._app_done = True  # until a session runs
        self._reported = False  # channel_closed() was called
        self._told_disconnect = False
        self._peer_eof = False
        self._interest = 0
        self._output: deque[Union[bytes, memoryview]] = deque()
        self._output_bytes = 0
        self._recv_size = self._policy.recv_bytes
        self.received_bytes = 0  # read by the metrics, as a Channel's
        self.sent_bytes = 0
        self._queued = 0  # received messages on their way to the application
        self._unacked = 0  # payload from the application not yet acknowledged
        self._timer: Optional[TimerHandle] = None
        self._ping_payload: Optional[bytes] = None  # the Ping awaiting its Pong
        self._ping_count = 0
        now = self._loop.time()
        self._ping_sent_at = now
        self._phase_started_at = now
        self._linger_bytes = 0
        self._last_sent_at = now
        self.last_activity = now

    # -- what the server asks --------------------------------------------------------------

    @property
    def in_service(self) -> bool:
        """Always True: an open WebSocket is being served, never idle-swept."""
        return True

    def eviction_rank(self, now: float) -> Optional[tuple[float, ...]]:
        """None: a WebSocket is never closed to make room for a newer connection."""
        return None

    def evict(self) -> None:
        self.close()

    def metrics_state(self) -> str:
        """Loop thread: this connection's state for the connections gauge."""
        return "websocket"

    def schedule(self, callback: Callable[..., Any], *args: Any) -> None:
        """Any thread (the session's): run ``callback(*args)`` on the loop thread."""
        self._loop.call_soon_threadsafe(callback, *args)

    # -- starting --------------------------------------------------------------------------

    def start(self) -> None:
        """Validate the handshake and start the application (or refuse the upgrade)."""
        head = self._request.head
        try:
            upgrade = accept_handshake(head.method, head.version, head.headers, deflate=self._policy.deflate)
            environ = self._service.environ(self._request)
        except RemoteProtocolError as error:  # a bad handshake, or a garbled proxy header
            if self._policy.log_socket_errors:
                log.info("bad WebSocket handshake from %s: %s", self._remote_addr, error)
            self._refuse(error.status_hint, str(error), getattr(error, "headers", ()))
            return
        self._environ = environ
        session = self._service.open_session(self, environ, upgrade)
        self._connection = WebSocketConnection(max_size=self._policy.max_size, deflate=upgrade.deflate)
        self._connection.receive_data(self._leftover)
        self._leftover = b""
        if not self._service.call_soon(session.start):
            self._refuse(500, "The application is not running")
            return
        self._session = session
        self._app_done = False
        self._settle()

    def _refuse(self, status: int, detail: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Answer the upgrade request with an error response of our own, then close."""
        self._write(simple_response(status, detail, self._policy.server_header, extra_headers=headers))
        self._log_answer(status)
        self._enter(WebSocketPhase.REFUSING)
        self._settle()

    # -- the application's side (scheduled by the session) ---------------------------------

    def app_accepted(self, response: bytes) -> None:
        """The application accepted: write the 101, then take messages both ways."""
        if self.phase is not WebSocketPhase.HANDSHAKE:
            return  # refused meanwhile (the client left, or the server drains)
        self._write(response)
        self._log_answer(101)
        self._enter(WebSocketPhase.OPEN)
        self._ping_sent_at = self._phase_started_at
        self._process_events()
        self._settle()

    def app_refused(self, response: bytes) -> None:
        """The application refused the handshake with this HTTP response (403, denial)."""
        if self.phase is not WebSocketPhase.HANDSHAKE:
            return
        self._write(response)
        self._log_answer(int(response[9:12]))  # "HTTP/1.1 NNN ..."
        self._enter(WebSocketPhase.REFUSING)
        self._settle()

    def app_sent(self, message: Union[str, bytes]) -> None:
        """A message from the application: frame it and send it."""
        self._unacked += len(message)
        connection = self._connection
        if self.phase is not WebSocketPhase.OPEN or connection is None or connection.close_sent:
            self._settle()  # closing: the session is told, or was
            return
        try:
            if isinstance(message, str):
                frame = connection.send_text(message)
            else:
                frame = connection.send_bytes(message)
        except LocalProtocolError as error:  # a lone surrogate in a text message
            log.error("ASGI application sent an invalid WebSocket message: %s", error)
            self._begin_close(1011, "")
        else:
            self._write(frame)
        self._settle()

    def app_closed(self, code: int, reason: str) -> None:
        """The application closed the connection with ``code`` and ``reason``."""
        if self.phase is WebSocketPhase.OPEN:
            self._begin_close(code, reason, tell_session=False)
            self._settle()

    def messages_taken(self, count: int) -> None:
        """The application took ``count`` received messages: read on if the queue was full."""
        self._queued -= count
        self._process_events()
        self._settle()

    def app_ended(self, failed: bool) -> None:
        """The application's task is over (``failed``: it raised)."""
        self._app_done = True
        if self.phase is WebSocketPhase.HANDSHAKE:
            if not failed:
                log.error(
                    "ASGI application returned without accepting or closing the WebSocket (%s)",
                    self._request.head.path,
                )
            self._refuse(500, "The application did not answer the WebSocket handshake")
            return
        if self.phase is WebSocketPhase.OPEN:
            self._begin_close(1011 if failed else 1000, "")
        self._finish_if_done()
        self._settle()

    # -- reading ---------------------------------------------------------------------------

    def handle_event(self, mask: int) -> None:
        if mask & EVENT_WRITE and self.phase is not WebSocketPhase.CLOSED:
            self._flush()
        if mask & EVENT_READ and self.phase is not WebSocketPhase.CLOSED:
            self._read()
        self._settle()

    def _read(self) -> None:
        size = self._recv_size
        try:
            data = self.transport.recv(size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._connection_lost(error)
            return
        if not data:
            self._peer_eof = True
            if self.phase is not WebSocketPhase.LINGERING:
                self._connection_lost(None)
            else:
                self._close_socket()
            return
        self.received_bytes += len(data)
        self.last_activity = self._loop.time()
        if self.phase is WebSocketPhase.LINGERING or self._connection is None:
            self._linger_bytes += len(data)
            if self._linger_bytes > _LINGER_MAX_BYTES:
                self._close_socket()
            return
        self._recv_size = _BIG_RECV_BYTES if len(data) == size else self._policy.recv_bytes
        assert self._connection is not None
        self._connection.receive_data(data)
        self._process_events()

    def _process_events(self) -> None:
        """Turn buffered bytes into events, while the application's queue has room."""
        connection = self._connection
        assert connection is not None
        max_queue = self._policy.max_queue
        while self.phase is WebSocketPhase.OPEN or self.phase is WebSocketPhase.CLOSING:
            if self.phase is WebSocketPhase.OPEN and self._queued >= max_queue:
                return
            try:
                event = connection.next_event()
            except WebSocketProtocolError as error:
                self._fail(error)
                return
            if event is None:
                return
            self._on_event(event)

    def _on_event(self, event: WebSocketEvent) -> None:
        connection = self._connection
        assert connection is not None
        if isinstance(event, (TextMessage, BytesMessage)):
            if self.phase is WebSocketPhase.OPEN:  # closing: nobody wants it any more
                self._queued += 1
                if isinstance(event, TextMessage):
                    message: dict[str, Any] = {"type": "websocket.receive", "text": event.text}
                else:
                    message = {"type": "websocket.receive", "bytes": event.data}
                assert self._session is not None
                self._service.call_soon(self._session.deliver, message)
        elif isinstance(event, Ping):
            self._write(connection.reply_to(event))
        elif isinstance(event, Pong):
            if event.payload == self._ping_payload:
                self._ping_payload = None
        else:  # Close
            self._write(connection.reply_to(event))
            self._tell_disconnected(event.code, event.reason)

    def _fail(self, error: WebSocketProtocolError) -> None:
        """The client broke the protocol: send our Close with its code, then close
        without waiting for the client's (RFC 6455 7.1.7)."""
        if self._policy.log_socket_errors:
            log.info("WebSocket protocol error from %s: %s", self._remote_addr, error)
        connection = self._connection
        assert connection is not None
        if not connection.close_sent:
            self._write(connection.send_close(error.close_code, error.reason))
        self._tell_disconnected(error.close_code, error.reason)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if not data or self.phase is WebSocketPhase.CLOSED or self.phase is WebSocketPhase.LINGERING:
            return
        if not self._output_bytes:
            self._last_sent_at = self._loop.time()  # the send clock starts when output waits
        self._output.append(data)
        self._output_bytes += len(data)
        self._flush()

    def _flush(self) -> None:
        output = self._output
        sock = self.transport
        sent_any = False
        if self._tls is not None and self._tls.wants_write:
            unsent = self._tls.unsent_bytes
            try:
                self._tls.flush()  # records encrypted earlier go first
            except OSError as error:
                self._connection_lost(error)
                return
            sent_any = self._tls.unsent_bytes != unsent
        while output:
            chunk = output[0]
            try:
                sent = sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                self._connection_lost(error)
                return
            sent_any = True
            self._output_bytes -= sent
            self.sent_bytes += sent
            if sent < len(chunk):
                output[0] = memoryview(chunk)[sent:]
                break
            output.popleft()
        if sent_any:
            self._last_sent_at = self._loop.time()

    def _begin_close(self, code: int, reason: str, tell_session: bool = True) -> None:
        """Send our Close (if not sent yet) and wait for the client's."""
        connection = self._connection
        assert connection is not None
        if not connection.close_sent:
            self._write(connection.send_close(code, reason))
            if self.phase is WebSocketPhase.OPEN:
                self._enter(WebSocketPhase.CLOSING)
        if tell_session:
            self._tell_disconnected(code, reason)

    def _send_ping(self) -> None:
        """The ping interval is up: send a Ping, and measure the next interval from now."""
        self._ping_sent_at = self._loop.time()
        connection = self._connection
        if self._output_bytes or connection is None or connection.close_sent:
            # Output waits for the client: send_timeout watches it, and a Ping would only
            # wait behind that output. Try again an interval later.
            return
        self._ping_count = (self._ping_count + 1) & 0xFFFFFFFF
        payload = self._ping_count.to_bytes(4, "big")
        self._write(connection.send_ping(payload))
        self._ping_payload = payload

    # -- after every step ------------------------------------------------------------------

    def _settle(self) -> None:
        """Close when the exchange is over; otherwise acknowledge output credit, choose
        what to wait for, and arm the next deadline."""
        if self.phase is WebSocketPhase.CLOSED:
            return
        if not self._output_bytes:
            if self.phase is WebSocketPhase.REFUSING:
                self._linger()
            elif self._connection is not None and self._connection.state in _CLOSED_STATES:
                # Both Closes went (or the client broke the protocol): RFC 6455 7.1.1, the
                # server closes the TCP connection first.
                self._close_socket()
        if self.phase is WebSocketPhase.CLOSED:
            return
        if self._unacked > OUTPUT_HIGH_WATER_BYTES // 2 and self._output_bytes <= OUTPUT_LOW_WATER_BYTES:
            assert self._session is not None
            self._service.call_soon(self._session.acknowledge, self._unacked)
            self._unacked = 0
        self._update_interest()
        self._update_deadline()

    def _wants_to_read(self) -> bool:
        phase = self.phase
        if self._peer_eof:
            return False
        if phase is WebSocketPhase.OPEN:
            return self._queued < self._policy.max_queue
        if phase is WebSocketPhase.HANDSHAKE:
            # Only to notice a client that leaves; what it sends early is kept, bounded.
            connection = self._connection
            return connection is not None and connection.buffered_byte_count() < _EARLY_BYTES_MAX
        return phase is WebSocketPhase.CLOSING or phase is WebSocketPhase.LINGERING

    def _update_interest(self) -> None:
        events = EVENT_READ if self._wants_to_read() else 0
        if self._output_bytes or (self._tls is not None and self._tls.wants_write):
            events |= EVENT_WRITE
        if events == self._interest:
            return
        if not events:
            self._loop.unregister(self.socket)
        elif not self._interest:
            self._loop.register(self.socket, events, self)
        else:
            self._loop.modify(self.socket, events, self)
        self._interest = events

    # -- deadlines -------------------------------------------------------------------------

    def _next_deadline(self) -> Optional[tuple[float, _Timeout]]:
        """The earliest deadline now in force, and what it is for."""
        policy = self._policy
        candidates = []
        if self._output_bytes:
            candidates.append((self._last_sent_at + policy.send_timeout, _Timeout.SEND))
        phase = self.phase
        if phase is WebSocketPhase.OPEN:
            if self._ping_payload is not None:
                # While output waits, send_timeout is the limit: the Ping may be behind it.
                if policy.ping_timeout and not self._output_bytes:
                    candidates.append((self._ping_sent_at + policy.ping_timeout, _Timeout.PONG))
            elif policy.ping_interval:
                candidates.append((self._ping_sent_at + policy.ping_interval, _Timeout.PING))
        elif phase is WebSocketPhase.CLOSING:
            candidates.append((self._phase_started_at + CLOSE_TIMEOUT_SECONDS, _Timeout.CLOSE))
        elif phase is WebSocketPhase.LINGERING:
            candidates.append((self._phase_started_at + _LINGER_SECONDS, _Timeout.LINGER))
        return min(candidates, key=lambda candidate: candidate[0]) if candidates else None

    def _update_deadline(self) -> None:
        due = self._next_deadline()
        if due is None:
            return  # an armed timer finds nothing due and lapses
        timer = self._timer
        if timer is None or timer.when > due[0]:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(due[0], self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.phase is WebSocketPhase.CLOSED:
            return
        due = self._next_deadline()
        if due is not None and due[0] <= self._loop.time():
            self._expire(due[1])
        self._settle()

    def _expire(self, kind: _Timeout) -> None:
        if kind is _Timeout.PING:
            self._send_ping()
            return
        if self._policy.log_socket_errors and kind is not _Timeout.LINGER:
            log.info("closing WebSocket from %s: %s timed out", self._remote_addr, kind.value)
        connection = self._connection
        if kind is _Timeout.PONG and connection is not None and not connection.close_sent:
            self._write(connection.send_close(1011, "keepalive ping timeout"))
        self._close_socket()

    # -- ending ----------------------------------------------------------------------------

    def drain(self) -> bool:
        """Loop thread, at shutdown: close 1001 (or refuse a pending handshake with 503)
        and tell the application; True if nothing is left to wait for."""
        if self.phase is WebSocketPhase.HANDSHAKE:
            self._tell_disconnected(1001, "server shutting down")
            self._refuse(503, "The server is shutting down")
        elif self.phase is WebSocketPhase.OPEN:
            self._begin_close(1001, "server shutting down")
            self._settle()
        return self._reported

    def _log_answer(self, status: int) -> None:
        """Write the handshake's access-log line, once."""
        if self._arrived_at:
            self._service.log_handshake(self._request, self._environ, status, self._arrived_at)
            self._arrived_at = 0.0
            self._environ = None

    def _enter(self, phase: WebSocketPhase) -> None:
        self.phase = phase
        self._phase_started_at = self._loop.time()

    def _tell_disconnected(self, code: int, reason: str) -> None:
        if not self._told_disconnect and self._session is not None:
            self._told_disconnect = True
            self._service.call_soon(self._session.disconnected, code, reason)

    def _linger(self) -> None:
        """The refusal is sent: shut our side, then discard input for a while."""
        if self._peer_eof:
            self._close_socket()
            return
        if self._tls is not None:
            self._tls.close_notify()  # best effort: a refused handshake's last word
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError:
            self._close_socket()
            return
        self._enter(WebSocketPhase.LINGERING)

    def _connection_lost(self, error: Optional[OSError]) -> None:
        if error is not None and self._policy.log_socket_errors:
            log.debug("WebSocket connection from %s lost: %s", self._remote_addr, error)
        self._close_socket()

    def _close_socket(self) -> None:
        """Close the socket now (the application hears 1006 if it heard nothing yet)."""
        if self.phase is WebSocketPhase.CLOSED:
            return
        self.phase = WebSocketPhase.CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._interest:
            self._loop.unregister(self.socket)
            self._interest = 0
        try:
            self.socket.close()
        except OSError:
            pass
        self._output.clear()
        self._output_bytes = 0
        self._log_answer(CLIENT_CLOSED_REQUEST)  # the client left before the answer
        self._tell_disconnected(1006, "")
        self._finish_if_done()

    def _finish_if_done(self) -> None:
        if self.phase is WebSocketPhase.CLOSED and self._app_done and not self._reported:
            self._reported = True
            self._owner.channel_closed(self)

    def close(self) -> None:
        """Close now and stop waiting for the application (its task is cancelled).
        Idempotent."""
        self._close_socket()
        if not self._reported:
            if self._session is not None:
                self._service.call_soon(self._session.cancel)
            self._app_done = True
            self._finish_if_done()
