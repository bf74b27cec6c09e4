"""Tests for the settings table (waitress_like.config) and the docs extension built on it."""

from __future__ import annotations

import collections.abc
import importlib.util
import socket
import typing
import warnings
from pathlib import Path
from typing import Any

import pytest

from waitress_like.config import (
    SETTINGS,
    SETTINGS_BY_NAME,
    TOPICS,
    ListenAddress,
    Setting,
    Settings,
)
from waitress_like.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]

# waitress 3.x defaults (waitress/adjustments.py), written out so the test runs without it.
WAITRESS_DEFAULTS: dict[str, Any] = {
    "host": "0.0.0.0",
    "port": 8080,
    "ipv4": True,
    "ipv6": True,
    "threads": 4,
    "trusted_proxy": None,
    "trusted_proxy_count": None,
    "trusted_proxy_headers": set(),
    "log_untrusted_proxy_headers": False,
    "clear_untrusted_proxy_headers": True,
    "url_scheme": "http",
    "url_prefix": "",
    "ident": "waitress",
    "backlog": 1024,
    "recv_bytes": 8192,
    "send_bytes": 1,
    "outbuf_overflow": 1048576,
    "outbuf_high_watermark": 16777216,
    "inbuf_overflow": 524288,
    "connection_limit": 100,
    "cleanup_interval": 30,
    "channel_timeout": 120,
    "log_socket_errors": True,
    "max_request_header_size": 262144,
    "max_request_body_size": 1073741824,
    "expose_tracebacks": False,
    "unix_socket": None,
    "unix_socket_perms": 0o600,
    "asyncore_loop_timeout": 1,
    "asyncore_use_poll": False,
    "sockets": [],
    "channel_request_lookahead": 0,
    "server_name": "waitress.invalid",
}
# Defaults we change on purpose, with the reason.
INTENDED_DIFFERENCES = {
    "ident": "waitress_like",  # the Server header names this server, not waitress
}
# waitress stores listen as ["0.0.0.0:8080"]; our row's default is "derive from host/port".
DERIVED = {"listen"}

# Settings waitress does not have, each with the issue that added it. Adding a setting
# means adding it here and a bad value for it to BAD_VALUES below.
OUR_OWN = {
    "fd": "inherited sockets (entry points)",
    "interface": "ASGI support",
    "lifespan": "ASGI support",
    "proxy_protocol": "PROXY protocol (proxies)",
    "request_head_timeout": "slow clients",
    "request_body_timeout": "slow clients",
    "send_timeout": "slow clients",
    "keepalive_timeout": "production controls",
    "max_connection_age": "production controls",
    "graceful_timeout": "production controls",
    "max_requests_per_connection": "production controls",
    "server_header": "production controls",
    "date_header": "production controls",
    "default_headers": "production controls",
    "concurrency_limit": "production controls",
    "retry_after": "production controls",
    "max_threads": "production controls",
    "thread_idle_timeout": "production controls",
    "access_log": "production controls",
    "access_log_format": "production controls",
    "limit_request_fields": "issue 17: the parser's field-count limit as a setting",
    "connection_limit_per_address": "issue 17: slow clients at the connection limit",
    "request_min_rate": "issue 17: slow clients at the connection limit",
    "request_min_rate_grace": "issue 17: slow clients at the connection limit",
    "certfile": "issue 13: TLS",
    "keyfile": "issue 13: TLS",
    "keyfile_password": "issue 13: TLS",
    "ca_certs": "issue 13: TLS",
    "cert_reqs": "issue 13: TLS",
    "ciphers": "issue 13: TLS",
    "tls_minimum_version": "issue 13: TLS",
    "ssl_context": "issue 13: TLS",
    "loglevel": "issue 14: gunicorn's logging settings",
    "errorlog": "issue 14: gunicorn's logging settings",
    "logconfig": "issue 14: gunicorn's logging settings",
    "logconfig_dict": "issue 14: gunicorn's logging settings",
    "logconfig_json": "issue 14: gunicorn's logging settings",
    "metrics_listen": "issue 14: Prometheus metrics",
    "statsd_host": "issue 14: gunicorn's statsd metrics",
    "statsd_prefix": "issue 14: gunicorn's statsd metrics",
    "dogstatsd_tags": "issue 14: gunicorn's statsd metrics",
    "ws": "issue 16: WebSockets for ASGI applications (uvicorn's names)",
    "ws_max_size": "issue 16: WebSockets for ASGI applications (uvicorn's names)",
    "ws_max_queue": "issue 16: WebSockets for ASGI applications (uvicorn's names)",
    "ws_ping_interval": "issue 16: WebSockets for ASGI applications (uvicorn's names)",
    "ws_ping_timeout": "issue 16: WebSockets for ASGI applications (uvicorn's names)",
    "ws_per_message_deflate": "issue 16: WebSockets for ASGI applications (uvicorn's names)",
    "workers": "issue 18: supervised worker processes",
    "reuse_port": "issue 18: supervised worker processes",
    "preload_app": "issue 18: supervised worker processes",
    "worker_timeout": "issue 18: supervised worker processes",
    "max_requests": "issue 18: supervised worker processes",
    "max_requests_jitter": "issue 18: supervised worker processes",
    "pidfile": "issue 18: supervised worker processes",
    "proc_name": "issue 18: supervised worker processes",
    "user": "issue 18: supervised worker processes",
    "group": "issue 18: supervised worker processes",
    "umask": "issue 18: supervised worker processes",
    "chdir": "issue 18: supervised worker processes",
}


