"""A scripted stand-in for :class:`waitress_like.loop.EventLoop`, on a fake clock.

Channels talk to their loop through a handful of methods (``time``, ``call_later``,
``call_soon_threadsafe``, ``register``/``modify``/``unregister``). This fake implements
exactly those, but nothing happens by itself: the test decides when queued calls run
(:meth:`FakeLoop.run_calls`), when time passes (:meth:`FakeLoop.advance`), and when a
registered socket is reported ready (:meth:`FakeLoop.deliver`). So orderings that real
threads produce only by luck, and deadlines that take real seconds, are driven one step at
a time, deterministically.

``tests/test_fakeloop.py`` checks it against the real loop's contract.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable


class FakeTimer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Loop-thread methods of EventLoop, driven by the test on its own thread."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self.interest: dict[Any, tuple[int, Any]] = {}  # fileobj -> (events, handler)
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._sequence = itertools.count()
        self.stopped = False
        self.closed = False

    # -- the EventLoop interface --------------------------------------------------------

    def time(self) -> float:
        return self.now

    def call_later(self, delay_seconds: float, callback: Callable[[], Any]) -> FakeTimer:
        return self.call_at(self.now + delay_seconds, callback)

    def call_at(self, when: float, callback: Callable[[], Any]) -> FakeTimer:
        timer = FakeTimer(when, callback)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        return timer

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        self.calls.append((callback, args))

    def at_end_of_turn(self, callback: Callable[[], Any]) -> None:
        self.calls.append((callback, ()))  # run_calls() is the end of a scripted turn

    def call_soon_from_signal(self, callback: Callable[..., Any], *args: Any) -> None:
        self.calls.append((callback, args))

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.closed = True

    def claim_thread(self) -> None:
        pass

    def in_loop_thread(self) -> bool:
        return True

    def register(self, fileobj: Any, events: int, handler: Any) -> None:
        assert fileobj not in self.interest, "registered twice"
        self.interest[fileobj] = (events, handler)

    def modify(self, fileobj: Any, events: int, handler: Any) -> None:
        assert fileobj in self.interest, "modify before register"
        self.interest[fileobj] = (events, handler)

    def unregister(self, fileobj: Any) -> None:
        self.interest.pop(fileobj, None)

    # -- driving it ---------------------------------------------------------------------

    def run_calls(self) -> int:
        """Run the queued calls, and any they queue, until none are left; return how many."""
        count = 0
        while self.calls:
            callback, args = self.calls.pop(0)
            callback(*args)
            count += 1
        return count

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, running each timer when its time comes, in order."""
        end = self.now + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, timer = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            if not timer.cancelled:
                timer.callback()
        self.now = end

    def pending_timers(self) -> list[float]:
        """When each live timer is due, soonest first."""
        return sorted(when for when, _, timer in self._timers if not timer.cancelled)

    def events_for(self, fileobj: Any) -> int:
        return self.interest.get(fileobj, (0, None))[0]

    def deliver(self, fileobj: Any, mask: int) -> bool:
        """Report ``fileobj`` ready for the events in ``mask`` it is registered for.

        Returns False (and does nothing) when it is not registered for any of them, as a
        selector would not report it.
        """
        events, handler = self.interest.get(fileobj, (0, None))
        if not events & mask:
            return False
        handler.handle_event(events & mask)
        return True
