"""Composition: listeners, the loop, the worker pool and the application, run together.

Thread contract: :meth:`Server.run` runs the loop on the calling thread until
:meth:`Server.close`, which any thread may call. Everything else here runs on the loop
thread once ``run()`` has started.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import socket
import threading
from typing import Any, Callable, Optional

from .accesslog import AccessLog
from .admission import ConnectionTable
from .asgi import resolve_application
from .buffers import OutputPipe
from .channel import Channel
from .config import Settings
from .listeners import Listener, bind_listeners, inherited_sockets, systemd_listen_fds
from .loop import EVENT_READ, EventLoop
from .pool import WorkerPool
from .protocol import ParserLimits
from .protocol.response import simple_response
from .proxy import ProxyPolicy, trusted_proxy_from_environment
from .wsgi import WSGIGateway, WSGIRequest

__all__ = ["Server", "ChannelContext", "create_server", "run_until_signalled"]

log = logging.getLogger("waitress_like")

# accept() errors that say "the system is out of something": retrying at once would spin.
_RESOURCE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM") if hasattr(errno, name)
)
_ACCEPT_BACKOFF_SECONDS = 0.5
# At the limit with every connection being served, look again this often for one that
# can make room (a connection becoming idle does not tell the server).
_FULL_RETRY_SECONDS = 0.25
_ACCEPTS_PER_WAKE = 64
_QUEUE_WARNING_INTERVAL_SECONDS = 10.0
_BODY_RECV_BYTES = 256 * 1024


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
        at_capacity: Callable[[], bool],
        *,
        proxy: ProxyPolicy,
    ) -> None:
        self.loop = loop
        self.proxy = proxy  # which peers are trusted proxies; the PROXY protocol readers
        self.submit = submit
        self.at_capacity = at_capacity
        self.channel_closed = channel_closed
        self.parser_limits = ParserLimits(
            max_header_bytes=settings.max_request_header_size,
            max_body_bytes=settings.max_request_body_size,
            max_header_count=settings.limit_request_fields,
        )
        self.recv_bytes = settings.recv_bytes
        self.body_recv_bytes = max(settings.recv_bytes, _BODY_RECV_BYTES)
        self.inbuf_overflow = settings.inbuf_overflow
        self.outbuf_overflow = settings.outbuf_overflow
        self.outbuf_high_watermark = settings.outbuf_high_watermark
        # The Server header of responses the server writes itself (errors, 503s).
        self.ident = (settings.ident or "") if settings.server_header else ""
        self.keepalive_timeout = settings.keepalive_timeout
        self.max_connection_age = settings.max_connection_age
        self.max_requests_per_connection = settings.max_requests_per_connection
        self.retry_after = str(settings.retry_after)
        # True once the server drains for shutdown (loop thread writes, channels read).
        self.draining = False
        # Requests handed to the pool whose response is not complete yet. Loop thread
        # only, so it changes in step with what clients can observe.
        self.requests_in_service = 0
        self.request_head_timeout = settings.request_head_timeout
        self.request_body_timeout = settings.request_body_timeout
        self.request_min_rate = settings.request_min_rate
        self.request_min_rate_grace = settings.request_min_rate_grace
        self.send_timeout = settings.send_timeout
        self.log_socket_errors = settings.log_socket_errors
        # Requests parsed ahead of the one in service. At least one, so a client closing
        # its side is noticed while its request runs (client_disconnected).
        self.max_ready_requests = max(1, settings.channel_request_lookahead)


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

    def __init__(self, app: Any, settings: Settings, listeners: list[Listener], lifespan: Any = None) -> None:
        self.application = app
        # startup() before serving, shutdown() after the workers stop (an ASGIAdapter).
        self.lifespan = lifespan
        self.settings = settings
        self.listeners = listeners
        self.loop = EventLoop()
        self.pool = WorkerPool(
            settings.threads,
            max_thread_count=settings.max_threads,
            idle_timeout_seconds=settings.thread_idle_timeout,
        )
        proxy = ProxyPolicy.from_settings(settings)
        self.gateway = WSGIGateway(
            app,
            server_name=settings.server_name,
            url_scheme=settings.url_scheme,
            url_prefix=settings.url_prefix,
            ident=settings.ident or "",
            expose_tracebacks=settings.expose_tracebacks,
            server_header=settings.server_header,
            date_header=settings.date_header,
            default_headers=settings.default_headers,
            proxy=proxy if proxy.rewrites_environ else None,
        )
        access_log = AccessLog(settings.access_log_format, settings.access_log)
        self.access_log: Optional[AccessLog] = access_log if access_log.enabled else None
        self.gateway.access_log = self.access_log
        self.context = ChannelContext(
            settings, self.loop, self._submit, self._channel_closed, self._at_capacity, proxy=proxy
        )
        self._queue_warning_at = 0.0
        self.channels = ConnectionTable(settings.connection_limit, settings.connection_limit_per_address)
        self._acceptors = [_Acceptor(self, listener) for listener in listeners]
        self._accepting = False
        self._accept_paused_until = 0.0
        self._closing = False
        self._closed = False
        self._run_lock = threading.Lock()
        self._running = False
        self._stopped = threading.Event()
        self._loop_thread: Optional[threading.Thread] = None
        self._drain_timer: Any = None
        self.drained_cleanly = True
        #: Requests handed to the application so far (loop thread writes; any thread may
        #: read it, e.g. for max_requests).
        self.requests_started = 0

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
        """Serve on the calling thread until :meth:`close` (or KeyboardInterrupt).

        An ASGI application's lifespan startup runs first; when it fails this raises
        :class:`~waitress_like.asgi.LifespanError`, having closed the server.
        """
        with self._run_lock:
            if self._running:
                raise RuntimeError("this server is already running")
            if self._closing:
                return  # closed before it ever ran: nothing to do
            self._running = True
            self._loop_thread = threading.current_thread()
        try:
            if self.lifespan is not None:
                self.lifespan.startup()
            self.pool.start()
            self._resume_accepting()
            self._schedule_cleanup()
            self.loop.run()
        finally:
            self._shutdown()

    def close(self, timeout: Optional[float] = None) -> None:
        """Any thread: shut down gracefully, then stop.

        Stops accepting at once (the listening sockets close, so new clients are
        refused), closes idle connections, lets requests in flight finish for up to
        ``timeout`` seconds (default: the ``graceful_timeout`` setting), then closes what
        is left and stops the workers. From a thread other than the loop's, waits for
        :meth:`run` to return. Safe to call more than once.
        """
        with self._run_lock:
            self._closing = True
            running = self._running
        if not running:
            self._shutdown()
            return
        grace = self.settings.graceful_timeout if timeout is None else timeout
        if threading.current_thread() is self._loop_thread:
            self._begin_drain(grace)
            return
        self.loop.call_soon_threadsafe(self._begin_drain, grace)
        self._stopped.wait(grace + 10)

    def drain_soon(self) -> None:
        """Any thread, or a signal handler: begin the graceful drain (see :meth:`close`)
        on the loop thread, with the ``graceful_timeout`` grace period. Returns at once."""
        self.loop.call_soon_from_signal(self._begin_drain)

    def stop_soon(self) -> None:
        """Any thread, or a signal handler: close every connection and stop, without
        waiting for requests in flight. Returns at once."""
        self.loop.call_soon_from_signal(self._force_stop)

    def _begin_drain(self, grace_seconds: Optional[float] = None) -> None:
        """Loop thread: stop accepting, close idle connections, finish the others."""
        if self.context.draining:
            return
        if grace_seconds is None:
            grace_seconds = self.settings.graceful_timeout
        with self._run_lock:
            self._closing = True
        self.context.draining = True
        self._pause_accepting()
        for listener in self.listeners:
            listener.close()
        busy = 0
        for channel in list(self.channels):
            if not channel.drain():
                busy += 1
        log.info("Shutting down: waiting up to %ss for %d connections in service", grace_seconds, busy)
        self._drain_timer = self.loop.call_later(grace_seconds, self._drain_expired)
        self._stop_if_drained()

    def _drain_expired(self) -> None:
        if self.channels:
            log.warning(
                "Shutdown grace period over: closing %d connections still in service", len(self.channels)
            )
            self.drained_cleanly = False
        self._force_stop()

    def _force_stop(self) -> None:
        """Loop thread: close every connection now and stop the loop."""
        if self.channels and self.context.draining:
            self.drained_cleanly = False
        with self._run_lock:
            self._closing = True
        for channel in list(self.channels):
            channel.close()
        self.loop.stop()

    def _stop_if_drained(self) -> None:
        if self.context.draining and not self.channels:
            if self._drain_timer is not None:
                self._drain_timer.cancel()
            self.loop.stop()

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
            # After a clean drain every worker is idle and stops at once. After a forced
            # stop a worker may be stuck in the application: give it a moment, no more
            # (worker threads are daemons, so they do not keep the process alive).
            if not self.pool.shutdown(timeout_seconds=5.0 if self.drained_cleanly else 0.5):
                log.warning("some worker threads are still running the application")
            if self.access_log is not None:
                self.access_log.close()
            if self.lifespan is not None:
                self.lifespan.shutdown()
            self.loop.close()
        finally:
            self._stopped.set()

    # -- loop thread -----------------------------------------------------------------------

    def _submit(self, request: WSGIRequest, pipe: OutputPipe) -> None:
        self.requests_started += 1
        self.pool.submit(functools.partial(self.gateway.run, request, pipe))
        # As waitress: only jobs beyond the idle workers are really waiting.
        depth = self.pool.queued_count - self.pool.idle_count
        if depth > 0:
            now = self.loop.time()
            # waitress logs this on every queued request; once every interval is enough
            # to be noticed without flooding the log under load.
            if now >= self._queue_warning_at:
                self._queue_warning_at = now + _QUEUE_WARNING_INTERVAL_SECONDS
                log.warning("Task queue depth is %d", depth)

    def _at_capacity(self) -> bool:
        """Loop thread: True when concurrency_limit requests are running or queued."""
        limit = self.settings.concurrency_limit
        return bool(limit) and self.context.requests_in_service >= limit

    def _accept(self, listener: Listener) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            victim = None
            if self.channels.full:
                victim = self.channels.victim(self.loop.time())
                if victim is None:
                    self._pause_while_full()
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
                    self._pause_accepting()
                    self._accept_paused_until = self.loop.time() + _ACCEPT_BACKOFF_SECONDS
                    self.loop.call_later(_ACCEPT_BACKOFF_SECONDS, self._resume_after_backoff)
                    return
                # ECONNABORTED and friends: that one client gave up; take the next.
                continue
            if victim is not None:
                victim.evict()
            self._open_channel(sock, peer, listener)

    def _pause_while_full(self) -> None:
        """Every connection is being served: leave newcomers in the backlog for a while."""
        self._pause_accepting()
        self.loop.call_later(_FULL_RETRY_SECONDS, self._resume_after_backoff)

    def _open_channel(self, sock: socket.socket, peer: Any, listener: Listener) -> None:
        address = "" if listener.is_unix else peer[0]
        if self.channels.address_full(address):
            _refuse_over_address_cap(sock, self.context.ident)
            return
        try:
            sock.setblocking(False)
            if not listener.is_unix:
                # Responses are written whole; Nagle would only delay the last segment.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            return
        channel = Channel(self.context, sock, peer, listener)
        self.channels.add(channel, address)

    def _channel_closed(self, channel: Channel) -> None:
        self.channels.discard(channel)
        if self.context.draining:
            self._stop_if_drained()
            return
        if (
            not self._accepting
            and not self._closing
            and len(self.channels) < self.settings.connection_limit
            and self.loop.time() >= self._accept_paused_until
        ):
            self._resume_accepting()

    def _resume_after_backoff(self) -> None:
        # At the limit too: the next accept looks for a connection to make room.
        if not self._closing and not self.context.draining:
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
        cutoff = self.loop.time() - self.settings.channel_timeout
        for channel in list(self.channels):
            if not channel.in_service and channel.last_activity < cutoff:
                channel.close()
        self._schedule_cleanup()


def _refuse_over_address_cap(sock: socket.socket, ident: str) -> None:
    """A peer over connection_limit_per_address: a best-effort 503, then close.

    One non-blocking send: a fresh socket's buffer holds the short response, and if it
    does not (or the peer is gone) the close alone says no.
    """
    try:
        sock.setblocking(False)
        sock.send(simple_response(503, "Too many connections from your address", ident, close=True))
    except OSError:
        pass
    finally:
        sock.close()


def run_until_signalled(server: Server) -> bool:
    """Run ``server`` on this (main) thread; SIGTERM/SIGINT (and Ctrl-Break on Windows)
    drain it gracefully, a second signal stops it at once. Returns True if the drain was
    clean (every request in flight finished within the grace period).
    """
    signal_names = ["SIGTERM", "SIGINT", "SIGBREAK"]
    signals = [getattr(signal, name) for name in signal_names if hasattr(signal, name)]
    received = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            server.drain_soon()
        else:
            server.stop_soon()

    previous = {}
    previous_wakeup_fd = None
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            previous[signum] = signal.signal(signum, on_signal)
        previous_wakeup_fd = signal.set_wakeup_fd(server.loop.wakeup_fileno(), warn_on_full_buffer=False)
    try:
        server.run()
    finally:
        if previous_wakeup_fd is not None:
            signal.set_wakeup_fd(previous_wakeup_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return server.drained_cleanly


def create_server(app: Any, **settings: Any) -> Server:
    """Validate ``settings``, bind every listener and return a server ready to :meth:`run`.

    Raises :class:`~waitress_like.errors.ConfigError` for a bad setting and
    :class:`~waitress_like.listeners.BindError` when an address cannot be bound.
    Sockets passed by systemd socket activation are used as if given as ``fd``.
    """
    if "fd" not in settings:
        systemd_fds = systemd_listen_fds(os.environ)
        if systemd_fds:
            settings = {**settings, "fd": systemd_fds}
    settings = trusted_proxy_from_environment(settings, os.environ)
    validated = Settings.from_mapping(settings)
    if validated.workers > 1:
        from .errors import ConfigError

        raise ConfigError(
            "workers",
            validated.workers,
            "create_server() builds one server in this process; for worker processes use serve() "
            "or waitress-like-serve",
        )
    app, lifespan = resolve_application(app, validated.interface, validated.lifespan)
    inherited = inherited_sockets(validated.fd)
    listeners = bind_listeners(
        validated.listen,
        ipv4=validated.ipv4,
        ipv6=validated.ipv6,
        backlog=validated.backlog,
        unix_socket=validated.unix_socket,
        unix_socket_perms=validated.unix_socket_perms,
        sockets=(*validated.sockets, *inherited),
    )
    return Server(app, validated, listeners, lifespan)
