"""One client connection, driven by the loop thread.

A channel reads bytes into its sans-I/O :class:`~waitress_like.protocol.RequestParser`,
collects each request's body (spilling to a temp file past ``inbuf_overflow``), queues
complete requests, and runs them one at a time on the worker pool so that pipelined
responses go out in order. Each running request writes into an
:class:`~waitress_like.buffers.OutputPipe`, whose ``notify`` brings the channel back onto
the loop thread to send.

A channel follows a fixed :class:`~waitress_like.channel_policy.ChannelPolicy` and reaches
the rest of the server only through its :class:`ChannelOwner`: the loop, whether the
server drains, and the hand-off of requests to the application.

Bytes go through the channel's *transport*: the socket itself on a plain connection, or a
:class:`~waitress_like.tlsio.TLSStream` (same ``recv``/``send``/``sendmsg``) once a TLS
handshake is complete. The handshake runs first, non-blocking, under the head deadline
that starts at accept (after a PROXY protocol header, when one is expected).

A WebSocket upgrade request, when the owner takes WebSockets, ends the channel's part:
once the responses queued before it are sent, the channel gives its socket, the request
and the bytes read past its head to the owner (``upgrade_to_websocket``), and is done.

Thread contract: every method is loop-thread only, except :meth:`client_disconnected`
(any thread; it reads one flag) and the pipe notification, which only schedules
:meth:`_on_output` on the loop.
"""

from __future__ import annotations

import enum
import io
import logging
import socket
from typing import IO, Any, Optional, Protocol, Union

from .buffers import OutputPipe, RequestBody
from .channel_policy import ChannelPolicy
from .errors import RemoteProtocolError
from .haproxy import ProxyHeader, ProxyProtocolError
from .loop import EVENT_READ, EVENT_WRITE, LoopServices
from .protocol import BodyChunk, EndOfRequest, ParserState, RequestHead, RequestParser
from .protocol.response import simple_response
from .protocol.ws_handshake import is_websocket_upgrade
from .server_metrics import MetricsRecorder
from .tls import ServerTLS
from .tlsinfo import PLAINTEXT_HTTP_DETAIL
from .tlsio import PlainHTTPOnTLSPort, TLSStream
from .wsgi import WSGIRequest

__all__ = ["Channel", "ChannelOwner", "ChannelState"]

log = logging.getLogger("waitress_like")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# After the server decides to close, it waits this long for the client to stop sending
# before the final close, so a last error response is not destroyed by a TCP reset.
_LINGER_SECONDS = 2.0
_LINGER_MAX_BYTES = 256 * 1024
# At the connection limit, a connection whose head or body began less than this long ago
# is closed to make room only after every older one: clients that are not attacking send
# their request within milliseconds of connecting, so a young connection is most likely
# one whose request is on its way.
_EVICTION_GRACE_SECONDS = 1.0


class ChannelOwner(Protocol):
    """The server as a channel sees it. Both sides: loop thread only.

    ``draining`` is True once the server drains for shutdown: a response started then
    is the connection's last. ``at_capacity()`` is True when ``concurrency_limit``
    requests are in service (the next is answered 503). ``submit()`` hands a request to
    the application and counts it in service until ``request_done()``.
    ``channel_closed()`` is called once, when the channel has closed (not after an
    upgrade, see below). ``metrics`` is told of bytes, refusals and cut clients (see
    :class:`~waitress_like.server_metrics.MetricsRecorder`).
    ``accepts_websockets`` is True when the application takes WebSockets (ASGI, ``ws``
    not ``none``); ``upgrade_to_websocket()`` then takes the socket over from the channel
    for an upgrade request, with the bytes received after its head, and the channel
    never calls ``channel_closed()``.
    """

    @property
    def loop(self) -> LoopServices: ...

    @property
    def metrics(self) -> MetricsRecorder: ...

    @property
    def draining(self) -> bool: ...

    def at_capacity(self) -> bool: ...

    def submit(self, request: WSGIRequest, pipe: OutputPipe) -> None: ...

    def request_done(self) -> None: ...

    def channel_closed(self, channel: Channel) -> None: ...

    @property
    def accepts_websockets(self) -> bool: ...

    def upgrade_to_websocket(self, channel: Channel, request: WSGIRequest, leftover: bytes) -> None: ...


