"""ASGIAdapter: an ASGI application as a WSGI callable, on one background event loop.

Thread contract: :meth:`ASGIAdapter.__call__` is the WSGI callable, called on any number
of worker threads at once; the iterator it returns is used by that worker only.
:meth:`ASGIAdapter.startup` and :meth:`ASGIAdapter.shutdown` may be called from any
thread but the bridge loop's; they are serialised with each other and with the lazy
start a first request makes.
"""

from __future__ import annotations

import logging
import os
import threading
from http import HTTPStatus
from typing import Any, Callable, Iterable, Iterator, Optional

from ..protocol.response import HOP_BY_HOP_HEADERS
from .bridge import BridgeLoop
from .cycle import BODY, ENDED, ASGIApp, BodyReader, RequestCycle
from .lifespan import Lifespan, LifespanError
from .scope import build_http_scope

__all__ = ["ASGIAdapter", "DEFAULT_SHUTDOWN_TIMEOUT_SECONDS"]

log = logging.getLogger("waitress_like")

#: How long :meth:`ASGIAdapter.shutdown` waits, by default, for work still running on the
#: bridge (background tasks), and then again for the lifespan shutdown.
DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 10.0

CLIENT_DISCONNECTED_KEY = "waitress_like.client_disconnected"

_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class ASGIAdapter:
    """Serve the ASGI 3 application ``app`` as a WSGI application.

    Each request runs as a task on one event loop that the adapter runs on a background
    thread (started lazily; started anew in a forked child). The worker thread that calls
    the adapter streams the request body to the task and the task's response back to the
    WSGI server, with back-pressure both ways.

    ``lifespan`` is ``"auto"``, ``"on"`` or ``"off"`` (see :mod:`.lifespan`). Under
    waitress_like's own server the server calls :meth:`startup` before serving and
    :meth:`shutdown` after its workers stop. Under another WSGI server, lifespan startup
    happens on the first request unless you call :meth:`startup` yourself, and you should
    call :meth:`shutdown` when the server stops (for example with :mod:`atexit`).

    ``interface="asgi2"`` takes an ASGI 2 application (``app(scope)`` returns an object
    whose ``__call__(receive, send)`` is a coroutine) instead.
    """

    def __init__(self, app: Any, *, lifespan: str = "auto", interface: str = "asgi3") -> None:
        if not callable(app):
            raise TypeError(f"an ASGI application must be callable, got {app!r}")
        if interface == "asgi2":
            app = _asgi2_as_asgi3(app)
        elif interface != "asgi3":
            raise ValueError(f"interface must be 'asgi3' or 'asgi2', got {interface!r}")
        self.app: ASGIApp = app
        self._lifespan = Lifespan(app, lifespan)
        self._bridge = BridgeLoop()
        self._lock = threading.Lock()
        self._ready_pid = 0  # the pid the loop and lifespan were started in; 0: not started
        self._failure: Optional[LifespanError] = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def loop(self) -> Any:
        """The bridge's asyncio event loop, or None while it is not running."""
        return self._bridge.loop if self._bridge.running else None

    @property
    def bridge(self) -> BridgeLoop:
        """The bridge loop the application runs on; the server runs its WebSocket
        sessions there too (see :mod:`.websocket`)."""
        return self._bridge

    @property
    def state(self) -> dict[str, Any]:
        """The lifespan state: what the application stored in ``scope["state"]`` at
        startup. Each request scope gets a shallow copy."""
        return self._lifespan.state

    def startup(self) -> None:
        """Start the bridge loop and run lifespan startup, if not done yet in this process.

        Raises :class:`~waitress_like.asgi.LifespanError` when startup fails; the adapter
        then stays stopped, and so answers every request with that error, until
        :meth:`shutdown`.
        """
        if self._ready_pid == os.getpid():
            return
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        pid = os.getpid()
        if self._ready_pid == pid:
            return
        if self._failure is not None and self._ready_pid == -pid:
            raise self._failure
        self._bridge.start()
        try:
            self._lifespan.startup(self._bridge)
        except LifespanError as error:
            self._failure = error
            self._ready_pid = -pid  # failed in this process
            self._bridge.stop()
            raise
        except BaseException:
            self._bridge.stop()
            raise
        self._failure = None
        self._ready_pid = pid

    def shutdown(self, timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT_SECONDS) -> None:
        """Finish: wait up to ``timeout_seconds`` for tasks still running (work an app
        left running after its response, such as background tasks), then run lifespan
        shutdown (again bounded by ``timeout_seconds``), then cancel what is left and stop
        the loop thread. Safe to call more than once, and before any startup.

        A later request (or :meth:`startup`) starts everything again.
        """
        with self._lock:
            self._failure = None
            started_here = self._ready_pid == os.getpid()
            self._ready_pid = 0
            if not started_here:
                self._bridge.stop()  # a no-op unless it runs in this process
                return
            try:
                still_running = self._bridge.wait_for_tasks(timeout_seconds)
                if still_running:
                    log.warning(
                        "%d ASGI task(s) still running %gs after the server stopped; cancelling them",
                        still_running,
                        timeout_seconds,
                    )
                self._lifespan.shutdown(self._bridge, timeout_seconds)
            finally:
                self._bridge.stop()

    # -- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._ready_pid != os.getpid():
            self.startup()
        cycle = RequestCycle(
            self._bridge,
            self.app,
            build_http_scope(environ, self._lifespan.state),
            BodyReader(environ),
            environ.get(CLIENT_DISCONNECTED_KEY),
        )
        cycle.start()
        try:
            kind, start, body, more = cycle.take()
            if kind == ENDED:
                # Nothing has gone out yet (the head travels with the first body chunk),
                # so the server can still answer 500.
                raise _app_failure(body, more, "sending a response")
            status, headers = start
            start_response(_status_line(status), _wsgi_headers(headers))
            if not more:
                cycle.finished()
                return [body] if body else []
            cycle.chunk_taken()
            return _ResponseBody(cycle, body)
        except BaseException:
            cycle.abandon()
            raise


