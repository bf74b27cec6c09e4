"""HTTPS with worker processes: every worker serves TLS where the supervisor's listener
does (forked and spawned workers, mixed listeners, ``reuse_port``), a bad certificate
stops the supervisor before any worker starts, and SIGHUP brings renewed certificates
(new workers read the files afresh) while a bad renewal changes nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.processes import python_snippet, run_command, server_command
from tests.workers.harness import APP, Supervised
from waitress_like.errors import ConfigError
from waitress_like.supervisor import AppSource, Supervisor

from .conftest import trustme

x509 = pytest.importorskip("cryptography.x509")

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses fork, signals and /proc")

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
ATTEMPTS = 200  # connections made at most to see both workers (the kernel picks one)


class Certificates:
    """A certificate in files that a test may replace (a renewal), and a client trusting its CA."""

    def __init__(self, directory: Path, ca: Any) -> None:
        self.ca = ca
        self.certfile = directory / "live-cert.pem"
        self.keyfile = directory / "live-key.pem"
        self.serial = self.install(ca.issue_cert("localhost", "127.0.0.1"))
        self.client = ssl.create_default_context()
        ca.configure_trust(self.client)

    def install(self, certificate: Any) -> int:
        """Write ``certificate`` over the files; returns its serial number."""
        self.certfile.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
        self.keyfile.write_bytes(certificate.private_key_pem.bytes())
        return int(x509.load_pem_x509_certificate(certificate.cert_chain_pems[0].bytes()).serial_number)

    @property
    def arguments(self) -> list[str]:
        return [f"--certfile={self.certfile}", f"--keyfile={self.keyfile}"]

    def get(self, address: tuple[str, int]) -> tuple[int, int]:
        """One HTTPS request: (the pid that answered, the serial of the certificate served)."""
        raw = socket.create_connection(address, timeout=10)
        with raw, self.client.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            der = sock.getpeercert(binary_form=True)
            sock.sendall(GET)
            data = _read_all(sock)
        assert der is not None
        assert data.startswith(b"HTTP/1.1 200 "), data[:80]
        return int(data.partition(b"\r\n\r\n")[2]), int(x509.load_der_x509_certificate(der).serial_number)


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path, trustme.CA())


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def plain_get(address: tuple[str, int]) -> bytes:
    """One request in plain text: the answer's bytes."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(GET)
        try:
            return _read_all(sock)
        except ConnectionResetError:
            return b""


def pids_over_tls(certificates: Certificates, address: tuple[str, int], wanted: set[int]) -> set[int]:
    """HTTPS requests until every pid of ``wanted`` answered (bounded); the pids that did.
    Each answer must come with the expected certificate."""
    seen: set[int] = set()
    for _ in range(ATTEMPTS):
        pid, serial = certificates.get(address)
        assert serial == certificates.serial
        seen.add(pid)
        if seen >= wanted:
            break
    return seen


def plain_pids(address: tuple[str, int], wanted: set[int]) -> set[int]:
    seen: set[int] = set()
    for _ in range(ATTEMPTS):
        answer = plain_get(address)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
        seen.add(int(answer.partition(b"\r\n\r\n")[2]))
        if seen >= wanted:
            break
    return seen


def _listen_ports(server: Supervised) -> dict[str, tuple[str, int]]:
    """The address of each scheme, from the supervisor's "Serving on" lines."""
    found = dict(re.findall(r"Serving on (https?)://127\.0\.0\.1:(\d+)", server.stderr))
    return {scheme: ("127.0.0.1", int(port)) for scheme, port in found.items()}


def test_every_worker_serves_https_with_certfile(certificates: Certificates):
    with Supervised(["-w", "2", "--graceful-timeout=5", *certificates.arguments, APP]) as server:
        assert "Serving on https://127.0.0.1:" in server.stderr
        workers = set(server.wait_ready(2))
        assert pids_over_tls(certificates, server.address, workers) == workers
        # Plain text is refused (before, the workers served it).
        assert b"plain HTTP request was sent to an HTTPS port" in plain_get(server.address)
        assert server.stop() == 0


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_mixed_listeners_keep_their_scheme_in_every_worker(certificates: Certificates, start_method: str):
    code = f"""
        import logging
        logging.basicConfig(level=logging.INFO)
        from waitress_like.supervisor import AppSource, Supervisor
        supervisor = Supervisor(
            AppSource(spec={APP!r}),
            {{"listen": "127.0.0.1:0 https://127.0.0.1:0", "workers": 2, "graceful_timeout": 5,
              "certfile": {str(certificates.certfile)!r}, "keyfile": {str(certificates.keyfile)!r}}},
            start_method={start_method!r},
        )
        raise SystemExit(0 if supervisor.run() else 1)
    """
    with Supervised(python_snippet(textwrap.dedent(code)), snippet=True) as server:
        workers = set(server.wait_ready(2))
        addresses = _listen_ports(server)
        assert pids_over_tls(certificates, addresses["https"], workers) == workers
        assert plain_pids(addresses["http"], workers) == workers
        assert b"sent to an HTTPS port" in plain_get(addresses["https"])
        with pytest.raises(ssl.SSLError):
            certificates.get(addresses["http"])
        assert server.stop() == 0


