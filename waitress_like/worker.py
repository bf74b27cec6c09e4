"""What runs inside a worker process: one complete server on the supervisor's sockets.

A worker is today's server (a loop thread plus its pool of worker threads) built around
sockets the supervisor bound, plus what lets the supervisor watch and steer it:

* a heartbeat from a timer on the *loop* thread (so a stuck loop stops it, while long
  requests in worker threads do not), with the count of requests served, and ``ready``
  once the loop runs;
* a thread that reads the supervisor's commands (stop, retire, reopen logs) and notices
  when the supervisor is gone, so that no worker outlives it;
* on Unix, gunicorn's worker signals: TERM drains, INT drains after ``worker_int``, QUIT
  stops at once after ``worker_int``, ABRT calls ``worker_abort`` and exits, USR1 reopens
  log files, HUP retires the worker (the supervisor starts another).

Unix fork and Windows spawn share this code: :func:`run_worker` takes a
:class:`WorkerBoot`. A forked child gets it from the supervisor's memory (the application
object included); a spawned one (``python -m waitress_like.worker``, on Windows) reads a
:class:`SpawnBoot` from its standard input, receives its sockets (``socket.fromshare``
on Windows, inherited descriptors elsewhere), imports the application and reads the
config file's hooks itself, then builds the same :class:`WorkerBoot`.

Retiring (another worker has taken over): stop accepting, keep serving for
:data:`SETTLE_SECONDS` what was accepted (a client that has connected but whose request
has not been read yet would otherwise be cut off), then drain as on SIGTERM.

Thread contract: :func:`run_worker` runs on the main thread of the worker process, which
becomes the server's loop thread. :class:`WorkerControl` may be called from any thread and
from signal handlers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import select
import signal
import socket
import sys
import threading
from typing import Any, Callable, Optional

from . import workerlink
from .accesslog import AccessLog
from .asgi import resolve_application
from .config import Settings
from .errors import WaitressLikeError, describe_exception
from .hooks import HookMiddleware, Hooks
from .importer import load_application
from .listeners import Listener
from .logsetup import configure_logging, flush_logs, logging_settings, reopen_log_files_soon
from .process import ProcessSettings, set_process_title
from .server import Server, assemble_server
from .tls import create_context_holder

__all__ = [
    "EXIT_BOOT_ERROR",
    "EXIT_CLEAN",
    "EXIT_UNCLEAN",
    "SETTLE_SECONDS",
    "SpawnBoot",
    "SupervisorView",
    "WorkerBoot",
    "WorkerControl",
    "WorkerView",
    "main",
    "run_worker",
]

log = logging.getLogger("waitress_like")

EXIT_CLEAN = 0
EXIT_UNCLEAN = 1  # requests were cut: the drain ran out of time, or a stop at once
EXIT_BOOT_ERROR = 3  # gunicorn's WORKER_BOOT_ERROR: the worker never served
EXIT_ABORTED = 6  # SIGABRT from the supervisor (worker_timeout)

#: How long a retiring worker goes on serving the connections it accepted before draining.
SETTLE_SECONDS = 0.5
#: How long a stopping worker waits for its last messages to go out on the link.
_LAST_WORDS_SECONDS = 2.0

GRACEFUL = "graceful"
IMMEDIATE = "immediate"
RETIRE = "retire"
_STRENGTH = {RETIRE: 0, GRACEFUL: 1, IMMEDIATE: 2}


@dataclasses.dataclass
class WorkerBoot:
    """Everything a worker needs to start (built by the supervisor, or by :func:`main`).

    ``app`` is the application object when the supervisor has it (fork), else None and
    ``app_spec`` is imported in the worker. ``max_requests`` is this worker's own limit
    (jitter included), 0 for none. ``tls_flags`` says, for each listening socket the
    worker gets (in their order), whether it serves TLS: the supervisor's
    ``Listener.is_tls``.
    """

    age: int
    settings: Settings
    hooks: Hooks
    supervisor_pid: int
    app: Any = None
    app_spec: Optional[str] = None
    call_factory: bool = False
    max_requests: int = 0
    heartbeat_seconds: float = 1.0
    name: str = "waitress_like"
    tls_flags: tuple[bool, ...] = ()


@dataclasses.dataclass
class SpawnBoot:
    """What a spawned worker reads from its standard input (pickled): only plain data.

    ``given`` are the settings as given to the supervisor, minus the listening ones
    (the sockets come separately, in ``sockets``: ``("share", bytes)`` from
    ``socket.share`` on Windows, ``("fd", number)`` elsewhere; the first is the link).
    ``hooks`` are hooks given from Python (pickled by reference); a config file's hooks
    are read again from ``config_path``. ``tls_flags`` and ``log_level`` are those of
    :class:`WorkerBoot` and of the supervisor's ``waitress_like`` logger.
    """

    age: int
    given: dict[str, Any]
    app_spec: str
    call_factory: bool
    supervisor_pid: int
    max_requests: int
    heartbeat_seconds: float
    name: str
    sockets: list[tuple[str, Any]]
    config_path: Optional[str] = None
    hooks: dict[str, Any] = dataclasses.field(default_factory=dict)
    log_level: int = logging.INFO
    tls_flags: tuple[bool, ...] = ()


class SupervisorView:
    """The ``server`` argument of hooks that run in a worker (``post_fork``, ``worker_exit``)."""

    def __init__(self, pid: int, settings: Settings) -> None:
        self.pid = pid
        self.settings = settings
        self.log = log


class WorkerView:
    """The ``worker`` argument of hooks that run in a worker. ``link`` sends messages to
    the supervisor (see :mod:`waitress_like.workerlink`), from any thread."""

    def __init__(self, age: int, settings: Settings, link: Optional[workerlink.LinkWriter] = None) -> None:
        self.age = age
        self.pid = os.getpid()
        self.settings = settings
        self.log = log
        self.server: Optional[Server] = None
        self.link = link


class WorkerControl:
    """Stop requests from the supervisor's link and from signals, before and after the
    server exists. Any thread, and signal handlers, may call :meth:`request`."""

    def __init__(self) -> None:
        self.server: Optional[Server] = None
        self._lock = threading.Lock()
        self._pending: Optional[str] = None
        self.handlers: dict[str, Any] = {
            workerlink.STOP: lambda message: self.request(GRACEFUL if message.get("graceful") else IMMEDIATE),
            workerlink.RETIRE: lambda message: self.request(RETIRE),
            workerlink.REOPEN_LOGS: lambda message: reopen_log_files_soon(),
        }

    def attach(self, server: Server) -> bool:
        """Main thread, once the server is built: False if a stop came first (then it is closed)."""
        with self._lock:
            self.server = server
            pending = self._pending
        if pending is None:
            return True
        server.close()
        return False

    def request(self, mode: str) -> None:
        """Ask for ``mode`` (retire, graceful, immediate); a weaker request after a stronger one
        is ignored."""
        with self._lock:
            if self._pending is not None and _STRENGTH[mode] <= _STRENGTH[self._pending]:
                return
            self._pending = mode
            server = self.server
        if server is None:
            return
        if mode == IMMEDIATE:
            server.loop.call_soon_from_signal(_stop_now, server)
        elif mode == GRACEFUL:
            server.drain_soon()
        else:
            server.loop.call_soon_threadsafe(_retire, server)

    @property
    def stopping(self) -> bool:
        """True once a stop (of any kind) was asked for."""
        return self._pending is not None

    def handle(self, message: dict[str, Any]) -> None:
        handler = self.handlers.get(message["kind"])
        if handler is None:
            log.debug("ignoring a %r message from the supervisor", message["kind"])
            return
        handler(message)


def _stop_now(server: Server) -> None:
    """Loop thread: close every connection now; cut requests make the exit unclean."""
    if server.draining:
        server.stop_soon()
    else:
        server.close(0.0)  # a drain with no grace: what is left is cut, and counted


def _retire(server: Server) -> None:
    """Loop thread: stop accepting, serve what was accepted for a moment, then drain."""
    server.stop_accepting()
    server.loop.call_later(SETTLE_SECONDS, server.drain_soon)


# --------------------------------------------------------------------------- the worker


def run_worker(boot: WorkerBoot, link: socket.socket, sockets: list[socket.socket]) -> int:
    """Serve as one worker until told to stop; returns the exit status (EXIT_*)."""
    link.setblocking(False)
    writer = workerlink.LinkWriter(link)
    control = WorkerControl()
    view = WorkerView(boot.age, boot.settings, writer)
    _install_signals(control, boot.hooks, view)
    threading.Thread(target=_read_link, args=(link, control), name="waitress_like-link", daemon=True).start()
    try:
        server = _build(boot, view, sockets)
    except BaseException as error:
        return _boot_failed(boot, writer, error)
    if not control.attach(server):
        return EXIT_CLEAN
    signal.set_wakeup_fd(server.loop.wakeup_fileno(), warn_on_full_buffer=False)
    _Heartbeat(server, writer, boot).start()
    try:
        server.run()
    except WaitressLikeError as error:  # an ASGI application's lifespan startup failed
        return _boot_failed(boot, writer, error)
    finally:
        server.close()
        boot.hooks.call("worker_exit", SupervisorView(boot.supervisor_pid, boot.settings), view)
        # The last metrics snapshot (queued when the server stopped) goes out before the exit.
        writer.wait_flushed(_LAST_WORDS_SECONDS)
    return EXIT_CLEAN if server.drained_cleanly else EXIT_UNCLEAN


def _build(boot: WorkerBoot, view: WorkerView, sockets: list[socket.socket]) -> Server:
    """Assemble the server as ``create_server`` does (TLS, metrics), on the given sockets."""
    settings = boot.settings
    set_process_title("worker", settings, boot.name)
    boot.hooks.call_strict("post_fork", SupervisorView(boot.supervisor_pid, settings), view)
    listeners = _listeners(sockets, boot.tls_flags)
    # Read the certificate files afresh (a worker started after SIGHUP serves the renewed
    # ones) and open the access log before giving up root, as a single process does: a
    # key only root may read still loads, a log directory only root may write works.
    tls = create_context_holder(settings)
    access_log = AccessLog(settings.access_log_format, settings.access_log)
    ProcessSettings(settings).switch_user()
    app = boot.app
    if app is None:
        assert boot.app_spec is not None
        app = load_application(boot.app_spec, call_factory=boot.call_factory)
    app, lifespan = resolve_application(app, settings.interface, settings.lifespan)
    if "pre_request" in boot.hooks or "post_request" in boot.hooks:
        app = HookMiddleware(app, boot.hooks, view)
    assert view.link is not None
    # No metrics listener here: the supervisor serves metrics_listen with the numbers of
    # every worker, which each sends it over the link.
    server = assemble_server(
        app,
        settings,
        listeners,
        lifespan,
        tls=tls,
        metrics_report=_metrics_sender(view.link),
        access_log=access_log,
    )
    view.server = server
    boot.hooks.call_strict("post_worker_init", view)
    return server


def _listeners(sockets: list[socket.socket], tls_flags: tuple[bool, ...]) -> list[Listener]:
    """The worker's listeners: each socket with its TLS flag from the supervisor."""
    if len(tls_flags) != len(sockets):
        # Never guess: a TLS socket served as plain text would leak what TLS protects.
        raise ValueError(f"{len(sockets)} listening sockets but {len(tls_flags)} TLS flags")
    for sock in sockets:
        # Every worker wakes for a new connection and one gets it: accept() must never
        # block the others (a socket received with fromshare() starts out blocking).
        sock.setblocking(False)
    # No unix_path: the supervisor owns a unix socket's file and removes it at the end.
    return [Listener(sock, is_tls=tls) for sock, tls in zip(sockets, tls_flags)]


