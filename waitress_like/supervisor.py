"""The supervisor: binds the sockets, starts the worker processes, replaces and scales them.

gunicorn's arbiter semantics, so that its users know them:

* A worker that dies is replaced. One that dies while starting (it never said ``ready``)
  is a start-up failure: the next start waits (0.1 s, doubling), one worker at a time,
  and after :data:`MAX_START_FAILURES` failures in a row the supervisor stops and
  :meth:`Supervisor.run` raises :class:`WorkerStartError` with the last reason.
* ``worker_timeout``: a worker whose loop thread sent no heartbeat for that long gets
  SIGABRT (its ``worker_abort`` hook), then SIGKILL, and is replaced.
* ``max_requests`` (+ jitter): a worker past its limit is *superseded*: a successor
  starts, and once it is ready the old one retires (stops accepting, finishes, exits).
* Signals: TERM/INT drain every worker within ``graceful_timeout`` and exit (a second one
  stops at once); QUIT stops at once; HUP re-reads the config, starts a new generation of
  workers and retires the old ones as the new ones become ready (no request fails); TTIN
  and TTOU add and remove a worker; USR1 reopens log files. On Windows: Ctrl-C and
  Ctrl-Break drain, and :meth:`Supervisor.close` (the service's stop) does too.

Workers are forked on Unix and spawned (a new interpreter that imports the application) on
Windows; see :mod:`waitress_like.workerproc`. Each has a link (:mod:`waitress_like.workerlink`)
that carries its heartbeats, its metrics and the supervisor's commands.

Each worker assembles its server as ``create_server`` does (TLS, metrics, access log) on
the supervisor's sockets; what only the supervisor can know travels with the boot data:
which socket serves TLS. The supervisor checks the certificate before binding (and
again before a reload starts new workers, which read the files afresh), and with
``metrics_listen`` serves the total of its workers' metrics (see
:mod:`waitress_like.supervisor_metrics`).

Thread contract: :meth:`Supervisor.run` runs on one thread (the main thread, to get
signals; another thread works for a service, without them). :meth:`Supervisor.request_stop`
and :meth:`Supervisor.close` may be called from any thread.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import selectors
import signal
import socket
import threading
import time
from typing import Any, Callable, Mapping, Optional

from . import workerlink
from .config import SETTINGS_BY_NAME, Settings
from .errors import ConfigError, WaitressLikeError, describe_exception
from .hooks import Hooks
from .importer import load_application
from .listeners import Listener, systemd_listen_fds
from .logsetup import reopen_log_files_soon
from .process import PidFile, ProcessSettings, set_process_title
from .proxy import trusted_proxy_from_environment
from .server import Server
from .supervisor_metrics import SupervisorMetrics, supervisor_metrics_from_settings
from .tls import create_context_holder
from .worker import SETTLE_SECONDS, SpawnBoot, WorkerBoot
from .workerproc import WorkerProcess, fork_worker, spawn_worker
from .workersockets import WorkerSockets

__all__ = [
    "AppSource",
    "MAX_START_FAILURES",
    "Supervisor",
    "WorkerRecord",
    "WorkerStartError",
    "wants_supervisor",
]

log = logging.getLogger("waitress_like")

MAX_START_FAILURES = 5
_FIRST_BACKOFF_SECONDS = 0.1
_MAX_BACKOFF_SECONDS = 10.0
#: After SIGABRT (or an immediate stop), how long a worker has before SIGKILL.
KILL_GRACE_SECONDS = 2.0
#: On top of graceful_timeout: closing what is left and stopping threads.
STOP_MARGIN_SECONDS = 5.0
_TICK_SECONDS = 0.25
_LISTEN_SETTINGS = (
    "host", "port", "listen", "unix_socket", "fd", "sockets", "ipv4", "ipv6", "reuse_port", "metrics_listen",
)  # fmt: skip

STARTING, READY = "starting", "ready"
_WINDOWS = os.name == "nt"

#: Signal -> what the supervisor does (the same names as request_stop's events).
_SIGNAL_ACTIONS = {
    getattr(signal, name): action
    for name, action in (
        ("SIGTERM", "stop"), ("SIGINT", "stop"), ("SIGBREAK", "stop"), ("SIGQUIT", "stop-now"),
        ("SIGHUP", "reload"), ("SIGTTIN", "more"), ("SIGTTOU", "fewer"), ("SIGUSR1", "reopen"),
    )
    if hasattr(signal, name)
}  # fmt: skip
_WAKE_ONLY_SIGNALS = tuple(getattr(signal, name) for name in ("SIGCHLD",) if hasattr(signal, name))


class WorkerStartError(WaitressLikeError):
    """Worker processes kept failing to start; the message says why the last one failed."""


def wants_supervisor(given: Mapping[str, Any], hooks: Mapping[str, Any]) -> bool:
    """True when serving needs worker processes: ``workers`` > 1, ``max_requests``
    (replacing the one process needs a supervisor) or hooks (gunicorn always has one).
    ``given`` are settings as given; ConfigError for a bad ``workers`` or ``max_requests``."""
    workers = SETTINGS_BY_NAME["workers"].parse(given.get("workers", 1))
    max_requests = SETTINGS_BY_NAME["max_requests"].parse(given.get("max_requests", 0))
    return workers > 1 or max_requests > 0 or bool(hooks)


class AppSource:
    """The application: an object (``app``), or ``MODULE:OBJECT`` to import (``spec``)."""

    def __init__(self, app: Any = None, spec: Optional[str] = None, call_factory: bool = False) -> None:
        if (app is None) == (spec is None):
            raise ValueError("give the application as an object or as a spec, not both")
        self.app = app
        self.spec = spec
        self.call_factory = call_factory

    @property
    def name(self) -> str:
        return self.spec or getattr(self.app, "__name__", None) or type(self.app).__name__


class WorkerRecord:
    """The supervisor's view of one worker; the ``worker`` argument of its hooks."""

    def __init__(self, age: int, generation: int, slot: int) -> None:
        self.age = age
        self.generation = generation
        self.slot = slot
        self.log = log
        self.pid: Optional[int] = None
        self.process: Optional[WorkerProcess] = None
        self.link: Optional[socket.socket] = None
        self.writer: Optional[workerlink.LinkWriter] = None
        self.reader = workerlink.MessageReader()
        self.state = STARTING
        self.last_seen = time.monotonic()
        self.requests = 0
        self.superseded = False  # a successor is wanted (reload, max_requests)
        self.retiring = False  # told to stop; its exit is expected
        self.replaced_for: Optional[str] = None  # why it retires, when a successor takes over
        self.aborted = False
        self.kill_at: Optional[float] = None
        self.failure: Optional[str] = None

    def send(self, kind: str, **fields: Any) -> None:
        if self.writer is not None:
            self.writer.send(kind, **fields)

    def __repr__(self) -> str:
        return f"<worker {self.age} pid={self.pid} {self.state}>"


