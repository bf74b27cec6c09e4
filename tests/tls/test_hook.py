"""The ssl_context hook, with gunicorn's signature: ssl_context(settings, factory)."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from waitress_like.config import Settings
from waitress_like.errors import ConfigError
from waitress_like.tls import TLSContextHolder, create_context_holder

from .conftest import CertificateFiles
from .memorypair import MemoryPair


def _holder(files: CertificateFiles, hook: Any) -> TLSContextHolder:
    holder = create_context_holder(Settings(certfile=files.cert, keyfile=files.key, ssl_context=hook))
    assert holder is not None
    return holder


def _error(files: CertificateFiles, hook: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _holder(files, hook)
    assert info.value.setting == "ssl_context"
    return info.value


def test_the_hook_gets_the_settings_and_adjusts_the_default_context(files: CertificateFiles):
    calls: list[Any] = []

    def hook(settings: Settings, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        calls.append(settings)
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context

    settings = Settings(certfile=files.cert, keyfile=files.key, ssl_context=hook)
    holder = TLSContextHolder(settings)
    assert calls == [settings]
    assert calls[0] is settings
    assert holder.current().context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert holder.current().server_cert_pem == files.leaf_pem
    pair = MemoryPair(holder.current(), files.client_context())
    pair.handshake()
    assert pair.server.version() == "TLSv1.3"


def test_a_context_of_the_hooks_own_has_no_known_server_certificate(files: CertificateFiles):
    def hook(settings: Settings, factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        files.certificate.configure_cert(context)
        return context

    server = _holder(files, hook).current()
    assert server.server_cert_pem is None
    pair = MemoryPair(server, files.client_context())
    pair.handshake()
    assert server.connection_info(pair.server).asgi_extension()["server_cert"] is None


@pytest.fixture
def hook_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module ``tls_hook_for_tests`` on sys.path, with a hook and a non-callable."""
    (tmp_path / "tls_hook_for_tests.py").write_text(
        "import ssl\n"
        "NOT_CALLABLE = 3\n"
        "def only_13(settings, factory):\n"
        "    context = factory()\n"
        "    context.minimum_version = ssl.TLSVersion.TLSv1_3\n"
        "    return context\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tls_hook_for_tests"
    sys.modules.pop("tls_hook_for_tests", None)


def test_the_hook_may_be_named_module_colon_function(files: CertificateFiles, hook_module: str):
    holder = _holder(files, f"{hook_module}:only_13")
    assert holder.current().context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_a_hook_that_is_not_callable(files: CertificateFiles, hook_module: str):
    assert "is not callable" in _error(files, f"{hook_module}:NOT_CALLABLE").reason


def test_a_hook_whose_module_is_missing(files: CertificateFiles):
    assert "no_such_module_here" in _error(files, "no_such_module_here:hook").reason


def test_a_hook_that_raises(files: CertificateFiles):
    def hook(settings: Settings, factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        raise RuntimeError("no luck")

    error = _error(files, hook)
    assert "the hook raised RuntimeError: no luck" in error.reason
    assert isinstance(error.__cause__, RuntimeError)


@pytest.mark.parametrize(
    "returned, reason",
    [
        (None, "returned a NoneType, not an ssl.SSLContext"),
        (ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), "returned a client context"),
    ],
)
def test_a_hook_that_returns_no_server_context(files: CertificateFiles, returned: Any, reason: str):
    assert reason in _error(files, lambda settings, factory: returned).reason


def test_errors_of_the_default_factory_name_their_own_setting(files: CertificateFiles):
    missing = str(files.directory / "missing.pem")
    with pytest.raises(ConfigError) as info:
        create_context_holder(Settings(certfile=missing, ssl_context=lambda settings, factory: factory()))
    assert info.value.setting == "certfile"
    assert missing in str(info.value)
