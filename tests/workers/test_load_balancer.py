"""Beyond one machine: two instances behind a real HAProxy, restarted one after the other.

Each instance is a supervisor with two workers. Under steady load through HAProxy, the
first gets SIGHUP (all its workers replaced), then the second: no request may fail, and
once both have reloaded only new workers answer. HAProxy keeps connections to the
servers alive (``http-reuse always``, so that requests do meet a connection being
closed) and retries an idempotent request whose connection was closed under it
(``retry-on``), the configuration docs/deployment.rst recommends.

``.ci/run`` installs HAProxy; without it the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from .harness import APP, Load, Supervised

HAPROXY_CONFIG = """
global
    maxconn 256

defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s
    # A request whose server connection broke (a worker retiring closes its idle
    # keep-alive connections) is sent again, to the same or the other server.
    retries 3
    retry-on all-retryable-errors
    option redispatch 1
    # Reuse server connections across clients, so that the test meets the case above
    # often (without retry-on it then fails about every other run).
    http-reuse always

frontend web
    bind 127.0.0.1:{port}
    default_backend apps

backend apps
    balance roundrobin
    server first 127.0.0.1:{first}
    server second 127.0.0.1:{second}
"""


def _haproxy() -> Optional[str]:
    return shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(path, os.X_OK)), None
    )


pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="uses fork, signals and /proc"),
    pytest.mark.skipif(_haproxy() is None, reason="haproxy is not installed (.ci/run installs it)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def haproxy_in_front(tmp_path: Path) -> Iterator[tuple[tuple[str, int], Supervised, Supervised]]:
    arguments = ["-w", "2", "--graceful-timeout=5", APP]
    with Supervised(arguments) as first, Supervised(arguments) as second:
        first.wait_ready(2)
        second.wait_ready(2)
        port = _free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=port, first=first.port, second=second.port))
        binary = _haproxy()
        assert binary is not None
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait_accepting(port, process)
            yield ("127.0.0.1", port), first, second
        finally:
            process.terminate()
            process.wait(15)
            assert process.stderr is not None
            process.stderr.close()


def _wait_accepting(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                assert process.stderr is not None
                raise AssertionError(f"haproxy did not start: {process.stderr.read().decode()}") from None
            time.sleep(0.05)  # nothing to wait on but the port itself


def test_rolling_restart_behind_haproxy_fails_no_request(
    haproxy_in_front: tuple[tuple[str, int], Supervised, Supervised],
):
    address, first, second = haproxy_in_front
    load = Load(address, threads=4)
    load.wait_answered(50)
    new: list[set[int]] = []
    for instance in (first, second):
        old = set(instance.ready)
        instance.send(signal.SIGHUP)
        new.append(set(instance.wait_ready(2)))
        assert set(instance.wait_exited(2)) == old
        load.wait_answered(50)
    served_after = load.pids_since(lambda: None, answers=100)
    load.stop()
    assert not load.failures, load.failures[:5]
    assert served_after <= new[0] | new[1]
    assert served_after & new[0] and served_after & new[1]  # both instances serve
    assert first.stop() == 0 and second.stop() == 0
