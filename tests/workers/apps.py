"""Applications served by the worker-process tests (imported as ``tests.workers.apps:NAME``).

``app`` answers with the serving process's pid, so a test can tell which worker answered:

* ``/slow?SECONDS`` sleeps first (in a worker thread: the loop thread goes on beating);
* ``/hang`` holds the GIL for good (a regular expression that backtracks forever), which
  stops the loop thread too, as a stuck C extension would;
* ``/boom`` raises ``RuntimeError("boom in PID")``: the server logs its traceback.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Callable, Iterable

_BACKTRACKING = re.compile(r"(a+)+$")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/slow":
        logging.getLogger("waitress_like").info("slow request in %d", os.getpid())
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    elif path == "/hang":
        _BACKTRACKING.match("a" * 64 + "b")  # never returns, never releases the GIL
    elif path == "/multiprocess":
        body = str(environ["wsgi.multiprocess"]).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    elif path == "/boom":
        raise RuntimeError(f"boom in {os.getpid()}")
    body = f"{os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """An ASGI app whose lifespan startup logs the pid it runs in."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                logging.getLogger("waitress_like").warning("lifespan startup in %d", os.getpid())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = f"{os.getpid()}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def log_goodbye(server: Any, worker: Any) -> None:
    """A ``worker_exit`` hook: logs a line as the worker process ends."""
    worker.log.warning("goodbye from %d", worker.pid)