def _load_settings_table_extension() -> Any:
    path = REPO_ROOT / "docs" / "_ext" / "settings_table.py"
    spec = importlib.util.spec_from_file_location("settings_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config_error(**values: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Settings.from_mapping(values)
    return info.value


# --------------------------------------------------------------------------- the table


def test_table_names_are_unique_and_indexed():
    assert len(SETTINGS_BY_NAME) == len(SETTINGS)
    assert list(SETTINGS_BY_NAME) == [setting.name for setting in SETTINGS]


def test_table_is_in_documentation_order():
    topic_order = list(TOPICS)
    positions = [topic_order.index(setting.topic) for setting in SETTINGS]
    assert positions == sorted(positions)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_row_is_documented(setting: Setting):
    assert setting.help.strip()
    assert setting.type_name
    assert setting.default_text
    assert setting.metavar
    assert setting.cli_option == "--" + setting.name.replace("_", "-")


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.name not in DERIVED], ids=lambda s: s.name)
def test_every_default_passes_its_own_converter(setting: Setting):
    assert setting.parse(setting.default) == setting.default


def test_booleans_are_flags_and_sockets_are_python_only():
    flags = {s.name for s in SETTINGS if s.is_flag}
    ours = {s.name for s in SETTINGS if s.name in OUR_OWN and isinstance(s.default, bool)}
    assert flags == {name for name, value in WAITRESS_DEFAULTS.items() if isinstance(value, bool)} | ours
    assert [s.name for s in SETTINGS if not s.accepts_text] == ["sockets"]


def test_reprs_name_the_row():
    assert repr(SETTINGS_BY_NAME["threads"]) == "<Setting threads default=4>"
    assert "boolean" in repr(SETTINGS_BY_NAME["ipv4"].convert)


def test_unknown_topic_is_a_programming_error():
    with pytest.raises(ValueError, match="topic"):
        Setting("x", int, 0, "help", "nonsense")


# --------------------------------------------------------------------------- defaults


def test_same_names_as_waitress_plus_our_own():
    assert set(WAITRESS_DEFAULTS) | DERIVED <= set(SETTINGS_BY_NAME)
    assert set(SETTINGS_BY_NAME) - set(WAITRESS_DEFAULTS) - DERIVED <= set(OUR_OWN)


@pytest.mark.parametrize("name", sorted(WAITRESS_DEFAULTS))
def test_defaults_equal_waitress(name: str):
    expected = INTENDED_DIFFERENCES.get(name, WAITRESS_DEFAULTS[name])
    ours = SETTINGS_BY_NAME[name].default
    assert (list(ours) if name == "sockets" else ours) == expected
    assert type(ours) is not bool or type(expected) is bool


def test_default_settings_object():
    settings = Settings.from_mapping({})
    assert settings == Settings()
    assert settings.listen == (ListenAddress("0.0.0.0", 8080),)
    assert settings.trusted_proxy_count == 1  # resolved like waitress does
    for name, default in WAITRESS_DEFAULTS.items():
        if name not in ("trusted_proxy_count", "sockets"):
            assert getattr(settings, name) == INTENDED_DIFFERENCES.get(name, default)


def test_defaults_match_installed_waitress():
    adjustments = pytest.importorskip("waitress.adjustments")
    theirs = adjustments.Adjustments
    assert set(SETTINGS_BY_NAME) - set(OUR_OWN) == {name for name, _ in theirs._params}
    differences = {}
    for setting in SETTINGS:
        if setting.name in DERIVED or setting.name in OUR_OWN:
            continue
        ours = list(setting.default) if setting.name == "sockets" else setting.default
        if ours != getattr(theirs, setting.name):
            differences[setting.name] = ours
    assert differences == INTENDED_DIFFERENCES
    assert [str(address) for address in Settings().listen] == theirs.listen


