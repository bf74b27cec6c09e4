"""Hand-written ASGI WebSocket applications for the tests, and what they saw.

:func:`make_app` returns an application and a :class:`Probe`; the application answers
by path (see the routes in :func:`make_app`) and records, on the probe, the scope and
what ``receive`` gave it at the end (the ``websocket.disconnect`` message), then sets
``probe.ended`` so a test can wait for it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.asgi.helpers import Receive, Send


class Probe:
    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.disconnects: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self.ended = threading.Event()
        self.connected = threading.Event()
        self.http_scopes: list[dict[str, Any]] = []


def make_app(probe: Probe):
    async def app(scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = "startup" if message["type"] == "lifespan.startup" else "shutdown"
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] == "http":
            probe.http_scopes.append(scope)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"plain HTTP"})
            return
        probe.scopes.append(scope)
        try:
            await ROUTES[scope["path"][len(scope["root_path"]) :]](scope, receive, send, probe)
        except BaseException as error:
            probe.errors.append(error)
            raise
        finally:
            probe.ended.set()

    return app


async def echo(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    probe.connected.set()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            probe.disconnects.append(message)
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def show_scope(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    subprotocol = "chat" if "chat" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-accepted", b"yes")]})
    shown = {key: value for key, value in scope.items() if key not in ("headers", "raw_path", "query_string")}
    shown["headers"] = [[name.decode(), value.decode()] for name, value in scope["headers"]]
    shown["query_string"] = scope["query_string"].decode()
    await send({"type": "websocket.send", "text": json.dumps(shown)})
    probe.disconnects.append(await receive())


async def reject(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    await send({"type": "websocket.close"})
    probe.disconnects.append(await receive())


async def deny(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    headers = [(b"content-type", b"text/plain"), (b"x-why", b"teapot")]
    await send({"type": "websocket.http.response.start", "status": 418, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"tea"})


async def close_with_reason(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 4001, "reason": "go away"})
    probe.disconnects.append(await receive())
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except OSError as error:  # the spec's 2.4 behaviour: send() on a closed connection
        probe.errors.append(error)


async def fail_before_accept(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    raise ValueError("broken before accept")


async def fail_after_accept(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    raise ValueError("broken after accept")


async def return_after_accept(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    await send({"type": "websocket.accept"})


async def wait_for_disconnect(scope: dict, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    probe.connected.set()
    probe.disconnects.append(await receive())


ROUTES = {
    "/echo": echo,
    "/scope": show_scope,
    "/reject": reject,
    "/deny": deny,
    "/close": close_with_reason,
    "/fail-before": fail_before_accept,
    "/fail-after": fail_after_accept,
    "/return": return_after_accept,
    "/wait": wait_for_disconnect,
}
