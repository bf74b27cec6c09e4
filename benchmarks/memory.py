"""Resident memory and CPU time of a server process and its children, read from /proc
(Linux only).

Sizes are KiB, as /proc reports them. A server's "tree" is the process and all its
descendants, so a pre-forking server (gunicorn: arbiter + worker) is counted whole.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

SAMPLE_INTERVAL_SECONDS = 0.1


def _status_kib(pid: int, field: str) -> int:
    """The ``field`` line of /proc/PID/status in KiB; 0 when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` followed by every descendant alive now."""
    tree = [pid]
    index = 0
    while index < len(tree):
        tree.extend(_children(tree[index]))
        index += 1
    return tree


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by the process tree (exited children are not counted)."""
    return sum(_cpu_seconds(member) for member in process_tree(pid))


def tree_rss_kib(pid: int) -> int:
    """Current resident set size (VmRSS) summed over the process tree."""
    return sum(_status_kib(member, "VmRSS") for member in process_tree(pid))


def tree_hwm_kib(pid: int) -> int:
    """Peak resident set size (VmHWM) summed over the process tree.

    An upper bound of the tree's true simultaneous peak: each member's peak may have come
    at a different time. For a single process it is exact.
    """
    return sum(_status_kib(member, "VmHWM") for member in process_tree(pid))


class RssSampler:
    """Samples the tree's VmRSS on a background thread and keeps the largest value.

    Use as a context manager around the load; ``peak_kib`` is valid after exit. Sampling
    catches growth that a single VmHWM reading of a pre-forking server would smear over
    several processes.
    """

    def __init__(self, pid: int, interval_seconds: float = SAMPLE_INTERVAL_SECONDS) -> None:
        self._pid = pid
        self._interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak_kib = 0

    def _run(self) -> None:
        while True:
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self._pid))
            if self._stop.wait(self._interval_seconds):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, tree_rss_kib(self._pid))
