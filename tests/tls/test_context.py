"""The server context built from the settings: what it offers and what it refuses."""

from __future__ import annotations

import ssl
import warnings
from typing import Any

import pytest

from waitress_like.config import Settings
from waitress_like.tls import ALPN_PROTOCOLS, build_server_tls, create_context_holder, default_context

from .conftest import KEY_PASSWORD, CertificateFiles
from .memorypair import HandshakeFailed, MemoryPair


def _server(files: CertificateFiles, **settings: Any) -> Any:
    settings.setdefault("certfile", files.cert)
    settings.setdefault("keyfile", files.key)
    return build_server_tls(Settings(**settings))


def _connect(files: CertificateFiles, client: ssl.SSLContext | None = None, **settings: Any) -> MemoryPair:
    pair = MemoryPair(_server(files, **settings), client or files.client_context())
    pair.handshake()
    return pair


def test_a_default_context_serves_tls13_with_http11_alpn(files: CertificateFiles):
    client = files.client_context()
    client.set_alpn_protocols(["h2", "http/1.1"])
    pair = _connect(files, client)
    assert pair.server.version() == "TLSv1.3"
    assert pair.server.selected_alpn_protocol() == "http/1.1"
    assert pair.client_sends(b"GET / HTTP/1.1\r\n\r\n") == b"GET / HTTP/1.1\r\n\r\n"
    assert pair.server_sends(b"HTTP/1.1 204 No Content\r\n\r\n") == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_the_default_context_is_hardened(files: CertificateFiles):
    context = default_context(Settings(certfile=files.cert, keyfile=files.key))
    assert context.protocol == ssl.PROTOCOL_TLS_SERVER
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    for option in ("OP_NO_COMPRESSION", "OP_CIPHER_SERVER_PREFERENCE", "OP_NO_RENEGOTIATION"):
        assert context.options & getattr(ssl, option), option
    assert ALPN_PROTOCOLS == ("http/1.1",)


def test_tls12_offers_only_forward_secret_aead_suites(files: CertificateFiles):
    context = default_context(Settings(certfile=files.cert, keyfile=files.key))
    tls12 = [cipher for cipher in context.get_ciphers() if cipher["protocol"] == "TLSv1.2"]
    assert tls12
    for cipher in tls12:
        assert cipher["kea"] == "kx-ecdhe", cipher["name"]
        assert cipher["aead"], cipher["name"]


def test_a_tls12_client_gets_an_ecdhe_aead_suite(files: CertificateFiles):
    client = files.client_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    pair = _connect(files, client)
    assert pair.server.version() == "TLSv1.2"
    assert pair.server.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"


def test_tls_minimum_version_13_refuses_a_tls12_client(files: CertificateFiles):
    client = files.client_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(HandshakeFailed) as failure:
        _connect(files, client, tls_minimum_version="1.3")
    assert failure.value.side == "server"
    assert failure.value.error.reason == "UNSUPPORTED_PROTOCOL"


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls10_and_tls11_are_refused_by_default(files: CertificateFiles, version: str):
    client = files.client_context()
    client.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that the client offers them at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.minimum_version = client.maximum_version = getattr(ssl.TLSVersion, version)
    pair = MemoryPair(_server(files), client)
    assert pair.first_client_bytes()[:1] == b"\x16"
    pair = MemoryPair(_server(files), client)
    with pytest.raises(HandshakeFailed) as failure:
        pair.handshake()
    assert failure.value.side == "server"
    assert failure.value.error.reason == "UNSUPPORTED_PROTOCOL"


def test_ciphers_choose_the_tls12_suites(files: CertificateFiles):
    client = files.client_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    pair = _connect(files, client, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305")
    assert pair.server.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"


def test_the_key_may_sit_in_certfile(files: CertificateFiles):
    pair = _connect(files, certfile=files.combined, keyfile=None)
    assert pair.server.version() == "TLSv1.3"


def test_an_encrypted_key_is_opened_with_keyfile_password(files: CertificateFiles):
    pair = _connect(files, keyfile=files.encrypted_key, keyfile_password=KEY_PASSWORD)
    assert pair.server.version() == "TLSv1.3"


def test_required_client_certificates_refuse_a_client_without_one(files: CertificateFiles):
    with pytest.raises(HandshakeFailed) as failure:
        pair = _connect(files, cert_reqs="required", ca_certs=files.ca_cert)
        pair.client_sends(b"GET / HTTP/1.1\r\n\r\n")  # TLS 1.3: the server decides after the client is done
    assert failure.value.side == "server"


def test_required_client_certificates_accept_one_from_the_authority(files: CertificateFiles):
    client = files.client_context()
    files.ca.issue_cert("alice@example.org").configure_cert(client)
    pair = _connect(files, client, cert_reqs="required", ca_certs=files.ca_cert)
    assert pair.client_sends(b"ping") == b"ping"
    assert pair.server.getpeercert()["subjectAltName"] == (("email", "alice@example.org"),)


def test_client_certificates_from_another_authority_are_refused(files: CertificateFiles, tmp_path: Any):
    client = files.client_context()
    trustme = pytest.importorskip("trustme")
    trustme.CA().issue_cert("mallory@example.org").configure_cert(client)
    with pytest.raises(HandshakeFailed) as failure:
        pair = _connect(files, client, cert_reqs="optional", ca_certs=files.ca_cert)
        pair.client_sends(b"ping")
    assert failure.value.side == "server"
    assert failure.value.error.reason == "CERTIFICATE_VERIFY_FAILED"


def test_optional_client_certificates_let_a_client_without_one_in(files: CertificateFiles):
    pair = _connect(files, cert_reqs="optional", ca_certs=files.ca_cert)
    assert pair.client_sends(b"ping") == b"ping"
    assert pair.server.getpeercert() is None


def test_ca_certs_may_be_a_directory(files: CertificateFiles, tmp_path: Any):
    context = default_context(
        Settings(certfile=files.cert, keyfile=files.key, ca_certs=str(tmp_path), cert_reqs="required")
    )
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_no_certfile_means_no_tls():
    assert create_context_holder(Settings()) is None


def test_the_server_certificate_is_the_first_of_certfile(files: CertificateFiles):
    assert _server(files).server_cert_pem == files.leaf_pem