class Supervisor:
    """Runs ``workers`` worker processes serving ``app`` and keeps them running.

    ``given`` are the settings as given (validated here; ConfigError names a bad one).
    ``reload_config``, when set, is called on SIGHUP and returns new ``(given, hooks)``
    (the command line re-reads its config file). ``start_method`` is ``"fork"`` (Unix
    default) or ``"spawn"`` (Windows; available on Unix too).
    """

    def __init__(
        self,
        app: AppSource,
        given: dict[str, Any],
        hooks: Optional[Hooks] = None,
        *,
        config_path: Optional[str] = None,
        reload_config: Optional[Callable[[], tuple[dict[str, Any], Hooks]]] = None,
        start_method: Optional[str] = None,
        log_listen: bool = True,
    ) -> None:
        self.app_source = app
        self.given = _from_environment(given)
        self.settings = Settings.from_mapping(self.given)
        self.hooks = hooks or Hooks()
        self.config_path = config_path
        self.reload_config = reload_config
        self.start_method = start_method or ("spawn" if _WINDOWS else "fork")
        _check_app_source(app, self.settings, self.start_method)
        self.log_listen = log_listen
        self.log = log
        self.pid = os.getpid()
        self.workers: list[WorkerRecord] = []
        self.num_workers = 0
        self.message_handlers: dict[str, Callable[[WorkerRecord, dict[str, Any]], None]] = {
            workerlink.READY: self._on_ready,
            workerlink.HEARTBEAT: self._on_heartbeat,
            workerlink.RECYCLE: self._on_recycle,
            workerlink.BOOT_ERROR: self._on_boot_error,
            workerlink.METRICS: self._on_metrics,
        }
        self.sockets = WorkerSockets(self.settings)
        self.metrics: Optional[SupervisorMetrics] = None  # with metrics_listen or statsd_host
        self.failure: Optional[str] = None  # why workers could not start, once they could not
        self._init_loop_state()

    def _init_loop_state(self) -> None:
        self._generation = 0  # workers of an older generation are replaced (SIGHUP)
        self._ages = 0
        self._start_failures = 0
        self._next_start_at = 0.0
        self._stopping: Optional[str] = None  # "graceful" or "immediate" once stopping
        self._clean = True
        self._events: collections.deque[str] = collections.deque()
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._previous_signals: dict[int, Any] = {}
        self._previous_wakeup: Optional[int] = None
        self._pidfile: Optional[PidFile] = None
        self._started = False
        self._running = False
        self._finished = threading.Event()

    # -- the public surface -----------------------------------------------------------------

    @property
    def addresses(self) -> list[Any]:
        """Every bound address (as ``Server.addresses``)."""
        return [listener.address for listener in self.sockets.listening]

    def print_listen(self, format_str: str = "Serving on {}") -> None:
        for listener in self.sockets.listening:
            log.info(format_str.format(listener.display))

    def request_stop(self, graceful: bool = True) -> None:
        """Any thread: stop the workers (gracefully, or at once) and return from :meth:`run`."""
        self._events.append("stop" if graceful else "stop-now")
        try:
            self._wake_write.send(b"\0")
        except OSError:
            pass

    def close(self, timeout: Optional[float] = None) -> None:
        """Any thread: drain gracefully and wait until :meth:`run` has returned (as
        ``Server.close``; ``timeout`` is ignored: ``graceful_timeout`` applies)."""
        if not self._running:
            self._finish()
            return
        self.request_stop(graceful=True)
        self._finished.wait(self.settings.graceful_timeout + STOP_MARGIN_SECONDS + KILL_GRACE_SECONDS)

    def run(self) -> bool:
        """Start (unless :meth:`start` was called) and supervise until stopped; True when
        every worker stopped cleanly. Raises :class:`WorkerStartError` when workers keep
        failing to start, and on start-up what :meth:`start` raises."""
        self._running = True
        try:
            if not self._started:
                self.start()
            self._install_signals()
            while not (self._stopping and not self.workers):
                self._turn()
        finally:
            self._finish()
        if self.failure is not None:
            raise WorkerStartError(self.failure)
        return self._clean

    def start(self) -> None:
        """Check the certificate, bind, write the pidfile, preload, run the start-up
        hooks, serve metrics; the workers start in :meth:`run`. Raises ConfigError,
        BindError, AppLoadError or HookError."""
        self._started = True
        self.hooks.call_strict("on_starting", self)
        process = ProcessSettings(self.settings)
        process.before_binding()
        # Before binding, as create_server does: a bad certificate or key fails start-up
        # with the message naming the setting and file, not every worker in turn. The
        # workers build their own context from the same files.
        create_context_holder(self.settings)
        if self.settings.preload_app and self.app_source.spec is not None:
            self.app_source = AppSource(app=self._load_app(), spec=self.app_source.spec)
        for listener in self.sockets.bind():
            if listener.unix_path:
                process.chown_for_user(listener.unix_path)
        if self.settings.pidfile:
            self._pidfile = PidFile(self.settings.pidfile)
            self._pidfile.create(self.pid)
        set_process_title("supervisor", self.settings, self.app_source.name)
        self._selector.register(self._wake_read, selectors.EVENT_READ, self._drain_wakeups)
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        if self.log_listen:
            self.print_listen("Serving on {}")
        self.metrics = supervisor_metrics_from_settings(self.settings)
        if self.metrics is not None:
            self.metrics.start(Server)
        self.hooks.call_strict("when_ready", self)
        self._set_num_workers(self.settings.workers)

    # -- the loop ---------------------------------------------------------------------------

    def _turn(self) -> None:
        for key, _ in self._selector.select(_TICK_SECONDS):
            key.data()
        self._handle_events()
        self._reap()
        self._check_deadlines()
        if not self._stopping:
            self._manage()
        if self.metrics is not None:
            self.metrics.set_workers(sum(1 for w in self.workers if w.state == READY and not w.retiring))

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _handle_events(self) -> None:
        while self._events:
            action = self._events.popleft()
            if action == "stop":
                self._stop(graceful=not self._stopping)  # a second one: at once
            elif action == "stop-now":
                self._stop(graceful=False)
            elif self._stopping:
                pass
            elif action == "reload":
                self._reload()
            elif action == "more":
                self._set_num_workers(self.num_workers + 1)
            elif action == "fewer" and self.num_workers > 1:
                self._set_num_workers(self.num_workers - 1)
            elif action == "reopen":
                log.info("Reopening log files")
                reopen_log_files_soon()
                for worker in self.workers:
                    worker.send(workerlink.REOPEN_LOGS)

    def _set_num_workers(self, count: int) -> None:
        old = self.num_workers or None
        self.num_workers = count
        if old is not None and old != count:
            log.info("Workers: %d (was %d)", count, old)
        if old != count:
            self.hooks.call("nworkers_changed", self, count, old)

    # -- starting and replacing ---------------------------------------------------------------

    def _manage(self) -> None:
        """Start and retire workers until ``num_workers`` current ones serve."""
        active = [w for w in self.workers if w.generation == self._generation and not w.superseded]
        active = [w for w in active if not w.retiring]
        for worker in sorted(active, key=lambda w: w.age)[: max(0, len(active) - self.num_workers)]:
            self._retire(worker, "there are too many workers")
            active.remove(worker)
        missing = self.num_workers - len(active)
        if missing > 0 and time.monotonic() >= self._next_start_at:
            if self._start_failures:  # while starting fails, one attempt at a time
                missing = 0 if any(w.state == STARTING for w in active) else 1
            for _ in range(missing):
                self._start_worker()
        serving = [w for w in self.workers if w.state == READY and not w.retiring]
        replaced = sorted(
            (w for w in serving if w.superseded or w.generation != self._generation), key=lambda w: w.age
        )
        for worker in replaced[: max(0, len(serving) - self.num_workers)]:
            # superseded: it reached max_requests; else it is of a generation before a reload.
            self._retire(worker, "its successor is ready", "max_requests" if worker.superseded else "reload")

    def _start_worker(self) -> None:
        self._ages += 1
        current = [w for w in self.workers if w.generation == self._generation and not w.superseded]
        worker = WorkerRecord(self._ages, self._generation, self.sockets.free_slot(w.slot for w in current))
        self.hooks.call("pre_fork", self, worker)
        parent_end, child_end = socket.socketpair()
        try:
            listeners = self.sockets.listeners(worker.slot)
            worker.process = self._launch(worker, child_end, listeners, parent_end)
        except Exception as error:  # noqa: BLE001 - e.g. EAGAIN from fork, a bind error
            parent_end.close()
            log.error("could not start worker %d: %s", worker.age, describe_exception(error))
            worker.failure = describe_exception(error)
            self._start_failed(worker)
            return
        finally:
            child_end.close()
        worker.pid = worker.process.pid
        parent_end.setblocking(False)
        worker.link, worker.writer = parent_end, workerlink.LinkWriter(parent_end)
        self._selector.register(parent_end, selectors.EVENT_READ, lambda: self._on_link(worker))
        self.workers.append(worker)
        log.info("Started worker %d (pid %d)", worker.age, worker.pid)

    def _launch(
        self,
        worker: WorkerRecord,
        link: socket.socket,
        listeners: list[Listener],
        parent_end: socket.socket,
    ) -> WorkerProcess:
        sockets = [listener.socket for listener in listeners]
        # The worker cannot tell a TLS socket from a plain one: it is told, in socket order.
        tls_flags = tuple(listener.is_tls for listener in listeners)
        limit = self.settings.max_requests
        if limit:
            limit += random.randint(0, self.settings.max_requests_jitter)
        heartbeat = min(1.0, self.settings.worker_timeout / 4) if self.settings.worker_timeout else 1.0
        if self.start_method == "fork":
            boot = WorkerBoot(
                worker.age, self.settings, self.hooks, self.pid, app=self.app_source.app,
                app_spec=self.app_source.spec, call_factory=self.app_source.call_factory,
                max_requests=limit, heartbeat_seconds=heartbeat, name=self.app_source.name,
                tls_flags=tls_flags,
            )  # fmt: skip
            return fork_worker(boot, link, sockets, self._owned_by_supervisor(parent_end, worker.slot))
        assert self.app_source.spec is not None
        spawn = SpawnBoot(
            worker.age, _plain_settings(self.given), self.app_source.spec, self.app_source.call_factory,
            self.pid, limit, heartbeat, self.app_source.name, [], config_path=self.config_path,
            hooks=self._python_hooks(), log_level=log.getEffectiveLevel(), tls_flags=tls_flags,
        )  # fmt: skip
        return spawn_worker(spawn, link, sockets)

    def _python_hooks(self) -> dict[str, Any]:
        """Hooks a spawned worker cannot read from the config file itself."""
        if not self.config_path:
            return self.hooks.as_dict()
        from .configfile import load_config_file

        in_file = load_config_file(self.config_path).hooks
        return {name: hook for name, hook in self.hooks.as_dict().items() if name not in in_file}

    def _owned_by_supervisor(self, parent_end: socket.socket, slot: int) -> list[Any]:
        """What a forked child must close: the supervisor's descriptors, not its own."""
        owned: list[Any] = [self._selector, self._wake_read, self._wake_write, parent_end]
        owned += [worker.link for worker in self.workers if worker.link is not None]
        if self.metrics is not None:
            owned += self.metrics.inherited_resources()
        return owned + self.sockets.others(slot)

    def _start_failed(self, worker: WorkerRecord) -> None:
        self._start_failures += 1
        reason = worker.failure or "it exited during start-up"
        if self._start_failures >= MAX_START_FAILURES:
            if self._roll_back_reload(reason):
                return
            self.failure = (
                f"worker processes failed to start {self._start_failures} times in a row; the last: {reason}"
            )
            log.error("%s; stopping", self.failure)
            self._stop(graceful=True)
            return
        delay = min(_FIRST_BACKOFF_SECONDS * 2 ** (self._start_failures - 1), _MAX_BACKOFF_SECONDS)
        self._next_start_at = time.monotonic() + delay
        log.error("Worker %d failed to start: %s; trying again in %.1fs", worker.age, reason, delay)

    def _roll_back_reload(self, reason: str) -> bool:
        """After a reload whose workers cannot start: keep the old ones if any serve."""
        old = [w for w in self.workers if w.state == READY and not w.retiring]
        if not old:
            return False
        log.error("The new workers failed to start (%s); the %d old ones keep serving", reason, len(old))
        for worker in old:
            worker.generation, worker.superseded = self._generation, False
        self._set_num_workers(len(old))
        self._start_failures = 0
        return True

    def _retire(self, worker: WorkerRecord, why: str, replaced_for: Optional[str] = None) -> None:
        """Tell ``worker`` to finish and exit. ``replaced_for`` (a restart reason of the
        metrics) when a successor takes its place; None when the workers are fewer."""
        worker.retiring = True
        worker.replaced_for = replaced_for
        worker.kill_at = (
            time.monotonic() + SETTLE_SECONDS + self.settings.graceful_timeout + STOP_MARGIN_SECONDS
        )
        log.info("Retiring worker %d (pid %s): %s", worker.age, worker.pid, why)
        worker.send(workerlink.RETIRE)

    def _reload(self) -> None:
        try:
            if self.reload_config is not None:
                given, hooks = self.reload_config()
                self._apply_reloaded(given, hooks)
            else:
                # The new workers read the certificate files again (a renewal): a bad
                # one is refused here, and the old workers go on serving.
                create_context_holder(self.settings)
        except (ConfigError, WaitressLikeError) as error:
            log.error("Reload failed, nothing changed: %s", error)
            return
        if self.app_source.app is not None:
            log.warning("The application was given as an object: the new workers run the same code")
        self.hooks.call("on_reload", self)
        self._generation += 1
        log.info("Reloading: starting %d new workers", self.settings.workers)
        for worker in self.workers:
            if worker.state == STARTING and not worker.retiring:
                self._retire(worker, "a reload started before it was ready", "reload")
        reopen_log_files_soon()
        self._set_num_workers(self.settings.workers)

    def _apply_reloaded(self, given: dict[str, Any], hooks: Hooks) -> None:
        given = _from_environment(given)
        settings = Settings.from_mapping(given)
        if (settings.certfile is None) != (self.settings.certfile is None):
            raise ConfigError(
                "certfile", settings.certfile,
                "whether the sockets serve TLS was decided when they were bound, and a reload "
                "keeps them: restart the server to add or remove certfile",
            )  # fmt: skip
        create_context_holder(settings)  # checked once here rather than failing in each worker
        changed = [name for name in _LISTEN_SETTINGS if self.given.get(name) != given.get(name)]
        if changed:
            log.warning(
                "Reload: %s changed; the sockets stay as they are until a restart", ", ".join(changed)
            )
        self.given, self.settings, self.hooks = given, settings, hooks

    # -- messages ---------------------------------------------------------------------------

    def _on_link(self, worker: WorkerRecord) -> None:
        assert worker.link is not None
        try:
            messages = workerlink.receive(worker.link, worker.reader)
        except workerlink.LinkError as error:
            log.error("worker %d broke the link protocol: %s", worker.age, error)
            messages = None
        if messages is None:
            self._close_link(worker)
            return
        worker.last_seen = time.monotonic()
        self._dispatch(worker, messages)

    def _read_last_messages(self, worker: WorkerRecord) -> None:
        """``worker`` has exited: read what it wrote after the last select (its final
        metrics, why it could not start), before the link closes. Its end is closed, so
        this never waits. A ``ready`` is dropped: the worker is not."""
        link = worker.link
        while link is not None:
            try:
                data = link.recv(65536)
                messages = worker.reader.feed(data) if data else None
            except (OSError, workerlink.LinkError):  # BlockingIOError: nothing more
                return
            if messages is None:
                return
            self._dispatch(worker, [message for message in messages if message["kind"] != workerlink.READY])

    def _dispatch(self, worker: WorkerRecord, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            handler = self.message_handlers.get(message["kind"])
            if handler is None:
                log.debug("ignoring a %r message from worker %d", message["kind"], worker.age)
            else:
                handler(worker, message)

    def _on_ready(self, worker: WorkerRecord, message: dict[str, Any]) -> None:
        worker.state = READY
        self._start_failures = 0
        log.info("Worker %d (pid %s) is ready", worker.age, worker.pid)

    def _on_heartbeat(self, worker: WorkerRecord, message: dict[str, Any]) -> None:
        worker.requests = int(message.get("requests", worker.requests))

    def _on_recycle(self, worker: WorkerRecord, message: dict[str, Any]) -> None:
        if not worker.superseded and not worker.retiring:
            worker.superseded = True
            log.info("Worker %d (pid %s) has served %s requests (max_requests): replacing it",
                     worker.age, worker.pid, message.get("requests"))  # fmt: skip

    def _on_boot_error(self, worker: WorkerRecord, message: dict[str, Any]) -> None:
        worker.failure = str(message.get("reason", "unknown"))

    def _on_metrics(self, worker: WorkerRecord, message: dict[str, Any]) -> None:
        snapshot = message.get("snapshot")
        if self.metrics is not None and isinstance(snapshot, dict):
            # The spawn number, not the pid: unique for the supervisor's lifetime.
            self.metrics.worker_reported(worker.age, snapshot)

    def _close_link(self, worker: WorkerRecord) -> None:
        if worker.link is not None:
            self._selector.unregister(worker.link)
            worker.link.close()
            worker.link = worker.writer = None

    # -- exits and deadlines ------------------------------------------------------------------

    def _reap(self) -> None:
        for worker in list(self.workers):
            assert worker.process is not None
            status = worker.process.poll()
            if status is not None:
                self._on_exit(worker, status)

    def _on_exit(self, worker: WorkerRecord, status: int) -> None:
        self.workers.remove(worker)
        self._read_last_messages(worker)
        self._close_link(worker)
        if self.metrics is not None:
            self.metrics.worker_exited(worker.age, self._restart_reason(worker))
        self.hooks.call("child_exit", self, worker)
        described = _describe_status(status)
        if self._stopping:
            self._clean = self._clean and status == 0
            log.info("Worker %d (pid %s) %s", worker.age, worker.pid, described)
        elif worker.state == STARTING and not worker.retiring:
            worker.failure = worker.failure or f"it {described} while starting"
            self._start_failed(worker)
        elif worker.retiring:
            log.info("Worker %d (pid %s) %s", worker.age, worker.pid, described)
        else:
            log.warning("Worker %d (pid %s) %s; replacing it", worker.age, worker.pid, described)
        self.sockets.close_unused((worker.slot for worker in self.workers), self.num_workers)

    def _restart_reason(self, worker: WorkerRecord) -> Optional[str]:
        """Why ``worker`` is replaced, as ``worker_restarts_total`` counts it; None when
        it is not (the supervisor stops, or there are fewer workers)."""
        if self._stopping:
            return None
        if worker.retiring:
            return worker.replaced_for
        return "timeout" if worker.aborted else "exited"

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        timeout = self.settings.worker_timeout
        for worker in self.workers:
            assert worker.process is not None
            if worker.kill_at is not None and now >= worker.kill_at:
                log.warning("Worker %d (pid %s) did not stop in time; killing it", worker.age, worker.pid)
                worker.process.kill()
                worker.kill_at = None
                self._clean = False if self._stopping else self._clean
            elif timeout and not worker.aborted and now - worker.last_seen > timeout:
                self._abort(worker, now)

    def _abort(self, worker: WorkerRecord, now: float) -> None:
        assert worker.process is not None
        worker.aborted = True
        silent = now - worker.last_seen
        if worker.state == STARTING:
            worker.failure = f"it did not start within worker_timeout ({self.settings.worker_timeout}s)"
        log.error("Worker %d (pid %s) sent no heartbeat for %.1fs (worker_timeout); killing it",
                  worker.age, worker.pid, silent)  # fmt: skip
        worker.process.abort()
        worker.kill_at = now + KILL_GRACE_SECONDS

    # -- stopping -----------------------------------------------------------------------------

    def _stop(self, graceful: bool) -> None:
        if self._stopping == "immediate" or (self._stopping == "graceful" and graceful):
            return
        first = self._stopping is None
        self._stopping = "graceful" if graceful else "immediate"
        if first:
            log.info("Shutting down: %s", "draining the workers" if graceful else "stopping the workers now")
            self.sockets.close()
        else:
            log.info("Stopping the workers now")
        grace = self.settings.graceful_timeout + STOP_MARGIN_SECONDS if graceful else KILL_GRACE_SECONDS
        for worker in self.workers:
            worker.send(workerlink.STOP, graceful=graceful)
            worker.kill_at = min(worker.kill_at or float("inf"), time.monotonic() + grace)

    def _finish(self) -> None:
        if self._finished.is_set():
            return
        try:
            for worker in self.workers:  # only after an error in the loop itself
                if worker.process is not None:
                    worker.process.kill()
            self.sockets.close()
            if self.metrics is not None:
                self.metrics.close()
            for worker in list(self.workers):
                self._close_link(worker)
            self._restore_signals()
            self._selector.close()
            self._wake_read.close()
            self._wake_write.close()
            if self._pidfile is not None:
                self._pidfile.remove()
            if self._started:
                self.hooks.call("on_exit", self)
        finally:
            self._finished.set()

    # -- signals ------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # a service's thread: it stops us through close()
        for signum in (*_SIGNAL_ACTIONS, *_WAKE_ONLY_SIGNALS):
            self._previous_signals[signum] = signal.signal(signum, self._on_signal)
        self._previous_wakeup = signal.set_wakeup_fd(self._wake_write.fileno(), warn_on_full_buffer=False)

    def _on_signal(self, signum: int, frame: Any) -> None:
        # The byte set_wakeup_fd writes wakes the loop; SIGCHLD needs nothing more, since
        # _reap() looks at every worker on each turn.
        action = _SIGNAL_ACTIONS.get(signum)
        if action is not None:
            self._events.append(action)

    def _restore_signals(self) -> None:
        if self._previous_wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            self._previous_wakeup = None
        for signum, handler in self._previous_signals.items():
            signal.signal(signum, handler)
        self._previous_signals.clear()

    def _load_app(self) -> Any:
        assert self.app_source.spec is not None
        return load_application(self.app_source.spec, call_factory=self.app_source.call_factory)


# --------------------------------------------------------------------------- helpers


def _from_environment(given: dict[str, Any]) -> dict[str, Any]:
    """What ``create_server`` takes from the environment: systemd's sockets (as ``fd``)
    and ``FORWARDED_ALLOW_IPS``."""
    if "fd" not in given:
        systemd_fds = systemd_listen_fds(os.environ)
        if systemd_fds:
            given = {**given, "fd": systemd_fds}
    return trusted_proxy_from_environment(dict(given), os.environ)


def _plain_settings(given: dict[str, Any]) -> dict[str, Any]:
    """The settings a spawned worker validates again: without the listening ones, whose
    sockets it receives instead."""
    return {name: value for name, value in given.items() if name not in ("sockets", "fd")}


def _check_app_source(app: AppSource, settings: Settings, start_method: str) -> None:
    if start_method == "spawn" and app.spec is None:
        raise ConfigError(
            "workers", settings.workers,
            "worker processes that are not forked (Windows) import the application themselves: "
            "give it as 'MODULE:OBJECT', e.g. serve('myproject.wsgi:application', workers=2)",
        )  # fmt: skip


def _describe_status(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return "exited" if status == 0 else f"exited with status {status}"
