"""Composition: listeners, the loop, the worker pool and the application, run together.

Thread contract: :meth:`Server.run` runs the loop on the calling thread until
:meth:`Server.close`, which any thread may call (:meth:`Server.drain_soon`,
:meth:`Server.stop_soon` and :meth:`Server.reload_tls_soon` also from signal handlers;
:meth:`Server.reload_tls` from any thread). Everything else here runs on the loop thread
once ``run()`` has started.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import signal
import socket
import threading
from typing import Any, Callable, Optional

from .accesslog import AccessLog
from .admission import Acceptor, ConnectionTable
from .asgi import resolve_application
from .buffers import OutputPipe
from .channel import Channel
from .channel_policy import ChannelPolicy
from .config import Settings
from .errors import ConfigError
from .listeners import Listener, bind_listeners, inherited_sockets, systemd_listen_fds
from .logsetup import reopen_log_files_soon
from .loop import EventLoop
from .pool import WorkerPool
from .protocol.response import simple_response
from .proxy import ProxyPolicy, trusted_proxy_from_environment
from .server_metrics import NO_METRICS, MetricsRecorder, metrics_from_settings
from .tls import TLSContextHolder, create_context_holder
from .wschannel import WebSocketService
from .wsgi import WSGIGateway, WSGIRequest

__all__ = ["Server", "ServerState", "assemble_server", "create_server", "run_until_signalled"]

log = logging.getLogger("waitress_like")

_QUEUE_WARNING_INTERVAL_SECONDS = 10.0


class ServerState(enum.Enum):
    """Where a server is in its life. Transitions: see :data:`_TRANSITIONS`."""

    NEW = "new"  # listeners bound; run() not called yet
    RUNNING = "running"  # accepting and serving
    DRAINING = "draining"  # not accepting; requests in the application finish, then stop
    STOPPED = "stopped"  # everything released (or closed before it ever ran)


_TRANSITIONS = {
    ServerState.NEW: {ServerState.RUNNING, ServerState.STOPPED},
    ServerState.RUNNING: {ServerState.DRAINING, ServerState.STOPPED},
    ServerState.DRAINING: {ServerState.STOPPED},
    ServerState.STOPPED: set(),
}


class Server:
    """A WSGI server: bound listeners plus the loop and pool that serve them.

    ``effective_host``/``effective_port`` (the first listener, as waitress has them) and
    :attr:`addresses` tell where it listens, so ``port=0`` is usable. :attr:`state` is a
    :class:`ServerState`; it changes only through :meth:`_enter`, on the loop thread once
    :meth:`run` has begun (before that, :meth:`run` and :meth:`close` move it from NEW).

    To its channels it is their :class:`~waitress_like.channel.ChannelOwner`. ``tls``
    holds the certificate context that connections to TLS listeners start with.
    ``access_log`` is the access log made from ``settings`` when it is opened before
    the server is made (a worker process opens it before giving up root); by default
    the server makes it.
    """

    def __init__(
        self,
        app: Any,
        settings: Settings,
        listeners: list[Listener],
        lifespan: Any = None,
        *,
        loop: Optional[EventLoop] = None,
        metrics: Optional[MetricsRecorder] = None,
        tls: Optional[TLSContextHolder] = None,
        access_log: Optional[AccessLog] = None,
    ) -> None:
        if tls is None and any(listener.is_tls for listener in listeners):
            raise ValueError("TLS listeners need a TLSContextHolder (see create_server)")
        self.application = app
        # startup() before serving, shutdown() after the workers stop (an ASGIAdapter).
        self.lifespan = lifespan
        self.settings = settings
        self.listeners = listeners
        self.tls = tls
        self.loop = loop if loop is not None else EventLoop()
        self.pool = WorkerPool(
            settings.threads,
            max_thread_count=settings.max_threads,
            idle_timeout_seconds=settings.thread_idle_timeout,
        )
        self.policy = ChannelPolicy.from_settings(settings)
        self.gateway = _make_gateway(app, settings, self.policy.proxy)
        if access_log is None:
            access_log = AccessLog(settings.access_log_format, settings.access_log)
        self.access_log: Optional[AccessLog] = access_log if access_log.enabled else None
        self.gateway.access_log = self.access_log
        self.metrics = self.gateway.metrics = metrics if metrics is not None else NO_METRICS
        # None unless the application is ASGI and the ws setting allows WebSockets.
        self.websockets = WebSocketService.for_application(app, settings, self.gateway)
        self.channels = ConnectionTable(settings.connection_limit, settings.connection_limit_per_address)
        self.acceptor = Acceptor(
            self.loop,
            listeners,
            self.channels,
            self._open_channel,
            shared=settings.workers > 1 and not settings.reuse_port,
        )
        self.state = ServerState.NEW
        self._state_lock = threading.Lock()  # for the two transitions made off the loop thread
        self._stopped = threading.Event()
        self._drain_timer: Any = None
        self._queue_warning_at = 0.0
        self.drained_cleanly = True
        #: Requests handed to the application so far, and those whose response is not
        #: complete yet. Loop thread writes; any thread may read (e.g. max_requests).
        self.requests_started = 0
        self.requests_in_service = 0
        # Requests submitted this loop turn, handed to the pool together at its end.
        self._turn_jobs: list[Any] = []

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

    # -- the lifecycle -----------------------------------------------------------------------

    def _enter(self, state: ServerState, only_from: Optional[ServerState] = None) -> bool:
        """Move to ``state`` if the table allows it from the current state (and that is
        ``only_from``, when given); True if moved."""
        with self._state_lock:
            current = self.state
            if state not in _TRANSITIONS[current] or (only_from is not None and current is not only_from):
                return False
            self.state = state
            return True

    def run(self) -> None:
        """Serve on the calling thread until :meth:`close` (or KeyboardInterrupt).

        Returns at once if the server was closed before it ran; raises RuntimeError if
        it runs already. An ASGI application's lifespan startup runs first; when it fails
        this raises :class:`~waitress_like.asgi.LifespanError`, having closed the server.
        """
        if not self._enter(ServerState.RUNNING):
            if self.state is ServerState.STOPPED:
                return
            raise RuntimeError("this server is already running")
        self.loop.claim_thread()
        self.metrics.start(self)
        try:
            if self.lifespan is not None:
                self.lifespan.startup()
            self.pool.start()
            self.acceptor.resume()
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
        if self._enter(ServerState.STOPPED, only_from=ServerState.NEW):  # it never ran
            self._release()
            return
        if self.state is ServerState.STOPPED:
            return
        grace = self.settings.graceful_timeout if timeout is None else timeout
        if self.loop.in_loop_thread():
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

    def stop_accepting(self) -> None:
        """Loop thread: accept no new connection, for good, and go on serving the open
        ones (a worker process being replaced does this before it drains)."""
        self.acceptor.close()

    def reload_tls(self) -> bool:
        """Any thread: read the certificate files again (and run the ``ssl_context`` hook
        again); new connections use the result, open ones keep what they started with.

        The files are read and the context built on the calling thread, in milliseconds;
        from the loop thread that pauses serving, so signal handlers use
        :meth:`reload_tls_soon`. Logs the outcome. Returns True when the new certificate
        is in use; False when the reload failed (the previous certificate stays in use)
        or no listener serves TLS.
        """
        if self.tls is None:
            log.warning("Certificate reload asked for, but no listener serves TLS")
            return False
        try:
            fresh = self.tls.reload()
        except ConfigError as error:
            log.error("Certificate reload failed; still serving the previous certificate: %s", error)
            return False
        log.info("Certificates reloaded from %s (reload %d)", self.settings.certfile, fresh.generation)
        return True

    def reload_tls_soon(self) -> None:
        """Any thread, or a signal handler: :meth:`reload_tls` on a thread of its own, so
        the loop goes on serving while the files are read. Returns at once."""
        self.loop.call_soon_from_signal(self._start_tls_reload)

    def _start_tls_reload(self) -> None:
        # Started from the loop, not from the signal handler: Thread.start takes locks
        # the interrupted main thread might hold.
        threading.Thread(target=self.reload_tls, name="waitress_like-tls-reload", daemon=True).start()

    def _begin_drain(self, grace_seconds: Optional[float] = None) -> None:
        """Loop thread: stop accepting, close idle connections, finish the others."""
        if not self._enter(ServerState.DRAINING):
            return
        if grace_seconds is None:
            grace_seconds = self.settings.graceful_timeout
        self.acceptor.close()
        busy = sum(1 for channel in self.channels if not channel.drain())
        log.info("Shutting down: waiting up to %ss for %d connections in service", grace_seconds, busy)
        self._drain_timer = self.loop.call_later(grace_seconds, self._drain_expired)
        self._stop_if_drained()

    def _drain_expired(self) -> None:
        if self.channels:
            log.warning(
                "Shutdown grace period over: closing %d connections still in service", len(self.channels)
            )
        self._force_stop()

    def _force_stop(self) -> None:
        """Loop thread: close every connection now and stop the loop."""
        if self.channels and self.state is ServerState.DRAINING:
            self.drained_cleanly = False
        self._enter(ServerState.DRAINING)
        self.acceptor.close()
        for channel in self.channels:
            channel.close()
        self.loop.stop()

    def _stop_if_drained(self) -> None:
        if self.state is ServerState.DRAINING and not self.channels:
            if self._drain_timer is not None:
                self._drain_timer.cancel()
            self.loop.stop()

    def _shutdown(self) -> None:
        """The loop has returned: release everything (once)."""
        if self._enter(ServerState.STOPPED):
            self._release()

    def _release(self) -> None:
        try:
            self.acceptor.close()
            for channel in self.channels:
                channel.close()
            # After a clean drain every worker is idle and stops at once. After a forced
            # stop a worker may be stuck in the application: give it a moment, no more
            # (worker threads are daemons, so they do not keep the process alive).
            if not self.pool.shutdown(timeout_seconds=5.0 if self.drained_cleanly else 0.5):
                log.warning("some worker threads are still running the application")
            if self.access_log is not None:
                self.access_log.close()
            self.metrics.close()  # after the workers: their last requests are counted
            if self.lifespan is not None:
                self.lifespan.shutdown()
            self.loop.close()
        finally:
            self._stopped.set()

    # -- ChannelOwner (loop thread) ----------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self.state is not ServerState.RUNNING

    def at_capacity(self) -> bool:
        """True when concurrency_limit requests are running or queued."""
        limit = self.settings.concurrency_limit
        return bool(limit) and self.requests_in_service >= limit

    def submit(self, request: WSGIRequest, pipe: OutputPipe) -> None:
        self.requests_started += 1
        self.requests_in_service += 1
        jobs = self._turn_jobs
        jobs.append(functools.partial(self.gateway.run, request, pipe))
        if len(jobs) == 1:
            self.loop.at_end_of_turn(self._hand_jobs_to_pool)

    def _hand_jobs_to_pool(self) -> None:
        """End of a loop turn: give the pool every request submitted during it.

        Handing each over at once would wake a worker in the middle of the turn, which
        then waits for the GIL until the loop's next system call and costs a context
        switch each time; handed over together, the workers start as the loop goes to
        wait. Measured on hello world: 27.5 to 24.2 µs of CPU per request, context
        switches 1.8 to 0.34 per request (docs/benchmarks.rst).
        """
        jobs, self._turn_jobs = self._turn_jobs, []
        for job in jobs:
            self.pool.submit(job)
        # As waitress: only jobs beyond the idle workers are really waiting.
        depth = self.pool.queued_count - self.pool.idle_count
        if depth > 0:
            now = self.loop.time()
            # waitress logs this on every queued request; once every interval is enough
            # to be noticed without flooding the log under load.
            if now >= self._queue_warning_at:
                self._queue_warning_at = now + _QUEUE_WARNING_INTERVAL_SECONDS
                log.warning("Task queue depth is %d", depth)

    def request_done(self) -> None:
        self.requests_in_service -= 1

    @property
    def accepts_websockets(self) -> bool:
        return self.websockets is not None

    def upgrade_to_websocket(self, channel: Channel, request: WSGIRequest, leftover: bytes) -> None:
        """A WebSocket connection takes the channel's socket and its place in the table."""
        assert self.websockets is not None
        connection = self.websockets.open(self, channel.socket, request, leftover, channel.transport)
        self.metrics.bytes_transferred(channel.received_bytes, channel.sent_bytes)
        self.channels.replace(channel, connection)
        connection.start()

    def channel_closed(self, channel: Any) -> None:
        self.channels.discard(channel)
        self.metrics.bytes_transferred(channel.received_bytes, channel.sent_bytes)
        if self.state is ServerState.RUNNING:
            self.acceptor.connection_closed()
        else:
            self._stop_if_drained()

    # -- connections (loop thread) -----------------------------------------------------------

    def _open_channel(self, sock: socket.socket, peer: Any, listener: Listener) -> None:
        address = "" if listener.is_unix else peer[0]
        if self.channels.address_full(address):
            if listener.is_tls:
                sock.close()  # a TLS client could not read a plain-text 503
            else:
                _refuse_over_address_cap(sock, self.policy.server_header)
            self.metrics.request_rejected(503, "address_limit")
            return
        try:
            sock.setblocking(False)
            if not listener.is_unix:
                # Responses are written whole; Nagle would only delay the last segment.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            return
        tls = self.tls.current() if listener.is_tls and self.tls is not None else None
        channel = Channel(self.policy, self, sock, peer, listener, tls)
        self.channels.add(channel, address)
        self.metrics.connection_opened()

    def _schedule_cleanup(self) -> None:
        self.loop.call_later(self.settings.cleanup_interval, self._cleanup)

    def _cleanup(self) -> None:
        """Close channels idle for longer than channel_timeout; never one in service."""
        cutoff = self.loop.time() - self.settings.channel_timeout
        for channel in self.channels:
            if not channel.in_service and channel.last_activity < cutoff:
                channel.close()
        self._schedule_cleanup()


