"""The lifespan protocol around a real server: order, state, failures, modes."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.asgi.helpers import adapter_of, failing_lifespan_app, send_text
from tests.httpclient import request
from waitress_like import LifespanError, create_server, serve

GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
REPO_ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """An app that records lifespan events and requests, in the order they happen."""

    def __init__(self, startup: str = "complete", shutdown: str = "complete") -> None:
        self.events: list[str] = []
        self.startup = startup
        self.shutdown = shutdown

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            assert scope["asgi"]["version"] == "3.0"
            message = await receive()
            self.events.append(message["type"])
            if self.startup == "raise":
                raise RuntimeError("startup exploded")
            if self.startup == "failed":
                await send({"type": "lifespan.startup.failed", "message": "cannot reach the database"})
                return
            if self.startup == "return":
                return
            scope["state"]["pool"] = "ready"
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            self.events.append(message["type"])
            if self.shutdown == "failed":
                await send({"type": "lifespan.shutdown.failed", "message": "pool would not close"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
            return
        self.events.append(f"request state={scope['state']}")
        await send_text(send, "ok")


def test_startup_before_serving_and_shutdown_after(start_server):
    app = Recorder()
    running = start_server(app)
    assert request(running.address, GET).body == b"ok"
    assert app.events == ["lifespan.startup", "request state={'pool': 'ready'}"]
    running.close()
    assert app.events[-1] == "lifespan.shutdown"
    assert adapter_of(running).loop is None  # the bridge thread has stopped


def test_shutdown_failure_is_logged(start_server, caplog):
    running = start_server(Recorder(shutdown="failed"))
    request(running.address, GET)
    with caplog.at_level(logging.ERROR, logger="waitress_like"):
        running.close()
    assert "pool would not close" in caplog.text


@pytest.mark.parametrize("lifespan", ["auto", "on", "off"])
def test_startup_failed_stops_the_server_unless_off(lifespan):
    app = Recorder(startup="failed")
    threads_before = set(threading.enumerate())
    server = create_server(app, host="127.0.0.1", port=0, lifespan=lifespan)
    address = server.addresses[0]
    if lifespan == "off":
        server.close()
        assert app.events == []  # never sent
        return
    with pytest.raises(LifespanError, match="lifespan startup failed: cannot reach the database"):
        server.run()
    server.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()  # nothing listens any more
    assert set(threading.enumerate()) <= threads_before


@pytest.mark.parametrize("behaviour", ["raise", "return"])
def test_lifespan_on_requires_a_completed_startup(behaviour):
    server = create_server(Recorder(startup=behaviour), host="127.0.0.1", port=0, lifespan="on")
    with pytest.raises(LifespanError, match="lifespan is 'on'") as info:
        server.run()
    server.close()
    if behaviour == "raise":
        assert "startup exploded" in str(info.value)


@pytest.mark.parametrize("behaviour", ["raise", "return"])
def test_lifespan_auto_carries_on_without_it(start_server, behaviour, caplog):
    app = Recorder(startup=behaviour)
    with caplog.at_level(logging.INFO, logger="waitress_like"):
        running = start_server(app)
        assert request(running.address, GET).body == b"ok"
    assert app.events == ["lifespan.startup", "request state={}"]
    assert "does not support lifespan" in caplog.text


def test_lifespan_off_never_sends_it(start_server):
    app = Recorder()
    running = start_server(app, lifespan="off")
    request(running.address, GET)
    running.close()
    assert app.events == ["request state={}"]


def test_serve_raises_the_lifespan_error():
    with pytest.raises(LifespanError, match="the database is not there"):
        serve(failing_lifespan_app, host="127.0.0.1", port=0, _quiet=True)


def test_command_line_reports_a_failed_startup_in_one_line():
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "waitress_like",
            "--listen=127.0.0.1:0",
            "tests.asgi.helpers:failing_lifespan_app",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, completed.stderr
    assert "the database is not there" in errors[0]


def test_lifespan_task_crashing_while_serving_is_logged(start_server, caplog):
    crashed = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            crashed.set()
            raise RuntimeError("the lifespan task died")
        await send_text(send, "still serving")

    with caplog.at_level(logging.ERROR, logger="waitress_like"):
        running = start_server(app)
        assert request(running.address, GET).body == b"still serving"
        assert crashed.is_set()
        running.close()
    assert "the lifespan task died" in caplog.text
