"""The server's lifecycle on a fake loop: the drain's grace period, deterministically."""

from __future__ import annotations

import socket
from typing import Any, Callable, Iterator

import pytest

from tests.fakeloop import FakeLoop
from waitress_like.config import Settings
from waitress_like.listeners import Listener
from waitress_like.loop import EVENT_READ
from waitress_like.server import Server, ServerState

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


class _Running:
    """A Server on a FakeLoop, RUNNING without run(): its pool is not started, so a
    submitted request stays "in the application" until the test says otherwise."""

    def __init__(self, **settings: Any) -> None:
        self.loop = FakeLoop()
        listening = socket.create_server(("127.0.0.1", 0))
        listening.setblocking(False)
        self.listener = Listener(listening)
        values = Settings.from_mapping({"host": "127.0.0.1", "port": 0, **settings})
        self.server = Server(_app, values, [self.listener], loop=self.loop)  # type: ignore[arg-type]
        assert self.server._enter(ServerState.RUNNING)
        self.server.acceptor.resume()
        self.clients: list[socket.socket] = []

    def connect(self, data: bytes = b"") -> socket.socket:
        client = socket.create_connection(self.listener.address, timeout=5)
        self.clients.append(client)
        assert self.loop.deliver(self.listener.socket, EVENT_READ)
        if data:
            client.sendall(data)
            for channel in self.server.channels:
                self.loop.deliver(channel.socket, EVENT_READ)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for channel in self.server.channels:
            channel.close()
        self.server.pool.shutdown(timeout_seconds=1)
        self.listener.close()


@pytest.fixture
def running() -> Iterator[_Running]:
    harness = _Running(graceful_timeout=5)
    yield harness
    harness.close()


def test_the_drain_cuts_what_is_left_when_the_grace_period_ends(running: _Running) -> None:
    running.connect(GET)  # its request waits in the (unstarted) pool: in the application
    idle = running.connect()
    assert running.server.requests_in_service == 1
    running.server.close()  # on the loop thread: begins the drain, returns
    assert running.server.state is ServerState.DRAINING
    assert idle.recv(1) == b""  # idle connections are closed at once
    assert len(running.server.channels) == 1
    running.loop.advance(4.9)
    assert not running.loop.stopped
    running.loop.advance(0.2)
    assert running.loop.stopped
    assert not running.server.drained_cleanly
    assert not running.server.channels


def test_the_drain_stops_at_once_when_nothing_is_in_the_application(running: _Running) -> None:
    running.connect()
    running.connect(b"GET / HTTP/1.1\r\nHo")  # half a head: nothing promised to it
    running.server.close()
    assert running.loop.stopped
    assert running.server.drained_cleanly
    assert not running.server.channels


def test_no_transition_leaves_stopped_and_run_after_close_returns() -> None:
    harness = _Running()
    try:
        server = harness.server
        assert not server._enter(ServerState.NEW)
        server.close()
        assert server.state is ServerState.DRAINING
        assert not server._enter(ServerState.RUNNING)
        assert server._enter(ServerState.STOPPED)
        assert not server._enter(ServerState.DRAINING)
    finally:
        harness.close()


def test_close_before_run_stops_without_serving() -> None:
    values = Settings.from_mapping({"host": "127.0.0.1", "port": 0})
    listening = socket.create_server(("127.0.0.1", 0))
    server = Server(_app, values, [Listener(listening)], loop=FakeLoop())  # type: ignore[arg-type]
    server.close()
    assert server.state is ServerState.STOPPED
    server.run()  # returns at once
    assert listening.fileno() == -1