@pytest.mark.parametrize(
    "values",
    [
        {"threads": "8", "port": "9090", "ipv6": "off", "url_prefix": "app/"},
        {"unix_socket": "/tmp/x.sock", "unix_socket_perms": "660"},
        {"channel_timeout": "45", "asyncore_use_poll": "yes", "send_bytes": "18000"},
        {"trusted_proxy": "10.0.0.1", "trusted_proxy_headers": "x-forwarded-for X-Forwarded-Proto"},
        {"ident": "", "trusted_proxy": "", "expose_tracebacks": "TRUE"},
    ],
)
def test_string_conversions_agree_with_installed_waitress(values: dict[str, str]):
    adjustments = pytest.importorskip("waitress.adjustments")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = adjustments.Adjustments(**values)
        ours = Settings.from_mapping(values)
    for name in values:
        expected = getattr(theirs, name)
        assert getattr(ours, name) == (set(expected) if isinstance(expected, set) else expected)


# --------------------------------------------------------------------------- converters

CONVERSIONS = [
    # (setting, given, expected) - strings as from PasteDeploy/CLI and native objects
    ("default_headers", "X-Frame-Options: DENY\n\n  X-A:b  \n", (("X-Frame-Options", "DENY"), ("X-A", "b"))),
    ("default_headers", [("X-A", "1"), "X-B: 2"], (("X-A", "1"), ("X-B", "2"))),
    ("max_connection_age", "0", 0),
    ("keepalive_timeout", "2.5", 2.5),
    ("server_header", "off", False),
    ("concurrency_limit", "100", 100),
    ("access_log", "-", "-"),
    ("host", "127.0.0.1", "127.0.0.1"),
    ("host", " localhost ", "localhost"),
    ("host", "::1", "::1"),
    ("host", "*", "*"),
    ("port", "0", 0),
    ("port", 65535, 65535),
    ("port", "8081", 8081),
    ("ipv4", "false", False),
    ("ipv6", True, True),
    ("unix_socket", "/run/app.sock", "/run/app.sock"),
    ("unix_socket", Path("/run/app.sock"), "/run/app.sock"),
    ("unix_socket", "", None),
    ("unix_socket", None, None),
    ("unix_socket_perms", "600", 0o600),
    ("unix_socket_perms", "0660", 0o660),
    ("unix_socket_perms", "0o644", 0o644),
    ("unix_socket_perms", 0o640, 0o640),
    ("server_name", "example.com", "example.com"),
    ("threads", "8", 8),
    ("threads", 8, 8),
    ("threads", 8.0, 8),
    ("threads", " +2 ", 2),
    ("url_scheme", "https", "https"),
    ("url_prefix", "app", "/app"),
    ("ident", "my-server/1.0", "my-server/1.0"),
    ("ident", "", None),
    ("ident", None, None),
    ("backlog", "0", 0),
    ("backlog", 2048, 2048),
    ("recv_bytes", "16384", 16384),
    ("send_bytes", 9000, 9000),
    ("outbuf_overflow", "0", 0),
    ("outbuf_high_watermark", 1, 1),
    ("inbuf_overflow", "1024", 1024),
    ("connection_limit", "1000", 1000),
    ("cleanup_interval", "10", 10),
    ("cleanup_interval", 0.5, 0.5),
    ("channel_timeout", "2.5", 2.5),
    ("channel_timeout", 60, 60),
    ("log_socket_errors", "no", False),
    ("max_request_header_size", "1024", 1024),
    ("limit_request_fields", "100", 100),
    ("connection_limit_per_address", "8", 8),
    ("request_min_rate", "0", 0),
    ("request_min_rate_grace", "2.5", 2.5),
    ("max_request_body_size", "0", 0),
    ("max_request_body_size", 10, 10),
    ("expose_tracebacks", "on", True),
    ("asyncore_loop_timeout", "1", 1),
    ("asyncore_loop_timeout", 0.25, 0.25),
    ("asyncore_use_poll", "1", True),
    ("channel_request_lookahead", "5", 5),
    ("trusted_proxy", "*", "*"),
    ("trusted_proxy", "127.0.0.1, 10.0.0.0/8 ::1", "10.0.0.0/8,127.0.0.1,::1"),
    ("trusted_proxy", ["localhost", "[::1]"], "localhost ::1"),
    ("proxy_protocol", " V2 ", "v2"),
    ("trusted_proxy", "", None),
    ("trusted_proxy_count", "2", 2),
    ("trusted_proxy_count", None, None),
    ("trusted_proxy_count", "", None),
    ("trusted_proxy_headers", "X-Forwarded-For, x-forwarded-proto", {"x-forwarded-for", "x-forwarded-proto"}),
    ("trusted_proxy_headers", ["forwarded"], {"forwarded"}),
    ("trusted_proxy_headers", "x-forwarded-host\nx-forwarded-port", {"x-forwarded-host", "x-forwarded-port"}),
    ("trusted_proxy_headers", "", set()),
    ("log_untrusted_proxy_headers", "yes", True),
    ("clear_untrusted_proxy_headers", False, False),
    ("sockets", [], ()),
]


