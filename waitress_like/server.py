"""Composition: listeners, the loop, the worker pool and the application, run together.

Thread contract: :meth:`Server.run` runs the loop on the calling thread until
:meth:`Server.close`, which any thread may call. Everything else here runs on the loop
thread once ``run()`` has started.
"""

from __future__ import annotations

import errno
import functools
import logging
import socket
import threading
import time
from typing import Any, Callable, Optional

from .buffers import OutputPipe
from .channel import Channel
from .config import Settings
from .listeners import Listener, bind_listeners
from .loop import EVENT_READ, EventLoop
from .pool import WorkerPool
from .protocol import ParserLimits
from .wsgi import WSGIGateway, WSGIRequest

__all__ = ["Server", "ChannelContext", "create_server"]

log = logging.getLogger("waitress_like")

# accept() errors that say "the system is out of something": retrying at once would spin.
_RESOURCE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM") if hasattr(errno, name)
)
_ACCEPT_BACKOFF_SECONDS = 0.5
_ACCEPTS_PER_WAKE = 64


class ChannelContext:
    """What every channel of one server shares: limits, the loop, the way to run a request.

    Built once on the creating thread and read-only afterwards, except that
    :meth:`submit` and :meth:`channel_closed` are called on the loop thread.
    """

    def __init__(
        self,
        settings: Settings,
        loop: EventLoop,
        submit: Callable[[WSGIRequest, OutputPipe], None],
        channel_closed: Callable[[Channel], None],
    ) -> None:
        self.loop = loop
        self.submit = submit
        self.channel_closed = channel_closed
        self.parser_limits = ParserLimits(
            max_header_bytes=settings.max_request_header_size,
            max_body_bytes=settings.max_request_body_size,
        )
        self.recv_bytes = settings.recv_bytes
        self.inbuf_overflow = settings.inbuf_overflow
        self.outbuf_overflow = settings.outbuf_overflow
        self.outbuf_high_watermark = settings.outbuf_high_watermark
        self.ident = settings.ident
        self.request_head_timeout = settings.request_head_timeout
        self.request_body_timeout = settings.request_body_timeout
        self.send_timeout = settings.send_timeout
        self.log_socket_errors = settings.log_socket_errors
        # Requests parsed ahead of the one in service. At least one, so a client closing
        # its side is noticed while its request runs (client_disconnected).
        self.max_ready_requests = max(1, settings.channel_request_lookahead)
        # Unparsed pipelined bytes held per channel before the channel stops reading.
        self.max_buffered_bytes = max(settings.recv_bytes, 65536)


class _Acceptor:
    """The loop's handler for one listening socket."""

    __slots__ = ("server", "listener")

    def __init__(self, server: Server, listener: Listener) -> None:
        self.server = server
        self.listener = listener

    def handle_event(self, mask: int) -> None:
        self.server._accept(self.listener)


