"""Development reload: a supervisor process that restarts the server when files change.

The supervisor never imports the application. It runs the real server as a child process
(``python -m waitress_like ...`` without the reload options), watches the source tree, and
on a change stops the child and starts a new one. A child process, not fork, so it works
the same on Linux and Windows, and every restart gets a fresh interpreter.

Watching uses ``watchfiles`` when it is installed (the ``reload`` extra), and polling of
modification times otherwise.

Thread contract: :func:`run_with_reloader` runs on the main thread of the supervisor
process; it installs SIGINT/SIGTERM handlers there and returns the exit status.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Iterable, Iterator, Optional, Sequence

__all__ = ["run_with_reloader", "Watcher", "DEFAULT_INCLUDE", "DEFAULT_EXCLUDE"]

log = logging.getLogger("waitress_like")

DEFAULT_INCLUDE = ("*.py", "*.ini")
DEFAULT_EXCLUDE = (".*", "*~", "*.pyc", "__pycache__", "*.egg-info", "node_modules")
_POLL_SECONDS = 0.5
_STOP_GRACE_SECONDS = 5.0


class Watcher:
    """Reports when a file under ``directories`` that matches the patterns changes."""

    def __init__(self, directories: Sequence[str], include: Sequence[str], exclude: Sequence[str]) -> None:
        self.directories = [os.path.abspath(d) for d in directories]
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.stop = threading.Event()

    def wanted(self, path: str) -> bool:
        parts = os.path.normpath(path).split(os.sep)
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in self.exclude):
            return False
        return any(fnmatch.fnmatch(parts[-1], pattern) for pattern in self.include)

    def wait_for_change(self) -> Optional[list[str]]:
        """Block until something changes (its paths) or :attr:`stop` is set (None)."""
        try:
            import watchfiles
        except ImportError:
            return self._poll()
        for changes in watchfiles.watch(
            *self.directories,
            watch_filter=lambda change, path: self.wanted(path),
            stop_event=self.stop,
            raise_interrupt=False,
        ):
            return sorted(path for _, path in changes)
        return None

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        state = {}
        for path in self._files():
            try:
                info = os.stat(path)
            except OSError:
                continue
            state[path] = (info.st_mtime_ns, info.st_size)
        return state

    def _files(self) -> Iterator[str]:
        for directory in self.directories:
            for root, dirs, files in os.walk(directory):
                dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, p) for p in self.exclude)]
                for name in files:
                    path = os.path.join(root, name)
                    if self.wanted(path):
                        yield path

    def _poll(self, before: Optional[dict[str, tuple[int, int]]] = None) -> Optional[list[str]]:
        if before is None:
            before = self._snapshot()
        while not self.stop.wait(_POLL_SECONDS):
            after = self._snapshot()
            if after != before:
                return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        return None


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    if os.name == "nt":
        child.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
    else:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(_STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def run_with_reloader(
    server_arguments: Sequence[str],
    directories: Iterable[str] = (),
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
) -> int:
    """Serve with ``python -m waitress_like SERVER_ARGUMENTS``, restarting on changes.

    Returns when SIGINT or SIGTERM reaches the supervisor: the child is stopped
    gracefully and its exit status returned.
    """
    watcher = Watcher(list(directories) or [os.getcwd()], include, exclude)
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()
        watcher.stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    creation_flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) if os.name == "nt" else 0
    command = [sys.executable, "-m", "waitress_like", *server_arguments]
    log.info("Reloading on changes in %s", ", ".join(watcher.directories))
    try:
        while True:
            child = subprocess.Popen(command, creationflags=creation_flags)
            try:
                changed = watcher.wait_for_change()
            finally:
                _stop_child(child)
            if stopping.is_set() or changed is None:
                return child.returncode or 0
            log.info("Restarting: %s changed", ", ".join(os.path.relpath(p) for p in changed[:3]))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