@pytest.mark.parametrize("name, given, expected", CONVERSIONS)
def test_converter(name: str, given: Any, expected: Any):
    assert SETTINGS_BY_NAME[name].parse(given) == expected


def test_every_setting_has_a_conversion_test():
    tested = {name for name, _, _ in CONVERSIONS} | {"listen"}  # listen: see its own tests
    assert set(SETTINGS_BY_NAME) - set(OUR_OWN) <= tested


@pytest.mark.parametrize("word", ["true", "yes", "on", "y", "t", "1", "TRUE", " Yes ", "On"])
def test_true_words(word: str):
    assert SETTINGS_BY_NAME["ipv4"].parse(word) is True


@pytest.mark.parametrize("word", ["false", "no", "off", "n", "f", "0", "FALSE", " No ", "Off"])
def test_false_words(word: str):
    assert SETTINGS_BY_NAME["ipv4"].parse(word) is False


@pytest.mark.parametrize("given, expected", [(True, True), (False, False), (1, True), (0, False)])
def test_native_booleans(given: Any, expected: bool):
    assert SETTINGS_BY_NAME["expose_tracebacks"].parse(given) is expected


@pytest.mark.parametrize(
    "given, expected",
    [("", ""), ("/", ""), ("///", ""), ("app", "/app"), ("/app/", "/app"), ("//app//", "/app"),
     ("a/b/", "/a/b"), (" /app ", "/app")],
)  # fmt: skip
def test_url_prefix_normalisation(given: str, expected: str):
    assert Settings(url_prefix=given).url_prefix == expected


# --------------------------------------------------------------------------- errors

BAD_VALUES = [
    ("host", ""),
    ("host", "bad host"),
    ("host", "[::1"),
    ("host", 42),
    ("port", "65536"),
    ("port", -1),
    ("port", "http"),
    ("port", True),
    ("port", "\u0668\u0660"),  # Arabic-Indic digits: isdigit() but not a port we accept
    ("ipv4", "maybe"),
    ("ipv6", 2),
    ("ipv6", None),
    ("listen", ""),
    ("listen", "127.0.0.1:99999"),
    ("listen", 8080),
    ("listen", ["127.0.0.1:80", 81]),
    ("unix_socket", 5),
    ("unix_socket_perms", "800"),
    ("unix_socket_perms", "rw-------"),
    ("unix_socket_perms", 600),  # decimal 600 is not 0o600
    ("unix_socket_perms", True),
    ("sockets", "3"),
    ("sockets", 3),
    ("sockets", ["not a socket"]),
    ("server_name", ""),
    ("threads", "0"),
    ("threads", 0),
    ("threads", "four"),
    ("threads", 2.5),
    ("threads", True),
    ("threads", "1.0"),
    ("url_scheme", "ht tp"),
    ("url_scheme", ""),
    ("url_prefix", 3),
    ("ident", "a\r\nX-Injected: 1"),
    ("backlog", "-1"),
    ("recv_bytes", 0),
    ("send_bytes", 0),
    ("outbuf_overflow", "-5"),
    ("outbuf_high_watermark", 0),
    ("inbuf_overflow", "big"),
    ("connection_limit", 0),
    ("cleanup_interval", 0),
    ("channel_timeout", "-1"),
    ("channel_timeout", "soon"),
    ("channel_timeout", float("nan")),
    ("channel_timeout", False),
    ("asyncore_loop_timeout", "inf"),
    ("asyncore_loop_timeout", "1e999"),
    ("log_socket_errors", "sometimes"),
    ("max_request_header_size", 0),
    ("limit_request_fields", "0"),
    ("connection_limit_per_address", "-1"),
    ("ident", "srv\r\nX-Injected: 1"),
    ("ident", "caf\u00e9 \u2603"),
    ("request_min_rate", "fast"),
    ("request_min_rate_grace", "0"),
    ("max_request_body_size", -1),
    ("expose_tracebacks", "2"),
    ("asyncore_use_poll", "poll"),
    ("channel_request_lookahead", "-1"),
    ("trusted_proxy", 127),
    ("trusted_proxy", "proxy.example.com"),
    ("trusted_proxy", "10.0.0.1/8"),
    ("trusted_proxy", "*, 10.0.0.1"),
    ("proxy_protocol", "v3"),
    ("trusted_proxy_count", "0"),
    ("trusted_proxy_headers", "x-forwarded-everything"),
    ("trusted_proxy_headers", "forwarded x-forwarded-for"),
    ("trusted_proxy_headers", 5),
    ("log_untrusted_proxy_headers", "nope"),
    ("clear_untrusted_proxy_headers", "2"),
    ("request_head_timeout", 0),
    ("request_body_timeout", "-1"),
    ("send_timeout", "later"),
    ("fd", "x"),
    ("interface", "asgi9"),
    ("lifespan", "sometimes"),
    ("ws", "websockets"),
    ("ws_max_size", 0),
    ("ws_max_queue", "0"),
    ("ws_ping_interval", -1),
    ("ws_ping_timeout", "soon"),
    ("ws_per_message_deflate", "maybe"),
    ("keepalive_timeout", 0),
    ("max_connection_age", "-1"),
    ("graceful_timeout", "never"),
    ("max_requests_per_connection", "-1"),
    ("server_header", "maybe"),
    ("date_header", "2"),
    ("default_headers", "X-Bad Name: 1"),
    ("default_headers", "X-Injected: a\x00b"),
    ("default_headers", 5),
    ("concurrency_limit", "-1"),
    ("retry_after", "soon"),
    ("max_threads", "-2"),
    ("thread_idle_timeout", 0),
    ("access_log", 5),
    ("access_log_format", 5),
    ("listen", "ftp://*:21"),
    ("listen", "https://"),
    ("certfile", 5),
    ("keyfile", "key\x00.pem"),
    ("keyfile_password", 5),
    ("ca_certs", 5),
    ("cert_reqs", "sometimes"),
    ("cert_reqs", 3),
    ("ciphers", ""),
    ("tls_minimum_version", "1.1"),
    ("tls_minimum_version", "2"),
    ("ssl_context", "not a spec"),
    ("ssl_context", 5),
    ("loglevel", "verbose"),
    ("loglevel", 10),
    ("errorlog", 5),
    ("logconfig", 5),
    ("logconfig_dict", "{not json"),
    ("logconfig_dict", "[1, 2]"),
    ("logconfig_dict", 5),
    ("logconfig_json", ["a.json"]),
    ("metrics_listen", "127.0.0.1:99999"),
    ("metrics_listen", 9100),
    ("statsd_host", "::1"),
    ("statsd_host", "*:8125"),
    ("statsd_host", "localhost:0"),
    ("statsd_host", "localhost:port"),
    ("statsd_prefix", 5),
    ("dogstatsd_tags", "env:prod|#x"),
    ("dogstatsd_tags", 5),
    ("workers", "0"),
    ("workers", "many"),
    ("reuse_port", "sometimes"),
    ("preload_app", "2"),
    ("worker_timeout", "-1"),
    ("max_requests", "-5"),
    ("max_requests_jitter", "lots"),
    ("pidfile", 5),
    ("proc_name", 5),
    ("user", "root\nx"),
    ("group", 5),
    ("umask", "999"),
    ("chdir", ["/"]),
]


