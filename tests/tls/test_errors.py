"""Every way the TLS files can be wrong is a start-up error naming the setting and the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from waitress_like.config import Settings
from waitress_like.errors import ConfigError
from waitress_like.tls import create_context_holder

from .conftest import KEY_PASSWORD, CertificateFiles


def _error(files: CertificateFiles, **settings: Any) -> ConfigError:
    settings.setdefault("certfile", files.cert)
    settings.setdefault("keyfile", files.key)
    with pytest.raises(ConfigError) as info:
        create_context_holder(Settings(**settings))
    return info.value


def _assert_names(error: ConfigError, setting: str, path: str, reason: str) -> None:
    assert error.setting == setting
    assert path in str(error)
    assert reason in error.reason


def test_a_missing_certfile(files: CertificateFiles):
    missing = str(files.directory / "missing.pem")
    _assert_names(_error(files, certfile=missing), "certfile", missing, "no such file")


def test_a_missing_keyfile(files: CertificateFiles):
    missing = str(files.directory / "missing-key.pem")
    _assert_names(_error(files, keyfile=missing), "keyfile", missing, "no such file")


def test_a_directory_as_certfile(files: CertificateFiles):
    directory = str(files.directory)
    _assert_names(_error(files, certfile=directory), "certfile", directory, "is a directory")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_keyfile(files: CertificateFiles):
    os.chmod(files.key, 0)
    _assert_names(_error(files), "keyfile", files.key, "permission denied")


def test_a_certfile_without_a_certificate(files: CertificateFiles):
    garbage = files.write("garbage.pem", b"hello\n")
    _assert_names(_error(files, certfile=garbage), "certfile", garbage, "holds no PEM certificate")


def test_a_key_given_as_certfile(files: CertificateFiles):
    error = _error(files, certfile=files.key)
    _assert_names(error, "certfile", files.key, "holds no PEM certificate: it holds a private key")


def test_a_der_certificate(files: CertificateFiles):
    import ssl

    der = files.write("cert.der", ssl.PEM_cert_to_DER_cert(files.leaf_pem))
    _assert_names(_error(files, certfile=der), "certfile", der, "it looks like DER")


def test_a_damaged_certificate(files: CertificateFiles):
    text = Path(files.cert).read_text()
    lines = text.splitlines()
    lines[3] = "A" * len(lines[3])  # inside the first certificate's base64
    damaged = files.write("damaged.pem", "\n".join(lines).encode())
    _assert_names(_error(files, certfile=damaged), "certfile", damaged, "cannot be read")


def test_a_certificate_given_as_keyfile(files: CertificateFiles):
    _assert_names(_error(files, keyfile=files.cert), "keyfile", files.cert, "holds no PEM private key")


def test_a_certfile_without_the_key_and_no_keyfile(files: CertificateFiles):
    error = _error(files, keyfile=None)
    _assert_names(error, "certfile", files.cert, "holds no PEM private key; set keyfile")


def test_a_key_that_does_not_match(files: CertificateFiles):
    error = _error(files, keyfile=files.other_key)
    _assert_names(error, "keyfile", files.other_key, "does not match the certificate in " + files.cert)


def test_a_combined_file_whose_key_does_not_match(files: CertificateFiles):
    mixed = files.write("mixed.pem", Path(files.cert).read_bytes() + Path(files.other_key).read_bytes())
    _assert_names(_error(files, certfile=mixed, keyfile=None), "certfile", mixed, "does not match")


def test_an_encrypted_key_without_a_password(files: CertificateFiles):
    error = _error(files, keyfile=files.encrypted_key)
    _assert_names(error, "keyfile_password", files.encrypted_key, "is encrypted: set keyfile_password")


def test_a_wrong_password_is_named_but_not_shown(files: CertificateFiles):
    error = _error(files, keyfile=files.encrypted_key, keyfile_password="not " + KEY_PASSWORD)
    _assert_names(error, "keyfile_password", files.encrypted_key, "wrong password")
    assert KEY_PASSWORD not in str(error)


def test_unknown_ciphers(files: CertificateFiles):
    error = _error(files, ciphers="NO-SUCH-CIPHER")
    assert error.setting == "ciphers"
    assert "NO-SUCH-CIPHER" in str(error)


def test_a_missing_ca_certs(files: CertificateFiles):
    missing = str(files.directory / "missing-ca.pem")
    _assert_names(_error(files, ca_certs=missing, cert_reqs="required"), "ca_certs", missing, "no such file")


def test_a_ca_certs_without_certificates(files: CertificateFiles):
    garbage = files.write("garbage-ca.pem", b"not a certificate\n")
    error = _error(files, ca_certs=garbage, cert_reqs="optional")
    _assert_names(error, "ca_certs", garbage, "holds no usable PEM certificate")
