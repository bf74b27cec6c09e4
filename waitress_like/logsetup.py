"""Logging settings: ``loglevel``, ``errorlog``, ``logconfig``, ``logconfig_dict``,
``logconfig_json`` (gunicorn's names), a queue in front of the server's log, and
reopening log files.

:func:`configure_logging` is what the entry points (``serve()``, the command, PasteDeploy)
do before serving. It applies at most one logging configuration (an ini file for
``fileConfig``, a dictionary or a JSON file for ``dictConfig``; loggers that already
exist stay enabled), or else sends the server's log to ``errorlog``, or else (nothing
given) sets up the root logger as ``logging.basicConfig()`` does. Then it puts a queue
in front of the ``waitress_like`` logger: a record logged on the loop thread is only
formatted and queued there, and a thread of its own writes it out, so a slow disk or a
full pipe never stalls every connection. Records from worker threads take the same way;
the access log is written by worker threads directly (see :mod:`waitress_like.accesslog`).

SIGUSR1 (through :func:`reopen_log_files_soon`) and :func:`reopen_log_files` reopen every
log file: after ``logrotate`` has moved them, new lines go to new files.

A forked worker process gets a writer thread of its own (``os.register_at_fork``); a
process that is about to leave with ``os._exit`` (or whose interpreter ends, killing
the daemon writer) calls :func:`flush_logs` first, so its last records are written.

Thread contract: :func:`configure_logging` and :meth:`LogSetup.close` on the thread that
starts and stops serving; :func:`reopen_log_files` on any thread (it does file I/O);
:func:`reopen_log_files_soon` on any thread but not in a signal handler (it may start a
thread): the server calls it from its loop.
"""

from __future__ import annotations

import json
import logging
import logging.config
import logging.handlers
import os
import queue
import sys
import threading
from typing import Any, Mapping, Optional, Union

from .config import Settings
from .errors import ConfigError

__all__ = [
    "LOGGING_SETTINGS",
    "SERVER_LOGGER",
    "LogSetup",
    "configure_logging",
    "flush_logs",
    "logging_settings",
    "reopen_log_files",
    "reopen_log_files_soon",
]

SERVER_LOGGER = "waitress_like"
# gunicorn's error log format, so log shippers parsing it keep working.
ERROR_LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
ERROR_LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
# Records waiting for the writer thread: past this, new ones are dropped (and counted)
# rather than holding memory without bound while a disk is stuck.
MAX_QUEUED_RECORDS = 10_000

_REOPEN = object()  # queued: the writer thread reopens the log files
_STOP = object()  # queued: the writer thread finishes

_active: Optional[LogSetup] = None  # the setup whose writer thread is running


#: The settings :func:`configure_logging` reads.
LOGGING_SETTINGS = ("loglevel", "errorlog", "logconfig", "logconfig_dict", "logconfig_json")


def logging_settings(given: Mapping[str, Any]) -> Settings:
    """Validated settings from the logging entries of ``given`` alone (the rest is left
    for the server to check): logging is set up before the server is made, so that what
    happens while it is made is logged as configured."""
    return Settings.from_mapping({name: given[name] for name in LOGGING_SETTINGS if name in given})


def configure_logging(settings: Settings) -> LogSetup:
    """Apply the logging settings and start the writer thread; see the module docstring.

    Raises :class:`~waitress_like.errors.ConfigError` naming the setting when a logging
    configuration cannot be read or applied.
    """
    logger = logging.getLogger(SERVER_LOGGER)
    propagate = logger.propagate
    own_handler = _apply_configuration(settings)
    if settings.loglevel is not None:
        logger.setLevel(settings.loglevel.upper())
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    setup = LogSetup(logger, own_handler, restore_propagate=propagate)
    setup.start()
    return setup


def _apply_configuration(settings: Settings) -> Optional[logging.Handler]:
    """Apply logconfig* or errorlog; returns the handler made for errorlog, if any."""
    if settings.logconfig is not None:
        _configure_from("logconfig", settings.logconfig, _file_config)
    elif settings.logconfig_json is not None:
        _configure_from("logconfig_json", settings.logconfig_json, _json_config)
    elif settings.logconfig_dict is not None:
        _configure_from("logconfig_dict", settings.logconfig_dict, _dict_config)
    elif settings.errorlog is not None:
        return _error_log_handler(settings.errorlog)
    else:
        logging.basicConfig()
    return None


