"""A pool of worker threads that run submitted callables. It knows nothing about HTTP.

The pool has ``thread_count`` permanent workers. With ``max_thread_count`` above that it
grows: a job submitted while no worker is idle starts an extra worker (up to the
maximum), and an extra worker that finds no job for ``idle_timeout_seconds`` stops, so
the pool shrinks back to its permanent size when the load passes.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from typing import Any, Callable, Optional

__all__ = ["WorkerPool"]

log = logging.getLogger("waitress_like")

_STOP = None


class WorkerPool:
    """Worker threads taking jobs from one FIFO queue.

    Thread contract: :meth:`start`, :meth:`submit` and :meth:`shutdown` may be called
    from any thread. A job is a zero-argument callable; an exception escaping it is
    logged and the worker carries on (the WSGI layer turns application errors into
    responses before that).
    """

    def __init__(
        self,
        thread_count: int,
        name: str = "waitress_like-worker",
        max_thread_count: int = 0,
        idle_timeout_seconds: float = 60.0,
    ) -> None:
        if thread_count < 1:
            raise ValueError("thread_count must be at least 1")
        self._name = name
        self._base_count = thread_count
        self._max_count = max(thread_count, max_thread_count)
        self._idle_timeout = idle_timeout_seconds
        # SimpleQueue is implemented in C and never blocks put(): the cheapest hand-off.
        self._jobs: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._idle = 0  # workers waiting for a job; read without the lock as a hint
        self._numbers = itertools.count()
        self._started = False
        self._stopping = False

    @property
    def thread_count(self) -> int:
        return len(self._threads)

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for _ in range(self._base_count):
                self._spawn_locked(permanent=True)

    def _spawn_locked(self, permanent: bool) -> None:
        thread = threading.Thread(
            target=self._work,
            args=(permanent,),
            # Extra workers are named apart, so they can be told from permanent ones.
            name=f"{self._name}-{next(self._numbers)}" + ("" if permanent else "-extra"),
            daemon=True,
        )
        self._threads.add(thread)
        # Idle from birth: counted now, so a job arriving before the thread first waits
        # does not look like a queue no worker will take.
        self._idle += 1
        thread.start()

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue ``job``; it runs on the first free worker, in submission order."""
        self._jobs.put(job)
        # Grow when more jobs wait than idle workers can take: comparing with the idle
        # count alone misses bursts that arrive before any worker has woken up.
        if self._max_count > self._base_count and self._jobs.qsize() > self._idle:
            self._grow()

    def _grow(self) -> None:
        with self._lock:
            if len(self._threads) < self._max_count and not self._stopping and self._started:
                self._spawn_locked(permanent=False)

    @property
    def queued_count(self) -> int:
        """Jobs waiting for a worker (approximate; for warnings and metrics)."""
        return self._jobs.qsize()

    @property
    def idle_count(self) -> int:
        """Workers waiting for a job (approximate)."""
        return self._idle

    def _work(self, permanent: bool) -> None:
        jobs = self._jobs
        timeout: Optional[float] = None if permanent else self._idle_timeout
        current = threading.current_thread()
        counted_idle = True  # _spawn_locked counted this worker idle already
        while True:
            if not counted_idle:
                with self._lock:
                    self._idle += 1
            counted_idle = False
            try:
                job = jobs.get(timeout=timeout)
            except queue.Empty:
                job = _STOP
                with self._lock:
                    self._idle -= 1
                    self._threads.discard(current)
                return
            with self._lock:
                self._idle -= 1
            if job is None:
                with self._lock:
                    self._threads.discard(current)
                return
            try:
                job()
            except Exception:
                log.exception("unexpected error in worker job")
            # Not kept while this worker waits for the next one: the job holds its
            # request, pipe and connection (with TLS, its session) alive.
            job = None

    def shutdown(self, timeout_seconds: float | None = None) -> bool:
        """Stop every worker after the jobs already queued; True if all stopped in time."""
        with self._lock:
            self._stopping = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(_STOP)
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join(timeout_seconds)
        return not any(t.is_alive() for t in threads if t is not current)