class Server:
    """A running WSGI server: bound listeners plus the loop and pool that serve them.

    ``effective_host``/``effective_port`` (the first listener, as waitress has them) and
    :attr:`addresses` tell where it listens, so ``port=0`` is usable.
    """

    def __init__(self, app: Any, settings: Settings, listeners: list[Listener]) -> None:
        self.application = app
        self.settings = settings
        self.listeners = listeners
        self.loop = EventLoop()
        self.pool = WorkerPool(settings.threads)
        self.gateway = WSGIGateway(
            app,
            server_name=settings.server_name,
            url_scheme=settings.url_scheme,
            url_prefix=settings.url_prefix,
            ident=settings.ident,
            expose_tracebacks=settings.expose_tracebacks,
        )
        self.context = ChannelContext(settings, self.loop, self._submit, self._channel_closed)
        self.channels: set[Channel] = set()
        self._acceptors = [_Acceptor(self, listener) for listener in listeners]
        self._accepting = False
        self._accept_paused_until = 0.0
        self._closing = False
        self._closed = False
        self._run_lock = threading.Lock()
        self._running = False
        self._stopped = threading.Event()
        self._loop_thread: Optional[threading.Thread] = None

    # -- where it listens --------------------------------------------------------------------

    @property
    def addresses(self) -> list[Any]:
        """Every bound address: ``(host, port)`` tuples (IPv6 ones longer) or unix paths."""
        return [listener.address for listener in self.listeners]

    @property
    def effective_host(self) -> Any:
        address = self.listeners[0].address
        return address if isinstance(address, str) else address[0]

    @property
    def effective_port(self) -> Optional[int]:
        address = self.listeners[0].address
        return None if isinstance(address, str) else address[1]

    @property
    def effective_listen(self) -> list[tuple[Any, Any]]:
        return [
            (lsn.address, None) if isinstance(lsn.address, str) else (lsn.address[0], lsn.address[1])
            for lsn in self.listeners
        ]

    def print_listen(self, format_str: str = "Serving on {}") -> None:
        """Log one line per listener; ``format_str`` gets the listener's URL."""
        for listener in self.listeners:
            log.info(format_str.format(listener.display))

    # -- running -----------------------------------------------------------------------------

    def run(self) -> None:
        """Serve on the calling thread until :meth:`close` (or KeyboardInterrupt)."""
        with self._run_lock:
            if self._running:
                raise RuntimeError("this server is already running")
            if self._closing:
                return  # closed before it ever ran: nothing to do
            self._running = True
            self._loop_thread = threading.current_thread()
        try:
            self.pool.start()
            self._resume_accepting()
            self._schedule_cleanup()
            self.loop.run()
        finally:
            self._shutdown()

    def close(self, timeout: Optional[float] = None) -> None:
        """Any thread: stop accepting, close every connection, stop the workers.

        From a thread other than the loop's, waits for :meth:`run` to return (at most
        ``timeout`` seconds when given). Safe to call more than once.
        """
        with self._run_lock:
            self._closing = True
            running = self._running
        if not running:
            self._shutdown()
            return
        self.loop.stop()
        if threading.current_thread() is not self._loop_thread:
            self._stopped.wait(timeout)

    def _shutdown(self) -> None:
        with self._run_lock:
            if self._closed:
                return
            self._closed = True
        self._closing = True
        try:
            self._pause_accepting()
            for listener in self.listeners:
                listener.close()
            for channel in list(self.channels):
                channel.close()
            self.pool.shutdown(timeout_seconds=5.0)
            self.loop.close()
        finally:
            self._stopped.set()

    # -- loop thread -----------------------------------------------------------------------

    def _submit(self, request: WSGIRequest, pipe: OutputPipe) -> None:
        self.pool.submit(functools.partial(self.gateway.run, request, pipe))

    def _accept(self, listener: Listener) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
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
                    self._pause_accepting()
                    self._accept_paused_until = time.monotonic() + _ACCEPT_BACKOFF_SECONDS
                    self.loop.call_later(_ACCEPT_BACKOFF_SECONDS, self._resume_after_backoff)
                    return
                # ECONNABORTED and friends: that one client gave up; take the next.
                continue
            self._open_channel(sock, peer, listener)
            if len(self.channels) >= self.settings.connection_limit:
                self._pause_accepting()
                return

    def _open_channel(self, sock: socket.socket, peer: Any, listener: Listener) -> None:
        try:
            sock.setblocking(False)
            if not listener.is_unix:
                # Responses are written whole; Nagle would only delay the last segment.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            return
        channel = Channel(self.context, sock, peer, listener)
        self.channels.add(channel)

    def _channel_closed(self, channel: Channel) -> None:
        self.channels.discard(channel)
        if (
            not self._accepting
            and not self._closing
            and len(self.channels) < self.settings.connection_limit
            and time.monotonic() >= self._accept_paused_until
        ):
            self._resume_accepting()

    def _resume_after_backoff(self) -> None:
        if not self._closing and len(self.channels) < self.settings.connection_limit:
            self._resume_accepting()

    def _resume_accepting(self) -> None:
        if self._accepting:
            return
        self._accepting = True
        for acceptor in self._acceptors:
            self.loop.register(acceptor.listener.socket, EVENT_READ, acceptor)

    def _pause_accepting(self) -> None:
        # Unregistering leaves new clients waiting in the kernel's backlog until we resume.
        if not self._accepting:
            return
        self._accepting = False
        for acceptor in self._acceptors:
            self.loop.unregister(acceptor.listener.socket)

    def _schedule_cleanup(self) -> None:
        self.loop.call_later(self.settings.cleanup_interval, self._cleanup)

    def _cleanup(self) -> None:
        """Close channels idle for longer than channel_timeout; never one in service."""
        cutoff = time.monotonic() - self.settings.channel_timeout
        for channel in list(self.channels):
            if not channel.in_service and channel.last_activity < cutoff:
                channel.close()
        self._schedule_cleanup()


def create_server(app: Any, **settings: Any) -> Server:
    """Validate ``settings``, bind every listener and return a server ready to :meth:`run`.

    Raises :class:`~waitress_like.errors.ConfigError` for a bad setting and
    :class:`~waitress_like.listeners.BindError` when an address cannot be bound.
    """
    validated = Settings.from_mapping(settings)
    listeners = bind_listeners(
        validated.listen,
        ipv4=validated.ipv4,
        ipv6=validated.ipv6,
        backlog=validated.backlog,
        unix_socket=validated.unix_socket,
        unix_socket_perms=validated.unix_socket_perms,
        sockets=validated.sockets,
    )
    return Server(app, validated, listeners)