@pytest.mark.parametrize("name, value", BAD_VALUES)
def test_bad_value_names_the_setting(name: str, value: Any):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # send_bytes
        error = _config_error(**{name: value})
    assert error.setting == name
    assert repr(name) in str(error)
    assert error.value is value or error.value == value


def test_every_setting_has_an_error_test():
    # Settings still being added by work in progress elsewhere are listed in OUR_OWN but
    # may not have a row yet; every row must have a bad value here.
    assert set(SETTINGS_BY_NAME) <= {name for name, _ in BAD_VALUES}


@pytest.mark.parametrize(
    "header",
    ["Connection: close", "Transfer-Encoding: chunked", "content-length: 0", "Keep-Alive: 5", "TE: x"],
)
def test_default_headers_refuse_what_the_server_frames_with(header: str):
    # They would contradict the framing and connection handling of every response.
    error = _config_error(default_headers=header)
    assert error.setting == "default_headers"
    assert "set by the server for each response" in error.reason


def test_default_headers_are_checked_as_application_headers():
    assert "invalid header name 'X-Bad Name'" in _config_error(default_headers="X-Bad Name: 1").reason
    assert "invalid character in value" in _config_error(default_headers="X-A: a\x7fb").reason


def test_decimal_permissions_hint_at_octal():
    assert "'600' as an octal string" in _config_error(unix_socket_perms=600).reason


@pytest.mark.parametrize(
    "given, suggestion",
    [("thread", "threads"), ("max-request-body-size", "max_request_body_size"),
     ("Threads", "threads"), ("chanel_timeout", "channel_timeout"), ("ipv_6", "ipv6")],
)  # fmt: skip
def test_unknown_setting_suggests_the_closest_name(given: str, suggestion: str):
    error = _config_error(**{given: "1"})
    assert error.setting == given
    assert f"did you mean {suggestion!r}" in str(error)


