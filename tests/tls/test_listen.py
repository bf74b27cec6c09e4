"""Which listeners serve TLS: the https:// prefix, certfile, and the checks between them."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from waitress_like.config import ListenAddress, Settings
from waitress_like.errors import ConfigError
from waitress_like.listeners import bind_listeners


def _error(**settings: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Settings(**settings)
    return info.value


def _schemes(settings: Settings) -> list[str]:
    return [str(address) for address in settings.listen]


# --------------------------------------------------------------------------- the syntax


def test_https_entries_are_tls_and_bare_ones_plain_beside_them():
    settings = Settings(listen="*:8080 https://*:8443", certfile="cert.pem")
    assert settings.listen == (ListenAddress(None, 8080), ListenAddress(None, 8443, tls=True))
    assert _schemes(settings) == ["*:8080", "https://*:8443"]


def test_with_a_certificate_and_no_https_entry_every_entry_is_tls():
    # As gunicorn and uvicorn: a certificate makes the server HTTPS.
    settings = Settings(listen="127.0.0.1:8443 [::1]:8443", certfile="cert.pem")
    assert [address.tls for address in settings.listen] == [True, True]
    assert Settings(certfile="cert.pem", port=8443).listen == (ListenAddress("0.0.0.0", 8443, tls=True),)


def test_an_http_entry_stays_plain_with_a_certificate():
    settings = Settings(listen="http://*:80 *:443", certfile="cert.pem")
    assert _schemes(settings) == ["*:80", "https://*:443"]


def test_without_a_certificate_everything_is_plain():
    assert Settings(listen="http://*:80 *:81").listen == (ListenAddress(None, 80), ListenAddress(None, 81))
    assert Settings().listen[0].tls is False


@pytest.mark.parametrize("entry", ["HTTPS://[::1]:8443", "https://[::1]:8443", "Https://[::1]:8443"])
def test_the_scheme_is_case_insensitive(entry: str):
    assert Settings(listen=entry, certfile="c.pem").listen == (ListenAddress("::1", 8443, tls=True),)


def test_the_written_form_parses_back_to_the_same_listeners():
    for listen in ("*:8080 https://*:8443", "http://a:1 b:2", "[::1]:1"):
        settings = Settings(listen=listen, certfile="cert.pem")
        again = Settings(listen=" ".join(_schemes(settings)), certfile="cert.pem")
        assert again.listen == settings.listen


def test_listen_address_objects_keep_their_scheme():
    address = ListenAddress("::1", 8443, tls=True)
    assert repr(address) == "ListenAddress('::1', 8443, tls=True)"
    assert str(address) == "https://[::1]:8443"
    assert address != ListenAddress("::1", 8443)
    assert Settings(listen=[address], certfile="c.pem").listen == (address,)


@pytest.mark.parametrize(
    "listen, reason",
    [
        ("ftp://*:21", "the scheme must be http:// or https://"),
        ("https://", "is not a host name"),
        ("https://*:99999", "'https://*:99999': the port must be"),
        ("https://::1:8443", "'https://::1:8443': write IPv6 addresses in brackets"),
    ],
)
def test_bad_entries_are_named_as_written(listen: str, reason: str):
    error = _error(listen=listen, certfile="c.pem")
    assert error.setting == "listen" and reason in error.reason


# --------------------------------------------------------------------------- checks


def test_an_https_entry_needs_a_certificate():
    error = _error(listen="*:8080 https://*:8443")
    assert error.setting == "listen"
    assert "https://*:8443" in str(error) and "certfile" in error.reason


def test_a_certificate_needs_a_tls_listener():
    error = _error(listen="http://*:8080", certfile="cert.pem")
    assert error.setting == "certfile" and "no listener uses TLS" in error.reason


def test_one_port_cannot_be_both_plain_and_tls():
    error = _error(listen="*:8443 https://*:8443", certfile="cert.pem")
    assert error.setting == "listen" and "both as plain HTTP and as https://" in error.reason


@pytest.mark.parametrize(
    "name, value",
    [
        ("keyfile", "key.pem"),
        ("keyfile_password", "pw"),
        ("ca_certs", "ca.pem"),
        ("cert_reqs", "required"),
        ("ciphers", "ECDHE+AESGCM"),
        ("tls_minimum_version", "1.3"),
        ("ssl_context", "myproject.tls:hook"),
    ],
)
def test_tls_settings_need_certfile(name: str, value: Any):
    error = _error(**{name: value})
    assert error.setting == name and "has no meaning without certfile" in error.reason


def test_verifying_clients_needs_authorities():
    error = _error(certfile="c.pem", cert_reqs="optional")
    assert error.setting == "cert_reqs" and "ca_certs" in error.reason
    # ... unless a hook loads them.
    assert Settings(certfile="c.pem", cert_reqs="required", ssl_context="m:f").cert_reqs == "required"


def test_authorities_without_verification_are_refused():
    error = _error(certfile="c.pem", ca_certs="ca.pem")
    assert error.setting == "ca_certs" and "cert_reqs" in error.reason


@pytest.mark.parametrize(
    "value, expected",
    [("none", "none"), ("REQUIRED", "required"), ("cert_optional", "optional"), (0, "none"), (2, "required")]
    + [(ssl.CERT_OPTIONAL, "optional"), (ssl.CERT_REQUIRED, "required")],
)
def test_cert_reqs_spellings(value: Any, expected: str):
    authorities = None if expected == "none" else "ca.pem"
    assert Settings(certfile="c.pem", cert_reqs=value, ca_certs=authorities).cert_reqs == expected


@pytest.mark.parametrize("value", ["1.3", "TLSv1.3", "tls1.3", " TLSv1_3 ", 1.3, ssl.TLSVersion.TLSv1_3])
def test_tls_minimum_version_spellings(value: Any):
    assert Settings(certfile="c.pem", tls_minimum_version=value).tls_minimum_version == "1.3"


@pytest.mark.parametrize("value", ["1.0", "TLSv1.1", "1"])
def test_old_tls_versions_are_refused_with_the_reason(value: str):
    assert "RFC 8996" in _error(certfile="c.pem", tls_minimum_version=value).reason


def test_the_password_is_hidden_from_the_settings_repr():
    settings = Settings(certfile="c.pem", keyfile_password="hunter2")
    assert settings.keyfile_password == "hunter2"
    assert "hunter2" not in repr(settings)


def test_a_hook_spec_is_normalised_and_a_callable_kept():
    def hook(settings: Settings, factory: Any) -> Any:
        return factory()

    assert Settings(certfile="c.pem", ssl_context="pkg.mod.hook").ssl_context == "pkg.mod:hook"
    assert Settings(certfile="c.pem", ssl_context=hook).ssl_context is hook


# --------------------------------------------------------------------------- listeners


def _display(listeners: list[Any]) -> list[tuple[bool, str]]:
    return [(listener.is_tls, listener.display.rsplit(":", 1)[0]) for listener in listeners]


def test_listeners_carry_is_tls_and_show_https():
    settings = Settings(listen="127.0.0.1:0 https://127.0.0.1:0", certfile="c.pem")
    listeners = bind_listeners(settings.listen, ipv4=True, ipv6=False, backlog=5)
    try:
        assert _display(listeners) == [(False, "http://127.0.0.1"), (True, "https://127.0.0.1")]
    finally:
        for listener in listeners:
            listener.close()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets")
def test_a_unix_socket_and_given_sockets_follow_certfile(tmp_path: Path):
    path = str(tmp_path / "app.sock")
    given = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    given.bind(("127.0.0.1", 0))
    listeners = bind_listeners(
        (), ipv4=True, ipv6=False, backlog=5, unix_socket=path, sockets=[given], tls=True
    )
    try:
        assert [listener.is_tls for listener in listeners] == [True, True]
        assert listeners[1].display == f"unix:{path} (TLS)"
        assert listeners[0].display.startswith("https://127.0.0.1:")
    finally:
        for listener in listeners:
            listener.close()
