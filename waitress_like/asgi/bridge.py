"""The bridge loop: one asyncio event loop on its own daemon thread.

Every request of an adapter runs on it as one task (see :mod:`.cycle`), so the
application's coroutines, connection pools and locks all live on a single loop, as they
would under an ASGI server. The loop starts lazily and anew in a forked child.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
import threading
from collections import deque
from typing import Any, Callable, Coroutine, Deque, Optional

__all__ = ["BridgeLoop", "Waiters"]

log = logging.getLogger("waitress_like")

# After the loop is told to stop, how long cancelled tasks get to finish.
_CANCEL_GRACE_SECONDS = 5.0
_EAGER_TASKS = sys.version_info >= (3, 12)


class BridgeLoop:
    """An asyncio event loop running forever on its own daemon thread.

    Thread contract: :meth:`start`, :meth:`call_soon`, :meth:`run` and :meth:`stop` may
    be called from any thread except the loop's own; :meth:`create_task` and
    :attr:`tasks` belong to the loop thread. :meth:`start` and :meth:`stop` must not run
    concurrently (the adapter serialises them).
    """

    def __init__(self, name: str = "waitress_like-asgi") -> None:
        self.name = name
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._thread: Optional[threading.Thread] = None
        self._pid = 0
        # call_soon batching: one wake-up of the loop per batch of calls, not one each.
        self._calls: Deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._calls_lock = threading.Lock()
        self._drain_pending = False

    @property
    def running(self) -> bool:
        """True while the loop thread runs in this process (False in a forked child)."""
        return self.loop is not None and self._pid == os.getpid()

    def start(self) -> None:
        """Start the loop thread (again, after :meth:`stop` or in a forked child)."""
        if self.running:
            return
        # After a fork the parent's loop and thread are not ours: forget them, never close
        # them (their descriptors are copies; the parent still uses the originals).
        loop = asyncio.new_event_loop()
        self.loop = loop
        self.tasks = set()
        self._calls = deque()
        self._calls_lock = threading.Lock()
        self._drain_pending = False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._main, args=(loop,), name=self.name, daemon=True)
        self._thread.start()

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Any thread: run ``callback(*args)`` on the loop, in call order.

        Calls made while a batch is already due ride along with it, so a busy bridge pays
        one wake-up (a write to asyncio's self-pipe) per batch rather than per call.
        Raises :class:`RuntimeError` when the loop is not running (any more).
        """
        loop = self.loop
        if loop is None:
            raise RuntimeError("the ASGI bridge loop is not running")
        self._calls.append((callback, args))
        with self._calls_lock:
            if self._drain_pending:
                return
            self._drain_pending = True
        loop.call_soon_threadsafe(self._drain_calls)

    def _drain_calls(self) -> None:
        with self._calls_lock:
            self._drain_pending = False
        calls = self._calls
        for _ in range(len(calls)):
            callback, args = calls.popleft()
            try:
                callback(*args)
            except Exception:  # pragma: no cover - a bug; keep serving the others
                log.exception("unexpected error in bridge callback %r", callback)

    def create_task(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Loop thread: run ``coroutine`` as a task that :meth:`wait_for_tasks` waits for.

        The coroutine must call :meth:`task_done` when it ends (cheaper than a done
        callback, which costs the loop one more turn per task). Where asyncio can
        (Python 3.12+), the task starts at once: a request answered without waiting for
        anything completes within this call.
        """
        assert self.loop is not None
        if _EAGER_TASKS:
            task = asyncio.Task(coroutine, loop=self.loop, eager_start=True)  # type: ignore[call-arg, unused-ignore]
        else:
            task = self.loop.create_task(coroutine)
        if not task.done():
            self.tasks.add(task)
        return task

    def task_done(self, task: Optional[asyncio.Task[Any]]) -> None:
        """Loop thread: ``task`` (from :meth:`create_task`) is ending; forget it."""
        self.tasks.discard(task)

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout_seconds: Optional[float] = None) -> Any:
        """Any other thread: run ``coroutine`` on the loop and return its result.

        Raises what the coroutine raises, or :class:`concurrent.futures.TimeoutError`
        after ``timeout_seconds`` (the coroutine is then cancelled).
        """
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout_seconds)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def wait_for_tasks(self, timeout_seconds: float) -> int:
        """Any other thread: wait up to ``timeout_seconds`` for the tasks made by
        :meth:`create_task` to finish; return how many are still running."""
        if not self.running:
            return 0

        async def wait() -> int:
            pending = set(self.tasks)
            if pending:
                _, pending = await asyncio.wait(pending, timeout=timeout_seconds)
            return len(pending)

        count: int = self.run(wait())
        return count

    def stop(self) -> None:
        """Any other thread: cancel what still runs, close the loop and join its thread."""
        loop, thread = self.loop, self._thread
        self.loop = None
        self._thread = None
        if loop is None or thread is None or self._pid != os.getpid():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop thread: run until :meth:`stop`, then tidy up and close the loop."""
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                _cancel_everything(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                # Executor threads (run_in_executor, sync_to_async): bounded, so a stuck
                # thread cannot hang the server's exit; loop.close() below abandons it.
                loop.run_until_complete(
                    asyncio.wait(
                        [loop.create_task(loop.shutdown_default_executor())], timeout=_CANCEL_GRACE_SECONDS
                    )
                )
            finally:
                asyncio.set_event_loop(None)
                loop.close()


class Waiters:
    """Coroutines on the bridge loop waiting for a change (more to receive, say).

    Bridge-loop thread only: :meth:`wait` returns after the next :meth:`wake_all` (or
    raises if the waiting task is cancelled); the caller then looks again at what it
    waits for.
    """

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    async def wait(self, loop: asyncio.AbstractEventLoop) -> None:
        future: asyncio.Future[None] = loop.create_future()
        self._futures.append(future)
        try:
            await future
        finally:
            if future in self._futures:
                self._futures.remove(future)

    def wake_all(self) -> None:
        futures = self._futures
        if futures:
            self._futures = []
            for future in futures:
                if not future.done():
                    future.set_result(None)


def _cancel_everything(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    _, pending = loop.run_until_complete(asyncio.wait(tasks, timeout=_CANCEL_GRACE_SECONDS))
    for task in pending:
        log.warning("ASGI task %r ignored its cancellation; abandoned at shutdown", task)
    for task in tasks - pending:
        if not task.cancelled() and task.exception() is not None:
            log.error("ASGI task %r failed at shutdown", task, exc_info=task.exception())
