"""Real supervisors in child processes, steady load, and what /proc says about them.

:class:`Supervised` runs ``python -m waitress_like`` (or a Python snippet) with worker
processes; its log lines are the events tests wait on (a worker "is ready", "exited", "was
killed"), every wait bounded. :class:`Load` keeps a few client threads sending requests,
one connection each (``Connection: close``), and counts what each got. The /proc helpers
find worker processes and count descriptors, so tests can show that nothing is left
behind: no process after the supervisor is gone, no descriptor more after a replacement.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from tests.processes import REPO_ROOT, ServerProcess, child_environment, server_command

READY = re.compile(r"Worker (\d+) \(pid (\d+)\) is ready")
EXITED = re.compile(r"Worker (\d+) \(pid (\d+)\) (exited|was killed)")
WAIT_SECONDS = 30.0
APP = "tests.workers.apps:app"


class Supervised(ServerProcess):
    """A supervisor serving on 127.0.0.1, port 0; ``ready`` holds the pids of the workers
    that said they were ready, in order."""

    def __init__(self, arguments: Sequence[str], *, snippet: bool = False, **popen: Any) -> None:
        popen.setdefault("cwd", REPO_ROOT)
        popen.setdefault("env", child_environment())
        command = list(arguments) if snippet else server_command("--listen=127.0.0.1:0", *arguments)
        super().__init__(command, **popen)
        self.host, self.port = self.wait_serving()
        self.address = (self.host, self.port)
        self.pid = self.process.pid
        self.ready: list[int] = []
        self.exited: list[int] = []
        self.age: dict[int, int] = {}  # pid -> the worker's number (1 for the first started)

    def wait_ready(self, count: int = 1, timeout: float = WAIT_SECONDS) -> list[int]:
        """Wait for ``count`` more workers to be ready; returns their pids."""
        return [int(READY.search(self.wait_event(READY, timeout)).group(2)) for _ in range(count)]  # type: ignore[union-attr]

    def wait_exited(self, count: int = 1, timeout: float = WAIT_SECONDS) -> list[int]:
        """Wait for ``count`` more workers to be reaped; returns their pids."""
        return [int(EXITED.search(self.wait_event(EXITED, timeout)).group(2)) for _ in range(count)]  # type: ignore[union-attr]

    def wait_event(self, pattern: re.Pattern[str], timeout: float = WAIT_SECONDS) -> str:
        """The next line matching ``pattern``, recording ready and exit lines on the way."""
        deadline = time.monotonic() + timeout
        combined = re.compile(f"{pattern.pattern}|{READY.pattern}|{EXITED.pattern}")
        while True:
            line = self.wait_line(combined, max(0.1, deadline - time.monotonic()))
            self._record(line)
            if pattern.search(line):
                return line

    def _record(self, line: str) -> None:
        ready, exited = READY.search(line), EXITED.search(line)
        if ready:
            self.ready.append(int(ready.group(2)))
            self.age[int(ready.group(2))] = int(ready.group(1))
        if exited:
            self.exited.append(int(exited.group(2)))

    def send(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def workers(self) -> list[int]:
        """The supervisor's live child processes, from /proc."""
        return children_of(self.pid)

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        """Stop the supervisor; then no worker may be left."""
        workers = self.workers()
        status = super().stop(signal_number)
        wait_until(lambda: not any(alive(pid) for pid in workers), "the workers to be gone")
        return status


class Load:
    """Client threads that each send GET requests, one connection per request, until
    :meth:`stop`. ``ok`` counts answers by the pid in the body; ``failures`` lists errors."""

    def __init__(self, address: tuple[str, int], threads: int = 3, path: str = "/") -> None:
        self.address = address
        self.path = path
        self.ok: dict[int, int] = {}
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    @property
    def answered(self) -> int:
        with self._lock:
            return sum(self.ok.values())

    def wait_answered(self, count: int, timeout: float = WAIT_SECONDS) -> None:
        """Wait until ``count`` more requests have been answered."""
        target = self.answered + count
        wait_until(lambda: self.answered >= target, f"{count} more answers", timeout)

    def pids_since(self, action: Callable[[], Any], answers: int = 20) -> set[int]:
        """Run ``action``, then return the pids that served the next ``answers`` requests."""
        action()
        with self._lock:
            before = dict(self.ok)
        self.wait_answered(answers)
        with self._lock:
            return {pid for pid, count in self.ok.items() if count > before.get(pid, 0)}

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(WAIT_SECONDS)

    def _run(self) -> None:
        request = f"GET {self.path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()
        while not self._stop.is_set():
            try:
                pid = _exchange(self.address, request)
            except (OSError, ValueError) as error:
                with self._lock:
                    self.failures.append(repr(error))
                continue
            with self._lock:
                self.ok[pid] = self.ok.get(pid, 0) + 1


def _exchange(address: tuple[str, int], request: bytes) -> int:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise ValueError(f"unexpected answer {data[:80]!r}")
    return int(body)


def get_pid(address: tuple[str, int], path: str = "/", timeout: float = 10.0) -> int:
    """One request; the pid of the worker that answered."""
    request = f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return int(data.partition(b"\r\n\r\n")[2])


# --------------------------------------------------------------------------- /proc


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Poll ``condition`` (a cheap check of state we cannot wait on) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _stat(pid: int) -> Optional[list[str]]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid ...


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def open_fds(pid: int) -> list[str]:
    """What ``pid``'s descriptors point at (``socket:[...]``, paths, ``anon_inode:...``)."""
    directory = Path(f"/proc/{pid}/fd")
    targets = []
    for entry in directory.iterdir():
        try:
            targets.append(os.readlink(entry))
        except OSError:
            continue
    return targets


def fd_kinds(pid: int) -> dict[str, int]:
    """``pid``'s descriptors counted by kind (socket, pipe, file, ...)."""
    counts: dict[str, int] = {}
    for target in open_fds(pid):
        kind = target.split(":", 1)[0] if ":" in target and not target.startswith("/") else "file"
        counts[kind] = counts.get(kind, 0) + 1
    return counts