class ChannelState(enum.Enum):
    OPEN = "open"  # reading requests (and serving them one at a time)
    CLOSING = "closing"  # no more requests will be read; finish queued responses, then close
    LINGERING = "lingering"  # our side is shut; discarding what the client still sends
    CLOSED = "closed"


class _Deadline(enum.Enum):
    """What the channel is waiting for from the client, and so which timeout applies."""

    NONE = "none"
    HEAD = "request head"  # from the head's first byte to its end (request_head_timeout)
    BODY = "request body"  # between two received pieces of a body (request_body_timeout)
    SEND = "send"  # between two pieces of output the client accepts (send_timeout)
    IDLE = "next request"  # idle keep-alive (keepalive_timeout, max_connection_age)


class _ErrorReply:
    """A response the server answers by itself, queued in order with real requests."""

    __slots__ = ("data", "close_connection")

    def __init__(self, data: bytes, close_connection: bool = True) -> None:
        self.data = data
        self.close_connection = close_connection


_Job = Union[WSGIRequest, _ErrorReply]


class Channel:
    """A client connection. Create on the loop thread right after ``accept()``."""

    # Slots, not a __dict__: a server may hold 10,000 idle connections, and each one's
    # size is the server's memory per connection.
    __slots__ = (
        "_policy",
        "_owner",
        "_loop",
        "_metrics",
        "socket",
        "transport",
        "_tls",
        "_tls_pending",
        "_listener",
        "_remote_addr",
        "_remote_port",
        "_proxy_trusted",
        "_preamble",
        "state",
        "_parser",
        "_receiving",
        "_continue_due",
        "_upgrade",
        "_ready",
        "_active",
        "_active_is_request",
        "_peer_eof",
        "_peer_gone",
        "_interest",
        "_linger_timer",
        "_linger_bytes",
        "last_activity",
        "_created_at",
        "_requests_started",
        "_last_received_at",
        "_last_sent_at",
        "_head_started_at",
        "_progress_started_at",
        "_progress_bytes",
        "received_bytes",
        "sent_bytes",
        "_deadline",
        "_deadline_at",
        "_deadline_timer",
    )

    def __init__(
        self,
        policy: ChannelPolicy,
        owner: ChannelOwner,
        sock: socket.socket,
        peer: Any,
        listener: Any,
        tls: Optional[ServerTLS] = None,
    ) -> None:
        """``tls`` is the context of a TLS listener's new connection (None: plain HTTP)."""
        self._policy = policy
        self._owner = owner
        self._loop = owner.loop
        self._metrics = owner.metrics
        self.socket = sock
        # What recv/send go through: the socket itself (plain HTTP, and a TLS connection
        # until its handshake is complete), then the TLSStream.
        self.transport: Any = sock
        self._tls: Optional[TLSStream] = None  # created once a PROXY header (if any) is read
        self._tls_pending = tls  # set while the TLS handshake is not complete
        self._listener = listener
        if listener.is_unix:
            self._remote_addr, self._remote_port = "localhost", ""
        else:
            self._remote_addr, self._remote_port = peer[0], str(peer[1])
        # Trust is decided once, from the real peer; a PROXY header only renames the client.
        self._proxy_trusted = policy.proxy.is_trusted(self._remote_addr, listener.is_unix)
        self._preamble = policy.proxy.preamble_reader(self._proxy_trusted)
        self.state = ChannelState.OPEN
        self._parser = RequestParser(policy.parser_limits)
        self._receiving: Optional[tuple[RequestHead, Optional[RequestBody]]] = None  # body None: none
        self._continue_due = False
        self._upgrade: Optional[RequestHead] = None  # a WebSocket upgrade to hand over
        # Requests waiting their turn; rarely more than one or two, so a list (a deque
        # costs several hundred bytes per idle connection).
        self._ready: list[_Job] = []
        self._active: Optional[OutputPipe] = None
        self._active_is_request = False  # the active pipe belongs to a submitted request
        self._peer_eof = False
        self._peer_gone = False
        self._interest = 0
        self._linger_timer: Any = None
        self._linger_bytes = 0
        self.last_activity = self._created_at = now = self._loop.time()
        self._requests_started = 0
        self._last_received_at = self._last_sent_at = now
        # The first head's deadline runs from accept, so a client that connects and never
        # sends a byte (or a PROXY header, or half a head) is cut like a slowloris.
        self._head_started_at: Optional[float] = now
        # Bytes received since the current head or body began (at _progress_started_at),
        # for request_min_rate and for choosing whom to close at the connection limit.
        self._progress_started_at = now
        self._progress_bytes = 0
        # Bytes moved (inside TLS, if any): the metrics read them, not told on each recv.
        self.received_bytes = self.sent_bytes = 0
        self._deadline = _Deadline.NONE
        self._deadline_at = 0.0
        self._deadline_timer: Any = None
        self._update_interest()
        self._update_deadline()

    # -- queries ---------------------------------------------------------------------------

    def client_disconnected(self) -> bool:
        """Any thread: True once the peer has closed or reset the connection."""
        return self._peer_gone

    @property
    def in_service(self) -> bool:
        """True while a response is being produced or sent, or requests wait their turn."""
        return self._active is not None or bool(self._ready)

    def metrics_state(self) -> str:
        """Loop thread: what the connection is doing, for the connections gauge.

        ``in_service`` (a request in the application, waiting its turn, or its response
        being sent), ``reading`` (a request head or body arriving, or the first one
        awaited), ``idle`` (keep-alive, between requests) or ``closing`` (lingering after
        the last response). ``websocket`` once the channel serves WebSocket sessions.
        """
        if self.state is ChannelState.LINGERING or self.state is ChannelState.CLOSED:
            return "closing"
        if self._active is not None or self._ready:
            return "in_service"
        if (
            self._receiving is None
            and self._head_started_at is None
            and self._parser.state is ParserState.IDLE
        ):
            return "idle"
        return "reading"

    # -- loop events -----------------------------------------------------------------------

    def handle_event(self, mask: int) -> None:
        if self._tls_pending is not None:
            if self.state is ChannelState.OPEN:
                self._handshake()
            return
        if mask & EVENT_WRITE and self.state is not ChannelState.CLOSED:
            if self._tls is not None and not self._flush_records():
                return
            self._advance()
        if mask & EVENT_READ and self.state is not ChannelState.CLOSED:
            if self.state is ChannelState.LINGERING:
                self._discard_input()
            else:
                self._read()

    def _read(self) -> None:
        try:
            # While a body streams in, read big blocks: every recv costs a trip through
            # the parser in Python, and an upload is all data (recv_bytes still governs
            # heads and idle connections).
            size = (
                self._policy.body_recv_bytes
                if self._parser.state is ParserState.BODY
                else self._policy.recv_bytes
            )
            data = self.transport.recv(size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._connection_lost(error)
            return
        if not data:
            # EOF: the client sends no more. It may still read (a half-close), so queued
            # responses are still sent; but the app may stop working for it.
            self._peer_eof = True
            self._peer_gone = True
            self._drop_partial_request()
        else:
            self.last_activity = self._last_received_at = self._loop.time()
            self._progress_bytes += len(data)
            self.received_bytes += len(data)
            if self._preamble is not None:
                data = self._read_preamble(data)
            self._parser.feed(data)
        self._advance()

    # -- TLS -------------------------------------------------------------------------------

    def _handshake(self) -> None:
        """Advance the TLS handshake (after the PROXY header, if one is expected).

        Until it completes, the head deadline from accept is the only one armed; it closes
        a connection that stalls (see :meth:`_check_deadline`). Plain HTTP instead of a
        ClientHello is answered 400 in plain text.
        """
        stream = self._tls
        if stream is None:
            received = self._receive_preamble() if self._preamble is not None else b""
            if received is None:
                return
            assert self._tls_pending is not None
            stream = self._tls = TLSStream(self.socket, self._tls_pending, received)
        try:
            done = stream.handshake()
        except PlainHTTPOnTLSPort:
            self._answer_plain_http()
            return
        except OSError as error:  # ssl.SSLError included: no shared version, bad bytes...
            if self._policy.log_socket_errors:
                log.debug("TLS handshake with %s failed: %s", self._remote_addr, error)
            self._connection_lost(error)
            return
        if not done:
            self._set_interest(EVENT_READ | (EVENT_WRITE if stream.wants_write else 0))
            return
        self._tls_pending = None
        self.transport = stream
        self._read()  # a TLS 1.3 client may have sent its request with its Finished
        if self.state is ChannelState.OPEN or self.state is ChannelState.CLOSING:
            self._advance()

    def _receive_preamble(self) -> Optional[bytes]:
        """Read PROXY protocol bytes from the socket; what follows the complete header,
        or None while it is incomplete (or the connection closed)."""
        try:
            data = self.socket.recv(self._policy.recv_bytes)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as error:
            self._connection_lost(error)
            return None
        if not data:
            self._connection_lost(None)
            return None
        self._progress_bytes += len(data)
        leftover = self._read_preamble(data)
        if self._preamble is not None or self.state is not ChannelState.OPEN:
            return None
        return leftover

    def _answer_plain_http(self) -> None:
        """A plain HTTP request on a TLS listener: 400 in plain text, then close."""
        if self._policy.log_socket_errors:
            log.info("closing connection from %s: plain HTTP sent to a TLS port", self._remote_addr)
        self._tls = self._tls_pending = None
        self._refuse(400, PLAINTEXT_HTTP_DETAIL)
        self._advance()

    def _flush_records(self) -> bool:
        """Send encrypted records the socket did not take yet; False if the channel closed."""
        stream = self._tls
        assert stream is not None
        unsent = stream.unsent_bytes
        if not unsent:
            return True
        try:
            stream.flush()
        except OSError as error:
            self._connection_lost(error)
            return False
        if stream.unsent_bytes != unsent:
            self._last_sent_at = self._loop.time()
        return True

    def _read_preamble(self, data: bytes) -> bytes:
        """Feed the PROXY protocol reader; return the bytes that are left for HTTP.

        Closes the connection for a malformed header, and for any header from a peer
        that is not a trusted proxy: only those may name another client.
        """
        assert self._preamble is not None
        try:
            header = self._preamble.feed(data)
        except ProxyProtocolError as error:
            self._refuse_preamble(str(error))
            return b""
        if not isinstance(header, ProxyHeader):
            return b""  # incomplete: bounded by the head deadline, which runs from accept
        self._preamble = None
        if header.version is not None:
            if not self._proxy_trusted:
                self._refuse_preamble("PROXY protocol header from a peer that is not a trusted proxy")
                return b""
            client = header.client_address()
            if client is not None:
                self._remote_addr, self._remote_port = client
        return header.leftover

    def _refuse_preamble(self, reason: str) -> None:
        if self._policy.log_socket_errors:
            log.info("closing connection from %s: %s", self._remote_addr, reason)
        self.close()

    def _schedule_output(self) -> None:
        """Any thread (a response's producer): bring the loop back to this channel."""
        self._loop.call_soon_threadsafe(self._on_output)

    def _on_output(self) -> None:
        """A worker queued output (or finished). Scheduled via the loop's call queue."""
        if self.state is not ChannelState.CLOSED and self.state is not ChannelState.LINGERING:
            self._advance()

    # -- the state machine -----------------------------------------------------------------

    def _advance(self) -> None:
        """Move the connection forward as far as it goes without blocking."""
        while self.state is ChannelState.OPEN or self.state is ChannelState.CLOSING:
            progressed = False
            if self.state is ChannelState.OPEN and len(self._ready) < self._policy.max_ready_requests:
                progressed = self._parse()
            if self._active is None:
                if self._ready:
                    self._start(self._ready.pop(0))
                    progressed = True
                elif self._continue_due:
                    self._continue_due = False
                    self._active = self._prefilled_pipe(_CONTINUE, close_connection=False)
                    progressed = True
                elif self.state is ChannelState.CLOSING:
                    if self._upgrade is not None:
                        self._hand_over()
                    else:
                        self._close_gracefully()
                    return
            if self._active is not None:
                if not self._send_active():
                    break
                progressed = True
            if not progressed:
                break
        if self.state is ChannelState.OPEN or self.state is ChannelState.CLOSING:
            self._update_interest()
            self._update_deadline()

    def _parse(self) -> bool:
        """Turn buffered bytes into queued requests. True if anything was queued."""
        parser = self._parser
        queued = False
        max_ready = self._policy.max_ready_requests
        while len(self._ready) < max_ready:
            try:
                event = parser.next_event()
            except RemoteProtocolError as error:
                self._protocol_error(error)
                return True
            if event is None:
                break
            if isinstance(event, RequestHead):
                if self._is_websocket_upgrade(event):
                    # Nothing more is read as HTTP; the hand-over waits for the responses
                    # queued before it (see _advance).
                    self._upgrade = event
                    self.state = ChannelState.CLOSING
                    return True
                self._head_started_at = None
                self._begin_progress(self._last_received_at)
                # Most requests have no body: no buffer for them (wsgi.input is then empty).
                has_body = event.content_length or event.chunked
                self._receiving = (event, RequestBody(self._policy.inbuf_overflow) if has_body else None)
                self._continue_due = event.expect_continue
            elif isinstance(event, BodyChunk):
                assert self._receiving is not None and self._receiving[1] is not None
                self._receiving[1].append(event.data)
            elif isinstance(event, EndOfRequest):
                assert self._receiving is not None
                head, body = self._receiving
                self._receiving = None
                if self._continue_due:
                    # The body came before we said 100: RFC 9110 10.1.1 lets us skip it,
                    # but waitress sends it, and clients written for it may read it first.
                    self._continue_due = False
                    self._ready.append(_ErrorReply(_CONTINUE, close_connection=False))
                if body is None:
                    self._ready.append(self._request(head, io.BytesIO(), 0))
                else:
                    self._ready.append(self._request(head, body.finish(), body.length))
                queued = True
        if parser.state is ParserState.HEAD and self._head_started_at is None:
            # The deadline runs from the head's first byte, which came with the last recv.
            self._head_started_at = self._last_received_at
            self._begin_progress(self._last_received_at)
        if parser.state is ParserState.DONE or (self._peer_eof and self._receiving is None):
            # No further request can come: the last one asked to close, or the client
            # has stopped sending.
            self.state = ChannelState.CLOSING
            queued = True
        return queued

    def _is_websocket_upgrade(self, head: RequestHead) -> bool:
        """True for an upgrade request the owner takes; others are served as HTTP."""
        if self._owner.accepts_websockets:
            return is_websocket_upgrade(head.version, head.headers)
        if log.isEnabledFor(logging.DEBUG) and is_websocket_upgrade(head.version, head.headers):
            log.debug(
                "WebSocket upgrade request from %s for %s served as plain HTTP: WebSockets are "
                "not available for this application (a WSGI application, or ws=none)",
                self._remote_addr,
                head.path,
            )
        return False

    def _hand_over(self) -> None:
        """Give the socket and the upgrade request to the owner; the channel is done."""
        head = self._upgrade
        assert head is not None
        self._upgrade = None
        request = self._request(head, io.BytesIO(), 0)
        leftover = self._parser.take_unparsed_bytes()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._set_interest(0)
        self.state = ChannelState.CLOSED  # closed for HTTP; the socket lives on elsewhere
        self._owner.upgrade_to_websocket(self, request, leftover)

    def _request(self, head: RequestHead, body: IO[bytes], length: int) -> WSGIRequest:
        """The request as the gateway takes it, with what this connection knows."""
        # Every argument by position: keywords cost a class call about 0.1 µs more.
        return WSGIRequest(
            head,
            body,
            length,
            self._remote_addr,
            self._remote_port,
            self._listener,
            self.client_disconnected,
            self._proxy_trusted,
            self._tls.info if self._tls is not None else None,
        )

    def _begin_progress(self, started_at: float) -> None:
        """A head or body begins: measure its rate from here (bytes already buffered count)."""
        self._progress_started_at = started_at
        self._progress_bytes = self._parser.buffered_byte_count()

    def _protocol_error(self, error: RemoteProtocolError) -> None:
        """Bad bytes: answer after the responses already queued, then close."""
        if self._policy.log_socket_errors:
            log.info("bad request from %s: %s", self._remote_addr, error)
        self._refuse(error.status_hint, str(error))

    def _refuse(self, status_code: int, detail: str) -> None:
        """Stop reading; answer ``status_code`` after the queued responses, then close."""
        # In the version of the request whose body was being read; HTTP/1.0 when the head
        # itself was bad, as waitress answers.
        version = self._receiving[0].version if self._receiving is not None else (1, 0)
        self._drop_partial_request()
        self.state = ChannelState.CLOSING
        self._metrics.request_rejected(status_code)
        reply = simple_response(status_code, detail, self._policy.server_header, close=True, version=version)
        self._ready.append(_ErrorReply(reply))

    def _start(self, job: _Job) -> None:
        if type(job) is _ErrorReply:
            self._active = self._prefilled_pipe(job.data, close_connection=job.close_connection)
            return
        policy = self._policy
        if self._owner.at_capacity():
            # Overload: answer at once rather than queue without bound.
            job.body.close()  # type: ignore[union-attr]
            self._metrics.request_rejected(503, "overload")
            reply = simple_response(
                503,
                "The server is at its concurrency limit; retry later",
                policy.server_header,
                close=False,
                extra_headers=(("Retry-After", policy.retry_after),),
            )
            self._active = self._prefilled_pipe(reply, close_connection=False)
            return
        self._active = pipe = OutputPipe(
            policy.outbuf_overflow,
            policy.outbuf_high_watermark,
            self._schedule_output,
        )
        self._requests_started += 1
        self._active_is_request = True
        if self._is_last_request():
            # Limits reached: this response says Connection: close and nothing after it
            # is read or served.
            pipe.last_response = True
            self.state = ChannelState.CLOSING
        self._owner.submit(job, pipe)  # type: ignore[arg-type]

    def _end_request(self) -> None:
        if self._active_is_request:
            self._active_is_request = False
            self._owner.request_done()

    def _is_last_request(self) -> bool:
        policy = self._policy
        if (
            policy.max_requests_per_connection
            and self._requests_started >= policy.max_requests_per_connection
        ):
            return True
        if policy.max_connection_age and self._loop.time() - self._created_at >= policy.max_connection_age:
            return True
        return self._owner.draining

    def _prefilled_pipe(self, data: bytes, close_connection: bool) -> OutputPipe:
        pipe = OutputPipe(len(data) + 1, len(data) + 1, _no_notify)
        pipe.write(data, finish=True, close_connection=close_connection)
        return pipe

    def _send_active(self) -> bool:
        """Send what the active response has queued. True if it is complete and sent."""
        pipe = self._active
        assert pipe is not None
        # Always through send_to, even when nothing seems queued: it is the consumer's one
        # look at the pipe, taken under the pipe's lock, and it re-arms the producer's
        # notification. Peeking without it could miss a write made just after the peek
        # whose notification was already spent (a lost wake-up).
        sent_before = pipe.sent_bytes
        try:
            pipe.send_to(self.transport)
        except OSError as error:
            self._connection_lost(error)
            return False
        if pipe.sent_bytes != sent_before:
            self._last_sent_at = self._loop.time()
            self.sent_bytes += pipe.sent_bytes - sent_before
        if not pipe.done:
            return False
        self._active = None
        self._end_request()
        self.last_activity = self._loop.time()
        if pipe.close_connection:
            self.state = ChannelState.CLOSING
            self._release_requests()  # pipelined requests after a closing response are dropped
            self._close_gracefully()
            return False
        return True

    def _update_interest(self) -> None:
        events = 0
        # Read while the parser may take more: it bounds a partial head or trailer section
        # itself (431 past max_request_header_size), and body bytes leave its buffer as
        # they arrive. With max_ready_requests queued the parser is not asked for events,
        # so reading stops and pipelined bytes wait in the kernel.
        if (
            self.state is ChannelState.OPEN
            and not self._peer_eof
            and len(self._ready) < self._policy.max_ready_requests
        ):
            events = EVENT_READ
        if self._active is not None and self._active.pending_bytes:
            events |= EVENT_WRITE
        elif self._tls is not None and self._tls.wants_write:
            events |= EVENT_WRITE  # the end of a response, or close_notify, still on its way
        self._set_interest(events)

    def _set_interest(self, events: int) -> None:
        if events == self._interest:
            return
        if events & EVENT_WRITE and not self._interest & EVENT_WRITE:
            self._last_sent_at = self._loop.time()  # the send clock starts when we must wait
        loop = self._loop
        if not events:
            loop.unregister(self.socket)
        elif not self._interest:
            loop.register(self.socket, events, self)
        else:
            loop.modify(self.socket, events, self)
        self._interest = events

    def drain(self) -> bool:
        """Loop thread, at shutdown. True if the channel needs no waiting for.

        Only a request already handed to the application is waited for: its response
        ends with Connection: close (or the connection closes after it), so the client
        retries elsewhere. Idle and half-received connections, and requests still queued
        behind the one in service, are dropped at once: nothing was promised to them.
        """
        if self.state is ChannelState.LINGERING:
            return True
        if self.state is ChannelState.OPEN and not self._active_is_request and not self._peer_eof:
            # Take what the client has already sent: a request that reached us before
            # the drain began is served (as the last one), not dropped.
            self._read()
            if self.state is ChannelState.CLOSED:
                return True
        if not self._active_is_request:
            self.close()
            return True
        self._release_requests()
        self.state = ChannelState.CLOSING
        if self._active is not None:
            self._active.last_response = True  # its head, if not yet out, says so
        return False

    # -- deadlines -------------------------------------------------------------------------

    def _update_deadline(self) -> None:
        """Pick the deadline for what we now wait on; arm one timer if none fires by then.

        A timer is only created on the slow paths (a partial head or body after a recv,
        a blocked send), and an armed timer is reused when the deadline moves later.
        """
        policy = self._policy
        parser_state = self._parser.state
        if self._interest & EVENT_WRITE:
            kind = _Deadline.SEND
            deadline_at = self._last_sent_at + policy.send_timeout
        elif self._interest & EVENT_READ and (
            parser_state is ParserState.HEAD
            or (parser_state is ParserState.IDLE and self._head_started_at is not None)
        ):
            # IDLE with a start time: the connection's first head, not begun yet.
            kind = _Deadline.HEAD
            started_at = self._head_started_at or self._last_received_at
            deadline_at = min(started_at + policy.request_head_timeout, self._min_rate_deadline())
        elif self._interest & EVENT_READ and parser_state is ParserState.BODY:
            kind = _Deadline.BODY
            deadline_at = min(self._last_received_at + policy.request_body_timeout, self._min_rate_deadline())
        elif self._interest & EVENT_READ and self._active is None and not self._ready:
            kind = _Deadline.IDLE
            deadline_at = self.last_activity + policy.keepalive_timeout
            if policy.max_connection_age:
                deadline_at = min(deadline_at, self._created_at + policy.max_connection_age)
        else:
            self._deadline = _Deadline.NONE
            return
        self._deadline = kind
        self._deadline_at = deadline_at
        timer = self._deadline_timer
        if timer is None or timer.when > deadline_at:
            if timer is not None:
                timer.cancel()
            self._deadline_timer = self._loop.call_at(deadline_at, self._check_deadline)

    def _min_rate_deadline(self) -> float:
        """When the head or body in progress falls below request_min_rate (inf: never).

        As mod_reqtimeout's MinRate: a grace period, then one more second for every
        ``request_min_rate`` bytes received since the head or body began.
        """
        policy = self._policy
        if not policy.request_min_rate:
            return float("inf")
        return (
            self._progress_started_at
            + policy.request_min_rate_grace
            + self._progress_bytes / policy.request_min_rate
        )

    def eviction_rank(self, now: float) -> Optional[tuple[float, ...]]:
        """Loop thread: how readily this connection gives up its slot at the connection
        limit (the lowest rank goes first), or None if it is being served.

        In order: connections lingering after their last response, idle keep-alive ones
        (longest idle first), heads and bodies arriving for longer than the rate grace
        (slowest average first), then younger ones (oldest first), which a real client
        has usually not had time to send on yet.
        """
        if self.state is ChannelState.LINGERING:
            return (0.0, self.last_activity)
        if self.state is not ChannelState.OPEN or self._active is not None or self._ready:
            return None
        if self._head_started_at is None and self._parser.state is ParserState.IDLE:
            return (1.0, self.last_activity)
        elapsed = now - self._progress_started_at
        if elapsed < _EVICTION_GRACE_SECONDS:
            return (3.0, self._progress_started_at)
        return (2.0, self._progress_bytes / elapsed, self._progress_started_at)

    def evict(self) -> None:
        """Loop thread: give up the slot for a newer connection (see eviction_rank)."""
        if self._policy.log_socket_errors and self.state is ChannelState.OPEN:
            log.debug("closing connection from %s to make room at the connection limit", self._remote_addr)
        self._metrics.connection_evicted()
        self.close()

    def _check_deadline(self) -> None:
        """Timer callback: act on an expired deadline, or re-arm for a later one."""
        self._deadline_timer = None
        if self.state is not ChannelState.OPEN and self.state is not ChannelState.CLOSING:
            return
        if self._deadline is _Deadline.NONE:
            return
        remaining = self._deadline_at - self._loop.time()
        if remaining > 0:
            self._deadline_timer = self._loop.call_at(self._deadline_at, self._check_deadline)
            return
        kind = self._deadline
        self._deadline = _Deadline.NONE
        if kind is not _Deadline.IDLE:
            self._metrics.slow_client_cut("proxy_header" if self._preamble is not None else kind.name.lower())
        if self._preamble is not None:
            # Still inside a PROXY protocol header: a proxy, not a client, so no response.
            self._refuse_preamble("the PROXY protocol header was not received in time")
            return
        if self._tls_pending is not None:
            # No TLS session to answer in: a handshake that stalls is simply closed.
            if self._policy.log_socket_errors:
                log.info("closing connection from %s: the TLS handshake timed out", self._remote_addr)
            self.close()
            return
        if self._policy.log_socket_errors and kind is not _Deadline.IDLE:
            log.info("closing connection from %s: %s timed out", self._remote_addr, kind.value)
        if kind is _Deadline.SEND:
            self.close()  # aborts the response, which frees its worker
        elif kind is _Deadline.IDLE:
            self._close_gracefully()
        else:
            self._refuse(408, f"The {kind.value} was not received in time")
            self._advance()

    # -- ending ----------------------------------------------------------------------------

    def _drop_partial_request(self) -> None:
        if self._receiving is not None:
            if self._receiving[1] is not None:
                self._receiving[1].close()
            self._receiving = None
        self._continue_due = False

    def _connection_lost(self, error: Optional[OSError]) -> None:
        if error is not None and self._policy.log_socket_errors:
            log.debug("connection from %s lost: %s", self._remote_addr, error)
        self._peer_gone = True
        self.close()

    def _close_gracefully(self) -> None:
        """Our side is done. If the client may still be sending, linger before closing."""
        if self._peer_eof:
            self.close()
            return
        if self._tls is not None and self._tls_pending is None:
            # close_notify goes before the TCP FIN, after the records still waiting; while
            # they wait, write interest stays on and the send deadline applies.
            try:
                if not self._tls.close_notify():
                    self.state = ChannelState.CLOSING  # read nothing more
                    self._release_requests()
                    self._update_interest()
                    self._update_deadline()
                    return
            except OSError:
                self.close()
                return
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        self.state = ChannelState.LINGERING
        self._release_requests()
        self._set_interest(EVENT_READ)
        self._linger_timer = self._loop.call_later(_LINGER_SECONDS, self.close)

    def _discard_input(self) -> None:
        try:
            data = self.socket.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self._linger_bytes += len(data)
        if not data or self._linger_bytes > _LINGER_MAX_BYTES:
            self.close()

    def _release_requests(self) -> None:
        self._drop_partial_request()
        self._upgrade = None
        for job in self._ready:
            if type(job) is WSGIRequest:
                job.body.close()
        self._ready.clear()

    def close(self) -> None:
        """Close now: abort the active response and free everything. Idempotent."""
        if self.state is ChannelState.CLOSED:
            return
        self.state = ChannelState.CLOSED
        self._peer_gone = True
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._set_interest(0)
        try:
            self.socket.close()
        except OSError:
            pass
        if self._active is not None:
            self._active.abort()  # wakes a worker blocked on back-pressure
            self._active = None
            self._end_request()
        self._release_requests()
        self._owner.channel_closed(self)


def _no_notify() -> None:
    """Pre-filled pipes are written on the loop thread, which is already awake."""
