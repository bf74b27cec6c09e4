"""Start a server in a child process for tests that need a real process (signals, fd
limits): the child exits by itself if the test runner dies (its stdin pipe closes), so
an interrupted test run never leaves a server behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_WATCHDOG = """
import os, sys, threading
def _exit_when_parent_dies():
    sys.stdin.read()
    os._exit(70)
threading.Thread(target=_exit_when_parent_dies, daemon=True).start()
"""


def start(code: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    """Run ``code`` (which must serve on 127.0.0.1) and return the process and address
    read from its "Serving on" log line. The caller stops the process."""
    process = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG + code],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    line = process.stderr.readline()
    match = re.search(r"Serving on http://127\.0\.0\.1:(\d+)", line)
    if not match:
        process.kill()
        process.wait()
        raise AssertionError(f"the server did not start: {line!r}")
    return process, ("127.0.0.1", int(match.group(1)))


def stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()
    for stream in (process.stdin, process.stderr):
        if stream is not None:
            stream.close()
