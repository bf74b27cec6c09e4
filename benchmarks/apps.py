"""The applications every server runs in the benchmark, as plain WSGI/ASGI callables.

Each scenario names one entry of ``WSGI_APPS`` or ``ASGI_APPS``; the server process is
started with that single app, so no routing cost is measured. Nothing here imports a
server, so this module loads in any interpreter.

The file scenario reads the path of its file from the environment variable named by
``FILE_PATH_VARIABLE``, which the harness sets for the server process.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, Iterable

FILE_PATH_VARIABLE = "WAITRESS_LIKE_BENCH_FILE"
READ_SIZE_BYTES = 64 * 1024
LARGE_BODY_BYTES = 1024 * 1024

HELLO_BODY = b"Hello, World!"
_LARGE_BODY = b"x" * LARGE_BODY_BYTES
# The same 1 MiB as 16 separate 64 KiB objects, the shape frameworks produce (a list of
# rendered pieces, or what an iterator yields).
PIECE_BYTES = 64 * 1024
_LARGE_BODY_PIECES = [bytes([65 + index]) * PIECE_BYTES for index in range(LARGE_BODY_BYTES // PIECE_BYTES)]

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


def _headers(content_length: int, content_type: str) -> list[tuple[str, str]]:
    return [("Content-Type", content_type), ("Content-Length", str(content_length))]


def hello_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answer a short plain-text body: the per-request overhead of the server."""
    start_response("200 OK", _headers(len(HELLO_BODY), "text/plain"))
    return [HELLO_BODY]


def large_body_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answer a 1 MiB body held in memory, as a single chunk."""
    start_response("200 OK", _headers(len(_LARGE_BODY), "application/octet-stream"))
    return [_LARGE_BODY]


def large_body_pieces_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answer the same 1 MiB as a list of 16 pieces of 64 KiB each."""
    start_response("200 OK", _headers(LARGE_BODY_BYTES, "application/octet-stream"))
    return list(_LARGE_BODY_PIECES)


def _read_blocks(file: Any) -> Iterable[bytes]:
    """Fallback for servers without ``wsgi.file_wrapper`` (PEP 3333 makes it optional)."""
    try:
        while True:
            block = file.read(READ_SIZE_BYTES)
            if not block:
                return
            yield block
    finally:
        file.close()


def file_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answer the benchmark file through ``wsgi.file_wrapper`` when the server offers one."""
    path = os.environ[FILE_PATH_VARIABLE]
    size_bytes = os.path.getsize(path)
    # Not a with-block: the server closes it through the wrapper's close() or _read_blocks.
    file = open(path, "rb")  # noqa: SIM115
    start_response("200 OK", _headers(size_bytes, "application/octet-stream"))
    file_wrapper = environ.get("wsgi.file_wrapper")
    if file_wrapper is None:
        return _read_blocks(file)
    return file_wrapper(file, READ_SIZE_BYTES)


def upload_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Read ``wsgi.input`` to its end in 64 KiB reads and answer how many bytes came.

    With a Content-Length the reads stop at that length (PEP 3333 forbids reading past
    it); without one (a chunked body on servers that do not buffer it) they stop at the
    first empty read.
    """
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH")
    remaining_bytes = int(declared) if declared else None
    received_bytes = 0
    while remaining_bytes is None or remaining_bytes > 0:
        size = READ_SIZE_BYTES if remaining_bytes is None else min(READ_SIZE_BYTES, remaining_bytes)
        block = stream.read(size)
        if not block:
            break
        received_bytes += len(block)
        if remaining_bytes is not None:
            remaining_bytes -= len(block)
    body = str(received_bytes).encode("ascii")
    start_response("200 OK", _headers(len(body), "text/plain"))
    return [body]


async def asgi_hello_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """ASGI twin of ``hello_app``; also completes the lifespan protocol when a server runs it."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(HELLO_BODY)).encode("ascii")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": HELLO_BODY})


WSGI_APPS: dict[str, Callable[..., Any]] = {
    "hello": hello_app,
    "large_body": large_body_app,
    "large_body_pieces": large_body_pieces_app,
    "file": file_app,
    "upload": upload_app,
}


async def ws_echo_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """WebSocket echo: every message goes back as it came; HTTP gets hello (the readiness
    check)."""
    if scope["type"] != "websocket":
        await asgi_hello_app(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


ASGI_APPS: dict[str, Callable[..., Any]] = {
    "asgi_hello": asgi_hello_app,
    "ws_echo": ws_echo_app,
}


def attribute_name(app_name: str) -> str:
    """The module attribute holding ``app_name``, for servers started as ``apps:ATTRIBUTE``."""
    app = WSGI_APPS.get(app_name) or ASGI_APPS[app_name]
    return app.__name__