def _configure_from(setting: str, value: Any, apply: Any) -> None:
    try:
        apply(value)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, ImportError) as error:
        # fileConfig and dictConfig raise all of these for a bad file or entry.
        raise ConfigError(setting, value, f"cannot apply this logging configuration: {error}") from error


def _file_config(path: str) -> None:
    with open(path, encoding="utf-8"):  # fileConfig reads nothing silently from a missing file
        pass
    logging.config.fileConfig(path, disable_existing_loggers=False)


def _json_config(path: str) -> None:
    with open(path, encoding="utf-8") as file:
        _dict_config(json.load(file))


def _dict_config(config: Any) -> None:
    if not isinstance(config, dict):
        raise TypeError("the configuration must be a dictionary")
    # Loggers made before this (the server's own, the application's) stay enabled unless
    # the configuration says otherwise, as gunicorn's defaults do.
    logging.config.dictConfig({"disable_existing_loggers": False, **config})


def _error_log_handler(target: str) -> logging.Handler:
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.handlers.WatchedFileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter(ERROR_LOG_FORMAT, ERROR_LOG_DATE_FORMAT))
    logger = logging.getLogger(SERVER_LOGGER)
    logger.addHandler(handler)
    logger.propagate = False  # errorlog says where the server's records go: only there
    return handler


class _QueueHandler(logging.handlers.QueueHandler):
    """Queues records for the writer thread; drops them (counted) past the bound."""

    def __init__(self, records: queue.SimpleQueue[Any]) -> None:
        super().__init__(records)
        self._records = records
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        if self._records.qsize() >= MAX_QUEUED_RECORDS:
            self.dropped += 1
            return
        self._records.put_nowait(record)