def test_reuse_port_slots_keep_each_listeners_scheme(certificates: Certificates):
    arguments = ["-w", "2", "--reuse-port", "--graceful-timeout=5", *certificates.arguments, APP]
    listen = "--listen=127.0.0.1:0 https://127.0.0.1:0"
    with Supervised([listen, *arguments]) as server:
        first, second = server.wait_ready(2)
        addresses = _listen_ports(server)
        # The second worker's sockets were bound for its slot: each kept its scheme.
        assert pids_over_tls(certificates, addresses["https"], {first, second}) == {first, second}
        assert plain_pids(addresses["http"], {first, second}) == {first, second}
        # A replacement takes the dead worker's slot, and its sockets with their schemes.
        os.kill(second, signal.SIGKILL)
        (replacement,) = server.wait_ready(1)
        assert replacement in pids_over_tls(certificates, addresses["https"], {first, replacement})
        assert replacement in plain_pids(addresses["http"], {first, replacement})
        assert server.stop() == 0


def test_sighup_serves_renewed_certificates_and_refuses_a_bad_renewal(certificates: Certificates, tmp_path):
    config = tmp_path / "conf.py"
    config.write_text(f"certfile = {str(certificates.certfile)!r}\nkeyfile = {str(certificates.keyfile)!r}\n")
    with Supervised(["-w", "2", "--graceful-timeout=5", "-c", str(config), APP]) as server:
        old = set(server.wait_ready(2))
        assert certificates.get(server.address)[1] == certificates.serial
        # A renewal (certbot writes the files), then HUP: new workers read them.
        first_serial = certificates.serial
        certificates.serial = certificates.install(certificates.ca.issue_cert("localhost", "127.0.0.1"))
        assert certificates.serial != first_serial
        server.send(signal.SIGHUP)
        new = set(server.wait_ready(2))
        assert set(server.wait_exited(2)) == old
        assert pids_over_tls(certificates, server.address, new) == new
        # A renewal gone wrong (the key of another certificate): refused, nothing changes.
        good_key = certificates.keyfile.read_bytes()
        certificates.keyfile.write_bytes(certificates.ca.issue_cert("other.example").private_key_pem.bytes())
        server.send(signal.SIGHUP)
        line = server.wait_event(re.compile("Reload failed, nothing changed"))
        assert "'keyfile'" in line and "does not match" in line
        assert pids_over_tls(certificates, server.address, new) == new
        # Dropping certfile would serve these TLS sockets in plain text: refused too.
        certificates.keyfile.write_bytes(good_key)
        config.write_text("")
        server.send(signal.SIGHUP)
        line = server.wait_event(re.compile("Reload failed, nothing changed"))
        assert "'certfile'" in line and "restart the server" in line
        assert server.workers() == sorted(new)
        assert certificates.get(server.address)[1] == certificates.serial
        assert server.stop() == 0


def test_a_bad_certificate_stops_the_supervisor_before_it_binds_or_forks(certificates: Certificates):
    missing = str(certificates.certfile.parent / "missing.pem")
    supervisor = Supervisor(
        AppSource(app=lambda environ, start_response: []),
        {"listen": "127.0.0.1:0", "workers": 2, "certfile": missing},
    )
    with pytest.raises(ConfigError) as info:
        supervisor.run()
    assert info.value.setting == "certfile" and missing in str(info.value)
    assert supervisor.sockets.listening == [] and supervisor.workers == []


def test_the_command_names_a_bad_certificate_and_starts_no_worker(certificates: Certificates):
    certificates.keyfile.write_bytes(b"not a key")
    result = run_command(server_command("-w", "2", "--listen=127.0.0.1:0", *certificates.arguments, APP))
    assert result.returncode != 0
    assert "keyfile" in result.stderr and str(certificates.keyfile) in result.stderr
    assert "Started worker" not in result.stderr and "Serving on" not in result.stderr
