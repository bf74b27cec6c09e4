"""Shared fixtures: a real server on port 0, run once per selector, with leak checks."""

from __future__ import annotations

import gc
import os
import selectors
import threading
from typing import Any, Callable, Iterator

import pytest

from waitress_like import create_server
from waitress_like.loop import EventLoop

SELECTORS = ["default", "select"]

# Every loop made by the tests (and by the servers they start as child processes) checks
# that its loop-only methods run on the loop's thread.
os.environ["WAITRESS_LIKE_DEBUG"] = "1"


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except FileNotFoundError:  # pragma: no cover - not Linux
        return set()


class RunningServer:
    """A server created with ``create_server`` and run on a background thread."""

    def __init__(self, app: Any, selector: str, **settings: Any) -> None:
        settings.setdefault("host", "127.0.0.1")
        if "listen" in settings or "unix_socket" in settings or "sockets" in settings:
            settings.pop("host")
        else:
            settings.setdefault("port", 0)
        # "select" runs the server on the select() selector, as on Windows.
        factory = selectors.SelectSelector if selector == "select" else None
        self.server = create_server(app, _loop=EventLoop(factory), **settings)
        self.thread = threading.Thread(target=self.server.run, name="test-server-loop", daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.addresses[0][:2]
        return host, port

    def close(self) -> None:
        self.server.close(timeout=2)
        self.thread.join(10)
        assert not self.thread.is_alive(), "server loop thread did not stop"


@pytest.fixture(params=SELECTORS)
def selector(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def start_server(selector: str) -> Iterator[Callable[..., RunningServer]]:
    """``start_server(app, **settings)``: a running server, closed and leak-checked after."""
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()
    started: list[RunningServer] = []

    def start(app: Any, **settings: Any) -> RunningServer:
        server = RunningServer(app, selector, **settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
    gc.collect()
    leaked_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    for thread in leaked_threads:
        thread.join(5)
    leaked_threads = [t for t in leaked_threads if t.is_alive()]
    assert not leaked_threads, f"threads left behind: {leaked_threads}"
    leaked_fds = _open_fds() - fds_before
    assert not leaked_fds, f"file descriptors left behind: {sorted(leaked_fds)} -> " + ", ".join(
        _describe_fd(fd) for fd in sorted(leaked_fds)
    )


def _describe_fd(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"