def test_unknown_setting_without_a_close_name():
    error = _config_error(zzzzzz=1)
    assert error.setting == "zzzzzz"
    assert "unknown setting" in str(error)
    assert "did you mean" not in str(error)


def test_non_string_setting_name():
    with pytest.raises(ConfigError, match="names must be strings"):
        Settings.from_mapping({1: 2})  # type: ignore[dict-item]


def test_send_bytes_is_deprecated_and_ignored():
    with pytest.warns(DeprecationWarning, match="send_bytes") as record:
        settings = Settings.from_mapping({"send_bytes": "18000"})
    assert record[0].filename == __file__  # points at the caller, not at config.py
    assert settings.send_bytes == 18000
    assert SETTINGS_BY_NAME["send_bytes"].deprecated


def test_send_bytes_warning_points_at_caller_of_the_constructor():
    with pytest.warns(DeprecationWarning) as record:
        Settings(send_bytes=1)
    assert record[0].filename == __file__


def test_no_warning_without_deprecated_settings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Settings(threads=2, trusted_proxy="127.0.0.1", trusted_proxy_headers="x-forwarded-for")


# --------------------------------------------------------------------------- listen


@pytest.mark.parametrize(
    "given, expected",
    [
        ("127.0.0.1:8080", [("127.0.0.1", 8080)]),
        ("*:8080", [(None, 8080)]),
        ("*", [(None, 8080)]),
        ("[::1]:8080", [("::1", 8080)]),
        ("[::]:0", [("::", 0)]),
        ("[::1]", [("::1", 8080)]),
        ("[fe80::1%eth0]:80", [("fe80::1%eth0", 80)]),
        ("localhost", [("localhost", 8080)]),
        ("example.com:443", [("example.com", 443)]),
        ("*:8080 [::1]:8080", [(None, 8080), ("::1", 8080)]),
        ("127.0.0.1:1\n[::1]:2\n\n  localhost:3  ", [("127.0.0.1", 1), ("::1", 2), ("localhost", 3)]),
        (["127.0.0.1:1", "[::1]:2 *:3"], [("127.0.0.1", 1), ("::1", 2), (None, 3)]),
        ("127.0.0.1:1 127.0.0.1:1", [("127.0.0.1", 1)]),
        (ListenAddress("::1", 5), [("::1", 5)]),
        ([ListenAddress(None, 5), "0.0.0.0:6"], [(None, 5), ("0.0.0.0", 6)]),
    ],
)
def test_listen_parsing(given: Any, expected: list[tuple[str | None, int]]):
    settings = Settings(listen=given)
    assert settings.listen == tuple(ListenAddress(host, port) for host, port in expected)
    assert settings.as_dict()["listen"] == settings.listen


@pytest.mark.parametrize(
    "entry, reason",
    [
        ("127.0.0.1:", "port must be a number"),
        ("127.0.0.1:80a", "port must be a number"),
        ("127.0.0.1:65536", "between 0 and 65535"),
        ("127.0.0.1:-1", "port must be a number"),
        ("127.0.0.1:\u0668\u0660", "port must be a number"),
        ("[::1]:http", "port must be a number"),
        ("::1", "brackets"),
        ("::1:8080", "brackets"),
        ("[::1", "missing ']'"),
        ("[::1]8080", "':PORT' after ']'"),
        ("[not-ipv6]:80", "not an IPv6 address"),
        (":8080", "not a host name"),
        ("a/b:80", "not a host name"),
        ("   ", "at least one"),
    ],
)
def test_listen_errors(entry: str, reason: str):
    error = _config_error(listen=entry)
    assert error.setting == "listen"
    assert "'listen'" in str(error)
    assert reason in error.reason


def test_listen_from_host_and_port():
    assert Settings(host="127.0.0.1", port="9000").listen == (ListenAddress("127.0.0.1", 9000),)
    assert Settings(host="*").listen == (ListenAddress(None, 8080),)
    assert Settings(host="::1", port=0).listen == (ListenAddress("::1", 0),)
    assert Settings(host="[::1]").listen == (ListenAddress("::1", 8080),)
    assert Settings(port=1).listen == (ListenAddress("0.0.0.0", 1),)


def test_listen_is_empty_for_unix_socket_and_sockets():
    assert Settings(unix_socket="/tmp/app.sock").listen == ()
    with socket.socket() as sock:
        settings = Settings(sockets=[sock])
        assert settings.listen == ()
        assert settings.sockets == (sock,)


def test_empty_sockets_list_falls_back_to_host_and_port():
    assert Settings(sockets=[], port=1).listen == (ListenAddress("0.0.0.0", 1),)