def _make_gateway(app: Any, settings: Settings, proxy: ProxyPolicy) -> WSGIGateway:
    return WSGIGateway(
        app,
        server_name=settings.server_name,
        url_scheme=settings.url_scheme,
        url_prefix=settings.url_prefix,
        ident=settings.ident or "",
        expose_tracebacks=settings.expose_tracebacks,
        server_header=settings.server_header,
        multiprocess=settings.workers > 1,
        date_header=settings.date_header,
        default_headers=settings.default_headers,
        proxy=proxy if proxy.rewrites_environ else None,
    )


def _refuse_over_address_cap(sock: socket.socket, server_header: str) -> None:
    """A peer over connection_limit_per_address: a best-effort 503, then close.

    One non-blocking send: a fresh socket's buffer holds the short response, and if it
    does not (or the peer is gone) the close alone says no.
    """
    try:
        sock.setblocking(False)
        sock.send(simple_response(503, "Too many connections from your address", server_header, close=True))
    except OSError:
        pass
    finally:
        sock.close()


def run_until_signalled(server: Server) -> bool:
    """Run ``server`` on this (main) thread; SIGTERM/SIGINT (and Ctrl-Break on Windows)
    drain it gracefully, a second signal stops it at once. With TLS listeners, SIGHUP
    reloads the certificates (:meth:`Server.reload_tls_soon`). Returns True if the drain
    was clean (every request in flight finished within the grace period).
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

    def on_hangup(signum: int, frame: Any) -> None:
        server.reload_tls_soon()

    previous = {}
    previous_wakeup_fd = None
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            previous[signum] = signal.signal(signum, on_signal)
        if hasattr(signal, "SIGUSR1"):  # USR1 reopens the log files, as gunicorn's does
            previous[signal.SIGUSR1] = signal.signal(
                signal.SIGUSR1, lambda *_: server.loop.call_soon_from_signal(reopen_log_files_soon)
            )
        if server.tls is not None and hasattr(signal, "SIGHUP"):
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
        previous_wakeup_fd = signal.set_wakeup_fd(server.loop.wakeup_fileno(), warn_on_full_buffer=False)
    try:
        server.run()
    finally:
        if previous_wakeup_fd is not None:
            signal.set_wakeup_fd(previous_wakeup_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return server.drained_cleanly


def create_server(app: Any, *, _loop: Optional[EventLoop] = None, **settings: Any) -> Server:
    """Validate ``settings``, bind every listener and return a server ready to :meth:`run`.

    Raises :class:`~waitress_like.errors.ConfigError` for a bad setting and
    :class:`~waitress_like.listeners.BindError` when an address cannot be bound.
    Sockets passed by systemd socket activation are used as if given as ``fd``.
    ``_loop`` (not a setting) is the event loop to run on, for tests that choose its
    selector or clock.
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
    # Before binding: a bad certificate or key fails start-up without taking a port.
    tls = create_context_holder(validated)
    inherited = inherited_sockets(validated.fd)
    listeners = bind_listeners(
        validated.listen,
        ipv4=validated.ipv4,
        ipv6=validated.ipv6,
        backlog=validated.backlog,
        unix_socket=validated.unix_socket,
        unix_socket_perms=validated.unix_socket_perms,
        sockets=(*validated.sockets, *inherited),
        tls=validated.certfile is not None,
    )
    return assemble_server(app, validated, listeners, lifespan, tls=tls, loop=_loop)


