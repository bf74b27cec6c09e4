"""The selector loop: one thread that owns every socket.

The loop is ``selectors.DefaultSelector`` used directly (epoll on Linux, kqueue on the BSDs
and macOS, select on Windows), a heap of timers, and a waker so that other threads can hand
it work with :meth:`EventLoop.call_soon_threadsafe`.

Thread contract: everything here is loop-thread only, except
:meth:`EventLoop.call_soon_threadsafe`, :meth:`EventLoop.call_soon_from_signal`,
:meth:`EventLoop.stop`, :meth:`EventLoop.time` and :meth:`EventLoop.in_loop_thread`,
which any thread may call. With ``WAITRESS_LIKE_DEBUG=1`` in the environment, the
loop-only methods check that they run on the loop's thread and raise
:class:`LoopThreadError` otherwise (the test suite runs that way).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Protocol

__all__ = [
    "EventLoop",
    "LoopServices",
    "LoopThreadError",
    "Timer",
    "TimerHandle",
    "Selectable",
    "EVENT_READ",
    "EVENT_WRITE",
]

log = logging.getLogger("waitress_like")

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE


def _debug_enabled() -> bool:
    return os.environ.get("WAITRESS_LIKE_DEBUG", "") not in ("", "0")


class LoopThreadError(RuntimeError):
    """A loop-only method was called from another thread (checked in debug mode)."""


class Selectable(Protocol):
    """What the loop calls when a registered file object is ready."""

    def handle_event(self, mask: int) -> None: ...


class TimerHandle(Protocol):
    """A scheduled callback: when it is due (on the loop's clock), and how to drop it."""

    when: float

    def cancel(self) -> None: ...


class LoopServices(Protocol):
    """What a connection uses of its loop: the clock, timers, the thread-safe call queue
    and readiness registration. :class:`EventLoop` provides it; tests substitute a
    scripted fake (tests/fakeloop.py). Loop thread only, except
    ``call_soon_threadsafe``."""

    def time(self) -> float: ...

    def call_later(self, delay_seconds: float, callback: Callable[[], Any]) -> TimerHandle: ...

    def call_at(self, when: float, callback: Callable[[], Any]) -> TimerHandle: ...

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None: ...

    def register(self, fileobj: Any, events: int, handler: Selectable) -> None: ...

    def modify(self, fileobj: Any, events: int, handler: Selectable) -> None: ...

    def unregister(self, fileobj: Any) -> None: ...


def _cancelled() -> None:
    """What a cancelled timer holds instead of its callback."""


class Timer:
    """A pending :meth:`EventLoop.call_later` callback; ``cancel()`` drops it."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Loop-thread only. Cheap: the timer stays in the heap and is skipped when due."""
        self.cancelled = True
        # Let go of the callback now: a closed connection's deadline would otherwise keep
        # the channel, its buffers and its TLS session alive until the deadline's time
        # (30 s for a head), which at a few thousand handshakes a second is gigabytes.
        self.callback = _cancelled


class _Waker:
    """A socketpair whose read end wakes the selector when another thread writes a byte.

    A socketpair (not a pipe) because select() on Windows only accepts sockets.
    """

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)

    def wake(self) -> None:
        try:
            self.writer.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the buffer is full, so the loop is already due to wake up
        except OSError:
            pass  # closed during shutdown; nobody is left to wake

    def drain(self) -> None:
        # One read, not a loop until EAGAIN: wakes are coalesced (one byte per batch of
        # calls), so a read almost always takes everything, and the failing second
        # recv() cost a system call and an exception per wake. Anything left over keeps
        # the (level-triggered) reader ready, and the next turn reads it.
        try:
            self.reader.recv(4096)
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


