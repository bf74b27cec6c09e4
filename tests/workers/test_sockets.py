"""The supervisor's listening sockets by slot keep each listener's TLS flag: adopted
sockets and the unix socket serve TLS when certfile is set (as in create_server), and a
reuse_port slot's sockets come in the same order with the same flags."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from waitress_like.config import Settings
from waitress_like.workersockets import WorkerSockets


def _tls(settings: Settings) -> list[bool]:
    sockets = WorkerSockets(settings)
    try:
        return [listener.is_tls for listener in sockets.bind()]
    finally:
        sockets.close()


def test_adopted_sockets_serve_tls_with_certfile(https_certificates):
    tls = {"certfile": https_certificates.certfile, "keyfile": https_certificates.keyfile}
    for with_tls in (False, True):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        assert _tls(Settings(sockets=[sock], **(tls if with_tls else {}))) == [with_tls]


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="unix sockets")
def test_the_unix_socket_serves_tls_with_certfile(https_certificates, tmp_path: Path):
    settings = Settings(
        unix_socket=str(tmp_path / "app.sock"),
        certfile=https_certificates.certfile,
        keyfile=https_certificates.keyfile,
    )
    assert _tls(settings) == [True]


@pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT, and 127.0.0.2 on the loopback")
def test_a_reuse_port_slot_has_the_same_addresses_and_flags(https_certificates):
    settings = Settings(
        listen="https://127.0.0.1:0 127.0.0.1:0 https://127.0.0.2:0",
        certfile=https_certificates.certfile,
        keyfile=https_certificates.keyfile,
        reuse_port=True,
    )
    sockets = WorkerSockets(settings)
    try:
        first = sockets.bind()
        second = sockets.listeners(1)
        assert [listener.is_tls for listener in first] == [True, False, True]
        assert [(lsn.address, lsn.is_tls) for lsn in second] == [(lsn.address, lsn.is_tls) for lsn in first]
        assert {lsn.socket.fileno() for lsn in second}.isdisjoint(lsn.socket.fileno() for lsn in first)
    finally:
        sockets.close()


def test_a_worker_never_guesses_a_sockets_scheme():
    from waitress_like.worker import _listeners

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(ValueError, match="1 listening sockets but 0 TLS flags"):
            _listeners([sock], ())
        assert [listener.is_tls for listener in _listeners([sock], (True,))] == [True]
