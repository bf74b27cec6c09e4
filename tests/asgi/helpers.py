"""Small tools shared by the ASGI tests: hand-written apps' plumbing and loop inspection."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Awaitable, Callable

from waitress_like.asgi import ASGIAdapter

WAIT_SECONDS = 10.0

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def adapter_of(running_server: Any) -> ASGIAdapter:
    """The ASGIAdapter a server built for an ASGI application."""
    adapter = running_server.server.application
    assert isinstance(adapter, ASGIAdapter)
    return adapter


def other_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task]:
    """Tasks still pending on ``loop``, except the one asking."""

    async def ask() -> list[asyncio.Task]:
        return [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]

    return asyncio.run_coroutine_threadsafe(ask(), loop).result(WAIT_SECONDS)


def run_on(loop: asyncio.AbstractEventLoop, callback: Callable[[], Any]) -> None:
    """Run ``callback`` on ``loop`` and wait until it has run (so has every step queued
    before it)."""
    done = threading.Event()

    def call() -> None:
        try:
            callback()
        finally:
            done.set()

    loop.call_soon_threadsafe(call)
    assert done.wait(WAIT_SECONDS)


async def reject_lifespan(scope: dict, receive: Receive, send: Send) -> bool:
    """For apps that do not do lifespan: True if ``scope`` was the lifespan one."""
    if scope["type"] == "lifespan":
        raise ValueError("this application does not support lifespan")
    return False


async def send_text(send: Send, text: str, status: int = 200, headers: list | None = None) -> None:
    body = text.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> tuple[bytes, list[tuple[int, bool]]]:
    """The whole request body and the (size, more_body) of each message it came in."""
    parts = []
    messages = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        parts.append(message["body"])
        messages.append((len(message["body"]), message["more_body"]))
        if not message["more_body"]:
            return b"".join(parts), messages


def jsonable_scope(scope: dict) -> dict:
    """The scope as JSON can carry it: bytes as latin-1 text, tuples as lists."""

    def convert(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.decode("latin-1")
        if isinstance(value, (list, tuple)):
            return [convert(item) for item in value]
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        return value

    return convert(scope)


async def echo_scope_app(scope: dict, receive: Receive, send: Send) -> None:
    """Answers with its scope as JSON (lifespan: fills the state with a marker)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["marker"] = "from-startup"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps(jsonable_scope(scope)).encode("utf-8")
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


async def failing_lifespan_app(scope: dict, receive: Receive, send: Send) -> None:
    """Reports lifespan.startup.failed; used by the command-line test."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the database is not there"})
        return
    await send_text(send, "never served")