class EventLoop:
    """A single-threaded I/O loop with timers and a thread-safe call queue.

    ``selector_factory`` makes the selector (default: ``selectors.DefaultSelector``, looked
    up when the loop is made); ``clock`` is the monotonic clock every deadline is measured
    on (default: ``time.monotonic``). Both are passed in so tests can run the loop on the
    select() selector, as on Windows, and drive deadlines on a fake clock.
    """

    def __init__(
        self,
        selector_factory: Callable[[], selectors.BaseSelector] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._selector = (selector_factory or selectors.DefaultSelector)()
        #: Any thread: the loop's clock, in seconds (monotonic). Channels and the server
        #: measure every deadline with it, never with ``time`` directly.
        self.time = clock
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_sequence = itertools.count()
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._signal_calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._wake_pending = False
        self._wake_lock = threading.Lock()
        self._waker = _Waker()
        self._running = False
        self._stopping = False
        self._thread_id: int | None = None  # the loop's thread, once claimed
        self._end_of_turn: list[Callable[[], Any]] = []
        self._debug = _debug_enabled()
        self._selector.register(self._waker.reader, EVENT_READ, None)

    # -- the thread contract ---------------------------------------------------------------

    def claim_thread(self) -> None:
        """The calling thread is the loop's thread from now on (:meth:`run` claims it too)."""
        self._thread_id = threading.get_ident()

    def in_loop_thread(self) -> bool:
        """Any thread: True if called on the loop's thread."""
        return self._thread_id == threading.get_ident()

    def _check_thread(self) -> None:
        if self._thread_id is not None and self._thread_id != threading.get_ident():
            raise LoopThreadError(
                f"a loop-only method was called from thread {threading.current_thread().name!r}"
            )

    # -- registration (loop thread) -----------------------------------------------------

    def register(self, fileobj: Any, events: int, handler: Selectable) -> None:
        if self._debug:
            self._check_thread()
        self._selector.register(fileobj, events, handler)

    def modify(self, fileobj: Any, events: int, handler: Selectable) -> None:
        if self._debug:
            self._check_thread()
        self._selector.modify(fileobj, events, handler)

    def unregister(self, fileobj: Any) -> None:
        if self._debug:
            self._check_thread()
        try:
            self._selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass  # already gone, or the socket was closed first

    # -- scheduling ----------------------------------------------------------------------

    def call_later(self, delay_seconds: float, callback: Callable[[], Any]) -> Timer:
        """Loop-thread only: run ``callback`` on the loop after ``delay_seconds``."""
        return self.call_at(self.time() + delay_seconds, callback)

    def call_at(self, when: float, callback: Callable[[], Any]) -> Timer:
        """Loop-thread only: run ``callback`` on the loop once :meth:`time` reaches ``when``.

        The timer's ``when`` is exactly ``when``, so a caller can compare a deadline it
        computed with the timer already armed for it.
        """
        if self._debug:
            self._check_thread()
        timer = Timer(when, callback)
        heapq.heappush(self._timers, (when, next(self._timer_sequence), timer))
        return timer

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Any thread: run ``callback(*args)`` on the loop thread soon, in call order."""
        self._calls.append((callback, args))
        # Only the first call after a drain writes to the socketpair: a busy server would
        # otherwise pay one syscall per call.
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self._waker.wake()

    def wakeup_fileno(self) -> int:
        """The descriptor for ``signal.set_wakeup_fd``: a byte written there wakes the loop.

        A process-directed signal may be delivered to any thread. Python runs its handler
        on the main thread only, and only once that thread runs bytecode again; if the
        main thread is this loop, blocked in select(), nothing would wake it until a timer
        fell due. With this descriptor as the wakeup fd, the C-level handler writes a byte
        to the waker whichever thread the signal hit, select() returns, and the Python
        handler runs at once.
        """
        return self._waker.writer.fileno()

    def call_soon_from_signal(self, callback: Callable[..., Any], *args: Any) -> None:
        """For signal handlers: like :meth:`call_soon_threadsafe`, but takes no lock.

        A Python signal handler runs on the main thread between two bytecodes, possibly
        while that thread holds the call-queue lock, so it must not take it.
        """
        self._signal_calls.append((callback, args))
        self._waker.wake()

    def stop(self) -> None:
        """Any thread: make :meth:`run` return after the current iteration."""
        self._stopping = True
        self._waker.wake()

    # -- running -------------------------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop` (which may come before this call: then return at once).

        Must be called from the thread that will own the loop.
        """
        self._running = True
        self.claim_thread()
        select = self._selector.select
        try:
            while not self._stopping:
                timeout = self._next_timeout()
                for key, mask in select(timeout):
                    handler = key.data
                    if handler is None:
                        self._waker.drain()
                        continue
                    try:
                        handler.handle_event(mask)
                    except Exception:  # pragma: no cover - a bug, but one channel must not stop the loop
                        log.exception("unexpected error handling socket event")
                self._run_calls()
                if self._timers:
                    self._run_due_timers()
                if self._end_of_turn:
                    self._run_end_of_turn()
        finally:
            self._running = False

    def at_end_of_turn(self, callback: Callable[[], Any]) -> None:
        """Loop-thread only: run ``callback`` once this turn's events, calls and timers
        are handled, before the loop waits again. For work best done once per turn
        rather than once per event (handing a batch of requests to the worker pool)."""
        if self._debug:
            self._check_thread()
        self._end_of_turn.append(callback)

    def _run_end_of_turn(self) -> None:
        callbacks, self._end_of_turn = self._end_of_turn, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # pragma: no cover - a bug; keep serving the others
                log.exception("unexpected error in end-of-turn callback %r", callback)

    def _next_timeout(self) -> float | None:
        if self._calls or self._signal_calls or self._end_of_turn:
            return 0
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - self.time())

    def _run_calls(self) -> None:
        with self._wake_lock:
            self._wake_pending = False
        while self._signal_calls:
            callback, args = self._signal_calls.popleft()
            callback(*args)
        calls = self._calls
        # Only what is queued now: a callback that queues another must not starve I/O.
        for _ in range(len(calls)):
            callback, args = calls.popleft()
            try:
                callback(*args)
            except Exception:  # pragma: no cover - a bug; keep serving the others
                log.exception("unexpected error in loop callback %r", callback)

    def _run_due_timers(self) -> None:
        now = self.time()
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if timer.cancelled:
                continue
            try:
                timer.callback()
            except Exception:  # pragma: no cover - a bug; keep serving the others
                log.exception("unexpected error in timer %r", timer.callback)

    def close(self) -> None:
        """Loop-thread (or after :meth:`run` returned): release the selector and waker."""
        self._selector.close()
        self._waker.close()
        self._timers.clear()
        self._calls.clear()
