"""Real slow-client attacks (slowhttptest) at the connection limit, with default settings.

slowhttptest opens 300 connections (three times the default ``connection_limit``) in each
of its modes: slow heads (slowloris), slow bodies (R-U-Dead-Yet) and slow reads. While an
attack holds the server, fresh clients keep asking for a page; at least 90% of them must
get it within 2 seconds. The server runs in a child process with default settings; the
attack and the probes come from this machine over loopback.

``.ci/run`` installs slowhttptest from Debian; without it these tests skip.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from typing import Optional

import pytest

from tests.processes import ServerProcess, python_snippet

pytestmark = pytest.mark.skipif(
    shutil.which("slowhttptest") is None, reason="slowhttptest is not installed (.ci/run installs it)"
)

ATTACK_CONNECTIONS = 300
DEFAULT_CONNECTION_LIMIT = 100
PROBE_SECONDS = 10
RESPONSE_WITHIN_SECONDS = 2.0
MODES = {
    "slow-headers": ["-H", "-i", "10"],
    "slow-body": ["-B", "-i", "10", "-s", "8192"],
    "slow-read": ["-X", "-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "3"],
}

_SERVER = """
from waitress_like import serve
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]
serve(app, listen="127.0.0.1:0")
"""
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CONNECTED = re.compile(r"connected:\s+(\d+)")


class Attack:
    """slowhttptest in the background; its status report is read as it comes."""

    def __init__(self, address: tuple[str, int], mode_arguments: list[str]) -> None:
        host, port = address
        self.process = subprocess.Popen(
            ["stdbuf", "-oL", "slowhttptest", "-c", str(ATTACK_CONNECTIONS), "-r", "200", "-l", "60", "-p", "3",
             "-u", f"http://{host}:{port}/", *mode_arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )  # fmt: skip
        # The attack holds (nearly: newcomers take slots too) a default connection_limit's worth.
        self.holding = threading.Event()
        self.connected = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = _CONNECTED.search(_ANSI.sub("", line))
            if match:
                self.connected = int(match.group(1))
                if self.connected >= 0.9 * DEFAULT_CONNECTION_LIMIT:
                    self.holding.set()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _fresh_client(address: tuple[str, int]) -> Optional[float]:
    """One GET on a new connection; the seconds it took, or None if not answered in time."""
    started = time.monotonic()
    try:
        with socket.create_connection(address, timeout=RESPONSE_WITHIN_SECONDS) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
                sock.settimeout(max(0.01, RESPONSE_WITHIN_SECONDS - (time.monotonic() - started)))
    except OSError:
        return None
    took = time.monotonic() - started
    return took if data.startswith(b"HTTP/1.1 200 ") and took <= RESPONSE_WITHIN_SECONDS else None


@pytest.mark.parametrize("mode", sorted(MODES))
def test_fresh_clients_are_served_during_a_slow_client_attack(mode: str) -> None:
    with ServerProcess(python_snippet(_SERVER)) as server:
        address = server.wait_serving()
        attack = Attack(address, MODES[mode])
        try:
            assert attack.holding.wait(30), "slowhttptest never filled the connection limit"
            # Probe while the attack lasts (the server may cut all of its connections
            # before PROBE_SECONDS, and slowhttptest then stops), paced over its course.
            results = []
            done = threading.Event()
            timer = threading.Timer(PROBE_SECONDS, done.set)
            timer.start()
            while not done.is_set() and attack.process.poll() is None:
                results.append(_fresh_client(address))
                done.wait(0.2)
            timer.cancel()
        finally:
            attack.stop()
        served = [took for took in results if took is not None]
        assert len(results) >= 10
        assert len(served) >= 0.9 * len(results), f"{len(served)} of {len(results)} served in time"
        assert server.stop() == 0
