"""Reloading certificates: new connections get the new one, open ones keep theirs."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from waitress_like.config import Settings
from waitress_like.errors import ConfigError
from waitress_like.tls import TLSContextHolder, create_context_holder

from .conftest import CertificateFiles
from .memorypair import MemoryPair


def _holder(files: CertificateFiles) -> TLSContextHolder:
    holder = create_context_holder(Settings(certfile=files.cert, keyfile=files.key))
    assert holder is not None
    return holder


def _renew(files: CertificateFiles, name: str) -> Any:
    """Replace the files in place, as certbot does, with a new certificate for ``name``."""
    renewed = files.ca.issue_cert("localhost", name)
    Path(files.cert).write_bytes(b"".join(blob.bytes() for blob in renewed.cert_chain_pems))
    Path(files.key).write_bytes(renewed.private_key_pem.bytes())
    return renewed


def _server_cert_seen_by_client(pair: MemoryPair) -> Any:
    return pair.client.getpeercert()["subjectAltName"]


def test_a_reload_serves_the_renewed_certificate_to_new_connections(files: CertificateFiles):
    holder = _holder(files)
    before = MemoryPair(holder.current(), files.client_context())
    before.handshake()
    _renew(files, "renewed.example")
    fresh = holder.reload()
    assert holder.current() is fresh and fresh.generation == 1
    after = MemoryPair(holder.current(), files.client_context())
    after.handshake()
    assert ("DNS", "renewed.example") in _server_cert_seen_by_client(after)
    assert ("DNS", "renewed.example") not in _server_cert_seen_by_client(before)
    # The connection opened before the reload goes on with the old context.
    assert before.client_sends(b"still here") == b"still here"
    assert before.server_sends(b"and answered") == b"and answered"


def test_a_failed_reload_keeps_the_old_context(files: CertificateFiles):
    holder = _holder(files)
    old = holder.current()
    Path(files.key).write_bytes(Path(files.other_key).read_bytes())  # a renewal gone wrong
    with pytest.raises(ConfigError) as info:
        holder.reload()
    assert info.value.setting == "keyfile" and "does not match" in info.value.reason
    assert holder.current() is old
    pair = MemoryPair(holder.current(), files.client_context())
    pair.handshake()
    assert pair.client_sends(b"ok") == b"ok"


def test_a_reload_after_a_failed_one_succeeds(files: CertificateFiles):
    holder = _holder(files)
    saved_key = Path(files.directory / "saved-key.pem")
    shutil.copy(files.key, saved_key)
    Path(files.key).write_bytes(b"")
    with pytest.raises(ConfigError):
        holder.reload()
    shutil.copy(saved_key, files.key)
    assert holder.reload().generation == 1


def test_reloads_from_several_threads_each_install_a_whole_context(files: CertificateFiles):
    holder = _holder(files)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(holder.reload())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(result.generation for result in results) == [1, 2, 3, 4]
    assert holder.current().generation == 4
