"""Starting a worker process and watching it, from the supervisor's side.

Two ways to start one, behind one small interface (:class:`WorkerProcess`):

* :func:`fork_worker` (Unix): ``os.fork()``; the child inherits the sockets and the
  application (when the supervisor has it), closes what belongs to the supervisor, and
  runs :func:`waitress_like.worker.run_worker`. It never returns into the supervisor's
  code: it leaves with ``os._exit``.
* :func:`spawn_worker`: a new interpreter, ``python -m waitress_like.worker``, which reads
  a pickled :class:`~waitress_like.worker.SpawnBoot` from its standard input. On Windows
  the sockets go with it as ``socket.share()`` data (the target process id is needed,
  so they are shared once it exists); elsewhere as inherited descriptors (``pass_fds``),
  which is how the tests run this path on Linux.

The Windows-only lines are ``socket.share``, ``CREATE_NEW_PROCESS_GROUP`` and
``TerminateProcess`` (through ``Popen.kill``); they are not run by the test suite.

Thread contract: the supervisor's thread only.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import traceback
from typing import Any, Optional, Protocol, Sequence

from .logsetup import flush_logs
from .worker import EXIT_BOOT_ERROR, SpawnBoot, WorkerBoot, run_worker

__all__ = ["ForkedProcess", "SpawnedProcess", "WorkerProcess", "fork_worker", "spawn_worker"]

_WINDOWS = os.name == "nt"
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class WorkerProcess(Protocol):
    """A started worker: its pid, its exit status once reaped, and ways to end it."""

    pid: int

    def poll(self) -> Optional[int]:
        """The exit status once the process has ended (negative: killed by that signal),
        else None. Reaps it."""

    def abort(self) -> None:
        """Ask it to stop now, running ``worker_abort`` (SIGABRT); Windows: kill it."""

    def kill(self) -> None:
        """End it at once (SIGKILL, TerminateProcess)."""


class ForkedProcess:
    """A child made with ``os.fork()``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._status: Optional[int] = None

    def poll(self) -> Optional[int]:
        if self._status is not None:
            return self._status
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: its status is lost
            self._status = -1
            return self._status
        if pid == 0:
            return None
        self._status = os.waitstatus_to_exitcode(status)
        return self._status

    def _signal(self, signum: int) -> None:
        if self._status is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def abort(self) -> None:
        self._signal(signal.SIGABRT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)


class SpawnedProcess:
    """A child started as a new interpreter (``subprocess.Popen``)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    def abort(self) -> None:
        if _WINDOWS:
            self.kill()
        elif self.popen.returncode is None:
            self.popen.send_signal(signal.SIGABRT)

    def kill(self) -> None:
        if self.popen.returncode is None:
            try:
                self.popen.kill()
            except OSError:
                pass


# --------------------------------------------------------------------------- fork

#: Signals the supervisor handles: blocked around fork(), so that none runs the
#: supervisor's handler in the child before the child has set up its own.
SUPERVISOR_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGCHLD")
    if hasattr(signal, name)
)


def fork_worker(
    boot: WorkerBoot, link: socket.socket, sockets: Sequence[socket.socket], close_in_child: Sequence[Any]
) -> ForkedProcess:
    """Fork a worker running ``boot`` on ``sockets``; ``link`` is its end of the link and
    ``close_in_child`` what the child must close (the supervisor's own descriptors)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SUPERVISOR_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            _child(boot, link, sockets, close_in_child)  # never returns
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SUPERVISOR_SIGNALS)
    return ForkedProcess(pid)


def _child(
    boot: WorkerBoot, link: socket.socket, sockets: Sequence[socket.socket], close: Sequence[Any]
) -> None:
    status = EXIT_BOOT_ERROR
    try:
        signal.set_wakeup_fd(-1)
        for signum in SUPERVISOR_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SUPERVISOR_SIGNALS)
        for item in close:
            item.close()
        status = run_worker(boot, link, list(sockets))
    except BaseException:
        traceback.print_exc()
    finally:
        flush_logs()  # os._exit does not wait for the log writer thread
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)


# --------------------------------------------------------------------------- spawn


def _python_executable() -> str:
    """The interpreter for a worker: in a Windows service, sys.executable is pywin32's
    pythonservice.exe, which cannot run ``-m``; the environment's python.exe can."""
    if os.path.basename(sys.executable).lower() != "pythonservice.exe":
        return sys.executable
    for directory in (sys.prefix, os.path.join(sys.prefix, "Scripts"), sys.exec_prefix):
        candidate = os.path.join(directory, "python.exe")
        if os.path.exists(candidate):
            return candidate
    return sys.executable


def spawn_worker(boot: SpawnBoot, link: socket.socket, sockets: Sequence[socket.socket]) -> SpawnedProcess:
    """Start ``python -m waitress_like.worker`` and hand it ``boot`` and the sockets.

    Raises ``pickle.PicklingError`` (or TypeError, AttributeError) before starting
    anything when ``boot`` cannot be pickled, and OSError when the process cannot start.
    """
    pickle.dumps(boot.hooks)  # fail before a process exists
    everything = [link, *sockets]
    environment = dict(os.environ)
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + path if path else "")
    command = [_python_executable(), "-m", "waitress_like.worker"]
    if _WINDOWS:
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        popen = subprocess.Popen(command, stdin=subprocess.PIPE, env=environment, creationflags=flags)
        boot.sockets = [("share", sock.share(popen.pid)) for sock in everything]  # type: ignore[attr-defined,unused-ignore]
    else:
        fds = [sock.fileno() for sock in everything]
        popen = subprocess.Popen(command, stdin=subprocess.PIPE, env=environment, pass_fds=fds)
        boot.sockets = [("fd", fd) for fd in fds]
    assert popen.stdin is not None
    try:
        popen.stdin.write(pickle.dumps(boot))
        popen.stdin.close()
    except OSError:
        pass  # it died already: the supervisor reaps it as a failed start
    return SpawnedProcess(popen)