def _metrics_sender(writer: workerlink.LinkWriter) -> Callable[[dict[str, Any]], None]:
    """The worker's metrics ``report``: called on the loop thread, it queues the snapshot
    on the link and returns at once (the writer never blocks; a full link drops it, and
    the next snapshot, cumulative, makes up for it)."""

    def send(snapshot: dict[str, Any]) -> None:
        writer.send(workerlink.METRICS, snapshot=snapshot)

    return send


def _boot_failed(boot: WorkerBoot, writer: workerlink.LinkWriter, error: BaseException) -> int:
    if isinstance(error, KeyboardInterrupt):
        return EXIT_CLEAN
    if isinstance(error, WaitressLikeError):
        reason = str(error)
        cause = error.__cause__
    else:
        reason, cause = describe_exception(error), error
    if cause is not None:
        log.error("worker %d failed to start", boot.age, exc_info=(type(cause), cause, cause.__traceback__))
    writer.send_and_wait(workerlink.BOOT_ERROR, 5.0, reason=reason)
    return EXIT_BOOT_ERROR


class _Heartbeat:
    """Loop-thread timer: ``ready`` once, then heartbeats, and ``recycle`` at max_requests."""

    def __init__(self, server: Server, writer: workerlink.LinkWriter, boot: WorkerBoot) -> None:
        self.server = server
        self.writer = writer
        self.interval = boot.heartbeat_seconds
        self.max_requests = boot.max_requests
        # With max_requests, look at the count more often than the heartbeat goes out.
        self.tick_seconds = min(self.interval, 0.1) if self.max_requests else self.interval
        self.next_beat = 0.0
        self.recycle_sent = False

    def start(self) -> None:
        self.server.loop.call_soon_threadsafe(self._first)

    def _first(self) -> None:
        self.writer.send(workerlink.READY, pid=os.getpid())
        self._tick()

    def _tick(self) -> None:
        now = self.server.loop.time()
        served = self.server.requests_started
        if now >= self.next_beat:
            self.writer.send(workerlink.HEARTBEAT, requests=served)
            self.next_beat = now + self.interval
        else:
            self.writer.flush()
        if self.max_requests and served >= self.max_requests and not self.recycle_sent:
            self.recycle_sent = self.writer.send(workerlink.RECYCLE, requests=served)
        self.server.loop.call_later(self.tick_seconds, self._tick)