class LogSetup:
    """The queue in front of ``logger`` and the thread writing its records out.

    At :meth:`start`, the handlers the logger's records reached (its own, then its
    ancestors' while it propagates) move behind the queue; :meth:`close` writes what is
    queued and puts them back, except ``own_handler`` (made for ``errorlog``), which it
    closes; the logger's ``propagate`` becomes ``restore_propagate``.
    """

    def __init__(
        self,
        logger: logging.Logger,
        own_handler: Optional[logging.Handler] = None,
        restore_propagate: bool = True,
    ) -> None:
        self.logger = logger
        self._own_handler = own_handler
        self._records: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queue_handler = _QueueHandler(self._records)
        self._moved: list[logging.Handler] = []
        self._targets: list[logging.Handler] = []
        self._restore_propagate = restore_propagate
        self._thread = threading.Thread(target=self._write, name="waitress_like-log", daemon=True)

    @property
    def dropped_records(self) -> int:
        return self._queue_handler.dropped

    def start(self) -> None:
        global _active
        logger = self.logger
        self._moved = list(logger.handlers)
        self._targets = _reached_handlers(logger)
        for handler in self._moved:
            logger.removeHandler(handler)
        logger.addHandler(self._queue_handler)
        logger.propagate = False
        self._thread.start()
        _active = self

    def restart_after_fork(self) -> None:
        """In a forked child (a worker): the writer thread did not survive the fork, and
        the queue may have been mid-operation. A fresh queue and thread take over; what
        the parent had queued is the parent's to write."""
        self.logger.removeHandler(self._queue_handler)
        for handler in self._targets:
            _fresh_stream_after_fork(handler)
        self._records = queue.SimpleQueue()
        self._queue_handler = _QueueHandler(self._records)
        self.logger.addHandler(self._queue_handler)
        self._thread = threading.Thread(target=self._write, name="waitress_like-log", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while True:
            item = self._records.get()
            if item is _STOP:
                return
            if item is _REOPEN:
                reopen_log_files(self._targets)
                continue
            if isinstance(item, threading.Event):  # flush(): what came before is written
                item.set()
                continue
            for handler in self._targets:
                if item.levelno >= handler.level:
                    try:
                        handler.handle(item)
                    except Exception:  # pragma: no cover - handleError normally catches
                        pass

    def flush(self, timeout_seconds: float) -> bool:
        """Any thread but the writer: wait (at most ``timeout_seconds``) until the records
        queued so far are written; False if they were not in time."""
        if not self._thread.is_alive():
            return True
        written = threading.Event()
        self._records.put(written)
        return written.wait(timeout_seconds)

    def request_reopen(self) -> None:
        """Any thread, even a signal handler: the writer thread reopens the files next."""
        self._records.put(_REOPEN)

    def close(self) -> None:
        """Write what is queued, then give the logger its handlers back. Idempotent."""
        global _active
        if _active is self:
            _active = None
        if not self._thread.is_alive():
            return
        self._records.put(_STOP)
        self._thread.join()
        logger = self.logger
        logger.removeHandler(self._queue_handler)
        for handler in self._moved:
            if handler is not self._own_handler:
                logger.addHandler(handler)
        logger.propagate = self._restore_propagate
        if self._own_handler is not None:
            self._own_handler.close()


def _reached_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of ``logger`` reaches: its own, then up while it propagates."""
    handlers: list[logging.Handler] = []
    current: Optional[logging.Logger] = logger
    while current is not None:
        handlers.extend(handler for handler in current.handlers if handler not in handlers)
        if not current.propagate:
            break
        current = current.parent
    return handlers


def reopen_log_files(extra_handlers: Optional[list[logging.Handler]] = None) -> int:
    """Any thread: reopen every log file a logger writes to (and those of
    ``extra_handlers``); returns how many. A file that was moved or deleted is created
    anew. Does blocking file I/O, so not on the loop thread."""
    handlers = list(extra_handlers or ())
    loggers: list[Union[logging.Logger, logging.PlaceHolder]] = [logging.getLogger()]
    loggers += list(logging.Logger.manager.loggerDict.values())
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if handler not in handlers:
                handlers.append(handler)
    reopened = 0
    for handler in handlers:
        if isinstance(handler, logging.FileHandler):
            _reopen(handler)
            reopened += 1
    return reopened


def _reopen(handler: logging.FileHandler) -> None:
    handler.acquire()
    try:
        if isinstance(handler, logging.handlers.WatchedFileHandler):
            handler.reopenIfNeeded()  # only if the file was moved: it reopens and re-stats
            return
        if handler.stream is not None:
            handler.stream.close()
        handler.stream = handler._open()
    except OSError as error:
        sys.stderr.write(f"waitress_like: cannot reopen log file {handler.baseFilename}: {error}\n")
    finally:
        handler.release()


# Streams a forked child stopped using: never closed nor freed there, since closing one
# (or its finalizer) flushes, and the flush waits on a lock the parent's writer thread
# may have held at the fork, which no thread of the child will ever release.
_ABANDONED_STREAMS: list[Any] = []


def _fresh_stream_after_fork(handler: logging.Handler) -> None:
    """In a forked child: give a stream handler a stream of its own. The parent's
    writer thread may have been inside a write to the inherited stream at the fork
    (the supervisor logs as it forks), leaving that stream's buffer locked for good:
    the child's first line would block its writer thread forever."""
    if not isinstance(handler, logging.StreamHandler):
        return
    old = handler.stream
    try:
        if isinstance(handler, logging.FileHandler):
            # "a", whatever the handler's mode: "w" would empty what the parent wrote.
            fresh = open(handler.baseFilename, "a", encoding=handler.encoding, errors=handler.errors)
        else:
            fresh = open(
                os.dup(old.fileno()),
                "w",
                encoding=getattr(old, "encoding", None),
                errors=getattr(old, "errors", None),
                closefd=True,
            )
    except (AttributeError, OSError, ValueError):
        return  # no descriptor (a StringIO, say): nothing a fork can leave locked
    _ABANDONED_STREAMS.append(old)
    handler.stream = fresh  # not setStream(): that flushes the old stream
    if isinstance(handler, logging.handlers.WatchedFileHandler):
        handler._statstream()


def _restart_after_fork() -> None:
    setup = _active
    if setup is not None:
        setup.restart_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_after_fork)


def flush_logs(timeout_seconds: float = 2.0) -> bool:
    """Any thread: write out what the active writer thread has queued, waiting at most
    ``timeout_seconds`` (a stuck disk must not keep a process from exiting); True when
    done. For a process about to exit: the writer is a daemon thread, which dies with
    the process, and ``os._exit`` does not wait for it."""
    setup = _active
    return True if setup is None else setup.flush(timeout_seconds)


def reopen_log_files_soon() -> None:
    """Reopen log files without blocking the caller: on the writer thread when
    :func:`configure_logging` started one, else on a short-lived thread of its own."""
    setup = _active
    if setup is not None:
        setup.request_reopen()
    else:
        threading.Thread(target=reopen_log_files, name="waitress_like-reopen", daemon=True).start()