class _ResponseBody:
    """The WSGI iterable of a streamed response; used by the worker thread only.

    ``close()`` before the final chunk (the server stopped iterating: the client went
    away, or sending failed) abandons the request, which cancels the application's task.
    """

    __slots__ = ("_cycle", "_first", "_finished")

    def __init__(self, cycle: RequestCycle, first: bytes) -> None:
        self._cycle = cycle
        self._first: Optional[bytes] = first
        self._finished = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._finished:
            raise StopIteration
        kind, _, body, more = self._cycle.take()
        if kind == BODY:
            if more:
                self._cycle.chunk_taken()
                return body
            self._finished = True
            self._cycle.finished()
            if body:
                return body
            raise StopIteration
        self._finished = True
        self._cycle.finished()
        # Part of the response is out: raising makes the server cut the connection.
        raise _app_failure(body, more, "finishing its response")

    def close(self) -> None:
        if not self._finished:
            self._finished = True
            self._cycle.abandon()


def _status_line(status: int) -> str:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"{status} "


def _wsgi_headers(headers: Iterable[Any]) -> list[tuple[str, str]]:
    """ASGI byte-string header pairs as PEP 3333 wants them (latin-1 ``str``).

    Hop-by-hop fields (``Connection``, ``Transfer-Encoding``...) are the server's to set:
    they are dropped, as an ASGI server would ignore them, instead of failing the request.
    """
    result: list[tuple[str, str]] = []
    for name, value in headers:
        name_text = name.decode("latin-1") if isinstance(name, (bytes, bytearray)) else str(name)
        if name_text.lower() in HOP_BY_HOP_HEADERS:
            log.debug("dropped hop-by-hop response header %r from an ASGI application", name_text)
            continue
        value_text = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
        result.append((name_text, value_text))
    return result


def _app_failure(error: Optional[BaseException], cancelled: bool, doing: str) -> Exception:
    """The exception a worker raises for an application that ended before ``doing``."""
    if isinstance(error, Exception):
        return error
    if error is not None:  # KeyboardInterrupt, SystemExit...: must not kill the worker
        failure = RuntimeError(f"the ASGI application raised {type(error).__name__} before {doing}")
        failure.__cause__ = error
        return failure
    if cancelled:
        return RuntimeError(f"the ASGI application was cancelled before {doing}")
    return RuntimeError(f"the ASGI application returned without {doing}")


def _asgi2_as_asgi3(app: Callable[[dict[str, Any]], Any]) -> ASGIApp:
    """ASGI 2 (``app(scope)`` then ``await instance(receive, send)``) as ASGI 3."""

    async def asgi3(scope: dict[str, Any], receive: Any, send: Any) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3
