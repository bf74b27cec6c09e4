"""Run waitress_like (or pserve, or a snippet of Python) in a real child process.

The child logs ``Serving on http://HOST:PORT`` (or ``https://``) on stderr once it listens; the tests wait for
that line (an event, not a sleep), speak raw HTTP to the port, then stop the child with a
signal and check its exit status. Every wait is bounded.

Tests that need a process of their own (signals, descriptor limits) run a snippet with
:func:`python_snippet`; such a child exits by itself if the test runner dies, so an
interrupted run never leaves a server behind.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Optional, Sequence

from tests.httpclient import Response, request

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVING_LINE = re.compile(r"Serving on https?://(\[[^\]]+\]|[^:/\s]+):(\d+)")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0


def package_paths() -> list[str]:
    """Where a child process finds the waitress_like under test, then this checkout's
    ``tests``: ``$WAITRESS_LIKE_UNDER_TEST`` (a compiled build, see test_compiled.py)
    first when it is set."""
    under_test = os.environ.get("WAITRESS_LIKE_UNDER_TEST")
    return ([under_test] if under_test else []) + [str(REPO_ROOT)]


def child_environment(**extra: str) -> dict[str, str]:
    """os.environ with the checkout importable (it need not be installed) plus ``extra``."""
    environment = dict(os.environ)
    paths = package_paths() + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    environment.pop("LISTEN_FDS", None)
    environment.pop("LISTEN_PID", None)
    environment.update(extra)
    return environment


def server_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "waitress_like", *arguments]


# Runs first in every snippet child: ServerProcess gives the child a stdin pipe that only
# closes when the parent closes it or dies.
_EXIT_WITH_PARENT = """
import os, sys, threading
def _exit_when_parent_dies():
    sys.stdin.read()
    os._exit(70)
threading.Thread(target=_exit_when_parent_dies, daemon=True).start()
"""


def python_snippet(code: str) -> list[str]:
    """The command that runs ``code`` in a child Python which exits with its parent."""
    return [sys.executable, "-c", _EXIT_WITH_PARENT + code]


def run_command(
    arguments: Sequence[str], cwd: Optional[Path] = None, **popen: Any
) -> subprocess.CompletedProcess:
    """Run a command that is expected to end by itself; returns its exit status and output."""
    popen.setdefault("env", child_environment())
    return subprocess.run(
        list(arguments),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS,
        **popen,
    )


class ServerProcess:
    """A child that serves until signalled. Use as a context manager: it is killed if a
    test fails before stopping it."""

    def __init__(self, arguments: Sequence[str], cwd: Optional[Path] = None, **popen: Any) -> None:
        popen.setdefault("env", child_environment())
        self.process = subprocess.Popen(
            list(arguments),
            cwd=cwd,
            # A pipe nobody writes to: it closes when this process ends (see python_snippet).
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            **popen,
        )
        self.stderr_lines: list[str] = []
        self._lines: queue.Queue[Optional[str]] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.put(line)
        self._lines.put(None)  # end of output: the child has exited or closed stderr

    def wait_serving(self, timeout: float = START_TIMEOUT_SECONDS) -> tuple[str, int]:
        """Wait for the "Serving on" line; returns the (host, port) it names."""
        match = SERVING_LINE.search(self.wait_line(SERVING_LINE, timeout))
        assert match is not None
        return match.group(1).strip("[]"), int(match.group(2))

    def wait_line(self, pattern: re.Pattern[str], timeout: float = START_TIMEOUT_SECONDS) -> str:
        """Wait for the next stderr line that matches ``pattern`` and return it."""
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no {pattern.pattern!r} line within {timeout}s: {self.stderr}"
                ) from None
            if line is None:
                self.process.wait(STOP_TIMEOUT_SECONDS)
                raise AssertionError(
                    f"the child exited ({self.process.returncode}) before {pattern.pattern!r}: {self.stderr}"
                )
            self.stderr_lines.append(line)
            if pattern.search(line):
                return line

    def get(self, address: tuple[str, int], path: str = "/", host: str = "localhost") -> Response:
        return request(address, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())

    def stop(self, signal_number: int = signal.SIGINT) -> int:
        """Send the signal, wait for the exit, return the exit status."""
        self.process.send_signal(signal_number)
        status = self.process.wait(STOP_TIMEOUT_SECONDS)
        self._reader.join(STOP_TIMEOUT_SECONDS)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.stderr_lines.append(line)
        return status

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)
        self._reader.join(STOP_TIMEOUT_SECONDS)
        for stream in (self.process.stdin, self.process.stderr):
            if stream is not None:
                stream.close()