def assemble_server(
    app: Any,
    settings: Settings,
    listeners: list[Listener],
    lifespan: Any = None,
    *,
    tls: Optional[TLSContextHolder],
    metrics_report: Optional[Callable[[dict[str, Any]], None]] = None,
    access_log: Optional[AccessLog] = None,
    loop: Optional[EventLoop] = None,
) -> Server:
    """A :class:`Server` on bound ``listeners`` with the metrics ``settings`` ask for:
    what :func:`create_server` and a worker process (:mod:`waitress_like.worker`) share.

    ``app`` and ``lifespan`` come from :func:`~waitress_like.asgi.resolve_application`;
    ``tls`` is :func:`~waitress_like.tls.create_context_holder` of the same settings,
    made before the listeners were bound (None when ``certfile`` is unset; then no
    listener may serve TLS). A worker process passes ``metrics_report``, which hands
    metrics snapshots to its supervisor (see
    :func:`~waitress_like.server_metrics.metrics_from_settings`): it then binds no
    ``metrics_listen`` socket, and its ``access_log``, opened before it gave up root.
    Raises BindError for ``metrics_listen``, having closed ``listeners``.
    """
    try:
        metrics = metrics_from_settings(settings, report=metrics_report)
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    return Server(
        app, settings, listeners, lifespan, loop=loop, metrics=metrics, tls=tls, access_log=access_log
    )