def test_listen_address_value_object():
    address = ListenAddress("::1", 8080)
    assert address == ListenAddress("::1", 8080)
    assert address != ListenAddress("::1", 8081)
    assert address != ("::1", 8080)
    assert hash(address) == hash(ListenAddress("::1", 8080))
    assert repr(address) == "ListenAddress('::1', 8080)"
    assert str(address) == "[::1]:8080"
    assert str(ListenAddress(None, 1)) == "*:1"
    assert str(ListenAddress("localhost", 2)) == "localhost:2"
    with pytest.raises(AttributeError):
        address.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del address.host


# --------------------------------------------------------------------------- conflicts


@pytest.mark.parametrize(
    "values, setting",
    [
        ({"listen": "*:80", "host": "127.0.0.1"}, "listen"),
        ({"listen": "*:80", "port": 80}, "listen"),
        ({"listen": "*:80", "host": "0.0.0.0", "port": 8080}, "listen"),  # defaults, but given
        ({"unix_socket": "/tmp/a.sock", "host": "127.0.0.1"}, "unix_socket"),
        ({"unix_socket": "/tmp/a.sock", "port": 1}, "unix_socket"),
        ({"unix_socket": "/tmp/a.sock", "listen": "*:1"}, "unix_socket"),
        ({"ipv4": False, "ipv6": "false"}, "ipv4"),
        ({"trusted_proxy_count": 2}, "trusted_proxy_count"),
        ({"trusted_proxy_headers": "x-forwarded-for"}, "trusted_proxy_headers"),
        ({"listen": "127.0.0.1:80", "ipv4": False}, "listen"),
        ({"listen": "[::1]:80", "ipv6": "no"}, "listen"),
        ({"ipv4": False}, "host"),  # the default host 0.0.0.0 is IPv4
        ({"host": "::1", "ipv6": False}, "host"),
    ],
)
def test_conflicts_name_the_setting(values: dict[str, Any], setting: str):
    error = _config_error(**values)
    assert error.setting == setting
    assert repr(setting) in str(error)


@pytest.mark.parametrize(
    "other", [{"listen": "*:80"}, {"host": "127.0.0.1"}, {"port": 1}, {"unix_socket": "/a"}]
)
def test_sockets_conflict_with_every_other_address(other: dict[str, Any]):
    with socket.socket() as sock:
        error = _config_error(sockets=[sock], **other)
    assert error.setting == "sockets"
    assert next(iter(other)) in error.reason


def test_families_that_are_not_literals_are_left_to_the_listeners():
    assert Settings(listen="*:80 localhost:81", ipv4=False).listen[1] == ListenAddress("localhost", 81)
    assert Settings(listen="[::]:80", ipv4=False).ipv4 is False


def test_outbuf_high_watermark_may_be_below_overflow():
    settings = Settings(outbuf_high_watermark=10, outbuf_overflow=100)
    assert (settings.outbuf_high_watermark, settings.outbuf_overflow) == (10, 100)


# --------------------------------------------------------------------------- sockets


