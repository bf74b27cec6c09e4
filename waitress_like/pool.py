"""A fixed pool of worker threads that run submitted callables. It knows nothing about HTTP."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

__all__ = ["WorkerPool"]

log = logging.getLogger("waitress_like")

_STOP = None


class WorkerPool:
    """``thread_count`` threads taking jobs from one FIFO queue.

    Thread contract: :meth:`submit` and :meth:`shutdown` may be called from any thread.
    A job is a zero-argument callable; an exception escaping it is logged and the worker
    carries on (the WSGI layer turns application errors into responses before that).
    """

    def __init__(self, thread_count: int, name: str = "waitress_like-worker") -> None:
        if thread_count < 1:
            raise ValueError("thread_count must be at least 1")
        # SimpleQueue is implemented in C and never blocks put(): the cheapest hand-off.
        self._jobs: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(thread_count)
        ]
        self._lock = threading.Lock()
        self._busy = 0
        self._started = False

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue ``job``; it runs on the first free worker, in submission order."""
        self._jobs.put(job)

    @property
    def queued_count(self) -> int:
        """Jobs waiting for a worker (approximate; for warnings and metrics)."""
        return self._jobs.qsize()

    @property
    def busy_count(self) -> int:
        return self._busy

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            with self._lock:
                self._busy += 1
            try:
                job()
            except Exception:
                log.exception("unexpected error in worker job")
            finally:
                with self._lock:
                    self._busy -= 1

    def shutdown(self, timeout_seconds: float | None = None) -> bool:
        """Stop every worker after the jobs already queued; True if all stopped in time."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        if not self._started:
            return True
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout_seconds)
        return not any(t.is_alive() for t in self._threads if t is not current)
