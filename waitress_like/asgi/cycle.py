"""The per-request protocol between a WSGI worker thread and an ASGI task.

:class:`RequestCycle` is one request: the worker thread that serves it (through the WSGI
iterator in :mod:`.adapter`) on one side, the application's task on the bridge loop on
the other. They meet in two places only:

* loop -> worker: a :class:`queue.SimpleQueue` of small tuples (body chunks, the first
  one carrying the response start; "the app ended"; "read me the next body block").
  ``SimpleQueue.put`` never blocks, so the loop never waits for a worker, and a simple
  response is one item: one wake-up of the worker.
* worker -> loop: :meth:`~.bridge.BridgeLoop.call_soon`, for the few things the loop
  must hear (a body block it asked for, "I took your chunk" while the app waits in
  ``send``, and "the client is gone").

Back-pressure: ``await send()`` of a body chunk with ``more_body`` returns only once the
worker has taken that chunk, and the worker takes the next one only after the server has
accepted the previous one (our server's output pipe blocks a worker while a slow client
lets output pile up). The final chunk is not waited for: nothing follows it, and the
application may go on with background work at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import queue
from typing import IO, Any, Awaitable, Callable, Mapping, Optional

from ..buffers import ClientDisconnected
from .bridge import BridgeLoop, Waiters

__all__ = ["ASGIApp", "BODY", "BODY_BLOCK_BYTES", "BodyReader", "ENDED", "RequestCycle"]

log = logging.getLogger("waitress_like")

#: Request bodies go to the application in blocks of at most this many bytes.
BODY_BLOCK_BYTES = 64 * 1024
# How often a worker waiting for the application checks whether the client has gone
# (our server's ``waitress_like.client_disconnected``); only a waiting worker polls.
_DISCONNECT_POLL_SECONDS = 0.5

# What the loop puts in a cycle's queue for its worker; each item is a 4-tuple.
BODY = 2  # (BODY, (status, headers) with the first chunk else None, body bytes, more_body)
ENDED = 3  # (ENDED, None, exception or None, cancelled): the app ended before finishing
_WANT_BODY = (0, None, None, None)  # the app wants the next request body block


class BodyReader:
    """Reads ``wsgi.input`` in blocks on the worker thread, never all at once.

    Reads at most ``CONTENT_LENGTH`` bytes when it is given; without it, reads to the end
    only when the server sets ``wsgi.input_terminated`` (ours does, so chunked uploads
    without Content-Length stream too), else assumes there is no body (PEP 3333).
    Without a length it reads one block ahead, to know which block is the last.
    """

    __slots__ = ("_stream", "_remaining", "_lookahead")

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._stream: Optional[IO[bytes]] = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH")
        self._remaining: Optional[int]
        if length:
            try:
                self._remaining = max(0, int(length))
            except ValueError:
                self._remaining = 0
        elif environ.get("wsgi.input_terminated"):
            self._remaining = None  # read until b""
        else:
            self._remaining = 0
        self._lookahead: Optional[bytes] = None

    def read_block(self) -> tuple[bytes, bool]:
        """The next block and whether more follow. Raises what ``wsgi.input`` raises."""
        stream = self._stream
        remaining = self._remaining
        if stream is None or remaining == 0:
            return b"", False
        if remaining is not None:
            block = stream.read(min(BODY_BLOCK_BYTES, remaining))
            if not block:  # shorter than announced: nothing more will come
                self._remaining = 0
                return b"", False
            remaining -= len(block)
            self._remaining = remaining
            return block, remaining > 0
        lookahead = self._lookahead
        block = stream.read(BODY_BLOCK_BYTES) if lookahead is None else lookahead
        if not block:
            self._remaining = 0
            return b"", False
        following = stream.read(BODY_BLOCK_BYTES)
        self._lookahead = following
        return block, bool(following)


class _Stage(enum.Enum):
    """Where the application is in its response (loop side)."""

    START = "waiting for http.response.start"
    BODY = "sending the body"
    DONE = "response complete (or the application ended)"


ASGIApp = Callable[[dict, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class RequestCycle:
    """One request, between the worker thread serving it and the task running the app.

    Worker side (the worker thread, in this order): :meth:`start`, then :meth:`take`
    until the response ends, with :meth:`chunk_taken` after each non-final body chunk,
    and finally :meth:`finished` or :meth:`abandon`. Loop side: :meth:`receive` and
    :meth:`send` (the application's callables) and the task itself.

    Attributes are each written by one side only: ``_taken`` and ``_worker_done`` by the
    worker, everything else (after :meth:`start`) by the loop.
    """

    __slots__ = (
        "scope",
        "_bridge",
        "_app",
        "_outbox",
        "_body",
        "_client_gone",
        "_worker_done",
        "_taken",
        "_block",
        "_more_body",
        "_stage",
        "_pending_start",
        "_sent",
        "_send_waiter",
        "_receive_waiters",
        "_abandoned",
        "_task",
    )

    def __init__(
        self,
        bridge: BridgeLoop,
        app: ASGIApp,
        scope: dict[str, Any],
        body: BodyReader,
        client_gone: Optional[Callable[[], bool]],
    ) -> None:
        self.scope = scope
        self._bridge = bridge
        self._app = app
        self._outbox: queue.SimpleQueue[tuple[Any, Any, Any, Any]] = queue.SimpleQueue()
        self._body = body
        self._client_gone = client_gone
        self._worker_done = False
        self._taken = 0
        self._block: Optional[bytes] = None
        self._more_body = False
        self._stage = _Stage.START
        self._pending_start: Optional[tuple[int, Any]] = None
        self._sent = 0
        self._send_waiter: Optional[asyncio.Future[None]] = None
        self._receive_waiters = Waiters()
        self._abandoned = False
        self._task: Optional[asyncio.Task[None]] = None

    # -- worker side -----------------------------------------------------------------------

    def start(self) -> None:
        """Worker: read the first body block, then start the application's task.

        The first block travels with the task, so a request with a small body costs the
        loop no extra round trip.
        """
        self._block, self._more_body = self._body.read_block()
        self._bridge.call_soon(self._begin)

    def take(self) -> tuple[Any, Any, Any, Any]:
        """Worker: the next response item, feeding body blocks the app asks for meanwhile.

        Returns ``(BODY, start, bytes, more_body)``, where ``start`` is ``(status,
        headers)`` for the first chunk and None after it, or ``(ENDED, None, exception,
        cancelled)``. Raises :class:`ClientDisconnected` when the server says the
        client has gone while the app has nothing to send.
        """
        get = self._outbox.get
        client_gone = self._client_gone
        while True:
            if client_gone is None:
                item = get()
            else:
                try:
                    item = get(True, _DISCONNECT_POLL_SECONDS)
                except queue.Empty:
                    if client_gone():
                        raise ClientDisconnected("the client has gone away") from None
                    continue
            if item is _WANT_BODY:
                block, more = self._body.read_block()
                self._bridge.call_soon(self._block_arrived, block, more)
                continue
            return item

    def chunk_taken(self) -> None:
        """Worker: a non-final body chunk was taken; the app's ``send`` may return."""
        self._taken += 1
        if self._send_waiter is not None:
            self._bridge.call_soon(self._wake_sender)

    def finished(self) -> None:
        """Worker: the response is complete on the worker's side; nothing to tell."""
        self._worker_done = True

    def abandon(self) -> None:
        """Worker: the response will not be delivered (client gone, or the server failed
        to send it). The app's ``receive`` returns ``http.disconnect`` and, unless the app
        had already finished its response, the task is cancelled."""
        if self._worker_done:
            return
        self._worker_done = True
        try:
            self._bridge.call_soon(self._on_abandoned)
        except RuntimeError:
            pass  # the bridge has stopped: its tasks are gone already

    # -- loop side: the task ---------------------------------------------------------------

    def _begin(self) -> None:
        self._task = self._bridge.create_task(self._run())

    async def _run(self) -> None:
        error: Optional[BaseException] = None
        cancelled = False
        try:
            await self._app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            cancelled = True
        except BaseException as exc:  # the worker re-raises it; nothing may escape a task
            error = exc
        finally:
            self._bridge.task_done(self._task)  # None if it ended while starting eagerly
        self._ended(error, cancelled)

    def _ended(self, error: Optional[BaseException], cancelled: bool) -> None:
        stage = self._stage
        self._stage = _Stage.DONE
        if stage is not _Stage.DONE and not self._abandoned:
            # The worker still waits for this response: let it answer 500 or cut it.
            self._outbox.put((ENDED, None, error, cancelled))
        elif error is not None:
            if self._abandoned:
                log.debug("ASGI application failed after its client left", exc_info=error)
            else:
                log.error(
                    "exception in ASGI application after its response was sent (%s)",
                    self.scope.get("path"),
                    exc_info=error,
                )
        self._receive_waiters.wake_all()

    def _on_abandoned(self) -> None:
        self._abandoned = True
        self._receive_waiters.wake_all()
        self._wake_sender()
        if self._stage is not _Stage.DONE:
            # Let receive()/send() waiters see the disconnect first, then cancel: nobody
            # will ever read what the app still wants to send.
            assert self._bridge.loop is not None
            self._bridge.loop.call_soon(self._cancel)

    def _cancel(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()

    # -- loop side: receive ----------------------------------------------------------------

    async def receive(self) -> Mapping[str, Any]:
        """The app's ``receive``: request body blocks, then ``http.disconnect`` once the
        response is complete or the client has gone."""
        while True:
            block = self._block
            if block is not None:
                self._block = None
                more = self._more_body
                if more and self._stage is not _Stage.DONE and not self._abandoned:
                    self._outbox.put(_WANT_BODY)  # read ahead while the app works on this one
                return {"type": "http.request", "body": block, "more_body": more}
            if self._abandoned or self._stage is _Stage.DONE:
                return {"type": "http.disconnect"}
            # A block is on its way, or the body is complete: wait for a change.
            assert self._bridge.loop is not None
            await self._receive_waiters.wait(self._bridge.loop)

    def _block_arrived(self, block: bytes, more: bool) -> None:
        self._block = block
        self._more_body = more
        self._receive_waiters.wake_all()

    # -- loop side: send -------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any]) -> None:
        """The app's ``send``. Raises :class:`RuntimeError` for a message out of order
        and :class:`TypeError` for a malformed one; a no-op once the client has gone."""
        kind = message["type"]
        if kind == "http.response.body":
            if self._stage is not _Stage.BODY:
                if self._abandoned:
                    return
                raise RuntimeError(f"ASGI 'http.response.body' sent {self._stage.value}")
            body = message.get("body", b"")
            if type(body) is not bytes:
                if not isinstance(body, (bytearray, memoryview)):
                    raise TypeError(f"ASGI response body must be bytes, got {type(body).__name__}")
                body = bytes(body)
            if self._abandoned:
                return
            outbox = self._outbox
            start = self._pending_start
            if not message.get("more_body", False):
                self._stage = _Stage.DONE
                self._pending_start = None
                outbox.put((BODY, start, body, False))
                self._receive_waiters.wake_all()
                return
            if not body:
                return  # nothing to hand over; the head goes out with the first byte
            self._pending_start = None
            self._sent += 1
            outbox.put((BODY, start, body, True))
            await self._wait_until_taken()
        elif kind == "http.response.start":
            if self._stage is not _Stage.START:
                if self._abandoned:
                    return
                raise RuntimeError(f"ASGI 'http.response.start' sent {self._stage.value}")
            status = message["status"]
            if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
                raise TypeError(f"ASGI response status must be an int between 100 and 999, got {status!r}")
            # Held back until the first body chunk: the server sends the head with it.
            self._pending_start = (int(status), message.get("headers", ()))
            self._stage = _Stage.BODY
        elif kind == "http.response.trailers":
            return  # the trailers extension is not offered; nothing to do
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r} for an HTTP request")

    async def _wait_until_taken(self) -> None:
        assert self._bridge.loop is not None
        while self._taken < self._sent and not self._abandoned:
            waiter: asyncio.Future[None] = self._bridge.loop.create_future()
            self._send_waiter = waiter
            # Checked again after publishing the waiter: the worker reads _send_waiter
            # after counting, so either it sees the waiter or we see its count.
            if self._taken >= self._sent:
                self._send_waiter = None
                return
            try:
                await waiter
            finally:
                self._send_waiter = None

    def _wake_sender(self) -> None:
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