def test_sockets_must_be_stream_sockets_of_one_kind():
    unix_family = getattr(socket, "AF_UNIX", None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert "stream" in _config_error(sockets=[udp]).reason
    if unix_family is not None:
        with socket.socket() as tcp, socket.socket(unix_family) as unix:
            assert "mixed" in _config_error(sockets=[tcp, unix]).reason
            assert Settings(sockets=(unix,)).sockets == (unix,)


def test_closed_socket_is_rejected():
    sock = socket.socket()
    sock.close()
    assert "closed" in _config_error(sockets=[sock]).reason


# --------------------------------------------------------------------------- proxy


def test_trusted_proxy_without_headers_falls_back_like_waitress():
    with pytest.warns(DeprecationWarning, match="x-forwarded-proto") as record:
        settings = Settings(trusted_proxy="10.0.0.1")
    assert record[0].filename == __file__
    assert settings.trusted_proxy_headers == {"x-forwarded-proto"}
    assert settings.trusted_proxy_count == 1


def test_trusted_proxy_settings():
    settings = Settings(
        trusted_proxy="*",
        trusted_proxy_count="2",
        trusted_proxy_headers="FORWARDED",
        clear_untrusted_proxy_headers="0",
    )
    assert settings.trusted_proxy == "*"
    assert settings.trusted_proxy_count == 2
    assert settings.trusted_proxy_headers == frozenset({"forwarded"})
    assert settings.clear_untrusted_proxy_headers is False


# --------------------------------------------------------------------------- Settings object


def test_settings_object_is_read_only_and_complete():
    settings = Settings(threads="8")
    assert settings.threads == 8
    assert list(settings.as_dict()) == [setting.name for setting in SETTINGS]
    with pytest.raises(AttributeError, match="read-only"):
        settings.threads = 2
    with pytest.raises(AttributeError, match="read-only"):
        del settings.threads
    with pytest.raises(AttributeError, match="did you mean 'threads'"):
        settings.thread  # noqa: B018
    with pytest.raises(AttributeError):
        settings._private  # noqa: B018
    assert "max_request_body_size" in dir(settings)


def test_declared_attributes_are_the_table():
    # The annotations are what type checkers see; the table is what exists at run time.
    declared = [name for name in Settings.__annotations__ if not name.startswith("_")]
    assert declared == [setting.name for setting in SETTINGS]


def _conforms(value: Any, hint: Any) -> bool:
    """A small isinstance() for the hints Settings uses (unions, tuples, frozensets)."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return any(_conforms(value, argument) for argument in arguments)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return all(_conforms(item, arguments[0]) for item in value)
        return len(value) == len(arguments) and all(map(_conforms, value, arguments))
    if origin is frozenset:
        return isinstance(value, frozenset) and all(_conforms(item, arguments[0]) for item in value)
    if origin is collections.abc.Callable:
        return callable(value)
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(key, arguments[0]) for key in value)
    if hint is type(None):
        return value is None
    if hint in (int, float) and isinstance(value, bool):
        return False
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, hint)


def test_declared_types_hold_for_the_values():
    hints = typing.get_type_hints(Settings)
    left, right = socket.socketpair()
    try:
        examples = [
            Settings(),
            Settings.from_mapping(
                {
                    "listen": "127.0.0.1:80 [::1]:81",
                    "max_threads": "8",
                    "thread_idle_timeout": "2.5",
                    "ident": "",
                    "default_headers": "X-A: 1",
                    "trusted_proxy": "10.0.0.0/8, localhost",
                    "trusted_proxy_count": "2",
                    "trusted_proxy_headers": "x-forwarded-for",
                    "access_log": "-",
                    "interface": "ASGI3",
                    "proxy_protocol": "v2",
                }
            ),
            Settings.from_mapping(
                {
                    "listen": "*:80 https://*:443",
                    "certfile": "/etc/tls/cert.pem",
                    "keyfile_password": "secret",
                    "ca_certs": "/etc/tls/ca.pem",
                    "cert_reqs": "required",
                    "ssl_context": "myproject.tls:adjust",
                }
            ),
            Settings(certfile="cert.pem", ssl_context=lambda settings, factory: factory()),
            Settings(fd="3 4", unix_socket_perms="660", max_connection_age=0.5),
            Settings(unix_socket="/tmp/app.sock", ident=None),
            Settings(sockets=[left, right]),
        ]
        for settings in examples:
            for name, value in settings.as_dict().items():
                assert _conforms(value, hints[name]), (name, value, hints[name])
    finally:
        left.close()
        right.close()


def test_as_dict_is_a_copy():
    settings = Settings()
    values = settings.as_dict()
    values["threads"] = 99
    assert settings.threads == 4


def test_equality_and_repr():
    assert Settings(threads=8) == Settings.from_mapping({"threads": "8"})
    assert Settings(threads=8) != Settings()
    assert Settings() != object()
    text = repr(Settings(threads=8))
    assert "threads=8" in text and "listen=" in text and "backlog" not in text


def test_from_mapping_accepts_any_mapping():
    from types import MappingProxyType

    assert Settings.from_mapping(MappingProxyType({"port": "1"})).port == 1


# --------------------------------------------------------------------------- docs


def test_render_rst_lists_every_setting_by_topic():
    rst = _load_settings_table_extension().render_rst()
    for title in TOPICS.values():
        assert f".. rubric:: {title}" in rst
    for setting in SETTINGS:
        assert f"``{setting.name}``" in rst
    assert "**Deprecated:**" in rst
    assert "``'waitress_like'``" in rst and "``600``" in rst


def test_render_rst_is_valid_restructuredtext():
    core = pytest.importorskip("docutils.core")
    rst = _load_settings_table_extension().render_rst()
    tree = core.publish_doctree(rst, settings_overrides={"report_level": 5, "halt_level": 2})
    assert "max_request_body_size" in tree.astext()


def test_sphinx_directive_builds(tmp_path: Path):
    application = pytest.importorskip("sphinx.application")
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO_ROOT / 'docs' / '_ext')!r})\n"
        "extensions = ['settings_table']\nproject = 'test'\n"
    )
    (tmp_path / "index.rst").write_text("Settings\n========\n\n.. settings-table::\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Sphinx's own, not ours
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        app = application.Sphinx(
            str(tmp_path), str(tmp_path), str(tmp_path / "_build"), str(tmp_path / "_doctrees"),
            "html", status=None, warning=None, warningiserror=True,
        )  # fmt: skip
        app.build()
    html = (tmp_path / "_build" / "index.html").read_text()
    assert html.count("<table") == len({setting.topic for setting in SETTINGS})
    for setting in SETTINGS:
        assert setting.name in html
