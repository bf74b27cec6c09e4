"""Certificates made at test time with trustme, written where the settings can name them."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerCertificates

trustme = pytest.importorskip("trustme")
serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")

KEY_PASSWORD = "correct horse battery staple"


class CertificateFiles:
    """PEM files for one server certificate, good and broken, under one directory."""

    def __init__(self, directory: Path, ca: Any, certificate: Any, stranger: Any) -> None:
        self.directory = directory
        self.ca = ca
        self.certificate = certificate
        self.cert = self._write("cert.pem", *(blob.bytes() for blob in certificate.cert_chain_pems))
        self.key = self._write("key.pem", certificate.private_key_pem.bytes())
        self.combined = self._write("combined.pem", Path(self.cert).read_bytes(), Path(self.key).read_bytes())
        self.ca_cert = self._write("ca.pem", ca.cert_pem.bytes())
        self.encrypted_key = self._write("encrypted-key.pem", _encrypted(certificate.private_key_pem.bytes()))
        self.other_key = self._write("other-key.pem", stranger.private_key_pem.bytes())

    def _write(self, name: str, *parts: bytes) -> str:
        path = self.directory / name
        path.write_bytes(b"".join(parts))
        return str(path)

    def write(self, name: str, data: bytes) -> str:
        """Another file in the same directory (for broken inputs)."""
        return self._write(name, data)

    @property
    def leaf_pem(self) -> str:
        return self.certificate.cert_chain_pems[0].bytes().decode("ascii")

    def client_context(self) -> ssl.SSLContext:
        """A client that trusts the test CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ca.configure_trust(context)
        return context


def _encrypted(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
    )


@pytest.fixture(scope="session")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_certificate(ca: Any) -> Any:
    return ca.issue_cert("localhost", "127.0.0.1", "::1")


@pytest.fixture
def files(tmp_path: Path, ca: Any, server_certificate: Any) -> CertificateFiles:
    return CertificateFiles(tmp_path, ca, server_certificate, ca.issue_cert("stranger.example"))


def _install(certificate: Any, certfile: Path, keyfile: Path) -> None:
    certfile.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    keyfile.write_bytes(certificate.private_key_pem.bytes())


def peer_names(sock: Any) -> set[str]:
    """The DNS names of the certificate the server presented on ``sock``."""
    return {value for kind, value in sock.getpeercert()["subjectAltName"] if kind == "DNS"}


@pytest.fixture
def renewable(https_certificates: ServerCertificates, tmp_path: Path) -> Any:
    """Certificate files a test may renew: ``renew(name)`` issues one that also names ``name``."""
    certfile, keyfile = tmp_path / "live-cert.pem", tmp_path / "live-key.pem"

    def renew(name: str) -> None:
        _install(https_certificates.ca.issue_cert("localhost", "127.0.0.1", name), certfile, keyfile)

    renew("before.example")
    renew.settings = {"certfile": str(certfile), "keyfile": str(keyfile)}  # type: ignore[attr-defined]
    renew.keyfile = keyfile  # type: ignore[attr-defined]
    return renew