def _read_link(link: socket.socket, control: WorkerControl) -> None:
    """Link thread: hand the supervisor's commands to ``control``; drain if it is gone."""
    reader = workerlink.MessageReader()
    while True:
        try:
            select.select([link], [], [])
            messages = workerlink.receive(link, reader)
        except (OSError, ValueError, workerlink.LinkError):
            messages = None
        if messages is None:
            if not control.stopping:  # else the supervisor closed the link after its stop
                log.warning("worker %d: the supervisor is gone; stopping", os.getpid())
            control.request(GRACEFUL)
            return
        for message in messages:
            control.handle(message)


def _install_signals(control: WorkerControl, hooks: Hooks, view: WorkerView) -> None:
    """Main thread: gunicorn's worker signals on Unix; on Windows the supervisor alone
    decides (over the link), so console Ctrl-C and Ctrl-Break are ignored here."""
    signal.set_wakeup_fd(-1)  # a forked child inherits the supervisor's
    if os.name == "nt":
        for name in ("SIGINT", "SIGBREAK"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        return

    def on_interrupt(signum: int, frame: Any) -> None:
        hooks.call("worker_int", view)
        control.request(GRACEFUL if signum == signal.SIGINT else IMMEDIATE)

    def on_reopen(signum: int, frame: Any) -> None:
        # Not here, in the handler: reopening may start a thread. The loop does it next.
        server = control.server
        if server is not None:
            server.loop.call_soon_from_signal(reopen_log_files_soon)

    def on_abort(signum: int, frame: Any) -> None:
        hooks.call("worker_abort", view)
        flush_logs(1.0)  # within the supervisor's grace before SIGKILL
        _flush_output()
        os._exit(EXIT_ABORTED)

    handlers: dict[int, Any] = {
        signal.SIGTERM: lambda signum, frame: control.request(GRACEFUL),
        signal.SIGINT: on_interrupt,
        signal.SIGQUIT: on_interrupt,
        signal.SIGABRT: on_abort,
        signal.SIGHUP: lambda signum, frame: control.request(RETIRE),
        signal.SIGUSR1: on_reopen,
        signal.SIGTTIN: signal.SIG_IGN,
        signal.SIGTTOU: signal.SIG_IGN,
        signal.SIGCHLD: signal.SIG_DFL,
        signal.SIGUSR2: signal.SIG_DFL,
    }
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


# --------------------------------------------------------------------------- spawned workers


def receive_sockets(transfers: list[tuple[str, Any]]) -> list[socket.socket]:
    """The sockets a spawned worker was given: ``socket.fromshare`` data (Windows) or an
    inherited descriptor number."""
    sockets = []
    for how, data in transfers:
        if how == "share":
            sockets.append(socket.fromshare(data))  # type: ignore[attr-defined,unused-ignore]
        else:
            sockets.append(socket.socket(fileno=data))
    return sockets


def _boot_from_spawn(spawn: SpawnBoot) -> WorkerBoot:
    from .configfile import load_config_file

    hooks = dict(load_config_file(spawn.config_path).hooks) if spawn.config_path else {}
    hooks.update(spawn.hooks)
    return WorkerBoot(
        age=spawn.age,
        settings=Settings.from_mapping(spawn.given),
        hooks=Hooks(hooks),
        supervisor_pid=spawn.supervisor_pid,
        app_spec=spawn.app_spec,
        call_factory=spawn.call_factory,
        max_requests=spawn.max_requests,
        heartbeat_seconds=spawn.heartbeat_seconds,
        name=spawn.name,
        tls_flags=tuple(spawn.tls_flags),
    )


def main() -> int:
    """``python -m waitress_like.worker``: a spawned worker; its boot comes on stdin."""
    spawn: SpawnBoot = pickle.load(sys.stdin.buffer)  # from our own supervisor, over a pipe
    sys.stdin.close()
    configure_logging(logging_settings(spawn.given))  # a fresh process: as the supervisor did
    if "loglevel" not in spawn.given:  # the supervisor's level, however it was set
        logging.getLogger("waitress_like").setLevel(spawn.log_level)
    link, *sockets = receive_sockets(spawn.sockets)
    try:
        try:
            boot = _boot_from_spawn(spawn)
        except BaseException as error:
            link.setblocking(False)
            placeholder = WorkerBoot(spawn.age, Settings(), Hooks(), spawn.supervisor_pid)
            return _boot_failed(placeholder, workerlink.LinkWriter(link), error)
        return run_worker(boot, link, sockets)
    finally:
        flush_logs()  # the log writer is a daemon thread: the interpreter's end kills it


if __name__ == "__main__":
    sys.exit(main())
